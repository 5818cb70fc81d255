"""The vocabulary of facial behaviour, defined once.

Every AU number, expression name, dataset AU subset and output column name used anywhere in
facebehavior comes from this module. Adapters map their corpus' own orders onto these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ActionUnit",
    "AU_CATALOGUE",
    "AU_NUMBERS",
    "AUS_17",
    "BLENDSHAPE_NAMES",
    "IRIS_COLUMNS",
    "landmark_feature_columns",
    "DATASET_AU_SUBSETS",
    "EXPRESSIONS_7",
    "EXPRESSIONS_8",
    "KEYPOINTS_5",
    "ColumnStyle",
    "au_column",
    "au_columns",
    "expression_columns",
    "face_columns",
    "get_au",
    "au_subset",
    "SUCCESS_COLUMN",
    "CONFIDENCE_COLUMN",
    "NUM_EYE_LANDMARKS",
    "POSE_TRANSLATION_COLUMNS",
    "landmark68_columns",
    "gaze_columns",
    "eye_landmark_columns",
]


@dataclass(frozen=True)
class ActionUnit:
    """One FACS action unit.

    Attributes:
        number: FACS number (e.g. 12).
        name: FACS name (e.g. "Lip Corner Puller").
        region: coarse face region: "brow", "eye", "nose", "cheek", "mouth", "chin" or "jaw".
    """

    number: int
    name: str
    region: str

    @property
    def code(self) -> str:
        """Zero-padded code, e.g. ``"AU01"``."""
        return f"AU{self.number:02d}"


# FACS names as in Ekman, Friesen & Hager (2002), the FACS manual.
AU_CATALOGUE: dict[int, ActionUnit] = {
    au.number: au
    for au in (
        ActionUnit(1, "Inner Brow Raiser", "brow"),
        ActionUnit(2, "Outer Brow Raiser", "brow"),
        ActionUnit(4, "Brow Lowerer", "brow"),
        ActionUnit(5, "Upper Lid Raiser", "eye"),
        ActionUnit(6, "Cheek Raiser", "cheek"),
        ActionUnit(7, "Lid Tightener", "eye"),
        ActionUnit(9, "Nose Wrinkler", "nose"),
        ActionUnit(10, "Upper Lip Raiser", "mouth"),
        ActionUnit(11, "Nasolabial Deepener", "mouth"),
        ActionUnit(12, "Lip Corner Puller", "mouth"),
        ActionUnit(14, "Dimpler", "mouth"),
        ActionUnit(15, "Lip Corner Depressor", "mouth"),
        ActionUnit(17, "Chin Raiser", "chin"),
        ActionUnit(20, "Lip Stretcher", "mouth"),
        ActionUnit(23, "Lip Tightener", "mouth"),
        ActionUnit(24, "Lip Pressor", "mouth"),
        ActionUnit(25, "Lips Part", "mouth"),
        ActionUnit(26, "Jaw Drop", "jaw"),
        ActionUnit(43, "Eyes Closed", "eye"),
        ActionUnit(45, "Blink", "eye"),
    )
}
AU_NUMBERS: tuple[int, ...] = tuple(sorted(AU_CATALOGUE))

# FaceBehaviorNet's union of AUs (SEEDS.md, facebehaviornet.txt).
AUS_17: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 15, 17, 20, 23, 24, 25, 26)

# Named AU subsets of each corpus / protocol, in the order the papers report them.
DATASET_AU_SUBSETS: dict[str, tuple[int, ...]] = {
    "facebehaviornet": AUS_17,
    "bp4d": (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24),
    "bp4d_plus": (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24),
    "disfa": (1, 2, 4, 6, 9, 12, 25, 26),
    "disfa_intensity": (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26),
    "fera2015_intensity": (6, 10, 12, 14, 17),
    "fera2017": (1, 4, 6, 7, 10, 12, 14, 15, 17, 23),
    "fera2017_intensity": (1, 4, 6, 10, 12, 14, 17),
    "affwild2": (1, 2, 4, 6, 12, 15, 20, 25),
    "abaw_au12": (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26),
    "emotionet": (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26),
    "fatauva": (1, 2, 4, 6, 7, 10, 12, 15, 17, 23, 24, 25, 26, 45),
}

# Canonical expression order (FaceBehaviorNet / Aff-Wild2 order); contempt is the optional 8th.
EXPRESSIONS_7: tuple[str, ...] = (
    "neutral",
    "anger",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
)
EXPRESSIONS_8: tuple[str, ...] = EXPRESSIONS_7 + ("contempt",)

# The five facial keypoints, subject-centric: "right_eye" is the subject's right eye, which
# appears on the *left* of a non-mirrored image. Order matches the ArcFace/InsightFace template.
KEYPOINTS_5: tuple[str, ...] = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")

# MediaPipe Face Landmarker's 52 blendshape scores in the model's output order (Blendshape V2;
# kBlendshapeNames of face_blendshapes_graph.cc, google-ai-edge/mediapipe, Apache-2.0): "_neutral"
# then 51 ARKit-style coefficients. Left/Right are the subject's sides (a mirrored image swaps
# them). Checked against the names MediaPipe's Tasks API returns (tests/test_face_landmarker.py).
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

ColumnStyle = Literal["facebehavior", "openface"]


def get_au(number: int) -> ActionUnit:
    """Return the catalogue entry for an AU number.

    Raises:
        KeyError: the AU is not in the catalogue; the message lists the valid numbers.
    """
    try:
        return AU_CATALOGUE[int(number)]
    except KeyError:
        raise KeyError(f"AU{number} is not in the catalogue; known AUs: {list(AU_NUMBERS)}") from None


def au_subset(name: str) -> tuple[int, ...]:
    """Return a named AU subset (e.g. ``"bp4d"``), raising with the valid names if unknown."""
    key = name.lower().replace("-", "_").replace("+", "_plus")
    if key not in DATASET_AU_SUBSETS:
        raise KeyError(f"unknown AU subset {name!r}; valid: {sorted(DATASET_AU_SUBSETS)}")
    return DATASET_AU_SUBSETS[key]


def au_column(au: int, kind: Literal["prob", "intensity"], style: ColumnStyle = "facebehavior") -> str:
    """Output column name for one AU.

    Args:
        au: FACS number.
        kind: ``"prob"`` (occurrence probability in [0, 1]) or ``"intensity"`` (0–5 scale).
        style: ``"facebehavior"`` gives ``AU12_prob`` / ``AU12_intensity``; ``"openface"`` gives
            OpenFace's ``AU12_c`` / ``AU12_r`` (zero-padded, e.g. ``AU01_r``).
    """
    get_au(au)
    if kind not in ("prob", "intensity"):
        raise ValueError(f"kind must be 'prob' or 'intensity', got {kind!r}")
    if style == "openface":
        return f"AU{au:02d}_{'c' if kind == 'prob' else 'r'}"
    if style == "facebehavior":
        return f"AU{au:02d}_{kind}"
    raise ValueError(f"style must be 'facebehavior' or 'openface', got {style!r}")


def au_columns(
    aus: tuple[int, ...] | list[int], kind: Literal["prob", "intensity"], style: ColumnStyle = "facebehavior"
) -> list[str]:
    """Column names for several AUs, in the given order."""
    return [au_column(a, kind, style) for a in aus]


def expression_columns(labels: tuple[str, ...] = EXPRESSIONS_8) -> list[str]:
    """Probability column per expression, e.g. ``expr_happiness``."""
    return [f"expr_{label}" for label in labels]


def face_columns(num_keypoints: int = 5) -> list[str]:
    """Columns every analysed face carries, whatever affect model runs (in output order)."""
    cols = ["source", "frame", "timestamp", "face_id", SUCCESS_COLUMN, CONFIDENCE_COLUMN]
    cols += ["x1", "y1", "x2", "y2"]
    names = KEYPOINTS_5 if num_keypoints == 5 else tuple(f"kp{i}" for i in range(num_keypoints))
    for n in names:
        cols += [f"{n}_x", f"{n}_y"]
    cols += ["pose_pitch", "pose_yaw", "pose_roll"]
    return cols


IRIS_COLUMNS: tuple[str, ...] = ("iris_right_x", "iris_right_y", "iris_left_x", "iris_left_y")


def landmark_feature_columns() -> list[str]:
    """Columns Face Mesh V2 adds: iris centres (frame pixels; subject's right, left) and blendshapes."""
    return list(IRIS_COLUMNS) + [f"bs_{n}" for n in BLENDSHAPE_NAMES]


# Column names of the affect outputs that are not per-AU / per-expression.
EXPRESSION_LABEL_COLUMN = "expression"
VALENCE_COLUMN = "valence"
AROUSAL_COLUMN = "arousal"


# Frame bookkeeping (issue #15): one row per analysed frame; ``success`` is 1 for a row with a face,
# 0 for a frame in which none was found (its measures NaN); ``confidence`` in [0, 1] is how sure the
# face/landmark model is of the face (OpenFace's names and meaning).
SUCCESS_COLUMN = "success"
CONFIDENCE_COLUMN = "confidence"

# Head position in millimetres, camera frame (x right, y down, z away from the camera), from
# ``facebehavior.face.camera.metric_landmarks``; OpenFace's names.
POSE_TRANSLATION_COLUMNS: tuple[str, ...] = ("pose_Tx", "pose_Ty", "pose_Tz")

# Eye-region landmarks per eye in OpenFace 2's layout (28 per eye: 0-7 iris ring, 8-19 eyelids,
# 20-27 pupil ring); eye 0 first, then eye 1 (``facebehavior.face.gaze``).
NUM_EYE_LANDMARKS = 56


def landmark68_columns(three_d: bool = False) -> list[str]:
    """Columns of the 68-point iBUG landmark subset, OpenFace's names and order.

    Args:
        three_d: False: ``x_0 … x_67, y_0 … y_67`` (frame pixels). True: ``X_0 … X_67, Y_0 … Y_67,
            Z_0 … Z_67`` (millimetres, camera frame: x right, y down, z away from the camera).
    """
    axes = ("X", "Y", "Z") if three_d else ("x", "y")
    return [f"{a}_{i}" for a in axes for i in range(68)]


def gaze_columns() -> list[str]:
    """Gaze columns, OpenFace's names and order.

    ``gaze_0_x/y/z`` and ``gaze_1_x/y/z`` are unit gaze vectors of eye 0 (the subject's right eye,
    on the image left) and eye 1 in the camera frame (x right, y down, z away from the camera; a
    look into the camera is (0, 0, -1)); ``gaze_angle_x/y`` are radians of their mean
    (``atan2(x, -z)``, ``atan2(y, -z)``: positive looking to the image right / down).
    """
    vec = [f"gaze_{e}_{a}" for e in (0, 1) for a in ("x", "y", "z")]
    return vec + ["gaze_angle_x", "gaze_angle_y"]


def eye_landmark_columns(three_d: bool = False) -> list[str]:
    """Eye-region landmark columns (56 points, OpenFace 2's layout), OpenFace's names and order.

    Args:
        three_d: False: ``eye_lmk_x_0 … eye_lmk_x_55, eye_lmk_y_0 … eye_lmk_y_55`` (frame pixels).
            True: ``eye_lmk_X_* , eye_lmk_Y_*, eye_lmk_Z_*`` (millimetres, camera frame).
    """
    axes = ("X", "Y", "Z") if three_d else ("x", "y")
    return [f"eye_lmk_{a}_{i}" for a in axes for i in range(NUM_EYE_LANDMARKS)]
