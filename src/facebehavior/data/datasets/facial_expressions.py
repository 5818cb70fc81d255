"""``muxspace/facial_expressions`` (GitHub): 13.7k real photos with expression labels.

A public repository of LFW-style press photos (mostly 350×350 grey) and film stills labelled by a
university class (one annotator per photo; the labels are noisy and ~90 % neutral/happy). The
default model v2 trains on its training subjects and is checked on the others
(``src/facebehavior/weights/fbn_fusion.md``). Layout of a clone (commit ``5fb9c13a`` was used)::

    <root>/
      data/legend.csv      user.id,image,emotion   (emotion in mixed case: "happiness", "HAPPINESS", …)
      images/<image>       the photos (jpg)

Cleaning (documented choices): labels are lower-cased (``sadness``, ``happiness``, ``neutral``,
``anger``, ``disgust``, ``fear``, ``surprise``, ``contempt`` are ``schema.EXPRESSIONS_8`` names);
``images/Avinash_30.jpg`` is dropped (the issue that added this corpus excluded it); a photo listed
twice keeps one row when its labels agree and is dropped when they conflict.

Splits (subject-disjoint, deterministic): the subject is the file name without its trailing number
(``George_W_Bush_0001.jpg`` → ``George_W_Bush``, ``HrithikRoshan_12.jpg`` → ``HrithikRoshan``);
``val`` holds the subjects whose ``sha256(subject) mod 10`` is 0 or 1, ``train`` the others, ``all``
everything. Nothing is downloaded: clone the repository yourself (its terms: see the model card).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import csv_rows, table_from_rows
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    register_dataset,
)
from facebehavior.data.labels import LabelTable
from facebehavior.schema import EXPRESSIONS_8

__all__ = ["FacialExpressions", "subject_of", "split_of", "EXCLUDED"]

EXCLUDED = frozenset({"Avinash_30.jpg"})
VAL_BUCKETS = (0, 1)  # of sha256(subject) mod 10


def subject_of(image: str) -> str:
    """Subject id of a file name: the name without its extension and trailing number."""
    return re.sub(r"[_ -]?\d+[a-z]?$", "", image.rsplit(".", 1)[0])


def split_of(subject: str) -> str:
    """``"val"`` or ``"train"`` by a hash of the subject (about 20 % of subjects in ``val``)."""
    return "val" if int(hashlib.sha256(subject.encode()).hexdigest(), 16) % 10 in VAL_BUCKETS else "train"


@register_dataset("facial_expressions")
class FacialExpressions(DatasetAdapter):
    """Adapter for a clone of ``muxspace/facial_expressions``.

    Args:
        root: the clone's folder (holding ``data/legend.csv`` and ``images/``).
    """

    name = "facial_expressions"
    splits = ("train", "val", "all")
    expected_files = ("data/legend.csv", "images")

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.legend = self.root / "data" / "legend.csv"
        if not self.legend.is_file() or not (self.root / "images").is_dir():
            raise DatasetNotFoundError(
                f"facial_expressions: {self.legend} or {self.root / 'images'} missing; clone "
                "github.com/muxspace/facial_expressions and pass its folder (docs/datasets.md)"
            )

    def _labels(self) -> dict[str, str]:
        rows = csv_rows(self.legend)
        head = next(rows, None)
        if head is None or not {"image", "emotion"} <= set(head[1]):
            raise LabelFormatError(self.legend, 1, "expected a header with 'image' and 'emotion'")
        col = {c: i for i, c in enumerate(head[1])}
        seen: dict[str, set[str]] = {}
        for lineno, r in rows:
            if len(r) != len(head[1]):
                raise LabelFormatError(self.legend, lineno, f"expected {len(head[1])} fields, got {len(r)}")
            image, emotion = r[col["image"]].strip(), r[col["emotion"]].strip().lower()
            if emotion not in EXPRESSIONS_8:
                raise LabelFormatError(
                    self.legend, lineno, f"emotion {emotion!r} is not one of {list(EXPRESSIONS_8)}"
                )
            if image and image not in EXCLUDED:
                seen.setdefault(image, set()).add(emotion)
        return {img: labs.pop() for img, labs in seen.items() if len(labs) == 1}

    def load(self, split: str) -> LabelTable:
        """Labels of ``split`` (``train``, ``val`` or ``all``), sorted by file name."""
        self.check_split(split)
        labels = self._labels()
        images = sorted(i for i in labels if split == "all" or split_of(subject_of(i)) == split)
        return table_from_rows(
            "facial_expressions",
            split,
            self.root,
            image=[f"images/{i}" for i in images],
            subject=[subject_of(i) for i in images],
            expression=np.array([EXPRESSIONS_8.index(labels[i]) for i in images], np.int64),
        )
