"""AU–emotion relatedness, as plain data.

Everything the task-coupling losses (:mod:`facebehavior.losses.coupling`) and the zero-shot compound
expression scorer (:mod:`facebehavior.compound`) know about how action units relate to emotions lives
here, in one place, as :class:`RelatednessTable` values that round-trip through JSON so users can supply
their own.

A table maps an emotion name to ``{AU number: weight}``. A weight of exactly ``1.0`` marks a
*prototypical* AU (active in every annotator's / subject's response); a weight in ``(0, 1)`` marks an
*observational* AU and is the fraction of annotators / subjects / frames showing it.

Shipped tables:

* :data:`TABLE_A` — basic emotions, Du, Tao & Martinez (2014) as quoted in FaceBehaviorNet's Table 1
  (Kollias et al., "Face Behavior à la carte", BMVC 2020). Prototypical AUs plus observational AUs with
  the fraction of subjects using them.
* :data:`TABLE_B` — basic emotions, empirical relatedness inferred from Aff-Wild2 (FaceBehaviorNet
  Table 3). Every AU carries the fraction of frames of that expression in which it is active; there is no
  prototypical/observational split, so every entry is "observational" with weight ``w``.
* :data:`COMPOUND_TABLE` — the 21 emotion categories (6 basic + 15 compound; 22 with neutral) of
  S. Du, Y. Tao, A. M. Martinez, "Compound facial expressions of emotion", PNAS 111(15):E1454–E1462, 2014,
  Table 1: the AUs active in more than 70% of the 230 subjects (prototypical, weight 1) and the
  inter-subject variants with the percentage of subjects using them (observational). FaceBehaviorNet §4.5
  uses this table's AUs ("the prototypical (and observational) AUs that are associated with this compound
  class according to [12]") for zero-shot compound expression recognition.

Class sets: :data:`RAFDB_COMPOUND_11` (RAF-DB's 11 compound classes) and :data:`EMOTIONET_COMPOUND_10`
(the 10 compound classes of the EmotioNet 2017 challenge, which adds the 6 basic ones), each compound with
its two constituent basic emotions in :data:`COMPOUND_CONSTITUENTS`.

Emotion names are the canonical ones of :data:`facebehavior.schema.EXPRESSIONS_7`. ``neutral`` and
``contempt`` have no entry in any shipped table: their rows of :meth:`RelatednessTable.matrix` are all zero
(no AU is implied by them), which is how the coupling losses treat them (see
:mod:`facebehavior.losses.coupling`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from facebehavior.schema import AUS_17, EXPRESSIONS_7

__all__ = [
    "RelatednessTable",
    "TABLE_A",
    "TABLE_B",
    "COMPOUND_TABLE",
    "COMPOUND_CONSTITUENTS",
    "RAFDB_COMPOUND_11",
    "EMOTIONET_COMPOUND_10",
    "EMOTIONET_CLASSES_16",
    "BASIC_6",
    "get_table",
    "au_given_emotion",
]

BASIC_6: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")


@dataclass(frozen=True)
class RelatednessTable:
    """Emotion → {AU: weight} relatedness table.

    Attributes:
        name: short identifier (e.g. ``"du2014_basic"``).
        source: citation of where the numbers come from.
        entries: ``{emotion: {au_number: weight}}``; weight ``1.0`` = prototypical AU, ``0 < w < 1`` =
            observational AU observed with frequency ``w``. Read-only.
    """

    name: str
    source: str
    entries: Mapping[str, Mapping[int, float]] = field(repr=False)

    def __post_init__(self) -> None:
        clean: dict[str, Mapping[int, float]] = {}
        for emo, aus in self.entries.items():
            if not isinstance(emo, str) or not emo:
                raise ValueError(
                    f"relatedness table {self.name!r}: emotion names must be strings, got {emo!r}"
                )
            row: dict[int, float] = {}
            for au, w in dict(aus).items():
                try:
                    au_i, w_f = int(au), float(w)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"relatedness table {self.name!r}, emotion {emo!r}: AU {au!r} has weight {w!r}; "
                        "AU keys must be FACS numbers and weights numbers in (0, 1]"
                    ) from None
                if not (0.0 < w_f <= 1.0) or math.isnan(w_f):
                    raise ValueError(
                        f"relatedness table {self.name!r}, emotion {emo!r}, AU{au_i}: weight {w_f} is not in "
                        "(0, 1]; use 1.0 for prototypical AUs and the observed fraction for the others"
                    )
                row[au_i] = w_f
            if not row:
                raise ValueError(f"relatedness table {self.name!r}: emotion {emo!r} lists no AUs")
            clean[emo] = MappingProxyType(row)
        object.__setattr__(self, "entries", MappingProxyType(clean))

    def __hash__(self) -> int:
        return hash(
            (self.name, self.source, tuple((e, tuple(sorted(r.items()))) for e, r in self.entries.items()))
        )

    # ---- queries -------------------------------------------------------------------------------
    @property
    def emotions(self) -> tuple[str, ...]:
        """Emotion names in table order."""
        return tuple(self.entries)

    @property
    def aus(self) -> tuple[int, ...]:
        """Sorted union of the AUs any emotion uses."""
        return tuple(sorted({au for row in self.entries.values() for au in row}))

    def prototypical(self, emotion: str) -> tuple[int, ...]:
        """AUs with weight 1 for ``emotion`` (sorted)."""
        return tuple(sorted(au for au, w in self._row(emotion).items() if w == 1.0))

    def observational(self, emotion: str) -> dict[int, float]:
        """AUs with weight < 1 for ``emotion``, with their weights."""
        return {au: w for au, w in sorted(self._row(emotion).items()) if w < 1.0}

    def weights(self, emotion: str) -> dict[int, float]:
        """All AUs of ``emotion`` with their weights (sorted by AU number)."""
        return dict(sorted(self._row(emotion).items()))

    def _row(self, emotion: str) -> Mapping[int, float]:
        try:
            return self.entries[emotion]
        except KeyError:
            raise KeyError(
                f"emotion {emotion!r} is not in relatedness table {self.name!r}; "
                f"it lists {list(self.entries)}"
            ) from None

    def matrix(
        self,
        emotions: Sequence[str] = EXPRESSIONS_7,
        aus: Sequence[int] = AUS_17,
        *,
        weighted: bool = False,
    ) -> np.ndarray:
        """p(AU | emotion) as a dense matrix.

        Args:
            emotions: row order (e.g. ``schema.EXPRESSIONS_7`` or ``EXPRESSIONS_8``). Emotions the table does
                not list (``neutral``, ``contempt``) get an all-zero row.
            aus: column order (any AU subset). AUs of the table that are not in ``aus`` are dropped.
            weighted: ``False`` gives FaceBehaviorNet eq. 2's deterministic p(AU|e) ∈ {0, 1} (1 for every
                prototypical or observational AU); ``True`` gives its footnote-3 variant, p(AU|e) = w.

        Returns:
            ``(len(emotions), len(aus))`` float64 array.
        """
        m = np.zeros((len(emotions), len(aus)), dtype=np.float64)
        col = {int(a): j for j, a in enumerate(aus)}
        for i, emo in enumerate(emotions):
            for au, w in self.entries.get(emo, {}).items():
                if au in col:
                    m[i, col[au]] = w if weighted else 1.0
        return m

    def subset(self, emotions: Sequence[str]) -> RelatednessTable:
        """A table restricted to ``emotions`` (each must be listed)."""
        return RelatednessTable(self.name, self.source, {e: self._row(e) for e in emotions})

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain ``{"name", "source", "entries": {emotion: {"AU": weight}}}`` (JSON-ready)."""
        return {
            "name": self.name,
            "source": self.source,
            "entries": {e: {str(au): w for au, w in sorted(row.items())} for e, row in self.entries.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RelatednessTable:
        """Inverse of :meth:`to_dict`. ``source`` is optional; ``entries`` is required."""
        if not isinstance(data, Mapping) or "entries" not in data or not isinstance(data["entries"], Mapping):
            raise ValueError(
                "a relatedness table must be a mapping with an 'entries' mapping "
                '{emotion: {AU number: weight}}, e.g. {"name": "mine", "entries": {"happiness": {"12": 1.0}}}'
            )
        return cls(str(data.get("name", "custom")), str(data.get("source", "")), data["entries"])

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to a JSON string, also writing it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> RelatednessTable:
        """Load from a JSON file path or a JSON string.

        Raises:
            FileNotFoundError: ``source`` looks like a path but does not exist.
            ValueError: the JSON is malformed or not a table (the message names the file).
        """
        text = str(source)
        where = "JSON string"
        if not text.lstrip().startswith("{"):
            p = Path(text)
            if not p.is_file():
                raise FileNotFoundError(f"relatedness table file {p} not found")
            text, where = p.read_text(encoding="utf-8"), str(p)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"relatedness table {where} is not valid JSON: {e}") from None
        try:
            return cls.from_dict(data)
        except ValueError as e:
            raise ValueError(f"relatedness table {where}: {e}") from None


def _table(
    name: str, source: str, rows: dict[str, tuple[tuple[int, ...], dict[int, float]]]
) -> RelatednessTable:
    entries = {emo: {**{au: 1.0 for au in proto}, **obs} for emo, (proto, obs) in rows.items()}
    return RelatednessTable(name, source, entries)


_DU2014 = (
    "S. Du, Y. Tao, A. M. Martinez, 'Compound facial expressions of emotion', PNAS 111(15):E1454-E1462, "
    "2014, Table 1"
)

# Du et al. (2014), the six basic emotions: prototypical AUs and observational AUs with the fraction
# of subjects showing them (the compound table below repeats these rows).
_DU2014_BASIC: dict[str, tuple[tuple[int, ...], dict[int, float]]] = {
    "happiness": ((12, 25), {6: 0.51}),
    "sadness": ((4, 15), {1: 0.6, 6: 0.5, 11: 0.26, 17: 0.67}),
    "fear": ((1, 4, 20, 25), {2: 0.57, 5: 0.63, 26: 0.33}),
    "anger": ((4, 7, 24), {10: 0.26, 17: 0.52, 23: 0.29}),
    "surprise": ((1, 2, 25, 26), {5: 0.66}),
    "disgust": ((9, 10, 17), {4: 0.31, 24: 0.26}),
}

TABLE_A: RelatednessTable = _table(
    "du2014_basic",
    _DU2014 + "; as quoted in FaceBehaviorNet (Kollias et al.) Table 1",
    _DU2014_BASIC,
)

TABLE_B: RelatednessTable = _table(
    "affwild2_empirical",
    "FaceBehaviorNet (Kollias et al.) Table 3: AU activation rates per expression in Aff-Wild2",
    {
        "happiness": ((), {12: 0.82, 25: 0.7, 6: 0.57, 7: 0.83, 10: 0.63}),
        "sadness": ((), {4: 0.53, 15: 0.42, 1: 0.31, 7: 0.13, 17: 0.1}),
        "fear": ((), {1: 0.52, 4: 0.4, 25: 0.85, 5: 0.38, 7: 0.57, 10: 0.57}),
        "anger": ((), {4: 0.65, 7: 0.45, 25: 0.4, 10: 0.33, 9: 0.15}),
        "surprise": ((), {1: 0.38, 2: 0.37, 25: 0.85, 26: 0.3, 5: 0.5, 7: 0.2}),
        "disgust": ((), {9: 0.21, 10: 0.85, 17: 0.23, 4: 0.6, 7: 0.75, 25: 0.8}),
    },
)

# Du et al. (2014) Table 1: prototypical AUs (>70% of subjects) and variants (% of subjects).
COMPOUND_TABLE: RelatednessTable = _table(
    "du2014_compound",
    _DU2014,
    {
        **_DU2014_BASIC,
        "happily_surprised": ((1, 2, 12, 25), {5: 0.64, 26: 0.67}),
        "happily_disgusted": ((10, 12, 25), {4: 0.32, 6: 0.61, 9: 0.59}),
        "sadly_fearful": ((1, 4, 20, 25), {2: 0.46, 5: 0.24, 6: 0.34, 15: 0.30}),
        "sadly_angry": ((4, 15), {6: 0.26, 7: 0.48, 11: 0.20, 17: 0.50}),
        "sadly_surprised": ((1, 4, 25, 26), {2: 0.27, 6: 0.31}),
        "sadly_disgusted": ((4, 10), {1: 0.49, 6: 0.61, 9: 0.20, 11: 0.35, 15: 0.54, 17: 0.47, 25: 0.43}),
        "fearfully_angry": ((4, 20, 25), {5: 0.40, 7: 0.39, 10: 0.30, 11: 0.33}),
        "fearfully_surprised": ((1, 2, 5, 20, 25), {4: 0.47, 10: 0.35, 11: 0.22, 26: 0.51}),
        "fearfully_disgusted": ((1, 4, 10, 20, 25), {2: 0.64, 5: 0.50, 6: 0.26, 9: 0.28, 15: 0.33}),
        "angrily_surprised": ((4, 25, 26), {5: 0.35, 7: 0.50, 10: 0.34}),
        "disgustedly_surprised": ((1, 2, 5, 10), {4: 0.45, 9: 0.37, 17: 0.66, 24: 0.33}),
        "angrily_disgusted": ((4, 10, 17), {7: 0.60, 9: 0.57, 24: 0.36}),
        "appalled": ((4, 10), {6: 0.25, 9: 0.56, 17: 0.67, 24: 0.36}),
        "hatred": ((4, 10), {7: 0.57, 9: 0.27, 17: 0.63, 24: 0.37}),
        "awed": ((1, 2, 5, 25), {4: 0.21, 20: 0.62, 26: 0.56}),
    },
)

# The two basic emotions each compound mixes (FaceBehaviorNet §4.5 uses p(emo1) + p(emo2)). Du et al.
# describe appalled and hatred as variants of angrily disgusted, and awed as fearfully surprised.
COMPOUND_CONSTITUENTS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "happily_surprised": ("happiness", "surprise"),
        "happily_disgusted": ("happiness", "disgust"),
        "sadly_fearful": ("sadness", "fear"),
        "sadly_angry": ("sadness", "anger"),
        "sadly_surprised": ("sadness", "surprise"),
        "sadly_disgusted": ("sadness", "disgust"),
        "fearfully_angry": ("fear", "anger"),
        "fearfully_surprised": ("fear", "surprise"),
        "fearfully_disgusted": ("fear", "disgust"),
        "angrily_surprised": ("anger", "surprise"),
        "disgustedly_surprised": ("disgust", "surprise"),
        "angrily_disgusted": ("anger", "disgust"),
        "appalled": ("anger", "disgust"),
        "hatred": ("anger", "disgust"),
        "awed": ("fear", "surprise"),
    }
)

