"""Flow and landmark inputs end to end from the CLI: prepare (cache) → train → evaluate.

Tiny corpora are written here in the official layouts, with frames that really move (a textured
image translated frame by frame, ``temporal.flow.synthetic_motion``) for the AUNets flow models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

pytest.importorskip("lightning")
pytest.importorskip("cv2")

from facebehavior.cli import main  # noqa: E402
from facebehavior.data.cache import FaceCache  # noqa: E402
from facebehavior.data.datasets.bp4d import BP4D_PARTS  # noqa: E402
from facebehavior.temporal.flow import synthetic_motion, track_flow_images  # noqa: E402

BP4D_HEADER = "Frame,1,2,4,6,7,10,12,14,15,17,23,24\n"
FRAMES = 4
SUBJECTS = sorted(s for part in BP4D_PARTS for s in part)
N_TEST = len(BP4D_PARTS[2])  # fold 1 tests part 3


def bp4d_moving(root: Path) -> Path:
    """BP4D layout (every subject, as the fold lists need them): 4 moving 64-px frames each."""
    for k, s in enumerate(SUBJECTS):
        frames, _ = synthetic_motion(size=64, frames=FRAMES, shift=(1.0 + k % 3, 0.5), seed=k)
        rows = [f"{f + 1},0,0,0,0,0,0,{f % 2},0,0,0,0,0" for f in range(FRAMES)]
        occ = root / "AUCoding/AU_OCC" / f"{s}_T1.csv"
        occ.parent.mkdir(parents=True, exist_ok=True)
        occ.write_text(BP4D_HEADER + "\n".join(rows) + "\n")
        for f in range(FRAMES):
            path = root / "Sequences" / s / "T1" / f"{f + 1:04d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frames[f]).save(path, quality=95)
    return root


def _recipe(path: Path, out: Path, model: dict, sets: dict, val: list, **extra) -> Path:
    r = {
        "name": "t",
        "seed": 0,
        "output_dir": str(out),
        "model": model,
        "input": {"size": 64, "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3, "template": "arcface"},
        "data": {"batch_size": 4, "eval_batch_size": 4, "num_workers": 0, "sets": sets, "val": val},
        "augment": {"target": None},
        "optim": {"name": "sgd", "lr": 0.01},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "log_every_n_steps": 1, "max_steps": 3},
        "checkpoint": {"monitor": "train/loss", "mode": "min", "export": "t.safetensors"},
        **extra,
    }
    path.write_text(yaml.safe_dump(r))
    return path


def _evaluate(checkpoint: Path, cache: Path, sequence_length: int = 0) -> dict[str, np.ndarray]:
    """Evaluate the exported model on a cache (Lightning-free: load_weights + eval_inputs)."""
    from facebehavior.models.weights import load_weights
    from facebehavior.train.config import SetConfig
    from facebehavior.train.data import LabelledImages, eval_inputs, eval_loader, input_names, load_set
    from facebehavior.train.evaluate import compute_metrics

    model, spec = load_weights(checkpoint)
    model.eval()
    cfg = SetConfig(dataset="cache", root="", cache=str(cache), sequence_length=sequence_length)
    aus = tuple(int(c[2:]) for c in spec.tasks.get("au", ()))
    ds = LabelledImages(load_set(cfg), aus, 3, spec.input.size, sequence_length=sequence_length,
                        inputs=input_names(model))  # fmt: skip
    preds, labels = [], []
    with torch.no_grad():
        for batch in eval_loader(ds, 4):
            out = model(*eval_inputs(model, batch, spec))
            preds.append(out)
            labels.append(batch)
    key = "au" if "au" in spec.tasks else "va"
    pred = torch.cat([p[key] for p in preds]).flatten(0, -2)
    res = {f"pred_{key}": (torch.sigmoid(pred) if key == "au" else pred).numpy()}
    for k in (key, f"{key}_mask"):
        res[k] = (
            torch.cat([b[k] for b in labels]).flatten(0, -2 if k in ("au", "au_mask", "va") else -1).numpy()
        )
    return {"metrics": compute_metrics(res, spec), "n": len(pred)}


def test_bp4d_flow_cache_matches_track_flow(tmp_path, capsys):
    root = bp4d_moving(tmp_path / "BP4D")
    out = tmp_path / "cache"
    args = ["prepare", "bp4d", str(root), "--split", "fold1_train", "--split", "fold1_test",
            "-o", str(out / "{split}"), "--size", "64", "--no-detect", "--flow", "dis"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr()
    cache = FaceCache(out / "fold1_train")
    n = (len(SUBJECTS) - N_TEST) * FRAMES
    assert len(cache) == n
    flow = cache.flow_images(cache.table, range(len(cache)))
    assert flow.shape == (n, 64, 64, 3) and flow.dtype == np.uint8
    # The cached images are exactly the track rule applied to each video's crops in frame order.
    first = np.flatnonzero(cache.table.video == cache.table.video[0])
    first = first[np.argsort(cache.table.frame[first])]
    expect = track_flow_images(np.stack([cache.crop(int(i)) for i in first]))
    np.testing.assert_array_equal(flow[first], expect)
    assert flow[first][:, 16:-16, 16:-16, 0].mean() > 140  # rightward motion
    # Re-running prepare keeps the flow (same settings), and a cache without flow says what to do.
    assert main(args) == 0
    assert main(["prepare", "bp4d", str(root), "--split", "fold1_test", "-o", str(tmp_path / "plain"),
                 "--size", "64", "--no-detect"]) == 0  # fmt: skip
    with pytest.raises(ValueError, match="--flow dis"):
        FaceCache(tmp_path / "plain" / "fold1_test").flow_images(None, [0])


@pytest.mark.parametrize(
    "model",
    [
        {"name": "aunet_tiny", "kwargs": {"au": 12, "optical_flow": "alone"}},
        {"name": "aunet_of_channels_tiny", "kwargs": {"au": 12}},
        {"name": "aunet_of_horizontal_tiny", "kwargs": {"au": 12}},
        {"name": "aunet_pi_tiny", "kwargs": {"au": 12, "fusion": "conv"}},
        {"name": "aunet_pi_tiny", "kwargs": {"au": 12, "fusion": "fc6"}},
        {"name": "aunet_pi_tiny", "kwargs": {"au": 12, "fusion": "fc7"}},
    ],
    ids=["alone", "channels", "horizontal", "pi_conv", "pi_fc6", "pi_fc7"],
)
def test_flow_models_prepare_train_evaluate(tmp_path, capsys, model):
    root = bp4d_moving(tmp_path / "BP4D")
    out = tmp_path / "cache"
    assert main(["prepare", "bp4d", str(root), "--split", "fold1_train", "--split", "fold1_test", "-o",
                 str(out / "{split}"), "--size", "64", "--no-detect", "--flow", "dis"]) == 0  # fmt: skip
    part = {"dataset": "bp4d", "root": str(root)}
    sets = {"au": {**part, "split": "fold1_train", "cache": str(out / "fold1_train")}}
    val = [{**part, "split": "fold1_test", "cache": str(out / "fold1_test")}]
    # Training augments the flow image with its face (shift, scale, flip), as the AUNets recipe does.
    geometry = {"scale": [1.0, 1.05], "shift": 0.03, "rotate_deg": 0.0, "p_flip": 0.5}
    off = {k: 0.0 for k in ("p_lowres", "p_blur", "p_light", "p_occlude", "p_noise", "p_grey")}
    augment = {"target": "facebehavior.data.augment:FaceAugment", "config": {**geometry, **off}}
    recipe = _recipe(tmp_path / "r.yaml", tmp_path / "run", model, sets, val, augment=augment)
    assert main(["train", str(recipe)]) == 0, capsys.readouterr()
    res = _evaluate(tmp_path / "run" / "t.safetensors", out / "fold1_test")
    assert res["n"] == N_TEST * FRAMES and res["metrics"]["au"]["n"] == N_TEST * FRAMES
    assert 0.0 <= res["metrics"]["au"]["f1_mean"] <= 1.0


def test_flow_model_without_flow_cache_is_a_clear_error(tmp_path, caplog):
    root = bp4d_moving(tmp_path / "BP4D")
    out = tmp_path / "cache"
    assert main(["prepare", "bp4d", str(root), "--split", "fold1_train", "-o", str(out / "{split}"),
                 "--size", "64", "--no-detect"]) == 0  # fmt: skip
    sets = {
        "au": {
            "dataset": "bp4d",
            "root": str(root),
            "split": "fold1_train",
            "cache": str(out / "fold1_train"),
        }
    }
    recipe = _recipe(tmp_path / "r.yaml", tmp_path / "run", {"name": "aunet_of_horizontal_tiny"}, sets, [])
    assert main(["train", str(recipe)]) != 0
    assert "--flow dis" in caplog.text
    raw = {"au": {"dataset": "bp4d", "root": str(root), "split": "fold1_train"}}
    recipe = _recipe(tmp_path / "r2.yaml", tmp_path / "run2", {"name": "aunet_of_horizontal_tiny"}, raw, [])
    assert main(["train", str(recipe)]) != 0
    assert "face-crop cache" in caplog.text


def test_flow_recipe_declares_flow_inputs(monkeypatch, tmp_path):
    from facebehavior.train.config import load_recipe
    from facebehavior.train.data import recipe_input_names

    monkeypatch.setenv("FACEBEHAVIOR_DATA", str(tmp_path))
    monkeypatch.setenv("FACEBEHAVIOR_CACHE", str(tmp_path))
    r = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "aunets_of_horizontal_bp4d.yaml")
    assert recipe_input_names(r) == ("image", "flow") and r.augment.config["rotate_deg"] == 0.0
