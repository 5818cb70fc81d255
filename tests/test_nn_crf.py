"""The fully connected CRF: exact kernel and mean-field against a per-pixel reference, energy
decrease, and its effect on smooth and noisy attention maps."""

from __future__ import annotations

import math

import pytest
import torch

from facebehavior.nn.crf import DenseCRF


def _reference_mean_field(v0, feats, crf: DenseCRF, iters: int):
    """Per-pixel loops straight from the formulas (Krähenbühl & Koltun; ARL eq. 3-4)."""
    h, w = v0.shape
    pix = [(y, x) for y in range(h) for x in range(w)]
    m = len(pix)
    mu = crf.compatibility.detach()[0].tolist()

    def k(j, i):
        (y1, x1), (y2, x2) = pix[j], pix[i]
        dp = (y1 - y2) ** 2 + (x1 - x2) ** 2
        df = sum((feats[c, y1, x1].item() - feats[c, y2, x2].item()) ** 2 for c in range(feats.shape[0]))
        return crf.w_appearance * math.exp(
            -dp / (2 * crf.alpha**2) - df / (2 * crf.beta**2)
        ) + crf.w_smooth * math.exp(-dp / (2 * crf.gamma**2))

    kern = [[k(j, i) if i != j else 0.0 for i in range(m)] for j in range(m)]
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
    energy += sum(
        q[j][a] * mu[a][b] * q[i][b] * kern[j][i]
        for j in range(m)
        for i in range(j + 1, m)
        for a in (0, 1)
        for b in (0, 1)
    )
    return torch.tensor([qq[1] for qq in q]).reshape(h, w), energy


def test_mean_field_and_energy_match_a_per_pixel_reference():
    g = torch.Generator().manual_seed(0)
    v0 = torch.rand(4, 5, generator=g) * 0.9 + 0.05
    feats = torch.randn(3, 4, 5, generator=g) * 2
    crf = DenseCRF(num_iters=3, w_appearance=0.3, w_smooth=0.2, alpha=4.0, beta=2.0, gamma=1.5)
    with torch.no_grad():
        crf.compatibility.copy_(torch.tensor([[[0.1, 1.05], [1.05, -0.05]]]))
        out = crf(v0[None, None], feats[None])
        energy = crf.energy(v0[None, None], feats[None], out)
    ref_q, ref_e = _reference_mean_field(v0, feats, crf, 3)
    torch.testing.assert_close(out[0, 0], ref_q, atol=1e-5, rtol=1e-4)
    assert energy.item() == pytest.approx(ref_e, rel=1e-4)


def _blob(size: int = 44):
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    r = ((ys - 22) ** 2 + (xs - 18) ** 2).sqrt()
    return 0.05 + 0.9 * torch.sigmoid((10 - r) / 1.5)


def test_energy_decreases_and_noisy_pixel_is_suppressed_at_paper_settings():
    # ARL's settings (w1=5, w2=3, α=160, β=3, γ=3, 5 iterations, Potts) on a 44×44 map (l/4, l=176).
    crf = DenseCRF()
    clean = _blob()
    noisy = clean.clone()
    noisy[35, 35] = 0.95  # an isolated false positive far from the blob
    # Pixel features as ARL's would be: they produce the clean attention (v0s = σ(conv(f3s))),
    # while the isolated error is in the attention only.
    feats = (10 * clean)[None].repeat(16, 1, 1)
    with torch.no_grad():
        kern = crf.kernel(feats[None])
        qs = crf.mean_field(noisy[None], feats[None], kern)
        energies = [crf.energy(noisy[None], feats[None], q, kernel=kern).item() for q in qs]
    assert len(qs) == 6
    assert all(b <= a + 1e-3 * abs(a) for a, b in zip(energies, energies[1:], strict=False)), energies
    assert energies[-1] < 0.1 * energies[0]
    refined = qs[-1][0, :, 1].reshape(44, 44)
    assert noisy[35, 35] > 0.9 and refined[35, 35] < 0.05
    # The smooth blob keeps its shape: decisions only change next to the 0.5 contour, values
    # stay strongly correlated (the CRF sharpens them towards 0/1).
    changed = (refined > 0.5) != (clean > 0.5)
    changed[35, 35] = False
    near_contour = (clean - 0.5).abs() < 0.2
    assert not (changed & ~near_contour).any()
    assert changed.sum() <= 0.05 * (clean > 0.5).sum()
    assert torch.corrcoef(torch.stack([refined.flatten(), clean.flatten()]))[0, 1] > 0.9
    far = (clean - 0.5).abs() > 0.4
    assert (refined - clean).abs()[far].max() <= 0.1 + 1e-4


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
