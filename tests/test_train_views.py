"""FERA 2017 view labels and the view loss: AUNets' view classifier trains on the camera view encoded
in each FERA 2017 video's name (``FERA17_TR_F001_T1_<view>.mp4``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facebehavior.data.datasets import create_dataset

OCC_HEADER = "Frame,AU01,AU04,AU06,AU07,AU10,AU12,AU14,AU15,AU17,AU23\n"
SIZE = 64


def render_view(view: int, rng: np.random.Generator) -> np.ndarray:
    """A (64, 64, 3) uint8 synthetic face seen from FERA 2017 view ``view`` (1..9).

    The views form a 3 × 3 grid of yaw (column) and pitch (row): the face moves sideways and is
    squeezed with yaw, moves up or down with pitch. Each frame is jittered so no two are equal.
    """
    row, col = divmod(view - 1, 3)
    yaw, pitch = col - 1, row - 1
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    cx = 32 + 9 * yaw + rng.uniform(-2, 2)
    cy = 32 + 7 * pitch + rng.uniform(-2, 2)
    rx, ry = 14 - 4 * abs(yaw), 18 - 3 * abs(pitch)
    img = np.full((SIZE, SIZE), 40.0, np.float32)
    img[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1] = 190
    for ex in (-0.45, 0.45):  # eyes, nearer each other when the head turns
        img[(xx - (cx + ex * rx + 3 * yaw)) ** 2 + (yy - (cy - 0.3 * ry)) ** 2 <= 5] = 50
    img[(np.abs(xx - cx - 3 * yaw) <= 0.35 * rx) & (np.abs(yy - (cy + 0.45 * ry)) <= 1.5)] = 70
    img += rng.normal(0, 6, img.shape)
    return np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def write_video(path: Path, frames: list[np.ndarray]) -> None:
    av = pytest.importorskip("av")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        st = c.add_stream("mpeg4", rate=25)
        st.width = st.height = SIZE
        st.pix_fmt = "yuv420p"
        st.options = {"qscale": "2"}
        for f in frames:
            for pkt in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)


def fera17_tree(root: Path, subjects: list[str], views: list[int], frames: int = 6, seed: int = 0) -> Path:
    """A FERA 2017 training partition in the release's layout with generated videos per view."""
    rng = np.random.default_rng(seed)
    for subject in subjects:
        seq = f"FERA17_TR_{subject}_T1"
        rows = "".join(f"{i + 1},{i % 2},0,0,0,0,{(i + 1) % 2},0,0,0,0\n" for i in range(frames))
        occ = root / "Train_Occ" / f"{seq}.csv"
        occ.parent.mkdir(parents=True, exist_ok=True)
        occ.write_text(OCC_HEADER + rows)
        for v in views:
            write_video(root / "Train_Video" / f"{seq}_{v}.mp4", [render_view(v, rng) for _ in range(frames)])
    return root


def test_fera2017_rows_carry_their_view(tmp_path):
    root = fera17_tree(tmp_path, ["F001", "M002"], [1, 5, 9], frames=3)
    t = create_dataset("fera2017", root, pose=[1, 5, 9]).load("train")
    assert len(t) == 2 * 3 * 3
    # Every labelled frame once per view, with the view of its video and the same AU labels.
    for img, view in zip(t.image, t.extra["view"], strict=True):
        assert img.endswith(f"_{view + 1}.mp4")
    assert sorted(set(t.extra["view"].tolist())) == [0, 4, 8]
    assert set(t.video) == {f"{s}_T1_{v}" for s in ("F001", "M002") for v in (1, 5, 9)}
    assert set(t.subject) == {"F001", "M002"}
    j12 = t.aus.index(12)
    per_view = t.au_occurrence[:, j12].reshape(-1, 3, 3)  # (subject, view, frame)
    assert (per_view == per_view[:, :1]).all()
    # One pose keeps the old ids; a single pose still records its view.
    one = create_dataset("fera2017", root, pose=5).load("train")
    assert set(one.video) == {"F001_T1", "M002_T1"} and set(one.extra["view"].tolist()) == {4}
    with pytest.raises(Exception, match="pose-2 video"):
        create_dataset("fera2017", root, pose="all").load("train")
    with pytest.raises(ValueError, match="poses 1..9"):
        create_dataset("fera2017", root, pose=[0, 3])
    with pytest.raises(ValueError, match="'all'"):
        create_dataset("fera2017", root, pose="frontal")


