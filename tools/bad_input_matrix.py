"""Run the bad-input and fault matrix of ``facebehavior analyze`` and print one line per case.

Every case runs as a separate process with a timeout: bad files, outputs, options and API calls,
kill -9 / Ctrl-C / SIGTERM in the middle of a run followed by ``--resume`` (CSV, Parquet, JSON
Lines), a kill during a resume's journal rebuild, and a full disk (a small tmpfs; needs root,
otherwise those cases are skipped with the reason). The table shows the exit code, the first line
of stderr, the rows in the output afterwards and whether a traceback was printed; the summary
counts tracebacks, hangs, lost rows and unexpected exit codes — all four should be 0.

    python tools/bad_input_matrix.py            # about 5-10 minutes on 2 cores
    python tools/bad_input_matrix.py -k resume  # only cases whose name contains "resume"
    python tools/bad_input_matrix.py --jobs 2   # two cases at a time

"Lost rows" means: an output that existed before a failing run has fewer rows afterwards, or an
interrupted run completed with ``--resume`` differs from an uninterrupted one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FACE = REPO / "samples" / "face.jpg"
VIDEO = REPO / "samples" / "video.mp4"
QUIET = ["--no-progress"]
FAST = ["--model", "none", "--no-progress"]  # for cases about inputs and options: no affect model


@dataclass
class Case:
    """One row of the matrix.

    Attributes:
        name: short identifier.
        argv: ``facebehavior`` arguments (``{d}`` is replaced by the case's folder), or None.
        code: Python code to run instead (API cases; ``D`` is the case's folder).
        rc: accepted exit codes.
        setup: prepares the case's folder before the run.
        output: the output file whose rows are counted afterwards (relative to the folder).
        keep: rows the output must still hold afterwards (a failing run must not lose them).
        check: extra check after the run: returns an error text or "".
        env: extra environment variables.
        driver: runs the case itself (kills, resumes) and returns a ``Result``.
        timeout: seconds before the case counts as a hang.
        skip: reason to skip, or "".
    """

    name: str
    argv: list[str] | None = None
    code: str | None = None
    rc: tuple[int, ...] = (0,)
    setup: Callable[[Path], None] | None = None
    output: str | None = None
    keep: int | None = None
    check: Callable[[Path], str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    driver: Callable[[Path], Result] | None = None
    timeout: float = 180
    skip: str = ""


@dataclass
class Result:
    rc: int | None
    stderr: str
    rows: int | None = None
    hang: bool = False
    lost: str = ""
    note: str = ""


# ---------------------------------------------------------------------------------------- helpers
def run_cli(args: list[str], d: Path, timeout: float, env: dict | None = None, patch: str = "") -> Result:
    code = (
        textwrap.dedent(patch)
        + "\nimport sys\nfrom facebehavior.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    cmd = [sys.executable, "-c", code, *[a.replace("{d}", str(d)) for a in args]]
    return _run(cmd, d, timeout, env)


def _run(cmd: list[str], d: Path, timeout: float, env: dict | None = None) -> Result:
    e = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
    try:
        _, err = p.communicate(timeout=timeout)
        return Result(p.returncode, err)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        return Result(None, err, hang=True)


def rows(path: Path) -> int | None:
    from facebehavior.io.writers import read_results

    if not path.exists():
        return None
    try:
        return len(read_results(path))
    except Exception:  # noqa: BLE001 (an unreadable output is reported as such)
        return -1


def first_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(("WARNING", "INFO"))]
    return (lines or [""])[0][:110]


def video(path: Path, n: int = 12, size: tuple[int, int] = (96, 128), **kw) -> Path:
    """A tiny H.264 MP4 (bright square on black; ``kw``: rotation=, lead= discarded packets)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.height, s.width = size
        s.pix_fmt = "yuv420p"
        s.options = {"bf": "0"}
        if "rotation" in kw:
            s.set_display_rotation(kw["rotation"])
        for i in range(n):
            img = np.zeros((*size, 3), np.uint8)
            img[20:60, 10 + 2 * i : 50 + 2 * i] = 250
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i - kw.get("lead", 0), Fraction(1, 25)
            for pk in s.encode(f):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return path


def image(path: Path, arr: np.ndarray | None = None, **save) -> Path:
    from PIL import Image

    Image.fromarray(arr if arr is not None else np.zeros((40, 40, 3), np.uint8)).save(path, **save)
    return path


def face(d: Path) -> None:
    shutil.copy(FACE, d / "face.jpg")


def prior(ext: str) -> Callable[[Path], None]:
    """An earlier output of face.jpg in ``r.EXT`` (4 rows)."""

    def setup(d: Path) -> None:
        face(d)
        r = run_cli(["analyze", str(d / "face.jpg"), "-o", str(d / f"r.{ext}"), *FAST], d, 180)
        assert r.rc == 0, r.stderr

    return setup


def both(*fs: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        for f in fs:
            f(d)

    return setup


# ------------------------------------------------------------------------------- fault drivers
def _wait_for_commits(d: Path, name: str, n: int, p: subprocess.Popen, limit: float = 120) -> bool:
    journal = d / f"{name}.progress.jsonl"
    t0 = time.time()
    while time.time() - t0 < limit and p.poll() is None:
        if journal.exists() and journal.read_text().count("\n") >= n:
            return True
        time.sleep(0.05)
    return False


def interrupt_then_resume(ext: str, sig: signal.Signals) -> Callable[[Path], Result]:
    """Run samples/video.mp4, send ``sig`` after 3 committed chunks, resume, compare with a clean run."""

    def driver(d: Path) -> Result:
        import pandas as pd

        from facebehavior.io.writers import read_results

        args = [str(VIDEO), "--every", "2", "--batch-size", "6", *QUIET]
        ref = run_cli(["analyze", *args, "-o", str(d / f"ref.{ext}")], d, 300)
        if ref.rc != 0:
            return Result(ref.rc, ref.stderr, note="reference run failed")
        cmd = [sys.executable, "-m", "facebehavior.cli", "analyze", *args, "-o", str(d / f"o.{ext}")]
        e = {**os.environ, "PYTHONUNBUFFERED": "1"}
        p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
        if not _wait_for_commits(d, f"o.{ext}", 3, p):
            p.kill()
            return Result(p.wait(), p.stderr.read(), note="run ended before 3 chunks")
        p.send_signal(sig)
        try:
            _, err1 = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            return Result(None, p.communicate()[1], hang=True)
        want = {signal.SIGKILL: -9, signal.SIGINT: 130, signal.SIGTERM: 143}[sig]
        partial = rows(d / f"o.{ext}")
        res = run_cli(["analyze", *args, "-o", str(d / f"o.{ext}"), "--resume"], d, 300)
        out = Result(p.returncode, err1 + res.stderr, rows=rows(d / f"o.{ext}"))
        out.note = f"killed rc {p.returncode} (want {want}), partial {partial} rows; resume rc {res.rc}"
        if p.returncode != want or res.rc != 0:
            out.lost = "" if res.rc == 0 else "resume failed"
            out.rc = p.returncode if p.returncode != want else res.rc
            return out
        try:
            pd.testing.assert_frame_equal(read_results(d / f"o.{ext}"), read_results(d / f"ref.{ext}"))
        except AssertionError as e:
            out.lost = f"resumed output differs: {str(e).splitlines()[0]}"
        out.rc = 0
        return out

    return driver


KILL_IN_REBUILD = """
import os, signal
import pyarrow as pa
_new_stream, _n = pa.ipc.new_stream, [0]
class Killer:
    def __init__(self, w): self.w = w
    def write_table(self, t):
        _n[0] += 1
        if _n[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.w.write_table(t)
    def __getattr__(self, k): return getattr(self.w, k)
pa.ipc.new_stream = lambda *a, **k: Killer(_new_stream(*a, **k))
"""


def kill_during_rebuild(d: Path) -> Result:
    """kill -9 mid-run, then kill -9 while ``--resume`` copies the Arrow journal, then resume."""
    import pandas as pd

    from facebehavior.io.writers import read_results

    args = [str(VIDEO), "--every", "2", "--batch-size", "6", *QUIET]
    ref = run_cli(["analyze", *args, "-o", "ref.parquet"], d, 300)
    cmd = [sys.executable, "-m", "facebehavior.cli", "analyze", *args, "-o", "o.parquet"]
    p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if ref.rc != 0 or not _wait_for_commits(d, "o.parquet", 4, p):
        p.kill()
        return Result(ref.rc, ref.stderr, note="setup failed")
    p.kill()
    p.wait()
    mid = run_cli(["analyze", *args, "-o", "o.parquet", "--resume"], d, 300, patch=KILL_IN_REBUILD)
    res = run_cli(["analyze", *args, "-o", "o.parquet", "--resume"], d, 300)
    out = Result(res.rc, mid.stderr + res.stderr, rows=rows(d / "o.parquet"))
    out.note = f"rebuild killed rc {mid.rc}; resume rc {res.rc}"
    try:
        pd.testing.assert_frame_equal(read_results(d / "o.parquet"), read_results(d / "ref.parquet"))
    except (AssertionError, OSError, ValueError) as e:
        out.lost = f"resumed output differs: {str(e).splitlines()[0]}"
    return out


def ctrl_c_at_start(d: Path) -> Result:
    cmd = [sys.executable, "-m", "facebehavior.cli", "analyze", str(FACE), "-o", "o.csv", *QUIET]
    p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # inside the imports / model loading
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    return Result(p.returncode, err, rows=rows(d / "o.csv"))


def disk_full(ext: str) -> Callable[[Path], Result]:
    """Write to a 96 KiB tmpfs until it is full, then resume on a roomy disk."""

    def driver(d: Path) -> Result:
        import pandas as pd

        from facebehavior.io.writers import read_results

        mnt = d / "small"
        mnt.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mnt)],
                          capture_output=True).returncode:  # fmt: skip
            return Result(0, "", note="skipped: cannot mount a tmpfs (needs root)")
        try:
            args = [str(VIDEO), "--batch-size", "5", *QUIET]
            r = run_cli(["analyze", *args, "-o", str(mnt / f"o.{ext}")], d, 300)
            counted = (
                r.stderr.split(" face rows written")[0].split()[-1]
                if " face rows written" in r.stderr
                else "?"
            )
            kept = rows(mnt / f"o.{ext}")
            for p in mnt.iterdir():
                shutil.copy(p, d / p.name)
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
        out = Result(r.rc, r.stderr, rows=kept)
        if ext != "parquet" and kept is not None and str(kept) != counted:
            out.lost = f"file holds {kept} rows, the summary says {counted}"
        res = run_cli(["analyze", *args, "-o", f"o.{ext}", "--resume"], d, 300)
        run_cli(["analyze", *args, "-o", f"ref.{ext}"], d, 300)
        out.note = f"full-disk rc {r.rc}, {counted} rows counted; resume rc {res.rc}"
        try:
            pd.testing.assert_frame_equal(read_results(d / f"o.{ext}"), read_results(d / f"ref.{ext}"))
        except (AssertionError, OSError, ValueError) as e:
            out.lost = out.lost or f"resumed output differs: {str(e).splitlines()[0]}"
        return out

    return driver


