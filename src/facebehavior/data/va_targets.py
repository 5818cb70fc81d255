"""Valence/arousal targets derived from categorical expression evidence.

No valence/arousal-annotated face corpus ships with facebehavior, so the default model's VA head is
trained on *derived* targets: each expression category is placed at a published valence/arousal
coordinate and an image's target is the expectation of those coordinates under its expression
label distribution (e.g. the FER+ crowd votes). The head therefore learns where an expression sits
on the circumplex, not an independent affect judgement; retrain it on AffectNet / Aff-Wild2 VA
labels for real dimensional affect.

Source of the coordinates: A. B. Warriner, V. Kuperman, M. Brysbaert, "Norms of valence, arousal,
and dominance for 13,915 English lemmas", Behavior Research Methods 45:1191–1207 (2013),
doi:10.3758/s13428-012-0314-x, supplementary file ``Ratings_Warriner_et_al.csv``, columns
``V.Mean.Sum`` and ``A.Mean.Sum`` (mean rating over all raters, 9-point scales: valence 1 = unhappy …
9 = happy, arousal 1 = calm … 9 = excited). The emotion words used are the adjectives a rater would
apply to the face (``happy``, ``sad``, ``angry``, ``afraid``, ``disgusted``, ``surprised``,
``neutral``); ``contempt`` is the only form of that category in the norms.

Scale conversion: ``v = (V - 5) / 4`` and ``a = (A - 5) / 4`` map the 1…9 ratings linearly onto
[-1, 1] with the scale midpoint 5 at 0 (the convention of AffectNet / Aff-Wild2 annotations).
"""

from __future__ import annotations

import numpy as np

from facebehavior.schema import EXPRESSIONS_8

__all__ = [
    "WARRINER_2013",
    "EMOTION_VA",
    "warriner_to_unit",
    "expression_va_table",
    "va_from_distribution",
    "va_from_ferplus_votes",
    "FERPLUS_TO_EXPRESSIONS_8",
    "ferplus_to_expressions8",
]

# category → (word rated, V.Mean.Sum, A.Mean.Sum), values copied from Ratings_Warriner_et_al.csv.
WARRINER_2013: dict[str, tuple[str, float, float]] = {
    "neutral": ("neutral", 5.50, 3.45),
    "anger": ("angry", 2.53, 6.20),
    "disgust": ("disgusted", 2.68, 4.89),
    "fear": ("afraid", 2.25, 5.12),
    "happiness": ("happy", 8.47, 6.05),
    "sadness": ("sad", 2.10, 3.49),
    "surprise": ("surprised", 6.57, 5.95),
    "contempt": ("contempt", 3.22, 4.61),
}


def warriner_to_unit(rating: float | np.ndarray) -> float | np.ndarray:
    """Map a 1…9 Warriner rating onto [-1, 1] (5 → 0, 1 → -1, 9 → 1)."""
    return (np.asarray(rating, dtype=np.float64) - 5.0) / 4.0


# category → (valence, arousal) in [-1, 1].
EMOTION_VA: dict[str, tuple[float, float]] = {
    k: (float(warriner_to_unit(v)), float(warriner_to_unit(a))) for k, (_, v, a) in WARRINER_2013.items()
}

# FER+ vote columns 0..7 (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt)
# → index in EXPRESSIONS_8. Columns 8 (unknown) and 9 (not a face) carry no expression.
FERPLUS_TO_EXPRESSIONS_8: tuple[int, ...] = tuple(
    EXPRESSIONS_8.index(n)
    for n in ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
)


def expression_va_table(labels: tuple[str, ...] = EXPRESSIONS_8) -> np.ndarray:
    """``(E, 2)`` valence/arousal coordinates of each expression label, in the given order.

    Raises:
        KeyError: a label has no published coordinate; the message lists the known ones.
    """
    try:
        return np.array([EMOTION_VA[name] for name in labels], dtype=np.float32)
    except KeyError as e:
        raise KeyError(
            f"no valence/arousal coordinate for expression {e.args[0]!r}; known: {sorted(EMOTION_VA)}"
        ) from None


def va_from_distribution(probs: np.ndarray, labels: tuple[str, ...] = EXPRESSIONS_8) -> np.ndarray:
    """Expected (valence, arousal) under an expression distribution.

    Args:
        probs: ``(N, E)`` non-negative weights per expression (votes or probabilities) in ``labels``
            order; each row is normalised to sum 1.

    Returns:
        ``(N, 2)`` float32 valence, arousal in [-1, 1]. Rows whose weights sum to 0 get NaN (no
        expression evidence): mask them out of the VA loss rather than inventing a target.

    Raises:
        ValueError: wrong shape or negative weights.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(labels):
        raise ValueError(f"probs must have shape (N, {len(labels)}), got {p.shape}")
    if (p < 0).any():
        raise ValueError("probs must be non-negative")
    total = p.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = p / total
    out = p @ expression_va_table(labels).astype(np.float64)
    out[total[:, 0] == 0] = np.nan
    return out.astype(np.float32)


def ferplus_to_expressions8(votes: np.ndarray) -> np.ndarray:
    """Reorder FER+ vote columns ``(N, 10)`` to ``(N, 8)`` counts in ``EXPRESSIONS_8`` order."""
    v = np.asarray(votes)
    if v.ndim != 2 or v.shape[1] < 8:
        raise ValueError(f"FER+ votes must have shape (N, 10) (or at least 8 columns), got {v.shape}")
    out = np.zeros((v.shape[0], 8), dtype=np.float64)
    out[:, list(FERPLUS_TO_EXPRESSIONS_8)] = v[:, :8]
    return out


def va_from_ferplus_votes(votes: np.ndarray) -> np.ndarray:
    """VA targets ``(N, 2)`` from FER+ vote counts ``(N, 10)``; rows without emotion votes are NaN.

    ``unknown`` and ``not a face`` votes are ignored: the target is the expectation over the
    emotion votes only.
    """
    return va_from_distribution(ferplus_to_expressions8(votes), EXPRESSIONS_8)
