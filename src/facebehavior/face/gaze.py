"""Iris-based gaze from Face Mesh V2 landmarks, in OpenFace 2's conventions.

Model (the one OpenFace 2 uses, ``GazeAnalysis::EstimateGaze``, fitted here to FaceMesh geometry):
each eye is a sphere of radius ``r`` = :data:`EYEBALL_RADIUS_CM` whose centre sits at a fixed offset
:data:`EYEBALL_OFFSET_CM` from the midpoint of the eye corners, in the head's frame; the iris centre
lies on the sphere, in the gaze direction. FaceMesh landmarks are a weak-perspective view (x, y frame
pixels; ``face.pose``), so with the head's similarity fit ``s`` (pixels per canonical centimetre) and
rotation ``R``:

    g_xy = (iris_xy - corners_mid_xy - s · (R · offset)_xy) / (s · r),    g_z = -sqrt(1 - |g_xy|²)

i.e. the gaze vector's image-plane part is the iris centre's displacement from where it would be when
looking along the head's axis, and it points towards the camera. The offset was calibrated on real
photos (``benchmarks/gaze_accuracy.py --calibrate``, module constants below); the vector is clamped
at 80° from the optical axis where noise pushes ``|g_xy|`` past ``sin 80°``.

Conventions (OpenFace 2, ``GazeAnalysis.cpp`` and its wiki's Output Format page):

* camera frame: x to the image right, y down, z away from the camera; a gaze into the camera from a
  face at the image centre is (0, 0, −1);
* eye 0 is the eye OpenFace fits with its ``left_eye_28`` model, which is attached to 68-point
  landmarks 36-41: the **subject's right eye** (on the image left of an upright face); eye 1 the
  subject's left;
* ``gaze_angle_x = atan2(g_x, −g_z)``, ``gaze_angle_y = atan2(g_y, −g_z)`` of the mean of the two
  unit vectors, radians: positive when looking to the image right / down, 0 looking straight into
  the camera's axis.

Eye-region landmarks follow OpenFace 2's 28-per-eye layout (its Visualizer draws three closed rings
0-7, 8-19, 20-27; ``GazeAnalysis::GetPupilPosition`` averages 0-7, which it calls the iris):

* 0-7 **iris ring**: 8 points on the ellipse through Face Mesh V2's four iris contour points
  (4 measured, the 4 diagonal ones on that ellipse), starting at the top and running clockwise in the
  image; their mean is the iris centre;
* 8-19 **eyelids**: 12 points, from FaceMesh's lid contour. OpenFace's eye model is initialised from
  68-point landmarks 36-41 (42-47) at eye points 8, 10, 12, 14, 16, 18, so 8 is the image-left
  corner, 9-13 the upper lid, 14 the image-right corner, 15-19 the lower lid; the odd points are
  FaceMesh lid vertices (or the mean of two) between them;
* 20-27 **pupil ring**: not estimated (no landmark model here sees the pupil's edge): NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from facebehavior.face.camera import as_landmarks, default_focal_length, to_camera_mm
from facebehavior.face.landmarks import indices as idx
from facebehavior.face.pose import canonical_face, euler_to_rotation, similarity_fit
from facebehavior.schema import NUM_EYE_LANDMARKS, eye_landmark_columns, gaze_columns

__all__ = [
    "EYEBALL_RADIUS_CM",
    "EYEBALL_OFFSET_CM",
    "EYE_CORNERS",
    "IRIS",
    "EYELID_28",
    "GazeEstimate",
    "estimate_gaze",
    "gaze_angles",
    "eye_landmarks",
    "gaze_output_columns",
    "IRIS_RADIUS_CM",
    "render_synthetic_face",
]

# Eyeball radius, as OpenFace's model (12 mm; the adult eye's axial length is ~24 mm).
EYEBALL_RADIUS_CM = 1.2
# Eyeball centre minus the eye-corner midpoint, head frame (canonical face, cm: x to the subject's
# left, y down, z into the head) for the subject's right eye; the left eye mirrors x. Least-squares
# fit on 396 faces of the training split of the photo corpus, assuming its press photos look into the
# camera (benchmarks/gaze_accuracy.py --calibrate gave -0.349, -0.306, -0.012): the centre sits 3.5 mm
# towards the outer corner and 3 mm above the corner midpoint (OpenFace's model: 3.5 mm above, 7 mm
# deeper); its depth is ~0 in FaceMesh's weak-perspective z, which flattens the face.
EYEBALL_OFFSET_CM: tuple[float, float, float] = (-0.35, -0.31, 0.0)
_MAX_ANGLE_RAD = np.deg2rad(80.0)
# Visible iris radius (adult horizontal visible iris diameter ~11.8 mm); synthetic faces only.
IRIS_RADIUS_CM = 0.59

# (outer, inner) corner vertices and (centre, 4 contour vertices) of the iris, eye 0 then eye 1.
EYE_CORNERS: tuple[tuple[int, int], tuple[int, int]] = (
    (idx.RIGHT_EYE_OUTER, idx.RIGHT_EYE_INNER),
    (idx.LEFT_EYE_OUTER, idx.LEFT_EYE_INNER),
)
IRIS: tuple[tuple[int, ...], tuple[int, ...]] = (
    (idx.RIGHT_IRIS_CENTER, *idx.RIGHT_IRIS),
    (idx.LEFT_IRIS_CENTER, *idx.LEFT_IRIS),
)
# OpenFace eye points 8-19 per eye as FaceMesh vertices (one, or two averaged). Eye 0: 8 = outer
# corner 33 (68-point 36), 10 = 160 (37), 12 = 158 (38), 14 = inner corner 133 (39), 16 = 153 (40),
# 18 = 144 (41), as in indices.MESH_TO_68; eye 1 from its inner corner 362 (68-point 42) likewise.
EYELID_28: tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]] = (
    ((33,), (246, 161), (160,), (159,), (158,), (157, 173),
     (133,), (155, 154), (153,), (145,), (144,), (163, 7)),
    ((362,), (398, 384), (385,), (386,), (387,), (388, 466),
     (263,), (249, 390), (373,), (374,), (380,), (381, 382)),
)  # fmt: skip


@dataclass(frozen=True)
class GazeEstimate:
    """Gaze of F faces.

    Attributes:
        vectors: (F, 2, 3) float64 unit gaze vectors of eye 0 and eye 1, camera frame.
        angles: (F, 2) float64 ``gaze_angle_x, gaze_angle_y`` in radians.
    """

    vectors: np.ndarray  # (F, 2, 3)
    angles: np.ndarray  # (F, 2) radians


def _as_v2(points: Any) -> np.ndarray:
    need = "; gaze needs Face Mesh V2's irises (FaceMesh-468 has none: run with --landmarks v2)"
    return as_landmarks(points, (idx.NUM_POINTS_V2,), need)


def gaze_angles(vectors: np.ndarray) -> np.ndarray:
    """OpenFace's ``gaze_angle_x, gaze_angle_y`` (radians) from (F, 2, 3) eye gaze vectors."""
    g = np.asarray(vectors, dtype=np.float64).mean(axis=1)
    return np.stack([np.arctan2(g[:, 0], -g[:, 2]), np.arctan2(g[:, 1], -g[:, 2])], axis=-1)


