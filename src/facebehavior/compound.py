"""Zero-shot compound expression recognition (FaceBehaviorNet §4.5; Aff-Wild review §VI-B).

Given any model's AU probabilities, basic-expression probabilities and valence, every candidate class c
gets the score

    C_s(c) = [Σ_k p(AU_k|c)]⁻¹ Σ_k p(AU_k|x) p(AU_k|c)  +  p(emo1|x) + p(emo2|x)  +  b(c) · 0.5 (sign(v) + 1)

where p(AU_k|c) ∈ {0, 1} marks the prototypical and observational AUs of c in Du et al.'s (2014) table
(:data:`facebehavior.relatedness.COMPOUND_TABLE`, restricted to the AUs the model predicts), emo1/emo2
are c's two constituent basic emotions (:data:`facebehavior.relatedness.COMPOUND_CONSTITUENTS`), and
b(c) = 1 only for the positive-valence classes (happily surprised, happily disgusted). The prediction is
the arg-max.

Class sets: ``"rafdb"`` — RAF-DB's 11 compound classes; ``"emotionet"`` — the EmotioNet 2017 challenge's
6 basic + 10 compound classes. The paper leaves two details of the EmotioNet variant open; we define
them as follows (documented choices, not the paper's words):

* a basic class e is scored with emo1 = emo2 = e, i.e. its AU term + 2·p(e|x), so basic and compound
  classes carry expression terms of the same scale;
* the valence bonus, which the paper reserves for the classes "expected to have positive valence", also
  goes to ``happiness`` when it is a candidate (otherwise every positive happy face would be out-scored by
  happily surprised).

Valence exactly 0 gives the bonus 0.5 (sign(0) = 0; the paper's term is undefined there).

**Rejection (not in the paper).** The paper's rule is a closed set: every face, neutral ones included,
gets a compound label. With ``min_prob`` a class is a candidate only if both of its constituent basic
expressions have probability ≥ ``min_prob`` (a basic class of the EmotioNet set: its own
probability); the label is the best-scoring candidate, or :data:`NO_COMPOUND` (``"none"``) when no
class qualifies. What ``facebehavior analyze`` writes uses :data:`COMPOUND_MIN_PROB` = 0.2, chosen on
FER+ PrivateTest with the default model (3,573 faces with fewer than 5 "not a face" votes;
``tests/test_compound_rejection.py`` re-checks the happy faces): faces whose crowd votes give one
emotion ≥ 70 % get a compound label 6.6 % of the time (17.2 % at 0.1, 2.2 % at 0.3); faces whose
votes split ≥ 30 % / ≥ 30 % between the two emotions of a compound class 49 % of the time (79 % at
0.1, 26 % at 0.3). On faces voted ≥ 70 % happy the model's p(disgust) has its 99th percentile at
0.045 (max 0.15), so a smile is not labelled ``happily_disgusted``.

The scores C_s lie in [0, 4] and are not probabilities; their columns are named
``compound_score_<class>`` (:func:`compound_columns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facebehavior.metrics._common import ArrayLike, to_numpy
from facebehavior.relatedness import (
    BASIC_6,
    COMPOUND_CONSTITUENTS,
    COMPOUND_TABLE,
    EMOTIONET_CLASSES_16,
    RAFDB_COMPOUND_11,
    RelatednessTable,
)
from facebehavior.schema import AUS_17, EXPRESSIONS_7

__all__ = [
    "CompoundPrediction",
    "CLASS_SETS",
    "POSITIVE_VALENCE_CLASSES",
    "compound_scores",
    "compound_columns",
    "compound_output_columns",
    "compound_supported",
    "COMPOUND_LABEL_COLUMN",
    "COMPOUND_MIN_PROB",
    "NO_COMPOUND",
]

COMPOUND_LABEL_COLUMN = "compound"
COMPOUND_MIN_PROB = 0.2
NO_COMPOUND = "none"

CLASS_SETS: dict[str, tuple[str, ...]] = {"rafdb": RAFDB_COMPOUND_11, "emotionet": EMOTIONET_CLASSES_16}
POSITIVE_VALENCE_CLASSES: tuple[str, ...] = ("happily_surprised", "happily_disgusted", "happiness")


@dataclass(frozen=True)
class CompoundPrediction:
    """Zero-shot compound expression output for N faces.

    Attributes:
        classes: candidate class names, column order of ``scores``.
        scores: ``(N, C)`` candidate scores C_s (in [0, 4]; not probabilities).
        labels: ``(N,)`` int64 index into ``classes`` of the best-scoring candidate, −1 where the
            rejection rule left no candidate.
    """

    classes: tuple[str, ...]
    scores: np.ndarray  # (N, C) candidate scores
    labels: np.ndarray  # (N,) class index, -1 = none

    @property
    def names(self) -> list[str]:
        """Predicted class name per face (:data:`NO_COMPOUND` where rejected)."""
        return [self.classes[i] if i >= 0 else NO_COMPOUND for i in self.labels]


def compound_columns(classes: str | Sequence[str] = "rafdb") -> list[str]:
    """Output column names ``compound_score_<class>`` for a class set (name or explicit list).

    The scores are not probabilities (they reach 4), hence ``score`` in the name.
    """
    names = CLASS_SETS[classes] if isinstance(classes, str) else tuple(classes)
    return [f"compound_score_{c}" for c in names]


def compound_scores(
    au_probs: ArrayLike,
    expr_probs: ArrayLike,
    valence: ArrayLike,
    *,
    classes: str | Sequence[str] = "rafdb",
    aus: Sequence[int] = AUS_17,
    emotions: Sequence[str] = EXPRESSIONS_7,
    table: RelatednessTable = COMPOUND_TABLE,
    positive_classes: Sequence[str] = POSITIVE_VALENCE_CLASSES,
    min_prob: float | None = None,
) -> CompoundPrediction:
    """Candidate scores and arg-max label for every face (see the module docstring for the formula).

    Args:
        au_probs: ``(N, A)`` AU occurrence probabilities in the order ``aus``.
        expr_probs: ``(N, E)`` basic-expression probabilities in the order ``emotions`` (7, or 8 with
            contempt, which no candidate uses).
        valence: ``(N,)`` valence in [−1, 1].
        classes: ``"rafdb"`` (11 compound), ``"emotionet"`` (6 basic + 10 compound) or a list of class
            names from ``table``.
        aus, emotions: column orders of the inputs.
        table: AU table for the candidate classes (Du et al. 2014 by default).
        positive_classes: classes receiving the valence bonus (only those among ``classes`` matter).
        min_prob: rejection threshold (module docstring): a class is a candidate only if both its
            constituent expressions have probability ≥ ``min_prob``; None: the paper's closed set.

    Returns:
        :class:`CompoundPrediction`.

    Raises:
        ValueError: shapes disagree, a class is unknown, or a class's AUs are all outside ``aus``.
    """
    if isinstance(classes, str):
        if classes not in CLASS_SETS:
            raise ValueError(f"unknown compound class set {classes!r}; valid: {sorted(CLASS_SETS)} or a list")
        names = CLASS_SETS[classes]
    else:
        names = tuple(classes)
    au = to_numpy(au_probs, "au_probs")
    ex = to_numpy(expr_probs, "expr_probs")
    v = to_numpy(valence, "valence").reshape(-1)
    if au.ndim != 2 or au.shape[1] != len(aus):
        raise ValueError(f"au_probs must be (N, {len(aus)}) in the order of aus, got {au.shape}")
    if ex.ndim != 2 or ex.shape[1] != len(emotions):
        raise ValueError(f"expr_probs must be (N, {len(emotions)}) in the order of emotions, got {ex.shape}")
    if not (au.shape[0] == ex.shape[0] == v.shape[0]):
        raise ValueError(
            f"au_probs, expr_probs and valence disagree on N: {au.shape[0]}, {ex.shape[0]}, {len(v)}"
        )
    for c in names:
        if c not in table.entries:
            raise ValueError(
                f"compound class {c!r} is not in table {table.name!r}; it lists {list(table.entries)}"
            )
    mat = table.matrix(names, tuple(aus))  # (C, A) ∈ {0, 1}
    n_aus = mat.sum(axis=1)
    if np.any(n_aus == 0):
        raise ValueError(
            f"classes {[c for c, k in zip(names, n_aus, strict=True) if k == 0]} use no AU in {aus}"
        )
    emo_idx = {e: i for i, e in enumerate(emotions)}
    pair = np.zeros((len(names), len(emotions)))
    for ci, c in enumerate(names):
        constituents = (c, c) if c in BASIC_6 else COMPOUND_CONSTITUENTS[c]
        for e in constituents:
            if e not in emo_idx:
                raise ValueError(f"class {c!r} needs p({e}) but emotions {tuple(emotions)} lack it")
            pair[ci, emo_idx[e]] += 1.0
    bonus = np.array([1.0 if c in positive_classes else 0.0 for c in names])
    scores = au @ mat.T / n_aus[None, :] + ex @ pair.T + 0.5 * (np.sign(v)[:, None] + 1) * bonus[None, :]
    if min_prob is None:
        return CompoundPrediction(classes=names, scores=scores, labels=scores.argmax(axis=1).astype(np.int64))
    if not 0.0 <= float(min_prob) <= 1.0:
        raise ValueError(f"min_prob must be a probability in [0, 1], got {min_prob}")
    # The weaker constituent of each class: min over the (one or two) emotions the class pairs.
    weakest = np.where(pair[None] > 0, ex[:, None, :], np.inf).min(axis=2)  # (N, C)
    allowed = weakest >= float(min_prob)
    masked = np.where(allowed, scores, -np.inf)
    labels = np.where(allowed.any(axis=1), masked.argmax(axis=1), -1).astype(np.int64)
    return CompoundPrediction(classes=names, scores=scores, labels=labels)


def compound_output_columns(
    expr_probs: np.ndarray,
    emotions: Sequence[str],
    au_probs: np.ndarray,
    aus: Sequence[int],
    valence: np.ndarray,
    classes: str | Sequence[str] = "rafdb",
    min_prob: float | None = COMPOUND_MIN_PROB,
) -> dict[str, np.ndarray]:
    """Per-face output columns of the zero-shot compound scores (what ``facebehavior analyze`` writes).

    Args:
        expr_probs: ``(N, E)`` expression probabilities in the order ``emotions``.
        emotions: expression label order (must contain every constituent emotion of ``classes``).
        au_probs: ``(N, A)`` AU occurrence probabilities in the order ``aus``; AUs outside the
            compound table are ignored.
        aus: AU codes of the columns of ``au_probs``.
        valence: ``(N,)`` valence in [−1, 1].
        classes: candidate class set (see :func:`compound_scores`).
        min_prob: rejection threshold on the constituents' probabilities (module docstring);
            None: the paper's closed set.

    Returns:
        ``compound_score_<class>`` → ``(N,)`` float32 score for every candidate class, and
        ``compound`` → ``(N,)`` object array of the chosen class names or ``"none"``.
    """
    used = set().union(*(set(e) for e in COMPOUND_TABLE.entries.values()))
    keep = [k for k, a in enumerate(aus) if a in used]
    if not keep:
        raise ValueError(f"none of the model's AUs {tuple(aus)} occurs in the compound table")
    pred = compound_scores(
        np.asarray(au_probs)[:, keep],
        expr_probs,
        valence,
        classes=classes,
        aus=tuple(aus[k] for k in keep),
        emotions=tuple(emotions),
        min_prob=min_prob,
    )
    cols = {
        name: pred.scores[:, i].astype(np.float32) for i, name in enumerate(compound_columns(pred.classes))
    }
    cols[COMPOUND_LABEL_COLUMN] = np.asarray(pred.names, dtype=object)
    return cols


def compound_supported(
    emotions: Sequence[str], aus: Sequence[int | None], classes: str | Sequence[str] = "rafdb"
) -> bool:
    """Whether a model with these expression labels and AU codes can score ``classes``.

    Every candidate needs its constituent emotions among ``emotions`` and at least one of its AUs
    among ``aus`` (``None`` entries, labels that are not AU codes, are ignored).
    """
    names = CLASS_SETS[classes] if isinstance(classes, str) else tuple(classes)
    have_e, have_a = set(emotions), {a for a in aus if a is not None}
    for c in names:
        constituents = (c,) if c in BASIC_6 else COMPOUND_CONSTITUENTS.get(c, ())
        if c not in COMPOUND_TABLE.entries or not constituents or not set(constituents) <= have_e:
            return False
        if not set(COMPOUND_TABLE.entries[c]) & have_a:
            return False
    return True
