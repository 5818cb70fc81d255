"""Face detectors; each module registers its builders in ``DETECTORS`` when imported."""

from __future__ import annotations

import importlib
import pkgutil

from facebehavior.face.detect.base import FaceDetector
from facebehavior.registry import DETECTORS

__all__ = ["FaceDetector", "create_detector", "list_detectors"]


def _import_detectors() -> None:
    """Import the detector modules (they register their builders). Called by ``DETECTORS``' loader,
    not at import: MTCNN needs torch, the onnxruntime path imports ``.blazeface`` alone."""
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


# The module that registers each bundled detector: looking one up imports that module alone (the
# BlazeFace path stays free of torch; MTCNN needs it).
MODULE_OF: dict[str, str] = {"blazeface_short": "blazeface", "blazeface_full": "blazeface", "mtcnn": "mtcnn"}


def create_detector(name: str, **kwargs: object) -> FaceDetector:
    """Build a registered detector (its weights load now, not at import).

    Raises:
        KeyError: an unknown name, listing the valid ones.
    """
    if name in MODULE_OF:
        importlib.import_module(f"{__name__}.{MODULE_OF[name]}")
    return DETECTORS.get(name)(**kwargs)  # type: ignore[return-value]


def list_detectors() -> list[str]:
    """Registered detector names."""
    return DETECTORS.names()
