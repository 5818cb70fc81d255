"""A self-contained HTML report of a results table: one section per source, one block per face.

The page has no external assets (styles inline, figures as base64 PNG, small bars as inline SVG),
so it can be mailed, archived or opened offline. Per source: an overview of the frame with the
most faces (when the media are readable) and a summary table — per face its frames, the share of
analysed frames it is in, its mean expression distribution, its top AUs by mean probability and
its mean valence/arousal. Per face: an AU heatmap over time, an expression ribbon and the
valence–arousal trajectory on the circumplex (still images: the same as bars and one point).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebehavior.viz._common import (
    AU_PROB,
    AU_PROB_GEOM,
    au_colour,
    au_columns,
    expression_colour,
    expression_columns,
    face_rows,
    frame_step,
    has_data,
    pyplot,
    score_column,
    with_gaps,
)

__all__ = ["FaceSummary", "summarise", "write_report"]

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("source", "frame", "face_id")


@dataclass(frozen=True)
class FaceSummary:
    """What the summary table says about one face of one source.

    Attributes:
        source: the source path as written in the results.
        face_id: the face's id within the source.
        frames: analysed frames the face is in.
        analysed_frames: analysed frames of the source (with or without a face, where recorded).
        share: ``frames / analysed_frames`` in [0, 1].
        first, last: first and last frame index of the face.
        expression: mean probability per expression label (file order).
        top_aus: up to 3 (FACS number, mean probability), most probable first.
        valence, arousal: means in [-1, 1] (NaN without a VA head).
    """

    source: str
    face_id: int
    frames: int
    analysed_frames: int
    share: float
    first: int
    last: int
    expression: dict[str, float] = field(default_factory=dict)
    top_aus: list[tuple[int, float]] = field(default_factory=list)
    valence: float = math.nan
    arousal: float = math.nan


def _check(df: Any) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"not a facebehavior results table: columns {missing} missing (write one with "
            "`facebehavior analyze INPUT -o out.csv`)"
        )


def _mean(g: Any, col: str) -> float:
    v = g[col].to_numpy(np.float64) if col in g.columns else np.array([])
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else math.nan


def summarise(df: Any, *, top: int = 3) -> list[FaceSummary]:
    """One :class:`FaceSummary` per (source, face), in source order then face id.

    A source's analysed frames are the distinct frames among all its rows, including rows written
    for frames without a face (``success = 0``), so ``share`` is the face's share of what was analysed.

    Raises:
        ValueError: ``df`` lacks the ``source``, ``frame`` or ``face_id`` column.
    """
    _check(df)
    out = []
    for src, s in df.groupby("source", sort=False):
        analysed = int(s["frame"].nunique())
        faces = face_rows(s)
        aus = au_columns(faces, AU_PROB)
        if not has_data(faces, [c for _, c in aus]):
            aus = au_columns(faces, AU_PROB_GEOM)
        ex = expression_columns(faces)
        for fid, g in faces.groupby("face_id", sort=True):
            n = int(g["frame"].nunique())
            au_means = [(au, _mean(g, c)) for au, c in aus]
            au_means = sorted((m for m in au_means if math.isfinite(m[1])), key=lambda m: -m[1])
            out.append(
                FaceSummary(
                    source=str(src),
                    face_id=int(fid),
                    frames=n,
                    analysed_frames=analysed,
                    share=n / analysed if analysed else math.nan,
                    first=int(g["frame"].min()),
                    last=int(g["frame"].max()),
                    expression={lab: _mean(g, c) for lab, c in ex},
                    top_aus=au_means[:top],
                    valence=_mean(g, "valence"),
                    arousal=_mean(g, "arousal"),
                )
            )
    return out


def _png(fig: Any, *, dpi: int = 90) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _png_array(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _timeline_figure(src: Any, g: Any, fid: int) -> Any | None:
    """AU heatmap + expression ribbon (left) and VA trajectory (right) of one face of a video."""
    from facebehavior.viz.plots import _axis, draw_au_heatmap, draw_circumplex, draw_expression_ribbon

    plt = pyplot()
    aus = au_columns(g, AU_PROB) or au_columns(g, AU_PROB_GEOM)
    has_au = has_data(g, [c for _, c in aus])
    has_ex = has_data(g, [c for _, c in expression_columns(g)])
    has_va = has_data(g, [c for c in ("valence", "arousal") if c in g.columns])
    if not (has_au or has_ex or has_va):
        return None
    grid = np.unique(src["frame"].to_numpy(np.int64))
    to_x, xlabel = _axis(src)
    left = [k for k, ok in (("au", has_au), ("ex", has_ex)) if ok]
    fig = plt.figure(figsize=(11.5 if has_va else 9.0, 4.4))
    gs = fig.add_gridspec(
        max(1, len(left)),
        2 if has_va else 1,
        width_ratios=[3, 1.25] if has_va else [1],
        height_ratios=[3, 1] if len(left) == 2 else [1],
        wspace=0.28,
        hspace=0.3,
    )
    ax0 = last = None
    for i, kind in enumerate(left):
        ax = last = fig.add_subplot(gs[i, 0], sharex=ax0)
        ax0 = ax0 or ax
        if kind == "au":
            mesh = draw_au_heatmap(ax, grid, g, to_x)
            ax.set_title("AU probability over time (grey: face absent)", fontsize=9, loc="left")
            # An inset colour bar keeps the heatmap as wide as the ribbon below it (same time axis).
            fig.colorbar(mesh, cax=ax.inset_axes([1.01, 0.0, 0.015, 1.0])).ax.tick_params(labelsize=7)
        else:
            draw_expression_ribbon(ax, grid, g, to_x)
            ax.set_yticks([])
            ax.set_title("expression (blank: face absent)", fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        if i < len(left) - 1:
            ax.tick_params(labelbottom=False)
    if last is not None:
        last.set_xlabel(xlabel, fontsize=8)
    if has_va:
        ax = fig.add_subplot(gs[:, 1])
        draw_circumplex(ax)
        frames = g["frame"].to_numpy()
        step = frame_step(grid)
        f, va = with_gaps(frames, g[["valence", "arousal"]].to_numpy(np.float64), step)
        ax.plot(va[:, 0], va[:, 1], color="#bbbbbb", lw=0.7, zorder=1)
        sc = ax.scatter(va[:, 0], va[:, 1], c=to_x(f), cmap="plasma", s=9, zorder=2, linewidths=0)
        ok = np.isfinite(va).all(1)
        if ok.any():
            ax.scatter(
                *va[ok][0], marker="o", s=50, facecolors="none", edgecolors="black", zorder=3, label="start"
            )
            ax.scatter(
                *va[ok][-1], marker="s", s=50, facecolors="none", edgecolors="black", zorder=3, label="end"
            )
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.13), ncol=2, frameon=False)
        ax.set_title("valence–arousal trajectory", fontsize=9, loc="left")
        cb = fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.02)
        cb.set_label(xlabel, fontsize=7)
        cb.ax.tick_params(labelsize=7)
    return fig


def _snapshot_figure(g: Any) -> Any | None:
    """Expression bars, AU bars and the VA point of a face seen in one frame (a still image)."""
    from facebehavior.viz.plots import draw_circumplex

    plt = pyplot()
    r = g.iloc[0]
    ex = [(lab, float(r[c])) for lab, c in expression_columns(g) if np.isfinite(r[c])]
    aus = [
        (n, float(r[c]))
        for n, c in (au_columns(g, AU_PROB) or au_columns(g, AU_PROB_GEOM))
        if np.isfinite(r[c])
    ]
    va = [float(r[c]) for c in ("valence", "arousal") if c in g.columns and np.isfinite(r[c])]
    parts = [k for k, ok in (("ex", ex), ("au", aus), ("va", len(va) == 2)) if ok]
    if not parts:
        return None
    widths = {"ex": 3.0, "au": 5.0, "va": 2.6}
    fig, axes = plt.subplots(
        1,
        len(parts),
        figsize=(sum(widths[p] for p in parts) + 0.6, 2.8),
        gridspec_kw={"width_ratios": [widths[p] for p in parts]},
        squeeze=False,
    )
    for ax, kind in zip(axes[0], parts, strict=True):
        if kind == "ex":
            ax.barh(
                [lab for lab, _ in ex], [p for _, p in ex], color=[expression_colour(lab) for lab, _ in ex]
            )
            ax.set_xlim(0, 1)
            ax.invert_yaxis()
            ax.set_title("expression probability", fontsize=9, loc="left")
        elif kind == "au":
            ax.bar([f"AU{n:02d}" for n, _ in aus], [p for _, p in aus], color=[au_colour(n) for n, _ in aus])
            ax.axhline(0.5, color="grey", lw=0.6, ls=":")
            ax.set_ylim(0, 1)
            ax.tick_params(axis="x", rotation=90)
            ax.set_title("AU probability", fontsize=9, loc="left")
        else:
            draw_circumplex(ax)
            ax.scatter([va[0]], [va[1]], s=40, color="#d62728", zorder=3)
            ax.set_title("valence–arousal", fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def _resolve(source: str, media_root: str | Path | None) -> Path | None:
    """Where a source's media file is: under ``media_root`` (as written, then by file name), else as
    written (relative to the working folder); ``None`` if nowhere."""
    p = Path(source)
    candidates = []
    if media_root is not None:
        root = Path(media_root)
        if not p.is_absolute():
            candidates.append(root / p)
        candidates.append(root / p.name)
    candidates.append(p)
    return next((c for c in candidates if c.is_file()), None)


def _frames_of(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """The frames ``wanted`` of a readable image or video (one decoding pass); missing ones left out."""
    from facebehavior.io import InputError
    from facebehavior.io.sources import classify

    got: dict[int, np.ndarray] = {}
    try:
        kind = classify(path)
        if kind == "image":
            from facebehavior.io.images import read_image

            if 0 in wanted:
                got[0] = read_image(path, max_pixels=None)
        elif kind == "video" and wanted:
            from facebehavior.io.video import VideoReader

            reader = VideoReader(path, batch_size=8, start_frame=min(wanted), max_frames=max(wanted) + 1)
            for batch in reader:
                for img, i in zip(batch.images, batch.index, strict=True):
                    if int(i) in wanted:
                        got[int(i)] = img
    except (InputError, OSError, ValueError) as e:
        logger.info("%s: no thumbnails (%s)", path, e)
    return got


def _crop(img: np.ndarray, row: Any, height: int = 96) -> np.ndarray:
    from PIL import Image

    x1, y1, x2, y2 = (float(row[c]) for c in ("x1", "y1", "x2", "y2"))
    m = 0.2 * max(x2 - x1, y2 - y1)
    h, w = img.shape[:2]
    a, b = int(max(0, x1 - m)), int(max(0, y1 - m))
    c, d = int(min(w, x2 + m)), int(min(h, y2 + m))
    if c <= a or d <= b:
        return np.zeros((height, height, 3), np.uint8)
    crop = Image.fromarray(np.ascontiguousarray(img[b:d, a:c]))
    return np.asarray(crop.resize((max(1, round(height * (c - a) / (d - b))), height), Image.LANCZOS))


def _overview(img: np.ndarray, rows: Any, width: int = 640) -> np.ndarray:
    from PIL import Image

    from facebehavior.viz.overlay import draw_overlay

    pic = draw_overlay(img, rows, panel=False)
    if pic.shape[1] > width:
        h = round(pic.shape[0] * width / pic.shape[1])
        pic = np.asarray(Image.fromarray(pic).resize((width, h), Image.LANCZOS))
    return pic


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'s' * (k != 1)}"


def _signed(v: float) -> str:
    return f"{v:+.3f}" if math.isfinite(v) else "–"


def _expr_svg(expr: dict[str, float], width: int = 180, height: int = 14) -> str:
    """The mean expression distribution as one stacked inline-SVG bar (shares of the mean probabilities)."""
    vals = [(k, v) for k, v in expr.items() if math.isfinite(v) and v > 0]
    total = sum(v for _, v in vals)
    if not total:
        return ""
    x, rects = 0.0, []
    for k, v in vals:
        w = width * v / total
        rects.append(
            f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="{height}" fill="{expression_colour(k)}">'
            f"<title>{html.escape(k)} {v:.3f}</title></rect>"
        )
        x += w
    tip = ", ".join(f"{k} {v:.3f}" for k, v in vals)
    return (
        f'<svg class="expr-bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(tip)}">{"".join(rects)}</svg>'
    )


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d1d1f;
background:#fafafa;font-size:14px}
header{background:#20232a;color:#f5f5f5;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}header p{margin:2px 0;color:#c8c8c8}
nav{padding:8px 28px;background:#fff;border-bottom:1px solid #ddd;font-size:13px}
nav a{margin-right:14px;color:#0b63c5;text-decoration:none}
main{padding:8px 28px 40px}
section.source{background:#fff;border:1px solid #e0e0e0;border-radius:6px;margin:18px 0;padding:14px 18px}
section.source h2{margin:0 0 4px;font-size:18px}
p.meta{margin:0 0 10px;color:#555}p.note{color:#8a5a00;margin:6px 0}
table.summary{border-collapse:collapse;margin:8px 0 12px}
table.summary th,table.summary td{border-bottom:1px solid #e5e5e5;padding:5px 10px;text-align:left;
vertical-align:middle}
table.summary th{background:#f2f2f2;font-weight:600;font-size:12px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin:0 3px 0 10px;vertical-align:-1px}
section.face{border-top:1px solid #eee;padding-top:8px;margin-top:8px}
section.face h3{margin:4px 0;font-size:15px}
img.timeline{max-width:100%;height:auto}img.thumb{height:64px;border-radius:3px}
figure.overview{margin:6px 0}figure.overview img{max-width:100%;height:auto;border-radius:4px}
figcaption{color:#666;font-size:12px}
"""