def estimate_gaze(
    points: Any,
    *,
    offset_cm: tuple[float, float, float] = EYEBALL_OFFSET_CM,
    radius_cm: float = EYEBALL_RADIUS_CM,
) -> GazeEstimate:
    """Gaze direction of each eye from Face Mesh V2 landmarks (model in the module docstring).

    Args:
        points: (F, 478, 3) or (478, 3) Face Mesh V2 landmarks, x, y frame pixels, z relative depth
            in pixels; numpy array or torch tensor.
        offset_cm: eyeball centre minus eye-corner midpoint for the subject's right eye, head frame,
            centimetres (the left eye mirrors x).
        radius_cm: eyeball radius in centimetres.

    Returns:
        :class:`GazeEstimate` (unit vectors per eye and OpenFace's gaze angles).
    """
    pts = _as_v2(points)
    face = canonical_face()
    s, rot, _ = similarity_fit(face.vertices, pts[:, : idx.NUM_POINTS], face.weights())
    vecs = np.empty((len(pts), 2, 3))
    for e, ((outer, inner), iris) in enumerate(zip(EYE_CORNERS, IRIS, strict=True)):
        o = np.array(offset_cm, dtype=np.float64) * ((1.0, 1.0, 1.0) if e == 0 else (-1.0, 1.0, 1.0))
        mid = (pts[:, outer, :2] + pts[:, inner, :2]) / 2
        centre = mid + s[:, None] * np.einsum("fij,j->fi", rot, o)[:, :2]
        d = (pts[:, iris[0], :2] - centre) / (s[:, None] * radius_cm)
        n = np.linalg.norm(d, axis=1, keepdims=True)
        # Noise can put the iris beyond the sphere's silhouette; keep the direction, cap the angle.
        d = np.where(n > np.sin(_MAX_ANGLE_RAD), d / np.maximum(n, 1e-12) * np.sin(_MAX_ANGLE_RAD), d)
        vecs[:, e, :2] = d
        vecs[:, e, 2] = -np.sqrt(np.clip(1.0 - (d**2).sum(axis=1), 0.0, 1.0))
    return GazeEstimate(vectors=vecs, angles=gaze_angles(vecs))


