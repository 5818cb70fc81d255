"""Rows: a batch's faces and their columns as a pandas DataFrame (the pipeline's very end)."""

from __future__ import annotations

from typing import Any

import numpy as np

from facebehavior import schema
from facebehavior.pipeline.base import Batch

__all__ = ["to_frame", "empty_frame"]

_INT_COLUMNS = {"frame": -1, "face_id": -1, schema.SUCCESS_COLUMN: 0}


def to_frame(batch: Batch, columns: list[str], *, empty_frames: bool = True) -> Any:
    """One row per face of ``batch`` and, with ``empty_frames``, one per frame without a face.

    A frame without a face (none found, or every face skipped) gets ``success`` 0, ``face_id``
    -1, ``confidence`` 0 and NaN (empty labels) in every measure, so a frame count or a "share of
    frames smiling" needs no re-indexing (OpenFace writes every frame the same way). Rows are in
    frame order; a frame's faces by descending confidence.

    Returns:
        pandas DataFrame with ``columns``.
    """
    import pandas as pd

    faces, frames = batch.faces, batch.frames
    f = len(faces)
    blank = np.setdiff1d(np.arange(len(frames)), faces.frame_index) if empty_frames else np.zeros(0, int)
    if f == 0 and blank.size == 0:
        return empty_frame(columns)
    fi = np.concatenate([faces.frame_index, blank]).astype(np.int64)
    order = np.argsort(fi, kind="stable")
    fi = fi[order]
    face_cols: dict[str, np.ndarray] = {
        "face_id": faces.face_id,
        schema.SUCCESS_COLUMN: np.ones(f, np.int64),
        schema.CONFIDENCE_COLUMN: faces.scores,
        **{name: faces.boxes[:, k] for k, name in enumerate(("x1", "y1", "x2", "y2"))},
    }
    for k, name in enumerate(schema.KEYPOINTS_5):
        face_cols[f"{name}_x"] = faces.keypoints[:, k, 0]
        face_cols[f"{name}_y"] = faces.keypoints[:, k, 1]
    face_cols.update(batch.columns)
    out: dict[str, np.ndarray] = {
        "source": np.full(fi.size, frames.source, dtype=object),
        "frame": frames.index[fi].astype(np.int64),
        "timestamp": frames.timestamp[fi].astype(np.float64),
    }
    for name in columns:
        if name in out:
            continue
        v = np.asarray(face_cols[name])
        if name == schema.CONFIDENCE_COLUMN:
            fill: Any = 0.0
        elif name in _INT_COLUMNS:
            fill = _INT_COLUMNS[name]
        elif v.dtype == object:
            fill = None
        else:
            v, fill = v.astype(np.float32, copy=False), np.nan
        pad = np.full(blank.size, fill, dtype=v.dtype)
        out[name] = np.concatenate([v, pad])[order]
    return pd.DataFrame(out)[columns]


def empty_frame(columns: list[str]) -> Any:
    """A DataFrame with ``columns`` and no rows, typed as the filled ones would be."""
    import pandas as pd

    dtypes = {"source": object, "frame": np.int64, "timestamp": np.float64, "face_id": np.int64}
    dtypes[schema.SUCCESS_COLUMN] = np.int64
    dtypes[schema.EXPRESSION_LABEL_COLUMN] = object
    dtypes["compound"] = object  # compound.COMPOUND_LABEL_COLUMN
    return pd.DataFrame({c: pd.Series([], dtype=dtypes.get(c, np.float32)) for c in columns})
