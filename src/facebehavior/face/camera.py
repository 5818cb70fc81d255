"""Millimetre camera-frame coordinates for FaceMesh landmarks, from a pinhole camera and the face's size.

FaceMesh gives x, y in frame pixels and z (relative depth) on the same pixel scale. A single image
cannot tell a small near face from a large far one, so, as OpenFace does, metric positions come from
an assumed camera and an assumed head size:

* camera: focal length ``f`` pixels, principal point at the frame centre; without calibration OpenFace
  2's default, ``f = (500 · W/640 + 500 · H/480) / 2`` (its SequenceCapture / ImageCapture when no
  ``-fx -fy -cx -cy`` are given), so the millimetres here are comparable with OpenFace's own;
* head size: MediaPipe's canonical face (``canonical_face.npz``, centimetres, adult size; outer eye
  corners 8.9 cm apart). The similarity fit of :mod:`facebehavior.face.pose` gives its scale ``s``
  in pixels per centimetre, so the canonical face's origin lies at depth ``Z0 = 10 · f / s`` mm.

Each landmark is then back-projected through its pixel at depth ``Z0 + (z - t_z) · 10 / s`` mm, where
``t_z`` is the fitted depth of the canonical origin in FaceMesh's z units. Frame: x to the image right,
y down, z away from the camera (OpenFace's), millimetres. A face of another size than the canonical
one (a child, a large head) comes out nearer or farther in proportion; directions are unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from facebehavior.face.landmarks.indices import NUM_POINTS, NUM_POINTS_V2, landmarks68
from facebehavior.face.pose import canonical_face, similarity_fit
from facebehavior.schema import POSE_TRANSLATION_COLUMNS, landmark68_columns

__all__ = ["default_focal_length", "MetricFit", "metric_landmarks", "to_camera_mm", "landmark_output_columns"]


def default_focal_length(width: float, height: float) -> float:
    """OpenFace 2's focal length in pixels for an uncalibrated ``width`` x ``height`` frame."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width} x {height}")
    return (500.0 * width / 640.0 + 500.0 * height / 480.0) / 2.0


@dataclass(frozen=True)
class MetricFit:
    """Pinhole back-projection of FaceMesh landmarks.

    Attributes:
        points: (F, P, 3) float64 millimetres, camera frame (x right, y down, z away).
        translation: (F, 3) float64 millimetres: centroid of the 68-point subset (OpenFace's
            ``pose_Tx/Ty/Tz``: its point-distribution model is centred on the 68 points).
        rotation: (F, 3, 3) head rotation, ``points ≈ s · R · canonical + t`` (as in ``face.pose``).
        scale: (F,) pixels per centimetre of the canonical face.
        focal: focal length in pixels used.
    """

    points: np.ndarray  # (F, P, 3) mm
    translation: np.ndarray  # (F, 3) mm
    rotation: np.ndarray  # (F, 3, 3)
    scale: np.ndarray  # (F,) px per cm
    focal: float


def as_landmarks(
    points: Any, sizes: tuple[int, ...] = (NUM_POINTS, NUM_POINTS_V2), need: str = ""
) -> np.ndarray:
    """Landmarks as an (F, P, 3) float64 array, checked: P in ``sizes``, all finite.

    Args:
        points: (F, P, 3) or (P, 3) array or tensor, x, y frame pixels and z relative depth.
        sizes: accepted point counts.
        need: what the caller needs them for, added to the error (e.g. why irises are needed).

    Raises:
        ValueError: another shape, or NaN/inf values.
    """
    if hasattr(points, "detach"):
        points = points.detach().cpu().numpy()
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] not in sizes or arr.shape[2] != 3:
        counts = " or ".join(str(n) for n in sizes)
        raise ValueError(
            f"points must be (F, {counts}, 3) FaceMesh landmarks (x, y, z pixels), got {arr.shape}{need}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("points contain NaN or inf; drop faces without landmarks before calling")
    return arr


def to_camera_mm(
    points: np.ndarray, scale: np.ndarray, origin_z: np.ndarray, image_size: tuple[int, int], focal: float
) -> np.ndarray:
    """Back-project pixel landmarks to millimetres (module docstring).

    Args:
        points: (F, P, 3) x, y frame pixels, z FaceMesh relative depth in pixels.
        scale: (F,) pixels per centimetre (similarity fit to the canonical face).
        origin_z: (F,) FaceMesh z of the canonical face's origin (the fit's translation z).
        image_size: (height, width) of the frame in pixels.
        focal: focal length in pixels.

    Returns:
        (F, P, 3) float64 millimetres, camera frame.
    """
    h, w = image_size
    cx, cy = w / 2.0, h / 2.0
    mm_per_px = 10.0 / np.asarray(scale, dtype=np.float64)[:, None]  # (F, 1)
    depth = focal * mm_per_px + (points[..., 2] - np.asarray(origin_z)[:, None]) * mm_per_px
    x = (points[..., 0] - cx) * depth / focal
    y = (points[..., 1] - cy) * depth / focal
    return np.stack([x, y, depth], axis=-1)


def metric_landmarks(
    points: Any, image_size: tuple[int, int], *, focal_length: float | None = None
) -> MetricFit:
    """Millimetre camera-frame landmarks and head position of each face.

    Args:
        points: (F, 468 | 478, 3) or (468 | 478, 3) FaceMesh / Face Mesh V2 landmarks (x, y frame
            pixels, z relative depth in pixels).
        image_size: (height, width) of the frame the landmarks are in, pixels.
        focal_length: focal length in pixels; None: OpenFace's default for the frame size.

    Returns:
        :class:`MetricFit` with (F, P, 3) millimetre points.
    """
    pts = as_landmarks(points)
    h, w = (int(v) for v in image_size)
    f = default_focal_length(w, h) if focal_length is None else float(focal_length)
    if not f > 0:
        raise ValueError(f"focal_length must be positive pixels, got {focal_length}")
    face = canonical_face()
    s, r, t = similarity_fit(face.vertices, pts[:, :NUM_POINTS], face.weights())
    mm = to_camera_mm(pts, s, t[:, 2], (h, w), f)
    return MetricFit(points=mm, translation=landmarks68(mm).mean(axis=1), rotation=r, scale=s, focal=f)


def landmark_output_columns(
    points: Any, image_size: tuple[int, int], *, focal_length: float | None = None
) -> dict[str, np.ndarray]:
    """Per-face output columns of the 68-point subset and the head position.

    Args:
        points: (F, 468 | 478, 3) FaceMesh / Face Mesh V2 landmarks in frame pixels.
        image_size: (height, width) of the frame, pixels.
        focal_length: pixels; None: OpenFace's default for the frame size.

    Returns:
        ``schema.landmark68_columns()`` (pixels), ``schema.landmark68_columns(three_d=True)``
        (millimetres, camera frame) and ``schema.POSE_TRANSLATION_COLUMNS`` (millimetres), each (F,)
        float32.
    """
    pts = as_landmarks(points)
    fit = metric_landmarks(pts, image_size, focal_length=focal_length)
    px = landmarks68(pts)
    mm = landmarks68(fit.points)
    flat = [
        (np.concatenate([px[..., 0], px[..., 1]], axis=1), landmark68_columns()),
        (np.concatenate([mm[..., 0], mm[..., 1], mm[..., 2]], axis=1), landmark68_columns(three_d=True)),
        (fit.translation, list(POSE_TRANSLATION_COLUMNS)),
    ]
    return {name: arr[:, k].astype(np.float32) for arr, names in flat for k, name in enumerate(names)}
