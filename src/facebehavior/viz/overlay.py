"""Results drawn onto the pictures they came from: single frames, whole videos, still images.

``draw_overlay`` draws, per face row: the box and id in the face's colour, the 5 keypoints, the
landmarks when ``x_<i>``/``y_<i>`` columns exist, head-pose axes from ``pose_pitch/yaw/roll``, gaze
rays when ``gaze_angle_x/y`` (or per-eye ``gaze_0_*``/``gaze_1_*`` vectors) exist, and a panel
with the expression probabilities as bars, the top active AUs, a valence–arousal dot and the pose
angles. Sizes follow the image (``overlay_font_size``), so labels stay readable on 1920-px photos
and do not swamp 320-px clips.

``annotate_video`` re-decodes a video and writes it again with the overlay on every frame that has
rows; ``annotate_image`` does the same for a still; ``annotate_results`` does it for every source
of a results table (``facebehavior analyze --annotate``).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from facebehavior.viz._common import (
    AU_PROB,
    LANDMARK_X,
    au_columns,
    expression_colour,
    expression_columns,
    face_colour,
    face_rows,
    hex_rgb,
)
from facebehavior.viz._common import font as _load_font

__all__ = [
    "overlay_font_size",
    "draw_overlay",
    "read_frame",
    "annotate_image",
    "annotate_video",
    "annotate_source",
    "annotate_results",
    "VIDEO_OUT_EXTENSIONS",
    "IMAGE_OUT_EXTENSIONS",
]

logger = logging.getLogger(__name__)

VIDEO_OUT_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".m4v", ".mov", ".mkv"})
IMAGE_OUT_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})

# Head axes in the pose frame of face.pose (x image-right, y down, z away from the camera):
# x red, y green, the face's forward direction (-z, towards the camera when frontal) blue.
_AXIS_COLOURS = ((255, 64, 64), (64, 220, 64), (80, 150, 255))
_GAZE_COLOUR = (255, 220, 0)
_PANEL_BG = (0, 0, 0, 160)
# Column families a frame's overlay never reads; left out before the rows are iterated, since
# turning ~900 mixed columns into per-row Series cost more than the drawing (--show, --annotate).
_UNDRAWN_PREFIXES = ("x_", "y_", "X_", "Y_", "Z_", "mesh_", "eye_lmk_", "bs_", "geom_")


@functools.lru_cache(maxsize=32)
def font(size: int):
    """``viz._common.font``, loaded once per size rather than once per panel of every frame."""
    return _load_font(size)


def overlay_font_size(shape: tuple[int, ...]) -> int:
    """Label size in pixels for an image of ``shape`` (H, W, ...): 1/64 of its longer side, 10–64 px
    (30 px on a 1920-px photo, 10 px on a 640-px clip)."""
    return int(min(64, max(10, round(max(shape[:2]) / 64))))


def _finite(*values: Any) -> bool:
    try:
        return all(v is not None and math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _get(row: Any, col: str) -> Any:
    return row[col] if col in row.index else None


class _Panel:
    """The text block of one face: measured first (for placement), then drawn."""

    def __init__(
        self, row: Any, cols: dict, fs: int, label: str | None, top_aus: int, threshold: float
    ) -> None:
        self.fs = fs
        self.small = font(max(8, round(fs * 0.72)))
        self.big = font(fs)
        self.pad = max(2, round(fs * 0.35))
        fid = int(row["face_id"])
        head = f"id {fid}"
        if label and label in row.index and isinstance(row[label], str):
            head += f"  {row[label]}"
            p = _get(row, f"expr_{row[label]}")
            if _finite(p):
                head += f" {float(p):.0%}"
        self.head = head
        self.colour = hex_rgb(face_colour(fid))
        self.expr = [(lab, float(row[c])) for lab, c in cols["expr"] if _finite(row[c])]
        self.va = tuple(float(row[c]) for c in ("valence", "arousal")) if cols["va"] else None
        if self.va is not None and not _finite(*self.va):
            self.va = None
        aus = sorted(((float(row[c]), n) for n, c in cols["au"] if _finite(row[c])), reverse=True)
        active = [(p, n) for p, n in aus if p >= threshold][:top_aus]
        self.aus = (
            "  ".join(f"AU{n:02d} {p:.2f}".replace("0.", ".", 1) for p, n in active)
            if active
            else (f"no AU ≥ {threshold:g}" if aus else "")
        )
        pose = [_get(row, c) for c in ("pose_pitch", "pose_yaw", "pose_roll")]
        self.pose = "pitch {:+.0f}°  yaw {:+.0f}°  roll {:+.0f}°".format(*pose) if _finite(*pose) else ""
        self._layout()

    def _text_w(self, text: str, f: Any) -> float:
        return f.getlength(text) if text else 0.0

    def _layout(self) -> None:
        fs, pad = self.fs, self.pad
        self.row_h = round(fs * 0.85)
        self.label_w = max((self._text_w(lab, self.small) for lab, _ in self.expr), default=0) + pad
        self.bar_len = round(fs * 4.5)
        self.va_size = round(min(max(len(self.expr), 5) * self.row_h, fs * 4.2)) if self.va else 0
        bars_w = (self.label_w + self.bar_len) if self.expr else 0
        block_w = bars_w + (pad + self.va_size if self.va else 0)
        block_h = max(len(self.expr) * self.row_h, self.va_size + (round(fs * 1.6) if self.va else 0))
        lines = [t for t in (self.aus, self.pose) if t]
        widths = [self._text_w(self.head, self.big), block_w] + [self._text_w(t, self.small) for t in lines]
        self.w = round(max(widths) + 2 * pad)
        self.h = round(2 * pad + fs * 1.25 + block_h + len(lines) * fs * 0.95)

    def draw(self, draw: Any, x: float, y: float) -> None:
        fs, pad = self.fs, self.pad
        x0, y = x + pad, y + pad
        draw.text((x0, y), self.head, fill=self.colour, font=self.big)
        y += fs * 1.25
        top = y
        for k, (lab, p) in enumerate(self.expr):
            yy = top + k * self.row_h
            draw.text((x0, yy), lab, fill=(235, 235, 235), font=self.small)
            bx, bh = x0 + self.label_w, max(2, round(self.row_h * 0.7))
            draw.rectangle([bx, yy + 1, bx + self.bar_len, yy + bh], outline=(110, 110, 110))
            if p > 0:
                draw.rectangle(
                    [bx, yy + 1, bx + self.bar_len * min(p, 1.0), yy + bh],
                    fill=hex_rgb(expression_colour(lab)),
                )
        if self.va is not None:
            vx = x0 + ((self.label_w + self.bar_len + pad) if self.expr else 0)
            s = self.va_size
            draw.rectangle([vx, top, vx + s, top + s], outline=(160, 160, 160))
            draw.ellipse([vx, top, vx + s, top + s], outline=(90, 90, 90))
            draw.line([vx + s / 2, top, vx + s / 2, top + s], fill=(110, 110, 110))
            draw.line([vx, top + s / 2, vx + s, top + s / 2], fill=(110, 110, 110))
            v, a = (min(1.0, max(-1.0, z)) for z in self.va)
            cx, cy, r = vx + s / 2 * (1 + v), top + s / 2 * (1 - a), max(2, s / 14)
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=self.colour, outline=(255, 255, 255))
            draw.text((vx, top + s + 2), f"V {self.va[0]:+.2f}", fill=(235, 235, 235), font=self.small)
            draw.text(
                (vx, top + s + 2 + fs * 0.8), f"A {self.va[1]:+.2f}", fill=(235, 235, 235), font=self.small
            )
        block_h = max(len(self.expr) * self.row_h, self.va_size + (round(fs * 1.6) if self.va else 0))
        y = top + block_h
        for t in (self.aus, self.pose):
            if t:
                draw.text((x0, y), t, fill=(235, 235, 235), font=self.small)
                y += fs * 0.95


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def _place(
    box: tuple[float, float, float, float], w: int, h: int, size: tuple[int, int], taken: list
) -> tuple[float, float]:
    """Where a panel of w×h goes: right of, left of, below or above its box, moved inside the image,
    whichever covers the fewest pixels of boxes and panels already placed (first wins ties)."""
    W, H = size
    x1, y1, x2, y2 = box
    gap = 3
    best, best_cost = None, math.inf
    for cx, cy in ((x2 + gap, y1), (x1 - gap - w, y1), (x1, y2 + gap), (x1, y1 - gap - h)):
        cx = min(max(cx, 0), max(W - w, 0))
        cy = min(max(cy, 0), max(H - h, 0))
        rect = (cx, cy, cx + w, cy + h)
        cost = sum(_overlap(rect, t) for t in taken)
        if cost < best_cost:
            best, best_cost = (cx, cy), cost
    return best  # type: ignore[return-value]


def _line_width(shape: tuple[int, ...]) -> int:
    return max(1, round(max(shape[:2]) / 400))


def draw_overlay(
    image: np.ndarray,
    rows: Any,
    *,
    label: str | None = "expression",
    panel: bool = True,
    top_aus: int = 3,
    au_threshold: float = 0.5,
) -> np.ndarray:
    """Draw one frame's results onto a copy of the frame.

    Args:
        image: (H, W, 3) uint8 RGB frame.
        rows: that frame's result rows (columns x1..y2, face_id; optional: the 5 ``*_x``/``*_y``
            keypoints, ``x_<i>``/``y_<i>`` landmarks, ``pose_*`` (degrees), ``gaze_angle_x/y``
            (radians, OpenFace convention), ``iris_*``, ``expr_*``, ``AU*_prob``, valence, arousal).
            Rows without a face (``success = 0``, NaN box) are ignored.
        label: a column to print next to the id (e.g. the top expression), if present.
        panel: draw the per-face panel (expressions, AUs, VA, pose); ids are drawn either way.
        top_aus: at most this many AUs at or above ``au_threshold`` are listed, most probable first.
        au_threshold: AU probability that counts as active (the models' decision threshold).

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    rows = face_rows(rows)
    if len(rows) == 0:
        return np.asarray(img)
    shape = image.shape
    width = _line_width(shape)
    fs = overlay_font_size(shape)
    cols = {
        "expr": expression_columns(rows),
        "au": au_columns(rows, AU_PROB),
        "va": "valence" in rows.columns and "arousal" in rows.columns,
    }
    lm = sorted(
        (int(m.group(1)), c, f"y_{m.group(1)}")
        for c in rows.columns
        if (m := LANDMARK_X.match(str(c))) and f"y_{m.group(1)}" in rows.columns
    )
    # (faces, K, 2) landmark pixels, read once as arrays rather than 2·K lookups per face.
    points = np.stack(
        [rows[[c for _, c, _ in lm]].to_numpy(np.float64), rows[[c for _, _, c in lm]].to_numpy(np.float64)],
        axis=-1,
    )
    drawn = [c for c in rows.columns if not str(c).startswith(_UNDRAWN_PREFIXES)]
    records = [r for _, r in rows[drawn].iterrows()]
    panels = [
        _Panel(r, cols, fs, label, top_aus, au_threshold) if panel else _Panel(r, _NO_COLS, fs, label, 0, 1.0)
        for r in records
    ]
    taken = [(float(r["x1"]), float(r["y1"]), float(r["x2"]), float(r["y2"])) for r in records]
    spots = []
    for r, p in zip(records, panels, strict=True):
        box = (float(r["x1"]), float(r["y1"]), float(r["x2"]), float(r["y2"]))
        x, y = _place(box, p.w, p.h, img.size, taken)
        taken.append((x, y, x + p.w, y + p.h))
        spots.append((x, y))
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    bg = ImageDraw.Draw(layer)
    for p, (x, y) in zip(panels, spots, strict=True):
        bg.rectangle([x, y, x + p.w, y + p.h], fill=_PANEL_BG)
    # Order: translucent panel backgrounds, then boxes and points (never dimmed by a neighbour's
    # panel on crowded frames), then the panel text on top.
    img = Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")
    draw = ImageDraw.Draw(img)
    for r, pts in zip(records, points, strict=True):
        _draw_geometry(draw, r, pts, width)
    for p, (x, y) in zip(panels, spots, strict=True):
        p.draw(draw, x, y)
    return np.asarray(img)


_NO_COLS: dict = {"expr": [], "au": [], "va": False}


def _draw_geometry(draw: Any, r: Any, landmarks: np.ndarray, width: int) -> None:
    """Box, landmarks ((K, 2) pixels, NaN where absent), keypoints, pose axes and gaze rays of a face row."""
    from facebehavior.schema import KEYPOINTS_5

    colour = hex_rgb(face_colour(int(r["face_id"])))
    x1, y1, x2, y2 = (float(r[c]) for c in ("x1", "y1", "x2", "y2"))
    draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
    size = max(x2 - x1, y2 - y1)
    dot = max(1.0, width * 0.6)
    for x, y in landmarks[np.isfinite(landmarks).all(axis=1)].tolist():
        draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=(255, 255, 255))
    rad = 1 + width
    for name in KEYPOINTS_5:
        x, y = _get(r, f"{name}_x"), _get(r, f"{name}_y")
        if _finite(x, y):
            draw.ellipse([x - rad, y - rad, x + rad, y + rad], fill=colour)
    pose = [_get(r, c) for c in ("pose_pitch", "pose_yaw", "pose_roll")]
    if _finite(*pose):
        from facebehavior.face.pose import euler_to_rotation

        rot = euler_to_rotation(np.array([pose], np.float64))[0]
        ox, oy = (x1 + x2) / 2, (y1 + y2) / 2
        if _finite(_get(r, "nose_x"), _get(r, "nose_y")):
            ox, oy = float(r["nose_x"]), float(r["nose_y"])
        length = 0.45 * size
        for axis, c in enumerate(_AXIS_COLOURS):
            v = rot[:, axis] * (-1.0 if axis == 2 else 1.0)  # the face looks along -z
            draw.line([ox, oy, ox + length * v[0], oy + length * v[1]], fill=c, width=width + 1)
    for origin, vec in _gaze(r):
        ox, oy = origin
        draw.line([ox, oy, ox + size * vec[0], oy + size * vec[1]], fill=_GAZE_COLOUR, width=width + 1)


