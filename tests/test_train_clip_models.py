"""CNN-1RNN, CNN-3RNN, model-level fusion and MT-VGG-GRU end to end from the CLI on the generated
Aff-Wild2 corpus of tests/test_train_landmarks.py: prepare (crops + FaceMesh) → train (tiny variants,
a few steps, the model chosen with ``--set model.name=…``) → ``evaluate`` → ``analyze``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("lightning")

from facebehavior.cli import main  # noqa: E402
from test_pipeline_clips import face_video  # noqa: E402
from test_train_landmarks import FRAMES, affwild2_moving  # noqa: E402
from test_train_landmarks import va_clip_recipe as clip_recipe  # noqa: E402

T = 4


@pytest.fixture(scope="module")
def affwild2_cache(tmp_path_factory) -> tuple[Path, Path]:
    """The generated Aff-Wild2 tree and its cache (crops + FaceMesh), shared by the models."""
    tmp = tmp_path_factory.mktemp("affwild2")
    root = affwild2_moving(tmp / "Aff-Wild2")
    out = tmp / "cache"
    assert main(["prepare", "affwild2", str(root), "--split", "train", "-o", str(out), "--size", "96",
                 "--option", 'tasks=["va"]']) == 0  # fmt: skip
    return root, out / "train"


@pytest.mark.parametrize(
    "sets",
    [
        ["model.name=cnn_3rnn_tiny", "model.kwargs={num_rnns: 1}"],
        ["model.name=cnn_3rnn_tiny"],
        ["model.name=affwild_model_fusion_tiny", "model.kwargs={mode: fc}"],
        ["model.name=mt_vgg_gru_tiny"],
    ],
    ids=["cnn_1rnn", "cnn_3rnn", "model_fusion", "mt_vgg_gru"],
)
def test_clip_model_prepare_train_evaluate_analyze(tmp_path, capsys, affwild2_cache, sets):
    root, cache = affwild2_cache
    recipe = clip_recipe(tmp_path / "r.yaml", root, cache, tmp_path / "run")
    args = ["train", str(recipe)] + [a for s in sets for a in ("--set", s)]
    assert main(args) == 0, capsys.readouterr()
    ckpt = tmp_path / "run" / "t.safetensors"
    from facebehavior.models.weights import load_weights

    _, spec = load_weights(ckpt)
    assert spec.architecture == sets[0].split("=")[1]  # the override reached the builder
    if len(sets) > 1:
        assert dict(spec.arch_kwargs).items() >= yaml.safe_load(sets[1].split("=")[1]).items()

    js = tmp_path / "m.json"
    assert main(["evaluate", str(ckpt), "--cache", str(cache), "--json", str(js)]) == 0
    res = json.loads(js.read_text())
    assert res["va"]["n"] == 2 * FRAMES  # every frame of both videos, through the clip windows
    assert -1.0 <= res["va"]["valence"]["ccc"] <= 1.0

    video = face_video(tmp_path / "clip.mp4", frames=6)
    csv = tmp_path / "out.csv"
    assert main(["analyze", str(video), "--model", str(ckpt), "-o", str(csv)]) == 0
    df = pd.read_csv(csv)
    assert len(df) == 6 and (df["success"] == 1).all() and df["face_id"].nunique() == 1
    va = df[["valence", "arousal"]].to_numpy()
    assert np.isfinite(va).all()
    if not spec.architecture.startswith("mt_vgg"):  # the CNN-RNNs are tanh-bounded; MT-VGG's VA is linear
        assert (np.abs(va) <= 1).all()


def _ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation coefficient, written out (population moments)."""
    mx, my = x.mean(), y.mean()
    sxy = ((x - mx) * (y - my)).mean()
    return float(2 * sxy / (x.var() + y.var() + (mx - my) ** 2))


