"""Audio for A/V-MT-VGG-GRU (io.audio): spectrograms, alignment to video frames, prepare --audio →
two-phase training (recipe stages) → evaluate → analyze on a generated video with sound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("lightning")

from facebehavior.cli import main  # noqa: E402
from facebehavior.io.audio import (  # noqa: E402
    AudioConfig,
    AudioStream,
    NoAudioError,
    frame_spectrograms,
    read_audio,
    spectrogram,
)
from test_pipeline_clips import face_video  # noqa: E402
from test_train_landmarks import FRAMES, VAL_CCC, affwild2_moving, va_clip_recipe  # noqa: E402

SR = 44100


def tone(seconds: float, freq: float = 1000.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_spectrogram_settings_and_scale():
    c = AudioConfig()
    assert (c.window, c.hop) == (1455, 970)  # 33 ms windows, 11 ms overlap at 44.1 kHz
    s = spectrogram(tone(0.5, 1000.0, 1.0), c)
    assert s.shape == (728, (22050 - 1455) // 970 + 1)
    peak = int(np.argmax(s[:, 3]))
    assert abs(peak * SR / c.window - 1000.0) < SR / c.window  # the 1 kHz bin
    assert s[peak].max() == pytest.approx(1.0, abs=1e-3)  # full-scale sine = 0 dB = +1
    half = spectrogram(tone(0.5, 1000.0, 0.1), c)  # -20 dB → 1 - 2 · 20/80
    assert half[peak, 3] == pytest.approx(0.5, abs=0.01)
    assert spectrogram(np.zeros(4000), c).max() == -1.0  # silence = the floor


def test_frame_images_follow_the_sound():
    # Silence for 1 s, then a 3 kHz tone: frames before 0.75 s are silent, frames after 1.25 s are not.
    x = np.concatenate([np.zeros(SR, np.float32), tone(1.0, 3000.0)])
    c = AudioConfig(size=(32, 16))
    imgs = frame_spectrograms(x, [0.5, 1.0, 1.6], c)
    assert imgs.shape == (3, 1, 32, 16)
    assert imgs[0].max() == -1.0 and imgs[2].max() > -0.9
    assert imgs[1][0, :, :6].max() == -1.0 and imgs[1][0, :, -6:].max() > -0.9  # the onset mid-image
    band = 31 - int(3000 / (SR / 2) * 32)  # row of 3 kHz (top row = highest band)
    assert int(np.argmax(imgs[2][0, :, 8])) == band


def test_decoding_a_video_with_sound(tmp_path):
    sound = tone(1.2, 440.0)
    video = face_video(tmp_path / "v.mp4", frames=10, audio=sound)
    samples, origin = read_audio(video)
    assert abs(origin) < 0.05 and abs(len(samples) / SR - 1.2) < 0.1
    n = min(len(samples), len(sound))
    # AAC is lossy but a pure tone survives: correlation with the original after alignment.
    lag = int(round(-origin * SR))
    a, b = samples[max(lag, 0) : n], sound[: n - max(lag, 0)]
    assert np.corrcoef(a[2000:-2000], b[2000:-2000])[0, 1] > 0.95
    # Batch-wise streaming gives the images of decoding the whole track at once.
    c = AudioConfig(size=(32, 32))
    times = np.arange(10) / 10.0
    whole = frame_spectrograms(samples, times, c, origin)
    s = AudioStream(video)
    parts = np.concatenate([s.frames(times[i : i + 3], c) for i in range(0, 10, 3)])
    np.testing.assert_array_equal(parts, whole)
    silent = face_video(tmp_path / "mute.mp4", frames=3)
    with pytest.raises(NoAudioError, match="no audio track"):
        AudioStream(silent)


def _av_corpus(tmp_path: Path) -> tuple[Path, Path]:
    """Aff-Wild2 tree of tests/test_train_landmarks.py plus the original videos with sound."""
    root = affwild2_moving(tmp_path / "Aff-Wild2")
    media = tmp_path / "videos"
    media.mkdir()
    for k, name in enumerate(("1-30-1280x720", "video2")):
        face_video(media / f"{name}.mp4", frames=FRAMES, audio=tone(FRAMES / 10.0 + 0.3, 500.0 + 700 * k))
    return root, media


def test_av_model_prepare_train_two_phases_evaluate_analyze(tmp_path, capsys):
    root, media = _av_corpus(tmp_path)
    out = tmp_path / "cache"
    args = ["prepare", "affwild2", str(root), "--split", "train", "-o", str(out), "--size", "96",
            "--option", 'tasks=["va"]', "--audio", str(media), "--audio-size", "64"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr()
    from facebehavior.data.cache import FaceCache
    from facebehavior.io.audio import cached_spectrograms

    cache = FaceCache(out / "train")
    spec = cached_spectrograms(cache, range(len(cache)))
    assert spec.shape == (2 * FRAMES, 1, 64, 64) and spec.max() > -1.0
    # Row of frame f (1-based) holds the image at (f - 1) / fps of its video's sound.
    row = int(np.flatnonzero((cache.table.video == "video2") & (cache.table.frame == 3))[0])
    samples, origin = read_audio(media / "video2.mp4")
    expect = frame_spectrograms(samples, [0.2], AudioConfig.for_size(64), origin)[0]
    np.testing.assert_allclose(spec[row], expect, atol=2e-3)  # stored as float16

    va_clip_recipe(
        tmp_path / "r.yaml",
        root,
        out / "train",
        tmp_path / "run",
        model="av_mt_vgg_gru_tiny",
        trainer={"max_epochs": 1, "accelerator": "cpu", "log_every_n_steps": 1},
        checkpoint=VAL_CCC,
        stages=[{"name": "streams", "max_epochs": 1}, {"name": "joint", "max_epochs": 1}],
    )
    assert main(["train", str(tmp_path / "r.yaml")]) == 0, capsys.readouterr()
    # Phase 1 trained both streams on their own heads (the audio stream's loss is logged), phase 2 the whole.
    logs = {p.parts[-4]: pd.read_csv(p) for p in (tmp_path / "run").glob("*/logs/*/metrics.csv")}
    assert set(logs) == {"streams", "joint"}
    assert "train/audio/va_step" in logs["streams"] and "train/audio/va_step" not in logs["joint"]
    ckpt = tmp_path / "run" / "t.safetensors"

    js = tmp_path / "m.json"
    assert main(["evaluate", str(ckpt), "--cache", str(out / "train"), "--json", str(js)]) == 0
    res = json.loads(js.read_text())
    assert res["va"]["n"] == 2 * FRAMES

    video = face_video(tmp_path / "talk.mp4", frames=8, audio=tone(1.0, 800.0))
    csv = tmp_path / "out.csv"
    assert main(["analyze", str(video), "--model", str(ckpt), "-o", str(csv)]) == 0
    df = pd.read_csv(csv)
    assert len(df) == 8 and (df["success"] == 1).all()
    cols = ["valence", "arousal", "AU01_prob", "expr_happiness"]
    assert np.isfinite(df[cols].to_numpy()).all()

    capsys.readouterr()
    mute = face_video(tmp_path / "mute.mp4", frames=4)
    assert main(["analyze", str(mute), "--model", str(ckpt), "-o", str(tmp_path / "m.csv")]) != 0
    err = capsys.readouterr().err
    assert f"{mute}: no audio track; A/V models (av_mt_vgg_gru) need videos with sound" in err
    assert "Traceback" not in err


def test_av_model_phases_freeze_what_they_do_not_train():
    from facebehavior.models import create_model

    m = create_model("av_mt_vgg_gru_tiny")
    assert m.input_names == ("image", "spectrogram") and m.phase == "joint"
    clip, spec = torch.randn(1, 3, 3, 96, 96), torch.randn(1, 3, 1, 64, 64)
    m.set_phase("streams")
    out = m(clip, spec)
    out["audio/va"].sum().backward()  # the audio stream's loss reaches the audio stream only
    grads = {n for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads and all(n.startswith(("audio.", "stream_heads.audio.")) for n in grads)
    assert not any(p.requires_grad for p in m.fusion.parameters())
    m.set_phase("joint")
    assert not any(p.requires_grad for p in m.stream_heads.parameters())
    with pytest.raises(ValueError, match="phases"):
        m.set_phase("warmup")


def test_av_recipe_two_phases(monkeypatch, tmp_path):
    from facebehavior.train.config import load_recipe
    from facebehavior.train.data import recipe_input_names

    monkeypatch.setenv("FACEBEHAVIOR_DATA", str(tmp_path))
    monkeypatch.setenv("FACEBEHAVIOR_CACHE", str(tmp_path))
    r = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "av_mt_vgg_gru_affwild2.yaml")
    assert recipe_input_names(r) == ("image", "spectrogram")
    assert [s.name for s in r.stages] == ["streams", "joint"]
