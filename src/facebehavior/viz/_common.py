"""Shared pieces of the visualisations: column families, colours, fonts, gaps in tracks.

Colours are fixed per meaning (AU number, expression, face id), so the same AU has the same
colour in every plot, overlay and report, whatever subset of AUs a model writes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

# AU occurrence probability, [0, 1]: AU12_prob (facebehavior) or AU12_c (openface style).
AU_PROB = re.compile(r"^AU(\d{2})_(?:prob|c)$")
# AU intensity, [0, 5]: AU12_intensity or AU12_r.
AU_INTENSITY = re.compile(r"^AU(\d{2})_(?:intensity|r)$")
# Bilateral geometric AU evidence (the per-side AU12L_/AU12R_ columns are left to the CSV).
AU_PROB_GEOM = re.compile(r"^AU(\d{2})_prob_geom$")
AU_INTENSITY_GEOM = re.compile(r"^AU(\d{2})_intensity_geom$")
LANDMARK_X = re.compile(r"^x_(\d+)$")

# One colour per FACS AU of the catalogue, no repeats: a 20-colour qualitative set (Trubetskoy's
# "20 distinct colours", with the pale ones darkened so lines stay visible on white). Nearest
# pair: CIE76 dE 27 (tests/test_viz.py checks > 20).
AU_COLOURS: dict[int, str] = {
    1: "#e6194b",
    2: "#3cb44b",
    4: "#4363d8",
    5: "#f58231",
    6: "#911eb4",
    7: "#42d4f4",
    9: "#f032e6",
    10: "#9a6324",
    11: "#469990",
    12: "#800000",
    14: "#808000",
    15: "#000075",
    17: "#a9a9a9",
    20: "#000000",
    23: "#d4ac0d",
    24: "#ff9fb2",
    25: "#8fbc1e",
    26: "#b19cd9",
    43: "#00a878",
    45: "#c8a27a",
}
_SPARE = ("#2f4f4f", "#ff4500", "#1e90ff", "#daa520", "#8b008b", "#556b2f")

# Expressions keep conventional hues (happiness warm, sadness blue, anger red) so a ribbon reads at
# a glance; contempt is brown, neutral grey.
EXPRESSION_COLOURS: dict[str, str] = {
    "neutral": "#a9a9a9",
    "anger": "#e6194b",
    "disgust": "#3cb44b",
    "fear": "#911eb4",
    "happiness": "#ffc20e",
    "sadness": "#4363d8",
    "surprise": "#f58231",
    "contempt": "#9a6324",
}

# Face ids: the first seven are the colours earlier releases drew, then saturated colours that
# read on white pages and on video frames (no white, no black).
FACE_COLOURS: tuple[str, ...] = (
    "#e6194b", "#3cb44b", "#0082c8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#808000",
    "#008080", "#aa6e28", "#800000", "#000080", "#808080", "#d4ac0d", "#ff9fb2", "#8fbc1e",
    "#b19cd9", "#00a878", "#c8a27a",
)  # fmt: skip
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X")


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """``"#e6194b"`` → ``(230, 25, 75)``."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def au_colour(au: int) -> str:
    """The fixed colour of an AU (a spare colour for AUs outside the catalogue)."""
    return AU_COLOURS.get(int(au), _SPARE[int(au) % len(_SPARE)])


def expression_colour(label: str) -> str:
    """The fixed colour of an expression label (grey for labels outside the 8 basic ones)."""
    return EXPRESSION_COLOURS.get(label, "#606060")


def face_colour(face_id: int) -> str:
    """Colour of a face id (ids above 18 cycle; plots add a marker cycle on top)."""
    return FACE_COLOURS[int(face_id) % len(FACE_COLOURS)] if face_id >= 0 else "#ffffff"


def au_columns(df: Any, pattern: re.Pattern = AU_PROB) -> list[tuple[int, str]]:
    """``(AU number, column)`` of ``df``'s columns matching ``pattern``, in AU order."""
    found = [(int(m.group(1)), c) for c in df.columns if (m := pattern.match(str(c)))]
    return sorted(found)