# RAF-DB's 11 compound classes, in RAF-DB's label order (1..11 in its compound list file).
RAFDB_COMPOUND_11: tuple[str, ...] = (
    "happily_surprised",
    "happily_disgusted",
    "sadly_fearful",
    "sadly_angry",
    "sadly_surprised",
    "sadly_disgusted",
    "fearfully_angry",
    "fearfully_surprised",
    "angrily_surprised",
    "angrily_disgusted",
    "disgustedly_surprised",
)

# EmotioNet Challenge 2017 (Benitez-Quiroz et al., arXiv:1703.01210), track 2: 6 basic + 10 compound.
EMOTIONET_COMPOUND_10: tuple[str, ...] = (
    "happily_surprised",
    "happily_disgusted",
    "sadly_angry",
    "sadly_disgusted",
    "fearfully_angry",
    "fearfully_surprised",
    "angrily_surprised",
    "angrily_disgusted",
    "appalled",
    "awed",
)
EMOTIONET_CLASSES_16: tuple[str, ...] = BASIC_6 + EMOTIONET_COMPOUND_10

_TABLES: dict[str, RelatednessTable] = {"a": TABLE_A, "b": TABLE_B}
for _t in (TABLE_A, TABLE_B, COMPOUND_TABLE):
    _TABLES[_t.name] = _t
