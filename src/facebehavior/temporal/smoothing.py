"""Temporal median smoothing of per-frame predictions (AUNets §4; AffWildNet's post-processing).

AUNets filters each AU's per-frame output with a centred running median over time (window 7 was
best of 3–11 on BP4D); the AffWildNet family median-filters per-frame valence/arousal the same way.
:func:`median_smooth` applies that filter to an analysis table, separately for every
``(source, face_id)`` track, in frame order, so faces never bleed into each other.

Windows are counted in *analysed rows of the track*, not video frames: with ``--every N`` a window
of 7 spans 7·N frames. At the ends of a track the window shrinks symmetrically as far as needed
(the median of the samples that exist), so the first and last values are never padded with
invented zeros. Gaps in a track (frames where the face was lost) are not bridged: the track is
split wherever consecutive rows are more than ``max_gap`` frames apart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["median_filter_1d", "median_smooth", "default_smooth_columns"]

logger = logging.getLogger(__name__)


def median_filter_1d(x: np.ndarray, window: int) -> np.ndarray:
    """Centred running median along axis 0 with shrinking windows at both ends.

    Args:
        x: ``(T,)`` or ``(T, K)`` values; NaN entries are ignored inside each window (a window of
            only NaN gives NaN).
        window: odd window length ≥ 1.

    Returns:
        Array of ``x``'s shape, float64.

    Raises:
        ValueError: ``window`` is even or smaller than 1.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the median window must be an odd number >= 1, got {window}")
    a = np.asarray(x, dtype=np.float64)
    squeeze = a.ndim == 1
    if squeeze:
        a = a[:, None]
    t = a.shape[0]
    half = window // 2
    out = np.empty_like(a)
    if t == 0:
        return out[:, 0] if squeeze else out
    # Interior rows: one vectorised sliding window; the 2·half edge rows shrink symmetrically.
    if t >= window:
        view = np.lib.stride_tricks.sliding_window_view(a, window, axis=0)  # (T - w + 1, K, w)
        with np.errstate(all="ignore"):
            out[half : t - half] = _nanmedian(view)
    for i in [*range(min(half, t)), *range(max(t - half, half), t)]:
        r = min(i, t - 1 - i, half)
        with np.errstate(all="ignore"):
            out[i] = _nanmedian(a[i - r : i + r + 1].T)
    return out[:, 0] if squeeze else out


def _nanmedian(windows: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN (NaN where a window holds only NaN), without warnings."""
    if not np.isnan(windows).any():
        return np.median(windows, axis=-1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(windows, axis=-1)


def default_smooth_columns(columns: Sequence[str]) -> list[str]:
    """The prediction columns worth smoothing: expression/AU/compound scores and valence/arousal."""
    scores = ("expr_", "compound_", "geom_")
    au = ("_prob", "_intensity", "_c", "_r", "_geom")
    return [
        c
        for c in columns
        if c.startswith(scores) or c in ("valence", "arousal") or (c.startswith("AU") and c.endswith(au))
    ]


def median_smooth(
    table: Any,
    window: int = 7,
    *,
    columns: Sequence[str] | None = None,
    max_gap: int | None = None,
    suffix: str = "",
) -> Any:
    """Median-filter prediction columns of an analysis table over time, per face track.

    Args:
        table: ``pandas.DataFrame`` with ``source``, ``face_id`` and ``frame`` columns (the output
            of ``facebehavior analyze`` / ``Analyzer.analyze``).
        window: odd window length in analysed rows (7 = AUNets' best on BP4D).
        columns: numeric columns to filter (default: :func:`default_smooth_columns`). Label columns
            such as ``expression`` are re-derived from the smoothed ``expr_*`` probabilities when
            those are smoothed in place.
        max_gap: split a track where consecutive rows are more than this many frames apart
            (default: ``3 ×`` the track's median frame step).
        suffix: ``""`` replaces the columns; e.g. ``"_smooth"`` adds ``<column>_smooth`` instead.

    Returns:
        A new DataFrame (rows in the input order).

    Raises:
        KeyError: a required or requested column is missing.
        ValueError: bad ``window``.
    """
    for c in ("source", "face_id", "frame"):
        if c not in table.columns:
            raise KeyError(
                f"median_smooth needs a {c!r} column (an analysis table); got {list(table.columns)}"
            )
    cols = list(columns) if columns is not None else default_smooth_columns(list(table.columns))
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the table")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the median window must be an odd number >= 1, got {window}")
    out = table.copy()
    if not cols or len(table) == 0:
        return out
    values = table[cols].to_numpy(dtype=np.float64)
    smoothed = values.copy()
    frames = table["frame"].to_numpy()
    for _, idx in table.groupby(["source", "face_id"], sort=False).indices.items():
        idx = idx[np.argsort(frames[idx], kind="stable")]
        f = frames[idx]
        steps = np.diff(f)
        gap = max_gap if max_gap is not None else 3 * max(int(np.median(steps)) if len(steps) else 1, 1)
        for seg in np.split(idx, np.flatnonzero(steps > gap) + 1):
            smoothed[seg] = median_filter_1d(values[seg], window)
    for k, c in enumerate(cols):
        out[f"{c}{suffix}"] = smoothed[:, k].astype(
            table[c].dtype if table[c].dtype.kind == "f" else np.float64
        )
    if not suffix:
        # Arg-max labels follow their smoothed scores.
        for label, prefix in (("expression", "expr_"), ("compound", "compound_score_")):
            ks = [k for k, c in enumerate(cols) if c.startswith(prefix)]
            if label in table.columns and ks:
                names = np.array([cols[k].removeprefix(prefix) for k in ks], dtype=object)
                out[label] = names[np.nan_to_num(smoothed[:, ks], nan=-np.inf).argmax(axis=1)]
    logger.debug("median-smoothed %d columns with window %d", len(cols), window)
    return out
