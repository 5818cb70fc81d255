"""Build the repository's sample media (``samples/face.jpg`` and ``samples/video.mp4``).

Source photos: the demo photos of the npm package ``@vladmandic/face-api`` 1.7.15 (MIT licence,
photos taken by the package author, see its README). Fetch and unpack them first::

    npm pack @vladmandic/face-api@1.7.15
    tar xzf vladmandic-face-api-1.7.15.tgz package/demo package/LICENSE
    python tools/make_samples.py --demo package/demo --out samples

``face.jpg`` is ``sample6.jpg`` (four people facing the camera) downscaled to 960 px wide.
``video.mp4`` is a synthetic camera move over the full-resolution ``sample6.jpg``: 5 s at 25 fps,
640x480, H.264. The virtual camera starts on the two right-hand faces, pans left so that the
right-most face leaves the frame for about 1.5 s while a third face enters from the left, then pans
back so the right-most face re-enters; a slow roll (±4°) and zoom (±5 %) run throughout. This
exercises multi-face detection, identity tracking through an exit/re-entry, and a new identity.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import av
import numpy as np
from PIL import Image

FPS = 25
SECONDS = 5.0
OUT_W, OUT_H = 640, 480

# Key frames of the camera centre's x (source pixels of sample6.jpg, 1920x1537): hold on faces
# C+D, pan left (D leaves, B enters), hold, pan back (D re-enters, B leaves), hold.
KEYS_T = (0.0, 0.9, 1.9, 2.7, 3.7, 5.0)
KEYS_X = (1400.0, 1400.0, 1000.0, 1000.0, 1400.0, 1400.0)
CENTRE_Y = 500.0
BASE_SCALE = 0.7  # output pixels per source pixel


def _smooth(t: float) -> float:
    """Piecewise-linear key-frame interpolation with smoothstep easing inside each segment."""
    for i in range(len(KEYS_T) - 1):
        t0, t1 = KEYS_T[i], KEYS_T[i + 1]
        if t0 <= t <= t1:
            u = (t - t0) / (t1 - t0)
            u = u * u * (3 - 2 * u)
            return KEYS_X[i] + u * (KEYS_X[i + 1] - KEYS_X[i])
    return KEYS_X[-1]


def camera(t: float) -> tuple[float, float, float, float]:
    """Camera centre (x, y) in source pixels, scale (out px / source px) and roll (radians) at time t."""
    scale = BASE_SCALE * (1.0 + 0.05 * math.sin(2 * math.pi * t / SECONDS))
    roll = math.radians(4.0) * math.sin(2 * math.pi * t / 2.5)
    return _smooth(t), CENTRE_Y, scale, roll


def render_frame(src: Image.Image, t: float) -> Image.Image:
    """Render one 640x480 frame of the camera move."""
    cx, cy, s, a = camera(t)
    # Output pixel (u, v) -> source pixel: rotate/scale about the output centre, then translate.
    c, sn = math.cos(a) / s, math.sin(a) / s
    du, dv = OUT_W / 2, OUT_H / 2
    coeffs = (c, -sn, cx - c * du + sn * dv, sn, c, cy - sn * du - c * dv)
    return src.transform((OUT_W, OUT_H), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BICUBIC)


def write_video(src: Image.Image, path: Path) -> None:
    """Encode the camera move as H.264 (yuv420p, CRF 26) with PyAV."""
    n = int(round(FPS * SECONDS))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = OUT_W, OUT_H, "yuv420p"
        stream.options = {"crf": "26", "preset": "slow"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.asarray(render_frame(src, i / FPS)), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", type=Path, required=True, help="unpacked package/demo folder of face-api")
    ap.add_argument("--out", type=Path, default=Path("samples"))
    args = ap.parse_args()
    src_path = args.demo / "sample6.jpg"
    if not src_path.is_file():
        raise SystemExit(f"{src_path} not found; unpack @vladmandic/face-api 1.7.15 first (see --help)")
    src = Image.open(src_path).convert("RGB")
    args.out.mkdir(parents=True, exist_ok=True)
    w = 960
    src.resize((w, round(src.height * w / src.width)), Image.Resampling.LANCZOS).save(
        args.out / "face.jpg", quality=90
    )
    write_video(src, args.out / "video.mp4")
    for name in ("face.jpg", "video.mp4"):
        print(name, (args.out / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
