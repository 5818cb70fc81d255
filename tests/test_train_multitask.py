"""End-to-end recipes on manifest fixture trees: three task sets with coupling, a union set,
sequence clips (AffWildNet), stage-wise freezing (FATAUVA-Net), ARL's extra loss outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("lightning")

from facebehavior.train.config import parse_recipe  # noqa: E402

AU_COLS = (1, 2, 4, 6, 12)


def _manifest(root, n=24, videos=0, seed=0):
    """A manifest corpus: PNG faces with expression / AU / VA labels (VA only on video rows)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    head = ["image", "split", "subject", "video", "frame", "expression", "valence", "arousal"]
    head += [f"AU{a}" for a in AU_COLS]
    lines = [",".join(head)]
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / f"{i}.png")
        split = "train" if i < n * 3 // 4 else "val"
        video, frame = (f"v{i % videos}", str(i // videos)) if videos else ("", "")
        expr = str(i % 7)
        va = [f"{rng.uniform(-1, 1):.3f}", f"{rng.uniform(-1, 1):.3f}"]
        aus = [str(int(rng.integers(0, 2))) for _ in AU_COLS]
        lines.append(",".join([f"{i}.png", split, f"s{i % 3}", video, frame, expr, *va, *aus]))
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root


def _recipe(tmp_path, sets, model, **extra):
    data = {
        "name": "mt",
        "output_dir": str(tmp_path / "run"),
        "model": model,
        "input": {"size": 32, "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3, "template": "arcface"},
        "data": {"batch_size": 9, "eval_batch_size": 8, "sets": sets},
        "augment": {"target": None},
        "optim": {"name": "sgd", "lr": 0.01},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "log_every_n_steps": 1},
    }
    data.update(extra)
    return parse_recipe(data)


def test_three_task_sets_with_coupling_and_union(tmp_path):
    from facebehavior.models.weights import load_weights
    from facebehavior.train.runner import fit

    a, b = _manifest(tmp_path / "a"), _manifest(tmp_path / "b", seed=1)
    part = {"dataset": "manifest", "split": "train"}
    sets = {
        "va": {**part, "root": str(a), "hooks": ["test_train_multitask:va_only"]},
        "au": {**part, "root": str(a), "hooks": ["test_train_multitask:au_only"]},
        "expr": {
            "parts": [{**part, "root": str(a)}, {**part, "root": str(b)}],
            "hooks": [],
            "sampling": {"kind": "expression"},
        },  # fmt: skip
    }
    model = {"name": "facebehaviornet_mobile_tiny", "kwargs": {"num_expressions": 7, "aus": list(AU_COLS)}}
    loss = {"coupling": {"soft_coannotation": 0.5, "distribution_matching": 0.5, "coannotation": 0.5}}
    r = _recipe(tmp_path, sets, model, loss=loss)
    r.data.val = [parse_recipe({"name": "x", "model": model, "data": {"sets": {"v": {**part, "root": str(a),
                                "split": "val"}}}}).data.sets["v"]]  # fmt: skip
    path = fit(r)
    m, spec = load_weights(path)
    assert (
        spec.tasks["au"] == ("AU01", "AU02", "AU04", "AU06", "AU12")
        and spec.tasks["expression"][0] == "neutral"
    )
    logged = spec.extra["val_metrics"]
    assert {"val/expression/accuracy", "val/au/f1_mean"} <= set(logged)


def va_only(table, adapter):
    """Hook: keep only the VA labels (a VA-Set)."""
    from dataclasses import replace

    return replace(table, expression=np.full(len(table), -1), au_mask=np.zeros_like(table.au_mask))


def au_only(table, adapter):
    """Hook: keep only the AU labels (an AU-Set)."""
    from dataclasses import replace

    return replace(table, expression=np.full(len(table), -1), va_mask=np.zeros_like(table.va_mask))


def add_attributes(table, adapter):
    """Hook: 10 synthetic CelebA-style attributes in ``extra``."""
    from dataclasses import replace

    rng = np.random.default_rng(0)
    return replace(table, extra={"attributes": rng.integers(0, 2, (len(table), 10)).astype(np.float32)})


def test_sequence_clips_train_a_gru(tmp_path):
    from facebehavior.data.datasets import create_dataset
    from facebehavior.train.data import LabelledImages, SetData
    from facebehavior.train.runner import fit

    root = _manifest(tmp_path / "m", n=40, videos=2)
    table = create_dataset("manifest", root).load("train")  # 30 rows: v0 frames 0..14, v1 frames 0..14
    ds = LabelledImages(SetData(create_dataset("manifest", root), table), AU_COLS, 3, 32, sequence_length=4)
    assert len(ds) == 6  # 3 whole clips of 4 per video of 15 frames
    clip = ds.__getitems__([0, 5])
    assert clip["image"].shape == (2, 4, 3, 32, 32) and clip["va"].shape == (2, 4, 2)
    rows = ds.clips[0]
    assert (table.video[rows] == table.video[rows[0]]).all() and (np.diff(table.frame[rows]) == 1).all()
    sets = {"va": {"dataset": "manifest", "root": str(root), "split": "train", "sequence_length": 4}}
    model = {"name": "mt_vgg_gru_tiny", "kwargs": {"input_size": 32}}
    r = _recipe(tmp_path, sets, model, loss={"expression": {"weight": 0.0}, "au": {"weight": 0.0}})
    r.data.batch_size = 2
    fit(r)


def test_stagewise_freezing(tmp_path):
    from facebehavior.train.module import FaceBehaviorModule
    from facebehavior.train.runner import fit

    root = _manifest(tmp_path / "m")
    part = {"dataset": "manifest", "root": str(root), "split": "train"}
    sets = {"attributes": {**part, "hooks": ["test_train_multitask:add_attributes"]}, "au": part}
    stages = [
        {"name": "s1", "max_epochs": 1, "sets": ["attributes"], "loss": {"au": 0.0, "va": 0.0}},
        {
            "name": "s2",
            "max_epochs": 1,
            "sets": ["au"],
            "freeze": ["core", "attribute_layers"],
            "loss": {"attribute": 0.0, "va": 0.0},
        },  # fmt: skip
    ]
    r = _recipe(
        tmp_path, sets, {"name": "fatauva_net_tiny", "kwargs": {"va_mode": "regression"}}, stages=stages
    )
    r.input.size = 64
    seen = {}
    import lightning as L

    class Snap(L.Callback):
        def on_train_start(self, trainer, pl_module):
            seen.setdefault("starts", []).append(
                {k: v.clone() for k, v in pl_module.model.state_dict().items()}
            )

    from facebehavior.models.weights import load_weights

    model, _ = load_weights(fit(r, callbacks=[Snap()]))
    before_s2 = seen["starts"][1]
    after = model.state_dict()
    core = [k for k in after if k.startswith("core.")]  # weights and BatchNorm statistics
    assert any(k.endswith("running_mean") for k in core)
    au = [k for k in after if k.startswith("au_heads.") and k.endswith("weight")]
    assert core and au
    assert all(torch.equal(before_s2[k], after[k]) for k in core)  # frozen in stage 2
    assert any(not torch.equal(before_s2[k], after[k]) for k in au)  # trained in stage 2
    assert FaceBehaviorModule  # imported for the stage API


def test_extra_output_terms_enter_the_loss():
    from facebehavior.train.module import FaceBehaviorModule

    r = parse_recipe({
        "name": "arl", "model": {"name": "arl_tiny", "kwargs": {"aus": [1, 2, 12]}},
        "input": {"size": 48}, "augment": {"target": None},
        "data": {"sets": {"au": {"dataset": "bp4d", "root": "."}}},
        "loss": {"au": {"weighting": "arl"}, "outputs": {"crf_energy": 1.0}},
    })  # fmt: skip
    m = FaceBehaviorModule(r, au_rates=np.array([0.2, 0.3, 0.5]))
    x = torch.rand(2, 3, 48, 48)
    out = m(x)
    batch = {
        "au": torch.ones(2, 3), "au_mask": torch.ones(2, 3), "set_index": torch.zeros(2, dtype=torch.long),
        "expression_dist": torch.zeros(2, 8), "expression_mask": torch.zeros(2),
        "expression": torch.zeros(2).long(),
        "va": torch.zeros(2, 2), "va_mask": torch.zeros(2),
    }  # fmt: skip
    terms = m.compute_losses(out, batch)
    torch.testing.assert_close(terms["crf_energy"], out["crf_energy"].sum(1).mean())
    torch.testing.assert_close(terms["loss"], terms["au"] + terms["crf_energy"])
    with pytest.raises(KeyError, match="no output 'nope'"):
        m.recipe.loss.outputs = {"nope": 1.0}
        m.compute_losses(out, batch)
