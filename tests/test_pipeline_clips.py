"""Clip, landmark and flow models in ``analyze`` (pipeline.clips.Clips): one row per frame and face,
outputs equal to the model run directly on the documented windows."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

pytest.importorskip("lightning")

from facebehavior.cli import main  # noqa: E402
from facebehavior.pipeline.clips import Clips, needs_clips, window_start  # noqa: E402
from test_train_landmarks import affwild2_moving, va_clip_recipe  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "samples" / "face.jpg"
FRAMES = 11


def face_video(path: Path, frames: int = FRAMES, audio: np.ndarray | None = None, fps: int = 10) -> Path:
    """A 256-px video of the sample photo's face drifting 3 px a frame (optionally with sound)."""
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.height = v.width = 256
        v.pix_fmt = "yuv420p"
        v.options = {"crf": "12"}
        a = None
        if audio is not None:
            a = c.add_stream("aac", rate=44100)
            a.layout = "mono"
        for k in range(frames):
            y, x = 120 + 3 * k, 250 - 2 * k
            img = np.ascontiguousarray(photo[y : y + 256, x : x + 256])
            for pk in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pk)
        for pk in v.encode():
            c.mux(pk)
        if a is not None:
            step = 1024
            for s in range(0, len(audio), step):
                chunk = audio[s : s + step].astype(np.float32)[None]
                fr = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                fr.sample_rate = 44100
                fr.pts = s
                for pk in a.encode(fr):
                    c.mux(pk)
            for pk in a.encode():
                c.mux(pk)
    return path


def test_window_start_rule():
    # T = 4, S = 2: windows [0, 4), [2, 6), [4, 8) ...; each frame takes the earliest one holding it.
    assert [window_start(p, 4, 2) for p in range(9)] == [0, 0, 0, 0, 2, 2, 4, 4, 6]
    assert [window_start(p, 1, 1) for p in range(3)] == [0, 1, 2]
    for T, S in ((5, 2), (80, 40), (6, 6), (7, 3)):
        for p in range(200):
            s = window_start(p, T, S)
            assert s % S == 0 and s <= p < s + T
            assert s == 0 or not (s - S <= p < s - S + T)  # no earlier window holds p
    with pytest.raises(ValueError, match="stride"):
        window_start(0, 4, 5)


def record_inputs(stage) -> list[dict[str, np.ndarray]]:
    """Make a ``Clips`` stage keep a copy of the model inputs of every batch; returns that list."""
    seen: list[dict[str, np.ndarray]] = []
    inputs = stage._inputs

    def record(*args, **kw):
        out = inputs(*args, **kw)
        seen.append({k: v.copy() for k, v in out.items()})
        return out

    stage._inputs = record
    return seen


@pytest.fixture(scope="module")
def affwildnet_checkpoint(tmp_path_factory) -> Path:
    """A tiny AffWildNet trained from the CLI (prepare with FaceMesh → train, clips of 4 frames)."""
    tmp = tmp_path_factory.mktemp("affwildnet")
    root = affwild2_moving(tmp / "Aff-Wild2")
    out = tmp / "cache"
    assert main(["prepare", "affwild2", str(root), "--split", "train", "-o", str(out), "--size", "96",
                 "--option", 'tasks=["va"]']) == 0  # fmt: skip
    va_clip_recipe(tmp / "r.yaml", root, out / "train", tmp / "run", val=False)
    assert main(["train", str(tmp / "r.yaml")]) == 0
    return tmp / "run" / "t.safetensors"


def test_affwildnet_in_analyze_cli(tmp_path, affwildnet_checkpoint):
    video = face_video(tmp_path / "clip.mp4")
    assert needs_clips(str(affwildnet_checkpoint)) and not needs_clips("default")
    csv = tmp_path / "out.csv"
    assert main(["analyze", str(video), "--model", str(affwildnet_checkpoint), "-o", str(csv)]) == 0
    df = pd.read_csv(csv)
    faces = df[df["success"] == 1]
    assert len(df) == FRAMES and len(faces) == FRAMES  # one row per frame and face
    assert faces["face_id"].nunique() == 1
    assert np.isfinite(faces[["valence", "arousal"]].to_numpy()).all()
    assert (faces[["valence", "arousal"]].abs() <= 1).all().all()


def test_clips_equal_the_model_on_the_windows(tmp_path, affwildnet_checkpoint):
    """Batches of 3 frames, T = 4, S = 2: every frame's VA equals the model run offline on the full
    window [s(p), s(p) + 4) of the track's inputs (end-padded when the track is shorter)."""
    from facebehavior.models.weights import load_weights
    from facebehavior.pipeline import Analyzer
    from facebehavior.train.data import eval_inputs

    video = face_video(tmp_path / "clip.mp4")
    an = Analyzer(model=str(affwildnet_checkpoint), batch_size=3)
    stage = an.stage("predict")
    assert isinstance(stage, Clips)
    seen = record_inputs(stage)
    df = an.analyze(str(video))
    assert stage.T == 4 and stage.S == 2 and len(df) == FRAMES
    track = {k: np.concatenate([s[k] for s in seen]) for k in seen[0]}  # one face per frame
    assert track["landmarks"].shape == (FRAMES, 68, 2) and np.abs(track["landmarks"]).max() < 1.5
    model, spec = load_weights(affwildnet_checkpoint)
    model.eval()
    for p in range(FRAMES):
        s = window_start(p, 4, 2)
        idx = np.minimum(np.arange(s, s + 4), FRAMES - 1)  # padding beyond the track: its last frame
        batch = {"image": torch.from_numpy(track["image"][idx]).permute(0, 3, 1, 2)[None],
                 "landmarks": torch.from_numpy(track["landmarks"][idx])[None]}  # fmt: skip
        with torch.no_grad():
            va = model(*eval_inputs(model, batch, spec))["va"][0, p - s].numpy()
        np.testing.assert_allclose(df[["valence", "arousal"]].to_numpy()[p], va, atol=1e-5)


def test_clips_resume_snapshot_is_exact(tmp_path, affwildnet_checkpoint):
    """A run interrupted after the first batches continues its windows from the snapshot."""
    from facebehavior.pipeline import Analyzer

    video = face_video(tmp_path / "clip.mp4")
    full = Analyzer(model=str(affwildnet_checkpoint), batch_size=3).analyze(str(video))
    an = Analyzer(model=str(affwildnet_checkpoint), batch_size=3)
    chunks = list(an.iter_chunks(str(video), snapshots=True))
    saved = chunks[1].state  # after frames 0-5
    assert "clips" in saved

    class Prev:
        done, last_frame = False, chunks[1].last_frame

    again = Analyzer(model=str(affwildnet_checkpoint), batch_size=3)
    rest = pd.concat(
        [c.rows for c in again.iter_chunks(str(video), skip={str(video): Prev}, resume_state=lambda s: saved)]
    )
    np.testing.assert_allclose(
        rest[["valence", "arousal"]].to_numpy(), full[["valence", "arousal"]].to_numpy()[6:], atol=1e-6
    )
