"""FaceBehaviorNet's coupling as a recipe selects it: relatedness table A/B, the reweighted and
normalised distribution-matching variants, and co-annotation with 8-class expression sets."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("lightning")

from facebehavior import losses  # noqa: E402
from facebehavior.train.config import ConfigError, parse_recipe  # noqa: E402
from facebehavior.train.module import FaceBehaviorModule  # noqa: E402

AUS = [1, 2, 4, 6, 12, 25]


def _module(coupling: dict) -> FaceBehaviorModule:
    r = parse_recipe({
        "name": "fbn",
        "model": {"name": "facebehaviornet_mobile_tiny", "kwargs": {"num_expressions": 7, "aus": AUS}},
        "input": {"size": 32}, "augment": {"target": None},
        "data": {"sets": {"e": {"dataset": "affectnet", "root": "."}}},
        "loss": {"coupling": coupling},
    })  # fmt: skip
    return FaceBehaviorModule(r)


def _batch(labels: list[int]) -> dict[str, torch.Tensor]:
    n = len(labels)
    y = torch.tensor(labels)
    return {
        "expression": y, "expression_dist": torch.nn.functional.one_hot(y, 8).float(),
        "expression_mask": torch.ones(n), "expression_hard": torch.ones(n),
        "au": torch.zeros(n, len(AUS)), "au_mask": torch.zeros(n, len(AUS)),
        "va": torch.zeros(n, 2), "va_mask": torch.zeros(n), "set_index": torch.zeros(n, dtype=torch.long),
    }  # fmt: skip


def test_coannotation_ignores_classes_the_head_lacks():
    # AffectNet's 8-class VA set has contempt rows (index 7); the 7-class model co-annotates the rest.
    torch.manual_seed(0)
    m = _module({"coannotation": 1.0})
    out = {"expression": torch.randn(5, 7), "au": torch.randn(5, len(AUS)), "va": torch.zeros(5, 2)}
    terms = m.compute_losses(out, _batch([4, 7, 6, 7, 0]))
    keep = [0, 2, 4]
    sub = {k: v[keep] for k, v in out.items()}
    ref = m.compute_losses(sub, _batch([4, 6, 0]))
    torch.testing.assert_close(terms["coannotation"], ref["coannotation"])
    assert terms["coannotation"] > 0


def test_table_and_distribution_matching_variants_come_from_the_recipe():
    torch.manual_seed(1)
    out = {"expression": torch.randn(4, 7), "au": torch.randn(4, len(AUS)), "va": torch.zeros(4, 2)}
    batch = _batch([4, 1, 2, 3])
    kw = {"emotions": tuple(_module({}).emotions), "aus": tuple(AUS)}
    default = _module({"distribution_matching": 1.0}).compute_losses(out, batch)["distribution_matching"]
    ref = losses.distribution_matching_loss(out["expression"], out["au"], table="A", **kw)
    torch.testing.assert_close(default, ref)  # table A, eq. 2 as written
    variant = {"distribution_matching": 1.0, "table": "B", "distribution_matching_weighted": True,
               "distribution_matching_normalize": "shared"}  # fmt: skip
    got = _module(variant).compute_losses(out, batch)["distribution_matching"]
    ref_b = losses.distribution_matching_loss(
        out["expression"], out["au"], table="B", weighted=True, normalize="shared", **kw
    )
    torch.testing.assert_close(got, ref_b)
    assert not torch.allclose(got, default)
    with pytest.raises(ConfigError, match="distribution_matching_normalize"):
        _module({"distribution_matching_normalize": "mean"})
    with pytest.raises(ConfigError, match="table"):
        _module({"table": "C"})
