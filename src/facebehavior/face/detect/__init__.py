"""Face detectors; each module registers its builders in ``DETECTORS`` when imported."""

from __future__ import annotations

import importlib
import pkgutil

from facebehavior.face.detect.base import FaceDetector
from facebehavior.registry import DETECTORS

__all__ = ["FaceDetector", "create_detector", "list_detectors"]

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base" and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def create_detector(name: str, **kwargs: object) -> FaceDetector:
    """Build a registered detector (its weights load now, not at import)."""
    return DETECTORS.get(name)(**kwargs)  # type: ignore[return-value]


def list_detectors() -> list[str]:
    """Registered detector names."""
    return DETECTORS.names()
