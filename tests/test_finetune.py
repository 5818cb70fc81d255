"""``facebehavior finetune``: few-shot compound heads on the default model, learned from generated
faces whose class is known (a real face photo with a class-specific mark), exported and run by
``analyze --model``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facebehavior.relatedness import RAFDB_COMPOUND_11

SAMPLE = Path(__file__).parent.parent / "samples" / "face.jpg"
FACE_BOX = (335, 180, 443, 315)  # BlazeFace's box of samples/face.jpg (x1, y1, x2, y2), pixels
CLASSES = (0, 3, 6, 9)  # happily surprised, sadly angry, fearfully angry, angrily disgusted


def _photo() -> np.ndarray:
    from PIL import Image

    if not SAMPLE.is_file():
        pytest.skip("samples/face.jpg is not in this checkout")
    return np.asarray(Image.open(SAMPLE).convert("RGB"))


def mark(img: np.ndarray, box: tuple[float, float, float, float], cls: int, rng: np.random.Generator) -> None:
    """Draw class ``cls``'s mark on the face inside ``box`` (in place), with random jitter.

    0: dark band over the eyes; 1: bright bar over the mouth; 2: dark stripe down the nose;
    3: dark disc on the forehead. Position ±4 % of the face, darkness and size vary per image.
    """
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    u = (xx - x1) / w + rng.uniform(-0.04, 0.04)
    v = (yy - y1) / h + rng.uniform(-0.04, 0.04)
    t = rng.uniform(0.8, 1.2)
    if cls == 0:
        m = (np.abs(v - 0.40) < 0.07 * t) & (np.abs(u - 0.5) < 0.42)
        val = rng.uniform(0, 40)
    elif cls == 1:
        m = (np.abs(v - 0.80) < 0.05 * t) & (np.abs(u - 0.5) < 0.25)
        val = rng.uniform(215, 255)
    elif cls == 2:
        m = (np.abs(u - 0.5) < 0.05 * t) & (v > 0.35) & (v < 0.75)
        val = rng.uniform(0, 40)
    else:
        m = (u - 0.5) ** 2 + ((v - 0.12) * 1.3) ** 2 < (0.11 * t) ** 2
        val = rng.uniform(0, 40)
    img[m] = val


def generated_crops(n_per_class: int, seed: int, size: int = 96) -> tuple[list[np.ndarray], np.ndarray]:
    """Face crops (the sample photo's face, randomly shifted, scaled, lit and noised) with a mark
    per class; labels are indices into ``CLASSES``."""
    from PIL import Image

    photo = _photo().astype(np.float32)
    rng = np.random.default_rng(seed)
    x1, y1, x2, y2 = FACE_BOX
    crops, labels = [], []
    for k in range(len(CLASSES)):
        for _ in range(n_per_class):
            img = photo.copy()
            mark(img, FACE_BOX, k, rng)
            s = rng.uniform(1.15, 1.3) * max(x2 - x1, y2 - y1)
            cx = (x1 + x2) / 2 + rng.uniform(-0.04, 0.04) * s
            cy = (y1 + y2) / 2 + rng.uniform(-0.04, 0.04) * s
            crop = Image.fromarray(img.clip(0, 255).astype(np.uint8)).crop(
                (int(cx - s / 2), int(cy - s / 2), int(cx + s / 2), int(cy + s / 2))
            )
            arr = np.asarray(crop.resize((size, size), Image.BILINEAR), np.float32)
            arr = arr * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20) + rng.normal(0, 4, arr.shape)
            crops.append(arr.clip(0, 255).astype(np.uint8))
            labels.append(k)
    return crops, np.asarray(labels)


def rafdb_compound_tree(root: Path, images: dict[str, tuple[np.ndarray, int]], folder: str) -> Path:
    """RAF-DB's compound layout: EmoLabel/list_patition_label.txt ("train_0001.jpg 1") + images."""
    from PIL import Image

    d = root / "compound"
    (d / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (d / "Image" / folder).mkdir(parents=True, exist_ok=True)
    lines = []
    for name, (img, cls) in images.items():
        out = name if folder == "original" else name.replace(".jpg", "_aligned.jpg")
        Image.fromarray(img).save(d / "Image" / folder / out, quality=95)
        lines.append(f"{name} {cls + 1}")
    (d / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def test_few_shot_head_learns_generated_classes(tmp_path):
    """5 shots per class; accuracy on 40 held-out generated faces far above chance (25 %)."""
    from facebehavior.commands.finetune import finetune
    from facebehavior.models.weights import load_weights

    torch.set_num_threads(1)
    train, ytr = generated_crops(5, seed=0)
    test, yte = generated_crops(10, seed=1)
    imgs = {
        f"train_{i + 1:04d}.jpg": (im, CLASSES[y]) for i, (im, y) in enumerate(zip(train, ytr, strict=True))
    }
    imgs |= {
        f"test_{i + 1:04d}.jpg": (im, CLASSES[y]) for i, (im, y) in enumerate(zip(test, yte, strict=True))
    }
    root = rafdb_compound_tree(tmp_path / "RAF-DB", imgs, "aligned")
    out = tmp_path / "compound5.safetensors"
    rep = finetune(dataset="rafdb_compound", root=root, split="train", output=out, shots=5, faces="crops",
                   eval_split="test", seed=0)  # fmt: skip
    assert rep["classes"] == [RAFDB_COMPOUND_11[c] for c in CLASSES]
    assert rep["train_faces"] == 20 and rep["eval_faces"] == 40
    assert rep["seconds"] < 10  # the head trains in seconds on a CPU
    assert rep["eval_accuracy"] >= 0.75, rep  # chance: 0.25
    # The exported file is a complete model: base outputs unchanged, compound probabilities added.
    model, spec = load_weights(out)
    assert spec.tasks["compound_prob"] == tuple(rep["classes"]) and spec.architecture == "fbn_fusion_compound"
    from facebehavior.models.default import load_default_model
    from facebehavior.models.transforms import preprocess

    base, base_spec = load_default_model()
    assert spec.input == base_spec.input
    x = preprocess(np.stack(test), spec.input)
    with torch.no_grad():
        got, ref = model(x), base(x)
    for k in ("expression", "au", "va"):
        torch.testing.assert_close(got[k], ref[k])
    p = got["compound_prob"].numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert (p.argmax(1) == yte).mean() == pytest.approx(rep["eval_accuracy"])
    # The untrained head (its initialisation) is at chance on the same faces.
    from facebehavior.models.compound_head import CompoundFinetuned

    torch.manual_seed(0)
    fresh = CompoundFinetuned(base, rep["classes"], blendshapes=False).eval()
    with torch.no_grad():
        untrained = (fresh(x)["compound_prob"].argmax(1).numpy() == yte).mean()
    assert rep["eval_accuracy"] > untrained + 0.4


def test_finetune_cli_detects_faces_and_analyze_runs_the_export(tmp_path, capsys):
    """The CLI path: faces detected and aligned as analyze does, export read by analyze --model."""
    import pandas as pd

    from facebehavior import cli

    torch.set_num_threads(1)
    # The sample photo holds several people: keep the one face around FACE_BOX.
    x0, y0 = 260, 110
    photo = _photo()[y0 : y0 + 280, x0 : x0 + 260]
    box = (FACE_BOX[0] - x0, FACE_BOX[1] - y0, FACE_BOX[2] - x0, FACE_BOX[3] - y0)
    rng = np.random.default_rng(0)
    imgs = {}
    for i, k in enumerate([0, 0, 3, 3]):
        img = photo.astype(np.float32)
        mark(img, box, k, rng)
        imgs[f"train_{i + 1:04d}.jpg"] = (img.astype(np.uint8), CLASSES[k])
    root = rafdb_compound_tree(tmp_path / "RAF-DB", imgs, "original")
    out = tmp_path / "compound.safetensors"
    code = cli.main(["finetune", "--dataset", "rafdb_compound", "--root", str(root), "--option",
                     "images=original", "--shots", "2", "--steps", "100", "-o", str(out)])  # fmt: skip
    assert code == 0 and out.is_file()
    assert "4 training faces" in capsys.readouterr().out
    csv = tmp_path / "rows.csv"
    probe = root / "compound" / "Image" / "original" / "train_0003.jpg"
    assert cli.main(["analyze", str(probe), "-o", str(csv), "--model", str(out)]) == 0
    df = pd.read_csv(csv)
    cols = [f"compound_prob_{RAFDB_COMPOUND_11[c]}" for c in (CLASSES[0], CLASSES[3])]
    assert len(df) == 1 and set(cols) <= set(df.columns)
    assert df[cols].sum(axis=1).iloc[0] == pytest.approx(1.0, abs=1e-4)
    # The default model's own columns (and the zero-shot compound scores) are still written.
    assert {"expression", "AU12_prob", "valence", "compound"} <= set(df.columns)
    assert any(c.startswith("compound_score_") for c in df.columns)


def test_finetune_refuses_what_it_cannot_use(tmp_path, caplog):
    from facebehavior import cli

    train, y = generated_crops(1, seed=2)
    imgs = {
        f"train_{i + 1:04d}.jpg": (im, CLASSES[k]) for i, (im, k) in enumerate(zip(train, y, strict=True))
    }
    root = rafdb_compound_tree(tmp_path / "RAF-DB", imgs, "aligned")
    args = ["finetune", "--dataset", "rafdb_compound", "--root", str(root), "--faces", "crops", "-o",
            str(tmp_path / "x.safetensors")]  # fmt: skip
    assert cli.main([*args, "--model", "fbn_mobile_ferplus"]) == 2
    assert "not an fbn_fusion model" in caplog.text
    assert cli.main([*args, "--classes", "happily_surprised", "joyful"]) == 2
    assert "['joyful'] are not compound classes" in caplog.text
    assert cli.main([*args, "--classes", "happily_surprised"]) == 2
    assert "need at least 2" in caplog.text
    assert cli.main([*args, "--root", str(tmp_path / "absent")]) == 2
    assert "list_patition_label.txt" in caplog.text
    assert cli.main([*args, "--dataset", "rafdb"]) == 2  # the basic set: not in this tree
    assert not (tmp_path / "x.safetensors").exists()
