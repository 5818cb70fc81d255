"""Continuous-target metrics: CCC, MSE, RMSE, MAE, Pearson, ICC(3,1).

Inputs are ``(N,)`` (returns a float) or ``(N, K)`` (returns a ``(K,)`` array, one value per column, e.g.
valence and arousal, or one AU intensity per column). Lists, NumPy arrays and torch tensors give identical
results. All moments are population (1/N) moments unless stated.

Edge cases (defined, not accidental):

* empty input, NaN/inf, or shape mismatch → ``ValueError``;
* a constant column: Pearson is 0.0 (no linear association is measurable; scipy returns NaN);
  CCC is 0.0 when only one side is constant, 1.0 when both are the same constant (perfect agreement) and
  0.0 when they are different constants; ICC(3,1) is 1.0 when both raters give identical ratings and 0.0
  when ratings carry no between-target variance otherwise.
"""

from __future__ import annotations

import numpy as np

from facebehavior.metrics._common import ArrayLike, columns, pair, to_numpy
from facebehavior.registry import METRICS

__all__ = ["ccc", "mse", "rmse", "mae", "pearson", "icc", "icc_3_1"]


def _per_column(y_true: ArrayLike, y_pred: ArrayLike, fn) -> float | np.ndarray:
    t, p = pair(y_true, y_pred)
    out = np.array([fn(t2, p2) for t2, p2 in zip(columns(t).T, columns(p).T, strict=True)], dtype=np.float64)
    return float(out[0]) if t.ndim == 1 else out


def _ccc1(t: np.ndarray, p: np.ndarray) -> float:
    const_t, const_p = np.ptp(t) == 0, np.ptp(p) == 0
    if const_t and const_p:
        return 1.0 if t[0] == p[0] else 0.0
    mt, mp = t.mean(), p.mean()
    vt = 0.0 if const_t else np.mean((t - mt) ** 2)
    vp = 0.0 if const_p else np.mean((p - mp) ** 2)
    cov = 0.0 if (const_t or const_p) else np.mean((t - mt) * (p - mp))
    return float(2 * cov / (vt + vp + (mt - mp) ** 2))


@METRICS.register("ccc")
def ccc(y_true: ArrayLike, y_pred: ArrayLike) -> float | np.ndarray:
    """Concordance correlation coefficient ρ_c = 2 s_xy / (s_x² + s_y² + (x̄ − ȳ)²) (Lin 1989).

    Aff-Wild review formula 1; the VA metric of Aff-Wild, Aff-Wild2/ABAW, AffectNet (FaceBehaviorNet).

    Args:
        y_true: ``(N,)`` or ``(N, K)`` ground truth.
        y_pred: same shape.

    Returns:
        float in [−1, 1], or ``(K,)`` array.
    """
    return _per_column(y_true, y_pred, _ccc1)


@METRICS.register("mse")
def mse(y_true: ArrayLike, y_pred: ArrayLike) -> float | np.ndarray:
    """Mean squared error ``mean((y − ŷ)²)`` (per column for 2-D input)."""
    return _per_column(y_true, y_pred, lambda t, p: float(np.mean((t - p) ** 2)))


@METRICS.register("rmse")
def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float | np.ndarray:
    """Root mean squared error ``sqrt(mean((y − ŷ)²))``."""
    return _per_column(y_true, y_pred, lambda t, p: float(np.sqrt(np.mean((t - p) ** 2))))


@METRICS.register("mae")
def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float | np.ndarray:
    """Mean absolute error ``mean(|y − ŷ|)`` (ARL's AU-intensity metric)."""
    return _per_column(y_true, y_pred, lambda t, p: float(np.mean(np.abs(t - p))))


def _pearson1(t: np.ndarray, p: np.ndarray) -> float:
    if np.ptp(t) == 0 or np.ptp(p) == 0:
        return 0.0
    dt, dp = t - t.mean(), p - p.mean()
    r = float(np.sum(dt * dp) / np.sqrt(np.sum(dt * dt) * np.sum(dp * dp)))
    return max(-1.0, min(1.0, r))


@METRICS.register("pearson")
def pearson(y_true: ArrayLike, y_pred: ArrayLike) -> float | np.ndarray:
    """Pearson correlation coefficient (0.0 for a constant column, see module docstring)."""
    return _per_column(y_true, y_pred, _pearson1)


def icc_3_1(ratings: ArrayLike) -> float:
    """ICC(3,1) of Shrout & Fleiss (1979): two-way mixed, consistency, single rater.

    ``ICC(3,1) = (BMS − EMS) / (BMS + (k − 1) EMS)``, with BMS the between-targets mean square and EMS the
    residual mean square of the two-way ANOVA of an ``(n targets, k raters)`` matrix.

    Args:
        ratings: ``(n, k)`` with n ≥ 2 targets and k ≥ 2 raters.

    Returns:
        float (may be negative when raters disagree more than chance).
    """
    y = to_numpy(ratings, "ratings")
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 2:
        raise ValueError(f"ratings must be (n targets, k raters) with n, k >= 2, got {y.shape}")
    n, k = y.shape
    if np.all(y == y[:1, :]):  # every target rated identically: no between-target variance
        return 1.0 if np.ptp(y) == 0 else 0.0
    gm = y.mean()
    ss_rows = k * np.sum((y.mean(axis=1) - gm) ** 2)
    ss_cols = n * np.sum((y.mean(axis=0) - gm) ** 2)
    ss_err = np.sum((y - gm) ** 2) - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    ems = max(ss_err, 0.0) / ((n - 1) * (k - 1))
    return float((bms - ems) / (bms + (k - 1) * ems))


@METRICS.register("icc")
def icc(y_true: ArrayLike, y_pred: ArrayLike) -> float | np.ndarray:
    """ICC(3,1) between ground truth and prediction (the two "raters"), per column.

    ARL / FERA 2015 AU-intensity metric. For two raters it equals ``2 s_xy / (s_x² + s_y²)``.

    Args:
        y_true: ``(N,)`` or ``(N, K)`` intensities (N ≥ 2).
        y_pred: same shape.
    """
    return _per_column(y_true, y_pred, lambda t, p: icc_3_1(np.stack([t, p], axis=1)))