def _gaze(r: Any) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Gaze rays as (origin px, projected unit direction) per eye, OpenFace's convention: camera frame
    x right, y down, z away; ``gaze_angle_x = atan2(gx, -gz)``, ``gaze_angle_y = atan2(gy, -gz)``;
    eye 0 is the image's left-most eye (the subject's right)."""
    eyes = []
    for side, k in (("right", 0), ("left", 1)):
        for ox, oy in ((f"iris_{side}_x", f"iris_{side}_y"), (f"{side}_eye_x", f"{side}_eye_y")):
            if _finite(_get(r, ox), _get(r, oy)):
                eyes.append((k, (float(r[ox]), float(r[oy]))))
                break
    rays = []
    for k, origin in eyes:
        vec = [_get(r, f"gaze_{k}_{a}") for a in "xyz"]
        if _finite(*vec):
            g = np.asarray(vec, np.float64)
        else:
            ax, ay = _get(r, "gaze_angle_x"), _get(r, "gaze_angle_y")
            if not _finite(ax, ay):
                continue
            g = np.array([math.tan(float(ax)), math.tan(float(ay)), -1.0])
        n = np.linalg.norm(g)
        if n > 0:
            rays.append((origin, (float(g[0] / n), float(g[1] / n))))
    return rays


def read_frame(source: str, frame: int) -> np.ndarray | None:
    """Frame ``frame`` of a source as (H, W, 3) uint8 RGB, upright as analysed; ``None`` if the source
    cannot be read (moved, a webcam, an array)."""
    from facebehavior.io import InputError
    from facebehavior.io.sources import classify

    try:
        kind = classify(source)
        if kind == "image":
            from facebehavior.io.images import read_image

            return read_image(source, max_pixels=None)
        if kind == "video":
            from facebehavior.io.video import VideoReader

            for b in VideoReader(source, batch_size=1, start_frame=frame, max_frames=frame + 1):
                return b.images[0]
    except (InputError, OSError, ValueError):
        return None
    return None


def _rows_for(rows: Any, source: str | Path) -> Any:
    """The rows of ``source`` (by exact path, then resolved path, then file name); all rows if they
    hold one source only."""
    if "source" not in rows.columns or rows["source"].nunique() <= 1:
        return rows
    names = rows["source"].astype(str)
    for key in (str(source), os.path.realpath(source), Path(source).name):
        for conv in (lambda s: s, os.path.realpath, lambda s: Path(s).name):
            hit = names.map(conv) == key
            if hit.any():
                return rows[hit.to_numpy()]
    raise ValueError(f"{source}: not a source of these results; sources: {sorted(set(names))[:10]}")


def _check_out(out: Path, allowed: frozenset[str], what: str) -> None:
    if out.suffix.lower() not in allowed:
        kinds = ", ".join(sorted(allowed))
        raise ValueError(f"{out}: annotated {what} are written as {kinds}; change the extension")
    if out.is_dir():
        raise ValueError(f"{out}: is a folder; name a file")


def annotate_image(image_path: str | Path, rows: Any, out_path: str | Path, **overlay: Any) -> Path:
    """Write a still image with its results drawn on it.

    Args:
        image_path: the analysed image.
        rows: its result rows (other sources' rows are ignored).
        out_path: output image (.png, .jpg, .webp, .bmp, .tif).
        **overlay: options of :func:`draw_overlay`.

    Returns:
        The written path.

    Raises:
        InputError: the image cannot be read. ValueError: an unsupported output extension.
    """
    from PIL import Image

    from facebehavior.io.images import read_image

    out = Path(out_path)
    _check_out(out, IMAGE_OUT_EXTENSIONS, "images")
    img = read_image(image_path, max_pixels=None)
    rows = _rows_for(rows, image_path)
    if "frame" in rows.columns:
        rows = rows[rows["frame"] == 0]
    out.parent.mkdir(parents=True, exist_ok=True)
    pic = Image.fromarray(draw_overlay(img, rows, **overlay))
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    pic.save(tmp, quality=92) if out.suffix.lower() in (".jpg", ".jpeg", ".webp") else pic.save(tmp)
    os.replace(tmp, out)
    return out


def _encoder(container: Any, rate: Fraction, width: int, height: int) -> Any:
    import av

    for codec, opts in (("libx264", {"crf": "18", "preset": "veryfast"}), ("mpeg4", {"qscale": "3"})):
        try:
            av.codec.Codec(codec, "w")
        except Exception:  # noqa: BLE001 (PyAV raises several types for a missing encoder)
            continue
        s = container.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = opts
        return s
    raise RuntimeError("no H.264 or MPEG-4 encoder in this PyAV build; install PyAV from its wheels")


def annotate_video(
    video_path: str | Path, rows: Any, out_path: str | Path, *, hold: int = 0, **overlay: Any
) -> Path:
    """Write a video with its results drawn on every frame that has rows.

    The video is decoded again with PyAV exactly as the analysis read it (same frame indices, turned
    upright), so the output has the input's decoded frame count; frames without rows are copied
    unannotated (or keep the previous frame's overlay for up to ``hold`` frames, which makes an
    ``--every N`` analysis play without flicker). The output is H.264 (yuv420p, CRF 18) at the input's
    average frame rate; audio is not copied. It is written to a temporary name and renamed, so an
    interrupted run never leaves a half file under ``out_path``.

    Args:
        video_path: the analysed video.
        rows: its result rows (other sources' rows are ignored; ``frame`` indexes the video).
        out_path: output video (.mp4, .m4v, .mov, .mkv).
        hold: frames after an annotated frame that reuse its overlay when they have no rows.
        **overlay: options of :func:`draw_overlay`.

    Returns:
        The written path.

    Raises:
        InputError: the video cannot be read. ValueError: an unsupported output extension.
    """
    import av

    from facebehavior.io.video import VideoReader

    out = Path(out_path)
    _check_out(out, VIDEO_OUT_EXTENSIONS, "videos")
    reader = VideoReader(video_path, batch_size=8)
    faces = face_rows(_rows_for(rows, video_path))
    by_frame = {int(f): g for f, g in faces.groupby("frame")} if len(faces) else {}
    rate = Fraction(reader.fps).limit_denominator(1001 * 1000) if reader.fps > 0 else Fraction(25)
    w, h = reader.width + reader.width % 2, reader.height + reader.height % 2
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    n = 0
    last, last_at = None, -(10**9)
    try:
        with av.open(str(tmp), "w") as container:
            stream = None
            for batch in reader:
                for img, fi in zip(batch.images, batch.index, strict=True):
                    g = by_frame.get(int(fi))
                    if g is not None:
                        last, last_at = g, int(fi)
                    elif int(fi) - last_at <= hold:
                        g = last
                    pic = draw_overlay(img, g, **overlay) if g is not None else img
                    if stream is None:  # the first frame fixes the size (upright: may differ from the header)
                        h, w = pic.shape[0] + pic.shape[0] % 2, pic.shape[1] + pic.shape[1] % 2
                        stream = _encoder(container, rate, w, h)
                    pic = _fit(pic, h, w)
                    frame = av.VideoFrame.from_ndarray(pic, format="rgb24")
                    frame.pts = n
                    frame.time_base = 1 / rate
                    container.mux(stream.encode(frame))
                    n += 1
            if stream is not None:
                container.mux(stream.encode(None))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info("%s: %d frames written, %d annotated", out, n, len(by_frame))
    return out


def _fit(pic: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pad (edge pixels) or crop a frame to the encoder's even size."""
    pic = pic[:h, :w]
    ph, pw = h - pic.shape[0], w - pic.shape[1]
    if ph or pw:
        pic = np.pad(pic, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return np.ascontiguousarray(pic)


def annotate_source(
    source: str | Path, rows: Any, out_path: str | Path, *, hold: int = 0, **overlay: Any
) -> Path:
    """:func:`annotate_video` or :func:`annotate_image`, whichever ``source`` is.

    Raises:
        InputError: the source cannot be read (or is a webcam: its frames are gone).
    """
    from facebehavior.io import InputError
    from facebehavior.io.sources import classify

    kind = classify(source)
    if kind == "video":
        return annotate_video(source, rows, out_path, hold=hold, **overlay)
    if kind == "image":
        return annotate_image(source, rows, out_path, **overlay)
    raise InputError(source, "cannot be annotated (not an image or video file; webcam frames are not kept)")


def annotated_name(source: str | Path) -> str:
    """File name of a source's annotated copy: ``clip.mp4`` → ``clip.annotated.mp4``, ``a.jpg`` →
    ``a.annotated.jpg`` (video containers other than MP4/MOV/MKV become .mp4, images other than
    JPEG/PNG/WebP become .png)."""
    from facebehavior.io.sources import classify

    p = Path(source)
    suffix = p.suffix.lower()
    if classify(p) == "video":
        suffix = suffix if suffix in VIDEO_OUT_EXTENSIONS else ".mp4"
    elif suffix not in (".jpg", ".jpeg", ".png", ".webp"):
        suffix = ".png"
    return f"{p.stem}.annotated{suffix}"


def annotate_results(
    rows: Any, sources: Iterable[str], out: str | Path, *, hold: int = 0, on_error: Any = None, **overlay: Any
) -> list[Path]:
    """Annotated copies of several sources.

    Args:
        rows: the results table (all sources).
        sources: the analysed sources (those without rows are copied unannotated).
        out: with one source, the output file when it has an image/video extension; otherwise a
            folder (created) that receives ``annotated_name(source)`` per source (``_2``, ``_3`` …
            added when two sources share a name).
        hold: see :func:`annotate_video`.
        on_error: called with each ``InputError``/``ValueError`` of a source, and with an
            ``InputError`` naming the source for an ``OSError`` (a full disk) or ``RuntimeError`` (no
            video encoder); the other sources are still written (default: re-raised).
        **overlay: options of :func:`draw_overlay`.

    Returns:
        The written paths.
    """
    from facebehavior.io import InputError

    sources = list(sources)
    out = Path(out)
    single = len(sources) == 1 and out.suffix.lower() in VIDEO_OUT_EXTENSIONS | IMAGE_OUT_EXTENSIONS
    written: list[Path] = []
    used: set[str] = set()
    for src in sources:
        if single:
            target = out
        else:
            name = annotated_name(src)
            stem, suffix = name[: -len(Path(name).suffix)], Path(name).suffix
            k = 1
            while name in used:
                k += 1
                name = f"{stem}_{k}{suffix}"
            used.add(name)
            target = out / name
        try:
            src_rows = rows[rows["source"].astype(str) == str(src)] if "source" in rows.columns else rows
            written.append(annotate_source(src, src_rows, target, hold=hold, **overlay))
        except (InputError, ValueError, OSError, RuntimeError) as e:
            if on_error is None:
                raise
            if isinstance(e, (OSError, RuntimeError)):
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                e = InputError(src, f"cannot be annotated ({reason})")
            on_error(e)
    return written
