"""The pipeline as stages: composition, swapping, timing, no process-wide side effects."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from facebehavior.pipeline import Analyzer, Batch, SourceState, Stage, Timed
from facebehavior.pipeline.detect import Detect
from facebehavior.pipeline.landmarks import TrackLandmarks
from test_pipeline import SquareDetector, square_frames


def test_analyzer_is_a_list_of_stages_with_one_protocol():
    an = Analyzer(detector=SquareDetector(), landmarks="v1", model=None)
    assert [s.name for s in an.stages] == ["landmarks", "screen", "track", "measure"]
    assert all(isinstance(s, Stage) for s in an.stages)
    assert isinstance(an.stage("detect"), Detect) and an.stage("detect") is an.stages[0].detect
    assert isinstance(an.stage("landmarks"), TrackLandmarks)
    with pytest.raises(KeyError, match="stages"):
        an.stage("nope")
    no_lm = Analyzer(detector=SquareDetector(), landmarks=False, model=None)
    assert [s.name for s in no_lm.stages] == ["detect", "screen", "track", "measure"]


def test_a_stage_can_be_timed_replaced_and_added_without_monkeypatching():
    frames = square_frames(6)
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=None, batch_size=4)
    base = an.analyze(frames, video=True)
    an.stages = [Timed(s) for s in an.stages]
    timed = an.analyze(frames, video=True)
    assert timed.equals(base)
    assert [s.calls for s in an.stages] == [2, 2, 2, 2]  # 6 frames in batches of 4
    assert all(s.seconds >= 0 and s.cpu_seconds >= 0 for s in an.stages)

    class Shift:
        """A user stage: moves every box 1 px right and adds a column."""

        name = "shift"

        def columns(self) -> list[str]:
            return ["shifted"]

        def __call__(self, batch: Batch, state: SourceState) -> Batch:
            faces = replace(batch.faces, boxes=batch.faces.boxes + np.array([1, 0, 1, 0], np.float32))
            return replace(batch, faces=faces).with_columns({"shifted": np.ones(len(faces), np.float32)})

    an.stages.append(Shift())  # columns follow the stages: "shifted" comes last
    df = an.analyze(frames, video=True)
    assert list(df.columns) == list(base.columns) + ["shifted"]
    np.testing.assert_allclose(df["x1"], base["x1"] + 1)
    assert (df["shifted"] == 1).all()
    an.stages = [s for s in an.stages if s.name != "track"]
    assert (an.analyze(frames, video=True)["face_id"] == -1).all()  # no tracker: no identities


def test_landmark_detection_can_be_timed_inside_tracking():
    from facebehavior.io.images import read_image
    from test_pipeline import SAMPLE_IMAGE

    img = read_image(SAMPLE_IMAGE)
    an = Analyzer(detector="blazeface_short", landmarks="v1", model=None)
    lm = an.stage("landmarks")
    lm.detect = Timed(lm.detect)
    df = an.analyze(np.stack([img] * 3), video=True)
    assert len(df) > 0 and lm.detect.calls >= 1 and lm.detect.cpu_seconds > 0


def test_analyze_leaves_torch_threads_as_it_found_them():
    import torch

    before = torch.get_num_threads()
    want = 2 if before != 2 else 3
    torch.set_num_threads(want)
    try:
        an = Analyzer(detector=SquareDetector(), landmarks=False, model=None, threads=1)
        seen: list[int] = []

        class Probe:
            name = "probe"

            def columns(self) -> list[str]:
                return []

            def __call__(self, batch: Batch, state: SourceState) -> Batch:
                seen.append(torch.get_num_threads())
                return batch

        an.stages.append(Probe())
        an.analyze(square_frames(3), video=True)
        assert seen and set(seen) == {1}  # the library's speed default applies while it runs
        assert torch.get_num_threads() == want  # and the host's setting is back afterwards
        for _ in Analyzer(detector=SquareDetector(), landmarks=False, model=None).stream(square_frames(2)):
            assert torch.get_num_threads() == want  # also between the batches of a stream
    finally:
        torch.set_num_threads(before)


def test_arrays_are_photos_unless_said_to_be_a_video():
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=None)
    stack = square_frames(3)
    photos = an.analyze(stack)
    assert photos["source"].tolist() == ["array[0]", "array[1]", "array[2]"]
    assert (photos["frame"] == 0).all()
    listed = an.analyze(list(stack))
    assert listed["source"].tolist() == photos["source"].tolist()
    video = an.analyze(stack, video=True)
    assert (video["source"] == "array").all() and video["frame"].tolist() == [0, 1, 2]
    assert video["face_id"].nunique() == 1
    with pytest.raises(ValueError, match="video=True"):
        an.analyze(stack[0], video=True)


class _LaneProbe:
    """A last stage that may overlap: records the thread it ran in and adds a column."""

    name = "probe"
    overlappable = True

    def __init__(self, fail_at: int | None = None) -> None:
        self.threads: list[str] = []
        self.fail_at = fail_at

    def columns(self) -> list[str]:
        return ["probe"]

    def __call__(self, batch: Batch, state: SourceState) -> Batch:
        import threading

        self.threads.append(threading.current_thread().name)
        if self.fail_at is not None and len(self.threads) == self.fail_at:
            raise RuntimeError("probe failed")
        return batch.with_columns({"probe": batch.faces.boxes[:, 0] * 2})


def _lane_run(path, overlap: bool, **kw):
    import threading

    an = Analyzer(detector=SquareDetector(), landmarks=False, model=None, batch_size=3, overlap=overlap)
    probe = _LaneProbe(**kw)
    an.stages.append(probe)
    hooks: list[str] = []
    an.on_batch = lambda frames, rows: hooks.append(threading.current_thread().name)
    chunks = list(an.iter_chunks([str(path)], snapshots=True))
    return chunks, probe.threads, hooks


def test_overlap_runs_the_last_stage_in_a_lane_with_the_same_chunks(tmp_path):
    from test_pipeline import write_video

    path = tmp_path / "squares.mp4"
    write_video(path, square_frames(11, missing=(4, 5), second=True))
    serial, serial_threads, serial_hooks = _lane_run(path, overlap=False)
    lane, lane_threads, lane_hooks = _lane_run(path, overlap=True)
    assert len(lane) == len(serial) == 4  # 11 frames in batches of 3
    for a, b in zip(serial, lane, strict=True):
        assert (a.source, a.frames, a.no_face, a.last_frame, a.done) == (
            b.source,
            b.frames,
            b.no_face,
            b.last_frame,
            b.done,
        )
        assert a.rows.equals(b.rows) and a.state == b.state  # tracker snapshots taken at the same point
    assert [c.done for c in lane] == [False, False, False, True]
    assert set(serial_threads) == {"MainThread"}
    assert lane_threads and all(t.startswith("facebehavior-lane") for t in lane_threads)
    assert (
        set(serial_hooks) == set(lane_hooks) == {"MainThread"}
    )  # on_batch (a GUI) stays in the caller's thread


def test_a_failure_in_the_lane_reaches_the_caller(tmp_path):
    from test_pipeline import write_video

    path = tmp_path / "squares.mp4"
    write_video(path, square_frames(9))
    with pytest.raises(RuntimeError, match="probe failed"):
        _lane_run(path, overlap=True, fail_at=2)


def test_stages_that_may_run_torch_are_not_overlapped():
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=None, batch_size=2)
    probe = _LaneProbe()
    probe.overlappable = False  # e.g. a torch model: torch's thread count is process-wide
    an.stages.append(probe)
    an.analyze(square_frames(5), video=True)
    assert set(probe.threads) == {"MainThread"}


def test_a_truncated_video_keeps_the_frames_analysed_in_the_lane(tmp_path):
    from test_pipeline import write_video

    write_video(tmp_path / "full.mp4", square_frames(40), faststart=True)
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=None, batch_size=1)
    probe = _LaneProbe()
    an.stages.append(probe)
    df = an.analyze(tmp_path / "cut.mp4", errors="skip")
    assert len(an.failures) == 1 and "truncated" in str(an.failures[0])
    assert 2 <= len(df) < 40 and df["frame"].tolist() == list(range(len(df)))
    assert set(probe.threads) == {"facebehavior-lane_0"}