def expression_columns(df: Any) -> list[tuple[str, str]]:
    """``(label, column)`` of the ``expr_<label>`` columns, in the file's order."""
    return [(c.removeprefix("expr_"), c) for c in df.columns if str(c).startswith("expr_")]


def has_data(df: Any, cols: list[str]) -> bool:
    """Whether any of ``cols`` holds a finite value (all-NaN families, e.g. bs_* on video, are absent)."""
    return bool(cols) and bool(np.isfinite(df[cols].to_numpy(np.float64)).any())


def face_rows(df: Any) -> Any:
    """Rows that describe a face: ``success`` is not 0 (when written) and the box is finite.

    Results may hold one row per analysed frame *without* a face (``success = 0``, ``face_id`` -1,
    NaN measures); those count as analysed frames but are never drawn.
    """
    keep = np.ones(len(df), bool)
    if "success" in df.columns:
        keep &= df["success"].fillna(0).to_numpy() != 0
    if "x1" in df.columns:
        keep &= np.isfinite(df["x1"].to_numpy(np.float64))
    if "face_id" in df.columns:
        fid = df["face_id"].to_numpy(np.float64)
        keep &= np.isfinite(fid) & (fid >= 0)  # success-0 rows carry face_id -1
    return df[keep]


def frame_step(frames: np.ndarray) -> int:
    """The analysis step of a source: the smallest positive difference between its analysed
    frames (``--every N`` gives N), 1 for a single frame."""
    u = np.unique(np.asarray(frames, np.int64))
    d = np.diff(u)
    return int(d[d > 0].min()) if (d > 0).any() else 1


def with_gaps(frames: np.ndarray, values: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN point wherever a track skips analysed frames, so lines break there.

    Args:
        frames: (T,) sorted frame indices of one face's rows.
        values: (T,) or (T, K) values at those frames.
        step: the source's analysis step (frames further apart than this are a gap).

    Returns:
        ``(frames, values)`` as float64 with one NaN row inserted after each gap; matplotlib does
        not draw a line segment to or from a NaN, so absent stretches stay empty.
    """
    f = np.asarray(frames, np.float64)
    v = np.asarray(values, np.float64)
    if len(f) < 2:
        return f, v
    gaps = np.flatnonzero(np.diff(f) > step) + 1
    nan_row = np.full((len(gaps),) + v.shape[1:], np.nan)
    return np.insert(f, gaps, (f[gaps - 1] + f[gaps]) / 2), np.insert(v, gaps, nan_row, axis=0)


def seconds_per_frame(df: Any) -> float | None:
    """Seconds per frame index of a source, from its timestamps (``None`` when they carry no time:
    still images, arrays without a rate)."""
    t = df["timestamp"].to_numpy(np.float64) if "timestamp" in df.columns else np.array([])
    f = df["frame"].to_numpy(np.float64)
    ok = np.isfinite(t)
    if ok.sum() < 2 or np.ptp(f[ok]) == 0 or np.ptp(t[ok]) <= 0:
        return None
    return float(np.ptp(t[ok]) / np.ptp(f[ok]))


def pyplot():
    """matplotlib.pyplot on the Agg backend (selected here, not at import: works without a display)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: str | Path, *, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (parents created) with legends outside kept in frame, close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def font(size: int):
    """A scalable TrueType font of ``size`` pixels: matplotlib's bundled DejaVu Sans (always installed
    with matplotlib), else Pillow's default font."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), size)
    except (OSError, ImportError):
        try:
            return ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1: a fixed bitmap font
            return ImageFont.load_default()


def score_column(df: Any) -> str | None:
    """The per-face detection/landmark confidence column (``confidence``; older files ``det_score``)."""
    return next((c for c in ("confidence", "det_score") if c in df.columns), None)
