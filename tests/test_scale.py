"""Distributed analysis on Ray (``facebehavior.scale``): rows equal a local run's, parts commit
atomically, a killed worker loses nothing committed and a rerun finishes the rest exactly once."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebehavior.pipeline import Analyzer
from facebehavior.scale import analyze_distributed, read_dataset
from facebehavior.scale.parts import committed, segment_name, video_prefix
from test_pipeline import SquareDetector, square_frames, tiny_checkpoint, write_video  # noqa: F401

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@pytest.fixture(scope="module")
def ray_cluster():
    """A local two-CPU Ray cluster whose workers can import this test module (its detectors)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'facebehavior[ray]')")
    path = os.pathsep.join([str(TESTS), str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    yield ray
    ray.shutdown()


def victim_frames(n: int = 40) -> np.ndarray:
    """Two faces: a square moving 1 px/frame (its x1 - 10 is the frame index) and a fixed one."""
    out = np.zeros((n, 96, 160, 3), np.uint8)
    for k in range(n):
        out[k, 20:60, 10 + k : 50 + k] = 250
        out[k, 30:60, 110:135] = 200
    return out


class KillingDetector(SquareDetector):
    """``SquareDetector`` that SIGKILLs its own worker process on ``victim_frames``' frame ``at``.

    It kills once per ``marker`` file, writing there the part files and inodes committed by then.
    """

    def __init__(self, marker: str, out_dir: str, at: int = 26) -> None:
        self.marker, self.out_dir, self.at = marker, out_dir, at

    def __call__(self, images: np.ndarray):
        det = super().__call__(images)
        if os.path.exists(self.marker):
            return det
        for i in range(len(images)):
            x1 = det.boxes[det.frame_index == i, 0].round()
            fixed = ((x1 >= 105) & (x1 <= 115)).any()  # only victim_frames have the square at x 110
            moving = x1[x1 < 100]
            if fixed and moving.size and moving[0] - 10 >= self.at:
                parts = {p.name: p.stat().st_ino for p in Path(self.out_dir).glob("*.parquet")}
                Path(self.marker).write_text(json.dumps(parts))
                os.kill(os.getpid(), signal.SIGKILL)
        return det


@pytest.fixture
def model_file(request) -> Path:
    """test_pipeline's tiny affect model (expressions, AU 1 and 12, VA), saved as a checkpoint."""
    return request.getfixturevalue("tiny_checkpoint")


@pytest.fixture
def corpus(tmp_path) -> list[str]:
    """Three videos (a face gap, a face joining late, two faces) and three images (one without a face)."""
    d = tmp_path / "in"
    d.mkdir()
    write_video(d / "a.mp4", square_frames(23, missing=(5, 6, 7)))
    # b: face B (right) from the start, face A joins at frame 6: a tracker restarted mid-video
    # would number them the other way round.
    v2 = square_frames(17, missing=range(6))
    v2[:, 30:60, 100:125] = (250, 140, 140)
    write_video(d / "b.mkv", v2)
    write_video(d / "c.mp4", victim_frames())
    Image.fromarray(square_frames(1)[0]).save(d / "d.png")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(d / "e_noface.png")
    Image.fromarray(square_frames(1, second=True)[0]).save(d / "f.png")
    return [str(d / n) for n in ("a.mp4", "d.png", "b.mkv", "e_noface.png", "c.mp4", "f.png")]


def _kwargs(checkpoint: Path, detector=None) -> dict:
    return dict(
        detector=detector or SquareDetector(), landmarks=False, model=str(checkpoint), batch_size=4, every=1
    )


def test_ray_rows_equal_a_local_run(ray_cluster, corpus, tmp_path, model_file):
    kw = _kwargs(model_file)
    local = Analyzer(**kw).analyze(corpus)
    out = tmp_path / "out"
    run = analyze_distributed(corpus, out, workers=2, segment_frames=8, **kw)
    assert run.ok, run.errors
    assert run.jobs == 4  # three videos + one group of images
    got = read_dataset(out)
    pd.testing.assert_frame_equal(got, local)
    # ids per source as in the local run (b: the face present from the start is 0)
    b = got[(got.source == corpus[2]) & (got.success == 1)]
    assert b.groupby("face_id")["x1"].mean().idxmax() == 0
    # one file per segment (8 analysed frames, rounded up to whole batches of 4) and per image group
    names = sorted(p.name for p in out.glob("*.parquet"))
    assert len(names) == 3 + 3 + 5 + 1  # a: 23 frames, b: 17, c: 40, images
    assert segment_name(corpus[0], 8) in names and segment_name(corpus[4], 32) in names
    assert not list(out.glob(".*"))  # no temporary file left
    # the folder is an ordinary Parquet dataset too
    assert len(pd.read_parquet(out)) == len(local)
    # a rerun finds everything done
    again = analyze_distributed(corpus, out, workers=2, segment_frames=8, **kw)
    assert again.jobs == 0 and again.skipped == 6 and again.parts == 0
    pd.testing.assert_frame_equal(read_dataset(out), local)


@pytest.mark.parametrize("retries", [0, 1])
def test_killed_worker_loses_nothing_committed(ray_cluster, corpus, tmp_path, model_file, retries):
    local = Analyzer(**_kwargs(model_file)).analyze(corpus)
    out, marker = tmp_path / "out", tmp_path / "killed.json"
    kw = _kwargs(model_file, KillingDetector(str(marker), str(out)))
    run = analyze_distributed(corpus, out, workers=2, segment_frames=8, retries=retries, **kw)
    assert marker.exists(), "the worker was not killed"
    victim = corpus[4]
    before = json.loads(marker.read_text())
    victim_parts = [n for n in before if n.startswith(video_prefix(victim))]
    assert len(victim_parts) == 3  # frames 0-23 were committed before the kill at frame 26
    if retries == 0:
        assert len(run.errors) == 1 and run.errors[0].startswith(f"{victim}: the worker died")
        progress = committed(out)
        assert progress[victim].last_frame == 23 and not progress[victim].done
        assert all(progress[s].done for s in corpus if s not in (victim, corpus[3]))
        run = analyze_distributed(corpus, out, workers=2, segment_frames=8, **kw)
        assert run.jobs == 1 and run.skipped == 5
    assert run.ok, run.errors
    # the parts committed before the kill were kept, not redone (same files, same inodes)
    for name in victim_parts:
        assert (out / name).stat().st_ino == before[name], name
    got = read_dataset(out)
    assert not got.duplicated(["source", "frame", "face_id"]).any()
    pd.testing.assert_frame_equal(got, local)


def test_a_part_is_written_atomically(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from facebehavior.scale import parts

    rows = pd.DataFrame({"source": ["x"], "frame": [0], "v": [1.5]})
    parts.write_part(tmp_path / "p.parquet", rows, {"sources": [], "state": None})

    def torn(table, where, **kw):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", torn)
    with pytest.raises(OSError):
        parts.write_part(tmp_path / "p.parquet", rows.assign(v=2.5), {"sources": [], "state": None})
    assert os.listdir(tmp_path) == ["p.parquet"]  # the temporary file is gone
    assert pd.read_parquet(tmp_path / "p.parquet")["v"].tolist() == [1.5]  # the old part is intact


def test_rerun_with_other_settings_is_refused(tmp_path):
    from facebehavior.scale.parts import check_manifest

    check_manifest(tmp_path / "o", ["a", "b"], {"every": 2}, ["x.mp4"])
    with pytest.raises(ValueError, match="every=2"):
        check_manifest(tmp_path / "o", ["a", "b"], {"every": 1}, ["x.mp4"])
    with pytest.raises(ValueError, match="other columns"):
        check_manifest(tmp_path / "o", ["a"], {"every": 2}, ["x.mp4"])
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        check_manifest(tmp_path / "f", ["a"], {}, [])


def test_engine_ray_without_ray_is_one_line(tmp_path, monkeypatch, capsys):
    from facebehavior.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    code = main(["analyze", str(REPO / "samples" / "face.jpg"), "-o", str(tmp_path / "o"), "--engine", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["error: --engine ray: the Ray engine needs Ray, which is not installed: "
                   "pip install 'facebehavior[ray]'"]  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_cli_engine_ray_on_the_samples_equals_the_local_run(ray_cluster, tmp_path, capsys):
    """The real default pipeline (detector, landmarks, affect model) through the CLI."""
    from facebehavior.cli import main
    from facebehavior.io.writers import read_results

    clip = tmp_path / "clip.mp4"
    import av

    with av.open(str(REPO / "samples" / "video.mp4")) as c:
        frames = np.stack(
            [f.to_ndarray(format="rgb24") for _, f in zip(range(24), c.decode(video=0), strict=False)]
        )
    write_video(clip, frames)
    inputs = [str(clip), str(REPO / "samples" / "face.jpg")]
    ref = tmp_path / "ref.parquet"
    assert main(["analyze", *inputs, "-o", str(ref), "--no-progress", "--batch-size", "8"]) == 0
    out = tmp_path / "ds"
    args = ["analyze", *inputs, "-o", str(out), "--engine", "ray", "--workers", "2", "--segment-frames", "8"]
    assert main([*args, "--batch-size", "8", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "24 frames" in err or "25 frames" in err
    pd.testing.assert_frame_equal(read_dataset(out), read_results(ref))
    assert len(list(out.glob("clip-*.parquet"))) == 3
    # bad use of the options: one line each, exit 2
    assert main([*args, "--smooth", "3"]) == 2
    assert main(["analyze", *inputs, "-o", str(tmp_path / "x.csv"), "--engine", "ray"]) == 2
    assert main([*args, "--every", "2"]) == 2
    err = capsys.readouterr().err
    assert "--smooth" in err and "names a folder" in err and "every=1" in err and "Traceback" not in err
