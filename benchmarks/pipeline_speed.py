"""Frames per second of the face stages (detection + FaceMesh landmarks + alignment) on 640x480 video.

The clip is synthesised from ``samples/face.jpg``: a 640x480 window around one face, drifting and
rotating slightly frame to frame like a hand-held camera, so FaceMesh's frame-to-frame tracking
works as it does on real video. Frames are decoded beforehand: the figure is the face stages only
(the affect model and decoding are excluded; decoding is measured separately on samples/video.mp4,
640x480 H.264, and printed first).

Each thread setting runs in its own process (torch's thread pool is process-wide):

    python benchmarks/pipeline_speed.py                 # 1 thread vs torch's default, both modes
    python benchmarks/pipeline_speed.py --frames 300
    python benchmarks/pipeline_speed.py --backends      # also FaceMesh/BlazeFace: torch vs onnxruntime
    python benchmarks/pipeline_speed.py --end-to-end    # also the whole analysis of samples/video.mp4

Figures are printed both as wall-clock fps and as frames per CPU-second of the process
(``time.process_time``: all its threads), which is what matters on a shared machine.

Modes: ``tracked`` is the library's default (detector on key frames, FaceMesh follows the face);
``detect-every-frame`` runs the detector on every frame (``landmarks=False``, no FaceMesh).
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def make_clip(n: int, seed: int = 0) -> np.ndarray:
    """(n, 480, 640, 3) uint8 frames: one face on a plain background, drifting, turning, zooming."""
    from PIL import Image

    from facebehavior.face.detect import create_detector
    from facebehavior.io.images import read_image

    photo = read_image(REPO / "samples" / "face.jpg")
    det = create_detector("blazeface_short")(photo[None])
    k = int(np.argmax(det.scores))
    cx, cy = (det.boxes[k, :2] + det.boxes[k, 2:]) / 2
    side = float(max(det.boxes[k, 2] - det.boxes[k, 0], det.boxes[k, 3] - det.boxes[k, 1]))
    # Cut the head (1.6 box sides) out of the group photo and place it, ~170 px tall (a webcam at
    # arm's length), on a grey backdrop so that the clip holds exactly one face.
    r = 0.8 * side
    head = Image.fromarray(photo).crop((int(cx - r), int(cy - r), int(cx + r), int(cy + r)))
    head = head.resize((int(head.width * 170 / side),) * 2, Image.BILINEAR)
    scene = Image.new("RGB", (1280, 960), (118, 112, 104))
    scene.paste(head, (640 - head.width // 2, 480 - head.height // 2))
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 1, (n, 4)) * [1.5, 1.5, 0.3, 0.003], axis=0)
    walk[:, :2] = np.clip(walk[:, :2], -150, 150)
    frames = np.empty((n, 480, 640, 3), np.uint8)
    for i, (dx, dy, rot, dz) in enumerate(walk):
        s = 1 + dz
        a, b = np.cos(np.deg2rad(rot)) / s, np.sin(np.deg2rad(rot)) / s
        # Output pixel (u, v) samples the scene at centre + R(rot)/s · (u − 320, v − 240) + drift.
        ox = 640 + dx - a * 320 - b * 240
        oy = 480 + dy + b * 320 - a * 240
        frames[i] = np.asarray(
            scene.transform((640, 480), Image.AFFINE, (a, b, ox, -b, a, oy), Image.BILINEAR)
        )
    return frames


def measure(threads: int, n: int, mode: str) -> dict:
    import torch

    from facebehavior.face.align import align_faces
    from facebehavior.pipeline import Analyzer, Timed
    from facebehavior.types import Detections, Frames

    frames = make_clip(n)
    an = Analyzer(model=None, landmarks=mode == "tracked", threads=threads, batch_size=32)
    batches = [
        Frames(frames[s : s + 32], np.arange(s, min(n, s + 32)), np.arange(s, min(n, s + 32)) / 30.0, "bench")
        for s in range(0, n, 32)
    ]
    an.process(batches[0])  # warm-up: weights loaded, kernels chosen
    # Per-stage CPU seconds (process time: on a shared machine, wall time also counts waiting).
    # Stages are timed by wrapping them (pipeline.Timed); with landmarks, detection runs inside the
    # landmark stage on key frames, so its share is timed separately and subtracted.
    an.stages = [Timed(s) for s in an.stages]
    detect = None
    if mode == "tracked":
        lm = an.stages[0].stage
        lm.detect = detect = Timed(lm.detect)
    faces = 0
    align_cpu = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    for b in batches:
        rows, _ = an.process(b)
        kp = rows[
            [f"{p}_{c}" for p in ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left") for c in "xy"]
        ]
        dets = Detections(
            frame_index=(rows["frame"].to_numpy() - b.index[0]).astype(np.int64),
            boxes=rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float32),
            scores=rows["confidence"].to_numpy(np.float32),
            keypoints=kp.to_numpy(np.float32).reshape(-1, 5, 2),
        )
        c = time.process_time()
        align_faces(b.images, dets, size=112, template="arcface")
        align_cpu += time.process_time() - c
        faces += len(rows)
    stages = {s.name: s.cpu_seconds for s in an.stages}
    if detect is not None:
        stages["landmarks"] -= detect.cpu_seconds
        stages["detect (key frames, lost faces)"] = detect.cpu_seconds
    stages["alignment (112 px)"] = align_cpu
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ms = {k: 1000 * v / n for k, v in stages.items()}
    return {"threads": torch.get_num_threads(), "mode": mode, "frames": n, "faces": faces,
            "fps": n / wall, "cpu_fps": n / cpu, "ms_per_frame": ms}  # fmt: skip


def measure_backends(threads: int, repeats: int = 30) -> dict:
    """CPU and wall ms per face of the two face networks, PyTorch vs onnxruntime, in this process."""
    import torch

    from facebehavior._runtime import configure_allocator, configure_threads
    from facebehavior.face.detect import create_detector
    from facebehavior.face.landmarks.facemesh import FaceMeshLandmarker

    configure_threads(threads)
    configure_allocator()  # as the CLI does
    crops = torch.rand(4, 3, 192, 192) * 255  # one FaceMesh wave of a 32-frame batch
    frames = make_clip(4)
    out: dict[str, list[float]] = {}
    for backend in ("torch", "onnx"):
        lm = FaceMeshLandmarker(backend=backend)
        det = create_detector("blazeface_short", backend=backend)
        for name, fn in (
            (f"FaceMesh {backend}", functools.partial(lm.raw, crops)),
            (f"BlazeFace {backend}", functools.partial(det, frames)),
        ):
            fn()
            t, c = time.perf_counter(), time.process_time()
            for _ in range(repeats):
                fn()
            out[name] = [
                1000 * (time.process_time() - c) / repeats / 4,
                1000 * (time.perf_counter() - t) / repeats / 4,
            ]
    return {"threads": torch.get_num_threads(), "ms": out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=160)
    p.add_argument("--threads", type=int, default=None, help="(internal) run one setting and print JSON")
    p.add_argument("--mode", default=None, choices=("tracked", "detect-every-frame", "backends"))
    p.add_argument("--backends", action="store_true", help="also time the face networks: torch vs onnx")
    p.add_argument(
        "--end-to-end", action="store_true", help="also time Analyzer() (default model) on samples/video.mp4"
    )
    p.add_argument("--rounds", type=int, default=2, help="end-to-end repetitions of each landmark model")
    a = p.parse_args()
    if a.threads is not None:
        r = measure_backends(a.threads) if a.mode == "backends" else measure(a.threads, a.frames, a.mode)
        print(json.dumps(r))
        return
    import os

    import torch

    from facebehavior._runtime import DEFAULT_THREADS

    default = torch.get_num_threads()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    from facebehavior.io.video import VideoReader

    t, c, n = time.perf_counter(), time.process_time(), 0
    for b in VideoReader(REPO / "samples" / "video.mp4", batch_size=32):
        n += len(b)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    rate = f"{n / wall:.0f} fps wall, {n / cpu:.0f} per CPU-second"
    print(f"decoding samples/video.mp4 (640x480 H.264) to RGB: {rate}")
    print(f"640x480, one face, {a.frames} frames; torch default threads here = {default}; "
          f"library DEFAULT_THREADS = {DEFAULT_THREADS}")  # fmt: skip
    for mode in ("tracked", "detect-every-frame"):
        for threads in (1, default):
            cmd = [sys.executable, __file__, "--threads", str(threads), "--frames", str(a.frames)]
            out = subprocess.run([*cmd, "--mode", mode], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            faces = f"({r['faces']} faces in {r['frames']} frames)"
            speed = f"{r['fps']:6.1f} fps wall  {r['cpu_fps']:6.1f} fps per CPU-second"
            print(f"{mode:>20}  threads={r['threads']}  {speed}  {faces}")
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r["ms_per_frame"].items())
            print(f"{'':>22}CPU ms/frame: {stages}")
    if a.backends:
        print("face networks alone, batch 4 (FaceMesh: per 192 px crop; BlazeFace short: per 640x480 frame)")
        for threads in (1, default):
            cmd = [sys.executable, __file__, "--threads", str(threads), "--mode", "backends"]
            r = json.loads(
                subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
            )
            for name, (cpu, wall) in r["ms"].items():
                print(f"{name:>20}  threads={r['threads']}  {cpu:6.2f} CPU ms  {wall:6.2f} wall ms")
    if a.end_to_end:
        from facebehavior import Analyzer

        # Face Mesh V2 + blendshapes (the default) and FaceMesh-468 (--landmarks v1), alternating so
        # that both see the same machine load.
        for version in ("v2", "v1"):
            Analyzer(landmarks=version).analyze(REPO / "samples" / "video.mp4")  # warm-up: models loaded
        for _ in range(a.rounds):
            for version in ("v2", "v1"):
                an = Analyzer(landmarks=version)
                t, c = time.perf_counter(), time.process_time()
                df = an.analyze(REPO / "samples" / "video.mp4")
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                n = df["frame"].nunique()
                print(
                    f"end to end, landmarks={version}, samples/video.mp4 ({n} frames, {len(df)} faces; "
                    f"decoding, faces, default affect model, rows): {n / wall:.1f} fps wall, "
                    f"{n / cpu:.1f} per CPU-second (threads={an.threads})"
                )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
