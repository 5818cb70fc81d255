"""Person-specific calibration of per-frame signals (OpenFace-style dynamic calibration).

People differ at rest: one person's relaxed brows sit where another's are raised. OpenFace corrects
this by subtracting, per person and per AU, a low percentile of that person's predictions over the
video — most of the time a face is (close to) neutral, so a low percentile of an AU's activity is
that person's resting level. This module does the same, vectorised over channels, for any (F, C)
signal whose larger values mean "more of the AU": the signed geometric evidence of
:mod:`facebehavior.face.geometry`, or a network's AU intensities.

Two modes:

- **offline** (:func:`calibrate_offline`): the baseline is the percentile over the whole clip of each
  ``face_id``. Best estimate, but needs the whole clip first (not causal) and a face that is expressive
  for more than ``100 − percentile`` % of the clip gets part of its expression removed.
- **online** (:class:`PersonCalibrator`): causal; the baseline for frame t uses that face's frames
  up to and including t within a sliding window (``window`` frames). Its state lives in the object and
  is kept across chunks of the same video (never reset between chunks), so chunked and one-shot
  processing give identical results. During the first ``min_frames`` frames of a face the baseline is
  shrunk towards 0 (the population neutral), because a percentile of a few frames is noise; an
  expression held for longer than ``(100 − percentile)`` % of the window is gradually absorbed.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

__all__ = ["PersonCalibrator", "calibrate_offline", "split_eye_closure"]

DEFAULT_PERCENTILE = 25.0


def _check(face_ids: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    vals = np.asarray(values, dtype=np.float64)
    ids = np.asarray(face_ids)
    if vals.ndim != 2:
        raise ValueError(f"values must be (F, C), got shape {vals.shape}")
    if ids.shape != (vals.shape[0],):
        raise ValueError(f"face_ids must be (F,) = ({vals.shape[0]},) matching values, got shape {ids.shape}")
    if not np.isfinite(vals).all():
        raise ValueError("values contain NaN or inf; pass only frames where the face was measured")
    return ids, vals


def _window_percentile(win: np.ndarray, q: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Percentile (numpy's linear method) of the last ``valid[i]`` entries of each window.

    Args:
        win: (N, C, W) windows, NaN where a window reaches before the first frame.
        q: (C,) percentiles in [0, 100].
        valid: (N,) number of real (non-NaN) entries of each window.

    Returns:
        (N, C) percentiles.
    """
    srt = np.sort(win, axis=-1)  # NaNs sort to the end, so the k real values lead
    pos = (valid[:, None] - 1) * (q[None, :] / 100.0)  # (N, C) fractional rank
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, valid[:, None] - 1)
    frac = pos - lo
    v_lo = np.take_along_axis(srt, lo[..., None], axis=-1)[..., 0]
    v_hi = np.take_along_axis(srt, hi[..., None], axis=-1)[..., 0]
    return v_lo + frac * (v_hi - v_lo)


def calibrate_offline(
    face_ids: Any, values: Any, percentile: float | np.ndarray = DEFAULT_PERCENTILE
) -> tuple[np.ndarray, dict[Hashable, np.ndarray]]:
    """Subtract each person's whole-clip baseline.

    Args:
        face_ids: (F,) track id of each row.
        values: (F, C) signal, larger = more of the AU.
        percentile: scalar or (C,) percentile in [0, 100] taken as the resting level.

    Returns:
        ``(calibrated, baselines)``: (F, C) ``values − baseline[face_id]`` and ``{face_id: (C,) baseline}``.
    """
    ids, vals = _check(face_ids, values)
    q = np.broadcast_to(np.asarray(percentile, dtype=np.float64), (vals.shape[1],))
    out = np.empty_like(vals)
    baselines: dict[Hashable, np.ndarray] = {}
    for fid in np.unique(ids):
        rows = ids == fid
        base = np.array([np.percentile(vals[rows, c], q[c]) for c in range(vals.shape[1])])
        baselines[fid.item() if hasattr(fid, "item") else fid] = base
        out[rows] = vals[rows] - base
    return out, baselines


