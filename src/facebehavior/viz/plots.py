"""Figures over the results table: time series, geometry, blendshapes, valence–arousal.

Every ``*_figure`` function returns a matplotlib ``Figure`` (for notebooks and tests); every
``plot_*`` function writes one to a file and returns its path. Conventions, the same everywhere:

* a face's lines break where it is absent (frames without a row for it are gaps, never
  interpolated across);
* axes are fixed by what the values mean — probabilities [0, 1], valence/arousal [−1, 1],
  intensities [0, 5] — so a flat 0.02 wiggle never fills the panel;
* each AU, expression and face keeps one colour (``viz._common``), legends sit outside the axes.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from facebehavior.viz._common import (
    AU_INTENSITY,
    AU_INTENSITY_GEOM,
    AU_PROB,
    AU_PROB_GEOM,
    FACE_COLOURS,
    MARKERS,
    au_colour,
    au_columns,
    expression_colour,
    expression_columns,
    face_rows,
    frame_step,
    has_data,
    pyplot,
    save,
    seconds_per_frame,
    with_gaps,
)

__all__ = [
    "timeseries_figure",
    "plot_timeseries",
    "geometry_figure",
    "plot_geometry",
    "blendshape_figure",
    "plot_blendshapes",
    "va_scatter_figure",
    "plot_va_scatter",
    "binned_matrix",
    "draw_au_heatmap",
    "draw_expression_ribbon",
    "draw_circumplex",
    "plot_results",
]

logger = logging.getLogger(__name__)

_VA_COLOURS = {"valence": "#1f77b4", "arousal": "#d62728"}
_POSE_COLOURS = {"pose_pitch": "#e6194b", "pose_yaw": "#3cb44b", "pose_roll": "#4363d8"}


def _select(df: Any, source: str | None) -> tuple[Any, str]:
    if len(df) == 0:
        raise ValueError("no rows to plot")
    source = source if source is not None else str(df["source"].iloc[0])
    d = df[df["source"].astype(str) == source]
    if len(d) == 0:
        raise ValueError(
            f"source {source!r} is not in the results; sources: {sorted(set(df['source']))[:10]}"
        )
    return d, source


def _axis(src: Any) -> tuple[Any, str]:
    """x of a source: a function frame → x (seconds when the source has time) and its label."""
    spf = seconds_per_frame(src)
    if spf is None:
        return (lambda f: np.asarray(f, np.float64)), "frame"
    f = src["frame"].to_numpy(np.float64)
    t = src["timestamp"].to_numpy(np.float64)
    ok = np.isfinite(t)
    t0 = float(np.median(t[ok] - f[ok] * spf))
    return (lambda fr: t0 + np.asarray(fr, np.float64) * spf), "time (s)"


def _faces(d: Any, max_faces: int) -> list[int]:
    sizes = d.groupby("face_id").size().sort_values(ascending=False, kind="stable")
    if len(sizes) > max_faces:
        logger.info("plotting the %d faces with the most frames of %d", max_faces, len(sizes))
    return sorted(int(i) for i in sizes.index[:max_faces])


def _legend_outside(ax: Any, n: int, **style: Any) -> None:
    """A legend right of the axes, so it never covers data (``style``: more ``ax.legend`` options)."""
    if n:
        options = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, "fontsize": 7}
        ax.legend(**{**options, "ncol": 1 if n <= 10 else 2, "frameon": False, "handlelength": 1.2, **style})


def _pose_limit(d: Any, cols: list[str]) -> float:
    """±45° unless the data go further (then the next multiple of 15°): fixed, so jitter stays small."""
    m = np.nanmax(np.abs(d[cols].to_numpy(np.float64))) if has_data(d, cols) else 0.0
    return float(max(45.0, 15.0 * math.ceil(m / 15.0)))


def _panels(d: Any) -> list[tuple[str, list[tuple[str, str, str]], tuple[float, float] | None]]:
    """(title, [(column, label, colour)], y-limits) of the time-series panels with data."""
    panels = []
    aus = au_columns(d, AU_PROB)
    title = "AU probability"
    if not has_data(d, [c for _, c in aus]):
        aus, title = au_columns(d, AU_PROB_GEOM), "AU probability (geometric)"
    if has_data(d, [c for _, c in aus]):
        panels.append((title, [(c, f"AU{n:02d}", au_colour(n)) for n, c in aus], (-0.02, 1.02)))
    ints = au_columns(d, AU_INTENSITY)
    if has_data(d, [c for _, c in ints]):
        panels.append(("AU intensity (0–5)", [(c, f"AU{n:02d}", au_colour(n)) for n, c in ints], (-0.1, 5.1)))
    ex = expression_columns(d)
    if has_data(d, [c for _, c in ex]):
        panels.append(("expression", [(c, lab, expression_colour(lab)) for lab, c in ex], (-0.02, 1.02)))
    va = [c for c in ("valence", "arousal") if c in d.columns]
    if has_data(d, va):
        panels.append(("valence / arousal", [(c, c, _VA_COLOURS[c]) for c in va], (-1.05, 1.05)))
    pose = [c for c in _POSE_COLOURS if c in d.columns]
    if has_data(d, pose):
        lim = _pose_limit(d, pose)
        panels.append(
            ("head pose (deg)", [(c, c.removeprefix("pose_"), _POSE_COLOURS[c]) for c in pose], (-lim, lim))
        )
    return panels


def timeseries_figure(df: Any, *, source: str | None = None, max_faces: int = 6) -> Any:
    """Time series per face of one source: AUs, AU intensities, expressions, valence/arousal, pose.

    Args:
        df: results (one row per face and frame; rows with ``success = 0`` count as analysed frames).
        source: which source to plot (default: the first one in ``df``).
        max_faces: plot at most this many faces (those with the most frames), one column each.

    Returns:
        A matplotlib Figure: one row of panels per column family with data, one column per face;
        lines break where the face is absent; one legend per row, right of the last column.
    """
    plt = pyplot()
    src, source = _select(df, source)
    d = face_rows(src).sort_values(["face_id", "frame"])
    step = frame_step(src["frame"].to_numpy())
    to_x, xlabel = _axis(src)
    xlim = to_x([src["frame"].min(), src["frame"].max()])
    panels = _panels(d) or [("face box x-centre (px)", [], None)]
    ids = _faces(d, max_faces) if len(d) else []
    ncol = max(1, len(ids))
    fig, axes = plt.subplots(
        len(panels), ncol, figsize=(4.6 * ncol + 1.4, 2.1 * len(panels) + 0.4), squeeze=False, sharex="col"
    )
    for j, fid in enumerate(ids or [None]):
        g = d if fid is None else d[d["face_id"] == fid]
        frames = g["frame"].to_numpy()
        for i, (title, cols, ylim) in enumerate(panels):
            ax = axes[i, j]
            series = [(g[c].to_numpy(np.float64), lab, col) for c, lab, col in cols] or [
                (((g["x1"] + g["x2"]) / 2).to_numpy(np.float64), "x-centre", "#333333")
            ]
            for values, label, colour in series:
                f, v = with_gaps(frames, values, step)
                ax.plot(to_x(f), v, lw=1.0, color=colour, label=label)
            if title.startswith("AU probability"):
                ax.axhline(0.5, color="grey", lw=0.6, ls=":")
            if ylim is not None:
                ax.set_ylim(*ylim)
            if xlim[1] > xlim[0]:
                ax.set_xlim(*xlim)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.25, lw=0.5)
            if j == 0:
                ax.set_ylabel(title, fontsize=8)
            if i == 0:
                n = len(g)
                ax.set_title(f"{Path(source).name} — face {fid} ({n} frame{'s' * (n != 1)})", fontsize=9)
            if j == ncol - 1:
                _legend_outside(ax, len(cols))
        axes[-1, j].set_xlabel(xlabel, fontsize=8)
    fig.tight_layout()
    return fig


def plot_timeseries(df: Any, path: str | Path, *, source: str | None = None, max_faces: int = 6) -> Path:
    """Write :func:`timeseries_figure` to ``path`` (.png, .pdf, .svg); returns the path."""
    return save(timeseries_figure(df, source=source, max_faces=max_faces), path)


def geometry_figure(df: Any, *, source: str | None = None, max_faces: int = 6) -> Any:
    """Geometric AU evidence (``--geometry``) per face: intensities on the fixed 0–5 scale, and each
    ``geom_*`` measurement as its change from the face's median (the measurements have different
    baselines and units, see docs/geometry.md; the change puts them on one axis).

    Raises:
        ValueError: ``df`` holds no geometric columns with data.
    """
    plt = pyplot()
    src, source = _select(df, source)
    d = face_rows(src).sort_values(["face_id", "frame"])
    ints = au_columns(d, AU_INTENSITY_GEOM)
    meas = [c for c in d.columns if str(c).startswith("geom_")]
    has_i, has_m = has_data(d, [c for _, c in ints]), has_data(d, meas)
    if not (has_i or has_m):
        raise ValueError("no geometric columns with data (analyse with --geometry)")
    step = frame_step(src["frame"].to_numpy())
    to_x, xlabel = _axis(src)
    xlim = to_x([src["frame"].min(), src["frame"].max()])
    ids = _faces(d, max_faces)
    rows = int(has_i) + int(has_m)
    fig, axes = plt.subplots(
        rows, len(ids), figsize=(4.6 * len(ids) + 2.2, 2.4 * rows + 0.4), squeeze=False, sharex="col"
    )
    styles = ("-", "--", ":")
    for j, fid in enumerate(ids):
        g = d[d["face_id"] == fid]
        frames = g["frame"].to_numpy()
        i = 0
        if has_i:
            ax = axes[i, j]
            for n, c in ints:
                f, v = with_gaps(frames, g[c].to_numpy(np.float64), step)
                ax.plot(to_x(f), v, lw=1.0, color=au_colour(n), label=f"AU{n:02d}")
            ax.set_ylim(-0.1, 5.1)
            ax.set_ylabel("geometric AU intensity (0–5)" if j == 0 else "", fontsize=8)
            if j == len(ids) - 1:
                _legend_outside(ax, len(ints))
            i += 1
        if has_m:
            ax = axes[i, j]
            for k, c in enumerate(meas):
                v = g[c].to_numpy(np.float64)
                f, v = with_gaps(frames, v - np.nanmedian(v) if np.isfinite(v).any() else v, step)
                ax.plot(
                    to_x(f),
                    v,
                    lw=0.9,
                    color=FACE_COLOURS[k % len(FACE_COLOURS)],
                    ls=styles[(k // len(FACE_COLOURS)) % 3],
                    label=c.removeprefix("geom_"),
                )
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_ylabel("measurement − median" if j == 0 else "", fontsize=8)
            if j == len(ids) - 1:
                _legend_outside(ax, len(meas))
        axes[0, j].set_title(f"{Path(source).name} — face {fid}", fontsize=9)
        axes[-1, j].set_xlabel(xlabel, fontsize=8)
        for ax in axes[:, j]:
            if xlim[1] > xlim[0]:
                ax.set_xlim(*xlim)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.25, lw=0.5)
    fig.tight_layout()
    return fig


def plot_geometry(df: Any, path: str | Path, *, source: str | None = None, max_faces: int = 6) -> Path:
    """Write :func:`geometry_figure` to ``path``; returns the path."""
    return save(geometry_figure(df, source=source, max_faces=max_faces), path)


def binned_matrix(
    grid: np.ndarray, frames: np.ndarray, values: np.ndarray, *, max_bins: int = 600
) -> tuple[np.ndarray, np.ndarray]:
    """Values of one face on its source's frame grid, NaN where the face is absent.

    Args:
        grid: (G,) the source's analysed frame indices, sorted, unique.
        frames: (T,) the face's frames (a subset of ``grid``).
        values: (T, K) its values.
        max_bins: columns at most; longer grids are cut into this many consecutive bins and each
            bin holds the mean over the frames the face is present in (NaN if none).

    Returns:
        ``(edges, matrix)``: (B + 1,) bin edges in frame units and (K, B) values.
    """
    grid = np.asarray(grid, np.int64)
    values = np.asarray(values, np.float64).reshape(len(frames), -1)
    pos = np.searchsorted(grid, np.asarray(frames, np.int64))
    full = np.full((len(grid), values.shape[1]), np.nan)
    full[np.clip(pos, 0, len(grid) - 1)] = values
    n_bins = min(len(grid), max_bins)
    owner = np.arange(len(grid)) * n_bins // max(len(grid), 1)
    sums = np.zeros((n_bins, values.shape[1]))
    counts = np.zeros((n_bins, values.shape[1]))
    ok = np.isfinite(full)
    np.add.at(sums, owner, np.where(ok, full, 0.0))
    np.add.at(counts, owner, ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).T
    starts = grid[np.searchsorted(owner, np.arange(n_bins))].astype(np.float64)
    step = frame_step(grid)
    edges = np.append(starts, grid[-1] + step) - step / 2
    return edges, matrix


def draw_au_heatmap(ax: Any, grid: np.ndarray, g: Any, to_x: Any, *, max_bins: int = 600) -> Any:
    """AU probabilities of one face (rows: AUs, columns: time) on ``ax``, colour scale fixed to [0, 1];
    frames without the face are left blank (light grey). Returns the mesh (for a colour bar)."""
    import matplotlib

    aus = au_columns(g, AU_PROB) or au_columns(g, AU_PROB_GEOM)
    edges, m = binned_matrix(
        grid, g["frame"].to_numpy(), g[[c for _, c in aus]].to_numpy(np.float64), max_bins=max_bins
    )
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#eeeeee")
    mesh = ax.pcolormesh(
        to_x(edges), np.arange(len(aus) + 1), np.ma.masked_invalid(m), cmap=cmap, vmin=0, vmax=1
    )
    ax.set_yticks(np.arange(len(aus)) + 0.5, [f"AU{n:02d}" for n, _ in aus], fontsize=7)
    ax.invert_yaxis()
    return mesh


def draw_expression_ribbon(ax: Any, grid: np.ndarray, g: Any, to_x: Any, *, max_bins: int = 600) -> None:
    """Expression probabilities of one face as a stacked ribbon over time (each column sums to 1);
    frames without the face are left blank."""
    ex = expression_columns(g)
    edges, m = binned_matrix(
        grid, g["frame"].to_numpy(), g[[c for _, c in ex]].to_numpy(np.float64), max_bins=max_bins
    )
    m = np.where(np.isfinite(m), m, 0.0)
    total = m.sum(0, keepdims=True)
    share = np.divide(m, total, out=np.zeros_like(m), where=total > 0)
    bottom = np.zeros(m.shape[1])
    x = to_x(edges)
    for k, (label, _) in enumerate(ex):
        ax.bar(
            x[:-1],
            share[k],
            width=np.diff(x),
            bottom=bottom,
            align="edge",
            color=expression_colour(label),
            label=label,
            linewidth=0,
        )
        bottom = bottom + share[k]
    ax.set_ylim(0, 1)
    ax.set_xlim(x[0], x[-1])


def draw_circumplex(ax: Any, *, labels: bool = True) -> None:
    """The valence–arousal plane: unit circle, axes and Russell's quadrant words, limits [−1, 1]²."""
    t = np.linspace(0, 2 * np.pi, 256)
    ax.plot(np.cos(t), np.sin(t), color="#bbbbbb", lw=0.8)
    ax.axhline(0, color="#999999", lw=0.6)
    ax.axvline(0, color="#999999", lw=0.6)
    if labels:
        for x, y, word in (
            (0.7, 0.9, "excited"),
            (-0.7, 0.9, "tense"),
            (-0.7, -0.9, "sad"),
            (0.7, -0.9, "calm"),
        ):
            ax.text(x, y, word, ha="center", va="center", fontsize=7, color="#888888")
    ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), aspect="equal")
    ax.set_xlabel("valence", fontsize=8)
    ax.set_ylabel("arousal", fontsize=8)
    ax.tick_params(labelsize=7)


