"""Whole-process time and memory of ``facebehavior analyze`` next to MediaPipe's FaceLandmarker.

Each side runs in a fresh process on the same video, alternating, ``--repeats`` times; the figures
are medians of wall time, CPU time (user + system) and peak resident memory (``wait4``'s
``ru_maxrss``) of the whole process, start-up and imports included — what a user waits for.

* ``facebehavior``: ``python -m facebehavior analyze VIDEO -o OUT.csv`` (the default pipeline:
  detection, tracked landmarks, face ids, the expression/AU/VA model, CSV).
* ``mediapipe``: the ``mediapipe`` package's FaceLandmarker task (C++/XNNPACK) in video mode with
  blendshapes on the same frames decoded by PyAV — detection + 478 landmarks + 52 blendshapes, no
  affect model, nothing written. It is an optional dependency: without it that side is skipped.

Usage: ``python benchmarks/vs_mediapipe.py [--video samples/video.mp4] [--loops 4] [--repeats 5]``.
``--loops N`` analyses a clip made of the video N times over (a longer run weighs start-up less).
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
        img = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(f.to_ndarray(format="rgb24")))
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


def looped(video: Path, loops: int, out: Path) -> Path:
    """The video ``loops`` times over, re-encoded once (H.264, same size and rate)."""
    if loops == 1:
        return video
    import av

    with av.open(str(video)) as src:
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
        rate = src.streams.video[0].average_rate
    with av.open(str(out), "w") as dst:
        s = dst.add_stream("libx264", rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        for _ in range(loops):
            for a in frames:
                dst.mux(s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")))
        dst.mux(s.encode())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=REPO / "samples" / "video.mp4")
    p.add_argument("--loops", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--task", type=Path, default=TASK, help="face_landmarker.task (MediaPipe's model bundle)")
    args = p.parse_args()
    try:
        import mediapipe  # noqa: F401

        have_mp = args.task.exists()
        why = "" if have_mp else f"no {args.task}"
    except ImportError:
        have_mp, why = False, "the mediapipe package is not installed (pip install mediapipe)"
    with tempfile.TemporaryDirectory() as tmp:
        video = looped(args.video, args.loops, Path(tmp) / "clip.mp4")
        import av

        with av.open(str(video)) as c:
            n = c.streams.video[0].frames or sum(1 for _ in c.decode(video=0))
        ours = [sys.executable, "-m", "facebehavior", "analyze", str(video), "-o", f"{tmp}/out.csv", "--no-progress"]
        theirs = [sys.executable, "-c", MEDIAPIPE_SCRIPT, str(video), str(args.task)]
        res: dict[str, list[tuple[float, float, float]]] = {"facebehavior": [], "mediapipe": []}
        run(ours)  # warm the file cache and Python's bytecode
        if have_mp:
            run(theirs)
        for _ in range(args.repeats):
            res["facebehavior"].append(run(ours))
            if have_mp:
                res["mediapipe"].append(run(theirs))
    print(f"{video.name if args.loops == 1 else f'{args.video.name} x{args.loops}'}: {n} frames; "
          f"medians of {args.repeats} whole-process runs")
    print(f"{'':<14}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}{'frames/s':>10}")
    med = {}
    for name, rows in res.items():
        if not rows:
            print(f"{name:<14} skipped: {why}")
            continue
        w, c, m = (statistics.median(r[i] for r in rows) for i in range(3))
        med[name] = (w, c, m)
        print(f"{name:<14}{w:>8.2f}{c:>8.2f}{m:>10.0f}{n / w:>10.1f}")
    if len(med) == 2:
        (w1, c1, m1), (w2, c2, m2) = med["facebehavior"], med["mediapipe"]
        print(f"ratio facebehavior / mediapipe: wall {w1 / w2:.2f}x, CPU {c1 / c2:.2f}x, memory {m1 / m2:.2f}x")


if __name__ == "__main__":
    main()
