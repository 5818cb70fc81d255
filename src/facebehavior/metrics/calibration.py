"""Calibration of probability outputs: reliability bins and expected calibration error (ECE).

Guo et al., "On Calibration of Modern Neural Networks", ICML 2017: predictions are grouped into
``bins`` equal-width confidence bins over [0, 1]; ECE = Σ_b (n_b / n) · |acc_b − conf_b|. For
multi-label AU outputs each (face, AU) pair is one binary prediction: ``conf`` is the predicted
probability of *presence* and ``acc`` the observed frequency of presence in the bin (the
reliability-diagram convention for binary outputs).
"""

from __future__ import annotations

import numpy as np

from facebehavior.metrics._common import ArrayLike, to_numpy
from facebehavior.registry import METRICS

__all__ = ["reliability_bins", "expected_calibration_error"]


def reliability_bins(
    y_true: ArrayLike, y_prob: ArrayLike, mask: ArrayLike | None = None, *, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin mean predicted probability, observed frequency and count.

    Args:
        y_true: 0/1 labels, any shape.
        y_prob: probabilities of the positive class, same shape.
        mask: optional bool, same shape; False entries are ignored.
        bins: number of equal-width bins over [0, 1] (the last bin includes 1).

    Returns:
        ``(confidence, frequency, count)``, each ``(bins,)``; empty bins have NaN confidence and
        frequency and count 0.
    """
    t = to_numpy(y_true, "y_true").astype(np.float64).ravel()
    p = to_numpy(y_prob, "y_prob").astype(np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_prob differ in size: {t.size} vs {p.size}")
    if mask is not None:
        m = to_numpy(mask, "mask").astype(bool).ravel()
        if m.shape != t.shape:
            raise ValueError(f"mask has {m.size} entries, expected {t.size}")
        t, p = t[m], p[m]
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError("y_prob must lie in [0, 1]")
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(idx, minlength=bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(idx, weights=p, minlength=bins) / count
        freq = np.bincount(idx, weights=t, minlength=bins) / count
    return conf, freq, count


@METRICS.register("expected_calibration_error")
def expected_calibration_error(
    y_true: ArrayLike, y_prob: ArrayLike, mask: ArrayLike | None = None, *, bins: int = 10
) -> float:
    """ECE over equal-width bins (see the module docstring); NaN when nothing is annotated."""
    conf, freq, count = reliability_bins(y_true, y_prob, mask, bins=bins)
    n = count.sum()
    if n == 0:
        return float("nan")
    ok = count > 0
    return float((count[ok] / n * np.abs(freq[ok] - conf[ok])).sum())
