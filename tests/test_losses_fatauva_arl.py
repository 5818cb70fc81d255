"""FATAUVA-Net and ARL/iARL losses against hand computations, torch references and gradcheck."""

import inspect
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facebehavior.losses import (
    CenterLoss,
    arl_au_weights,
    arl_detection_loss,
    arl_loss,
    center_loss,
    cosine_similarity_loss,
    crf_energy_loss,
    iarl_loss,
    intensity_loss,
    smooth_l1_turning,
    va_class_decode,
    va_to_class,
)
from facebehavior.nn.crf import DenseCRF

g = torch.Generator().manual_seed(2)


# ---- FATAUVA-Net -------------------------------------------------------------------------------
def test_smooth_l1_turning_point():
    d = torch.tensor([0.0, 0.2, -0.4, 0.5, 0.9, -2.0, 3.0], dtype=torch.float64)
    t = 0.5
    ref = [0.5 * x**2 if abs(x) < t else abs(x) - t + 0.5 * t**2 for x in d.tolist()]
    np.testing.assert_allclose(smooth_l1_turning(d, torch.zeros_like(d), t=t, reduction="none"), ref)
    # t = 1 coincides with PyTorch's smooth-L1 (beta = 1).
    x, y = torch.randn(20, generator=g) * 3, torch.randn(20, generator=g)
    torch.testing.assert_close(smooth_l1_turning(x, y, t=1.0), F.smooth_l1_loss(x, y, beta=1.0))
    with pytest.raises(ValueError, match="positive"):
        smooth_l1_turning(x, y, t=0)