def eye_landmarks(points: Any) -> np.ndarray:
    """OpenFace 2's 56 eye-region landmarks (28 per eye, eye 0 first) from Face Mesh V2 landmarks.

    Args:
        points: (F, 478, 3) or (478, 3) Face Mesh V2 landmarks.

    Returns:
        (F, 56, 3) float64 in the units of ``points``; the pupil rings (20-27, 48-55) are NaN.
    """
    pts = _as_v2(points)
    out = np.full((len(pts), NUM_EYE_LANDMARKS, 3), np.nan)
    t = np.deg2rad(np.arange(8) * 45.0)
    for e in range(2):
        c = pts[:, IRIS[e][0]]
        contour = pts[:, list(IRIS[e][1:])]  # (F, 4, 3)
        # The four contour points are two opposite pairs; the pair spread wider in image x is the
        # horizontal axis. Half-axes oriented to the image right (h) and down (v).
        a = (contour[:, 0] - contour[:, 2]) / 2
        b = (contour[:, 1] - contour[:, 3]) / 2
        a_horizontal = (np.abs(a[:, 0]) >= np.abs(b[:, 0]))[:, None]
        h, v = np.where(a_horizontal, a, b), np.where(a_horizontal, b, a)
        h = h * np.sign(h[:, :1] + (h[:, :1] == 0))
        v = v * np.sign(v[:, 1:2] + (v[:, 1:2] == 0))
        # Top, then clockwise in the image (x right, y down): c - v, c + h, c + v, c - h at 90° steps.
        ring = c[:, None] + np.sin(t)[None, :, None] * h[:, None] - np.cos(t)[None, :, None] * v[:, None]
        base = 28 * e
        out[:, base : base + 8] = ring
        pairs = np.array([(m[0], m[-1]) for m in EYELID_28[e]], dtype=np.int64)
        out[:, base + 8 : base + 20] = pts[:, pairs].mean(axis=2)
    return out


def gaze_output_columns(
    points: Any, image_size: tuple[int, int], *, focal_length: float | None = None
) -> dict[str, np.ndarray]:
    """Per-face output columns: gaze vectors and angles, 2-D and 3-D eye-region landmarks.

    Args:
        points: (F, 478, 3) Face Mesh V2 landmarks in frame pixels.
        image_size: (height, width) of the frame, pixels (for the millimetre eye landmarks).
        focal_length: pixels; None: OpenFace's default for the frame size (``face.camera``).

    Returns:
        ``schema.gaze_columns()`` (unit vectors, radians) + ``schema.eye_landmark_columns()``
        (pixels) + ``schema.eye_landmark_columns(three_d=True)`` (millimetres, camera frame), each
        (F,) float32.
    """
    pts = _as_v2(points)
    h, w = (int(v) for v in image_size)
    f = default_focal_length(w, h) if focal_length is None else float(focal_length)
    g = estimate_gaze(pts)
    cols: dict[str, np.ndarray] = {}
    names = gaze_columns()
    values = np.concatenate([g.vectors.reshape(len(pts), 6), g.angles], axis=1)
    for k, name in enumerate(names):
        cols[name] = values[:, k].astype(np.float32)
    eyes = eye_landmarks(pts)
    face = canonical_face()
    s, _, t = similarity_fit(face.vertices, pts[:, : idx.NUM_POINTS], face.weights())
    eyes_mm = to_camera_mm(eyes, s, t[:, 2], (h, w), f)
    flat2 = np.concatenate([eyes[..., 0], eyes[..., 1]], axis=1)
    flat3 = np.concatenate([eyes_mm[..., 0], eyes_mm[..., 1], eyes_mm[..., 2]], axis=1)
    for flat, names in ((flat2, eye_landmark_columns()), (flat3, eye_landmark_columns(three_d=True))):
        for k, name in enumerate(names):
            cols[name] = flat[:, k].astype(np.float32)
    return cols


