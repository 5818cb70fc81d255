"""FATAUVA-Net's training choices from a recipe: per-stage validation sets and monitors (attribute
accuracy, AU F1, VA CCC), the center loss of the regression variant, and VA-bin over-sampling."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lightning")

from facebehavior import losses  # noqa: E402
from facebehavior.data.labels import LabelTable  # noqa: E402
from facebehavior.data.sampler import va_sample_weights  # noqa: E402
from facebehavior.train.config import parse_recipe  # noqa: E402
from facebehavior.train.module import FaceBehaviorModule  # noqa: E402
from test_train_multitask import _manifest, _recipe, add_attributes  # noqa: E402, F401


def test_va_bin_sampling_weights():
    va = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]], np.float32)
    t = LabelTable(
        corpus="c", split="train", root=Path("."), image=np.array(list("abcde"), object),
        subject=np.array([""] * 5, object), video=np.array([""] * 5, object), frame=np.zeros(5, np.int64),
        expression=np.full(5, -1), va=va, va_mask=np.array([1, 1, 1, 1, 0], bool),
    )  # fmt: skip
    w = va_sample_weights(t, power=1.0)
    # Valence bins: 0 (x3), 5 (x1) -> freq 3/4, 1/4; arousal all in bin 0 -> freq 1.
    raw = np.array([(3 / 4) ** -0.5, (3 / 4) ** -0.5, (3 / 4) ** -0.5, (1 / 4) ** -0.5])
    np.testing.assert_allclose(w[:4], raw / raw.mean())
    assert w[4] == 0.0 and w[3] > w[0]


def test_center_loss_enters_the_va_term():
    r = parse_recipe({
        "name": "f", "model": {"name": "fatauva_net_tiny", "kwargs": {"va_mode": "regression"}},
        "input": {"size": 64}, "augment": {"target": None},
        "data": {"sets": {"va": {"dataset": "affwild", "root": ".", "sampling": {"kind": "va"}}}},
        "loss": {"va": {"kind": "center_smooth_l1", "center": 0.5}, "au": {"weight": 0.0},
                 "attribute": {"weight": 0.0}, "expression": {"weight": 0.0}},
    })  # fmt: skip
    torch.manual_seed(0)
    m = FaceBehaviorModule(r)
    assert m.va_centers is not None and m.va_centers.shape[:2] == (2, 11)
    out = m(torch.randn(4, 3, 64, 64))
    va = torch.tensor([[0.5, -0.2], [0.1, 0.9], [-1.0, 0.0], [0.3, 0.3]])
    batch = {"va": va, "va_mask": torch.ones(4)}
    got = m._va_loss(out, batch)
    cls = losses.va_to_class(va)
    ref = losses.smooth_l1_turning(out["va"], va, t=1.0) + 0.5 * sum(
        losses.center_loss(out["va_features"][:, d], cls[:, d], m.va_centers[d]) for d in range(2)
    )
    torch.testing.assert_close(got, ref)
    got.backward()
    assert m.va_centers.grad.abs().sum() > 0  # the centers are learned with the network
    with pytest.raises(ValueError, match="va_features"):
        FaceBehaviorModule(replace(r, model=replace(r.model, name="facebehaviornet_mobile_tiny", kwargs={})))


def test_each_stage_selects_on_its_own_metric(tmp_path):
    from facebehavior.models.weights import read_spec
    from facebehavior.train.runner import fit

    root = _manifest(tmp_path / "m", n=32, videos=2)
    part = {"dataset": "manifest", "root": str(root), "split": "train"}
    val = {"dataset": "manifest", "root": str(root), "split": "val"}
    sets = {"attributes": {**part, "hooks": ["test_train_multitask:add_attributes"]}, "au": part}
    stages = [
        {"name": "s1", "max_epochs": 1, "sets": ["attributes"], "loss": {"au": 0.0, "va": 0.0},
         "val": [{**val, "hooks": ["test_train_multitask:add_attributes"]}],
         "monitor": "val/attribute/accuracy", "mode": "max"},
        {"name": "s2", "max_epochs": 1, "sets": ["au"], "freeze": ["core", "attribute_layers"],
         "loss": {"attribute": 0.0, "va": 0.0}, "monitor": "val/au/f1_mean"},
        {"name": "s3", "max_epochs": 1, "sets": ["au"], "loss": {"attribute": 0.0, "au": 0.0},
         "monitor": "val/va/ccc_mean", "mode": "max"},
    ]  # fmt: skip
    r = _recipe(tmp_path, sets, {"name": "fatauva_net_tiny", "kwargs": {"va_mode": "regression"}},
                stages=stages, checkpoint={"monitor": "val/expression/accuracy"})  # fmt: skip
    r.data.val = [
        parse_recipe({"name": "x", "model": {"name": "m"}, "data": {"sets": {"v": val}}}).data.sets["v"]
    ]
    r.input.size = 64
    path = fit(r)
    logged = read_spec(path).extra["val_metrics"]
    assert "best_val/va/ccc_mean" in logged  # the last stage chose on VA CCC
    for stage, metric in (("s1", "val/attribute/accuracy"), ("s2", "val/au/f1_mean")):
        ckpt = torch.load(tmp_path / "run" / stage / "checkpoints" / "best.ckpt", weights_only=False)
        cb = next(v for k, v in ckpt["callbacks"].items() if "ModelCheckpoint" in k)
        assert cb["monitor"] == metric
    assert json.dumps(logged)
