"""Challenge composite scores (ABAW, EmotioNet), built from :mod:`facebehavior.metrics.classification`.

* ABAW (Aff-Wild2, FG 2020) expressions: ``E_total = 0.67 · F1 + 0.33 · accuracy`` with F1 the macro F1
  over the expression classes and accuracy the total accuracy.
* ABAW AUs: ``0.5 · F1 + 0.5 · accuracy`` with F1 the mean per-AU F1 and accuracy the accuracy over all
  (frame, AU) decisions (equal to the mean per-AU accuracy when every AU is annotated on every frame).
* EmotioNet 2017 AUs: mean of (mean per-AU F1) and (mean per-AU accuracy).
* EmotioNet 2017 expressions: mean of (macro F1) and UAR.
"""

from __future__ import annotations

import numpy as np

from facebehavior.metrics._common import ArrayLike
from facebehavior.metrics.classification import (
    _au_counts,
    accuracy,
    au_accuracy_mean,
    au_f1_mean,
    macro_f1,
    uar,
)
from facebehavior.registry import METRICS

__all__ = ["abaw_expr_score", "abaw_au_score", "emotionet_au_score", "emotionet_expr_score"]


@METRICS.register("abaw_expr")
def abaw_expr_score(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> float:
    """ABAW expression score ``0.67 · macro-F1 + 0.33 · accuracy``.

    Args:
        y_true: ``(N,)`` labels; y_pred: ``(N,)`` labels or ``(N, C)`` scores.
        num_classes: average F1 over all C classes (recommended: 7, or 8 with contempt).
    """
    return 0.67 * macro_f1(y_true, y_pred, num_classes) + 0.33 * accuracy(y_true, y_pred)


@METRICS.register("abaw_au")
def abaw_au_score(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, threshold: float = 0.5
) -> float:
    """ABAW AU score ``0.5 · mean per-AU F1 + 0.5 · accuracy over all annotated (frame, AU) pairs``."""
    tp, fp, fn, tn = _au_counts(y_true, y_pred, mask, threshold)
    acc = float((tp.sum() + tn.sum()) / (tp.sum() + fp.sum() + fn.sum() + tn.sum()))
    return 0.5 * au_f1_mean(y_true, y_pred, mask, threshold=threshold) + 0.5 * acc


@METRICS.register("emotionet_au")
def emotionet_au_score(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, threshold: float = 0.5
) -> float:
    """EmotioNet challenge AU score: mean of (mean per-AU F1) and (mean per-AU accuracy)."""
    f1 = au_f1_mean(y_true, y_pred, mask, threshold=threshold)
    return float(np.mean([f1, au_accuracy_mean(y_true, y_pred, mask, threshold=threshold)]))


@METRICS.register("emotionet_expr")
def emotionet_expr_score(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> float:
    """EmotioNet challenge expression score: mean of macro-F1 and UAR."""
    return 0.5 * (macro_f1(y_true, y_pred, num_classes) + uar(y_true, y_pred, num_classes))