def render_synthetic_face(
    gaze_head: np.ndarray,
    pose_deg: np.ndarray,
    *,
    distance_mm: float = 600.0,
    focal: float = 800.0,
    image_size: tuple[int, int] = (720, 1280),
    centre_px: tuple[float, float] | None = None,
    offset_cm: tuple[float, float, float] = EYEBALL_OFFSET_CM,
    radius_cm: float = EYEBALL_RADIUS_CM,
) -> tuple[np.ndarray, np.ndarray]:
    """Face Mesh V2-like landmarks of the canonical face with eyeballs, seen by a pinhole camera.

    For validating :func:`estimate_gaze` on faces with known gaze: the canonical face (centimetres)
    gets an eyeball per eye (centre ``corner midpoint + offset``, radius ``radius_cm``) whose iris
    (centre + 4 contour points at :data:`IRIS_RADIUS_CM`, Face Mesh V2's order: image right, top,
    image left, bottom) points along ``gaze_head``; the head is rotated by ``pose_deg``
    (``face.pose`` conventions), placed ``distance_mm`` from the camera and projected with true
    perspective (not the estimator's weak perspective). z is FaceMesh-like: depth relative to the
    head's centre, in pixels at the head's distance.

    Args:
        gaze_head: (F, 3) gaze directions in the head frame (normalised here; (0, 0, -1) looks along
            the head's axis), the same for both eyes.
        pose_deg: (F, 3) head pitch, yaw, roll in degrees.
        distance_mm: depth of the canonical face's origin.
        focal: focal length in pixels.
        image_size: (height, width); the principal point is its centre.
        centre_px: where the head's origin projects, (x, y) pixels; default the principal point.
        offset_cm, radius_cm: the eyeball model.

    Returns:
        ``(points, gaze_camera)``: (F, 478, 3) landmarks in pixels and (F, 3) true unit gaze
        vectors in the camera frame.
    """
    g = np.atleast_2d(np.asarray(gaze_head, dtype=np.float64))
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    rot = euler_to_rotation(np.atleast_2d(pose_deg))
    n = len(g)
    verts = canonical_face().vertices
    head = np.empty((n, idx.NUM_POINTS_V2, 3))
    head[:, : idx.NUM_POINTS] = verts
    # Iris disc axes: u horizontal (towards +x) and v (towards +y), both perpendicular to the gaze.
    u = np.cross(np.array([0.0, 1.0, 0.0]), g)
    u = -u / np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(g, u)
    v = -v * np.sign(v[:, 1:2] + (v[:, 1:2] == 0))
    for e, ((outer, inner), iris) in enumerate(zip(EYE_CORNERS, IRIS, strict=True)):
        o = np.array(offset_cm) * ((1.0, 1.0, 1.0) if e == 0 else (-1.0, 1.0, 1.0))
        centre = (verts[outer] + verts[inner]) / 2 + o + radius_cm * g
        head[:, iris[0]] = centre
        for k, (a, b) in enumerate(((1, 0), (0, -1), (-1, 0), (0, 1))):  # right, top, left, bottom
            head[:, iris[1 + k]] = centre + IRIS_RADIUS_CM * (a * u + b * v)
    h, w = image_size
    cx, cy = w / 2.0, h / 2.0
    px, py = (cx, cy) if centre_px is None else centre_px
    t = np.array([(px - cx) * distance_mm / focal, (py - cy) * distance_mm / focal, distance_mm])
    cam = 10.0 * np.einsum("fij,fpj->fpi", rot, head) + t  # millimetres
    pts = np.stack(
        [
            focal * cam[..., 0] / cam[..., 2] + cx,
            focal * cam[..., 1] / cam[..., 2] + cy,
            (cam[..., 2] - distance_mm) * focal / distance_mm,
        ],
        axis=-1,
    )
    return pts, np.einsum("fij,fj->fi", rot, g)
