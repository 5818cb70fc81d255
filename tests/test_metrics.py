"""Metrics against independent references: scikit-learn, scipy, the literature, NumPy transcriptions."""

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn import metrics as skm

from facebehavior import metrics as M
from facebehavior.registry import METRICS

rng = np.random.default_rng(0)


def _np_ccc(x, y):
    # Aff-Wild review formula 1, transcribed literally (population moments).
    sxy = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * sxy / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


# ---- regression ----------------------------------------------------------------------------------
def test_ccc_vs_formula_and_hand_cases():
    x = rng.uniform(-1, 1, 200)
    y = 0.7 * x + rng.normal(0, 0.3, 200) - 0.1
    assert M.ccc(x, y) == pytest.approx(_np_ccc(x, y), rel=1e-12)
    # Equivalent form 2ρ s_x s_y / (s_x² + s_y² + (x̄−ȳ)²) from the same formula.
    r = stats.pearsonr(x, y)[0]
    alt = 2 * r * x.std() * y.std() / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert M.ccc(x, y) == pytest.approx(alt, rel=1e-10)
    t = np.linspace(-1, 1, 11)
    assert M.ccc(t, t) == pytest.approx(1.0)
    assert M.ccc(t, -t) == pytest.approx(-1.0)
    assert M.ccc(t, t + 0.3) < M.pearson(t, t + 0.3) == pytest.approx(1.0)
    # Hand case: x = [0, 2], y = [1, 1]: s_xy = 0 → 0.
    assert M.ccc([0, 2], [1, 1]) == 0.0
    # Hand case: x = [1, 3], y = [2, 4]: var 1, 1, cov 1, mean diff 1 → 2/3.
    assert M.ccc([1, 3], [2, 4]) == pytest.approx(2 / 3)
    two = M.ccc(np.stack([x, t.repeat(20)[:200]], 1), np.stack([y, t.repeat(20)[:200]], 1))
    assert two.shape == (2,) and two[0] == pytest.approx(M.ccc(x, y)) and two[1] == pytest.approx(1.0)


def test_pearson_mse_rmse_mae_vs_references():
    x, y = rng.normal(size=100), rng.normal(size=100)
    assert M.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], rel=1e-10)
    assert M.mse(x, y) == pytest.approx(skm.mean_squared_error(x, y))
    assert M.rmse(x, y) == pytest.approx(np.sqrt(skm.mean_squared_error(x, y)))
    assert M.mae(x, y) == pytest.approx(skm.mean_absolute_error(x, y))
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    np.testing.assert_allclose(M.mae(X, Y), skm.mean_absolute_error(X, Y, multioutput="raw_values"))


def test_icc_shrout_fleiss_worked_example_and_two_rater_identity():
    # Shrout & Fleiss (1979), Table 2: 6 targets × 4 judges; their ICC(3,1) = 0.71.
    sf = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    assert round(M.icc_3_1(sf), 2) == 0.71
    # Second formulation, from the ANOVA identity for k = 2: ICC(3,1) = 2 s_xy / (s_x² + s_y²).
    x = rng.uniform(0, 5, 80)
    y = np.clip(x + rng.normal(0, 0.8, 80) + 0.5, 0, 5)
    second = 2 * np.cov(x, y)[0, 1] / (np.var(x, ddof=1) + np.var(y, ddof=1))
    assert M.icc(x, y) == pytest.approx(second, rel=1e-10)
    # Consistency ICC ignores a constant offset; CCC does not.
    assert M.icc(x, x + 1) == pytest.approx(1.0) and M.ccc(x, x + 1) < 0.9


