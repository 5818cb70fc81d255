"""Head pose and rigid alignment of FaceMesh-468 landmarks against MediaPipe's canonical 3D face.

Coordinate frame (the one FaceMesh outputs and OpenFace reports pose in): **x to the image right,
y down, z away from the camera** — right-handed. The canonical face (``canonical_face.npz``, see
``canonical_face.md``) is stored in MediaPipe's own frame (centimetres, y up, z towards the viewer)
and flipped into this frame on load.

Angles, in degrees, are those of ``R = Rx(pitch) · Ry(yaw) · Rz(roll)`` (OpenFace's Euler
convention), where ``points ≈ s · R · canonical + t``:

- pitch > 0: head tilted **down** (nose towards the chest);
- yaw > 0: head turned towards the **subject's right** (nose moves to the image left);
- roll > 0: head tilted towards the **subject's left** shoulder (clockwise in the image).

Only a similarity transform is fitted, i.e. weak perspective: FaceMesh's x, y are in image pixels
and its z is on the same scale, so perspective distortion of a face at ordinary viewing distances
is small and absorbed in the residual.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CanonicalFace",
    "canonical_face",
    "similarity_fit",
    "rotation_to_euler",
    "euler_to_rotation",
    "head_pose",
    "align_to_canonical",
]

NUM_LANDMARKS = 468
_DATA = Path(__file__).with_name("canonical_face.npz")
# MediaPipe frame (y up, z to viewer) -> camera frame (y down, z away): a 180° turn about x.
_FLIP = np.array([1.0, -1.0, -1.0])
_JAW_POINTS = (136, 365)


@dataclass(frozen=True)
class CanonicalFace:
    """MediaPipe's canonical face in the camera frame.

    Attributes:
        vertices: (468, 3) float64, centimetres; x right, y down, z away from the camera; the face
            looks at the camera (nose tip has the most negative z).
        uv: (468, 2) texture coordinates in [0, 1].
        triangles: (898, 3) int vertex indices.
        procrustes_ids: (33,) landmark indices of the rigid (expression-stable) points MediaPipe fits.
        procrustes_weights: (33,) their weights (sum ≈ 1).
    """

    vertices: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray
    procrustes_ids: np.ndarray
    procrustes_weights: np.ndarray

    def weights(self) -> np.ndarray:
        """Per-landmark rigid-fit weights, (468,), summing to 1.

        MediaPipe's Procrustes points and weights, less the two jaw-line points (136, 365): they
        follow the mandible, so with them an open mouth reads as a pitch change of ~2°.
        """
        w = np.zeros(NUM_LANDMARKS)
        w[self.procrustes_ids] = self.procrustes_weights
        w[list(_JAW_POINTS)] = 0.0
        return w / w.sum()


@lru_cache(maxsize=1)
def canonical_face() -> CanonicalFace:
    """Load the shipped canonical face (cached; read on first call, never at import)."""
    if not _DATA.is_file():
        raise FileNotFoundError(
            f"{_DATA} is missing; reinstall facebehavior or regenerate it with "
            "tools/geometry_canonical_face.py"
        )
    with np.load(_DATA) as d:
        return CanonicalFace(
            vertices=d["vertices"].astype(np.float64) * _FLIP,
            uv=d["uv"].astype(np.float64),
            triangles=d["triangles"].astype(np.int64),
            procrustes_ids=d["procrustes_ids"].astype(np.int64),
            procrustes_weights=d["procrustes_weights"].astype(np.float64),
        )


def _as_points(points: Any, name: str = "points") -> np.ndarray:
    """Accept numpy arrays or torch tensors of shape (F, 468, 3) or (468, 3); return float64 (F, 468, 3)."""
    if hasattr(points, "detach"):
        points = points.detach().cpu().numpy()
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (NUM_LANDMARKS, 3):
        raise ValueError(
            f"{name} must have shape (F, {NUM_LANDMARKS}, 3) (FaceMesh x, y, z per landmark), got {arr.shape}"
        )
    return arr


def similarity_fit(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Umeyama fit of ``dst ≈ s · R · src + t`` for every item of a batch.

    Args:
        src: (F, N, 3) or (N, 3) source points.
        dst: (F, N, 3) or (N, 3) target points (broadcast against ``src``).
        weights: (N,) non-negative point weights; uniform when None.

    Returns:
        ``(s, R, t)``: scale (F,), proper rotation (F, 3, 3) with det +1, translation (F, 3).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src, dst = np.broadcast_arrays(src if src.ndim == 3 else src[None], dst if dst.ndim == 3 else dst[None])
    n = src.shape[1]
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
    mu_s = np.einsum("n,fnd->fd", w, src)
    mu_d = np.einsum("n,fnd->fd", w, dst)
    xs = src - mu_s[:, None]
    xd = dst - mu_d[:, None]
    cov = np.einsum("n,fni,fnj->fij", w, xd, xs)  # Σ w · d sᵀ
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones_like(sig)
    d[:, 2] = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1.0
    rot = u @ (d[:, :, None] * vt)
    var_s = np.einsum("n,fnd->f", w, xs**2)
    scale = np.einsum("fk,fk->f", sig, d) / np.maximum(var_s, 1e-12)
    trans = mu_d - scale[:, None] * np.einsum("fij,fj->fi", rot, mu_s)
    return scale, rot, trans


def euler_to_rotation(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices ``Rx(pitch) · Ry(yaw) · Rz(roll)`` from (F, 3) angles in degrees → (F, 3, 3)."""
    a = np.deg2rad(np.atleast_2d(np.asarray(angles_deg, dtype=np.float64)))
    (cx, cy, cz), (sx, sy, sz) = np.cos(a).T, np.sin(a).T
    one, zero = np.ones_like(cx), np.zeros_like(cx)
    rx = np.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(-1, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rz = np.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return rx @ ry @ rz


def rotation_to_euler(rot: np.ndarray) -> np.ndarray:
    """Inverse of :func:`euler_to_rotation`: (F, 3, 3) → (F, 3) pitch, yaw, roll in degrees.

    Yaw is in [-90°, 90°]; at exactly ±90° yaw (gimbal lock) roll is reported as 0.
    """
    rot = np.asarray(rot, dtype=np.float64).reshape(-1, 3, 3)
    yaw = np.arcsin(np.clip(rot[:, 0, 2], -1.0, 1.0))
    pitch = np.arctan2(-rot[:, 1, 2], rot[:, 2, 2])
    roll = np.arctan2(-rot[:, 0, 1], rot[:, 0, 0])
    return np.rad2deg(np.stack([pitch, yaw, roll], axis=-1))


def _fit(points: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pts = _as_points(points)
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or inf; drop faces without landmarks before calling")
    face = canonical_face()
    s, r, t = similarity_fit(face.vertices, pts, face.weights())
    return pts, s, r, t


def head_pose(points: Any) -> np.ndarray:
    """Head pose of each face from its FaceMesh landmarks.

    Args:
        points: (F, 468, 3) or (468, 3) FaceMesh landmarks in the camera frame (x right, y down, in
            pixels; z away from the camera, same scale). numpy array or torch tensor.

    Returns:
        (F, 3) float32 ``pitch, yaw, roll`` in degrees (conventions in the module docstring).
    """
    _, _, r, _ = _fit(points)
    return rotation_to_euler(r).astype(np.float32)


def align_to_canonical(points: Any) -> tuple[np.ndarray, np.ndarray]:
    """Remove head pose, position and scale: map each face into the canonical face's frame.

    The similarity is fitted on the expression-stable landmarks only (:meth:`CanonicalFace.weights`),
    so expression changes (mouth, brows, lids) survive the alignment while rigid head motion does not.

    Args:
        points: (F, 468, 3) or (468, 3) FaceMesh landmarks (any units, any similarity transform).

    Returns:
        ``(frontal, pose)``: (F, 468, 3) float64 landmarks in canonical centimetres (x right, y down,
        z away, face looking at the camera) and (F, 3) pitch, yaw, roll in degrees.
    """
    pts, s, r, t = _fit(points)
    frontal = np.einsum("fji,fnj->fni", r, pts - t[:, None]) / s[:, None, None]
    return frontal, rotation_to_euler(r)
