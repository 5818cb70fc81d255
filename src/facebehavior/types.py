"""Frozen containers passed between pipeline stages.

Faces are kept flat: every per-face array has a leading face axis ``F`` and a ``frame_index``
column pointing into the batch of frames they came from (never nested per frame).
Coordinates are pixels of the original frame unless stated otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Frames", "Detections", "Landmarks", "AlignedFaces", "Predictions"]


@dataclass(frozen=True)
class Frames:
    """A batch of decoded frames from one source.

    Attributes:
        images: (N, H, W, 3) uint8 RGB.
        index: (N,) int64 frame index within the source (0 for a still image).
        timestamp: (N,) float64 presentation time in seconds (0.0 for a still image).
        source: path or device name the frames came from.
    """

    images: np.ndarray  # (N, H, W, 3) uint8 RGB
    index: np.ndarray  # (N,) int64
    timestamp: np.ndarray  # (N,) float64 seconds
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class Detections:
    """Faces found in a batch of frames.

    Attributes:
        frame_index: (F,) int64 position of each face's frame within the ``Frames`` batch.
        boxes: (F, 4) float32 x1, y1, x2, y2 in pixels.
        scores: (F,) float32 detection confidence in [0, 1].
        keypoints: (F, 5, 2) float32 x, y pixels in ``schema.KEYPOINTS_5`` order.
        face_id: (F,) int64 track identity, or -1 before tracking.
    """

    frame_index: np.ndarray  # (F,) int64
    boxes: np.ndarray  # (F, 4) float32 x1,y1,x2,y2 pixels
    scores: np.ndarray  # (F,) float32
    keypoints: np.ndarray  # (F, 5, 2) float32 pixels
    face_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (F,) int64

    def __post_init__(self) -> None:
        n = len(self.frame_index)
        if self.face_id.shape[0] != n:
            object.__setattr__(self, "face_id", np.full(n, -1, np.int64))

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])

    @staticmethod
    def empty() -> Detections:
        """A detection set with no faces."""
        return Detections(
            frame_index=np.zeros(0, np.int64),
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            keypoints=np.zeros((0, 5, 2), np.float32),
        )


@dataclass(frozen=True)
class Landmarks:
    """Dense landmarks per face.

    Attributes:
        points: (F, P, 3) float32 x, y in frame pixels, z in the same pixel scale (relative depth).
        presence: (F,) float32 face-presence confidence in [0, 1].
    """

    points: np.ndarray  # (F, P, 3) float32
    presence: np.ndarray  # (F,) float32


@dataclass(frozen=True)
class AlignedFaces:
    """Face crops warped to a canonical template.

    Attributes:
        crops: (F, S, S, 3) uint8 RGB aligned crops.
        matrices: (F, 2, 3) float32 similarity transform frame → crop pixels.
        inverse: (F, 2, 3) float32 crop → frame pixels.
        template: name of the template used.
    """

    crops: np.ndarray  # (F, S, S, 3) uint8
    matrices: np.ndarray  # (F, 2, 3) float32
    inverse: np.ndarray  # (F, 2, 3) float32
    template: str


@dataclass(frozen=True)
class Predictions:
    """Per-face outputs of an affect model, as named columns.

    Attributes:
        columns: column name → (F,) array (float32 for scores, object/str for labels).
    """

    columns: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return 0 if not self.columns else int(next(iter(self.columns.values())).shape[0])
