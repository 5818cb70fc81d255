"""``facebehavior evaluate`` (the CLI) on AUNets flow models: prepare --flow → train → evaluate.

The corpus is the moving BP4D tree of tests/test_train_flow.py; the flow images come from the
``prepare --flow dis`` cache, exactly as in training.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("lightning")
pytest.importorskip("cv2")

from facebehavior.cli import main  # noqa: E402
from test_train_flow import FRAMES, N_TEST, _recipe, bp4d_moving  # noqa: E402


def _prepare(tmp_path, flow: bool = True):
    root = bp4d_moving(tmp_path / "BP4D")
    out = tmp_path / "cache"
    args = ["prepare", "bp4d", str(root), "--split", "fold1_train", "--split", "fold1_test", "-o",
            str(out / "{split}"), "--size", "64", "--no-detect"]  # fmt: skip
    args += ["--flow", "dis"] if flow else []
    assert main(args) == 0
    return root, out


def _train(tmp_path, root, out, model: dict):
    part = {"dataset": "bp4d", "root": str(root)}
    sets = {"au": {**part, "split": "fold1_train", "cache": str(out / "fold1_train")}}
    recipe = _recipe(tmp_path / "r.yaml", tmp_path / "run", model, sets, [])
    assert main(["train", str(recipe)]) == 0
    return tmp_path / "run" / "t.safetensors"


@pytest.mark.parametrize(
    "model",
    [
        {"name": "aunet_of_horizontal_tiny", "kwargs": {"au": 12}},
        {"name": "aunet_pi_tiny", "kwargs": {"au": 12, "fusion": "fc6"}},
    ],
    ids=["of_horizontal", "pi_fc6"],
)
def test_evaluate_cli_runs_flow_models(tmp_path, capsys, model):
    from facebehavior.data.cache import FaceCache
    from facebehavior.models.transforms import preprocess
    from facebehavior.models.weights import load_weights
    from facebehavior.temporal.flow import flip_flow_image

    root, out = _prepare(tmp_path)
    ckpt = _train(tmp_path, root, out, model)
    capsys.readouterr()
    js = tmp_path / "m.json"
    assert main(["evaluate", str(ckpt), "--cache", str(out / "fold1_test"), "--json", str(js)]) == 0
    res = json.loads(js.read_text())
    n = N_TEST * FRAMES
    assert res["au"]["n"] == n and res["faces"]["with_face"] == n
    assert 0.0 <= res["au"]["f1_mean"] <= 1.0
    assert "AU12  F1" in capsys.readouterr().out

    # The predictions are the model run directly on the cached crop and flow image of each row.
    from facebehavior.train.config import SetConfig
    from facebehavior.train.evaluate import evaluate_checkpoint

    cfg = SetConfig(dataset="cache", root="", cache=str(out / "fold1_test"))
    _, pred = evaluate_checkpoint(ckpt, cfg)
    net, spec = load_weights(ckpt)
    net.eval()
    cache = FaceCache(out / "fold1_test")
    rows = np.arange(len(cache))
    crops = np.stack([cache.crop(i) for i in rows])
    flow = cache.flow_images(cache.table, rows)
    with torch.no_grad():
        logits = net(preprocess(crops, spec.input), preprocess(flow, spec.input))["au"]
    np.testing.assert_allclose(pred["pred_au"], torch.sigmoid(logits).numpy(), atol=1e-5)

    # Test-time flip mirrors the flow image too (x motion negated): the mean of both views.
    _, flipped = evaluate_checkpoint(ckpt, cfg, tta_flip=True)
    with torch.no_grad():
        mirrored = net(preprocess(crops[:, :, ::-1].copy(), spec.input),
                       preprocess(flip_flow_image(flow), spec.input))["au"]  # fmt: skip
    expect = 0.5 * (torch.sigmoid(logits) + torch.sigmoid(mirrored)).numpy()
    np.testing.assert_allclose(flipped["pred_au"], expect, atol=1e-5)


def test_evaluate_flow_model_without_flow_cache_is_one_line(tmp_path, capsys, caplog):
    root, out = _prepare(tmp_path, flow=False)
    # Train on a flow cache elsewhere, then evaluate on the cache without flow.
    _, flow_out = _prepare(tmp_path / "f")
    ckpt = _train(tmp_path, root, flow_out, {"name": "aunet_of_horizontal_tiny", "kwargs": {"au": 12}})
    caplog.clear()
    assert main(["evaluate", str(ckpt), "--cache", str(out / "fold1_test")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "--flow dis" in errors[0] and "\n" not in errors[0]
    assert "Traceback" not in capsys.readouterr().err
