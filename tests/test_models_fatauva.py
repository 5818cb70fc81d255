"""FATAUVA-Net: rPoly blocks, staged freezing, table 2/3 wiring and the class-based V-A decoding."""

from __future__ import annotations

import pytest
import torch

from facebehavior import schema
from facebehavior.models import create_model
from facebehavior.models.fatauva import ATTRIBUTES, AU_BRANCHES, decode_va_classes
from facebehavior.nn.rpoly import RPoly


@pytest.mark.parametrize("order", [2, 3])
def test_rpoly_is_a_polynomial_of_one_shared_residual_function(order):
    torch.manual_seed(0)
    block = RPoly(8, order).eval()
    x = torch.randn(2, 8, 5, 5)
    f = block.f
    terms = [x, f(x), f(f(x)), f(f(f(x)))][: order + 1]
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(sum(terms)))
    with pytest.raises(ValueError):
        RPoly(8, 4)


def test_decode_va_classes_by_hand():
    def logits(probs):
        return torch.log(torch.tensor(probs))

    # Top-3 are classes 6, 7, 8 (values 1, 2, 3): consecutive → weighted mean (0.5·1 + 0.3·2 + 0.1·3)/0.9.
    p = [0.0] * 11
    p[6], p[7], p[8], p[0] = 0.5, 0.3, 0.1, 0.1 - 1e-6
    p = [max(v, 1e-9) for v in p]
    v = decode_va_classes(logits(p)).item()
    assert v == pytest.approx((0.5 * 1 + 0.3 * 2 + 0.1 * 3) / 0.9 / 5, abs=1e-4)
    # Top-3 are classes 0 (−5), 5 (0), 10 (5): not consecutive → top-1 = −5 → −1.
    q = [1e-9] * 11
    q[0], q[5], q[10] = 0.5, 0.3, 0.2
    assert decode_va_classes(logits(q)).item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="11"):
        decode_va_classes(torch.zeros(2, 10))


def test_label_orders_follow_tables_2_and_3():
    m = create_model("fatauva_net_tiny")
    assert m.task_labels["attribute"] == ATTRIBUTES and len(ATTRIBUTES) == 10
    assert m.task_labels["au"] == tuple(schema.get_au(a).code for a in schema.DATASET_AU_SUBSETS["fatauva"])
    assert sorted(a for _, aus in AU_BRANCHES.values() for a in aus) == sorted(
        schema.DATASET_AU_SUBSETS["fatauva"]
    )
    assert len(AU_BRANCHES) == 9


def test_freeze_until_attribute_trains_only_later_stages():
    torch.manual_seed(0)
    m = create_model("fatauva_net_tiny")
    m.freeze_until("attribute")
    m.train()
    assert not m.core.training and not m.attribute_layers.training and m.au_layers.training
    bn = next(mod for mod in m.core.modules() if isinstance(mod, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    out = m(torch.randn(2, 3, 112, 112))
    torch.testing.assert_close(bn.running_mean, before)  # frozen BN statistics do not move
    # (class-based "va" is a top-k decoding, piecewise constant; train through the class logits)
    (out["au"].sum() + out["valence_logits"].square().sum() + out["arousal_logits"].square().sum()).backward()
    for name, p in m.named_parameters():
        frozen = name.startswith(("core.", "attribute_layers.", "attribute_heads."))
        assert p.requires_grad is not frozen
        if frozen:
            assert p.grad is None, name
        elif name.startswith(("au_layers.", "va_layers.")):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    m.freeze_until("au")
    assert not any(p.requires_grad for p in m.au_layers.parameters())
    assert all(p.requires_grad for p in m.va_heads.parameters())
    m.freeze_until(None)
    assert all(p.requires_grad for p in m.parameters())
    with pytest.raises(ValueError, match="stages"):
        m.freeze_until("backbone")


def test_au_branches_only_see_their_facial_part():
    # Chin (AU17, AU26) hangs off the face branch: changing the eyebrow branch's output must not move it.
    torch.manual_seed(0)
    m = create_model("fatauva_net_tiny", va_mode="regression").eval()
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        a = m(x)
        m.attribute_layers["eyebrows"][0][0].weight.mul_(3.0)
        b = m(x)
    aus = list(schema.DATASET_AU_SUBSETS["fatauva"])
    for au in (17, 26, 12, 6, 45):
        assert a["au"][0, aus.index(au)] == pytest.approx(b["au"][0, aus.index(au)].item(), abs=1e-6)
    for au in (1, 2, 4):
        assert a["au"][0, aus.index(au)] != pytest.approx(b["au"][0, aus.index(au)].item(), abs=1e-6)
