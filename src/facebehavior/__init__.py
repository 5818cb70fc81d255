"""facebehavior: holistic facial behaviour analysis (AUs, expressions, valence/arousal).

The public API is re-exported lazily so that ``import facebehavior`` does no work:
``Analyzer``, ``analyze``, ``create_model``, ``list_models``, ``load_weights``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Analyzer", "analyze", "create_model", "list_models", "load_weights", "__version__"]

_LAZY = {
    "Analyzer": ("facebehavior.pipeline", "Analyzer"),
    "analyze": ("facebehavior.pipeline", "analyze"),
    "create_model": ("facebehavior.models", "create_model"),
    "list_models": ("facebehavior.models", "list_models"),
    "load_weights": ("facebehavior.models.weights", "load_weights"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'facebehavior' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
