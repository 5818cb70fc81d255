"""Optical-flow speed and accuracy on synthetic sequences with known motion.

For each flow method the installed OpenCV provides (DIS always; TV-L1 with the contrib modules),
prints the mean time per frame pair and the mean endpoint error (pixels, 8-pixel border excluded)
against the exact flow of a textured image that is translated, rotated, or both
(``facebehavior.temporal.flow.synthetic_motion``), at the crop sizes the recipes use.

    python benchmarks/flow_speed.py [--threads 1] [--frames 9]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from facebehavior.temporal.flow import available_methods, endpoint_error, estimate_flows, synthetic_motion

MOTIONS = {
    "translate (1.5, -0.75) px": {"shift": (1.5, -0.75), "rotate_deg": 0.0},
    "rotate 2 deg": {"shift": (0.0, 0.0), "rotate_deg": 2.0},
    "translate + rotate": {"shift": (1.0, 0.5), "rotate_deg": 1.0},
    "translate (4, 3) px": {"shift": (4.0, 3.0), "rotate_deg": 0.0},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1)")
    ap.add_argument("--frames", type=int, default=9, help="frames per sequence (pairs = frames - 1)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[96, 112, 224])
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(args.threads)
    methods = available_methods()
    print(f"OpenCV {cv2.__version__}, {args.threads} thread(s), methods: {', '.join(methods)}")
    print(f"{'size':>5} {'motion':<27} {'method':<6} {'ms/pair':>8} {'EPE px':>7}")
    for size in args.sizes:
        for name, motion in MOTIONS.items():
            frames, truth = synthetic_motion(size=size, frames=args.frames, seed=1, **motion)
            mask = np.zeros(truth.shape[:3], bool)
            mask[:, 8:-8, 8:-8] = True
            for method in methods:
                estimate_flows(frames[:2], method=method)  # warm-up (allocations)
                t0 = time.perf_counter()
                flow = estimate_flows(frames, method=method)
                ms = (time.perf_counter() - t0) * 1000 / len(flow)
                epe = endpoint_error(flow, truth, mask)
                print(f"{size:>5} {name:<27} {method:<6} {ms:>8.2f} {epe:>7.3f}")


if __name__ == "__main__":
    main()
