"""Patch-wise region convolutions are independent per patch and equal separate per-patch convs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facebehavior.models import create_model
from facebehavior.nn.region import HierarchicalRegionLayer, PatchConv


def test_patch_conv_equals_independent_convs_per_patch():
    torch.manual_seed(0)
    layer = PatchConv(3, 5, grid=4).eval()
    with torch.no_grad():
        layer.bn.running_mean.uniform_(-0.5, 0.5)
        layer.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 16, 24)
    out = layer(x)
    w = layer.conv.weight.reshape(16, 5, 3, 3, 3)
    bn = layer.bn
    for gy in range(4):
        for gx in range(4):
            k = gy * 4 + gx
            patch = x[:, :, gy * 4 : gy * 4 + 4, gx * 6 : gx * 6 + 6]
            ref = F.conv2d(patch, w[k], padding=1)
            sl = slice(k * 5, k * 5 + 5)
            ref = (ref - bn.running_mean[sl, None, None]) / torch.sqrt(
                bn.running_var[sl, None, None] + bn.eps
            )
            ref = torch.relu(ref * bn.weight[sl, None, None] + bn.bias[sl, None, None])
            torch.testing.assert_close(
                out[:, :, gy * 4 : gy * 4 + 4, gx * 6 : gx * 6 + 6], ref, atol=1e-5, rtol=1e-4
            )


def test_patches_do_not_see_each_other():
    layer = PatchConv(2, 2, grid=2).eval()
    x = torch.randn(1, 2, 8, 8)
    x2 = x.clone()
    x2[:, :, :4, :4] += 10  # change only the top-left patch
    out, out2 = layer(x), layer(x2)
    torch.testing.assert_close(out[:, :, 4:, :], out2[:, :, 4:, :])
    torch.testing.assert_close(out[:, :, :, 4:], out2[:, :, :, 4:])
    assert not torch.allclose(out[:, :, :4, :4], out2[:, :, :4, :4])


def test_region_layer_shapes_and_errors():
    layer = HierarchicalRegionLayer(3, 16)
    assert layer(torch.randn(1, 3, 32, 32)).shape == (1, 16, 32, 32)
    with pytest.raises(ValueError, match="multiples of 8"):
        layer(torch.randn(1, 3, 36, 36))
    with pytest.raises(ValueError, match="multiple of 16"):
        create_model("arl", input_size=180)


def test_arl_outputs_are_consistent_with_its_crf():
    torch.manual_seed(0)
    m = create_model("arl_tiny").eval()
    with torch.no_grad():
        out = m(torch.randn(2, 3, 48, 48))
    assert ((out["attention"] >= 0) & (out["attention"] <= 1)).all()
    assert ((out["attention_init"] > 0) & (out["attention_init"] < 1)).all()
    assert m.task_labels == {"au": ("AU01", "AU02", "AU12")}
    assert out["crf_energy"].shape == (2, 3) and torch.isfinite(out["crf_energy"]).all()
    iarl = create_model("iarl_tiny").eval()
    with torch.no_grad():
        o = iarl(torch.randn(1, 3, 48, 48))
    torch.testing.assert_close(o["au_intensity"], torch.sigmoid(o["au"]) * 5)