# ------------------------------------------------------------------------------------- the cases
def api(code: str) -> str:
    return (
        "import numpy as np, sys\nfrom PIL import Image\nfrom facebehavior import analyze, Analyzer\n" + code
    )


def cases() -> list[Case]:
    d = "{d}"
    o = "{d}/o.csv"
    loops = both(
        face, lambda p: (p / "loop").symlink_to("."), lambda p: (p / "up").symlink_to(f"../{p.name}")
    )
    out: list[Case] = [
        # --- files
        Case("missing file", ["analyze", f"{d}/nope.jpg", "-o", o, *FAST], rc=(1,)),
        Case(
            "typo next to a good file",
            ["analyze", f"{d}/face.jpg", f"{d}/fcae.jpg", "-o", o, *FAST],
            rc=(1,),
            setup=face,
            output="o.csv",
            keep=4,
        ),  # fmt: skip
        Case(
            "empty jpg",
            ["analyze", f"{d}/e.jpg", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: (p / "e.jpg").write_bytes(b""),
        ),
        Case(
            "empty mp4",
            ["analyze", f"{d}/e.mp4", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: (p / "e.mp4").write_bytes(b""),
        ),
        Case(
            "random bytes .jpg",
            ["analyze", f"{d}/r.jpg", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: (p / "r.jpg").write_bytes(os.urandom(5000)),
        ),  # fmt: skip
        Case(
            "truncated jpg",
            ["analyze", f"{d}/t.jpg", "-o", o, *FAST],
            rc=(0, 1),
            setup=lambda p: (p / "t.jpg").write_bytes(FACE.read_bytes()[:20000]),
        ),  # fmt: skip
        Case(
            "truncated mp4",
            ["analyze", f"{d}/t.mp4", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: (p / "t.mp4").write_bytes(VIDEO.read_bytes()[:100000]),
        ),  # fmt: skip
        Case(
            "random bytes .mp4",
            ["analyze", f"{d}/r.mp4", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: (p / "r.mp4").write_bytes(os.urandom(5000)),
        ),  # fmt: skip
        Case(
            "unsupported .txt",
            ["analyze", f"{d}/n.txt", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: (p / "n.txt").write_text("x"),
        ),
        Case(
            "broken symlink",
            ["analyze", f"{d}/b.jpg", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: (p / "b.jpg").symlink_to("none.jpg"),
        ),
        Case(
            "folder without media",
            ["analyze", f"{d}/f", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: ((p / "f").mkdir(), (p / "f" / "n.txt").write_text("x")),
        ),  # fmt: skip
        Case(
            "empty folder", ["analyze", f"{d}/f", "-o", o, *FAST], rc=(1,), setup=lambda p: (p / "f").mkdir()
        ),
        Case(
            "sub-folders only, no --recursive",
            ["analyze", f"{d}/f", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: ((p / "f" / "g").mkdir(parents=True), shutil.copy(FACE, p / "f" / "g")),
        ),  # fmt: skip
        Case(
            "symlink loops --recursive",
            ["analyze", d, "--recursive", "-o", f"{d}/../o_loop.csv", *FAST],
            setup=loops,
            check=lambda p: (
                "" if rows(p.parent / "o_loop.csv") == 4 else f"rows {rows(p.parent / 'o_loop.csv')}"
            ),
        ),  # fmt: skip
        Case(
            "** glob over symlink loops",
            ["analyze", f"{d}/**/*.jpg", "--recursive", "-o", f"{d}/../o_glob.csv", *FAST],
            setup=loops,
            check=lambda p: "" if rows(p.parent / "o_glob.csv") == 4 else "duplicates",
        ),  # fmt: skip
        Case("glob matching nothing", ["analyze", f"{d}/*.mp4", "-o", o, *FAST], rc=(1,)),
        Case(
            "FIFO",
            ["analyze", f"{d}/p.mp4", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: os.mkfifo(p / "p.mp4"),
            timeout=60,
        ),
        Case("empty argument", ["analyze", "", "-o", o, *FAST], rc=(1,)),
        Case(
            "folder named x.mp4",
            ["analyze", f"{d}/x.mp4", "-o", o, *FAST],
            rc=(1,),
            setup=lambda p: (p / "x.mp4").mkdir(),
        ),
        Case(
            "image above --max-pixels",
            ["analyze", f"{d}/face.jpg", "--max-pixels", "1000", "-o", o, *FAST],
            rc=(1,),
            setup=face,
        ),
        Case(
            "--downscale-huge",
            ["analyze", f"{d}/face.jpg", "--max-pixels", "200000", "--downscale-huge", "-o", o, *FAST],
            setup=face,
        ),  # fmt: skip
        Case(
            "16-bit PNG",
            ["analyze", f"{d}/g16.png", "-o", o, *FAST],
            setup=lambda p: (
                image(p / "g16.png", None)
                and __import__("PIL.Image")
                .Image.fromarray(np.full((40, 40), 30000, np.uint16))
                .save(p / "g16.png")
            ),
        ),  # fmt: skip
        Case(
            "RGBA PNG",
            ["analyze", f"{d}/a.png", "-o", o, *FAST],
            setup=lambda p: image(p / "a.png", np.zeros((40, 40, 4), np.uint8)),
        ),
        Case(
            "multi-page TIFF",
            ["analyze", f"{d}/s.tif", "-o", o, *FAST],
            setup=lambda p: image(
                p / "s.tif", save_all=True, append_images=[__import__("PIL.Image").Image.new("RGB", (40, 40))]
            ),
        ),  # fmt: skip
        Case(
            "video with discarded packets",
            ["analyze", f"{d}/e.mp4", "-o", o, *FAST],
            setup=lambda p: video(p / "e.mp4", 40, lead=3),
        ),
        Case(
            "video rotate=180",
            ["analyze", f"{d}/r.mp4", "-o", o, *FAST],
            setup=lambda p: video(p / "r.mp4", 4, rotation=180),
        ),
        Case(
            "video rotate=90",
            ["analyze", f"{d}/r.mp4", "-o", o, *FAST],
            setup=lambda p: video(p / "r.mp4", 4, rotation=-90),
        ),
        Case(
            "one-frame video",
            ["analyze", f"{d}/one.mp4", "-o", o, *FAST],
            setup=lambda p: video(p / "one.mp4", 1),
        ),
        Case(
            "1x1 image",
            ["analyze", f"{d}/px.png", "-o", o, *FAST],
            setup=lambda p: image(p / "px.png", np.zeros((1, 1, 3), np.uint8)),
        ),
        Case(
            "image without faces",
            ["analyze", f"{d}/dark.png", "-o", o, *FAST],
            setup=lambda p: image(p / "dark.png"),
            check=lambda p: "" if rows(p / "o.csv") == 0 else "no header-only file",
        ),  # fmt: skip
        Case(
            "output given as input",
            ["analyze", f"{d}/r.csv", f"{d}/face.jpg", "-o", f"{d}/r.csv", *FAST],
            rc=(1,),
            setup=prior("csv"),
            output="r.csv",
            keep=4,
        ),  # fmt: skip
        Case(
            "same file twice",
            ["analyze", f"{d}/face.jpg", f"{d}/./face.jpg", "-o", o, *FAST],
            setup=face,
            check=lambda p: "" if rows(p / "o.csv") == 4 else "duplicates",
        ),  # fmt: skip
        Case("webcam:9 (none)", ["analyze", "webcam:9", "-o", o, *FAST], rc=(1,), timeout=60),
        # --- outputs
        Case("-o .txt", ["analyze", f"{d}/face.jpg", "-o", f"{d}/o.txt", *FAST], rc=(2,), setup=face),
        Case("-o .json", ["analyze", f"{d}/face.jpg", "-o", f"{d}/o.json", *FAST], rc=(2,), setup=face),
        Case(
            "-o existing folder",
            ["analyze", f"{d}/face.jpg", "-o", f"{d}/f.csv", *FAST],
            rc=(2,),
            setup=both(face, lambda p: (p / "f.csv").mkdir()),
        ),  # fmt: skip
        Case(
            "-o file/out.csv",
            ["analyze", f"{d}/face.jpg", "-o", f"{d}/face.jpg/o.csv", *FAST],
            rc=(2,),
            setup=face,
        ),
        Case(
            "all inputs bad keeps old csv",
            ["analyze", f"{d}/fcae.jpg", "-o", f"{d}/r.csv", *FAST],
            rc=(1,),
            setup=prior("csv"),
            output="r.csv",
            keep=4,
        ),  # fmt: skip
        Case(
            "all inputs bad keeps old parquet",
            ["analyze", f"{d}/fcae.jpg", "-o", f"{d}/r.parquet", *FAST],
            rc=(1,),
            setup=prior("parquet"),
            output="r.parquet",
            keep=4,
        ),  # fmt: skip
        Case(
            "all inputs bad keeps old jsonl",
            ["analyze", f"{d}/fcae.jpg", "-o", f"{d}/r.jsonl", *FAST],
            rc=(1,),
            setup=prior("jsonl"),
            output="r.jsonl",
            keep=4,
        ),  # fmt: skip
        Case(
            "bad option keeps old csv",
            ["analyze", f"{d}/face.jpg", "-o", f"{d}/r.csv", *FAST, "--device", "banana"],
            rc=(2,),
            setup=prior("csv"),
            output="r.csv",
            keep=4,
        ),  # fmt: skip
        Case(
            "--resume foreign csv",
            ["analyze", f"{d}/face.jpg", "-o", f"{d}/x.csv", "--resume", *FAST],
            rc=(2,),
            setup=both(face, lambda p: (p / "x.csv").write_text("a,b\n1,2\n")),
        ),  # fmt: skip
        Case(
            "--resume foreign jsonl",
            ["analyze", f"{d}/face.jpg", "-o", f"{d}/x.jsonl", "--resume", *FAST],
            rc=(2,),
            setup=both(face, lambda p: (p / "x.jsonl").write_text('{"a": 1}\n')),
        ),  # fmt: skip
        Case(
            "--resume foreign parquet",
            ["analyze", f"{d}/face.jpg", "-o", f"{d}/x.parquet", "--resume", *FAST],
            rc=(2,),
            setup=both(
                face, lambda p: __import__("pandas").DataFrame({"a": [1]}).to_parquet(p / "x.parquet")
            ),
        ),  # fmt: skip
        Case(
            "--resume onto random bytes .parquet",
            ["analyze", f"{d}/face.jpg", "-o", f"{d}/x.parquet", "--resume", *FAST],
            rc=(2,),
            setup=both(face, lambda p: (p / "x.parquet").write_bytes(os.urandom(300))),
        ),  # fmt: skip
        Case(
            "--resume with other --every",
            ["analyze", str(VIDEO), "-o", f"{d}/v.csv", "--resume", "--every", "3", *FAST],
            rc=(2,),
            setup=lambda p: run_cli(
                ["analyze", str(VIDEO), "-o", str(p / "v.csv"), "--every", "25", *FAST], p, 180
            ),
            output="v.csv",
            keep=10,
        ),  # fmt: skip
        Case(
            "--resume without journal",
            ["analyze", f"{d}/face.jpg", "-o", f"{d}/r.csv", "--resume", *FAST],
            setup=both(prior("csv"), lambda p: [q.unlink() for q in p.glob("r.csv.*")]),
            output="r.csv",
            keep=4,
            check=lambda p: "" if rows(p / "r.csv") == 4 else "duplicated rows",
        ),  # fmt: skip
        Case(
            "--resume with other columns",
            ["analyze", f"{d}/face.jpg", "-o", f"{d}/r.csv", "--resume", "--no-progress"],
            rc=(2,),
            setup=prior("csv"),
            output="r.csv",
            keep=4,
        ),  # fmt: skip
        Case(
            "no faces -> jsonl",
            ["analyze", f"{d}/dark.png", "-o", f"{d}/o.jsonl", *FAST],
            setup=lambda p: image(p / "dark.png"),
            check=lambda p: "" if rows(p / "o.jsonl") == 0 else "no file",
        ),  # fmt: skip
        Case(
            "no faces -> parquet",
            ["analyze", f"{d}/dark.png", "-o", f"{d}/o.parquet", *FAST],
            setup=lambda p: image(p / "dark.png"),
            check=lambda p: "" if rows(p / "o.parquet") == 0 else "no file",
        ),  # fmt: skip
        # --- options
        Case(
            "--device cuda",
            ["analyze", f"{d}/face.jpg", "-o", o, *FAST, "--device", "cuda"],
            rc=(0, 2),
            setup=face,
        ),
        Case(
            "--device banana",
            ["analyze", f"{d}/face.jpg", "-o", o, *FAST, "--device", "banana"],
            rc=(2,),
            setup=face,
        ),
        Case(
            "--threads -1",
            ["analyze", f"{d}/face.jpg", "-o", o, *FAST, "--threads", "-1"],
            rc=(2,),
            setup=face,
        ),
        Case(
            "FACEBEHAVIOR_THREADS=abc",
            ["analyze", f"{d}/face.jpg", "-o", o, *FAST],
            rc=(2,),
            setup=face,
            env={"FACEBEHAVIOR_THREADS": "abc"},
        ),  # fmt: skip
        Case(
            "--model <folder>",
            ["analyze", f"{d}/face.jpg", "-o", o, "--model", d, "--no-progress"],
            rc=(2,),
            setup=face,
        ),
        Case(
            "--model missing",
            ["analyze", f"{d}/face.jpg", "-o", o, "--model", f"{d}/m.safetensors", "--no-progress"],
            rc=(2,),
            setup=face,
        ),  # fmt: skip
        Case(
            "--model text file",
            ["analyze", f"{d}/face.jpg", "-o", o, "--model", f"{d}/m.safetensors", "--no-progress"],
            rc=(2,),
            setup=both(face, lambda p: (p / "m.safetensors").write_text("hello")),
        ),  # fmt: skip
        Case(
            "--detector retina",
            ["analyze", f"{d}/face.jpg", "-o", o, *FAST, "--detector", "retina"],
            rc=(2,),
            setup=face,
        ),
        Case(
            "--plot under a file",
            ["analyze", f"{d}/face.jpg", "-o", o, *FAST, "--plot", f"{d}/face.jpg/plots"],
            rc=(2,),
            setup=face,
            check=lambda p: "" if not (p / "o.csv").exists() else "rows written before the error",
        ),  # fmt: skip
        Case("--every 0", ["analyze", f"{d}/face.jpg", "-o", o, *FAST, "--every", "0"], rc=(2,), setup=face),
        Case(
            "--batch-size 0",
            ["analyze", f"{d}/face.jpg", "-o", o, *FAST, "--batch-size", "0"],
            rc=(2,),
            setup=face,
        ),
        Case(
            "--smooth 4", ["analyze", f"{d}/face.jpg", "-o", o, *FAST, "--smooth", "4"], rc=(2,), setup=face
        ),
        Case(
            "--geometry --no-landmarks",
            ["analyze", f"{d}/face.jpg", "-o", o, *FAST, "--geometry", "--no-landmarks"],
            rc=(2,),
            setup=face,
        ),  # fmt: skip
        Case(
            "--max-faces -3",
            ["analyze", f"{d}/face.jpg", "-o", o, *FAST, "--max-faces", "-3"],
            rc=(2,),
            setup=face,
        ),
        Case(
            "--smooth and --plot on no faces",
            ["analyze", f"{d}/dark.png", "-o", o, *FAST, "--smooth", "3", "--plot", f"{d}/pl"],
            setup=lambda p: image(p / "dark.png"),
        ),  # fmt: skip
        # --- API
        Case(
            "API analyze(None)",
            code=api("try:\n    analyze(None)\nexcept TypeError as e:\n    sys.exit(f'error: {e}')"),
            rc=(1,),
        ),
        Case(
            "API analyze(PIL.Image)",
            code=api(f"assert len(analyze(Image.open({str(FACE)!r}), model=None)) == 4"),
        ),
        Case(
            "API analyze(bytes path)",
            code=api(f"assert len(analyze({str(FACE).encode()!r}, model=None)) == 4"),
        ),
        Case(
            "API list of arrays",
            code=api(
                f"a = np.asarray(Image.open({str(FACE)!r}).convert('RGB'))\n"
                "df = analyze([a, a], model=None)\n"
                "assert sorted(set(df.source)) == ['array[0]', 'array[1]'], df.source"
            ),
        ),  # fmt: skip
        Case(
            "API (N,H,W,3) stack is a video",
            code=api(
                f"a = np.asarray(Image.open({str(FACE)!r}).convert('RGB'))\n"
                "df = analyze(np.stack([a, a]), model=None)\n"
                "assert set(df.source) == {'array'} and set(df.frame) == {0, 1}"
            ),
        ),  # fmt: skip
        Case(
            "API errors='ignore'",
            code=api(
                "try:\n    analyze('x.jpg', errors='ignore')\n"
                "except ValueError as e:\n    sys.exit(f'error: {e}')"
            ),
            rc=(1,),
        ),  # fmt: skip
        Case(
            "API analyze('')",
            code=api(
                "from facebehavior.io import InputError\ntry:\n    analyze('', model=None)\n"
                "except InputError as e:\n    sys.exit(f'error: {e}')"
            ),
            rc=(1,),
        ),  # fmt: skip
        Case(
            "API float array",
            code=api(
                "try:\n    analyze(np.zeros((8, 8, 3)), model=None)\n"
                "except ValueError as e:\n    sys.exit(f'error: {e}')"
            ),
            rc=(1,),
        ),  # fmt: skip
        Case(
            "API missing file, errors='skip'",
            code=api(
                "an = Analyzer(model=None)\nassert len(an.analyze('nope.jpg', errors='skip')) == 0\n"
                "assert len(an.failures) == 1"
            ),
        ),  # fmt: skip
        # --- interruptions and resume
        Case("Ctrl-C during start-up", driver=ctrl_c_at_start, rc=(130, 0)),
        Case("parquet: kill -9 during the resume's rebuild", driver=kill_during_rebuild),
    ]
    for ext in ("csv", "parquet", "jsonl"):
        for sig in (signal.SIGKILL, signal.SIGINT, signal.SIGTERM):
            out.append(
                Case(
                    f"{ext}: {sig.name} mid-run, then --resume",
                    driver=interrupt_then_resume(ext, sig),
                    timeout=900,
                )
            )
    for ext in ("csv", "parquet", "jsonl"):
        skip = "" if os.geteuid() == 0 else "needs root to mount a tmpfs"
        name = f"{ext}: disk full (96 KiB tmpfs), then --resume"
        out.append(Case(name, driver=disk_full(ext), rc=(2,), timeout=900, skip=skip))
    return out


# ------------------------------------------------------------------------------------------- run
def run_case(case: Case, root: Path) -> Result:
    d = root / "".join(c if c.isalnum() else "_" for c in case.name)[:60]
    d.mkdir(parents=True)
    if case.setup:
        case.setup(d)
    if case.driver:
        r = case.driver(d)
    elif case.code is not None:
        r = _run([sys.executable, "-c", case.code.replace("{d}", str(d))], d, case.timeout, case.env)
    else:
        r = run_cli(case.argv or [], d, case.timeout, case.env)
    if case.output and r.rows is None:
        r.rows = rows(d / case.output)
        if case.keep is not None and (r.rows is None or r.rows < case.keep):
            r.lost = f"{case.output} holds {r.rows} rows, had {case.keep}"
    elif r.rows is None:
        for name in ("o.csv", "o.jsonl", "o.parquet"):
            if (d / name).exists():
                r.rows = rows(d / name)
    if case.check and not r.hang:
        problem = case.check(d)
        if problem:
            r.lost = r.lost or problem
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default="", help="only cases whose name contains this text")
    ap.add_argument("--jobs", type=int, default=1, help="cases run at a time")
    ap.add_argument("--keep", action="store_true", help="keep the cases' folders (printed)")
    args = ap.parse_args(argv)
    todo = [c for c in cases() if args.k.lower() in c.name.lower()]
    root = Path(tempfile.mkdtemp(prefix="fb_matrix_"))
    t0 = time.time()
    serial = [c for c in todo if "disk full" in c.name]  # mounts: one at a time
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {c.name: pool.submit(_guarded, c, root) for c in todo if c not in serial and not c.skip}
        results = {name: f.result() for name, f in futures.items()}
    for c in serial:
        if not c.skip:
            results[c.name] = _guarded(c, root)
    print(f"{'case':46} {'rc':>4}  {'rows':>5}  tb  first line of stderr")
    tracebacks = hangs = lost = unexpected = skipped = 0
    for c in todo:
        if c.skip:
            skipped += 1
            print(f"{c.name[:46]:46} {'-':>4}  {'-':>5}  --  skipped: {c.skip}")
            continue
        r = results[c.name]
        tb = "Traceback" in r.stderr
        tracebacks += tb
        if tb:  # the exception itself is the traceback's last line
            r.note = (r.note + "; " if r.note else "") + r.stderr.strip().splitlines()[-1][:150]
        hangs += r.hang
        lost += bool(r.lost)
        bad_rc = not r.hang and r.rc not in c.rc
        unexpected += bad_rc
        skipped += r.note.startswith("skipped")
        rc = "HANG" if r.hang else str(r.rc)
        flag = ("!" if bad_rc else "") + (" LOST: " + r.lost if r.lost else "")
        rows_txt = "-" if r.rows is None else str(r.rows)
        print(
            f"{c.name[:46]:46} {rc:>4}  {rows_txt:>5}  {'YES' if tb else 'no':3} {first_line(r.stderr)}{flag}"
        )
        if r.note:
            print(f"{'':46}             {r.note}")
    print(
        f"\n{len(todo)} cases in {time.time() - t0:.0f} s: {tracebacks} tracebacks, {hangs} hangs, "
        f"{lost} with lost rows, {unexpected} unexpected exit codes, {skipped} skipped"
    )
    if args.keep:
        print(f"case folders: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return int(bool(tracebacks or hangs or lost or unexpected))


def _guarded(case: Case, root: Path) -> Result:
    try:
        return run_case(case, root)
    except Exception as e:  # noqa: BLE001 (a broken case is reported, the matrix goes on)
        return Result(None, f"matrix error: {type(e).__name__}: {e}", lost="case could not run")


if __name__ == "__main__":
    raise SystemExit(main())
