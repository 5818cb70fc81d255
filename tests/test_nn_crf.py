"""The fully connected CRF: mean-field and energy against a per-pixel reference (both kernel
normalisations), the memory-efficient messages against the dense kernel, saturation and
gradients at ARL's settings, the bounded compatibility, and memory."""

from __future__ import annotations

import math

import pytest
import torch

from facebehavior.nn.crf import DenseCRF


def _reference_mean_field(v0, feats, crf: DenseCRF, iters: int):
    """Per-pixel loops straight from the formulas (Krähenbühl & Koltun; ARL eq. 3-4), with the
    kernel normalisation of CRF-RNN when ``crf.normalize == "row"``."""
    h, w = v0.shape
    pix = [(y, x) for y in range(h) for x in range(w)]
    m = len(pix)
    mu = crf.mu().detach()[0].tolist()

    def kernels(j, i):
        (y1, x1), (y2, x2) = pix[j], pix[i]
        dp = (y1 - y2) ** 2 + (x1 - x2) ** 2
        df = sum((feats[c, y1, x1].item() - feats[c, y2, x2].item()) ** 2 for c in range(feats.shape[0]))
        return math.exp(-dp / (2 * crf.alpha**2) - df / (2 * crf.beta**2)), math.exp(-dp / (2 * crf.gamma**2))

    ka = [[kernels(j, i)[0] if i != j else 0.0 for i in range(m)] for j in range(m)]
    ks = [[kernels(j, i)[1] if i != j else 0.0 for i in range(m)] for j in range(m)]
    if crf.normalize == "row":
        ka = [[v / sum(row) for v in row] for row in ka]
        ks = [[v / sum(row) for v in row] for row in ks]
    kern = [[crf.w_appearance * ka[j][i] + crf.w_smooth * ks[j][i] for i in range(m)] for j in range(m)]
    p1 = [min(max(v0[y, x].item(), crf.eps), 1 - crf.eps) for (y, x) in pix]
    unary = [[-math.log(1 - p), -math.log(p)] for p in p1]
    q = [[1 - p, p] for p in p1]
    for _ in range(iters):
        new = []
        for j in range(m):
            msg = [sum(kern[j][i] * q[i][lab] for i in range(m)) for lab in (0, 1)]
            logit = [-unary[j][lab] - sum(mu[lab][l2] * msg[l2] for l2 in (0, 1)) for lab in (0, 1)]
            z = max(logit)
            e = [math.exp(t - z) for t in logit]
            new.append([e[0] / sum(e), e[1] / sum(e)])
        q = new
    energy = sum(q[j][lab] * unary[j][lab] for j in range(m) for lab in (0, 1))
    energy += 0.5 * sum(
        q[j][a] * mu[a][b] * q[i][b] * kern[j][i]
        for j in range(m)
        for i in range(m)
        for a in (0, 1)
        for b in (0, 1)
    )
    return torch.tensor([qq[1] for qq in q]).reshape(h, w), energy


@pytest.mark.parametrize("normalize", ["none", "row"])
def test_mean_field_and_energy_match_a_per_pixel_reference(normalize):
    g = torch.Generator().manual_seed(0)
    v0 = torch.rand(4, 5, generator=g) * 0.9 + 0.05
    feats = torch.randn(3, 4, 5, generator=g) * 2
    crf = DenseCRF(
        num_iters=3, w_appearance=0.3, w_smooth=0.2, alpha=4.0, beta=2.0, gamma=1.5, normalize=normalize
    )
    with torch.no_grad():
        crf.compatibility.copy_(torch.tensor([[[0.1, 1.05], [1.05, 0.05]]]))
        out = crf(v0[None, None], feats[None])
        energy = crf.energy(v0[None, None], feats[None], out)
        refined, energy2 = crf.refine(v0[None, None], feats[None])
    ref_q, ref_e = _reference_mean_field(v0, feats, crf, 3)
    torch.testing.assert_close(out[0, 0], ref_q, atol=1e-5, rtol=1e-4)
    assert energy.item() == pytest.approx(ref_e, rel=1e-4)
    torch.testing.assert_close(refined, out)
    torch.testing.assert_close(energy2, energy)


