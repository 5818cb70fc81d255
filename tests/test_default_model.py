"""The bundled default model: its spec, preprocessing, behaviour on held-out FER+ faces and the
end-to-end ``facebehavior analyze`` run on the sample video."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from facebehavior import schema
from facebehavior.face.align import TEMPLATES
from facebehavior.models.default import (
    DEFAULT_AUS,
    V1_WEIGHTS,
    default_model_path,
    load_default_model,
    predict,
    predict_expression_probs,
    preprocess,
)
from shared_data import shared_path

REPO = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = REPO / "src" / "facebehavior" / "weights"
CARD = WEIGHTS_DIR / "fbn_fusion.md"


@pytest.fixture(scope="module")
def default():
    torch.set_num_threads(1)
    return load_default_model()


def _card_states_digest(path: Path, card: Path) -> None:
    # The model card states the file's digest; it must describe this very file.
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    stated = re.findall(r"sha256[^0-9a-f]*([0-9a-f]{64})", card.read_text())
    assert digest in stated, f"{card.name}: sha256 does not match the shipped {path.name}"


def test_spec_and_card(default) -> None:
    model, spec = default
    assert spec.name == "fbn_fusion" and spec.architecture == "fbn_fusion_mobile"
    assert spec.input.features == ("blendshapes",)
    assert spec.input.channels == 1 and spec.input.template in TEMPLATES
    assert spec.tasks["expression"] == schema.EXPRESSIONS_8
    assert spec.tasks["au"] == tuple(f"AU{a:02d}" for a in DEFAULT_AUS)
    assert spec.tasks["va"] == ("valence", "arousal")
    path = default_model_path()
    assert path.stat().st_size < 20e6
    _card_states_digest(path, CARD)
    for bs in (None, torch.rand(2, 52)):  # image-only path and blendshape fusion
        y = model(torch.zeros(2, 1, spec.input.size, spec.input.size), bs)
        assert y["expression"].shape == (2, 8) and y["au"].shape == (2, len(DEFAULT_AUS))
        assert y["va"].shape == (2, 2)
    # v1 (the appearance network v2 was fine-tuned from) still ships with its own card
    v1 = default_model_path(V1_WEIGHTS)
    _card_states_digest(v1, v1.with_suffix(".md"))
    assert load_default_model(v1)[1].name == "fbn_mobile_ferplus"
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.safetensors"))
    assert total < 20e6, f"shipped weights total {total / 1e6:.1f} MB"


def test_preprocess_hand_computed(default) -> None:
    _, spec = default
    s = spec.input.size
    rgb = np.zeros((1, s, s, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    x = preprocess(rgb, spec)
    luma = (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255
    assert x.shape == (1, 1, s, s)
    torch.testing.assert_close(x, torch.full_like(x, (luma - spec.input.mean[0]) / spec.input.std[0]))
    g = preprocess(np.full((2, 3 * s, 3 * s), 255, np.uint8), spec)  # resized down, channel added
    assert g.shape == (2, 1, s, s)
    torch.testing.assert_close(g, torch.full_like(g, (1 - spec.input.mean[0]) / spec.input.std[0]))
    with pytest.raises(ValueError, match="faces must be"):
        preprocess(np.zeros((2, 5, 8, 8)), spec)


def test_heldout_ferplus_behaviour(default) -> None:
    """First 600 FER2013 PrivateTest faces (never used for training or checkpoint selection)."""
    model, spec = default
    d = np.load(shared_path("datasets", "fer2013", "fer2013.npz"))
    test = np.flatnonzero(d["usage"] == 2)[:600]
    votes = d["ferplus_votes"][test]
    top = votes.argmax(1)
    keep = top < 8
    cols = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    label = np.array([schema.EXPRESSIONS_8.index(cols[min(t, 7)]) for t in top])
    images = d["images"][test]
    probs = predict_expression_probs(model, spec, images)
    acc = float((probs[keep].argmax(1) == label[keep]).mean())
    assert acc > 0.74, f"FER+ accuracy on 600 held-out faces fell to {acc:.3f} (image-only path)"
    out = predict(model, spec, images)
    happy, neutral, sad = (
        label == schema.EXPRESSIONS_8.index(e) for e in ("happiness", "neutral", "sadness")
    )
    au = {a: out["au"][:, i] for i, a in enumerate(DEFAULT_AUS)}
    surprise, fear, anger = (label == schema.EXPRESSIONS_8.index(e) for e in ("surprise", "fear", "anger"))
    # Calibrated AUs: 0.5 is a usable threshold (v1 never crossed it but for AU12). Table A:
    # AU12 and AU25 are prototypical of happiness, AU1/AU2/AU26 of surprise.
    assert (au[12][happy & keep] > 0.5).mean() > 0.8 and (au[12][neutral & keep] > 0.5).mean() < 0.1
    for a in (1, 2, 26):
        assert (au[a][surprise & keep] > 0.5).mean() > 0.6, f"AU{a} on surprised faces"
        assert (au[a][neutral & keep] > 0.5).mean() < 0.15, f"AU{a} on neutral faces"
    va = out["va"]
    assert va[happy & keep, 0].mean() > 0.3 and va[sad & keep, 0].mean() < -0.1
    assert np.all(np.abs(va) <= 1)
    # Arousal follows the circumplex: surprise, fear and anger above neutral and sadness.
    low = max(va[neutral & keep, 1].mean(), va[sad & keep, 1].mean())
    for e, sel in (("surprise", surprise), ("fear", fear), ("anger", anger)):
        assert va[sel & keep, 1].mean() > low + 0.2, f"arousal of {e}"
    assert abs(np.corrcoef(va[keep, 0], va[keep, 1])[0, 1]) < 0.6


def test_analyze_sample_video_end_to_end(tmp_path) -> None:
    video = REPO / "samples" / "video.mp4"
    out = tmp_path / "video.csv"
    # No --model: the Analyzer's default must resolve to the packaged default model.
    cmd = [sys.executable, "-m", "facebehavior.cli", "analyze", str(video), "-o", str(out),
           "--every", "25", "--threads", "1", "--no-progress"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.read_csv(out)
    assert len(df) >= 5, "the sample video shows 2-3 faces in every analysed frame"
    au_cols = schema.au_columns(DEFAULT_AUS, "prob")
    ex_cols = schema.expression_columns(schema.EXPRESSIONS_8)
    for c in [
        *au_cols,
        *ex_cols,
        schema.VALENCE_COLUMN,
        schema.AROUSAL_COLUMN,
        schema.EXPRESSION_LABEL_COLUMN,
    ]:
        assert c in df.columns, f"column {c} missing"
    assert df[au_cols].notna().all().all() and ((df[au_cols] >= 0) & (df[au_cols] <= 1)).all().all()
    np.testing.assert_allclose(df[ex_cols].sum(axis=1), 1.0, atol=1e-3)
    assert df[schema.EXPRESSION_LABEL_COLUMN].isin(schema.EXPRESSIONS_8).all()
    va = df[[schema.VALENCE_COLUMN, schema.AROUSAL_COLUMN]]
    assert va.notna().all().all() and (va.abs() <= 1).all().all()
    from facebehavior.compound import compound_columns

    cc = compound_columns("rafdb")
    names = [c.removeprefix("compound_score_") for c in cc] + ["none"]
    assert set(cc) <= set(df.columns) and df["compound"].isin(names).all()
    # a score is an AU mean in [0, 1] + two expression probabilities + a valence bonus in [0, 1]
    assert ((df[cc] >= 0) & (df[cc] <= 4)).all().all()