def test_decision_fusion_stores_its_validation_ccc(tmp_path, capsys, affwild2_cache):
    """Training sets the fusion weights from each network's validation CCC; the exported buffer is
    those CCCs (clipped at 0, normalised per dimension), computed here by hand from the networks'
    predictions on the validation windows; evaluate and analyze then run the fused model."""
    import torch

    from facebehavior.models.weights import load_weights
    from facebehavior.train.config import SetConfig
    from facebehavior.train.data import LabelledImages, eval_inputs, eval_loader, input_names, load_set

    root, cache = affwild2_cache
    recipe = clip_recipe(tmp_path / "r.yaml", root, cache, tmp_path / "run")
    sets = ["model.name=affwild_decision_fusion_tiny", "checkpoint.monitor=val/va/ccc_mean",
            "checkpoint.mode=max"]  # fmt: skip
    assert main(["train", str(recipe)] + [a for s in sets for a in ("--set", s)]) == 0, capsys.readouterr()
    ckpt = tmp_path / "run" / "t.safetensors"
    model, spec = load_weights(ckpt)
    model.eval()

    cfg = SetConfig(dataset="cache", root="", cache=str(cache), sequence_length=T)
    ds = LabelledImages(load_set(cfg), (), 3, 96, sequence_length=T, inputs=input_names(model))
    preds: list[list[np.ndarray]] = [[] for _ in model.networks]
    truth = []
    with torch.no_grad():
        for batch in eval_loader(ds, 2):
            m = batch["va_mask"] > 0
            args = eval_inputs(model, batch, spec)
            for i, net in enumerate(model.networks):
                preds[i].append(net(*args)["va"][m].numpy())
            truth.append(batch["va"][m].numpy())
    y = np.concatenate(truth)
    assert len(y) == 2 * FRAMES
    ccc = np.array([[_ccc(y[:, j], np.concatenate(p)[:, j]) for j in range(2)] for p in preds])
    w = np.clip(ccc, 0, None)
    w[:, w.sum(0) == 0] = 1.0  # no network above chance on a dimension: equal weights
    np.testing.assert_allclose(model.weights.numpy(), w / w.sum(0), atol=1e-5)
    default = np.array([[0.5, 0.3], [0.6, 0.4]])  # the tiny builder's hand-given CCCs
    assert not np.allclose(model.weights.numpy(), default / default.sum(0), atol=1e-3)
    logged = spec.extra["val_metrics"]
    np.testing.assert_allclose(
        [[logged[f"val/fusion{i}/ccc_{n}"] for n in ("valence", "arousal")] for i in range(2)], ccc, atol=1e-5
    )

    js = tmp_path / "m.json"
    assert main(["evaluate", str(ckpt), "--cache", str(cache), "--json", str(js)]) == 0
    assert json.loads(js.read_text())["va"]["n"] == 2 * FRAMES
    video = face_video(tmp_path / "clip.mp4", frames=6)
    assert main(["analyze", str(video), "--model", str(ckpt), "-o", str(tmp_path / "out.csv")]) == 0
    df = pd.read_csv(tmp_path / "out.csv")
    assert len(df) == 6 and np.isfinite(df[["valence", "arousal"]].to_numpy()).all()


def test_fusion_ccc_rule():
    from facebehavior.train.fusion import fusion_ccc, member_ccc

    y = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    good, flat = y.copy(), np.c_[y[:, 0] * 0.5, -y[:, 1]]
    ccc = member_ccc(y, np.stack([good, flat]))
    # Network 1: valence is half the truth (CCC 2·0.625 / (1.25 + 0.3125 + 0.5625)), arousal negated
    # (CCC −2·0.25 / (0.25 + 0.25 + 1²) = −1/3).
    x, z = y[:, 0], flat[:, 0]
    expect_v = 2 * np.cov(x, z, bias=True)[0, 1] / (x.var() + z.var() + (x.mean() - z.mean()) ** 2)
    assert expect_v == pytest.approx(1.25 / 2.125)
    np.testing.assert_allclose(ccc, [[1.0, 1.0], [expect_v, -1 / 3]], atol=1e-9)
    np.testing.assert_allclose(fusion_ccc(ccc), ccc)  # arousal: network 0 is above chance
    np.testing.assert_allclose(fusion_ccc(np.array([[0.4, -0.2], [0.1, 0.0]])), [[0.4, 1.0], [0.1, 1.0]])
