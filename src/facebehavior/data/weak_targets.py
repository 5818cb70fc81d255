"""Derived training targets for corpora that only carry expression labels (label-table hooks).

Each function here is a training-recipe hook (``SetConfig.hooks``): it takes a loaded
:class:`~facebehavior.data.labels.LabelTable` and its adapter and returns the table with extra
targets filled in. They turn FER+ crowd votes (and optionally precomputed geometric evidence) into
the AU and valence/arousal targets the default model is trained with:

- :func:`va_from_votes` — valence/arousal = expectation of published per-emotion coordinates
  under the vote distribution (:mod:`facebehavior.data.va_targets`);
- :func:`aus_from_votes` — soft AU targets ``Σ_e p(e|votes) · w(AU|e)`` through relatedness table A
  (Du et al. 2014: prototypical AUs weight 1, observational AUs their frequency ``w``), i.e. the
  probability that a rater population showing that vote distribution displays the AU. Masked on
  the AUs table A relates to some emotion, on rows with emotion votes;
- :func:`aus_from_geometry` — blends in geometric AU evidence from FaceMesh landmarks
  (:mod:`facebehavior.face.geometry`) cached by ``tools/fer_geometry_targets.py``, and supplies the
  AUs table A does not cover (AU43, AU45) on the cached rows.

All three keep every existing label and add to it; they are pure functions of their inputs.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from facebehavior.data.labels import LabelTable
from facebehavior.data.va_targets import va_from_distribution

# The AU columns the FER+ hooks fill: v1's AU head (v2's appearance head), AU43 and AU45 included.
from facebehavior.models.default import APPEARANCE_AUS as DEFAULT_AUS
from facebehavior.relatedness import get_table
from facebehavior.schema import BLENDSHAPE_NAMES, EXPRESSIONS_8

__all__ = [
    "DEFAULT_AUS",
    "GEOMETRY_CACHE_ENV",
    "GEOMETRY_BLEND",
    "table_a_au_targets",
    "va_from_votes",
    "aus_from_votes",
    "aus_from_geometry",
    "blendshape_au_evidence",
    "blended_au_targets",
    "weak_au_labels",
]

GEOMETRY_CACHE_ENV = "FACEBEHAVIOR_FER_GEOMETRY"
# Weight of the geometric evidence where it and table A both give a target (it is noisy at 48 px).
GEOMETRY_BLEND = 0.3
_MIN_PRESENCE = 0.5


def _require_dist(table: LabelTable, who: str) -> np.ndarray:
    if table.expression_dist is None:
        raise ValueError(f"{who}: table {table.corpus}/{table.split} has no expression_dist (FER+ votes)")
    return np.asarray(table.expression_dist, np.float64)


def table_a_au_targets(
    dist: np.ndarray, aus: tuple[int, ...] = DEFAULT_AUS, emotions: tuple[str, ...] = EXPRESSIONS_8
) -> tuple[np.ndarray, np.ndarray]:
    """Soft AU targets from an expression distribution through relatedness table A.

    Args:
        dist: ``(N, E)`` non-negative expression weights (rows normalised here).

    Returns:
        ``(targets, covered)``: ``(N, A)`` float32 ``Σ_e p(e) w(AU|e)`` in [0, 1] and ``(A,)`` bool,
        True for the AUs table A relates to at least one emotion.
    """
    tab = get_table("A")
    w = np.zeros((len(emotions), len(aus)))
    for i, e in enumerate(emotions):
        if e in tab.emotions:
            for au, wt in tab.weights(e).items():
                if au in aus:
                    w[i, aus.index(au)] = wt
    p = np.asarray(dist, np.float64)
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-12)
    return (p @ w).astype(np.float32), w.sum(0) > 0


def va_from_votes(table: LabelTable, adapter: Any = None) -> LabelTable:
    """Hook: valence/arousal targets from the expression distribution (rows with votes)."""
    dist = _require_dist(table, "va_from_votes")
    has = dist.sum(1) > 0
    va = np.zeros((len(table), 2), np.float32)
    if has.any():
        va[has] = va_from_distribution(dist[has], EXPRESSIONS_8)
    keep = table.va_mask.astype(bool)
    va = np.where(keep[:, None], table.va, va).astype(np.float32)
    return replace(table, va=va, va_mask=keep | has)


def _with_aus(table: LabelTable, aus: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The table's AU targets/mask re-indexed to ``aus`` (missing columns unannotated)."""
    occ = np.zeros((len(table), len(aus)), np.float32)
    mask = np.zeros((len(table), len(aus)), bool)
    for j, au in enumerate(table.aus):
        if au in aus:
            occ[:, aus.index(au)] = table.au_occurrence[:, j]
            mask[:, aus.index(au)] = table.au_mask[:, j]
    return occ, mask


