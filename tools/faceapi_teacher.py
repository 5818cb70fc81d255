"""Soft expression labels from face-api.js's expression net (MIT) for a face-crop cache (a teacher).

face-api's expression model is very sensitive to its crop (``../shared/PORTING.md``, "Teacher
pitfalls"): its own pipeline crops the bounding box of its 68 landmarks padded by 10 % of the box
on each side (``FaceLandmarks.align`` → ``Box.pad``), clips it to the image and zero-pads it to a
square (``padToSquare``, centred) before resizing to 112 px. This tool rebuilds that crop from the
cache's FaceMesh points (the 68-point jaw line and eyebrows have FaceMesh counterparts, listed in
``JAW_BROWS``) on the original image, so the teacher sees the face as in its published behaviour.

Output: one ``.npz`` per cache folder with ``row`` (cache table rows with a found face) and
``probs`` (N, 8) face-api probabilities in ``schema.EXPRESSIONS_8`` order (contempt = 0).

    bash benchmarks/compare/fetch.sh compare_models
    python tools/faceapi_teacher.py CACHE_DIR --models-dir compare_models -o teacher.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from compare import faceapi_expression, to_expressions8  # noqa: E402

from facebehavior.data.cache import STATUS_OK, load_table  # noqa: E402
from facebehavior.face.align import invert_affine, transform_points  # noqa: E402
from facebehavior.io.images import read_image  # noqa: E402

# FaceMesh-468 points that trace the iBUG-68 jaw line (ear to ear over the chin) and the upper
# eyebrow contours: their bounding box stands in for face-api's 68-landmark box.
JAW_BROWS = (
    (127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361)
    + (323, 454, 356)
    + (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
)


def faceapi_crop(image: np.ndarray, points: np.ndarray, size: int = 112) -> np.ndarray:
    """face-api's expression crop: 68-landmark box + 10 % per side, clipped, centred zero-pad, resize.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        points: ``(P, 2)`` frame pixels of the ``JAW_BROWS`` points.

    Returns:
        ``(size, size, 3)`` uint8.
    """
    x1, y1 = points.min(0)
    x2, y2 = points.max(0)
    w, h = x2 - x1, y2 - y1
    x1, x2 = x1 - 0.1 * w, x2 + 0.1 * w
    y1, y2 = y1 - 0.1 * h, y2 + 0.1 * h
    H, W = image.shape[:2]
    x1, y1 = int(max(0, round(x1))), int(max(0, round(y1)))
    x2, y2 = int(min(W, round(x2))), int(min(H, round(y2)))
    crop = image[y1:y2, x1:x2]
    ch, cw = crop.shape[:2]
    s = max(ch, cw, 1)
    sq = np.zeros((s, s, 3), np.uint8)
    oy, ox = (s - ch) // 2, (s - cw) // 2
    sq[oy : oy + ch, ox : ox + cw] = crop
    return np.asarray(Image.fromarray(sq).resize((size, size), Image.BILINEAR))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache", type=Path)
    ap.add_argument("--models-dir", type=Path, required=True)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(1)

    table = load_table(a.cache / "labels.npz")
    root = Path(table.root)
    net = faceapi_expression.load(a.models_dir)
    rows_out, probs_out = [], []
    for idx in sorted(a.cache.glob("shard_*.index.npz")):
        d = np.load(idx)
        mesh = np.load(str(idx).replace(".index.npz", ".mesh.npy")).astype(np.float32)
        ok = np.flatnonzero(d["status"] == STATUS_OK)
        inv = invert_affine(d["matrix"][ok])
        pts = transform_points(mesh[ok][:, JAW_BROWS], inv)
        crops = []
        for k, i in enumerate(ok):
            img = read_image(root / table.image[d["row"][i]])
            crops.append(faceapi_crop(img, pts[k]))
        x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
        with torch.no_grad():
            chunks = [x[j : j + a.batch] for j in range(0, len(x), a.batch)]
            p = torch.cat([net(faceapi_expression.prepare(c)) for c in chunks])
        rows_out.append(d["row"][ok])
        probs_out.append(to_expressions8(p.softmax(-1).numpy(), faceapi_expression.CLASSES))
        print(f"{idx.name}: {len(ok)} faces", flush=True)
    np.savez_compressed(a.out, row=np.concatenate(rows_out), probs=np.concatenate(probs_out))


if __name__ == "__main__":
    main()
