"""Convert facenet-pytorch 2.6.0's MTCNN state dicts to ``weights/mtcnn.safetensors`` + model card.

Usage::

    pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fnp
    python tools/convert_mtcnn.py /tmp/fnp/facenet_pytorch-2.6.0-py3-none-any.whl

The wheel is read as a zip archive (facenet-pytorch is never imported or installed); its
``facenet_pytorch/data/{pnet,rnet,onet}.pt`` are plain state dicts loaded with
``torch.load(weights_only=True)`` and stored unchanged (float32) under ``pnet.*``, ``rnet.*``,
``onet.*``, with a ``WeightSpec`` in the safetensors metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from pathlib import Path

import torch

from facebehavior.face.detect.mtcnn import WEIGHTS_FILE, MTCNNNets
from facebehavior.models.weights import InputSpec, WeightSpec, packaged_weights_dir, save_checkpoint

WHEEL_SHA256 = "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca"
SOURCE = "PyPI facenet-pytorch 2.6.0 (facenet_pytorch/data/{pnet,rnet,onet}.pt)"

CARD = """# MTCNN (P-Net, R-Net, O-Net) — `mtcnn.safetensors`

Face detector with 5 keypoints, used by `facebehavior.face.detect.mtcnn` (registered as `"mtcnn"`).

| | |
|---|---|
| paper | Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded CNNs", IEEE SPL 2016 |
| source | {source}; wheel sha256 `{wheel_sha}` |
| licence | MIT (facenet-pytorch `LICENSE.md`, Copyright (c) 2019 Timothy Esler) |
| converted by | `tools/convert_mtcnn.py` (tensors copied unchanged, float32) |
| file sha256 | `{file_sha}` |
| size | {size} bytes, {params} parameters |

Source files inside the wheel:

| file | sha256 |
|---|---|
{pt_rows}

## Input spec

- P-Net: any H×W ≥ 12 (fully convolutional); R-Net 24×24; O-Net 48×48 crops.
- RGB, float, normalised as `(x − 127.5) / 128` (x in [0, 255]).
- Resampling: area averaging (`F.interpolate(mode="area")`) for the pyramid and the crops.
- Pyramid: first scale 12 / min_face_size, step 0.709; thresholds (0.6, 0.7, 0.7);
  NMS 0.5 (per scale) and 0.7 (P-Net, R-Net, IoU) and 0.7 intersection-over-minimum (O-Net).
- Outputs: box offsets, face probability (softmax over background/face) and, from O-Net,
  5 landmarks (x1..x5, y1..y5 as fractions of the crop), image-left point of each pair first —
  identical to `schema.KEYPOINTS_5` order (subject's right eye first).
- R-Net/O-Net flatten their feature maps in (W, H, C) order (permute (0, 3, 2, 1)).

## Verification (measured)

`tests/test_mtcnn.py` compares the port with facenet-pytorch 2.6.0 run once by
`tools/golden_mtcnn.py` on real photos (fixture `tests/fixtures/mtcnn/golden.npz`; the test
bounds are 1e-4 on network outputs and 1e-3 px on boxes/landmarks). Measured:

| check | max abs difference |
|---|---|
| P-Net, R-Net, O-Net outputs on real face/background patches | 0.0 (bit-identical) |
| full cascade, `group6.jpg` + its mirror batched (4 + 4 faces): boxes, landmarks, scores | 0.0 |
| full cascade, `group5.jpg` (5 faces): boxes, landmarks, scores | 0.0 |

Same faces, scores and order as the reference (on this torch 2.13 CPU build; other builds may
differ by float32 summation order, which the test's tolerances allow).

Speed (1 thread, shared 2-core VM under heavy load, so upper bounds): 960×768 photo 0.66 s
(min face 40) / 0.94 s (min face 20); 640×480 video frames batched by 32: 0.27 s/frame (min
face 40) / 0.48 s/frame (min face 20).
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path, help="facenet_pytorch-2.6.0-py3-none-any.whl")
    ap.add_argument("--out", type=Path, default=packaged_weights_dir())
    args = ap.parse_args()
    data = args.wheel.read_bytes()
    wheel_sha = hashlib.sha256(data).hexdigest()
    if wheel_sha != WHEEL_SHA256:
        raise SystemExit(f"{args.wheel}: sha256 {wheel_sha} is not facenet-pytorch 2.6.0's {WHEEL_SHA256}")
    state, rows = {}, []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for net in ("pnet", "rnet", "onet"):
            raw = zf.read(f"facenet_pytorch/data/{net}.pt")
            rows.append(f"| `facenet_pytorch/data/{net}.pt` | `{hashlib.sha256(raw).hexdigest()}` |")
            sd = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
            state.update({f"{net}.{k}": v.float() for k, v in sd.items()})
    nets = MTCNNNets()
    nets.load_state_dict(state, strict=True)  # raises on any missing/unexpected/misshaped tensor
    spec = WeightSpec(
        name="mtcnn_facenet_pytorch",
        architecture="mtcnn",
        input=InputSpec(size=48, channels=3, mean=(127.5 / 255,) * 3, std=(128 / 255,) * 3, template="none"),
        tasks={"keypoints": ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")},
        licence="MIT",
        source=SOURCE,
        extra={"registry": "DETECTORS", "wheel_sha256": wheel_sha, "thresholds": [0.6, 0.7, 0.7]},
    )
    out = args.out / WEIGHTS_FILE
    file_sha = save_checkpoint(nets.state_dict(), spec, out)
    card = CARD.format(
        source=SOURCE,
        wheel_sha=wheel_sha,
        file_sha=file_sha,
        size=out.stat().st_size,
        params=sum(p.numel() for p in nets.parameters()),
        pt_rows="\n".join(rows),
    )
    (args.out / "mtcnn.md").write_text(card)
    print(f"wrote {out} ({out.stat().st_size} bytes, sha256 {file_sha}) and mtcnn.md")


if __name__ == "__main__":
    main()
