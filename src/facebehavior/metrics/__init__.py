"""Evaluation metrics: pure functions, NumPy in, floats / arrays out.

Lists, NumPy arrays and torch tensors are accepted and give identical results. Importing this package
registers every metric in :data:`facebehavior.registry.METRICS` (``METRICS.get("ccc")``). Formulas, edge
cases and which paper/challenge uses each metric: ``docs/metrics.md``.
"""

from facebehavior.metrics.calibration import expected_calibration_error, reliability_bins
from facebehavior.metrics.challenge import (
    abaw_au_score,
    abaw_expr_score,
    emotionet_au_score,
    emotionet_expr_score,
)
from facebehavior.metrics.classification import (
    accuracy,
    au_accuracy,
    au_accuracy_mean,
    au_auc,
    au_auc_mean,
    au_f1,
    au_f1_mean,
    confusion_matrix,
    f1_per_class,
    macro_f1,
    mean_diagonal,
    normalized_confusion_matrix,
    uar,
)
from facebehavior.metrics.regression import ccc, icc, icc_3_1, mae, mse, pearson, rmse

__all__ = [
    "abaw_au_score",
    "abaw_expr_score",
    "accuracy",
    "au_accuracy",
    "au_accuracy_mean",
    "au_auc",
    "au_auc_mean",
    "au_f1",
    "au_f1_mean",
    "ccc",
    "confusion_matrix",
    "emotionet_au_score",
    "emotionet_expr_score",
    "expected_calibration_error",
    "f1_per_class",
    "icc",
    "icc_3_1",
    "macro_f1",
    "mae",
    "mean_diagonal",
    "mse",
    "normalized_confusion_matrix",
    "pearson",
    "reliability_bins",
    "rmse",
    "uar",
]
