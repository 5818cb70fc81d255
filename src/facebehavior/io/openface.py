"""OpenFace 2.0 FeatureExtraction-compatible tables.

:func:`to_openface` turns facebehavior's canonical rows into OpenFace 2.0 FeatureExtraction's CSV
layout: its 714 column names in its order (``Utilities/src/RecorderCSV.cpp``, ``RecorderCSV::Open``,
with every output switched on: 56 eye landmarks, 68 face landmarks, 34 PDM modes, its 17 intensity and
18 presence AUs, names sorted as it sorts them), its units and its conventions. Columns this package
cannot estimate are present and NaN, never filled with look-alike values. Per column family:

====================================  ===============================================================
OpenFace columns                      from
====================================  ===============================================================
``frame``                             ``frame + 1`` (OpenFace counts from 1)
``face_id``, ``timestamp``            same (seconds; 0 for still images)
``confidence``                        ``confidence``, else ``det_score`` (face/landmark model, 0-1)
``success``                           ``success``, else 1 where the row has a face (``det_score``)
``gaze_*``, ``eye_lmk_*``             same names (``face.gaze``; NaN without Face Mesh V2; the
                                      pupil ring ``eye_lmk_*_20-27``, ``_48-55`` is always NaN)
``pose_Tx/Ty/Tz`` (mm)                same names (``face.camera``), else NaN
``pose_Rx/Ry/Rz`` (radians)           ``pose_pitch/yaw/roll`` in radians: the same Euler
                                      convention (R = Rx·Ry·Rz, x right, y down, z away), weak
                                      perspective (OpenFace corrects for the face's off-axis
                                      position; near the image centre the two agree)
``x_*, y_*`` (px), ``X/Y/Z_*`` (mm)   same names (``face.camera.landmark_output_columns``)
``p_scale … p_ty``, ``p_0 … p_33``    NaN: parameters of OpenFace's own point-distribution model
``AU*_r`` (0-5)                       ``AU<n>_intensity`` of the model, else the geometric
                                      ``AU<n>_intensity_geom`` (``--geometry``), else NaN; never made
                                      up from probabilities; clipped to [0, 5]
``AU*_c`` (0/1)                       ``AU<n>_prob >= 0.5`` (the package's decision threshold); NaN
                                      where the model has no such AU (AU14, AU28 with the default
                                      model) or the row has no face
====================================  ===============================================================

Rows where ``success`` is 0 keep NaN measures (OpenFace writes zeros there; filter on ``success``
as its documentation advises either way).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from facebehavior.schema import (
    CONFIDENCE_COLUMN,
    POSE_TRANSLATION_COLUMNS,
    SUCCESS_COLUMN,
    eye_landmark_columns,
    gaze_columns,
    landmark68_columns,
)

__all__ = [
    "OPENFACE_AU_INTENSITY",
    "OPENFACE_AU_PRESENCE",
    "OPENFACE_PDM_MODES",
    "AU_PRESENCE_THRESHOLD",
    "openface_columns",
    "to_openface",
]

# OpenFace 2.0's AU sets (its Output Format documentation; the CSV lists each set sorted by name).
OPENFACE_AU_INTENSITY: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)
OPENFACE_AU_PRESENCE: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)
OPENFACE_PDM_MODES = 34  # non-rigid modes of its In-the-Wild 68-point PDM (p_0 … p_33)
AU_PRESENCE_THRESHOLD = 0.5


def openface_columns() -> list[str]:
    """OpenFace 2.0 FeatureExtraction's 714 CSV columns, in order."""
    cols = ["frame", "face_id", "timestamp", "confidence", "success"]
    cols += gaze_columns() + eye_landmark_columns() + eye_landmark_columns(three_d=True)
    cols += ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    cols += landmark68_columns() + landmark68_columns(three_d=True)
    cols += ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"] + [
        f"p_{i}" for i in range(OPENFACE_PDM_MODES)
    ]
    cols += [f"AU{n:02d}_r" for n in OPENFACE_AU_INTENSITY] + [f"AU{n:02d}_c" for n in OPENFACE_AU_PRESENCE]
    return cols


def _float(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=np.float64)