def aus_from_votes(table: LabelTable, adapter: Any = None) -> LabelTable:
    """Hook: soft AU targets through relatedness table A on rows with emotion votes.

    The AU columns become :data:`DEFAULT_AUS`; AUs that already have labels keep them.
    """
    dist = _require_dist(table, "aus_from_votes")
    aus = DEFAULT_AUS
    occ, mask = _with_aus(table, aus)
    target, covered = table_a_au_targets(dist, aus)
    new = (dist.sum(1) > 0)[:, None] & covered[None, :] & ~mask
    occ = np.where(new, target, occ).astype(np.float32)
    return replace(table, aus=aus, au_occurrence=occ, au_mask=mask | new)


def aus_from_geometry(table: LabelTable, adapter: Any = None) -> LabelTable:
    """Hook: blend cached geometric AU evidence into the AU targets of the cached FER2013 rows.

    The cache (``tools/fer_geometry_targets.py``) is found through the environment variable
    ``FACEBEHAVIOR_FER_GEOMETRY``. Rows whose FaceMesh presence is below 0.5 are skipped. Where a
    target exists already (table A), the new target is ``(1 − 0.3)·old + 0.3·geometry``; AUs only
    geometry measures (AU43, AU45) get the geometric probability alone.

    Raises:
        FileNotFoundError: the variable is unset or names a missing file.
        ValueError: the table's images are not FER2013 array rows.
    """
    path = os.environ.get(GEOMETRY_CACHE_ENV)
    if not path or not Path(path).is_file():
        raise FileNotFoundError(
            f"aus_from_geometry: set {GEOMETRY_CACHE_ENV} to the cache written by "
            f"`python tools/fer_geometry_targets.py --out FILE` (got {path!r})"
        )
    g = np.load(path)
    cache_aus = tuple(int(a) for a in g["aus"])
    aus = DEFAULT_AUS
    occ, mask = _with_aus(table, aus)
    try:
        rows = np.array([int(str(s).split(":")[-1]) for s in table.image], np.int64)
    except ValueError:
        raise ValueError("aus_from_geometry: table images are not FER2013 array rows ('<array>:i')") from None
    pos = {int(r): i for i, r in enumerate(g["rows"])}
    hit = np.array([pos.get(int(r), -1) for r in rows])
    ok = hit >= 0
    ok[ok] = g["presence"][hit[ok]] >= _MIN_PRESENCE
    for k, au in enumerate(aus):
        if au not in cache_aus or not bool(g["mask"][cache_aus.index(au)]):
            continue
        geo = g["prob"][hit[ok], cache_aus.index(au)].astype(np.float32)
        had = mask[ok, k]
        occ[ok, k] = np.where(had, (1 - GEOMETRY_BLEND) * occ[ok, k] + GEOMETRY_BLEND * geo, geo)
        mask[ok, k] = True
    return replace(table, aus=aus, au_occurrence=occ, au_mask=mask)


