"""Blendshapes of the default model v2's training faces with the MediaPipe reference (dev-only).

The training features of ``fbn_fusion`` were computed with the ``mediapipe`` Tasks API
(``FaceLandmarker``, image mode: its own detector, one face, detection confidence 0.2 for FER2013
and 0.3 for photos) on the Face Landmarker bundle, before the PyTorch port existed; this tool
recomputes them. ``tools/blendshape_features.py`` computes the same 52 scores as the Analyzer does
(the port on this package's detections), which the calibration stage and the benchmarks use.

* ``--fer``: every row of ``fer2013.npz``; a 48 px crop is edge-padded by 16 px and upscaled to 240
  px (bicubic), grey copied to RGB.
* ``--cache DIR``: the original photos of a face-crop cache's table (rows follow the table).

Rows without a detected face are NaN. Needs ``pip install mediapipe`` (not a package dependency).

    python tools/mediapipe_blendshapes.py --task face_landmarker.task --fer -o fer_bs.npz
    python tools/mediapipe_blendshapes.py --task face_landmarker.task --cache cache/mux_train -o bs.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from facebehavior.data.cache import load_table
from facebehavior.data.datasets.fer2013 import NPZ_NAME, default_root
from facebehavior.io.images import read_image


def landmarker(task: Path, confidence: float):
    import mediapipe as mp  # dev-only reference runtime
    from mediapipe.tasks.python import BaseOptions, vision

    opt = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(task)),
        output_face_blendshapes=True,
        num_faces=1,
        min_face_detection_confidence=confidence,
    )
    lm = vision.FaceLandmarker.create_from_options(opt)

    def scores(rgb: np.ndarray) -> np.ndarray:
        r = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        if not r.face_blendshapes:
            return np.full(52, np.nan, np.float32)
        return np.array([c.score for c in r.face_blendshapes[0]], np.float32)

    scores.close = lm.close  # type: ignore[attr-defined]  # close before interpreter shutdown
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--task", type=Path, required=True, help="face_landmarker.task (Face Landmarker v2 bundle)"
    )
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--fer", action="store_true")
    src.add_argument("--cache", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    a = ap.parse_args()
    if a.fer:
        images = np.load(default_root() / NPZ_NAME)["images"]
        score = landmarker(a.task, 0.2)

        def rgb(g: np.ndarray) -> np.ndarray:
            big = Image.fromarray(np.pad(g, 16, mode="edge")).resize((240, 240), Image.BICUBIC)
            return np.repeat(np.asarray(big)[..., None], 3, -1)

        bs = np.stack([score(rgb(g)) for g in images])
        score.close()
    else:
        table = load_table(a.cache / "labels.npz")
        score = landmarker(a.task, 0.3)
        bs = np.stack([score(read_image(Path(table.root) / p)) for p in table.image])
        score.close()
    np.savez_compressed(a.out, bs=bs)
    print(f"{int(np.isfinite(bs[:, 0]).sum())} of {len(bs)} faces with blendshapes → {a.out}")


if __name__ == "__main__":
    main()