class PersonCalibrator:
    """Online (causal) per-person baseline, kept across the chunks of one video.

    Args:
        percentile: scalar or (C,) percentile of the recent frames taken as the resting level.
        window: frames of history per face (e.g. 30 s at 30 fps = 900).
        min_frames: frames before the baseline is trusted fully; below it the baseline is scaled by
            ``n / min_frames``.

    Example:
        >>> cal = PersonCalibrator(window=900)
        >>> for chunk in chunks:                      # doctest: +SKIP
        ...     calibrated = cal.update(chunk.face_ids, chunk.raw)
    """

    def __init__(
        self, *, percentile: float | np.ndarray = DEFAULT_PERCENTILE, window: int = 900, min_frames: int = 30
    ) -> None:
        if window < 1 or min_frames < 1:
            raise ValueError(f"window and min_frames must be >= 1, got {window}, {min_frames}")
        self.percentile = percentile
        self.window = int(window)
        self.min_frames = int(min_frames)
        self._history: dict[Hashable, np.ndarray] = {}
        self._count: dict[Hashable, int] = {}

    def state_dict(self) -> dict[str, Any]:
        """The per-face history ``update`` carries across chunks (copies; settings excluded).

        Returns:
            ``{"history": {face_id: (T, C) float64 last frames}, "count": {face_id: frames seen}}``.
        """
        return {
            "history": {k: v.copy() for k, v in self._history.items()},
            "count": {k: int(v) for k, v in self._count.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()`` output (e.g. of an interrupted run).

        Raises:
            ValueError: a key is missing, a history is not (T, C), or the two maps name different faces.
        """
        missing = {"history", "count"} - set(state)
        if missing:
            raise ValueError(
                f"calibrator state lacks {sorted(missing)}; pass PersonCalibrator.state_dict() output"
            )
        history = {k: np.array(v, dtype=np.float64) for k, v in state["history"].items()}
        count = {k: int(v) for k, v in state["count"].items()}
        if set(history) != set(count):
            raise ValueError(
                f"calibrator state: history has faces {sorted(history, key=str)}, count has "
                f"{sorted(count, key=str)}"
            )
        bad = [k for k, v in history.items() if v.ndim != 2]
        if bad:
            raise ValueError(f"calibrator state: history of face(s) {bad} is not (T, C)")
        self._history, self._count = history, count

    def baseline(self, face_id: Hashable) -> np.ndarray | None:
        """The baseline the next frame of ``face_id`` would get from history alone, or None if unseen."""
        hist = self._history.get(face_id)
        if hist is None:
            return None
        q = np.broadcast_to(np.asarray(self.percentile, dtype=np.float64), (hist.shape[1],))
        shrink = min(1.0, self._count[face_id] / self.min_frames)
        return shrink * np.array([np.percentile(hist[:, c], q[c]) for c in range(hist.shape[1])])

    def update(self, face_ids: Any, values: Any) -> np.ndarray:
        """Calibrate a chunk and remember it.

        Args:
            face_ids: (F,) track ids; rows of one face must be in temporal order.
            values: (F, C) signal for those rows.

        Returns:
            (F, C) ``values − baseline``, the baseline of each row computed from that face's rows up to
            and including it (within ``window``).
        """
        ids, vals = _check(face_ids, values)
        out = np.empty_like(vals)
        c = vals.shape[1]
        q = np.broadcast_to(np.asarray(self.percentile, dtype=np.float64), (c,))
        for fid in np.unique(ids):
            key = fid.item() if hasattr(fid, "item") else fid
            rows = np.flatnonzero(ids == fid)
            hist = self._history.get(key, np.empty((0, c)))
            if hist.shape[1] != c:
                raise ValueError(f"face_id {key!r}: got {c} channels, history has {hist.shape[1]}")
            n_new = rows.size
            z = np.concatenate([np.full((self.window - 1, c), np.nan), hist, vals[rows]])
            # window ending at each new row: (n_new, C, window), NaN-padded before the face's first frame
            win = np.lib.stride_tricks.sliding_window_view(z, self.window, axis=0)[-n_new:]
            valid = np.minimum(hist.shape[0] + np.arange(1, n_new + 1), self.window)
            base = _window_percentile(win, q, valid)
            seen = self._count.get(key, 0) + np.arange(1, n_new + 1)
            base *= np.minimum(1.0, seen / self.min_frames)[:, None]
            out[rows] = vals[rows] - base
            keep = self.window - 1
            merged = np.concatenate([hist, vals[rows]])
            self._history[key] = merged[max(0, merged.shape[0] - keep) :] if keep > 0 else merged[:0]
            self._count[key] = int(seen[-1])
        return out


def split_eye_closure(closed: Any, fps: float, max_blink_s: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Tell blinks (AU45) from sustained eye closure (AU43) in one face's frame sequence.

    Args:
        closed: (T,) bool, eyes closed per frame (e.g. geometric AU43 probability > 0.5).
        fps: frames per second of the sequence.
        max_blink_s: closures up to this long are blinks (a blink lasts ~0.1–0.4 s).

    Returns:
        ``(blink, sustained)``: (T,) bool each; every closed frame is in exactly one of them.
    """
    c = np.asarray(closed, dtype=bool)
    if c.ndim != 1:
        raise ValueError(f"closed must be (T,), got shape {c.shape}")
    edges = np.diff(np.concatenate([[0], c.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    run_len = np.zeros(c.shape[0], dtype=np.int64)
    run_len[c] = np.repeat(lengths, lengths)  # closed frames are exactly the runs, in order
    blink = c & (run_len <= max_blink_s * fps)
    return blink, c & ~blink