def test_center_loss_hand_value_and_gradcheck():
    feats = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]], dtype=torch.float64)
    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([1, 0, 1])
    # ‖(0,1)‖² = 1, 0, ‖(2,−2)‖² = 8 → mean 3.
    assert center_loss(feats, labels, centers).item() == pytest.approx(3.0)
    assert center_loss(feats, labels, centers, p=1).item() == pytest.approx((1 + 0 + 4) / 3)
    f = torch.randn(5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    c = torch.randn(3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.tensor([0, 2, 1, 2, 0])
    assert torch.autograd.gradcheck(lambda a, b: center_loss(a, y, b), (f, c))
    module = CenterLoss(3, 4)
    out = module(f.float(), y)
    out.backward()
    assert module.centers.grad is not None
    with pytest.raises(ValueError, match="indices"):
        center_loss(feats, torch.tensor([0, 2, 1]), centers)


def _probs(pairs):
    p = torch.zeros(11, dtype=torch.float64)
    for value, prob in pairs:
        p[value + 5] = prob
    return p


def test_va_class_decoder_consecutive_top3():
    # Top-3 = values 1, 2, 3 (order 2, 1, 3): weighted mean (0.2·1 + 0.4·2 + 0.15·3)/0.75, then /5.
    p = _probs([(2, 0.4), (1, 0.2), (3, 0.15), (-4, 0.1), (0, 0.1), (5, 0.05)])
    expected = (0.2 * 1 + 0.4 * 2 + 0.15 * 3) / 0.75 / 5
    assert va_class_decode(p).item() == pytest.approx(expected)


def test_va_class_decoder_non_consecutive_top3_uses_top1():
    p = _probs([(-3, 0.5), (-1, 0.3), (-2, 0.05), (4, 0.1), (0, 0.05)])  # top-3: −3, −1, 4
    assert va_class_decode(p).item() == pytest.approx(-3 / 5)
    batch = torch.stack([p, _probs([(-5, 0.6), (-4, 0.3), (-3, 0.1)])])
    out = va_class_decode(batch)
    assert out.shape == (2,)
    assert out[1].item() == pytest.approx((-5 * 0.6 - 4 * 0.3 - 3 * 0.1) / 5)
    assert out.min() >= -1 and out.max() <= 1
    with pytest.raises(ValueError, match="11"):
        va_class_decode(torch.rand(3, 10))


def test_va_to_class_round_trip():
    v = torch.tensor([-1.0, -0.6, 0.0, 0.19, 0.21, 1.0])
    assert va_to_class(v).tolist() == [0, 2, 5, 6, 6, 10]
    onehot = F.one_hot(va_to_class(v), 11).double()
    # Zero-probability runners-up carry no weight, so a one-hot decodes to its own class value.
    torch.testing.assert_close(va_class_decode(onehot), torch.round(v.double() * 5) / 5)
    with pytest.raises(ValueError, match="\\[-1, 1\\]"):
        va_to_class(torch.tensor([1.5]))


# ---- ARL / iARL --------------------------------------------------------------------------------
def test_intensity_and_cosine_losses_vs_formulas():
    pred = torch.rand(4, 5, generator=g, dtype=torch.float64) * 5
    target = torch.randint(0, 6, (4, 5), generator=g).double()
    target[2] = 0  # no AU active → skipped by the cosine term
    w = arl_au_weights([0.5, 0.2, 0.1, 0.4, 0.3]).double()
    ref_int = np.mean(
        [0.5 * sum(w[i] * (target[b, i] - pred[b, i]) ** 2 for i in range(5)) for b in range(4)]
    )
    assert intensity_loss(pred, target, w).item() == pytest.approx(float(ref_int))

    def cos(a, b):
        return float(a @ b / math.sqrt(float(a @ a) * float(b @ b)))

    ref_cos = np.mean([1 - cos(pred[b], target[b]) for b in (0, 1, 3)])
    assert cosine_similarity_loss(pred, target).item() == pytest.approx(ref_cos, rel=1e-10)
    total = iarl_loss(pred, target, w, lam=0.5, crf_energy=torch.tensor(2.0, dtype=torch.float64))
    assert total.item() == pytest.approx(float(ref_int) + 0.5 * ref_cos + 2.0)
    p = pred.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: iarl_loss(a, target, w), (p,))


def test_arl_loss_adds_crf_energy():
    logits = torch.randn(3, 4, generator=g)
    y = (torch.rand(3, 4, generator=g) > 0.5).float()
    w = arl_au_weights([0.3, 0.2, 0.4, 0.1])
    e = torch.tensor(1.25)
    torch.testing.assert_close(arl_loss(logits, y, w, crf_energy=e), arl_detection_loss(logits, y, w) + e)


def _brute_energy(v0, feats, q1, crf, group=0):
    """Expected energy by explicit loops over pixels and label pairs (ARL eq. 3–4)."""
    H, W = v0.shape
    pix = [(r, c) for r in range(H) for c in range(W)]
    mu = crf.mu().detach().double()
    mu = mu[group] if mu.dim() == 3 else mu
    e = 0.0
    for r, c in pix:
        p0 = min(max(v0[r, c].item(), crf.eps), 1 - crf.eps)
        qj = [1 - q1[r, c].item(), q1[r, c].item()]
        e += qj[0] * -math.log(1 - p0) + qj[1] * -math.log(p0)
    for (r1, c1), (r2, c2) in itertools.combinations(pix, 2):
        pos = (r1 - r2) ** 2 + (c1 - c2) ** 2
        fd = float(((feats[:, r1, c1] - feats[:, r2, c2]) ** 2).sum())
        kern = crf.w_appearance * math.exp(-pos / (2 * crf.alpha**2) - fd / (2 * crf.beta**2))
        kern += crf.w_smooth * math.exp(-pos / (2 * crf.gamma**2))
        qj = [1 - q1[r1, c1].item(), q1[r1, c1].item()]
        qk = [1 - q1[r2, c2].item(), q1[r2, c2].item()]
        e += sum(qj[a] * qk[b] * mu[a, b].item() for a in range(2) for b in range(2)) * kern
    return e


def test_crf_energy_loss_vs_bruteforce_with_model_zoo_crf():
    B, n, D, H, W = 2, 2, 3, 2, 3
    att = torch.rand(B, n, H, W, generator=g, dtype=torch.float64) * 0.9 + 0.05
    feats = torch.randn(B, n, D, H, W, generator=g, dtype=torch.float64)
    crfs = [DenseCRF(alpha=2.0, beta=1.5, gamma=1.0, normalize="none").double() for _ in range(n)]
    refined = torch.rand(B, n, H, W, generator=g, dtype=torch.float64)
    got = crf_energy_loss(crfs, att, feats, refined)
    ref = np.mean(
        [
            sum(_brute_energy(att[b, i], feats[b, i], refined[b, i], crfs[i]) for i in range(n))
            for b in range(B)
        ]
    )
    assert got.item() == pytest.approx(ref, rel=1e-9)
    per_pixel = crf_energy_loss(crfs[0], att, list(feats.unbind(1)), refined, per_pixel=True)
    ref0 = np.mean(
        [
            sum(_brute_energy(att[b, i], feats[b, i], refined[b, i], crfs[0]) for i in range(n))
            for b in range(B)
        ]
    )
    assert per_pixel.item() == pytest.approx(ref0 / (H * W), rel=1e-9)
    # Default refined = the CRF's own inference; the loss is differentiable in attention and features.
    a = att.clone().requires_grad_(True)
    f = feats.clone().requires_grad_(True)
    loss = crf_energy_loss(crfs, a, f)
    loss.backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(f.grad).all()
    with pytest.raises(ValueError, match="one CRF per AU"):
        crf_energy_loss(crfs[:1] * 3, att, feats)


@pytest.mark.skipif(
    "groups" not in inspect.signature(DenseCRF).parameters, reason="this DenseCRF has no per-AU groups"
)
def test_crf_energy_loss_with_one_grouped_crf():
    B, n, D, H, W = 2, 3, 2, 2, 2
    att = torch.rand(B, n, H, W, generator=g, dtype=torch.float64) * 0.9 + 0.05
    feats = torch.randn(B, n, D, H, W, generator=g, dtype=torch.float64)
    refined = torch.rand(B, n, H, W, generator=g, dtype=torch.float64)
    crf = DenseCRF(alpha=2.0, beta=1.5, gamma=1.0, groups=n, normalize="none").double()
    with torch.no_grad():  # distinct (symmetric) compatibilities per AU, so a wrong group mapping is caught
        r = torch.rand(crf.compatibility.shape, generator=g, dtype=torch.float64)
        crf.compatibility.add_(r + r.transpose(1, 2))
    got = crf_energy_loss(crf, att, feats, refined)
    ref = np.mean(
        [
            sum(_brute_energy(att[b, i], feats[b, i], refined[b, i], crf, group=i) for i in range(n))
            for b in range(B)
        ]
    )
    assert got.item() == pytest.approx(ref, rel=1e-9)
    with pytest.raises(ValueError, match="compatibility groups"):
        crf_energy_loss(crf, att[:, :2], feats[:, :2], refined[:, :2])
