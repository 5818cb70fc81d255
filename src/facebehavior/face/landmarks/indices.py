"""Index constants into MediaPipe's 468-point FaceMesh topology (and the 478-point topology of
Face Mesh V2, which appends ten iris points), defined once.

Everything that picks FaceMesh points by number (eye centres, mouth corners, ROI tracking,
head pose, AU geometry, drawing) reads them from here.

Sidedness is subject-centric, as in MediaPipe: ``RIGHT_*`` is the subject's right, which appears
on the *left* of a non-mirrored image (checked on the fixture photos in ``tests/test_facemesh.py``,
where every ``RIGHT_EYE`` centre lies left of the ``LEFT_EYE`` centre).

The contour edge lists are MediaPipe's ``face_mesh_connections.py`` (Apache-2.0, The MediaPipe
Authors); the point sets are the vertices those edges use. Single points (``NOSE_TIP`` ...) are
the conventional MediaPipe picks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "NUM_POINTS",
    "NUM_POINTS_V2",
    "LIPS_EDGES",
    "LEFT_EYE_EDGES",
    "RIGHT_EYE_EDGES",
    "LEFT_EYEBROW_EDGES",
    "RIGHT_EYEBROW_EDGES",
    "FACE_OVAL_EDGES",
    "LIPS",
    "LIPS_OUTER",
    "LIPS_INNER",
    "LEFT_EYE",
    "RIGHT_EYE",
    "LEFT_EYE_UPPER",
    "LEFT_EYE_LOWER",
    "RIGHT_EYE_UPPER",
    "RIGHT_EYE_LOWER",
    "LEFT_EYEBROW",
    "RIGHT_EYEBROW",
    "FACE_OVAL",
    "NOSE_RIDGE",
    "NOSE_TIP",
    "NOSE_BOTTOM",
    "CHIN",
    "FOREHEAD",
    "MOUTH_RIGHT",
    "MOUTH_LEFT",
    "UPPER_LIP_TOP",
    "LOWER_LIP_BOTTOM",
    "UPPER_LIP_INNER",
    "LOWER_LIP_INNER",
    "RIGHT_EYE_OUTER",
    "RIGHT_EYE_INNER",
    "LEFT_EYE_INNER",
    "LEFT_EYE_OUTER",
    "RIGHT_EYE_TOP",
    "RIGHT_EYE_BOTTOM",
    "LEFT_EYE_TOP",
    "LEFT_EYE_BOTTOM",
    "ROI_ROTATION_START",
    "ROI_ROTATION_END",
    "RIGHT_IRIS_CENTER",
    "RIGHT_IRIS",
    "LEFT_IRIS_CENTER",
    "LEFT_IRIS",
    "MESH_TO_68",
    "landmarks68",
]

NUM_POINTS = 468
NUM_POINTS_V2 = 478  # Face Mesh V2: the 468 points above, then the two irises (468-477)


def _vertices(edges: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    seen: dict[int, None] = {}
    for a, b in edges:
        seen.setdefault(a)
        seen.setdefault(b)
    return tuple(seen)


# --- Contour edges (MediaPipe face_mesh_connections.py) ------------------------------------
LIPS_EDGES: tuple[tuple[int, int], ...] = (
    (61, 146), (146, 91), (91, 181), (181, 84), (84, 17), (17, 314), (314, 405), (405, 321),
    (321, 375), (375, 291), (61, 185), (185, 40), (40, 39), (39, 37), (37, 0), (0, 267),
    (267, 269), (269, 270), (270, 409), (409, 291), (78, 95), (95, 88), (88, 178), (178, 87),
    (87, 14), (14, 317), (317, 402), (402, 318), (318, 324), (324, 308), (78, 191), (191, 80),
    (80, 81), (81, 82), (82, 13), (13, 312), (312, 311), (311, 310), (310, 415), (415, 308),
)  # fmt: skip
LEFT_EYE_EDGES: tuple[tuple[int, int], ...] = (
    (263, 249), (249, 390), (390, 373), (373, 374), (374, 380), (380, 381), (381, 382),
    (382, 362), (263, 466), (466, 388), (388, 387), (387, 386), (386, 385), (385, 384),
    (384, 398), (398, 362),
)  # fmt: skip
RIGHT_EYE_EDGES: tuple[tuple[int, int], ...] = (
    (33, 7), (7, 163), (163, 144), (144, 145), (145, 153), (153, 154), (154, 155), (155, 133),
    (33, 246), (246, 161), (161, 160), (160, 159), (159, 158), (158, 157), (157, 173),
    (173, 133),
)  # fmt: skip
LEFT_EYEBROW_EDGES: tuple[tuple[int, int], ...] = (
    (276, 283), (283, 282), (282, 295), (295, 285), (300, 293), (293, 334), (334, 296),
    (296, 336),
)  # fmt: skip
RIGHT_EYEBROW_EDGES: tuple[tuple[int, int], ...] = (
    (46, 53), (53, 52), (52, 65), (65, 55), (70, 63), (63, 105), (105, 66), (66, 107),
)  # fmt: skip
FACE_OVAL_EDGES: tuple[tuple[int, int], ...] = (
    (10, 338), (338, 297), (297, 332), (332, 284), (284, 251), (251, 389), (389, 356),
    (356, 454), (454, 323), (323, 361), (361, 288), (288, 397), (397, 365), (365, 379),
    (379, 378), (378, 400), (400, 377), (377, 152), (152, 148), (148, 176), (176, 149),
    (149, 150), (150, 136), (136, 172), (172, 58), (58, 132), (132, 93), (93, 234),
    (234, 127), (127, 162), (162, 21), (21, 54), (54, 103), (103, 67), (67, 109), (109, 10),
)  # fmt: skip

# --- Point sets ------------------------------------------------------------------------------
LIPS: tuple[int, ...] = _vertices(LIPS_EDGES)
# Closed loops, starting at the subject's right mouth corner, going over the top then back below.
LIPS_OUTER: tuple[int, ...] = (
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146,
)  # fmt: skip
LIPS_INNER: tuple[int, ...] = (
    78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95,
)  # fmt: skip
# Eye contours (16 points each): the eye centre is their mean.
RIGHT_EYE: tuple[int, ...] = _vertices(RIGHT_EYE_EDGES)
LEFT_EYE: tuple[int, ...] = _vertices(LEFT_EYE_EDGES)
# Lids, corner to corner (outer → inner for the upper lid order given by MediaPipe's edges).
RIGHT_EYE_UPPER: tuple[int, ...] = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER: tuple[int, ...] = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER: tuple[int, ...] = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER: tuple[int, ...] = (263, 249, 390, 373, 374, 380, 381, 382, 362)
# Brows: upper edge (outer → inner) then lower edge (outer → inner).
RIGHT_EYEBROW: tuple[int, ...] = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
LEFT_EYEBROW: tuple[int, ...] = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)
# Face outline, closed loop clockwise in the image starting at the forehead top.
FACE_OVAL: tuple[int, ...] = _vertices(FACE_OVAL_EDGES)
# Nose bridge from between the eyes down to the tip.
NOSE_RIDGE: tuple[int, ...] = (168, 6, 197, 195, 5, 4, 1)

# --- Single points ---------------------------------------------------------------------------
NOSE_TIP = 1
NOSE_BOTTOM = 2  # subnasale, where the septum meets the upper lip
CHIN = 152  # menton, lowest point of the face oval
FOREHEAD = 10  # top of the face oval
MOUTH_RIGHT = 61  # subject's right mouth corner (image left)
MOUTH_LEFT = 291  # subject's left mouth corner (image right)
UPPER_LIP_TOP = 0
LOWER_LIP_BOTTOM = 17
UPPER_LIP_INNER = 13
LOWER_LIP_INNER = 14
RIGHT_EYE_OUTER = 33
RIGHT_EYE_INNER = 133
LEFT_EYE_INNER = 362
LEFT_EYE_OUTER = 263
RIGHT_EYE_TOP = 159
RIGHT_EYE_BOTTOM = 145
LEFT_EYE_TOP = 386
LEFT_EYE_BOTTOM = 374

# MediaPipe's face_landmark_landmarks_to_roi: the ROI's rotation follows the line from the right
# eye's outer corner to the left eye's outer corner.
ROI_ROTATION_START = RIGHT_EYE_OUTER
ROI_ROTATION_END = LEFT_EYE_OUTER

# --- Irises (Face Mesh V2 only) ----------------------------------------------------------------
# Each iris is a centre followed by four contour points (MediaPipe's FACEMESH_RIGHT_IRIS /
# FACEMESH_LEFT_IRIS edges use 469-472 and 474-477). Sidedness is subject-centric like the eyes:
# on the fixture photos 468 lies inside the RIGHT_EYE contour (tests/test_face_landmarker.py).
RIGHT_IRIS_CENTER = 468
RIGHT_IRIS: tuple[int, ...] = (469, 470, 471, 472)
LEFT_IRIS_CENTER = 473
LEFT_IRIS: tuple[int, ...] = (474, 475, 476, 477)


# --- iBUG 300-W 68-point subset ----------------------------------------------------------------
# FaceMesh vertex(es) for each of the 68 iBUG / dlib / OpenFace points, in iBUG order (0-16 jaw from
# the subject's right ear to the left ear, 17-21 right brow, 22-26 left brow, 27-30 nose bridge,
# 31-35 nostrils, 36-41 right eye, 42-47 left eye, 48-59 outer lips, 60-67 inner lips; "right" is
# the subject's, on the image left). Where a 68-point lies between two mesh vertices it is their
# mean. Source: Peizhi Yan, Mediapipe_2_Dlib_Landmarks (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks,
# mp2dlib.py, 2024, MIT licence), with one change: the outer brow ends 17 and 26 are vertices 70 and
# 300 (as in ros4hri/hri_face_detect's FaceMesh table) instead of 156 and 383, which on the faces of
# samples/face.jpg lie at the height of the upper eyelid, not on the brow. The geometric ordering is
# checked on FaceMesh output for samples/face.jpg (tests/test_gaze.py).
MESH_TO_68: tuple[tuple[int, ...], ...] = (
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),  # jaw 0-8
    (400,), (379,), (365,), (397, 288), (361,), (323,), (454,), (356,),  # jaw 9-16
    (70,), (63,), (105,), (66,), (107,),  # right brow, outer -> inner
    (336,), (296,), (334,), (293,), (300,),  # left brow, inner -> outer
    (168, 6), (197, 195), (5,), (4,),  # nose bridge, top -> tip
    (98,), (97,), (2,), (326,), (327,),  # nostrils, right -> left
    (33,), (160,), (158,), (133,), (153,), (144,),  # right eye, outer corner, upper lid, inner, lower
    (362,), (385,), (387,), (263,), (373,), (380,),  # left eye, inner corner, upper lid, outer, lower
    (61,), (39,), (37,), (0,), (267,), (269,), (291,),  # outer lips, right corner over the top
    (321,), (314,), (17,), (84,), (91,),  # outer lips, back along the bottom
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),  # inner lips
)  # fmt: skip


def landmarks68(points: Any) -> np.ndarray:
    """The 68-point iBUG subset of FaceMesh landmarks (:data:`MESH_TO_68`).

    Args:
        points: (F, 468 | 478, C) or (468 | 478, C) FaceMesh / Face Mesh V2 landmarks, any units
            and any number of coordinates C (x, y or x, y, z); numpy array or torch tensor.

    Returns:
        (F, 68, C) float64 in the units of ``points`` (a single face gives F = 1).

    Raises:
        ValueError: ``points`` is not a FaceMesh topology.
    """
    if hasattr(points, "detach"):
        points = points.detach().cpu().numpy()
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] not in (NUM_POINTS, NUM_POINTS_V2):
        raise ValueError(
            f"points must be (F, {NUM_POINTS} or {NUM_POINTS_V2}, C) FaceMesh landmarks, got {arr.shape}"
        )
    # Every entry as a pair (a single vertex twice), so one gather + mean serves all 68.
    pairs = np.array([(m[0], m[-1]) for m in MESH_TO_68], dtype=np.int64)
    return arr[:, pairs].mean(axis=2)
