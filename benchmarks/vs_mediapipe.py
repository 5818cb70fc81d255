"""Whole-process time and memory of ``facebehavior analyze`` next to MediaPipe's FaceLandmarker.

Each side runs in a fresh process on the same video, alternating, ``--repeats`` times; the figures
are medians of wall time, CPU time (user + system) and peak resident memory (``wait4``'s
``ru_maxrss``) of the whole process, start-up and imports included — what a user waits for.

* ``facebehavior``: ``python -m facebehavior analyze VIDEO -o OUT.csv`` (the default pipeline:
  detection, tracked landmarks, face ids, the expression/AU/VA model, CSV).
* ``mediapipe``: the ``mediapipe`` package's FaceLandmarker task (C++/XNNPACK) in video mode with
  blendshapes on the same frames decoded by PyAV — detection + 478 landmarks + 52 blendshapes, no
  affect model, nothing written. It is an optional dependency: without it that side is skipped.

Usage: ``python benchmarks/vs_mediapipe.py [--video samples/video.mp4] [--loops 4] [--repeats 5] [--serial]``
(``--serial`` adds ``analyze --no-overlap``, every stage in one thread).
``--loops N`` analyses a clip made of the video N times over (a longer run weighs start-up less).
This process imports nothing heavy: a child's peak memory as the kernel reports it includes its
parent's at fork time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASK = REPO.parent / "shared" / "models" / "face_landmarker" / "face_landmarker.task"

MEDIAPIPE_SCRIPT = r"""
import sys, av, numpy as np, mediapipe as mp
from mediapipe.tasks.python import vision, BaseOptions
opts = vision.FaceLandmarkerOptions(
    base_options=BaseOptions(model_asset_path=sys.argv[2]),
    running_mode=vision.RunningMode.VIDEO, num_faces=4, output_face_blendshapes=True)
n = faces = 0
with vision.FaceLandmarker.create_from_options(opts) as lm, av.open(sys.argv[1]) as c:
    for f in c.decode(video=0):
        rgb = np.ascontiguousarray(f.to_ndarray(format="rgb24"))
        img = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        r = lm.detect_for_video(img, int(round(f.time * 1000)) if f.time is not None else n * 40)
        faces += len(r.face_landmarks); n += 1
print(n, faces)
"""


def run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one child process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:4]} failed:\n{err[-2000:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


LOOP_SCRIPT = r"""
import sys, av
src_path, loops, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with av.open(src_path) as src:
    frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    rate = src.streams.video[0].average_rate
with av.open(out, "w") as dst:
    s = dst.add_stream("libx264", rate=rate)
    s.height, s.width = frames[0].shape[:2]
    s.pix_fmt = "yuv420p"
    for _ in range(loops):
        for a in frames:
            dst.mux(s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")))
    dst.mux(s.encode())
print(len(frames) * loops)
"""


def looped(video: Path, loops: int, out: Path) -> tuple[Path, int]:
    """The video ``loops`` times over, re-encoded once (H.264, same size and rate), and its frames.

    Done in a child process: this process must stay small. A child's peak RSS as ``wait4`` reports
    it starts from its parent's at ``fork`` (Linux keeps the high-water mark across ``exec``), so a
    parent holding decoded frames would make every child look as large as itself.
    """
    res = subprocess.run(
        [sys.executable, "-c", LOOP_SCRIPT, str(video), str(max(loops, 1)), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out, int(res.stdout.strip())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=REPO / "samples" / "video.mp4")
    p.add_argument("--loops", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--task", type=Path, default=TASK, help="face_landmarker.task (MediaPipe's model bundle)")
    p.add_argument(
        "--serial", action="store_true", help="also run `analyze --no-overlap` (every stage in one thread)"
    )
    args = p.parse_args()
    # Checked in a child too: importing mediapipe here would grow this process (see ``looped``).
    found = subprocess.run([sys.executable, "-c", "import mediapipe"], capture_output=True).returncode == 0
    have_mp = found and args.task.exists()
    why = "" if have_mp else (f"no {args.task}" if found else "the mediapipe package is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        video, n = looped(args.video, args.loops, Path(tmp) / "clip.mp4")
        ours = [
            sys.executable,
            "-m",
            "facebehavior",
            "analyze",
            str(video),
            "-o",
            f"{tmp}/out.csv",
            "--no-progress",
        ]
        theirs = [sys.executable, "-c", MEDIAPIPE_SCRIPT, str(video), str(args.task)]
        res: dict[str, list[tuple[float, float, float]]] = {"facebehavior": [], "mediapipe": []}
        if args.serial:
            res["fb --no-overlap"] = []
        run(ours)  # warm the file cache and Python's bytecode
        if have_mp:
            run(theirs)
        for _ in range(args.repeats):
            res["facebehavior"].append(run(ours))
            if have_mp:
                res["mediapipe"].append(run(theirs))
            if args.serial:
                res["fb --no-overlap"].append(run([*ours, "--no-overlap"]))
    print(
        f"{video.name if args.loops == 1 else f'{args.video.name} x{args.loops}'}: {n} frames; "
        f"medians of {args.repeats} whole-process runs"
    )
    print(f"{'':<16}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}{'frames/s':>10}")
    med = {}
    for name, rows in res.items():
        if not rows:
            print(f"{name:<16} skipped: {why}")
            continue
        w, c, m = (statistics.median(r[i] for r in rows) for i in range(3))
        med[name] = (w, c, m)
        print(f"{name:<16}{w:>8.2f}{c:>8.2f}{m:>10.0f}{n / w:>10.1f}")
    if "facebehavior" in med and "mediapipe" in med:
        (w1, c1, m1), (w2, c2, m2) = med["facebehavior"], med["mediapipe"]
        print(
            f"ratio facebehavior / mediapipe: wall {w1 / w2:.2f}x, CPU {c1 / c2:.2f}x, memory {m1 / m2:.2f}x"
        )


if __name__ == "__main__":
    main()
