"""Faults from the bad-input matrix (issue 13): each test fails without its fix.

Interruptions drive a real ``facebehavior analyze`` child process and kill or signal it at the
dangerous moment; the child routes every detector to the square-finding test double, so no
weights are needed and frames are tiny.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebehavior.cli import main
from facebehavior.io import InputError
from facebehavior.io.writers import read_results
from test_pipeline import SquareDetector, square_frames, write_video

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FAST = ["--detector", "blazeface_short", "--no-landmarks", "--model", "none", "--no-progress"]


@pytest.fixture
def squares(monkeypatch):
    """Route every detector name to the square-finding test double (no weights needed)."""
    import facebehavior.face.detect as detect

    monkeypatch.setattr(detect, "create_detector", lambda name, **kw: SquareDetector())


def child(args: list[str], patch: str = "", timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run ``facebehavior`` ARGS in a fresh interpreter after executing ``patch`` (test doubles)."""
    prelude = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(TESTS)!r})
        import facebehavior.face.detect as detect
        from test_pipeline import SquareDetector
        detect.create_detector = lambda name, **kw: SquareDetector()
        """
    )
    code = (
        prelude
        + textwrap.dedent(patch)
        + "\nfrom facebehavior.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kw.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, env=env, **kw
    )


def videos(tmp_path: Path, n: int = 2) -> list[str]:
    paths = []
    for k in range(n):
        p = tmp_path / f"v{k}.mp4"
        write_video(p, square_frames(12))
        paths.append(str(p))
    return paths


# --- 1. atomic journal rebuild ---------------------------------------------------------------
KILL_AT_WRITE = """
from facebehavior.io.writers import ResultWriter
_write, _n = ResultWriter.write, [0]
def write(self, df, **kw):
    _n[0] += 1
    if _n[0] == {n}:
        os.kill(os.getpid(), signal.SIGKILL)
    return _write(self, df, **kw)
ResultWriter.write = write
"""

KILL_IN_REBUILD = """
import pyarrow as pa
_new_stream, _n = pa.ipc.new_stream, [0]
class Killer:
    def __init__(self, w): self.w = w
    def write_table(self, t):
        _n[0] += 1
        if _n[0] == 2:  # mid-rebuild: one batch copied, the rest not
            os.kill(os.getpid(), signal.SIGKILL)
        return self.w.write_table(t)
    def __getattr__(self, k): return getattr(self.w, k)