def _face_html(sid: int, s: FaceSummary, fig_b64: str | None, thumb: str | None) -> str:
    span = f"frames {s.first}–{s.last}" if s.last > s.first else f"frame {s.first}"
    parts = [
        f'<section class="face" id="source-{sid}-face-{s.face_id}" data-face="{s.face_id}">',
        f"<h3>Face {s.face_id} <small>— {s.frames} of {s.analysed_frames} analysed frames "
        f"({100 * s.share:.1f} %), {span}</small></h3>",
    ]
    if fig_b64:
        parts.append(
            f'<img class="timeline" alt="AU heatmap, expression ribbon and valence–arousal of face '
            f'{s.face_id}" src="data:image/png;base64,{fig_b64}">'
        )
    else:
        parts.append('<p class="note">no affect columns for this face (analysed with --model none?)</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _row_html(s: FaceSummary, thumb: str | None) -> str:
    top_ex = max(
        ((k, v) for k, v in s.expression.items() if math.isfinite(v)), key=lambda kv: kv[1], default=None
    )
    ex_cell = (
        _expr_svg(s.expression) + f' <span class="top-expr">{html.escape(top_ex[0])} {top_ex[1]:.3f}</span>'
        if top_ex
        else "–"
    )
    aus = (
        " · ".join(
            f'<span class="au" style="border-bottom:3px solid {au_colour(n)}">AU{n:02d} {p:.3f}</span>'
            for n, p in s.top_aus
        )
        or "–"
    )
    img = f'<img class="thumb" alt="face {s.face_id}" src="data:image/png;base64,{thumb}">' if thumb else ""
    return (
        f'<tr class="face-row" data-face="{s.face_id}"><td class="face-id">{s.face_id}</td>'
        f'<td class="thumb">{img}</td><td class="num frames">{s.frames}</td>'
        f'<td class="num share">{100 * s.share:.1f} %</td><td class="expr">{ex_cell}</td>'
        f'<td class="aus">{aus}</td><td class="num valence">{_signed(s.valence)}</td>'
        f'<td class="num arousal">{_signed(s.arousal)}</td></tr>'
    )


def write_report(
    df: Any,
    path: str | Path,
    media_root: str | Path | None = None,
    *,
    title: str | None = None,
    thumbnails: bool = True,
    max_sources: int = 50,
    max_faces: int = 20,
) -> Path:
    """Write the HTML report of a results table.

    Args:
        df: results (``facebehavior analyze``'s table; rows with ``success = 0`` count as analysed
            frames without a face).
        path: output ``.html`` file (replaced atomically).
        media_root: folder the ``source`` paths are relative to, for thumbnails (default: as written,
            i.e. relative to the folder ``analyze`` ran in; a source not found gets no thumbnail).
        title: page title (default: "facebehavior report").
        thumbnails: read the media for face thumbnails and an overview frame per source.
        max_sources: sections for at most this many sources (the rest are counted in a note).
        max_faces: per source, blocks for at most this many faces (those with the most frames);
            the summary table lists every face.

    Returns:
        The written path.

    Raises:
        ValueError: ``df`` is not a results table, or ``path`` does not end in .html/.htm.
    """
    _check(df)
    out = Path(path)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"{out}: the report is an HTML page; name it *.html")
    title = title or "facebehavior report"
    summaries = summarise(df)
    by_source: dict[str, list[FaceSummary]] = {}
    for s in summaries:
        by_source.setdefault(s.source, []).append(s)
    sources = [str(s) for s in df["source"].drop_duplicates()]
    faces = face_rows(df)
    ex_labels = [lab for lab, _ in expression_columns(df)]
    body = []
    for sid, src in enumerate(sources[:max_sources]):
        body.append(
            _source_html(
                sid,
                src,
                df[df["source"].astype(str) == src],
                by_source.get(src, []),
                media_root,
                thumbnails,
                max_faces,
            )
        )
    legend = "".join(
        f'<span class="swatch" style="background:{expression_colour(k)}"></span>{html.escape(k)}'
        for k in ex_labels
    )
    nav = "".join(
        f'<a href="#source-{i}">{html.escape(Path(s).name)}</a>' for i, s in enumerate(sources[:max_sources])
    )
    more = (
        f'<p class="note">{len(sources) - max_sources} more sources are not shown '
        f"(max_sources={max_sources})</p>"
        if len(sources) > max_sources
        else ""
    )
    no_success = (
        ""
        if "success" in df.columns
        else "<p>Frames without any face are not recorded in these results: shares are of the frames "
        "that hold at least one face.</p>"
    )
    totals = (
        f"{_n(len(sources), 'source')} · {_n(len(summaries), 'face track')} · {_n(len(faces), 'face row')}"
    )
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<header><h1>{html.escape(title)}</h1>
<p class="totals">{totals}</p>
{no_success}<p>Expressions: {legend}</p></header>
<nav>{nav}</nav>
<main>
{"".join(body)}{more}
</main></body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(doc, encoding="utf-8")
    os.replace(tmp, out)
    return out


