"""Plots and overlays as plain functions over the results DataFrame.

Nothing here touches matplotlib's global state at import: each plotting function selects the
non-interactive Agg backend itself, so plotting works on servers without a display.

* ``plot_timeseries`` — per ``face_id``: AU probabilities, expression probabilities,
  valence/arousal (and head pose) against time.
* ``plot_va_scatter`` — valence against arousal per face, on the circumplex square [-1, 1]².
* ``draw_overlay`` — boxes, face ids and keypoints drawn on a frame (an RGB array).
* ``plot_results`` — all of the above for every source of a results table (``--plot DIR``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_timeseries", "plot_va_scatter", "draw_overlay", "plot_results"]

_AU_PROB = re.compile(r"^AU\d{2}_(prob|c)$")
_AU_GEOM = re.compile(r"^AU\d{2}_prob_geom$")
_PALETTE = np.array(
    [
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
    ],
    np.uint8,
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    """Lay out ``fig``, write it to ``path`` (parents created), close it; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _time(df: Any) -> tuple[np.ndarray, str]:
    t = df["timestamp"].to_numpy(np.float64)
    if np.isfinite(t).all() and np.ptp(t) > 0:
        return t, "time (s)"
    return df["frame"].to_numpy(np.float64), "frame"


def plot_timeseries(df: Any, path: str | Path, *, source: str | None = None) -> Path:
    """Time series per face of one source: AUs, expressions, valence/arousal, head pose.

    Args:
        df: results (one row per face and frame).
        path: output image file (.png, .pdf, .svg).
        source: which source to plot (default: the first one in ``df``).

    Returns:
        The written path. Panels without data (e.g. no affect model) are left out.
    """
    plt = _pyplot()
    source = source if source is not None else str(df["source"].iloc[0])
    d = df[df["source"] == source].sort_values(["face_id", "frame"])
    au_cols = [c for c in d.columns if _AU_PROB.match(c)]
    if not au_cols:  # no affect model: show the geometric evidence, if it was computed
        au_cols = [c for c in d.columns if _AU_GEOM.match(c)]
    expr_cols = [c for c in d.columns if c.startswith("expr_")]
    va_cols = [c for c in ("valence", "arousal") if c in d.columns]
    pose_cols = [c for c in ("pose_pitch", "pose_yaw", "pose_roll") if c in d.columns and d[c].notna().any()]
    panels = [
        (n, c)
        for n, c in (
            ("AU probability", au_cols),
            ("expression", expr_cols),
            ("valence / arousal", va_cols),
            ("head pose (deg)", pose_cols),
        )
        if c
    ]
    ids = sorted(d["face_id"].unique())
    if not panels:
        panels = [("face box x-centre (px)", [])]
    fig, axes = plt.subplots(
        len(panels),
        max(1, len(ids)),
        figsize=(5 * max(1, len(ids)), 2.4 * len(panels)),
        squeeze=False,
        sharex="col",
    )
    for j, fid in enumerate(ids or [None]):
        g = d if fid is None else d[d["face_id"] == fid]
        t, tlabel = _time(g)
        for i, (title, cols) in enumerate(panels):
            ax = axes[i, j]
            if cols:
                for c in cols:
                    ax.plot(t, g[c].to_numpy(np.float64), lw=1, label=c.removeprefix("expr_"))
                if len(cols) <= 20:
                    ax.legend(fontsize=6, ncol=2 if len(cols) > 6 else 1, loc="upper right")
            else:
                ax.plot(t, ((g["x1"] + g["x2"]) / 2).to_numpy(np.float64), lw=1)
            ax.set_ylabel(title, fontsize=8)
            if i == 0:
                ax.set_title(f"{Path(source).name} — face {fid}", fontsize=9)
        axes[-1, j].set_xlabel(tlabel)
    return _save(fig, path)