pa.ipc.new_stream = lambda *a, **k: Killer(_new_stream(*a, **k))
"""


def test_parquet_resume_killed_during_its_journal_rebuild_loses_nothing(tmp_path):
    inputs = videos(tmp_path)
    args = [*inputs, *FAST, "--batch-size", "2"]
    ref, out = tmp_path / "ref.parquet", tmp_path / "out.parquet"
    assert child([*args[:0], "analyze", *args, "-o", str(ref)]).returncode == 0
    killed = child(["analyze", *args, "-o", str(out)], KILL_AT_WRITE.format(n=9))
    assert killed.returncode == -signal.SIGKILL
    # The resume is killed while it copies the journal: the next resume must still find every row.
    again = child(["analyze", *args, "-o", str(out), "--resume"], KILL_IN_REBUILD)
    assert again.returncode == -signal.SIGKILL
    done = child(["analyze", *args, "-o", str(out), "--resume"])
    assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(read_results(out), read_results(ref))


# --- 2. an earlier output survives a failing run ---------------------------------------------
@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_a_failing_run_never_destroys_the_earlier_output(tmp_path, squares, capsys, ext):
    (inp,) = videos(tmp_path, 1)
    out = tmp_path / f"r.{ext}"
    assert main(["analyze", inp, "-o", str(out), *FAST]) == 0
    before = out.read_bytes()
    assert main(["analyze", str(tmp_path / "fcae.jpg"), "-o", str(out), *FAST]) == 1
    assert main(["analyze", str(out), "-o", str(out), *FAST]) == 1
    err = capsys.readouterr().err
    assert "fcae.jpg: file or folder not found" in err
    assert f"{out}: is this run's output (-o), not an input" in err
    assert out.read_bytes() == before


def test_output_is_replaced_only_when_the_new_run_commits(tmp_path, squares, monkeypatch):
    (inp,) = videos(tmp_path, 1)
    out = tmp_path / "r.csv"
    assert main(["analyze", inp, "-o", str(out), *FAST]) == 0
    before = out.read_bytes()
    from facebehavior.pipeline import Analyzer

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(Analyzer, "iter_chunks", interrupted)
    assert main(["analyze", inp, "-o", str(out), *FAST]) == 130
    assert out.read_bytes() == before


# --- 3. symlink loops --------------------------------------------------------------------------
def test_recursive_walk_visits_each_real_folder_once(tmp_path):
    d = tmp_path / "L"
    d.mkdir()
    Image.fromarray(square_frames(1)[0]).save(d / "face.png")
    (d / "loop").symlink_to(".")
    (d / "up").symlink_to("../L")
    code = (
        "from facebehavior.io.sources import expand_inputs; import sys; "
        "s, e = expand_inputs(sys.argv[1:], recursive=True); print(len(s), len(e))"
    )
    for arg in (str(d), f"{d}/**/*.png"):
        # Without the fix the two links make the walk branch twice per level: it never ends.
        r = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, timeout=60)
        assert r.stdout.split() == ["1", "0"], (arg, r.stdout, r.stderr)


# --- 4. discarded packets are not truncation --------------------------------------------------
def write_edit_list_video(path: Path, n: int, lead: int) -> None:
    """An MP4 whose first ``lead`` packets precede its edit list (marked discard when read)."""
    frames = square_frames(n)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = "yuv420p"
        s.options = {"bf": "0"}
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i - lead, Fraction(1, 25)
            for pk in s.encode(f):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)


def test_video_with_discarded_packets_is_intact_and_finishes(tmp_path, squares, capsys):
    v = tmp_path / "edit.mp4"
    write_edit_list_video(v, 40, lead=5)
    with av.open(str(v)) as c:
        assert c.streams.video[0].frames == 40
        assert sum(1 for _ in c.decode(video=0)) == 35  # ffmpeg drops the discarded frames
    out = tmp_path / "o.csv"
    assert main(["analyze", str(v), "-o", str(out), *FAST]) == 0, capsys.readouterr().err
    assert len(read_results(out)) == 35
    assert main(["analyze", str(v), "-o", str(out), "--resume", *FAST]) == 0
    assert "1 of 1 inputs already done" in capsys.readouterr().err


# --- 5. resume without journal / with another --every ------------------------------------------
def test_resume_without_journal_does_not_duplicate_images(tmp_path, squares):
    img = tmp_path / "face.png"
    Image.fromarray(square_frames(1, second=True)[0]).save(img)
    (inp,) = videos(tmp_path, 1)
    out = tmp_path / "o.csv"
    assert main(["analyze", str(img), inp, "-o", str(out), *FAST]) == 0
    before = read_results(out)
    for p in tmp_path.glob("o.csv.*"):
        p.unlink()
    assert main(["analyze", str(img), inp, "-o", str(out), "--resume", *FAST]) == 0
    pd.testing.assert_frame_equal(read_results(out), before)


def test_resume_with_another_every_is_refused(tmp_path, squares, capsys):
    (inp,) = videos(tmp_path, 1)
    out = tmp_path / "o.csv"
    assert main(["analyze", inp, "-o", str(out), "--every", "2", *FAST]) == 0
    before = out.read_bytes()
    assert main(["analyze", inp, "-o", str(out), "--every", "3", "--resume", *FAST]) == 2
    assert "was written with --every 2; resume with --every 2" in capsys.readouterr().err
    assert out.read_bytes() == before


# --- 6. full disk --------------------------------------------------------------------------
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell file descriptors apart")
def test_csv_full_disk_keeps_only_committed_rows(tmp_path, squares, monkeypatch, capsys):
    inputs = videos(tmp_path)
    args = [*inputs, *FAST, "--batch-size", "4"]
    ref, out = tmp_path / "ref.csv", tmp_path / "out.csv"
    assert main(["analyze", *args, "-o", str(ref)]) == 0
    capsys.readouterr()
    import facebehavior.io.writers as writers

    real, n = os.fsync, [0]

    def full(fd):
        if os.readlink(f"/proc/self/fd/{fd}") == str(out):
            n[0] += 1
            if n[0] == 4:  # the 4th chunk's rows reached the file, its fsync finds the disk full
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(writers.os, "fsync", full)
    assert main(["analyze", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "writing failed (No space left on device)" in err and "Traceback" not in err
    counted = int(err.split(" face rows written")[0].split()[-1])
    assert len(read_results(out)) == counted and out.read_bytes().endswith(b"\n")
    monkeypatch.setattr(writers.os, "fsync", real)
    assert main(["analyze", *args, "-o", str(out), "--resume"]) == 0
    pd.testing.assert_frame_equal(read_results(out), read_results(ref))


def test_parquet_full_disk_at_close_is_one_line_and_resumable(tmp_path, squares, monkeypatch, capsys):
    import pyarrow.parquet as pq

    inputs = videos(tmp_path)
    args = [*inputs, *FAST, "--batch-size", "4"]
    ref, out = tmp_path / "ref.parquet", tmp_path / "out.parquet"
    assert main(["analyze", *args, "-o", str(ref)]) == 0

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    assert main(["analyze", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "finishing the output failed (No space left on device)" in err and "--resume" in err
    assert not out.exists() and not (tmp_path / "out.parquet.tmp").exists()
    monkeypatch.undo()
    import facebehavior.face.detect as detect

    monkeypatch.setattr(detect, "create_detector", lambda name, **kw: SquareDetector())
    assert main(["analyze", *args, "-o", str(out), "--resume"]) == 0
    pd.testing.assert_frame_equal(read_results(out), read_results(ref))


# --- 7, 8, 15. one-line usage errors -----------------------------------------------------------
def test_bad_options_are_one_line_usage_errors(tmp_path, squares, capsys, monkeypatch):
    (inp,) = videos(tmp_path, 1)
    out = str(tmp_path / "o.csv")
    (tmp_path / "file").write_text("x")
    (tmp_path / "models").mkdir()
    cases = {
        ("--device", "banana"): "unknown device 'banana'",
        ("--device", "cuda:0"): "device 'cuda:0'",
        ("--plot", str(tmp_path / "file" / "plots")): "is a file, not a folder",
        ("--model", str(tmp_path / "models")): "is a folder; pass the .safetensors checkpoint file",
    }
    import torch

    if torch.cuda.is_available():
        del cases[("--device", "cuda:0")]
    for extra, msg in cases.items():
        assert main(["analyze", inp, "-o", out, *FAST, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
        assert not Path(out).exists()
    assert main(["analyze", inp, "-o", str(tmp_path / "file" / "o.csv"), *FAST]) == 2
    assert f"{tmp_path / 'file'} is a file, not a folder" in capsys.readouterr().err
    monkeypatch.setenv("FACEBEHAVIOR_THREADS", "abc")
    assert main(["analyze", inp, "-o", out, *FAST]) == 2
    assert "FACEBEHAVIOR_THREADS='abc': expected a whole number" in capsys.readouterr().err
    monkeypatch.delenv("FACEBEHAVIOR_THREADS")
    with pytest.raises(SystemExit) as e:
        main(["analyze", inp, "-o", out, *FAST, "--threads", "-1"])
    assert e.value.code == 2 and "must be 0 (torch's default) or more" in capsys.readouterr().err


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_resume_onto_a_foreign_file_is_refused(tmp_path, squares, capsys, ext):
    (inp,) = videos(tmp_path, 1)
    out = tmp_path / f"other.{ext}"
    foreign = pd.DataFrame({"name": ["a", "b"], "value": [1, 2]})
    if ext == "csv":
        foreign.to_csv(out, index=False)
    elif ext == "jsonl":
        foreign.to_json(out, orient="records", lines=True)
    else:
        foreign.to_parquet(out)
    before = out.read_bytes()
    assert main(["analyze", inp, "-o", str(out), "--resume", *FAST]) == 2
    err = capsys.readouterr().err
    assert f"{out}: not a facebehavior results file" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before


def test_fifo_input_is_reported_not_read(tmp_path, squares, capsys):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    assert main(["analyze", str(fifo), "-o", str(tmp_path / "o.csv"), *FAST]) == 1
    assert "pipe.mp4: not a regular file (a named pipe (FIFO))" in capsys.readouterr().err


# --- 9. signals ----------------------------------------------------------------------------------
def test_ctrl_c_during_start_up_and_resume_rebuild_exits_130_without_traceback(tmp_path):
    inputs = videos(tmp_path, 1)
    args = ["analyze", *inputs, *FAST, "-o", str(tmp_path / "o.parquet")]
    start_up = """
