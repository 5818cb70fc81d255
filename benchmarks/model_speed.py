"""Forward-pass speed of zoo models on CPU: milliseconds per face at batch 1 and batch 64.

Usage: python benchmarks/model_speed.py [--threads 1] [--models facebehaviornet_mobile ...] [--sizes 48 112]
       python benchmarks/model_speed.py --models arl --sizes 176 --batches 1 --onnx
Prints one line per (model, input size, batch); with ``--onnx`` the model is also exported to ONNX
(dynamic batch) and timed in onnxruntime. Image models only (one (B, C, S, S) input).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

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
    ap.add_argument("--onnx", action="store_true", help="also export to ONNX and time onnxruntime")
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
                    f"{sec * 1e3 / batch:8.2f} ms/face  ({batch / sec:8.1f} faces/s)  torch"
                )
            if args.onnx:
                time_onnx(model, name, args, size)


def time_onnx(model: torch.nn.Module, name: str, args: argparse.Namespace, size: int) -> None:
    """Export ``model`` at ``size`` px with a dynamic batch axis and time it in onnxruntime."""
    import onnxruntime as ort

    x = torch.randn(1, args.in_channels, size, size)
    with torch.no_grad():
        names = list(model(x))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (x,),
                str(path),
                input_names=["input"],
                output_names=names,
                dynamo=False,
                opset_version=17,
                dynamic_axes={"input": {0: "batch"}, **{k: {0: "batch"} for k in names}},
            )
        export_s = time.perf_counter() - t
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        print(f"{name:32s} ONNX export {export_s:.1f} s, {path.stat().st_size / 1e6:.1f} MB")
        for batch in args.batches:
            feed = {"input": torch.randn(batch, args.in_channels, size, size).numpy()}
            sess.run(None, feed)
            times = []
            start = time.perf_counter()
            while time.perf_counter() - start < 1.0 or len(times) < 3:
                t = time.perf_counter()
                sess.run(None, feed)
                times.append(time.perf_counter() - t)
            sec = sorted(times)[len(times) // 2]
            print(
                f"{name:32s} {'':15s} {size:4d}px  batch {batch:3d}: "
                f"{sec * 1e3 / batch:8.2f} ms/face  ({batch / sec:8.1f} faces/s)  onnxruntime"
            )


if __name__ == "__main__":
    main()
