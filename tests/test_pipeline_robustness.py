"""Analyzer robustness: faces that cannot be aligned, resume state, frame stride, default model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebehavior import schema
from facebehavior.io.writers import SourceProgress
from facebehavior.pipeline import Analyzer, SourceState
from facebehavior.pipeline.stages import Measure
from facebehavior.temporal.calibration import PersonCalibrator
from facebehavior.types import Detections
from test_pipeline import SquareDetector, square_frames, tiny_checkpoint, write_video  # noqa: F401


class CoincidentSecondFace(SquareDetector):
    """The squares detector, but faces right of x = 90 get five identical keypoints."""

    def __call__(self, images: np.ndarray) -> Detections:
        d = super().__call__(images)
        kp = d.keypoints.copy()
        bad = d.boxes[:, 0] > 90
        kp[bad] = kp[bad].mean(axis=1, keepdims=True)
        return Detections(d.frame_index, d.boxes, d.scores, kp)


def test_unalignable_face_is_skipped_and_recorded_others_kept(tiny_checkpoint, caplog):  # noqa: F811
    frames = square_frames(4, second=True)
    an = Analyzer(detector=CoincidentSecondFace(), landmarks=False, model=tiny_checkpoint, batch_size=2)
    with caplog.at_level(logging.WARNING, logger="facebehavior.pipeline"):
        chunks = list(an.iter_chunks(frames, video=True))
    df = pd.concat([c.rows for c in chunks], ignore_index=True)
    assert df["frame"].tolist() == [0, 1, 2, 3] and (df["x1"] < 90).all()
    assert df[schema.expression_columns(schema.EXPRESSIONS_8)].notna().all().all()
    assert [c.skipped for c in chunks] == [2, 2]
    assert [(s.source, s.frame) for s in an.skipped_faces] == [("array", k) for k in range(4)]
    assert all("coincident" in s.reason for s in an.skipped_faces)
    assert sum("face skipped" in r.getMessage() for r in caplog.records) == 4
    # a long run of bad faces logs a few warnings, records them all
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="facebehavior.pipeline"):
        an.analyze(square_frames(12, second=True), video=True)
    assert len(an.skipped_faces) == 12
    assert sum("face skipped" in r.getMessage() for r in caplog.records) == 5


def test_alignment_failure_of_one_face_keeps_the_batch(tiny_checkpoint, monkeypatch):  # noqa: F811
    import facebehavior.face.align as align

    real = align.align_faces

    def failing(images, detections, **kw):
        if (detections.keypoints[:, :, 0] > 90).any():
            raise RuntimeError("simulated per-face failure")
        return real(images, detections, **kw)

    frames = square_frames(3, second=True)
    one_face = square_frames(3)
    alone = Analyzer(detector=SquareDetector(), landmarks=False, model=tiny_checkpoint).analyze(
        one_face, video=True
    )
    monkeypatch.setattr(align, "align_faces", failing)
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=tiny_checkpoint)
    df = an.analyze(frames, video=True)
    assert df["frame"].tolist() == [0, 1, 2] and (df["x1"] < 90).all()
    assert [s.frame for s in an.skipped_faces] == [0, 1, 2]
    assert all("simulated per-face failure" in s.reason for s in an.skipped_faces)
    # the kept faces are analysed exactly as without the failing ones
    cols = schema.expression_columns(schema.EXPRESSIONS_8) + [schema.VALENCE_COLUMN]
    np.testing.assert_allclose(df[cols].to_numpy(), alone[cols].to_numpy(), atol=1e-6)

    # A batch whose only faces all fail gives frames without a face (success 0), not an error.
    only_bad = np.zeros((2, 96, 128, 3), np.uint8)
    only_bad[:, 30:60, 100:125] = 180
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=tiny_checkpoint)
    rows = an.analyze(only_bad, video=True)
    assert rows["success"].tolist() == [0, 0] and len(an.skipped_faces) == 2

    # An error that is not about a face's data (here a KeyError, as for an unknown template) is raised.
    def broken(images, detections, **kw):
        raise KeyError("unknown alignment template")

    monkeypatch.setattr(align, "align_faces", broken)
    with pytest.raises(KeyError, match="template"):
        Analyzer(detector=SquareDetector(), landmarks=False, model=tiny_checkpoint).analyze(
            frames, video=True
        )


def test_default_model_comes_from_models_default(tiny_checkpoint, monkeypatch, caplog):  # noqa: F811
    import facebehavior.models.default as default

    monkeypatch.setattr(default, "default_model_path", lambda: Path(tiny_checkpoint))
    assert Analyzer(model="default").spec.name == "tiny_test"

    def missing() -> Path:
        raise FileNotFoundError("weights/x.safetensors: the default model's weights are missing; reinstall")

    monkeypatch.setattr(default, "default_model_path", missing)
    with caplog.at_level(logging.WARNING, logger="facebehavior.pipeline"):
        an = Analyzer(model="default")
        assert an.spec is None
        points = schema.landmark68_columns() + list(schema.POSE_TRANSLATION_COLUMNS) + schema.gaze_columns()
        assert an.columns == schema.face_columns() + schema.landmark_feature_columns() + points
    assert any("reinstall" in r.getMessage() for r in caplog.records)


def _leave_and_newcomer(n: int = 20) -> np.ndarray:
    """A yellow square on the left for frames 0-7, then a banded cyan one far right: two people."""
    out = np.zeros((n, 96, 128, 3), np.uint8)
    for k in range(n):
        if k < 8:
            out[k, 20:60, 10 + k : 50 + k] = (250, 250, 140)
        else:
            out[k, 40:80, 80:120] = (140, 250, 250)
            out[k, 52:68, 80:120] = 0  # a dark band: it does not look like the first square
    return out


def test_resumed_video_continues_ids_from_saved_state(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, _leave_and_newcomer())

    def make() -> Analyzer:
        return Analyzer(detector=SquareDetector(), landmarks=False, model=None, batch_size=2, every=2)

    full = list(make().iter_chunks(path, snapshots=True))
    first = full[1]  # frames 0, 2, 4, 6 committed; the newcomer appears at frame 8
    saved = json.loads(json.dumps(first.state))  # as the writer stores it
    assert saved["tracker"]["frame"] == -1 + 4 * 2  # four processed frames, counted in video frames
    src = str(path)
    skip = {src: SourceProgress(last_frame=first.last_frame, frames=4)}
    resumed = list(make().iter_chunks(path, skip=skip, resume_state=lambda s: saved if s == src else None))
    rows_full = pd.concat([c.rows for c in full[2:]], ignore_index=True)
    rows_resumed = pd.concat([c.rows for c in resumed], ignore_index=True)
    pd.testing.assert_frame_equal(rows_resumed, rows_full)
    assert set(rows_full["face_id"]) == {1}  # the newcomer is the second identity of the video
    fresh = list(make().iter_chunks(path, skip=skip))  # no saved state: ids restart
    assert set(pd.concat([c.rows for c in fresh])["face_id"]) == {0}


def test_calibrator_state_round_trip_through_the_snapshot():
    rng = np.random.default_rng(3)
    ids = np.repeat([4, 9], 30)
    vals = rng.normal(size=(60, 3))
    whole = PersonCalibrator(window=20, min_frames=5)
    expected = np.concatenate([whole.update(ids[::2], vals[::2]), whole.update(ids[1::2], vals[1::2])])
    part = PersonCalibrator(window=20, min_frames=5)
    got_a = part.update(ids[::2], vals[::2])
    stage = Measure(geometry=True)
    state = SourceState(stages={stage.name: part})
    saved = json.loads(json.dumps(stage.snapshot(state)))
    resumed = SourceState()
    stage.restore(saved, resumed)
    # settings are not state: the pipeline builds its calibrator with fixed settings, set them here
    calibrator = stage.calibrator(resumed)
    calibrator.window, calibrator.min_frames = 20, 5
    got_b = calibrator.update(ids[1::2], vals[1::2])
    np.testing.assert_allclose(np.concatenate([got_a, got_b]), expected, atol=1e-12)
    sd = part.state_dict()
    sd["history"][4][:] = 99.0  # a copy: the calibrator is unaffected
    assert not (part.state_dict()["history"][4] == 99.0).any()
    with pytest.raises(ValueError, match="count"):
        PersonCalibrator().load_state_dict({"history": {}})
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        PersonCalibrator().load_state_dict({"history": {1: np.zeros(3)}, "count": {1: 1}})


def test_allocator_setting_is_applied_once_and_can_be_declined():
    import os
    import platform
    import subprocess
    import sys

    code = "from facebehavior._runtime import configure_allocator as c; print(c(), c())"
    env = {k: v for k, v in os.environ.items() if k != "FACEBEHAVIOR_ALLOCATOR"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert out.stdout.split() == ([str(glibc)] * 2)
    env["FACEBEHAVIOR_ALLOCATOR"] = "default"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