_TABLES["du2014"] = TABLE_A
_TABLES["affwild2"] = TABLE_B
_TABLES["compound"] = COMPOUND_TABLE


def get_table(table: str | Path | Mapping[str, Any] | RelatednessTable) -> RelatednessTable:
    """Resolve a table given by name, JSON path/string, plain dict or table object.

    Names: ``"A"``/``"du2014"``/``"du2014_basic"`` (:data:`TABLE_A`), ``"B"``/``"affwild2"``/
    ``"affwild2_empirical"`` (:data:`TABLE_B`), ``"compound"``/``"du2014_compound"``.

    Raises:
        KeyError: unknown name (lists the valid ones).
    """
    if isinstance(table, RelatednessTable):
        return table
    if isinstance(table, Mapping):
        return RelatednessTable.from_dict(table)
    key = str(table)
    if key.lower() in _TABLES:
        return _TABLES[key.lower()]
    if key.lstrip().startswith("{") or key.endswith(".json") or Path(key).is_file():
        return RelatednessTable.from_json(key)
    raise KeyError(f"unknown relatedness table {table!r}; valid names: {sorted(_TABLES)} or a JSON file path")


def au_given_emotion(
    table: str | RelatednessTable = "A",
    emotions: Sequence[str] = EXPRESSIONS_7,
    aus: Sequence[int] = AUS_17,
    *,
    weighted: bool = False,
) -> np.ndarray:
    """Shortcut for ``get_table(table).matrix(emotions, aus, weighted=weighted)``: ``(E, A)`` p(AU|e)."""
    return get_table(table).matrix(emotions, aus, weighted=weighted)
