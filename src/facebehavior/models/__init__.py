"""Model zoo: one file per paper architecture, all reachable through ``create_model``.

Importing this package imports the architecture modules so that their builders register
themselves in ``facebehavior.registry.MODELS``; nothing is built or loaded.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from facebehavior.registry import MODELS

if TYPE_CHECKING:
    import torch.nn as nn

__all__ = ["create_model", "list_models", "register_model"]

register_model = MODELS.register


def _import_architectures() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "weights":
            importlib.import_module(f"{__name__}.{info.name}")


# ``MODELS``' loader calls ``_import_architectures`` before its first lookup (registering the
# builders: definitions only, nothing is built). Not at import: ``facebehavior.models.weights`` and
# ``.transforms`` are used by the torch-free onnxruntime path, and importing them imports this
# package first.


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build a registered model by name (keyword arguments go to its builder).

    Raises:
        KeyError: unknown name; the message lists the registered models.
    """
    _import_architectures()
    return MODELS.get(name)(**kwargs)  # type: ignore[return-value]


def list_models(*, include_tiny: bool = False) -> list[str]:
    """Names of the registered architectures.

    Args:
        include_tiny: also list the ``*_tiny`` variants: the same architectures at toy width for
            tests and smoke runs, not for use.
    """
    _import_architectures()
    return [n for n in MODELS.names() if include_tiny or not n.endswith("_tiny")]
