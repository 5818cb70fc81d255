"""Registry-parametrised tests of the model zoo: every registered model builds offline, runs a
forward pass at its paper input size, and back-propagates into exactly its trainable parameters."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import facebehavior as fb
from facebehavior import schema
from facebehavior.models import create_model
from facebehavior.registry import MODELS

# name → (builder kwargs, input shapes (one tensor per positional argument), expected output shapes).
# Every registered model must appear here, so a new model is tested the moment it is registered.
CASES: dict[str, tuple[dict, list[tuple[int, ...]], dict[str, tuple[int, ...]]]] = {
    "mobilenetv2": ({}, [(2, 3, 112, 112)], {"logits": (2, 1000)}),
    "mobilenetv2_tiny": ({}, [(2, 3, 64, 64)], {"logits": (2, 10)}),
    "facebehaviornet_mobile": ({}, [(2, 3, 112, 112)], {"expression": (2, 8), "au": (2, 17), "va": (2, 2)}),
    "facebehaviornet_mobile_tiny": (
        {},
        [(2, 3, 48, 48)],
        {"expression": (2, 8), "au": (2, 17), "va": (2, 2)},
    ),
    "vgg16": ({}, [(2, 3, 224, 224)], {"logits": (2, 1000)}),
    "vgg_face": ({}, [(2, 3, 224, 224)], {"logits": (2, 2622)}),
    "vgg16_tiny": ({}, [(2, 3, 64, 64)], {"logits": (2, 10)}),
    "fbn_fusion_mobile": ({}, [(2, 1, 48, 48), (2, 52)], {"expression": (2, 8), "au": (2, 18), "va": (2, 2)}),
    "fbn_fusion_mobile_tiny": (
        {},
        [(2, 1, 48, 48), (2, 52)],
        {"expression": (2, 8), "au": (2, 18), "va": (2, 2)},
    ),
    "fbn_fusion_compound": ({}, [(2, 1, 48, 48), (2, 52)], {"au": (2, 18), "compound_prob": (2, 2)}),
    "fbn_fusion_compound_tiny": (
        {},
        [(2, 1, 48, 48), (2, 52)],
        {"expression": (2, 8), "au": (2, 18), "va": (2, 2), "compound_logits": (2, 2)},
    ),
    "resnet50": ({}, [(2, 3, 224, 224)], {"logits": (2, 1000)}),
    "resnet50_tiny": ({}, [(2, 3, 96, 96)], {"logits": (2, 10)}),
    "facebehaviornet": ({}, [(2, 3, 96, 96)], {"expression": (2, 7), "au": (2, 17), "va": (2, 2)}),
    "facebehaviornet_tiny": ({}, [(2, 3, 96, 96)], {"expression": (2, 7), "au": (2, 17), "va": (2, 2)}),
    "mt_vgg": ({}, [(2, 3, 96, 96)], {"expression": (2, 7), "au": (2, 8), "va": (2, 2)}),
    "mt_vgg_tiny": ({}, [(2, 3, 96, 96)], {"expression": (2, 7), "au": (2, 8), "va": (2, 2)}),
    "mt_vgg_gru": ({}, [(2, 2, 3, 96, 96)], {"expression": (2, 2, 7), "au": (2, 2, 8), "va": (2, 2, 2)}),
    "mt_vgg_gru_tiny": ({}, [(2, 3, 3, 96, 96)], {"expression": (2, 3, 7), "au": (2, 3, 8), "va": (2, 3, 2)}),
    "av_mt_vgg_gru": (
        {},
        [(2, 2, 3, 96, 96), (2, 2, 1, 96, 96)],
        {"expression": (2, 2, 7), "au": (2, 2, 8), "va": (2, 2, 2)},
    ),
    "av_mt_vgg_gru_tiny": (
        {},
        [(2, 3, 3, 96, 96), (2, 3, 1, 64, 64)],
        {"expression": (2, 3, 7), "au": (2, 3, 8), "va": (2, 3, 2)},
    ),
    "arl": (
        {},
        [(2, 3, 176, 176)],
        {
            "au": (2, 12),
            "attention": (2, 12, 44, 44),
            "attention_init": (2, 12, 44, 44),
            "crf_energy": (2, 12),
        },
    ),
    "arl_tiny": ({}, [(2, 3, 48, 48)], {"au": (2, 3), "attention": (2, 3, 12, 12), "crf_energy": (2, 3)}),
    "iarl": (
        {"aus": schema.DATASET_AU_SUBSETS["fera2015_intensity"]},
        [(2, 3, 176, 176)],
        {"au": (2, 5), "au_intensity": (2, 5), "attention": (2, 5, 44, 44)},
    ),
    "iarl_tiny": ({}, [(2, 3, 48, 48)], {"au": (2, 2), "au_intensity": (2, 2), "crf_energy": (2, 2)}),
    "aunet": ({}, [(2, 3, 224, 224)], {"au": (2, 1)}),
    "aunet_of_alone": ({}, [(2, 3, 224, 224)], {"au": (2, 1)}),
    "aunet_of_channels": ({}, [(2, 3, 224, 224), (2, 3, 224, 224)], {"au": (2, 1)}),
    "aunet_of_horizontal": ({}, [(2, 3, 224, 224), (2, 3, 224, 224)], {"au": (2, 1)}),
    "aunet_pi_conv": ({}, [(2, 3, 224, 224), (2, 3, 224, 224)], {"au": (2, 1)}),
    "aunet_pi_fc6": ({}, [(2, 3, 224, 224), (2, 3, 224, 224)], {"au": (2, 1)}),
    "aunet_pi_fc7": ({}, [(2, 3, 224, 224), (2, 3, 224, 224)], {"au": (2, 1)}),
    # 12 heads would hold 1.45 G parameters; two heads test the same code at the paper's input size.
    "hydranet": ({"aus": (1, 2)}, [(2, 3, 224, 224)], {"au": (2, 2)}),
    "aunets_view_classifier": ({}, [(2, 3, 224, 224)], {"view": (2, 9)}),
    "aunet_tiny": ({}, [(2, 3, 64, 64)], {"au": (2, 1)}),
    "aunet_of_channels_tiny": ({}, [(2, 3, 64, 64), (2, 3, 64, 64)], {"au": (2, 1)}),
    "aunet_of_horizontal_tiny": ({}, [(2, 3, 64, 64), (2, 3, 64, 64)], {"au": (2, 1)}),
    "aunet_pi_tiny": ({}, [(2, 3, 64, 64), (2, 3, 64, 64)], {"au": (2, 1)}),
    "hydranet_tiny": ({}, [(2, 3, 64, 64)], {"au": (2, 3)}),
    "aunets_view_classifier_tiny": ({}, [(2, 3, 64, 64)], {"view": (2, 9)}),
    "aunets_multiview_tiny": ({}, [(4, 3, 64, 64)], {"au": (4, 2), "view_logits": (4, 9), "view": ()}),
    "aunets_multiview": (
        {
            "view_model": "aunets_view_classifier_tiny",
            "view_kwargs": {"num_views": 2},
            "detector_model": "hydranet_tiny",
            "detector_kwargs": {"aus": [1, 12]},
            "num_views": 2,
        },
        [(4, 3, 64, 64)],
        {"au": (4, 2), "view_logits": (4, 2), "view": ()},
    ),  # fmt: skip
    "fatauva_net": ({}, [(2, 3, 112, 112)], {"attribute": (2, 10), "au": (2, 14), "va": (2, 2)}),
    "fatauva_net_tiny": (
        {},
        [(2, 3, 112, 112)],
        {
            "attribute": (2, 10),
            "au": (2, 14),
            "va": (2, 2),
            "valence_logits": (2, 11),
            "arousal_logits": (2, 11),
        },
    ),
    "affwildnet": ({}, [(2, 2, 3, 96, 96), (2, 2, 68, 2)], {"va": (2, 2, 2)}),
    "affwildnet_resnet": ({}, [(2, 2, 3, 96, 96), (2, 2, 68, 2)], {"va": (2, 2, 2)}),
    "cnn_1rnn": ({}, [(2, 2, 3, 96, 96), (2, 2, 68, 2)], {"va": (2, 2, 2)}),
    "cnn_3rnn": ({}, [(2, 2, 3, 96, 96), (2, 2, 68, 2)], {"va": (2, 2, 2)}),
    "affwild_model_fusion": ({}, [(2, 2, 3, 96, 96), (2, 2, 68, 2)], {"va": (2, 2, 2)}),
    "affwild_decision_fusion": ({}, [(2, 2, 3, 96, 96), (2, 2, 68, 2)], {"va": (2, 2, 2)}),
    "affwildnet_tiny": ({}, [(2, 3, 3, 96, 96), (2, 3, 68, 2)], {"va": (2, 3, 2)}),
    "cnn_3rnn_tiny": ({}, [(2, 3, 3, 96, 96), (2, 3, 68, 2)], {"va": (2, 3, 2)}),
    "affwild_model_fusion_tiny": ({}, [(2, 3, 3, 96, 96), (2, 3, 68, 2)], {"va": (2, 3, 2)}),
    "affwild_decision_fusion_tiny": ({}, [(2, 3, 3, 96, 96), (2, 3, 68, 2)], {"va": (2, 3, 2)}),
}


def test_every_registered_model_has_a_case():
    names = fb.list_models(include_tiny=True)
    missing = sorted(set(names) - set(CASES))
    assert not missing, f"add forward-shape cases for {missing}"
    assert sorted(CASES) == names


def _inputs(shapes):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(*s, generator=g) for s in shapes]


# VGG-16 at 224×224 costs ≈15.5 GFLOPs per image (≈3 s per batch of 2 here, 6 s for two streams)
# and 0.5–1 GB of weights to initialise. These run the full forward on the meta device (every op and
# shape check executes, no arithmetic); ``test_full_size_vgg_numeric_forward`` runs the real numbers
# once for the largest layouts.
META_ONLY = {
    "vgg16",
    "vgg_face",
    "aunet",
    "aunet_of_alone",
    "aunet_of_channels",
    "aunet_of_horizontal",
    "aunet_pi_conv",
    "aunet_pi_fc6",
    "aunet_pi_fc7",
    "hydranet",
    "aunets_view_classifier",
    # two VGG-FACE CNN-RNNs each; the sub-networks run numerically as cnn_1rnn / cnn_3rnn
    "affwild_model_fusion",
    "affwild_decision_fusion",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_shapes(name):
    kwargs, shapes, expected = CASES[name]
    torch.manual_seed(0)
    if name in META_ONLY:
        with torch.device("meta"):
            model = create_model(name, **kwargs).eval()
            out = model(*[torch.empty(s) for s in shapes])
        assert {k: tuple(v.shape) for k, v in out.items() if k in expected} == expected
        return
    model = create_model(name, **kwargs).eval()
    with torch.no_grad():
        out = model(*_inputs(shapes))
    assert isinstance(out, dict)
    assert {k: tuple(v.shape) for k, v in out.items() if k in expected} == expected
    for k in expected:
        assert not out[k].is_floating_point() or torch.isfinite(out[k]).all(), f"{name}: non-finite {k}"
    heads = getattr(model, "heads", None)
    if "va" in out and getattr(heads, "va_activation", "tanh") == "tanh":
        assert out["va"].abs().max() <= 1


@pytest.mark.parametrize("name", sorted(n for n in CASES if n.endswith("_tiny")))
def test_backward_reaches_exactly_the_trainable_parameters(name):
    kwargs, shapes, expected = CASES[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs).train()
    out = model(*_inputs(shapes))
    loss = sum(out[k].float().square().mean() for k in expected if out[k].is_floating_point())
    loss.backward()
    unused = ()
    if name == "aunets_multiview_tiny":
        # Only the detectors of the view picked for the video run (and can learn from it).
        unused = tuple(f"detectors.{i}." for i in range(len(model.detectors)) if i != int(out["view"]))
    for pname, p in model.named_parameters():
        if pname.startswith(unused) and unused:
            assert p.grad is None, f"{name}: unselected view detector {pname} received a gradient"
        elif p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"
        else:
            assert p.grad is None, f"{name}: frozen parameter {pname} received a gradient"


def test_unknown_name_lists_valid_models():
    with pytest.raises(KeyError, match="facebehaviornet_mobile"):
        create_model("no_such_model")


def _count(model: torch.nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def _meta(name: str, **kwargs) -> torch.nn.Module:
    """Build on the meta device: parameter shapes without allocating or initialising them."""
    with torch.device("meta"):
        return create_model(name, **kwargs)


def test_mobilenetv2_parameter_count_matches_the_paper():
    # Sandler et al. table 4 reports 3.4 M; torchvision's reference implementation has 3,504,872.
    assert _count(create_model("mobilenetv2")) == 3_504_872


def test_facebehaviornet_mobile_options():
    m = create_model("facebehaviornet_mobile", num_expressions=7, aus=(1, 2, 12), va=False, in_channels=1)
    out = m.eval()(torch.randn(1, 1, 48, 48))
    assert set(out) == {"expression", "au"}
    assert out["au"].shape == (1, 3)
    assert m.task_labels == {"expression": schema.EXPRESSIONS_7, "au": ("AU01", "AU02", "AU12")}
    assert 1.0e6 < _count(create_model("facebehaviornet_mobile")) < 3.0e6
    narrow = create_model("facebehaviornet_mobile", width=0.5)
    assert _count(narrow) < _count(create_model("facebehaviornet_mobile"))
    assert isinstance(m.heads.heads, torch.nn.ModuleDict)
    with pytest.raises(ValueError, match="in_channels"):
        create_model("facebehaviornet_mobile", in_channels=2)
    with pytest.raises(KeyError, match="AU3"):
        create_model("facebehaviornet_mobile", aus=(3,))
    with pytest.raises(ValueError, match="at least one task"):
        create_model("facebehaviornet_mobile", num_expressions=0, aus=(), va=False)
    with pytest.raises(ValueError, match="expects input of shape"):
        m(torch.randn(1, 3, 48, 48))


def test_registry_lookup_works_in_a_fresh_process():
    # MODELS' loader imports facebehavior.models, which registers every architecture.
    code = (
        "from facebehavior.registry import MODELS; import facebehavior as fb; "
        "print(MODELS.names() == fb.list_models(include_tiny=True), "
        "[n for n in fb.list_models() if n.endswith('_tiny')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True []"  # test-width variants are listed only on request
    assert "facebehaviornet_mobile" in MODELS


def _conv(cin: int, cout: int, k: int = 3) -> int:
    return cin * cout * k * k + cout


def _fc(cin: int, cout: int) -> int:
    return cin * cout + cout


# The 13 conv layers of VGG-16, counted by hand from configuration D.
VGG_CONV = sum(
    _conv(a, b)
    for a, b in [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256)]
    + [(256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
)


def test_vgg16_parameter_count():
    expected = VGG_CONV + _fc(512 * 7 * 7, 4096) + _fc(4096, 4096) + _fc(4096, 1000)
    assert expected == 138_357_544  # the figure quoted for VGG-16 (138.36 M)
    assert _count(_meta("vgg16")) == expected


def test_resnet50_parameter_count():
    assert _count(_meta("resnet50")) == 25_557_032  # He et al. / torchvision: 25.56 M


def test_facebehaviornet_parameter_count_at_96():
    # pool5 at 96×96 is 512×3×3; heads: 7 + 17 + 2 outputs of one linear layer on fc7.
    expected = VGG_CONV + _fc(512 * 3 * 3, 4096) + _fc(4096, 4096) + _fc(4096, 7 + 17 + 2)
    assert _count(_meta("facebehaviornet")) == expected == 50_480_986


def test_vgg_rejects_the_wrong_input_size():
    with pytest.raises(ValueError, match="input_size"):
        create_model("vgg16_tiny")(torch.randn(1, 3, 96, 96))
    with pytest.raises(ValueError, match="input_size"):
        create_model("facebehaviornet_tiny")(torch.randn(1, 3, 112, 112))


def test_vgg_features_expose_pools_and_fc():
    m = create_model("vgg16_tiny", input_size=(64, 128)).eval()
    feats = m.forward_features(torch.randn(1, 3, 64, 128))
    assert feats["pool2"].shape == (1, 8, 16, 32)
    assert feats["pool5"].shape == (1, 32, 2, 4)
    assert feats["fc7"].shape == (1, 64)
    assert [n for n, _ in m.trunk.layers.named_children()][:3] == ["conv1_1", "relu1_1", "conv1_2"]


def test_sequence_models_are_causal_per_frame():
    # A GRU only looks back: changing the last frame must leave earlier frames' outputs unchanged.
    m = create_model("mt_vgg_gru_tiny").eval()
    clip = torch.randn(1, 4, 3, 96, 96)
    clip2 = clip.clone()
    clip2[:, -1] = torch.randn(3, 96, 96)
    with torch.no_grad():
        a, b = m(clip)["va"], m(clip2)["va"]
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3], b[:, 3])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["aunet_of_horizontal", "aunet_pi_fc7"])
def test_full_size_vgg_numeric_forward(name):
    # The largest layouts (224×448 input; two full streams) at the paper's size, batch 1, real numbers.
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        out = model(x, torch.randn_like(x))
    assert out["au"].shape == (1, 1) and torch.isfinite(out["au"]).all()


def test_mobilenet_features_and_stem_stride():
    from facebehavior.models.mobilenet import MobileNetV2

    net = MobileNetV2(width=0.25, last_channels=32).eval()
    feats = net.forward_features(torch.randn(1, 3, 64, 64))
    assert list(feats) == ["stride2", "stride4", "stride8", "stride16", "stride32", "last", "pool"]
    assert feats["stride32"].shape[-2:] == (2, 2) and feats["pool"].shape == (1, 32)
    fine = MobileNetV2(width=0.25, last_channels=32, stem_stride=1).eval()
    assert fine.forward_features(torch.randn(1, 3, 48, 48))["last"].shape[-2:] == (3, 3)
    # Same parameters whatever the stride: a checkpoint trained at one stride loads at the other.
    assert sum(p.numel() for p in fine.parameters()) == sum(p.numel() for p in net.parameters())
    with pytest.raises(ValueError, match="at least 32"):
        net(torch.randn(1, 3, 24, 24))


def test_builders_accept_json_kwargs():
    # WeightSpec.arch_kwargs round-trip through JSON: tuples come back as lists.
    m = create_model("facebehaviornet_mobile_tiny", aus=[1, 2, 4], num_expressions=7)
    assert m.task_labels["au"] == ("AU01", "AU02", "AU04")
    v = create_model("vgg16_tiny", input_size=[64, 128])
    assert v(torch.randn(1, 3, 64, 128))["logits"].shape == (1, 10)


@pytest.mark.parametrize("name", sorted(n for n in CASES if n.endswith("_tiny")))
def test_tiny_models_round_trip_through_checkpoints(name, tmp_path):
    from facebehavior.models.weights import WeightSpec, load_weights, save_checkpoint

    kwargs, shapes, expected = CASES[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    spec = WeightSpec(name=f"{name}-test", architecture=name, arch_kwargs=kwargs)
    save_checkpoint(model.state_dict(), spec, tmp_path / "w.safetensors")
    loaded, _ = load_weights(tmp_path / "w.safetensors")
    inputs = _inputs(shapes)
    with torch.no_grad():
        a, b = model(*inputs), loaded(*inputs)
    for k in expected:
        torch.testing.assert_close(a[k], b[k])


def test_va_activation_follows_the_papers():
    # FaceBehaviorNet / MT-VGG: "a (linear) output layer" gives VA; the mobile model bounds it with tanh.
    fbn = create_model("facebehaviornet_tiny")
    assert (
        fbn.heads.va_activation == "linear"
        and create_model("mt_vgg_gru_tiny").heads.va_activation == "linear"
    )
    assert create_model("facebehaviornet_mobile_tiny").heads.va_activation == "tanh"
    bounded = create_model("facebehaviornet_tiny", va_activation="tanh").eval()
    with torch.no_grad():
        bounded.heads.heads["va"].fc.bias.fill_(10.0)
        assert bounded(torch.randn(1, 3, 96, 96))["va"].abs().max() <= 1
    with pytest.raises(ValueError, match="tanh"):
        create_model("facebehaviornet_tiny", va_activation="sigmoid")