def blendshape_figure(df: Any, *, source: str | None = None, max_faces: int = 6) -> Any:
    """The 52 blendshape scores (``bs_*``) per face as heatmaps over time, colour scale fixed to [0, 1].

    Raises:
        ValueError: no ``bs_*`` column holds data (video frames under ``--landmarks auto``).
    """
    import matplotlib

    plt = pyplot()
    src, source = _select(df, source)
    d = face_rows(src).sort_values(["face_id", "frame"])
    cols = [c for c in d.columns if str(c).startswith("bs_")]
    if not has_data(d, cols):
        raise ValueError("no blendshape scores in these results (bs_* columns empty or absent)")
    grid = np.unique(src["frame"].to_numpy(np.int64))
    to_x, xlabel = _axis(src)
    ids = _faces(d, max_faces)
    fig, axes = plt.subplots(len(ids), 1, figsize=(11, 6.4 * len(ids)), squeeze=False)
    cmap = matplotlib.colormaps["magma"].with_extremes(bad="#eeeeee")
    for ax, fid in zip(axes[:, 0], ids, strict=True):
        g = d[d["face_id"] == fid]
        edges, m = binned_matrix(grid, g["frame"].to_numpy(), g[cols].to_numpy(np.float64))
        mesh = ax.pcolormesh(
            to_x(edges), np.arange(len(cols) + 1), np.ma.masked_invalid(m), cmap=cmap, vmin=0, vmax=1
        )
        ax.set_yticks(np.arange(len(cols)) + 0.5, [c.removeprefix("bs_") for c in cols], fontsize=6)
        ax.invert_yaxis()
        ax.set_title(f"{Path(source).name} — face {fid}: blendshape scores", fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        fig.colorbar(mesh, ax=ax, fraction=0.03, pad=0.01).ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_blendshapes(df: Any, path: str | Path, *, source: str | None = None, max_faces: int = 6) -> Path:
    """Write :func:`blendshape_figure` to ``path``; returns the path."""
    return save(blendshape_figure(df, source=source, max_faces=max_faces), path)


def va_scatter_figure(df: Any, *, max_legend: int = 200) -> Any:
    """Valence (x) against arousal (y), one colour/marker per (source, face), on the circumplex.

    The legend sits outside the axes in as many columns as it needs (30 entries each), so it is
    kept with many faces; above ``max_legend`` entries the rest are summarised in one line.

    Raises:
        ValueError: ``df`` has no valence/arousal columns (no affect model with a VA head).
    """
    if "valence" not in df.columns or "arousal" not in df.columns:
        raise ValueError("no valence/arousal columns in these results (the model has no VA head)")
    plt = pyplot()
    d = face_rows(df)
    groups = list(d.groupby(["source", "face_id"], sort=True))
    many_sources = d["source"].nunique() > 1
    ncol = max(1, math.ceil(min(len(groups), max_legend) / 30))
    fig, ax = plt.subplots(figsize=(5.2 + 1.9 * ncol, 5.2))
    for k, ((src, fid), g) in enumerate(groups):
        label = f"{Path(str(src)).name}:{int(fid)}" if many_sources else f"face {int(fid)}"
        ax.scatter(
            g["valence"],
            g["arousal"],
            s=9,
            alpha=0.6,
            color=FACE_COLOURS[k % len(FACE_COLOURS)],
            marker=MARKERS[(k // len(FACE_COLOURS)) % len(MARKERS)],
            label=label if k < max_legend else None,
            linewidths=0,
        )
    if len(groups) > max_legend:
        ax.scatter([], [], s=0, label=f"… {len(groups) - max_legend} more")
    draw_circumplex(ax)
    _legend_outside(
        ax, len(groups), ncol=ncol, frameon=False, markerscale=1.5, handletextpad=0.3, columnspacing=0.8
    )
    fig.tight_layout()
    return fig


def plot_va_scatter(df: Any, path: str | Path) -> Path:
    """Write :func:`va_scatter_figure` to ``path``; returns the path.

    Raises:
        ValueError: ``df`` has no valence/arousal columns (no affect model with a VA head).
    """
    return save(va_scatter_figure(df), path)


def plot_results(df: Any, out_dir: str | Path, *, max_sources: int = 50) -> list[Path]:
    """Every plot for a results table: per source a time series (videos), geometry and blendshape
    plots (when those columns hold data), an annotated overlay of the frame with the most faces,
    and one VA scatter over everything (if there is VA).

    Args:
        df: results table.
        out_dir: folder for the images (created).
        max_sources: plot at most this many sources (a folder of 10,000 photos needs no 10,000 plots).

    Returns:
        Written paths.
    """
    from PIL import Image

    from facebehavior.viz.overlay import draw_overlay, read_frame

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    faces = face_rows(df)
    if len(faces) == 0:
        return written
    for k, (src, d) in enumerate(df.groupby("source", sort=False)):
        if k >= max_sources:
            logger.info("plots for the first %d of %d sources", max_sources, df["source"].nunique())
            break
        stem = f"{k:03d}_{Path(str(src)).stem}"
        f = face_rows(d)
        if len(f) == 0:
            continue
        if d["frame"].nunique() > 1:
            written.append(plot_timeseries(d, out / f"{stem}_timeseries.png", source=str(src)))
            geom = [c for c in f.columns if str(c).startswith("geom_") or AU_INTENSITY_GEOM.match(str(c))]
            if has_data(f, geom):
                written.append(plot_geometry(d, out / f"{stem}_geometry.png", source=str(src)))
            if has_data(f, [c for c in f.columns if str(c).startswith("bs_")]):
                written.append(plot_blendshapes(d, out / f"{stem}_blendshapes.png", source=str(src)))
        best = int(f.groupby("frame").size().idxmax())
        img = read_frame(str(src), best)
        if img is not None:
            p = out / f"{stem}_overlay_frame{best}.png"
            Image.fromarray(draw_overlay(img, f[f["frame"] == best])).save(p)
            written.append(p)
    if "valence" in df.columns and has_data(faces, ["valence"]):
        written.append(plot_va_scatter(df, out / "va_scatter.png"))
    return written