def blendshape_au_evidence(blendshapes: np.ndarray, aus: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """FACS-mapped blendshape evidence per AU (``models.fusion.ARKIT_TO_FACS``).

    Args:
        blendshapes: ``(N, 52)`` Face Landmarker scores in ``schema.BLENDSHAPE_NAMES`` order.
        aus: FACS numbers.

    Returns:
        ``(evidence, covered)``: ``(N, A)`` mean of each AU's mapped scores in [0, 1] and ``(A,)``
        bool, True for AUs with a mapping. AU25 (lips part) reads only the openers (``mouthClose``
        argues against it, it is not evidence for it).
    """
    from facebehavior.models.fusion import ARKIT_TO_FACS

    out = np.zeros((len(blendshapes), len(aus)), np.float32)
    covered = np.zeros(len(aus), bool)
    for k, au in enumerate(aus):
        names = [n for n in ARKIT_TO_FACS.get(au, ()) if n != "mouthClose"]
        if names:
            out[:, k] = blendshapes[:, [BLENDSHAPE_NAMES.index(n) for n in names]].mean(1)
            covered[k] = True
    return out, covered


def blended_au_targets(
    dist: np.ndarray, blendshapes: np.ndarray, aus: tuple[int, ...], blend: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Soft AU targets: table A under ``dist`` blended with FACS-mapped blendshape evidence.

    Where both exist the target is ``(1 - blend) · table_A + blend · evidence``; AUs table A does not
    cover (AU43, AU45) take the evidence alone; faces without blendshapes (NaN rows) keep table A.

    Args:
        dist: ``(N, E)`` expression distribution in ``EXPRESSIONS_8`` order.
        blendshapes: ``(N, 52)``, NaN rows where the Face Landmarker found no face.
        aus: FACS numbers of the targets.

    Returns:
        ``(targets, mask)``, both ``(N, A)`` (float32, bool).
    """
    ta, ta_cov = table_a_au_targets(dist, aus)
    has = np.isfinite(blendshapes).all(1)
    ev, ev_cov = blendshape_au_evidence(np.nan_to_num(blendshapes), aus)
    both = has[:, None] & ta_cov[None] & ev_cov[None]
    only_ev = has[:, None] & ~ta_cov[None] & ev_cov[None]
    tgt = np.where(both, (1 - blend) * ta + blend * ev, ta)
    tgt = np.where(only_ev, ev, tgt)
    mask = np.broadcast_to(ta_cov[None], tgt.shape) | only_ev
    return tgt.astype(np.float32), mask


def weak_au_labels(
    expression: np.ndarray, blendshapes: np.ndarray, aus: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Binary weak AU occurrence labels from confident expression labels (for calibration and checks).

    An AU is *present* on a face whose emotion has it as a prototypical AU in table A (weight 1;
    for AUs that are prototypical of no emotion, weight >= 0.5), *absent* on neutral faces and on
    faces whose emotion table A does not relate to it, and unlabelled otherwise (observational).
    AU45 (blink) is labelled from the blendshape teacher instead: present when the mean
    ``eyeBlink`` score is above 0.5, absent below 0.3. AUs left without a single positive are
    unlabelled everywhere.

    Args:
        expression: ``(N,)`` index into ``EXPRESSIONS_8`` (−1: no confident label).
        blendshapes: ``(N, 52)`` (NaN rows: none).
        aus: FACS numbers.

    Returns:
        ``(labels, mask)``: ``(N, A)`` float32 0/1 and bool.
    """
    tab = get_table("A")
    n = len(expression)
    y = np.zeros((n, len(aus)), np.float32)
    m = np.zeros((n, len(aus)), bool)
    for k, au in enumerate(aus):
        w = {e: (tab.weights(e).get(au, 0.0) if e in tab.emotions else 0.0) for e in EXPRESSIONS_8}
        proto = 1.0 if max(w.values()) >= 1.0 else 0.5
        for i, e in enumerate(EXPRESSIONS_8):
            rows = expression == i
            if e == "neutral" or w[e] == 0.0:
                m[rows, k] = True
            elif w[e] >= proto:
                y[rows, k] = 1.0
                m[rows, k] = True
        if au == 45:
            blink = blendshapes[
                :, [BLENDSHAPE_NAMES.index("eyeBlinkLeft"), BLENDSHAPE_NAMES.index("eyeBlinkRight")]
            ]
            blink = blink.mean(1)
            ok = np.isfinite(blink)
            b = np.nan_to_num(blink)
            y[:, k] = (b > 0.5).astype(np.float32)
            m[:, k] = ok & ((b > 0.5) | (b < 0.3))
    m[:, (y * m).sum(0) == 0] = False
    return y, m