def test_icc_3_1_hand_computed_and_pingouin_long_format():
    # By hand, truth (1, 2, 3) vs prediction (1, 3, 3): grand mean 13/6; row means 1, 2.5, 3 give
    # SS_rows = 13/3, MS_rows = 13/6; column means 2, 7/3 give SS_cols = 1/6; SS_total = 29/6, so
    # SS_err = 1/3 and MS_err = 1/3 / ((3 − 1)(2 − 1)) = 1/6; ICC(3,1) = (13/6 − 1/6) / (13/6 + 1/6) = 6/7.
    assert M.icc([1, 2, 3], [1, 3, 3]) == pytest.approx(6 / 7, rel=1e-12)
    # pingouin's intraclass_corr, written out on the long format (target, rater, rating): two-way ANOVA
    # without interaction, ICC3 = (MS_targets − MS_error) / (MS_targets + (k − 1) MS_error).
    data = rng.normal(size=(12, 3)) + rng.normal(size=(12, 1)) * 2
    n, k = data.shape
    target = np.repeat(np.arange(n), k)
    rater = np.tile(np.arange(k), n)
    y = data.ravel()
    grand = y.mean()
    ss_t = sum(k * (y[target == i].mean() - grand) ** 2 for i in range(n))
    ss_r = sum(n * (y[rater == j].mean() - grand) ** 2 for j in range(k))
    ss_e = ((y - grand) ** 2).sum() - ss_t - ss_r
    ms_t, ms_e = ss_t / (n - 1), ss_e / ((n - 1) * (k - 1))
    assert M.icc_3_1(data) == pytest.approx((ms_t - ms_e) / (ms_t + (k - 1) * ms_e), rel=1e-12)


