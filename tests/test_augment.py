"""Batched face augmentation: geometry, photometry and left/right target swapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from facebehavior.data.augment import AugmentConfig, FaceAugment, lr_swap_index, rgb_to_luma

OFF = dict(
    scale=(1.0, 1.0),
    shift=0.0,
    rotate_deg=0.0,
    p_flip=0.0,
    p_grey=0.0,
    p_lowres=0.0,
    p_blur=0.0,
    p_light=0.0,
    p_occlude=0.0,
    p_noise=0.0,
)


def _aug(**kw: object) -> FaceAugment:
    cfg = {**OFF, **kw}
    return FaceAugment(AugmentConfig(**cfg), generator=torch.Generator().manual_seed(0))


def test_identity_and_uint8_scaling() -> None:
    x = torch.randint(0, 256, (4, 1, 48, 48), dtype=torch.uint8)
    y, flipped = _aug(out_size=48)(x)
    assert y.dtype == torch.float32 and y.shape == (4, 1, 48, 48)
    torch.testing.assert_close(y, x.float() / 255, atol=1e-5, rtol=0)
    assert not flipped.any()


def test_flip_mirrors_image_and_swaps_au_columns() -> None:
    x = torch.rand(3, 1, 32, 32)
    au = torch.tensor([[0.1, 0.9, 0.2], [0.3, 0.4, 0.5], [1.0, 0.0, 0.0]])
    swap = lr_swap_index(["AU01", "AU12L", "AU12R"])
    y, flipped, au2 = _aug(out_size=32, p_flip=1.0)(x, au, swap)
    assert flipped.all()
    torch.testing.assert_close(y, torch.flip(x, dims=[3]), atol=1e-5, rtol=0)
    torch.testing.assert_close(au2, au[:, [0, 2, 1]])
    # Rows not flipped keep their targets.
    mixed = FaceAugment.flip_targets(au, torch.tensor([True, False, False]), swap)
    torch.testing.assert_close(mixed[1:], au[1:])
    torch.testing.assert_close(mixed[0], au[0, [0, 2, 1]])


def test_lr_swap_index_rules() -> None:
    assert lr_swap_index(["AU01", "AU12L", "AU12R"]) == [0, 2, 1]
    assert lr_swap_index(["AU02_left", "x", "AU02_right", "AU04_r", "AU04_l"]) == [2, 1, 0, 4, 3]
    assert lr_swap_index(["pupil", "AU_lower", "AU25"]) == [0, 1, 2]
    with pytest.raises(ValueError, match="AU12R"):
        lr_swap_index(["AU12L", "AU01"])


def test_luma_and_channel_handling() -> None:
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0], x[0, 1], x[0, 2] = 1.0, 0.5, 0.25
    assert float(rgb_to_luma(x)[0, 0, 0, 0]) == pytest.approx(0.299 + 0.587 * 0.5 + 0.114 * 0.25)
    y, _ = _aug(out_size=2, out_channels=1)(x)
    assert y.shape == (1, 1, 2, 2)
    g = torch.rand(2, 1, 16, 16)
    y3, _ = _aug(out_size=16, out_channels=3)(g)
    assert y3.shape == (2, 3, 16, 16) and torch.equal(y3[:, 0], y3[:, 2])
    yg, _ = _aug(out_size=16, out_channels=3, p_grey=1.0)(torch.rand(2, 3, 16, 16))
    torch.testing.assert_close(yg[:, 0], yg[:, 1])


def test_blur_matches_scipy_gaussian() -> None:
    x = torch.rand(2, 1, 24, 24)
    sigma = 0.9
    y, _ = _aug(out_size=24, p_blur=1.0, blur_sigma=(sigma, sigma))(x)
    r = int(np.ceil(3 * sigma))  # the module's kernel radius
    ref = gaussian_filter(x.numpy()[:, 0], sigma=(0, sigma, sigma), mode="mirror", truncate=r / sigma)
    np.testing.assert_allclose(y.numpy()[:, 0], ref, atol=1e-5)


def test_occlusion_is_one_constant_rectangle() -> None:
    x = torch.rand(5, 1, 40, 40) * 0.0 + 0.5
    y, _ = _aug(out_size=40, p_occlude=1.0, occlude_frac=(0.25, 0.25))(x)
    for img in y[:, 0]:
        changed = (img - 0.5).abs() > 1e-6
        if changed.any():
            rows = changed.any(dim=1).nonzero().flatten()
            cols = changed.any(dim=0).nonzero().flatten()
            block = img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert torch.all(block == block[0, 0]) and rows.numel() <= 11 and cols.numel() <= 11


def test_full_pipeline_ranges_and_reproducibility() -> None:
    x = torch.randint(0, 256, (16, 3, 72, 72), dtype=torch.uint8)
    a = FaceAugment(AugmentConfig(out_size=64), generator=torch.Generator().manual_seed(3))
    b = FaceAugment(AugmentConfig(out_size=64), generator=torch.Generator().manual_seed(3))
    ya, fa = a(x)
    yb, fb = b(x)
    assert ya.shape == (16, 1, 64, 64) and float(ya.min()) >= 0 and float(ya.max()) <= 1
    torch.testing.assert_close(ya, yb)
    assert torch.equal(fa, fb)
    with pytest.raises(ValueError, match="au_swap"):
        a(x, au=torch.zeros(16, 3))
    with pytest.raises(ValueError, match=r"\(B, 1\|3, H, W\)"):
        a(torch.zeros(2, 4, 8, 8))
