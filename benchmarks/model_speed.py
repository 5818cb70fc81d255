"""Forward-pass speed of zoo models on CPU: milliseconds per face at batch 1 and batch 64.

Usage: python benchmarks/model_speed.py [--threads 1] [--models facebehaviornet_mobile ...] [--sizes 48 112]
Prints one line per (model, input size, batch).
"""

from __future__ import annotations

import argparse
import time

import torch

import facebehavior as fb


def time_forward(model: torch.nn.Module, x: torch.Tensor, min_seconds: float = 1.0) -> float:
    """Median seconds per forward call over repeated runs lasting at least ``min_seconds``."""
    with torch.inference_mode():
        model(x)
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < min_seconds or len(times) < 3:
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", nargs="+", default=["facebehaviornet_mobile", "facebehaviornet_mobile_tiny"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[48, 64, 96, 112])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--in-channels", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name in args.models:
        kwargs = {"in_channels": args.in_channels} if "facebehaviornet_mobile" in name else {}
        model = fb.create_model(name, **kwargs).eval()
        params = sum(p.numel() for p in model.parameters())
        for size in args.sizes:
            for batch in args.batches:
                x = torch.randn(batch, args.in_channels, size, size)
                sec = time_forward(model, x)
                print(
                    f"{name:32s} params {params / 1e6:6.2f}M  {size:4d}px  batch {batch:3d}: "
                    f"{sec * 1e3 / batch:8.2f} ms/face  ({batch / sec:8.1f} faces/s)"
                )


if __name__ == "__main__":
    main()
