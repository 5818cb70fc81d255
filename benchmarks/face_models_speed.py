"""Speed of the MediaPipe ports: PyTorch (1 thread / default threads) vs onnxruntime.

Prints milliseconds per image (network only, inputs already preprocessed) for BlazeFace short,
BlazeFace full and FaceMesh at batch 1 and 8, plus the whole detector call on a 960x640 photo.
The ONNX models are exported locally into a temporary folder (nothing is downloaded or shipped).

Run: ``python benchmarks/face_models_speed.py [--repeats 20]``. Timings are medians; on a shared
machine compare rows of one run, not runs with each other.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facebehavior.face.detect import create_detector
from facebehavior.face.landmarks.facemesh import FaceMeshLandmarker

PHOTO = Path(__file__).resolve().parent.parent / "tests/fixtures/photos/group1.jpg"


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def export(net: torch.nn.Module, size: int, path: Path) -> None:
    x = torch.zeros(2, 3, size, size)
    torch.onnx.export(
        net, (x,), str(path), input_names=["x"], dynamic_axes={"x": {0: "n"}}, dynamo=False, opset_version=17
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    import onnxruntime as ort

    default_threads = torch.get_num_threads()
    short, full, mesh = (
        create_detector("blazeface_short"),
        create_detector("blazeface_full"),
        FaceMeshLandmarker(),
    )
    # (PyTorch runner as the library calls it (channels-last), module to export, input side)
    nets = {
        "blazeface_short": (short.runner, short.net, 128),
        "blazeface_full": (full.runner, full.net, 192),
        "facemesh": (mesh.runner, mesh.net, 192),
    }
    print(
        f"torch {torch.__version__}, onnxruntime {ort.__version__}, torch default threads {default_threads}"
    )
    print(f"{'model':<16} {'batch':>5} {'torch 1 thr':>12} {f'torch {default_threads} thr':>12} "
          f"{'ort 1 thr':>10} {'ort default':>11}   (ms per image)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, (net, module, size) in nets.items():
            path = Path(tmp) / f"{name}.onnx"
            export(module, size, path)
            so1 = ort.SessionOptions()
            so1.intra_op_num_threads = 1
            sess1 = ort.InferenceSession(str(path), so1, providers=["CPUExecutionProvider"])
            sessd = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            for batch in (1, 8):
                x = torch.rand(batch, 3, size, size)
                xn = x.numpy()
                row = []
                for threads in (1, default_threads):
                    torch.set_num_threads(threads)
                    with torch.inference_mode():
                        row.append(median_ms(lambda x=x, net=net: net(x), args.repeats) / batch)
                torch.set_num_threads(1)
                for sess in (sess1, sessd):
                    row.append(median_ms(lambda s=sess, xn=xn: s.run(None, {"x": xn}), args.repeats) / batch)
                with torch.inference_mode():
                    ref = net(x)
                ref = ref[0] if isinstance(ref, tuple) else ref
                got = sess1.run(None, {"x": xn})[0]
                err = float(np.abs(got - ref.numpy()).max())
                print(f"{name:<16} {batch:>5} {row[0]:>12.2f} {row[1]:>12.2f} {row[2]:>10.2f} {row[3]:>11.2f}"
                      f"   (ort vs torch max |diff| {err:.1e})")  # fmt: skip

    torch.set_num_threads(1)
    img = np.asarray(Image.open(PHOTO).convert("RGB"))
    faces = create_detector("blazeface_full")(img[None])
    print(f"\nwhole calls on one {img.shape[1]}x{img.shape[0]} photo, 1 thread (ms):")
    for backend in ("torch", "onnx"):
        for name in ("blazeface_short", "blazeface_full"):
            det = create_detector(name, backend=backend)
            ms = median_ms(lambda d=det: d(img[None]), args.repeats)
            print(f"  {backend:<5} {name} detector: {ms:.1f}")
        lm = FaceMeshLandmarker(backend=backend)
        ms = median_ms(lambda lm=lm: lm(img[None], faces), args.repeats)
        print(f"  {backend:<5} FaceMesh, {len(faces)} faces: {ms:.1f} ({ms / len(faces):.1f} per face)")


if __name__ == "__main__":
    main()