def _source_html(
    sid: int,
    src: str,
    s: Any,
    summaries: list[FaceSummary],
    media_root: Any,
    thumbnails: bool,
    max_faces: int,
) -> str:
    import pandas as pd

    faces = face_rows(s)
    analysed = int(s["frame"].nunique())
    t = s["timestamp"].to_numpy(np.float64) if "timestamp" in s.columns else np.array([np.nan])
    dur = f" · {np.nanmin(t):.2f}–{np.nanmax(t):.2f} s" if np.isfinite(t).any() and np.nanmax(t) > 0 else ""
    thumbs: dict[int, str] = {}
    overview = ""
    media = _resolve(src, media_root) if thumbnails and len(faces) else None
    if media is not None:
        score = score_column(faces)
        # Thumbnail: each face's most confident frame.
        conf = faces[score].fillna(-1.0) if score else pd.Series(0.0, index=faces.index)
        best = faces.loc[conf.groupby(faces["face_id"]).idxmax()]
        busiest = int(faces.groupby("frame").size().idxmax())
        frames = _frames_of(media, set(best["frame"].astype(int)) | {busiest})
        for _, r in best.iterrows():
            if int(r["frame"]) in frames:
                thumbs[int(r["face_id"])] = _png_array(_crop(frames[int(r["frame"])], r))
        if busiest in frames:
            pic = _overview(frames[busiest], faces[faces["frame"] == busiest])
            overview = (
                f'<figure class="overview"><img alt="frame {busiest} with face ids" '
                f'src="data:image/png;base64,{_png_array(pic)}"><figcaption>frame {busiest}: face ids'
                "</figcaption></figure>"
            )
    rows = "".join(_row_html(x, thumbs.get(x.face_id)) for x in summaries)
    table = (
        '<table class="summary"><thead><tr><th>face</th><th></th><th>frames</th><th>share of frames</th>'
        "<th>mean expression</th><th>top AUs (mean probability)</th><th>mean valence</th>"
        "<th>mean arousal</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        if summaries
        else '<p class="note">no face found in this source</p>'
    )
    shown = sorted(sorted(summaries, key=lambda x: -x.frames)[:max_faces], key=lambda x: x.face_id)
    blocks = []
    for x in shown:
        g = faces[faces["face_id"] == x.face_id].sort_values("frame")
        fig = _timeline_figure(s, g, x.face_id) if analysed > 1 else _snapshot_figure(g)
        blocks.append(_face_html(sid, x, _png(fig) if fig is not None else None, thumbs.get(x.face_id)))
    if len(summaries) > len(shown):
        blocks.append(
            f'<p class="note">{len(summaries) - len(shown)} shorter face tracks are in the table only</p>'
        )
    return (
        f'<section class="source" id="source-{sid}" data-source="{html.escape(src)}">'
        f"<h2>{html.escape(Path(src).name)}</h2>"
        f'<p class="meta">{html.escape(src)} · {_n(analysed, "analysed frame")}{dur} · '
        f"{_n(len(summaries), 'face')}</p>{overview}{table}{''.join(blocks)}</section>\n"
    )
