"""Expression (single-label, multi-class) and AU (multi-label, binary) classification metrics.

Expression metrics take integer labels ``y_true`` ``(N,)`` and either labels ``(N,)`` or class scores
``(N, C)`` (arg-max is taken) as ``y_pred``. AU metrics take ``(N, A)`` binary ground truth and binary
predictions or probabilities (an AU is predicted present when ``y_pred >= threshold``), with an optional
``(N, A)`` annotation mask; a ``(N,)`` input is one AU.

Edge cases:

* empty input, NaN, shape mismatch or labels outside ``[0, num_classes)`` → ``ValueError`` (AU metrics
  accept any value, NaN included, where the mask is 0);
* F1 of a class/AU with no positive in the ground truth *and* none predicted (tp + fp + fn = 0) is
  ``zero_division`` (default 0.0, scikit-learn's default value); with positives predicted but none in the
  ground truth it is 0.0 by the formula;
* AUC of an AU whose ground truth has a single class is NaN (undefined); :func:`au_auc_mean` averages the
  defined AUCs and is NaN when none is defined;
* recall of a class absent from the ground truth is undefined: UAR / mean diagonal average over the classes
  present in ``y_true`` (as scikit-learn's ``balanced_accuracy_score``).
"""

from __future__ import annotations

import numpy as np

from facebehavior.metrics._common import ArrayLike, columns, mask_array, to_numpy
from facebehavior.registry import METRICS

__all__ = [
    "confusion_matrix",
    "normalized_confusion_matrix",
    "accuracy",
    "mean_diagonal",
    "uar",
    "f1_per_class",
    "macro_f1",
    "au_f1",
    "au_f1_mean",
    "au_accuracy",
    "au_accuracy_mean",
    "au_auc",
    "au_auc_mean",
]


# ---- expressions ---------------------------------------------------------------------------------
def _labels(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    t = to_numpy(y_true, "y_true")
    p = to_numpy(y_pred, "y_pred")
    if t.ndim != 1:
        raise ValueError(f"y_true must be (N,) integer labels, got {t.shape}")
    if p.ndim == 2:
        if num_classes is not None and p.shape[1] != num_classes:
            raise ValueError(f"y_pred scores have {p.shape[1]} columns but num_classes={num_classes}")
        num_classes = p.shape[1] if num_classes is None else num_classes
        p = p.argmax(axis=1).astype(np.float64)
    if p.shape != t.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must have the same length")
    for name, a in (("y_true", t), ("y_pred", p)):
        if np.any(a != np.round(a)) or np.any(a < 0):
            raise ValueError(f"{name} must hold non-negative integer class labels")
    t, p = t.astype(np.int64), p.astype(np.int64)
    n = int(max(t.max(), p.max())) + 1 if num_classes is None else int(num_classes)
    if t.max() >= n or p.max() >= n:
        raise ValueError(f"labels must be in [0, {n}); got max {max(t.max(), p.max())}")
    return t, p, n


@METRICS.register("confusion_matrix")
def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """``(C, C)`` int64 counts; rows = ground truth, columns = prediction (scikit-learn's convention).

    Args:
        y_true: ``(N,)`` labels.
        y_pred: ``(N,)`` labels or ``(N, C)`` scores.
        num_classes: C; default ``max label + 1`` (or the score width).
    """
    t, p, n = _labels(y_true, y_pred, num_classes)
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n)


def normalized_confusion_matrix(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None
) -> np.ndarray:
    """Row-normalised confusion matrix (each row sums to 1; rows of absent classes are NaN)."""
    cm = confusion_matrix(y_true, y_pred, num_classes).astype(np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, cm / np.where(rows > 0, rows, 1), np.nan)


