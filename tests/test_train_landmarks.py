"""AffWildNet (CNN ⊕ 68 landmarks → GRU) end to end from the CLI on a generated Aff-Wild2 corpus:
prepare (crops + FaceMesh, whose 68-point subset the cache serves) → train → evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

pytest.importorskip("lightning")

from facebehavior.cli import main  # noqa: E402
from facebehavior.data.cache import FaceCache  # noqa: E402
from facebehavior.face.landmarks.indices import landmarks68  # noqa: E402
from facebehavior.models.affwildnet import normalise_landmarks  # noqa: E402
from test_train_flow import _evaluate  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "samples" / "face.jpg"
FACE = (140, 360, 270, 480)  # y0, y1, x0, x1 of one face of the photo (tests/test_cache.py)
FRAMES = 8


def va_clip_recipe(
    path: Path,
    root: Path,
    cache: Path,
    out: Path,
    *,
    model: str = "affwildnet_tiny",
    val: bool = True,
    **extra,
) -> Path:
    """A VA-only clip recipe (T = 4) on the generated Aff-Wild2 cache, written to ``path``.

    ``extra`` replaces top-level keys (``trainer``, ``checkpoint``, ``stages`` …); by default two
    training steps, checkpoints on the training loss.
    """
    sets = {"va": {"dataset": "affwild2", "root": str(root), "split": "train", "sequence_length": 4,
                   "options": {"tasks": ["va"]}, "cache": str(cache)}}  # fmt: skip
    r = {
        "name": "t",
        "seed": 0,
        "output_dir": str(out),
        "model": {"name": model},
        "input": {"size": 96, "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3, "template": "arcface"},
        "data": {
            "batch_size": 2,
            "eval_batch_size": 2,
            "num_workers": 0,
            "sets": sets,
            "val": [sets["va"]] if val else [],
        },  # fmt: skip
        "augment": {"target": None},
        "loss": {"expression": {"weight": 0.0}, "au": {"weight": 0.0}, "va": {"weight": 1.0, "kind": "ccc"}},
        "optim": {"name": "adam", "lr": 1e-3},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "log_every_n_steps": 1, "max_steps": 2},
        "checkpoint": {"monitor": "train/loss", "mode": "min", "export": "t.safetensors"},
        **extra,
    }
    path.write_text(yaml.safe_dump(r))
    return path


# Checkpoints selected on validation CCC (the VA recipes' own rule).
VAL_CCC = {"monitor": "val/va/ccc_valence", "mode": "max", "export": "t.safetensors"}


def affwild2_moving(root: Path) -> Path:
    """Aff-Wild2 (ABAW3 layout): two training videos of 8 crops that drift by a pixel a frame."""
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    y0, y1, x0, x1 = FACE
    ann = root / "Annotations" / "VA_Estimation_Challenge" / "Train_Set"
    ann.mkdir(parents=True)
    for v, video in enumerate(("1-30-1280x720", "video2")):
        lines = ["valence,arousal"]
        for f in range(FRAMES):
            d = 2 * f if v == 0 else -2 * f
            crop = photo[y0 + d : y1 + d, x0 + d : x1 + d]
            path = root / "cropped_aligned" / video / f"{f + 1:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(crop).resize((112, 112)).save(path, quality=95)
            lines.append(f"{0.1 * f - 0.3:.2f},{0.4 - 0.05 * f:.2f}")
        (ann / f"{video}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_affwildnet_prepare_train_evaluate(tmp_path, capsys, caplog):
    root = affwild2_moving(tmp_path / "Aff-Wild2")
    out = tmp_path / "cache"
    args = ["prepare", "affwild2", str(root), "--split", "train", "-o", str(out), "--size", "96",
            "--option", "tasks=[\"va\"]"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr()
    cache = FaceCache(out / "train")
    assert len(cache) == 2 * FRAMES
    # The 68 points are FaceMesh's iBUG subset of the cached mesh, in crop pixels, on the face.
    pts = cache.landmarks68(cache.table, range(len(cache)))
    assert pts.shape == (2 * FRAMES, 68, 2)
    np.testing.assert_allclose(pts[3], landmarks68(cache.mesh(3))[0], atol=1e-5)
    inner = pts[:, 17:]  # brows, nose, eyes, mouth lie inside the tight ArcFace crop (the jaw may not)
    assert (inner > 0).all() and (inner < 96).all()
    assert (pts[:, 36:42, 0].mean(1) < pts[:, 42:48, 0].mean(1)).all()  # subject's right eye on the left
    assert (pts[:, 8, 1] > pts[:, 30, 1]).all()  # chin below the nose tip
    np.testing.assert_allclose(normalise_landmarks(np.array([[-0.5, 95.5]] * 68), 96)[0], [-1, 1])

    trainer = {"max_epochs": 2, "accelerator": "cpu", "log_every_n_steps": 1}
    recipe = va_clip_recipe(
        tmp_path / "r.yaml", root, out / "train", tmp_path / "run", trainer=trainer, checkpoint=VAL_CCC
    )
    assert main(["train", str(recipe)]) == 0, capsys.readouterr()
    res = _evaluate(tmp_path / "run" / "t.safetensors", out / "train", sequence_length=4)
    assert res["n"] == 2 * FRAMES and res["metrics"]["va"]["n"] == 2 * FRAMES
    assert -1.0 <= res["metrics"]["va"]["valence"]["ccc"] <= 1.0
    # A landmark model refuses a cache without FaceMesh points, naming the fix.
    assert (
        main(
            [
                *args[:5],
                "-o",
                str(tmp_path / "plain"),
                "--size",
                "96",
                "--option",
                'tasks=["va"]',
                "--no-facemesh",
            ]
        )
        == 0
    )
    va_clip_recipe(
        recipe, root, tmp_path / "plain" / "train", tmp_path / "run", trainer=trainer, checkpoint=VAL_CCC
    )
    assert main(["train", str(tmp_path / "r.yaml")]) == 2
    assert "no FaceMesh points" in caplog.text


def test_affwildnet_recipe_trains_the_real_affwildnet(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEBEHAVIOR_DATA", str(tmp_path))
    monkeypatch.setenv("FACEBEHAVIOR_CACHE", str(tmp_path))
    from facebehavior.train.config import load_recipe
    from facebehavior.train.data import recipe_input_names

    r = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "affwildnet.yaml")
    assert r.model.name == "affwildnet"
    assert recipe_input_names(r) == ("image", "landmarks")