def plot_va_scatter(df: Any, path: str | Path) -> Path:
    """Valence (x) against arousal (y), one colour per source and face.

    Raises:
        ValueError: ``df`` has no valence/arousal columns (no affect model with a VA head).
    """
    if "valence" not in df.columns or "arousal" not in df.columns:
        raise ValueError("no valence/arousal columns in these results (the model has no VA head)")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for (src, fid), g in df.groupby(["source", "face_id"], sort=True):
        ax.scatter(g["valence"], g["arousal"], s=6, alpha=0.6, label=f"{Path(str(src)).name}:{fid}")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set(xlim=(-1, 1), ylim=(-1, 1), xlabel="valence", ylabel="arousal", aspect="equal")
    if df.groupby(["source", "face_id"]).ngroups <= 12:
        ax.legend(fontsize=6, loc="lower right")
    return _save(fig, path)


def draw_overlay(image: np.ndarray, rows: Any, *, label: str | None = "expression") -> np.ndarray:
    """Draw face boxes, ids and the 5 keypoints of one frame's rows onto a copy of the frame.

    Args:
        image: (H, W, 3) uint8 RGB frame.
        rows: the results rows of that frame (columns x1..y2, face_id, ``*_x``/``*_y`` keypoints).
        label: a column to print next to the id (e.g. the top expression), if present.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    from PIL import Image, ImageDraw

    from facebehavior.schema import KEYPOINTS_5

    img = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(img)
    width = max(1, round(max(image.shape[:2]) / 300))
    for _, r in rows.iterrows():
        fid = int(r["face_id"])
        colour = tuple(int(c) for c in _PALETTE[fid % len(_PALETTE)]) if fid >= 0 else (255, 255, 255)
        draw.rectangle([r["x1"], r["y1"], r["x2"], r["y2"]], outline=colour, width=width)
        text = f"id {fid}"
        if label and label in rows.columns and isinstance(r[label], str):
            text += f" {r[label]}"
        draw.text((r["x1"] + 2, max(0, r["y1"] - 12)), text, fill=colour)
        rad = 1 + width
        for name in KEYPOINTS_5:
            x, y = r.get(f"{name}_x"), r.get(f"{name}_y")
            if x is not None and np.isfinite(x) and np.isfinite(y):
                draw.ellipse([x - rad, y - rad, x + rad, y + rad], fill=colour)
    return np.asarray(img)


def _frame(source: str, frame: int) -> np.ndarray | None:
    from facebehavior.io import InputError
    from facebehavior.io.sources import classify

    try:
        if classify(source) == "image":
            from facebehavior.io.images import read_image

            return read_image(source, max_pixels=None)
        if classify(source) == "video":
            from facebehavior.io.video import VideoReader

            for b in VideoReader(source, batch_size=1, start_frame=frame, max_frames=frame + 1):
                return b.images[0]
    except InputError:
        return None
    return None


def plot_results(df: Any, out_dir: str | Path, *, max_sources: int = 50) -> list[Path]:
    """Every plot for a results table: per source a time series (videos), an overlay of the frame
    with the most faces, and one VA scatter over everything (if there is VA).

    Args:
        df: results table.
        out_dir: folder for the images (created).
        max_sources: plot at most this many sources (a folder of 10,000 photos needs no 10,000 plots).

    Returns:
        Written paths.
    """
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if len(df) == 0:
        return written
    for k, (src, d) in enumerate(df.groupby("source", sort=False)):
        if k >= max_sources:
            break
        stem = f"{k:03d}_{Path(str(src)).stem}"
        if d["frame"].nunique() > 1:
            written.append(plot_timeseries(d, out / f"{stem}_timeseries.png", source=str(src)))
        counts = d.groupby("frame").size()
        best = int(counts.idxmax())
        img = _frame(str(src), best)
        if img is not None:
            p = out / f"{stem}_overlay_frame{best}.png"
            Image.fromarray(draw_overlay(img, d[d["frame"] == best])).save(p)
            written.append(p)
    if "valence" in df.columns and df["valence"].notna().any():
        written.append(plot_va_scatter(df, out / "va_scatter.png"))
    return written
