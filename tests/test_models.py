"""Registry-parametrised tests of the model zoo: every registered model builds offline, runs a
forward pass at its paper input size, and back-propagates into exactly its trainable parameters."""

from __future__ import annotations

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
}


def test_every_registered_model_has_a_case():
    names = fb.list_models()
    missing = sorted(set(names) - set(CASES))
    assert not missing, f"add forward-shape cases for {missing}"
    assert sorted(CASES) == names


def _inputs(shapes):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(*s, generator=g) for s in shapes]


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_shapes(name):
    kwargs, shapes, expected = CASES[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    with torch.no_grad():
        out = model(*_inputs(shapes))
    assert isinstance(out, dict)
    assert {k: tuple(v.shape) for k, v in out.items() if k in expected} == expected
    for k in expected:
        assert torch.isfinite(out[k]).all(), f"{name}: non-finite {k}"
    if "va" in out:
        assert out["va"].abs().max() <= 1


@pytest.mark.parametrize("name", sorted(n for n in CASES if n.endswith("_tiny")))
def test_backward_reaches_exactly_the_trainable_parameters(name):
    kwargs, shapes, expected = CASES[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs).train()
    out = model(*_inputs(shapes))
    loss = sum(out[k].float().square().mean() for k in expected)
    loss.backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"
        else:
            assert p.grad is None, f"{name}: frozen parameter {pname} received a gradient"


def test_unknown_name_lists_valid_models():
    with pytest.raises(KeyError, match="facebehaviornet_mobile"):
        create_model("no_such_model")


def _count(model: torch.nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


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


def test_registry_direct_lookup_matches_create_model():
    fb.list_models()
    assert "facebehaviornet_mobile" in MODELS
