"""``model.init``: initialising a model from a checkpoint of another model, with name and per-AU
head remapping (ARL's BP4D → DISFA: AUs 9, 25, 26 from 10, 23, 24; Aff-Wild → MT-VGG), and the
report of what was loaded."""

from __future__ import annotations

import json

import pytest
import torch

from facebehavior.models import create_model
from facebehavior.models.weights import WeightSpec, init_from_checkpoint, save_checkpoint


def _export(model, path, arch, kwargs):
    tasks = {k: tuple(v) for k, v in model.task_labels.items()}
    save_checkpoint(
        model.state_dict(), WeightSpec(name="src", architecture=arch, arch_kwargs=kwargs, tasks=tasks), path
    )
    return path


def test_arl_au_branches_move_au_by_au(tmp_path):
    torch.manual_seed(0)
    src = create_model("arl_tiny", aus=(1, 2, 10, 23, 24))
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    path = _export(src, tmp_path / "bp4d.safetensors", "arl_tiny", {"aus": [1, 2, 10, 23, 24]})
    dst = create_model("arl_tiny", aus=(1, 9, 25, 26))
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    rep = init_from_checkpoint(dst, path, au_map={9: 10, 25: 23})
    s, d = src.state_dict(), dst.state_dict()
    src_idx = {1: 0, 9: 2, 25: 3}  # target AU -> source block (AU1, AU10, AU23)
    for name in ("head_weight", "head_bias", "channel_fc", "crf.compatibility", "conv_f2.0.weight",
                 "conv_f3s.1.running_mean", "conv_v0.weight"):  # fmt: skip
        bs = s[name].shape[0] // 5
        for i, au in enumerate((1, 9, 25, 26)):
            block = d[name][i * bs : (i + 1) * bs]
            if au in src_idx:
                j = src_idx[au]
                torch.testing.assert_close(block, s[name][j * bs : (j + 1) * bs], msg=f"{name} AU{au}")
            else:  # AU26: no source AU and none mapped -> its initialisation
                torch.testing.assert_close(block, before[name][i * bs : (i + 1) * bs])
    # Shared layers (region learning) load whole.
    torch.testing.assert_close(d["region.0.input_layer.0.weight"], s["region.0.input_layer.0.weight"])
    assert rep.au_sources == {1: 1, 9: 10, 25: 23, 26: None}
    assert not rep.missing and not rep.mismatched and not rep.unused
    assert "AU heads from source AUs {9: 10, 25: 23, 26: None}" in rep.summary()
    with pytest.raises(Exception, match="au_map needs a source with AU labels"):
        torch.save({"state_dict": {f"model.{k}": v for k, v in s.items()}}, tmp_path / "x.ckpt")
        init_from_checkpoint(dst, tmp_path / "x.ckpt", au_map={9: 10})


def test_mt_vgg_from_an_affwild_sequence_model(tmp_path):
    torch.manual_seed(1)
    src = create_model("mt_vgg_gru_tiny")
    path = _export(src, tmp_path / "affwild.safetensors", "mt_vgg_gru_tiny", {})
    dst = create_model("mt_vgg_tiny")
    rep = init_from_checkpoint(dst, path, rename={"trunk.": "encoder.trunk."})
    trunk = [k for k in dst.state_dict() if k.startswith("trunk.")]
    assert trunk and set(trunk) <= set(rep.loaded)
    for k in trunk:
        torch.testing.assert_close(dst.state_dict()[k], src.state_dict()["encoder." + k])
    # The heads read a 64-d FC in MT-VGG and the GRU's 16-d state in the source: kept, reported.
    assert rep.mismatched["heads.heads.au.weight"] == ((8, 16), (8, 64))
    assert "neck.fc6.weight" in rep.missing
    assert any(k.startswith("encoder.gru.") for k in rep.unused)


def test_recipe_init_runs_and_writes_the_report(tmp_path):
    pytest.importorskip("lightning")
    from facebehavior.models.weights import load_weights
    from facebehavior.train.module import FaceBehaviorModule
    from facebehavior.train.runner import export_model, fit
    from test_train import _fer_recipe

    first = FaceBehaviorModule(_fer_recipe(tmp_path, "a"))
    src = tmp_path / "src.safetensors"
    export_model(first, src)
    r = _fer_recipe(tmp_path, "b", model__init={"path": str(src)})
    r.trainer.max_epochs = 1
    module = FaceBehaviorModule(r)
    for k, v in first.model.state_dict().items():  # the module starts from the checkpoint
        torch.testing.assert_close(module.model.state_dict()[k], v)
    out = fit(r)
    report = json.loads((tmp_path / "b" / "init_report.json").read_text())
    assert report["source"] == str(src) and not report["missing"] and len(report["loaded"]) > 10
    load_weights(out)