def test_regression_edge_cases():
    t = np.linspace(0, 1, 10)
    c = np.full(10, 0.3)
    assert M.pearson(t, c) == 0.0 and M.pearson(c, c) == 0.0
    assert M.ccc(t, c) == 0.0
    assert M.ccc(c, c) == 1.0 and M.ccc(c, c + 1) == 0.0
    assert M.icc(c, c) == 1.0 and M.icc(c, c + 1) == 0.0
    assert M.icc(t, c) == pytest.approx(0.0, abs=1e-12)
    for fn in (M.ccc, M.mse, M.pearson, M.icc):
        with pytest.raises(ValueError, match="empty"):
            fn([], [])
    with pytest.raises(ValueError, match="same shape"):
        M.ccc([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        M.mse([1, np.nan], [1, 2])


def test_list_numpy_torch_give_identical_results():
    x, y = rng.normal(size=30), rng.normal(size=30)
    for fn in (M.ccc, M.mse, M.rmse, M.mae, M.pearson, M.icc):
        ref = fn(x, y)
        assert fn(list(x), list(y)) == ref
        assert fn(torch.tensor(x), torch.tensor(y)) == ref
    yt, yp = rng.integers(0, 7, 60), rng.integers(0, 7, 60)
    for fn in (M.accuracy, M.macro_f1, M.uar, M.mean_diagonal, M.abaw_expr_score, M.emotionet_expr_score):
        ref = fn(yt, yp)
        assert fn(yt.tolist(), yp.tolist()) == ref == fn(torch.tensor(yt), torch.tensor(yp))
    at, ap = rng.integers(0, 2, (40, 5)), rng.random((40, 5))
    np.testing.assert_array_equal(M.au_f1(at, ap), M.au_f1(torch.tensor(at), torch.tensor(ap)))
    np.testing.assert_array_equal(M.au_auc(at, ap), M.au_auc(at.tolist(), ap.tolist()))


# ---- expressions -------------------------------------------------------------------------------
def test_expression_metrics_vs_sklearn():
    yt, yp = rng.integers(0, 7, 300), rng.integers(0, 7, 300)
    np.testing.assert_array_equal(
        M.confusion_matrix(yt, yp, 7), skm.confusion_matrix(yt, yp, labels=range(7))
    )
    assert M.accuracy(yt, yp) == pytest.approx(skm.accuracy_score(yt, yp))
    assert M.macro_f1(yt, yp) == pytest.approx(skm.f1_score(yt, yp, average="macro"))
    np.testing.assert_allclose(M.f1_per_class(yt, yp, 7), skm.f1_score(yt, yp, average=None, labels=range(7)))
    assert M.uar(yt, yp) == pytest.approx(skm.balanced_accuracy_score(yt, yp))
    assert M.mean_diagonal(yt, yp) == pytest.approx(skm.recall_score(yt, yp, average="macro"))
    np.testing.assert_allclose(
        M.normalized_confusion_matrix(yt, yp, 7),
        skm.confusion_matrix(yt, yp, labels=range(7), normalize="true"),
    )
    scores = rng.random((300, 7))
    assert M.accuracy(yt, scores) == pytest.approx(skm.accuracy_score(yt, scores.argmax(1)))


def test_expression_edge_cases():
    # Class 2 never in ground truth: UAR/mean diagonal average over present classes (sklearn's balanced acc).
    yt, yp = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    assert M.uar(yt, yp, 3) == pytest.approx(0.75)
    assert M.mean_diagonal(yt, yp, 3) == pytest.approx(0.75)
    assert M.macro_f1(yt, yp, 3) == pytest.approx(skm.f1_score(yt, yp, average="macro", labels=[0, 1, 2]))
    assert M.macro_f1([0, 1], [0, 1], 3) == pytest.approx(2 / 3)  # absent class 2 → F1 0 (zero_division)
    assert M.macro_f1([0, 1], [0, 1], 3, zero_division=1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="in \\[0, 3\\)"):
        M.confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="integer"):
        M.accuracy([0.5, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        M.uar([], [])


# ---- AUs ---------------------------------------------------------------------------------------
def test_au_metrics_vs_sklearn():
    yt = rng.integers(0, 2, (200, 8))
    prob = np.clip(yt * 0.4 + rng.random((200, 8)) * 0.6, 0, 1)
    yp = (prob >= 0.5).astype(int)
    ref_f1 = [skm.f1_score(yt[:, j], yp[:, j]) for j in range(8)]
    np.testing.assert_allclose(M.au_f1(yt, prob), ref_f1)
    assert M.au_f1_mean(yt, yp) == pytest.approx(np.mean(ref_f1))
    ref_acc = [skm.accuracy_score(yt[:, j], yp[:, j]) for j in range(8)]
    np.testing.assert_allclose(M.au_accuracy(yt, yp), ref_acc)
    np.testing.assert_allclose(
        M.au_auc(yt, prob), [skm.roc_auc_score(yt[:, j], prob[:, j]) for j in range(8)]
    )
    # Ties in scores (quantised probabilities) use average ranks, as sklearn.
    q = np.round(prob, 1)
    np.testing.assert_allclose(M.au_auc(yt, q), [skm.roc_auc_score(yt[:, j], q[:, j]) for j in range(8)])
    # Mask = evaluating on the annotated subset only.
    mask = rng.random((200, 8)) > 0.3
    f1m = M.au_f1(yt, yp, mask)
    np.testing.assert_allclose(f1m, [skm.f1_score(yt[mask[:, j], j], yp[mask[:, j], j]) for j in range(8)])


def test_au_masked_entries_may_hold_anything():
    yt = rng.integers(0, 2, (50, 4)).astype(float)
    yp = rng.random((50, 4))
    mask = rng.random((50, 4)) > 0.3
    dirty = yt.copy()
    dirty[~mask] = np.nan
    dirty_p = yp.copy()
    dirty_p[~mask] = -7
    np.testing.assert_array_equal(M.au_f1(dirty, dirty_p, mask), M.au_f1(yt, yp, mask))
    np.testing.assert_array_equal(M.au_auc(dirty, yp, mask), M.au_auc(yt, yp, mask))
    assert M.abaw_au_score(dirty, yp, mask) == M.abaw_au_score(yt, yp, mask)
    with pytest.raises(ValueError, match="NaN"):
        M.au_f1(dirty, yp)


def test_au_edge_cases():
    yt = np.array([[0, 1], [0, 0], [0, 1]])
    # AU never present and never predicted → zero_division (0.0); accuracy 1; AUC undefined (NaN).
    f1 = M.au_f1(yt, np.zeros_like(yt))
    assert f1[0] == 0.0 and M.au_f1(yt, np.zeros_like(yt), zero_division=1.0)[0] == 1.0
    assert M.au_accuracy(yt, np.zeros_like(yt))[0] == 1.0
    auc = M.au_auc(yt, np.array([[0.1, 0.9], [0.2, 0.1], [0.3, 0.8]]))
    assert np.isnan(auc[0]) and auc[1] == 1.0
    assert M.au_auc_mean(yt, np.array([[0.1, 0.9], [0.2, 0.1], [0.3, 0.8]])) == 1.0
    # Predicted positives but none in the ground truth → F1 0 by the formula.
    assert M.au_f1(yt, np.ones_like(yt))[0] == 0.0
    with pytest.raises(ValueError, match="binary"):
        M.au_f1(np.array([[0, 2]]), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="empty"):
        M.au_f1(np.zeros((0, 3)), np.zeros((0, 3)))


# ---- composites --------------------------------------------------------------------------------
def test_challenge_composites():
    yt, yp = rng.integers(0, 7, 120), rng.integers(0, 7, 120)
    f1 = skm.f1_score(yt, yp, average="macro")
    acc = skm.accuracy_score(yt, yp)
    assert M.abaw_expr_score(yt, yp) == pytest.approx(0.67 * f1 + 0.33 * acc)
    assert M.emotionet_expr_score(yt, yp) == pytest.approx(0.5 * (f1 + skm.balanced_accuracy_score(yt, yp)))
    at = rng.integers(0, 2, (90, 12))
    ap = rng.integers(0, 2, (90, 12))
    auf1 = np.mean([skm.f1_score(at[:, j], ap[:, j]) for j in range(12)])
    aacc = skm.accuracy_score(at.ravel(), ap.ravel())
    assert M.abaw_au_score(at, ap) == pytest.approx(0.5 * auf1 + 0.5 * aacc)
    per_au_acc = np.mean([skm.accuracy_score(at[:, j], ap[:, j]) for j in range(12)])
    assert M.emotionet_au_score(at, ap) == pytest.approx(0.5 * (auf1 + per_au_acc))


def test_registry_exposes_metrics():
    for name in ("ccc", "icc", "au_f1_mean", "abaw_expr", "abaw_au", "emotionet_au", "emotionet_expr", "uar"):
        assert name in METRICS
    assert METRICS.get("ccc") is M.ccc


def test_expected_calibration_error_by_hand():
    from facebehavior.metrics import expected_calibration_error, reliability_bins

    # bins of width 0.5: [0, 0.5) holds 0.1, 0.2 (labels 0, 1); [0.5, 1] holds 0.9, 0.9, 1.0 (1, 1, 0)
    y = [0, 1, 1, 1, 0]
    p = [0.1, 0.2, 0.9, 0.9, 1.0]
    conf, freq, count = reliability_bins(y, p, bins=2)
    assert count.tolist() == [2, 3]
    assert conf == pytest.approx([0.15, 2.8 / 3])
    assert freq == pytest.approx([0.5, 2 / 3])
    ece = 2 / 5 * abs(0.5 - 0.15) + 3 / 5 * abs(2 / 3 - 2.8 / 3)
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(ece)
    # the mask drops entries; a perfectly calibrated set has ECE 0
    assert expected_calibration_error([0, 1, 1, 0], [0.0, 1.0, 1.0, 0.3], [1, 1, 1, 0], bins=4) == 0.0
    assert np.isnan(expected_calibration_error([1], [0.5], [0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1], [1.5])


def test_expected_calibration_error_matches_sklearn_calibration_curve():
    from sklearn.calibration import calibration_curve

    from facebehavior.metrics import reliability_bins

    rng = np.random.default_rng(0)
    p = rng.random(500)
    y = (rng.random(500) < p**2).astype(int)
    conf, freq, count = reliability_bins(y, p, bins=10)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    ok = count > 0
    assert freq[ok] == pytest.approx(prob_true)
    assert conf[ok] == pytest.approx(prob_pred)
