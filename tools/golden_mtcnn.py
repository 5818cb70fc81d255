"""Produce ``tests/fixtures/mtcnn/golden.npz`` by running facenet-pytorch 2.6.0's own MTCNN once.

Dev-only: facenet-pytorch is never a dependency of facebehavior. Run with any Python that has
torch, numpy and Pillow (e.g. a throwaway venv under /tmp), pointing at the *unpacked* wheel::

    pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fnp
    unzip -q /tmp/fnp/facenet_pytorch-2.6.0-py3-none-any.whl -d /tmp/fnp/wheel
    python tools/golden_mtcnn.py /tmp/fnp/wheel

facenet-pytorch imports torchvision only for ``batched_nms`` (and ``to_tensor``, unused here);
torchvision is not installable next to this torch build, so a stand-in module provides
``batched_nms`` with torchvision's documented semantics (greedy, IoU without the +1 pixel
convention, scores sorted descending with ties in input order, per-group independent), written
here as a plain per-group loop, separately from facebehavior's vectorised NMS.

Stored (all small):
- ``pnet_in`` (H, W, 3) uint8 photo thumbnail, ``pnet_reg``/``pnet_prob``: P-Net outputs on it.
- ``rnet_in`` (K, 24, 24, 3) / ``onet_in`` (K, 48, 48, 3) uint8 face and non-face patches, and the
  R-/O-Net outputs on them. Inputs are uint8 so that (x − 127.5) / 128 is exact in the test.
- For each detection case: the photo name, whether it was mirrored, the batch layout and
  ``detect_face``'s boxes (x1, y1, x2, y2, prob) and 5 landmarks per image.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO / "tests" / "fixtures" / "photos"
OUT = REPO / "tests" / "fixtures" / "mtcnn" / "golden.npz"


def _nms_reference(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))  # Python sort is stable
    suppressed = np.zeros(len(scores), bool)
    keep = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        later = np.array(order[pos + 1 :], dtype=np.int64)
        if later.size == 0:
            continue
        w = np.clip(
            np.minimum(boxes[i, 2], boxes[later, 2]) - np.maximum(boxes[i, 0], boxes[later, 0]), 0, None
        )
        h = np.clip(
            np.minimum(boxes[i, 3], boxes[later, 3]) - np.maximum(boxes[i, 1], boxes[later, 1]), 0, None
        )
        inter = w * h
        iou = inter / (area[i] + area[later] - inter)
        suppressed[later[iou > thr]] = True
    return keep


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, thr: float) -> torch.Tensor:
    b = boxes.double().numpy()
    s = scores.double().numpy()
    g = idxs.numpy()
    keep = []
    for c in np.unique(g):
        members = np.nonzero(g == c)[0]
        keep += [int(members[k]) for k in _nms_reference(b[members], s[members], thr)]
    keep_t = torch.tensor(keep, dtype=torch.long)
    return keep_t[torch.sort(scores[keep_t], descending=True, stable=True)[1]]


def import_facenet(wheel_dir: Path):
    """Import facenet_pytorch.models.mtcnn from an unpacked wheel with the torchvision stand-in."""
    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops_boxes = types.ModuleType("torchvision.ops.boxes")
    tr = types.ModuleType("torchvision.transforms")
    fn = types.ModuleType("torchvision.transforms.functional")
    ops_boxes.batched_nms = batched_nms
    tv.ops, ops.boxes, tv.transforms, tr.functional = ops, ops_boxes, tr, fn
    # Skip the package __init__ (it imports InceptionResnetV1 and `requests`).
    pkg = types.ModuleType("facenet_pytorch")
    pkg.__path__ = [str(wheel_dir / "facenet_pytorch")]
    sys.modules.update(
        {
            "torchvision": tv,
            "torchvision.ops": ops,
            "torchvision.ops.boxes": ops_boxes,
            "torchvision.transforms": tr,
            "torchvision.transforms.functional": fn,
            "facenet_pytorch": pkg,
        }
    )
    from facenet_pytorch.models import mtcnn as ref  # noqa: PLC0415

    return ref


def load(name: str, mirror: bool = False) -> np.ndarray:
    im = np.asarray(Image.open(PHOTOS / name).convert("RGB"))
    return np.ascontiguousarray(im[:, ::-1]) if mirror else im


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel_dir", type=Path, help="unpacked facenet-pytorch 2.6.0 wheel")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ref = import_facenet(args.wheel_dir)
    from facenet_pytorch.models.utils.detect_face import detect_face  # noqa: PLC0415

    pnet, rnet, onet = ref.PNet().eval(), ref.RNet().eval(), ref.ONet().eval()
    out: dict[str, np.ndarray] = {}

    def norm(u8: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(u8.copy()).permute(0, 3, 1, 2).float() - 127.5) * 0.0078125

    # Network-level cases on uint8 inputs.
    g6 = Image.open(PHOTOS / "group6.jpg").convert("RGB")
    thumb = np.asarray(g6.resize((120, 96), Image.Resampling.BILINEAR))
    with torch.no_grad():
        reg, prob = pnet(norm(thumb[None]))
    out.update(pnet_in=thumb, pnet_reg=reg.numpy(), pnet_prob=prob.numpy())

    rng = np.random.default_rng(0)
    face_boxes = [(128, 246, 234, 384), (740, 128, 846, 280), (335, 167, 431, 316), (585, 153, 689, 292)]
    patches = list(face_boxes)
    for _ in range(4):  # background / partial-face patches
        x, y, s = int(rng.integers(0, 800)), int(rng.integers(0, 600)), int(rng.integers(40, 160))
        patches.append((x, y, x + s, y + s))
    r_in = np.stack([np.asarray(g6.crop(b).resize((24, 24), Image.Resampling.BILINEAR)) for b in patches])
    o_in = np.stack([np.asarray(g6.crop(b).resize((48, 48), Image.Resampling.BILINEAR)) for b in patches])
    with torch.no_grad():
        rr, rp = rnet(norm(r_in))
        orr, ol, op = onet(norm(o_in))
    out.update(rnet_in=r_in, rnet_reg=rr.numpy(), rnet_prob=rp.numpy())
    out.update(onet_in=o_in, onet_reg=orr.numpy(), onet_lmk=ol.numpy(), onet_prob=op.numpy())

    # Full cascade: a two-frame batch (photo + its mirror) and a single photo.
    cases = [("group6.jpg", (False, True), 20.0), ("group5.jpg", (False,), 20.0)]
    for ci, (name, mirrors, min_face) in enumerate(cases):
        batch = np.stack([load(name, m) for m in mirrors])
        with torch.no_grad():  # as facenet-pytorch's MTCNN.detect does
            boxes, points = detect_face(batch, min_face, pnet, rnet, onet, [0.6, 0.7, 0.7], 0.709, "cpu")
        for bi in range(len(mirrors)):
            b = np.asarray(boxes[bi], dtype=np.float32).reshape(-1, 5)
            p = np.asarray(points[bi], dtype=np.float32).reshape(-1, 5, 2)
            out[f"case{ci}_img{bi}_boxes"] = b
            out[f"case{ci}_img{bi}_points"] = p
            print(f"case {ci} {name} mirror={mirrors[bi]}: {len(b)} faces")
        out[f"case{ci}_name"] = np.array(name)
        out[f"case{ci}_mirror"] = np.array(mirrors)
        out[f"case{ci}_min_face"] = np.array(min_face)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