@METRICS.register("accuracy")
def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Total accuracy: fraction of samples whose predicted label equals the ground truth (AFEW/EmotiW)."""
    t, p, _ = _labels(y_true, y_pred, None)
    return float(np.mean(t == p))


@METRICS.register("mean_diagonal")
def mean_diagonal(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> float:
    """Mean diagonal of the row-normalised confusion matrix (RAF-DB's metric), over classes in ``y_true``."""
    d = np.diag(normalized_confusion_matrix(y_true, y_pred, num_classes))
    return float(np.nanmean(d))


@METRICS.register("uar")
def uar(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> float:
    """Unweighted average recall: mean per-class recall over classes present in ``y_true``.

    Identical by definition to :func:`mean_diagonal`; both names are kept because the papers use both.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, zero_division: float) -> np.ndarray:
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), zero_division).astype(np.float64)


def f1_per_class(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None, *, zero_division: float = 0.0
) -> np.ndarray:
    """``(C,)`` one-vs-rest F1 per class, F1 = 2PR / (P + R) = 2tp / (2tp + fp + fn)."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    return _f1(tp, cm.sum(axis=0) - tp, cm.sum(axis=1) - tp, zero_division)


@METRICS.register("macro_f1")
def macro_f1(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None, *, zero_division: float = 0.0
) -> float:
    """Unweighted mean of per-class F1 (ABAW expression F1, AffectNet F1, EmotioNet expression F1).

    With ``num_classes`` the mean is over all C classes; without, over the classes that occur in
    ``y_true`` or ``y_pred`` (scikit-learn's ``f1_score(average="macro")`` default).
    """
    t, p, n = _labels(y_true, y_pred, num_classes)
    f1 = f1_per_class(t, p, n, zero_division=zero_division)
    if num_classes is None:
        f1 = f1[np.union1d(t, p)]
    return float(np.mean(f1))


# ---- AUs (multi-label) ----------------------------------------------------------------------------
def _au_inputs(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Unannotated entries (mask 0) may hold anything — NaN, −1, 9 — and are zeroed; annotated ones are
    # checked.
    t = columns(to_numpy(y_true, "y_true", finite=mask is None))
    p = columns(to_numpy(y_pred, "y_pred", finite=mask is None))
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must both be (N, A)")
    m = mask_array(mask, t.shape)
    t, p = np.where(m, t, 0.0), np.where(m, p, 0.0)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("y_true / y_pred contain NaN or infinite values on annotated entries")
    if not np.all((t == 0) | (t == 1)):
        raise ValueError("AU ground truth must be binary 0/1 (threshold intensities first, e.g. DISFA >= 2)")
    return t, p, m


def _au_counts(y_true, y_pred, mask, threshold):
    t, p, m = _au_inputs(y_true, y_pred, mask)
    if np.any(m.sum(axis=0) == 0):
        raise ValueError(
            f"AU columns {np.flatnonzero(m.sum(axis=0) == 0).tolist()} have no annotated samples"
        )
    tb, pb = t > 0.5, p >= threshold
    tp = np.sum(tb & pb & m, axis=0).astype(np.float64)
    fp = np.sum(~tb & pb & m, axis=0).astype(np.float64)
    fn = np.sum(tb & ~pb & m, axis=0).astype(np.float64)
    tn = np.sum(~tb & ~pb & m, axis=0).astype(np.float64)
    return tp, fp, fn, tn


@METRICS.register("au_f1")
def au_f1(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    threshold: float = 0.5,
    zero_division: float = 0.0,
) -> np.ndarray:
    """Frame-based F1 per AU, ``(A,)`` (BP4D/DISFA/FERA "F1-frame")."""
    tp, fp, fn, _ = _au_counts(y_true, y_pred, mask, threshold)
    return _f1(tp, fp, fn, zero_division)


@METRICS.register("au_f1_mean")
def au_f1_mean(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    threshold: float = 0.5,
    zero_division: float = 0.0,
) -> float:
    """Unweighted mean over AUs of the frame-based F1."""
    return float(np.mean(au_f1(y_true, y_pred, mask, threshold=threshold, zero_division=zero_division)))


@METRICS.register("au_accuracy")
def au_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, threshold: float = 0.5
) -> np.ndarray:
    """Accuracy per AU, ``(A,)``: (tp + tn) / annotated frames."""
    tp, fp, fn, tn = _au_counts(y_true, y_pred, mask, threshold)
    return (tp + tn) / (tp + fp + fn + tn)


@METRICS.register("au_accuracy_mean")
def au_accuracy_mean(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, threshold: float = 0.5
) -> float:
    """Unweighted mean over AUs of the per-AU accuracy."""
    return float(np.mean(au_accuracy(y_true, y_pred, mask, threshold=threshold)))


def _auc1(t: np.ndarray, s: np.ndarray) -> float:
    pos = t > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Mann–Whitney U with average ranks for ties (vectorised: one rank per run of equal scores).
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    starts = np.concatenate([[0], np.flatnonzero(ss[1:] != ss[:-1]) + 1])
    ends = np.concatenate([starts[1:], [len(ss)]])
    ranks = np.empty(len(s), dtype=np.float64)
    ranks[order] = np.repeat(0.5 * (starts + ends - 1) + 1.0, ends - starts)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


@METRICS.register("au_auc")
def au_auc(y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None) -> np.ndarray:
    """ROC AUC per AU, ``(A,)``, from scores/probabilities (FATAUVA-Net's AU metric); NaN if undefined."""
    t, p, m = _au_inputs(y_true, y_pred, mask)
    return np.array([_auc1(t[m[:, j], j], p[m[:, j], j]) for j in range(t.shape[1])], dtype=np.float64)


@METRICS.register("au_auc_mean")
def au_auc_mean(y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean of the defined per-AU AUCs (NaN when no AU has both classes)."""
    a = au_auc(y_true, y_pred, mask)
    return float(np.nanmean(a)) if np.any(~np.isnan(a)) else float("nan")