def to_openface(df: pd.DataFrame, *, extra_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Convert canonical facebehavior rows to OpenFace 2.0 FeatureExtraction's table.

    Args:
        df: rows as ``Analyzer.analyze`` returns them (``column_style="facebehavior"`` names:
            ``frame``, ``face_id``, ``pose_pitch``, ``AU12_prob``, ``AU12_intensity`` …), one source.
        extra_columns: canonical columns to append after OpenFace's 714 (e.g. ``("source",)`` for a
            table holding several inputs; OpenFace writes one file per input). They keep their names.

    Returns:
        DataFrame with exactly :func:`openface_columns` (+ ``extra_columns``) in that order, one row per
        input row, units and conventions as in the module docstring.

    Raises:
        TypeError: ``df`` is not a DataFrame.
        ValueError: ``frame`` is missing, an extra column is missing, or ``df`` holds several sources
            and ``"source"`` is not among ``extra_columns``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(
            f"to_openface expects a pandas DataFrame of facebehavior rows, got {type(df).__name__}"
        )
    if "frame" not in df.columns:
        raise ValueError(
            "to_openface needs the 'frame' column of facebehavior's output (0-based frame index)"
        )
    missing = [c for c in extra_columns if c not in df.columns]
    if missing:
        raise ValueError(f"extra_columns {missing} are not in the table; it has {list(df.columns)[:12]} ...")
    if "source" in df.columns and df["source"].nunique(dropna=True) > 1 and "source" not in extra_columns:
        raise ValueError(
            f"the table holds {df['source'].nunique()} sources but an OpenFace CSV describes one input; "
            "convert each source on its own or pass extra_columns=('source',)"
        )
    n = len(df)
    out: dict[str, np.ndarray] = {}
    frame = pd.to_numeric(df["frame"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(frame).any():
        raise ValueError("'frame' holds missing or non-numeric values")
    out["frame"] = frame.astype(np.int64) + 1
    face_id = _float(df, "face_id")
    out["face_id"] = face_id.astype(np.int64) if np.isfinite(face_id).all() else face_id
    out["timestamp"] = np.nan_to_num(_float(df, "timestamp"), nan=0.0) if "timestamp" in df else np.zeros(n)
    conf = _float(df, CONFIDENCE_COLUMN) if CONFIDENCE_COLUMN in df.columns else _float(df, "det_score")
    out["confidence"] = conf
    if SUCCESS_COLUMN in df.columns:
        success = np.nan_to_num(_float(df, SUCCESS_COLUMN), nan=0.0)
    else:
        success = np.isfinite(_float(df, "det_score")).astype(np.float64)
    out["success"] = (success > 0).astype(np.int64)
    for name in gaze_columns() + eye_landmark_columns() + eye_landmark_columns(three_d=True):
        out[name] = _float(df, name)
    for name in POSE_TRANSLATION_COLUMNS:
        out[name] = _float(df, name)
    for of, ours in (("pose_Rx", "pose_pitch"), ("pose_Ry", "pose_yaw"), ("pose_Rz", "pose_roll")):
        out[of] = np.deg2rad(_float(df, ours))
    for name in landmark68_columns() + landmark68_columns(three_d=True):
        out[name] = _float(df, name)
    for name in ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"] + [
        f"p_{i}" for i in range(OPENFACE_PDM_MODES)
    ]:
        out[name] = np.full(n, np.nan)
    for au in OPENFACE_AU_INTENSITY:
        src = next(
            (c for c in (f"AU{au:02d}_intensity", f"AU{au:02d}_intensity_geom") if c in df.columns), None
        )
        out[f"AU{au:02d}_r"] = np.clip(_float(df, src), 0.0, 5.0) if src else np.full(n, np.nan)
    for au in OPENFACE_AU_PRESENCE:
        p = _float(df, f"AU{au:02d}_prob")
        out[f"AU{au:02d}_c"] = np.where(
            np.isfinite(p), (p >= AU_PRESENCE_THRESHOLD).astype(np.float64), np.nan
        )
    table = pd.DataFrame(out, columns=openface_columns(), index=df.index)
    for c in extra_columns:
        table[c] = df[c].to_numpy()
    return table.reset_index(drop=True)