@pytest.mark.parametrize("normalize", ["none", "row"])
def test_messages_equal_the_dense_kernel_product(normalize):
    # The memory-efficient messages (fused attention for the appearance kernel, separable blur for
    # the smoothness kernel) equal the dense (N, m, m) kernel applied to Q, at ARL's α, β, γ.
    g = torch.Generator().manual_seed(3)
    crf = DenseCRF(normalize=normalize).double()
    feats = torch.tanh(torch.randn(3, 4, 9, 11, generator=g, dtype=torch.float64))
    q1 = torch.rand(3, 99, generator=g, dtype=torch.float64)
    q = torch.stack([1 - q1, q1], -1)
    got = crf.messages(q, crf._prepare(feats))
    torch.testing.assert_close(got, crf.dense_kernel(feats) @ q, rtol=1e-10, atol=1e-10)
    if normalize == "row":  # each message is a weighted average: Σ_l msg(l) = w1 + w2
        torch.testing.assert_close(got.sum(-1), torch.full((3, 99), 8.0, dtype=torch.float64))


def _blob(size: int = 44):
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    r = ((ys - 22) ** 2 + (xs - 18) ** 2).sqrt()
    return 0.05 + 0.9 * torch.sigmoid((10 - r) / 1.5)


@pytest.mark.parametrize("mu", [1.0, 4.0])
def test_noisy_pixel_at_paper_settings(mu):
    # ARL's settings (w1=5, w2=3, α=160, β=3, γ=3, 5 iterations) on a 44×44 map (l/4, l=176), with
    # the Potts compatibility (μ = 1, the initialisation) and the strongest one it can learn (4).
    crf = DenseCRF()
    with torch.no_grad():
        crf.compatibility.mul_(mu)
    clean = _blob()
    noisy = clean.clone()
    noisy[35, 35] = 0.95  # an isolated false positive far from the blob
    # Pixel features as ARL's would be (tanh-bounded): they separate the blob from the background,
    # while the isolated error is in the attention only.
    feats = torch.tanh(10 * (clean - 0.5))[None].repeat(16, 1, 1)
    with torch.no_grad():
        refined = crf(noisy[None, None], feats[None])[0, 0]
    # Potts: a smoothing that lowers the outlier; the strongest learnable coupling flips it.
    assert refined[35, 35] < (0.9 if mu == 1.0 else 0.3)
    # The blob keeps its shape: decisions only change next to the 0.5 contour.
    changed = (refined > 0.5) != (clean > 0.5)
    changed[35, 35] = False
    near_contour = (clean - 0.5).abs() < 0.2
    assert not (changed & ~near_contour).any()
    assert torch.corrcoef(torch.stack([refined.flatten(), clean.flatten()]))[0, 1] > 0.9
    # ... and the refined map is not saturated: every pixel keeps a gradient.
    assert ((refined > 1e-6) & (refined < 1 - 1e-6)).all()


@pytest.mark.parametrize("normalize", ["none", "row", "convex"])
def test_maps_collapse_at_initialisation_unless_the_kernel_is_convex(normalize):
    # What a freshly initialised ARL branch gives the CRF: attention near 0.5 with a slight
    # imbalance, pixel features that do not separate anything yet. The literal sums and the
    # w1 + w2 = 8 row-normalised kernels amplify the imbalance until the maps are all-on/all-off
    # and pass no gradient (issue #16); the convex kernel refines without collapsing.
    g = torch.Generator().manual_seed(0)
    v0 = (0.52 + 0.05 * torch.randn(4, 1, 44, 44, generator=g)).clamp(0.3, 0.7).requires_grad_()
    feats = torch.tanh(0.1 * torch.randn(4, 16, 44, 44, generator=g))
    refined = DenseCRF(normalize=normalize)(v0, feats)
    saturated = ((refined < 1e-3) | (refined > 1 - 1e-3)).float().mean().item()
    refined.sum().backward()
    grad = v0.grad.abs().mean().item()
    if normalize == "convex":
        assert saturated == 0.0 and grad > 0.1
        assert refined.std(dim=(2, 3)).min() > 0.01  # the maps keep their spatial structure
    else:
        assert saturated > 0.99 and grad < 0.01


@pytest.mark.parametrize("normalize", ["none", "row"])
def test_refined_attention_saturates_only_without_normalisation(normalize):
    # The literal sums of eq. 3-4 give each pixel ≈ w1·(m − 1) nats of pairwise term at 44×44: the
    # maps collapse to all-0/all-1 and no gradient reaches the initial attention (issue #16). With
    # CRF-RNN's normalised kernels the refinement stays graded and differentiable.
    g = torch.Generator().manual_seed(0)
    v0 = (torch.rand(2, 1, 44, 44, generator=g) * 0.6 + 0.2).requires_grad_()
    feats = torch.tanh(torch.randn(2, 16, 44, 44, generator=g))
    crf = DenseCRF(normalize=normalize)
    refined = crf(v0, feats)
    saturated = ((refined < 1e-4) | (refined > 1 - 1e-4)).float().mean().item()
    refined.sum().backward()
    grad = v0.grad.abs().mean().item()
    if normalize == "none":
        assert saturated > 0.99 and grad < 1e-6
    else:
        assert saturated == 0.0 and grad > 1e-2


