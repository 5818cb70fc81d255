"""The protocol every face detector follows, so the pipeline can swap or cascade them."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from facebehavior.types import Detections


@runtime_checkable
class FaceDetector(Protocol):
    """Batched face detector.

    Implementations are registered in ``facebehavior.registry.DETECTORS`` by a builder taking
    keyword-only options (``device``, ``score_threshold``, ...), load their shipped weights when
    built (never at import) and run on whole batches of frames.
    """

    name: str

    def __call__(self, images: np.ndarray) -> Detections:
        """Detect faces.

        Args:
            images: (N, H, W, 3) uint8 RGB frames of equal size.

        Returns:
            Detections with ``frame_index`` in [0, N), boxes, scores and 5 keypoints in frame
            pixels (``schema.KEYPOINTS_5`` order).
        """
        ...
