"""Transfer check on real photos outside FER2013: predicted expression per face, ours vs the ports.

Faces are found with this package's MTCNN (``facebehavior.face.detect``). The default model gets
crops aligned to its own template at its own size (``WeightSpec.input``) — exactly what the
Analyzer feeds it; each comparison model gets the square detector-box crop its original pipeline
would cut (box side × 1.2, grey or RGB as it expects). Prints, per face, every model's top
expression and probability, and ours' valence/arousal and its three most probable AUs.

Photos: ``samples/face.jpg`` and the six demo photos of npm ``@vladmandic/face-api`` 1.7.15 (MIT;
``fetch.sh`` puts them in ``DIR/face-api/demo/``).

    python benchmarks/compare/transfer_photos.py --models-dir DIR [--weights other.safetensors]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compare import MODELS, RGB_INPUT, to_expressions8  # noqa: E402
from facebehavior.face.align import align_faces  # noqa: E402
from facebehavior.face.detect import create_detector  # noqa: E402
from facebehavior.io.images import read_image  # noqa: E402
from facebehavior.models.default import default_model_path, load_default_model, predict  # noqa: E402
from facebehavior.schema import EXPRESSIONS_8  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def box_crops(img: np.ndarray, boxes: np.ndarray, size: int = 96) -> np.ndarray:
    """Square crops (side = 1.2 × the longer box side, centred on the box) resized to ``size``."""
    from PIL import Image

    pil = Image.fromarray(img)
    out = []
    for x1, y1, x2, y2 in boxes:
        cx, cy, s = (x1 + x2) / 2, (y1 + y2) / 2, 1.2 * max(x2 - x1, y2 - y1)
        crop = pil.crop((int(cx - s / 2), int(cy - s / 2), int(cx + s / 2), int(cy + s / 2)))
        out.append(np.asarray(crop.resize((size, size), Image.BILINEAR)))
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--weights")
    a = ap.parse_args()
    torch.set_num_threads(1)

    photos = [ROOT / "samples" / "face.jpg"] + sorted(
        (Path(a.models_dir) / "face-api" / "demo").glob("sample*.jpg")
    )
    det = create_detector("mtcnn", min_face_size=40)
    model, spec = load_default_model(a.weights or default_model_path())
    nets = {name: mod.load(a.models_dir) for name, mod in MODELS.items()}
    short = {"faceapi_expression": "face-api", "human_emotion": "human", "fer_minixception": "fer",
             "facex_mobilenetv2": "facex"}  # fmt: skip
    for photo in photos:
        img = read_image(photo)
        d = det(img[None])
        if len(d.frame_index) == 0:
            print(f"{photo.name}: no face found")
            continue
        order = np.argsort(d.boxes[:, 0])  # left to right
        aligned = align_faces(img[None], d, size=spec.input.size, template=spec.input.template)
        ours = predict(model, spec, aligned.crops[order])
        crops = box_crops(img, d.boxes[order])
        grey = np.rint(crops.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(
            np.uint8
        )
        theirs = {}
        with torch.no_grad():
            for name, net in nets.items():
                mod = MODELS[name]
                x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() if name in RGB_INPUT else (
                    torch.from_numpy(grey).float().unsqueeze(1))  # fmt: skip
                theirs[name] = to_expressions8(net(mod.prepare(x)).softmax(-1).numpy(), mod.CLASSES)
        for i in range(len(order)):
            pe = ours["expression"][i]
            top_au = np.argsort(-ours["au"][i])[:3]
            au_txt = ", ".join(f"{spec.tasks['au'][j]} {ours['au'][i, j]:.2f}" for j in top_au)
            others = "  ".join(
                f"{short[n]}: {EXPRESSIONS_8[int(p[i].argmax())]} {p[i].max():.2f}" for n, p in theirs.items()
            )
            label = EXPRESSIONS_8[int(pe.argmax())]
            va = ours["va"][i]
            print(
                f"{photo.name} face {i + 1} (x={d.boxes[order[i], 0]:.0f}): ours {label} {pe.max():.2f}, "
                f"V {va[0]:+.2f} A {va[1]:+.2f}, AUs {au_txt} | {others}"
            )


if __name__ == "__main__":
    main()