def _view_recipe(root: Path, out: Path, views: list[int], **over):
    from facebehavior.train.config import parse_recipe

    hold = {"fraction": 0.25, "seed": 0}
    data = {
        "name": "views",
        "seed": 0,
        "output_dir": str(out),
        "model": {"name": "aunets_view_classifier_tiny"},
        "input": {
            "size": SIZE,
            "channels": 3,
            "mean": [0.5] * 3,
            "std": [0.5] * 3,
            "template": "arcface_loose",
        },
        "data": {
            "batch_size": 8,
            "eval_batch_size": 64,
            "sets": {
                "views": {
                    "dataset": "fera2017",
                    "root": str(root),
                    "split": "train",
                    "options": {"pose": views},
                    "holdout": {**hold, "take": "rest"},
                }
            },
            "val": [
                {
                    "dataset": "fera2017",
                    "root": str(root),
                    "split": "train",
                    "options": {"pose": views},
                    "holdout": {**hold, "take": "held"},
                }
            ],
        },  # fmt: skip
        "augment": {"target": None},
        "loss": {"view": {"weight": 1.0}},
        "optim": {"name": "adam", "lr": 1e-3, "schedule": "none", "weight_decay": 0.0},
        "trainer": {"max_epochs": 20, "accelerator": "cpu", "log_every_n_steps": 1},
        "checkpoint": {"monitor": "val/view/accuracy", "mode": "max", "export": "views.safetensors"},
    }
    data.update(over)
    return parse_recipe(data)


def test_view_classifier_learns_fera2017_views(tmp_path):
    pytest.importorskip("lightning")
    import lightning as L

    from facebehavior.models.weights import load_weights
    from facebehavior.train.runner import fit

    torch.set_num_threads(1)
    views = [1, 3, 5, 7, 9]
    subjects = ["F001", "F002", "F003", "M001", "M002", "M003", "M004", "F004"]
    root = fera17_tree(tmp_path / "FERA2017", subjects, views, frames=6)

    class Record(L.Callback):
        def __init__(self) -> None:
            self.losses: list[float] = []
            self.acc: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.losses.append(float(outputs["loss"] if isinstance(outputs, dict) else outputs))

        def on_validation_epoch_end(self, trainer, pl_module):
            if "val/view/accuracy" in trainer.callback_metrics:
                self.acc.append(float(trainer.callback_metrics["val/view/accuracy"]))

    rec = Record()
    path = fit(_view_recipe(root, tmp_path / "run", views), callbacks=[rec])
    # The view loss is supervised from the first step (it used to be ≡ 0: no view label, no loss).
    assert rec.losses[0] > 1.0  # ≈ ln 9 for an untrained 9-way classifier
    assert rec.losses[-1] < rec.losses[0]
    # Held-out subjects' views are recognised far above chance (1/5 of the views present).
    assert max(rec.acc) >= 0.8, rec.acc
    model, spec = load_weights(path)
    assert spec.tasks["view"] == tuple(f"view{i}" for i in range(9))
    ds = create_dataset("fera2017", root, pose=views)
    t = ds.load("train")
    from facebehavior.models.transforms import preprocess

    x = preprocess(np.stack(ds.read_images(t, range(len(t)))), spec.input)
    with torch.no_grad():
        pred = model(x)["view"].argmax(1).numpy()
    assert (pred == t.extra["view"]).mean() >= 0.8


def test_a_view_recipe_without_view_labels_is_refused(tmp_path):
    pytest.importorskip("lightning")
    from facebehavior.train.runner import UnsupervisedTrainingError, fit

    root = fera17_tree(tmp_path / "FERA2017", ["F001", "F002", "M001", "M002"], [1, 9], frames=2)
    # Without a view output the loss would be ≡ 0: a model with AU heads only, weighted on views.
    recipe = _view_recipe(root, tmp_path / "run", [1, 9], model={"name": "hydranet_tiny"},
                          loss={"view": {"weight": 1.0}, "au": {"weight": 0.0}})  # fmt: skip
    with pytest.raises(UnsupervisedTrainingError):
        fit(recipe)


def test_shipped_view_recipe_parses(monkeypatch):
    from facebehavior.train.config import load_recipe

    monkeypatch.setenv("FACEBEHAVIOR_DATA", "/data")
    monkeypatch.setenv("FACEBEHAVIOR_CACHE", "/data/cache")
    r = load_recipe(Path(__file__).parent.parent / "recipes" / "aunets_fera17_views.yaml")
    assert r.model.name == "aunets_view_classifier" and r.model.init.path
    assert r.loss.view.weight > 0 and r.checkpoint.monitor == "val/view/accuracy"
    assert r.data.sets["views"].options["pose"] == "all" or r.data.sets["views"].cache
