"""Pose-normalised facial measurements and geometric AU evidence from FaceMesh-468 landmarks.

The measurement layer OpenFace builds from its 68-point model (geometry features + person-specific
normalisation), on FaceMesh's dense mesh and vectorised over batches:

1. **Frontalise** each face: a similarity fit (Umeyama) onto MediaPipe's canonical face over its
   expression-stable points (:func:`facebehavior.face.pose.align_to_canonical`) removes head pose,
   position and scale. Coordinates are then divided by the canonical inter-ocular distance (outer eye
   corners, 8.89 cm), so every length below is in **IOD** units: 0.01 IOD ≈ 0.9 mm on an average adult.
2. **Measure** (:data:`MEASUREMENTS`): lid, brow, nose, lip and jaw distances in the frontal x-y plane
   (FaceMesh's monocular depth is used only for lip protrusion).
3. **AU evidence** (:data:`AU_RULES`): each AU is a signed, linear read-out of measurement changes
   relative to a neutral reference, in units of the scatter of neutral faces (1.0 = intensity 5 =
   five times the 90th-percentile displacement of FER+ neutral faces). Negative values mean "the
   opposite of this AU" and are kept until the very end, so person-specific calibration
   (:mod:`facebehavior.temporal.calibration`) can subtract a baseline in the same space.
4. **Intensity and probability**: ``intensity = clip(5·r, 0, 5)``; ``prob = sigmoid(3·(5·r − 1))``,
   i.e. 0.5 at intensity 1 (FACS trace level A).

Sides are subject-centric (``_r`` = subject's right, image left), as in
:mod:`facebehavior.face.landmarks.indices`. See ``docs/geometry.md`` for every measurement, every
mapping and what geometry cannot see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from facebehavior.face.landmarks import indices as ix
from facebehavior.face.pose import align_to_canonical
from facebehavior.schema import au_column

__all__ = [
    "MEASUREMENTS",
    "MEASUREMENT_UNITS",
    "MEASUREMENT_DOCS",
    "GEOMETRY_AUS",
    "SIDED_AUS",
    "CHANNELS",
    "AU_RULES",
    "AURule",
    "GeometryResult",
    "measure",
    "measure_frontal",
    "population_neutral",
    "population_spread",
    "raw_evidence",
    "evidence_to_intensity",
    "analyze_geometry",
    "evidence_columns",
    "measurement_columns",
    "geometry_columns",
    "weak_au_targets",
]

# Canonical inter-ocular distance (outer corners 33–263) in cm: the length unit of every measurement.
CANONICAL_IOD_CM = 8.891718
_NEUTRAL_FILE = Path(__file__).with_name("geometry_neutral.json")

# (name, unit, description). Order is the column order of every (F, M) measurement array.
_MEASUREMENT_TABLE: tuple[tuple[str, str, str], ...] = (
    (
        "eye_open_r",
        "ratio",
        "right eye aspect ratio: mean lid gap over the 5 mid-lid point pairs / eye width",
    ),
    ("eye_open_l", "ratio", "left eye aspect ratio"),
    ("lid_brow_r", "IOD", "right upper-lid centre to lower brow edge, vertical"),
    ("lid_brow_l", "IOD", "left upper-lid centre to lower brow edge, vertical"),
    ("brow_inner_r", "IOD", "right inner brow height above the inner eye corner"),
    ("brow_inner_l", "IOD", "left inner brow height above the inner eye corner"),
    ("brow_outer_r", "IOD", "right outer brow height above the outer eye corner"),
    ("brow_outer_l", "IOD", "left outer brow height above the outer eye corner"),
    ("brow_gap", "IOD", "horizontal distance between the inner brow heads (furrow: smaller)"),
    ("nasion_lip", "IOD", "nasal root (168) to upper-lip top (0), vertical (nose wrinkle: smaller)"),
    ("subnasal_lip", "IOD", "subnasale (2) to upper-lip top (0), vertical (upper-lip raise: smaller)"),
    (
        "corner_up_r",
        "IOD",
        "right lip corner height above the subnasale, compensated for lips part (higher: larger)",
    ),
    ("corner_up_l", "IOD", "left lip corner height above the subnasale, compensated for lips part"),
    ("corner_out_r", "IOD", "right lip corner horizontal distance from the facial midline"),
    ("corner_out_l", "IOD", "left lip corner horizontal distance from the facial midline"),
    ("mouth_width", "IOD", "distance between the outer lip corners"),
    ("lips_part", "IOD", "inner-lip gap: lower inner lip minus upper inner lip (3 central points each)"),
    ("jaw_drop", "IOD", "nose tip (1) to chin (152), vertical"),
    ("lip_pucker", "IOD", "protrusion of the lip centres (0, 17) in front of the lip corners (depth)"),
    ("lip_thickness", "IOD", "red-lip height, upper (0→13) plus lower (14→17); tighten/press: smaller"),
    (
        "cheek_raise_r",
        "IOD",
        "right lower-lid centre height relative to the eye corners (cheek raise: larger)",
    ),
    ("cheek_raise_l", "IOD", "left lower-lid centre height relative to the eye corners"),
    ("lip_chin", "IOD", "lower-lip bottom (17) to chin (152), vertical (chin raise proxy)"),
)
MEASUREMENTS: tuple[str, ...] = tuple(m[0] for m in _MEASUREMENT_TABLE)
MEASUREMENT_UNITS: dict[str, str] = {m[0]: m[1] for m in _MEASUREMENT_TABLE}
MEASUREMENT_DOCS: dict[str, str] = {m[0]: m[2] for m in _MEASUREMENT_TABLE}
_M = {name: i for i, name in enumerate(MEASUREMENTS)}

# Point sets derived from the shared index constants.
_MID_LID = slice(2, 7)  # the 5 central points of each 9-point lid (corner to corner)
_R_UPPER, _R_LOWER = np.array(ix.RIGHT_EYE_UPPER[_MID_LID]), np.array(ix.RIGHT_EYE_LOWER[_MID_LID])
_L_UPPER, _L_LOWER = np.array(ix.LEFT_EYE_UPPER[_MID_LID]), np.array(ix.LEFT_EYE_LOWER[_MID_LID])
# Brows: index 0..4 upper edge outer→inner, 5..9 lower edge outer→inner.
_R_BROW_INNER = [ix.RIGHT_EYEBROW[4], ix.RIGHT_EYEBROW[9]]
_L_BROW_INNER = [ix.LEFT_EYEBROW[4], ix.LEFT_EYEBROW[9]]
_R_BROW_OUTER = [ix.RIGHT_EYEBROW[i] for i in (0, 1, 5, 6)]
_L_BROW_OUTER = [ix.LEFT_EYEBROW[i] for i in (0, 1, 5, 6)]
_R_BROW_LOWER_MID = [ix.RIGHT_EYEBROW[i] for i in (6, 7, 8)]
_L_BROW_LOWER_MID = [ix.LEFT_EYEBROW[i] for i in (6, 7, 8)]
_NASION = ix.NOSE_RIDGE[0]
# Three central points of the inner upper and inner lower lip (LIPS_INNER runs corner→top→corner→bottom).
_UPPER_INNER_MID = [ix.LIPS_INNER[4], ix.LIPS_INNER[5], ix.LIPS_INNER[6]]
_LOWER_INNER_MID = [ix.LIPS_INNER[14], ix.LIPS_INNER[15], ix.LIPS_INNER[16]]
_MIDLINE = [_NASION, ix.NOSE_BOTTOM, ix.NOSE_TIP]
_CORNER_GAP_FOLLOW = 0.25


def _y(p: np.ndarray, ids: Any) -> np.ndarray:
    return p[:, ids, 1].mean(axis=1) if isinstance(ids, (list, np.ndarray)) else p[:, ids, 1]


def _x(p: np.ndarray, ids: Any) -> np.ndarray:
    return p[:, ids, 0].mean(axis=1) if isinstance(ids, (list, np.ndarray)) else p[:, ids, 0]


def _eye_open(p: np.ndarray, upper: np.ndarray, lower: np.ndarray, outer: int, inner: int) -> np.ndarray:
    gaps = np.linalg.norm(p[:, upper, :2] - p[:, lower, :2], axis=-1).mean(axis=1)
    width = np.linalg.norm(p[:, outer, :2] - p[:, inner, :2], axis=-1)
    return gaps / np.maximum(width, 1e-9)


def measure_frontal(frontal: np.ndarray) -> np.ndarray:
    """Measurements of already frontalised faces.

    Args:
        frontal: (F, 468, 3) landmarks in the canonical frame (cm; x right, y down, z away), as returned
            by :func:`facebehavior.face.pose.align_to_canonical`.

    Returns:
        (F, M) float64 in :data:`MEASUREMENTS` order; lengths in IOD units, eye openness as a ratio.
    """
    p = np.asarray(frontal, dtype=np.float64) / CANONICAL_IOD_CM
    out = np.empty((p.shape[0], len(MEASUREMENTS)))
    r_out, r_in, l_out, l_in = ix.RIGHT_EYE_OUTER, ix.RIGHT_EYE_INNER, ix.LEFT_EYE_OUTER, ix.LEFT_EYE_INNER
    out[:, _M["eye_open_r"]] = _eye_open(p, _R_UPPER, _R_LOWER, r_out, r_in)
    out[:, _M["eye_open_l"]] = _eye_open(p, _L_UPPER, _L_LOWER, l_out, l_in)
    out[:, _M["lid_brow_r"]] = _y(p, list(_R_UPPER)) - _y(p, _R_BROW_LOWER_MID)
    out[:, _M["lid_brow_l"]] = _y(p, list(_L_UPPER)) - _y(p, _L_BROW_LOWER_MID)
    out[:, _M["brow_inner_r"]] = _y(p, r_in) - _y(p, _R_BROW_INNER)
    out[:, _M["brow_inner_l"]] = _y(p, l_in) - _y(p, _L_BROW_INNER)
    out[:, _M["brow_outer_r"]] = _y(p, r_out) - _y(p, _R_BROW_OUTER)
    out[:, _M["brow_outer_l"]] = _y(p, l_out) - _y(p, _L_BROW_OUTER)
    out[:, _M["brow_gap"]] = _x(p, _L_BROW_INNER) - _x(p, _R_BROW_INNER)
    out[:, _M["nasion_lip"]] = _y(p, ix.UPPER_LIP_TOP) - _y(p, _NASION)
    out[:, _M["subnasal_lip"]] = _y(p, ix.UPPER_LIP_TOP) - _y(p, ix.NOSE_BOTTOM)
    mid_x = _x(p, _MIDLINE)
    out[:, _M["corner_out_r"]] = mid_x - _x(p, ix.MOUTH_RIGHT)
    out[:, _M["corner_out_l"]] = _x(p, ix.MOUTH_LEFT) - mid_x
    out[:, _M["mouth_width"]] = np.linalg.norm(p[:, ix.MOUTH_LEFT, :2] - p[:, ix.MOUTH_RIGHT, :2], axis=-1)
    out[:, _M["lips_part"]] = _y(p, _LOWER_INNER_MID) - _y(p, _UPPER_INNER_MID)
    # The corners ride down with the lower lip by ~1/4 of the inner-lip gap (slope of corner height on
    # lips_part: −0.20 … −0.33 over FER+ PublicTest neutral, surprise and fear faces); compensating it
    # keeps an open mouth from reading as AU15 and a smile with parted lips from losing AU12.
    corner_ref = _y(p, ix.NOSE_BOTTOM) + _CORNER_GAP_FOLLOW * out[:, _M["lips_part"]]
    out[:, _M["corner_up_r"]] = corner_ref - _y(p, ix.MOUTH_RIGHT)
    out[:, _M["corner_up_l"]] = corner_ref - _y(p, ix.MOUTH_LEFT)
    out[:, _M["jaw_drop"]] = _y(p, ix.CHIN) - _y(p, ix.NOSE_TIP)
    corners_z = p[:, [ix.MOUTH_RIGHT, ix.MOUTH_LEFT], 2].mean(axis=1)
    out[:, _M["lip_pucker"]] = corners_z - p[:, [ix.UPPER_LIP_TOP, ix.LOWER_LIP_BOTTOM], 2].mean(axis=1)
    out[:, _M["lip_thickness"]] = (_y(p, ix.UPPER_LIP_INNER) - _y(p, ix.UPPER_LIP_TOP)) + (
        _y(p, ix.LOWER_LIP_BOTTOM) - _y(p, ix.LOWER_LIP_INNER)
    )
    out[:, _M["cheek_raise_r"]] = _y(p, [r_out, r_in]) - _y(p, list(_R_LOWER))
    out[:, _M["cheek_raise_l"]] = _y(p, [l_out, l_in]) - _y(p, list(_L_LOWER))
    out[:, _M["lip_chin"]] = _y(p, ix.CHIN) - _y(p, ix.LOWER_LIP_BOTTOM)
    return out


def measure(points: Any) -> tuple[np.ndarray, np.ndarray]:
    """Frontalise FaceMesh landmarks and measure them.

    Args:
        points: (F, 468, 3) or (468, 3) FaceMesh landmarks (pixels, any pose), numpy or torch.

    Returns:
        ``(measurements, pose)``: (F, M) in :data:`MEASUREMENTS` order and (F, 3) pitch, yaw, roll (deg).
    """
    frontal, pose = align_to_canonical(points)
    return measure_frontal(frontal), pose


@lru_cache(maxsize=1)
def _neutral_file() -> dict[str, Any]:
    if not _NEUTRAL_FILE.is_file():
        raise FileNotFoundError(
            f"{_NEUTRAL_FILE} is missing; regenerate it with tools/geometry_neutral.py "
            "or pass neutral= explicitly"
        )
    return json.loads(_NEUTRAL_FILE.read_text())


def population_neutral() -> np.ndarray:
    """The shipped population neutral: (M,) median measurements of FER+ neutral faces (see its JSON)."""
    data = _neutral_file()
    missing = [m for m in MEASUREMENTS if m not in data["median"]]
    if missing:
        raise ValueError(f"{_NEUTRAL_FILE} lacks {missing}; regenerate it with tools/geometry_neutral.py")
    return np.array([data["median"][m] for m in MEASUREMENTS], dtype=np.float64)


# --- AU evidence ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AURule:
    """How one AU channel reads measurement changes.

    ``r = Σ_k w_k · sign_k · Δm_k / (5 · spread_k) / Σ_k w_k`` with ``Δm = m − m_neutral``. The spread
    of a measurement in the AU's direction is its population scatter over neutral faces,
    ``p90 − median`` (or ``median − p10`` for a decrease), from the shipped population neutral: so
    **intensity 1 (probability 0.5) sits at the 90th percentile of neutral faces** and intensity 5
    at five times that displacement.

    Attributes:
        terms: ((measurement, sign, weight), ...); sign +1 when the AU increases the measurement.
        relative_full_scale: if set, ``Δm / m_neutral / relative_full_scale`` replaces the spread
            scaling (eye closure: closing 80 % of the neutral lid opening is intensity 5).
        penalise_rise: subtract the positive part of this measurement's change in spread units; AU20
            uses it so a corner pulled *up and out* reads as AU12, not lip stretch.
    """

    terms: tuple[tuple[str, int, float], ...]
    relative_full_scale: float | None = None
    penalise_rise: str | None = None


def _sided(r: AURule, side: str) -> AURule:
    def s(name: str) -> str:
        return name[:-2] + "_" + side if name.endswith(("_r", "_l")) else name

    pen = None if r.penalise_rise is None else s(r.penalise_rise)
    return AURule(tuple((s(n), sg, w) for n, sg, w in r.terms), r.relative_full_scale, pen)


_SIDED_RULES: dict[int, AURule] = {
    1: AURule((("brow_inner_r", +1, 1.0),)),
    2: AURule((("brow_outer_r", +1, 1.0),)),
    # furrow down-weighted: on FER+ PublicTest it added noise (anger AUC 0.61 → 0.54 at equal weight)
    4: AURule((("brow_inner_r", -1, 1.0), ("brow_gap", -1, 0.25))),
    5: AURule((("eye_open_r", +1, 1.0),)),
    6: AURule((("cheek_raise_r", +1, 1.0),)),
    12: AURule((("corner_up_r", +1, 1.0),)),
    15: AURule((("corner_up_r", -1, 1.0),)),
    20: AURule((("corner_out_r", +1, 1.0),), penalise_rise="corner_up_r"),
    43: AURule((("eye_open_r", -1, 1.0),), relative_full_scale=0.8),
}
_BILATERAL_RULES: dict[int, AURule] = {
    9: AURule((("nasion_lip", -1, 1.0),)),
    10: AURule((("subnasal_lip", -1, 1.0),)),
    17: AURule((("lip_chin", +1, 1.0),)),
    23: AURule((("lip_thickness", -1, 1.0),)),
    25: AURule((("lips_part", +1, 1.0),)),
    26: AURule((("jaw_drop", +1, 1.0),)),
}
SIDED_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 12, 15, 20, 43, 45)
# AU45 (blink) and AU43 (eyes closed) look the same in one frame; the temporal layer tells them apart
# by closure duration (facebehavior.temporal.calibration.split_eye_closure).
GEOMETRY_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 10, 12, 15, 17, 20, 23, 25, 26, 43, 45)


def _channel_names() -> tuple[tuple[str, int, str], ...]:
    chans = []
    for au in GEOMETRY_AUS:
        chans.append((f"AU{au:02d}", au, ""))
    for au in SIDED_AUS:
        chans += [(f"AU{au:02d}L", au, "l"), (f"AU{au:02d}R", au, "r")]
    return tuple(chans)


_CHANNELS = _channel_names()
CHANNELS: tuple[str, ...] = tuple(c[0] for c in _CHANNELS)
"""Evidence channel names: ``AU12`` (both sides), then ``AU12L`` / ``AU12R`` (subject's left/right)."""


def _rule(au: int, side: str) -> AURule:
    au = 43 if au == 45 else au
    if au in _BILATERAL_RULES:
        return _BILATERAL_RULES[au]
    return _sided(_SIDED_RULES[au], side)


AU_RULES: dict[str, AURule] = {
    name: _rule(au, side) for name, au, side in _CHANNELS if side or au not in _SIDED_RULES and au != 45
}
"""Rule per channel; bilateral channels of sided AUs are the mean of their L and R channels."""


def population_spread() -> tuple[np.ndarray, np.ndarray]:
    """Scatter of neutral faces around the population neutral: ``(p90 − median, median − p10)``, each (M,)."""
    data = _neutral_file()
    med = population_neutral()
    p10 = np.array([data["p10"][m] for m in MEASUREMENTS])
    p90 = np.array([data["p90"][m] for m in MEASUREMENTS])
    return np.maximum(p90 - med, 1e-6), np.maximum(med - p10, 1e-6)


def _apply(
    rule: AURule, delta: np.ndarray, neutral: np.ndarray, up: np.ndarray, down: np.ndarray
) -> np.ndarray:
    num = np.zeros(delta.shape[0])
    wsum = 0.0
    for name, sign, weight in rule.terms:
        k = _M[name]
        d = sign * delta[:, k]
        if rule.relative_full_scale is not None:
            d = d / max(abs(neutral[k]), 1e-6) / rule.relative_full_scale
        else:
            d = d / (5.0 * (up[k] if sign > 0 else down[k]))
        num += weight * d
        wsum += weight
    r = num / wsum
    if rule.penalise_rise is not None:
        k = _M[rule.penalise_rise]
        r = r - np.maximum(delta[:, k] / (5.0 * up[k]), 0.0)
    return r


def raw_evidence(measurements: np.ndarray, neutral: np.ndarray | None = None) -> np.ndarray:
    """Signed AU evidence relative to a neutral reference.

    Args:
        measurements: (F, M) from :func:`measure`.
        neutral: (M,) or (F, M) neutral measurements; the shipped population neutral when None.

    Returns:
        (F, C) float64 in :data:`CHANNELS` order; 1.0 = intensity 5, 0 = neutral, < 0 = opposite motion.
    """
    m = np.asarray(measurements, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != len(MEASUREMENTS):
        raise ValueError(
            f"measurements must be (F, {len(MEASUREMENTS)}) in MEASUREMENTS order, got {m.shape}"
        )
    n = population_neutral() if neutral is None else np.asarray(neutral, dtype=np.float64)
    if n.shape[-1] != len(MEASUREMENTS):
        raise ValueError(f"neutral must have {len(MEASUREMENTS)} measurements, got shape {n.shape}")
    n_ref = n if n.ndim == 1 else np.median(n, axis=0)
    delta = m - n
    out = np.empty((m.shape[0], len(CHANNELS)))
    col = {name: i for i, name in enumerate(CHANNELS)}
    up, down = population_spread()
    for name, rule in AU_RULES.items():
        out[:, col[name]] = _apply(rule, delta, n_ref, up, down)
    for au in SIDED_AUS:
        out[:, col[f"AU{au:02d}"]] = 0.5 * (out[:, col[f"AU{au:02d}L"]] + out[:, col[f"AU{au:02d}R"]])
    return out


def evidence_to_intensity(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map signed evidence to FACS intensity and occurrence probability.

    Args:
        raw: (F, C) signed evidence (1.0 = intensity 5), possibly calibrated.

    Returns:
        ``(intensity, prob)``, both (F, C) float32: intensity in [0, 5]; probability
        ``sigmoid(3 · (5·raw − 1))``, 0.5 at intensity 1 (trace), 0.95 at intensity 2.
    """
    raw = np.asarray(raw, dtype=np.float64)
    intensity = np.clip(5.0 * raw, 0.0, 5.0)
    prob = 1.0 / (1.0 + np.exp(-3.0 * (5.0 * raw - 1.0)))
    return intensity.astype(np.float32), prob.astype(np.float32)


@dataclass(frozen=True)
class GeometryResult:
    """Geometry of a batch of faces.

    Attributes:
        measurements: (F, M) in :data:`MEASUREMENTS` order (IOD units / ratios).
        raw: (F, C) signed AU evidence in :data:`CHANNELS` order, relative to the neutral used.
        pose: (F, 3) pitch, yaw, roll in degrees.
    """

    measurements: np.ndarray
    raw: np.ndarray
    pose: np.ndarray


def analyze_geometry(points: Any, neutral: np.ndarray | None = None) -> GeometryResult:
    """Landmarks → measurements, signed AU evidence and head pose, for a batch.

    Args:
        points: (F, 468, 3) FaceMesh landmarks (numpy or torch), any pose/scale/position.
        neutral: (M,) neutral measurements; the population neutral when None.
    """
    meas, pose = measure(points)
    return GeometryResult(measurements=meas, raw=raw_evidence(meas, neutral), pose=pose)


def _channel_column(channel: str, kind: str) -> str:
    au = int(channel[2:4])
    base = au_column(au, kind)  # e.g. AU12_intensity
    side = channel[4:]
    return f"{base[:4]}{side}{base[4:]}_geom"


def evidence_columns(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Named output columns from (possibly calibrated) evidence.

    Returns:
        ``{"AU12_intensity_geom": (F,), "AU12_prob_geom": (F,), "AU12L_intensity_geom": ..., ...}``.
    """
    intensity, prob = evidence_to_intensity(raw)
    cols: dict[str, np.ndarray] = {}
    for j, ch in enumerate(CHANNELS):
        cols[_channel_column(ch, "intensity")] = intensity[:, j]
        cols[_channel_column(ch, "prob")] = prob[:, j]
    return cols


def measurement_columns(measurements: np.ndarray) -> dict[str, np.ndarray]:
    """``{"geom_eye_open_r": (F,), ...}`` float32 columns from (F, M) measurements."""
    m = np.asarray(measurements)
    return {f"geom_{name}": m[:, i].astype(np.float32) for i, name in enumerate(MEASUREMENTS)}


def geometry_columns(
    points: Any,
    *,
    face_ids: np.ndarray | None = None,
    calibrator: Any | None = None,
    neutral: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """What the pipeline calls with ``--geometry``: measurement and geometric AU columns for a batch.

    Args:
        points: (F, 468, 3) FaceMesh landmarks of the batch's faces, in temporal order per face.
        face_ids: (F,) track ids; required with a calibrator.
        calibrator: a :class:`facebehavior.temporal.calibration.PersonCalibrator` kept across the
            video's chunks (online, causal); None for single images (population neutral only).
        neutral: (M,) neutral measurements overriding the population neutral.

    Returns:
        Columns of length F: ``geom_<measurement>`` and ``AU..._{intensity,prob}_geom``.
    """
    res = analyze_geometry(points, neutral)
    raw = res.raw
    if calibrator is not None:
        if face_ids is None:
            raise ValueError("geometry_columns: face_ids are required when a calibrator is given")
        raw = calibrator.update(face_ids, raw)
    return {**measurement_columns(res.measurements), **evidence_columns(raw)}


def weak_au_targets(
    points: Any, aus: tuple[int, ...] | list[int], neutral: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geometric AU evidence as weak training targets in a model's AU order.

    Args:
        points: (F, 468, 3) FaceMesh landmarks.
        aus: the model's AU numbers, e.g. ``schema.AUS_17``.
        neutral: (M,) neutral measurements; the population neutral when None.

    Returns:
        ``(intensity, prob, mask)``: (F, A) float32 intensity 0–5 and probability (0 where geometry
        has no rule), and (A,) bool, True for the AUs geometry covers. Bilateral channels are used.
    """
    raw = analyze_geometry(points, neutral).raw
    intensity, prob = evidence_to_intensity(raw)
    col = {name: i for i, name in enumerate(CHANNELS)}
    a = len(aus)
    out_i = np.zeros((raw.shape[0], a), dtype=np.float32)
    out_p = np.zeros((raw.shape[0], a), dtype=np.float32)
    mask = np.zeros(a, dtype=bool)
    for k, au in enumerate(aus):
        name = f"AU{int(au):02d}"
        if name in col:
            out_i[:, k], out_p[:, k], mask[k] = intensity[:, col[name]], prob[:, col[name]], True
    return out_i, out_p, mask
