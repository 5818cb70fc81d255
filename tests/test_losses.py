"""Core losses against independent references: torch's own functions, NumPy transcriptions, gradcheck."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facebehavior.losses import (
    arl_au_weights,
    arl_detection_loss,
    ccc,
    ccc_loss,
    expression_ce,
    masked_bce,
    occurrence_rates,
)

g = torch.Generator().manual_seed(0)


def _np_ccc(x, y):
    # Aff-Wild review formula 1 with population moments.
    x, y = np.asarray(x, float), np.asarray(y, float)
    sxy = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * sxy / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


# ---- expression cross-entropy ------------------------------------------------------------------
def test_expression_ce_hard_matches_torch_with_and_without_weights():
    logits = torch.randn(9, 7, generator=g)
    y = torch.randint(0, 7, (9,), generator=g)
    w = torch.rand(7, generator=g) + 0.1
    torch.testing.assert_close(expression_ce(logits, y), F.cross_entropy(logits, y))
    torch.testing.assert_close(
        expression_ce(logits, y, class_weights=w), F.cross_entropy(logits, y, weight=w)
    )
    mask = torch.tensor([1, 0, 1, 1, 0, 1, 1, 1, 0])
    keep = mask.bool()
    torch.testing.assert_close(
        expression_ce(logits, y, class_weights=w, mask=mask), F.cross_entropy(logits[keep], y[keep], weight=w)
    )


def test_expression_ce_soft_labels():
    logits = torch.randn(5, 8, generator=g)
    votes = torch.randint(0, 10, (5, 8), generator=g).float()
    votes[:, 0] += 1
    t = votes / votes.sum(1, keepdim=True)
    # torch's probability-target cross entropy is the independent reference (unweighted).
    torch.testing.assert_close(
        expression_ce(logits, votes, normalize_target=True), F.cross_entropy(logits, t)
    )
    # One-hot soft labels with class weights reduce to the hard weighted form.
    y = torch.randint(0, 8, (5,), generator=g)
    w = torch.rand(8, generator=g) + 0.5
    torch.testing.assert_close(
        expression_ce(logits, F.one_hot(y, 8).float(), class_weights=w), F.cross_entropy(logits, y, weight=w)
    )
    with pytest.raises(ValueError, match="normalize_target"):
        expression_ce(logits, votes)


def test_unannotated_targets_cannot_leak_nan():
    logits = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 0.0, float("nan")], [0.0, 1.0, 1.0], [float("nan")] * 3, [1.0, 1.0, 0.0]])
    m = (~torch.isnan(y)).double()
    loss = masked_bce(logits, y, m)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    torch.testing.assert_close(loss, masked_bce(logits, torch.nan_to_num(y), m))
    va = torch.tensor([[0.1, 0.2], [float("nan"), float("nan")], [0.5, -0.3], [-0.2, 0.4]])
    vm = torch.tensor([1.0, 0.0, 1.0, 1.0])
    pred = torch.randn(4, 2, generator=g)
    assert torch.isfinite(ccc_loss(pred, va, vm))
    soft = torch.tensor([[0.5, 0.5, 0.0], [float("nan")] * 3, [0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])
    em = torch.tensor([1, 0, 1, 1])
    assert torch.isfinite(expression_ce(logits, soft, em))


def test_soft_ce_and_masked_bce_gradcheck():
    logits = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    soft = torch.softmax(torch.randn(5, 4, generator=g, dtype=torch.float64), 1)
    w = torch.rand(4, generator=g, dtype=torch.float64) + 0.5
    assert torch.autograd.gradcheck(lambda z: expression_ce(z, soft, class_weights=w), (logits,))
    y = (torch.rand(5, 4, generator=g) > 0.5).double()
    m = (torch.rand(5, 4, generator=g) > 0.3).double()
    assert torch.autograd.gradcheck(lambda z: masked_bce(z, y, m), (logits,))


def test_expression_ce_errors_and_empty():
    logits = torch.randn(3, 7, requires_grad=True)
    with pytest.raises(ValueError, match="outside"):
        expression_ce(logits, torch.tensor([0, 7, 1]))
    out = expression_ce(logits, torch.tensor([0, 7, 1]), mask=torch.zeros(3))
    assert out.item() == 0.0
    out.backward()  # still attached to the graph


# ---- masked BCE --------------------------------------------------------------------------------
def test_masked_bce_is_facebehaviornet_eq1():
    logits = torch.randn(4, 17, generator=g, dtype=torch.float64)
    y = (torch.rand(4, 17, generator=g) > 0.5).double()
    delta = (torch.rand(4, 17, generator=g) > 0.4).double()
    delta[3] = 0  # an image with no AU labels does not count
    p = 1 / (1 + np.exp(-logits.numpy()))
    ll = y.numpy() * np.log(p) + (1 - y.numpy()) * np.log(1 - p)
    per_image = [-(delta[b].numpy() * ll[b]).sum() / delta[b].sum().item() for b in range(3)]
    np.testing.assert_allclose(masked_bce(logits, y, delta).item(), np.mean(per_image), rtol=1e-12)
    glob = -(delta.numpy() * ll).sum() / delta.sum().item()
    np.testing.assert_allclose(masked_bce(logits, y, delta, reduction="global").item(), glob, rtol=1e-12)
    # Without a mask it is plain mean BCE.
    torch.testing.assert_close(masked_bce(logits, y), F.binary_cross_entropy_with_logits(logits, y))
    assert masked_bce(logits, y, torch.zeros_like(y)).item() == 0.0


def test_arl_weights_and_detection_loss():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 0, 0]])
    r = occurrence_rates(labels)
    np.testing.assert_allclose(r, [0.75, 0.5, 0.25])
    w = arl_au_weights(r)
    inv = 1 / r
    np.testing.assert_allclose(w.numpy(), inv / inv.sum(), rtol=1e-6)
    assert abs(w.sum().item() - 1) < 1e-6 and w[2] > w[1] > w[0]
    logits = torch.randn(4, 3, generator=g)
    y = torch.as_tensor(labels, dtype=torch.float32)
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    torch.testing.assert_close(arl_detection_loss(logits, y, w), (bce * w).sum(1).mean())
    # Intensity occurrences: >= ceil(L/2) = 3 for L = 5 (ARL eq. 11).
    np.testing.assert_allclose(occurrence_rates(np.array([[0, 3], [2, 5]]), threshold=3), [0.0, 1.0])
    with pytest.raises(ValueError, match="not positive"):
        arl_au_weights([0.5, 0.0])


# ---- CCC ---------------------------------------------------------------------------------------
def test_ccc_matches_numpy_formula_and_hand_cases():
    x = torch.randn(50, 2, generator=g, dtype=torch.float64)
    y = 0.6 * x + 0.3 * torch.randn(50, 2, generator=g, dtype=torch.float64) + 0.1
    got = ccc(x, y).numpy()
    np.testing.assert_allclose(got, [_np_ccc(x[:, k], y[:, k]) for k in range(2)], rtol=1e-6)
    t = torch.linspace(-1, 1, 21, dtype=torch.float64)
    assert abs(ccc(t, t).item() - 1) < 1e-6  # perfect agreement
    assert abs(ccc(t, -t).item() + 1) < 1e-6  # perfect discordance
    shifted = ccc(t + 0.5, t).item()
    assert shifted < 1 - 1e-3  # Pearson of a shifted copy is 1, CCC is lower
    np.testing.assert_allclose(shifted, _np_ccc(t + 0.5, t), rtol=1e-6)
    loss = ccc_loss(x, y)
    np.testing.assert_allclose(loss.item(), 1 - 0.5 * (got[0] + got[1]), rtol=1e-6)


def test_ccc_constant_inputs_are_finite_with_finite_gradients():
    pred = torch.zeros(8, 2, dtype=torch.float64, requires_grad=True)
    target = torch.zeros(8, 2, dtype=torch.float64)
    loss = ccc_loss(pred, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    pred2 = torch.full((8,), 0.3, dtype=torch.float64, requires_grad=True)
    target2 = torch.linspace(-1, 1, 8, dtype=torch.float64)
    assert abs(ccc(pred2, target2).item()) < 1e-12  # constant prediction: no concordance
    ccc_loss(pred2, target2).backward()
    assert torch.isfinite(pred2.grad).all()


def test_ccc_mask_equals_subset():
    x = torch.randn(10, 2, generator=g, dtype=torch.float64)
    y = torch.randn(10, 2, generator=g, dtype=torch.float64)
    m = torch.tensor([1, 1, 0, 1, 0, 1, 1, 1, 0, 1], dtype=torch.float64)
    torch.testing.assert_close(ccc(x, y, m), ccc(x[m.bool()], y[m.bool()]))
    one = torch.zeros(10)
    one[0] = 1
    xr = x.clone().requires_grad_(True)
    out = ccc_loss(xr, y, one)
    assert out.item() == 0.0
    out.backward()


def test_ccc_loss_gradcheck():
    x = torch.randn(12, 2, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(12, 2, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda a: ccc_loss(a, y), (x,))
    assert torch.autograd.gradcheck(lambda b: ccc_loss(x.detach(), b), (y.clone().requires_grad_(True),))


def test_half_precision_inputs_stay_finite():
    pred = torch.zeros(8, 2, dtype=torch.float16, requires_grad=True)
    loss = ccc_loss(pred, torch.zeros(8, 2, dtype=torch.float16))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    x = torch.randn(16, 2, generator=g)
    y = torch.randn(16, 2, generator=g)
    assert abs(ccc_loss(x.bfloat16(), y.bfloat16()).item() - ccc_loss(x, y).item()) < 0.05