def test_energy_is_bounded_below_and_mu_is_clamped():
    crf = DenseCRF(w_appearance=0.5, w_smooth=0.5, alpha=3.0)
    v0 = (torch.rand(2, 1, 5, 6) * 0.9 + 0.05).requires_grad_()
    feats = torch.randn(2, 3, 5, 6, requires_grad=True)
    with torch.no_grad():
        crf.compatibility.fill_(-50.0)  # what an unconstrained μ drifts to when E is minimised
    assert (crf.mu() == 0).all()
    assert (crf.energy(v0, feats) >= 0).all()
    with torch.no_grad():
        crf.compatibility.fill_(50.0)
    assert (crf.mu() == crf.max_compatibility).all()
    # ARL's loss term trains neither μ (E is linear in μ) nor the attention; inference does.
    with torch.no_grad():
        crf.compatibility.copy_(torch.tensor([[[0.0, 1.0], [1.0, 0.0]]]))
    q = crf.mean_field(v0, feats)[-1].detach()
    crf.energy(v0, feats, q, energy_wrt="features").sum().backward()
    assert crf.compatibility.grad is None or not crf.compatibility.grad.any()
    assert v0.grad is None or not v0.grad.any()
    assert feats.grad.abs().sum() > 0
    crf(v0, feats).sum().backward()
    assert crf.compatibility.grad.abs().sum() > 0


def test_memory_is_linear_in_the_number_of_pixels():
    # ARL at l = 176: 44×44 maps, 12 AUs; two images = 24 maps. The dense kernels this replaces
    # kept several (24, 1936, 1936) tensors (360 MB each) for backward.
    crf = DenseCRF()
    v0 = torch.rand(24, 1, 44, 44).requires_grad_()
    feats = torch.tanh(torch.randn(24, 16, 44, 44)).requires_grad_()
    saved = []

    def pack(t):
        # Tensors saved several times (the shared mask, queries, keys) are stored once.
        saved.append((t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        refined, e = crf.refine(v0, feats, energy_wrt="features")
    (refined.sum() + e.sum()).backward()
    total = sum(dict(saved).values())
    assert total < 100e6, total / 1e6
    assert torch.isfinite(v0.grad).all() and v0.grad.abs().sum() > 0


def test_gradients_reach_attention_features_and_compatibility():
    crf = DenseCRF(w_appearance=0.3, w_smooth=0.2, alpha=5.0)
    v0 = torch.rand(2, 1, 6, 7).mul(0.9).add(0.05).requires_grad_()
    feats = torch.randn(2, 4, 6, 7, requires_grad=True)
    out = crf(v0, feats)
    assert out.shape == v0.shape and ((out > 0) & (out < 1)).all()
    (out.sum() + crf.energy(v0, feats, out).sum() * 1e-3).backward()
    for t in (v0.grad, feats.grad, crf.compatibility.grad):
        assert t is not None and torch.isfinite(t).all() and t.abs().sum() > 0


def test_potts_initialisation_and_input_checks():
    crf = DenseCRF()
    torch.testing.assert_close(crf.compatibility.detach(), torch.tensor([[[0.0, 1.0], [1.0, 0.0]]]))
    assert not DenseCRF(learn_compatibility=False).compatibility.requires_grad
    with pytest.raises(ValueError, match="features"):
        crf(torch.rand(1, 1, 4, 4), torch.rand(1, 2, 4, 5))
    with pytest.raises(ValueError, match="attention"):
        crf(torch.rand(1, 2, 4, 4), torch.rand(1, 2, 4, 4))


def test_groups_use_their_own_compatibility():
    # Two maps with group-specific μ equal running each map through a one-group CRF with that μ.
    g = torch.Generator().manual_seed(1)
    v0 = torch.rand(4, 1, 5, 5, generator=g) * 0.9 + 0.05
    feats = torch.randn(4, 3, 5, 5, generator=g)
    grouped = DenseCRF(groups=2, w_appearance=0.5, w_smooth=0.4, alpha=3.0)
    mus = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.2, 0.4], [0.7, 0.1]]])
    with torch.no_grad():
        grouped.compatibility.copy_(mus)
        out = grouped(v0, feats)
        for k in range(4):
            single = DenseCRF(w_appearance=0.5, w_smooth=0.4, alpha=3.0)
            single.compatibility.copy_(mus[k % 2][None])
            torch.testing.assert_close(out[k : k + 1], single(v0[k : k + 1], feats[k : k + 1]))
    with pytest.raises(ValueError, match="multiple of groups"):
        grouped(v0[:3], feats[:3])
