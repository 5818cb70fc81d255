"""AUNets / HydraNet: table-3 parameter counts, freezing, optical-flow initialisation, view logic."""

from __future__ import annotations

import pytest
import torch

from facebehavior.models import create_model
from facebehavior.models.aunets import AUNet, video_view

CONV = 14_714_688  # VGG-16's 13 conv layers
FC6 = 25088 * 4096 + 4096
FC6_WIDE = 50176 * 4096 + 4096  # 512·7·14 (224×448 input) or 1024·7·7 (concatenated streams)
FC7 = 4096 * 4096 + 4096
FC8 = 4096 * 2 + 2


def _counts(name, **kwargs):
    with torch.device("meta"):
        m = create_model(name, **kwargs)
    total = sum(p.numel() for p in m.parameters())
    return total, sum(p.numel() for p in m.parameters() if p.requires_grad)


# name → (hand-computed total, hand-computed learnable, paper total (m), paper learnable (m))
TABLE3 = {
    "hydranet": (CONV + FC6 + FC7 + FC8, FC6 + FC7 + FC8, 134, 119),
    "aunet": (CONV + FC6 + FC7 + FC8, CONV + FC6 + FC7 + FC8, 134, 134),
    "aunet_of_channels": (CONV + 3 * 64 * 9 + FC6 + FC7 + FC8, CONV + 3 * 64 * 9 + FC6 + FC7 + FC8, 134, 134),
    "aunet_of_horizontal": (CONV + FC6_WIDE + FC7 + FC8, CONV + FC6_WIDE + FC7 + FC8, 237, 237),
    "aunet_pi_conv": (2 * CONV + FC6_WIDE + FC7 + FC8, CONV + FC6_WIDE + FC7 + FC8, 251, 237),
    "aunet_pi_fc6": (
        2 * (CONV + FC6) + (8192 * 4096 + 4096) + FC8,
        CONV + FC6 + (8192 * 4096 + 4096) + FC8,
        268,
        151,
    ),
    "aunet_pi_fc7": (2 * (CONV + FC6 + FC7) + 8192 * 2 + 2, CONV + FC6 + FC7 + 8192 * 2 + 2, 268, 134),
}


@pytest.mark.parametrize("name", sorted(TABLE3))
def test_table3_parameter_counts(name):
    total, learnable = _counts(name, **({"aus": (12,)} if name == "hydranet" else {}))
    exp_total, exp_learn, paper_total, paper_learn = TABLE3[name]
    assert (total, learnable) == (exp_total, exp_learn)
    assert abs(total / 1e6 - paper_total) / paper_total < 0.01
    assert abs(learnable / 1e6 - paper_learn) / paper_learn < 0.01


def test_hydranet_trunk_is_frozen_and_heads_grow():
    m = create_model("hydranet_tiny", aus=(1, 2))
    assert not any(p.requires_grad for p in m.trunk.parameters())
    m.grow_head(12)
    assert m.aus == (1, 2, 12) and m.task_labels["au"] == ("AU01", "AU02", "AU12")
    assert m(torch.randn(2, 3, 64, 64))["au"].shape == (2, 3)
    with pytest.raises(ValueError, match="already"):
        m.grow_head(1)


def test_channels_variant_from_rgb_matches_rgb_when_flow_is_zero():
    # First-layer OF filters copied from RGB: with a zero flow image the 6-channel net is the RGB net.
    torch.manual_seed(0)
    rgb = create_model("aunet_tiny").eval()
    ch = create_model("aunet_of_channels_tiny").eval()
    ch.init_from_rgb(rgb)
    w = ch.trunk.layers.conv1_1.weight
    torch.testing.assert_close(w[:, 3:], w[:, :3])
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ch(x, torch.zeros_like(x))["au"], rgb(x)["au"] * 1.0)
    # …and the builder alone already starts with equal RGB and OF filters.
    w0 = create_model("aunet_of_channels_tiny").trunk.layers.conv1_1.weight
    torch.testing.assert_close(w0[:, 3:], w0[:, :3])


def test_horizontal_variant_replicates_fc6_and_pi_copies_the_encoder():
    torch.manual_seed(0)
    rgb = create_model("aunet_tiny").eval()
    hor = create_model("aunet_of_horizontal_tiny").eval()
    hor.init_from_rgb(rgb)
    c = rgb.trunk.out_channels
    w = hor.fc.fc6.weight.reshape(-1, c, 2, 4)
    torch.testing.assert_close(w[..., :2], w[..., 2:])
    torch.testing.assert_close(w[..., :2].reshape(w.shape[0], -1), rgb.fc.fc6.weight)
    # Same image on both halves → pool5 halves equal → fc6 sees the RGB features twice.
    x = torch.randn(1, 3, 64, 64)
    assert hor(x, x)["au"].shape == (1, 1)
    pi = create_model("aunet_pi_tiny", fusion="fc7")
    pi.init_from_rgb(rgb)
    for stream in (pi.rgb, pi.flow):
        torch.testing.assert_close(stream.trunk.layers.conv1_1.weight, rgb.trunk.layers.conv1_1.weight)
    assert not any(p.requires_grad for p in pi.rgb.parameters())
    assert all(p.requires_grad for p in pi.flow.parameters())
    with pytest.raises(ValueError, match="flow"):
        create_model("aunet_of_horizontal_tiny")(x)


def test_binary_softmax_log_odds():
    m = AUNet(au=6, input_size=64, width=1 / 16, hidden=8).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        logits2 = torch.nn.functional.linear(m.fc(m.trunk(x).flatten(1)), m.fc8.weight, m.fc8.bias)
        p_present = torch.softmax(logits2, 1)[:, 1]
        torch.testing.assert_close(torch.sigmoid(m(x)["au"][:, 0]), p_present)


def test_video_view_takes_the_view_with_the_highest_frame_probability():
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.1, 0.4], [0.05, 0.9, 0.05]]))
    assert int(video_view(logits)) == 1  # 0.9 beats 0.6 even though view 0 wins 2 of 3 frames
    with pytest.raises(ValueError):
        video_view(torch.zeros(0, 9))


def test_multiview_runs_only_the_selected_views_detectors():
    torch.manual_seed(0)
    mv = create_model("aunets_multiview_tiny", num_views=3).eval()
    frames = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        mv.view_classifier.heads["view"].bias.copy_(torch.tensor([0.0, 50.0, 0.0]))
        out = mv(frames)
        assert int(out["view"]) == 1
        torch.testing.assert_close(out["au"], mv.detectors[1](frames)["au"])
        assert not torch.allclose(out["au"], mv.detectors[0](frames)["au"])


def test_au_ensemble_stacks_independent_detectors_in_order():
    from facebehavior.models.aunets import AUEnsemble

    torch.manual_seed(0)
    nets = {12: create_model("aunet_tiny", au=12).eval(), 1: create_model("aunet_tiny", au=1).eval()}
    ens = AUEnsemble(nets).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = ens(x)["au"]
        torch.testing.assert_close(out, torch.cat([nets[12](x)["au"], nets[1](x)["au"]], 1))
    assert ens.task_labels == {"au": ("AU12", "AU01")}
