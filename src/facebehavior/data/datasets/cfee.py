"""CFEE, the Compound Facial Expressions of Emotion database (Du, Tao & Martinez, PNAS 2014): 230
subjects posing 22 categories — neutral, the 6 basic and 15 compound expressions.

**Assumed layout.** The owners distribute CFEE on request (Ohio State University, CBCSL) and no
public document describes the tree or the file names, so this adapter reads the layout the paper's
description implies — one frontal photo per subject and category — in the form its users name
files: the subject id, an underscore, then the category as its number in the paper's order
(``CFEE_CATEGORIES_22``, 1-based, Du et al. Fig. 1 / Table 1) or as its name::

    CFEE/
      <subject>/<subject>_<category>.jpg    # e.g. 001/001_08.jpg (happily surprised)
      …                                     # any depth; .jpg/.jpeg/.png/.bmp/.tif

``<category>``: ``1`` … ``22`` (any zero padding) or a category name with ``_``/``-``/space
between words (``happily_surprised``, ``Happily-Surprised``). The subject id is everything before
the first underscore. A file that does not parse is an error naming it (never skipped), so a copy
in another layout fails loudly instead of training on wrong labels; rename files to this form
(or use the ``manifest`` adapter) if your copy differs.

Labels (``extra``): ``"category"`` (N,) int64 index into ``CFEE_CATEGORIES_22``; ``"compound"``
(N,) int64 index into ``relatedness.RAFDB_COMPOUND_11`` (-1 for the 7 basic categories and for
the 4 compound classes RAF-DB lacks: fearfully disgusted, appalled, hatred, awed); ``expression``
is the ``EXPRESSIONS_8`` index for neutral and the 6 basic categories, -1 for the compounds.

Split: ``all`` (the paper evaluates by cross-validation over subjects; carve a subject-exclusive
validation set with a recipe's ``holdout``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import ImageFilesMixin, table_from_rows
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    register_dataset,
)
from facebehavior.data.labels import LabelTable
from facebehavior.relatedness import RAFDB_COMPOUND_11
from facebehavior.schema import EXPRESSIONS_8

__all__ = ["CFEE", "CFEE_CATEGORIES_22", "parse_name"]

# Du, Tao & Martinez (2014), in the paper's order: neutral, 6 basic, 15 compound categories.
CFEE_CATEGORIES_22: tuple[str, ...] = (
    "neutral", "happiness", "sadness", "fear", "anger", "surprise", "disgust",
    "happily_surprised", "happily_disgusted", "sadly_fearful", "sadly_angry", "sadly_surprised",
    "sadly_disgusted", "fearfully_angry", "fearfully_surprised", "fearfully_disgusted",
    "angrily_surprised", "angrily_disgusted", "disgustedly_surprised", "appalled", "hatred", "awed",
)  # fmt: skip
# Adjective forms the paper (and file names) use for the basic categories.
_ALIASES = {"happy": "happiness", "sad": "sadness", "fearful": "fear", "angry": "anger",
            "surprised": "surprise", "disgusted": "disgust"}  # fmt: skip
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
HINT = "CFEE is distributed by its owners on request; see docs/datasets.md (layout assumed, read cfee.py)."


def parse_name(stem: str) -> tuple[str, int] | None:
    """``"<subject>_<category>"`` → ``(subject, index into CFEE_CATEGORIES_22)``; ``None`` if it does
    not parse."""
    subject, sep, cat = stem.partition("_")
    if not sep or not subject or not cat:
        return None
    if cat.isdigit():
        k = int(cat)
        return (subject, k - 1) if 1 <= k <= len(CFEE_CATEGORIES_22) else None
    key = re.sub(r"[\s\-_]+", "_", cat.strip().lower())
    key = _ALIASES.get(key, key)
    return (subject, CFEE_CATEGORIES_22.index(key)) if key in CFEE_CATEGORIES_22 else None


@register_dataset("cfee")
class CFEE(ImageFilesMixin, DatasetAdapter):
    """CFEE: 22 expression categories per subject (``extra["category"]``, ``extra["compound"]``).

    Args:
        root: the CFEE folder (images anywhere below it, named ``<subject>_<category>.<ext>``).
    """

    name = "cfee"
    splits = ("all",)
    expected_files = ("<subject>/<subject>_<category 1-22>.jpg",)

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"cfee: folder {self.root} does not exist; expected images named like "
                f"{self.expected_files[0]}. {HINT}"
            )

    def load(self, split: str) -> LabelTable:
        """Every image with its category."""
        self.check_split(split)
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetNotFoundError(
                f"cfee: no images under {self.root}; expected {self.expected_files[0]} "
                f"(category numbered in Du et al.'s order). {HINT}"
            )
        images, subjects, cats = [], [], []
        for p in files:
            parsed = parse_name(p.stem)
            if parsed is None:
                raise LabelFormatError(
                    p, 0, "file name is not <subject>_<category> with a category 1-22 or one of "
                    f"{', '.join(CFEE_CATEGORIES_22)}; see the layout in facebehavior.data.datasets.cfee",
                )  # fmt: skip
            images.append(str(p.relative_to(self.root)))
            subjects.append(parsed[0])
            cats.append(parsed[1])
        category = np.asarray(cats, np.int64)
        names = [CFEE_CATEGORIES_22[c] for c in cats]
        expression = [EXPRESSIONS_8.index(n) if n in EXPRESSIONS_8 else -1 for n in names]
        compound = [RAFDB_COMPOUND_11.index(n) if n in RAFDB_COMPOUND_11 else -1 for n in names]
        return table_from_rows(
            self.name, split, self.root, image=images, subject=subjects, expression=expression,
            extra={"category": category, "compound": np.asarray(compound, np.int64)},
        )  # fmt: skip