from facebehavior.pipeline import Analyzer
_init = Analyzer.__init__
def init(self, *a, **k):
    os.kill(os.getpid(), signal.SIGINT)
    _init(self, *a, **k)
Analyzer.__init__ = init
"""
    r = child(args, start_up)
    assert r.returncode == 130 and "Traceback" not in r.stderr, r.stderr
    assert child(args).returncode == 0
    rebuild = """
from facebehavior.io.writers import ParquetWriter
_restore = ParquetWriter._restore
def restore(self, *a, **k):
    os.kill(os.getpid(), signal.SIGINT)
    return _restore(self, *a, **k)
ParquetWriter._restore = restore
"""
    before = read_results(tmp_path / "o.parquet")
    r = child([*args, "--resume"], rebuild)
    assert r.returncode == 130 and "Traceback" not in r.stderr, r.stderr
    pd.testing.assert_frame_equal(read_results(tmp_path / "o.parquet"), before)


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    inputs = videos(tmp_path)
    args = [*inputs, *FAST, "--batch-size", "2"]
    term = KILL_AT_WRITE.format(n=4).replace("SIGKILL", "SIGTERM")
    r = child(["analyze", *args, "-o", str(tmp_path / "o.parquet")], term)
    assert r.returncode == 143 and "Traceback" not in r.stderr, r.stderr
    assert "interrupted (SIGTERM)" in r.stderr
    assert len(read_results(tmp_path / "o.parquet")) == 6  # three committed chunks of 2 frames
    assert child(["analyze", *args, "-o", str(tmp_path / "o.parquet"), "--resume"]).returncode == 0
    assert len(read_results(tmp_path / "o.parquet")) == 24


# --- 10. video rotation -------------------------------------------------------------------------
@pytest.mark.parametrize("rotation", [180, -90])
def test_video_rotation_metadata_is_applied(tmp_path, rotation):
    from facebehavior import Analyzer

    frames = np.zeros((3, 64, 96, 3), np.uint8)
    frames[:, 8:28, 6:26] = 250  # top-left as stored
    path = tmp_path / "rot.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.height, s.width = 64, 96
        s.pix_fmt = "yuv420p"
        s.set_display_rotation(rotation)  # as a phone tags an upside-down / portrait recording
        for img in frames:
            for pk in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    df = Analyzer(detector=SquareDetector(), landmarks=False, model=None).analyze(path)
    box = df[["x1", "y1", "x2", "y2"]].iloc[0].to_numpy()
    # Displayed upright: 180° puts the square bottom-right; a 90° clockwise turn (-90 CCW) top-right.
    want = {180: (70, 36, 90, 56), -90: (36, 6, 56, 26)}[rotation]
    np.testing.assert_allclose(box, want, atol=2)


# --- 11. empty argument, multi-page TIFF, empty folder ---------------------------------------------
def test_empty_argument_multipage_tiff_and_empty_folder(tmp_path, squares, capsys, caplog):
    out = tmp_path / "o.csv"
    assert main(["analyze", "", "-o", str(out), *FAST]) == 1
    assert "'': empty input path" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["analyze", str(tmp_path / "empty"), "-o", str(out), *FAST]) == 1
    assert "empty: folder holds no images or videos" in capsys.readouterr().err
    pages = [Image.fromarray(f) for f in square_frames(3)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    with caplog.at_level("WARNING"):
        assert main(["analyze", str(tmp_path / "stack.tif"), "-o", str(out), *FAST]) == 0
    assert "3 pages/frames; only the first is analysed" in caplog.text


# --- 12. no faces: header-only output ------------------------------------------------------------
@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_run_without_faces_writes_an_empty_table(tmp_path, squares, ext):
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "dark.png")
    out = tmp_path / f"o.{ext}"
    assert main(["analyze", str(tmp_path / "dark.png"), "-o", str(out), *FAST]) == 0
    assert out.exists()
    df = read_results(out)
    assert len(df) == 0
    if ext != "jsonl":  # JSON Lines has no header: an empty file
        assert list(df.columns)[:3] == ["source", "frame", "timestamp"]


# --- 13. the default detector on a grid of small faces -------------------------------------------
@pytest.mark.skipif(not (REPO / "samples" / "face.jpg").exists(), reason="samples/face.jpg not present")
def test_default_detector_finds_every_face_of_a_photo_grid():
    """30 portraits of 200 px in a 1200x1000 grid: the whole-frame cascade alone found 3-20."""
    from facebehavior import Analyzer
    from facebehavior.face.detect import create_detector

    img = np.asarray(Image.open(REPO / "samples" / "face.jpg").convert("RGB"))
    crops = []
    for b in create_detector("blazeface_full")(img[None]).boxes:
        cx, cy, s = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, (b[2] - b[0]) * 1.5
        x1, y1 = int(max(0, cx - s / 2)), int(max(0, cy - s / 2))
        crops.append(np.asarray(Image.fromarray(img[y1 : int(y1 + s), x1 : int(x1 + s)]).resize((200, 200))))
    assert len(crops) == 4
    grid = np.zeros((1000, 1200, 3), np.uint8)
    for k in range(30):
        r, c = divmod(k, 6)
        grid[r * 200 : (r + 1) * 200, c * 200 : (c + 1) * 200] = crops[k % 4]
    df = Analyzer(model=None).analyze(grid)
    centres = np.stack([(df.x1 + df.x2) / 2 // 200, (df.y1 + df.y2) / 2 // 200], axis=1)
    assert len(df) == 30 and len({tuple(c) for c in centres}) == 30
    # The tiles add no false faces to the group photo (a sweater fold scored 0.54 in a tile).
    assert len(Analyzer(model=None, landmarks=False).analyze(REPO / "samples" / "face.jpg")) == 4


# --- 14. API inputs ----------------------------------------------------------------------------
def test_api_accepts_pil_images_bytes_paths_and_lists_of_photos(tmp_path):
    from facebehavior import Analyzer

    an = Analyzer(detector=SquareDetector(), landmarks=False, model=None)
    img = square_frames(1)[0]
    Image.fromarray(img).save(tmp_path / "f.png")
    one = an.analyze(Image.open(tmp_path / "f.png"))
    assert len(one) == 1 and one["source"].tolist() == ["array"]
    assert len(an.analyze(os.fsencode(tmp_path / "f.png"))) == 1
    photos = an.analyze([img, square_frames(2)[1], np.zeros_like(img)])
    assert photos["source"].tolist() == ["array[0]", "array[1]"] and photos["frame"].tolist() == [0, 0]
    assert photos["face_id"].tolist() == [0, 0]  # independent photos: no tracking across them
    video = an.analyze(square_frames(3), video=True)
    assert video["source"].unique().tolist() == ["array"] and video["frame"].tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="cannot analyse NoneType: pass a path"):
        an.analyze(None)
    with pytest.raises(ValueError, match="errors must be 'raise' or 'skip', got 'ignore'"):
        an.analyze(tmp_path / "f.png", errors="ignore")
    with pytest.raises(InputError, match="empty input path"):
        an.analyze("")


def test_journal_records_the_sampling(tmp_path, squares):
    (inp,) = videos(tmp_path, 1)
    out = tmp_path / "o.jsonl"
    assert main(["analyze", inp, "-o", str(out), "--every", "3", *FAST]) == 0
    lines = [json.loads(x) for x in (tmp_path / "o.jsonl.progress.jsonl").read_text().splitlines()]
    assert {ln["meta"]["every"] for ln in lines} == {3}
