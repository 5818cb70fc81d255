"""RAF-DB (Li et al., 2017): web faces with basic (7) and compound (11) expression labels.

Official layout of the owners' release::

    RAF-DB/
      basic/
        EmoLabel/list_patition_label.txt     # "train_00001.jpg 5" / "test_0001.jpg 1"; 1..7
        Image/aligned/train_00001_aligned.jpg
        Image/original/train_00001.jpg
      compound/
        EmoLabel/list_patition_label.txt     # "train_0001.jpg 1"; 1..11
        Image/aligned/train_0001_aligned.jpg
        Image/original/train_0001.jpg

(``list_patition_label.txt`` is the owners' spelling.) Basic labels 1..7 = Surprise, Fear,
Disgust, Happiness, Sadness, Anger, Neutral, mapped by name onto ``EXPRESSIONS_8``. Compound
labels 1..11 follow ``facebehavior.relatedness.RAFDB_COMPOUND_11`` (the owners' order); the
compound table stores them as ``extra["compound"]`` (N,) int64 index into that tuple, with
``expression = -1`` (a compound class has no single basic label).

Splits: ``train`` and ``test`` — the owners' partition, read from the file-name prefix. RAF-DB
has no subject ids (web images): ``subject`` is "".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import ImageFilesMixin, table_from_rows, text_lines
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    LabelFormatError,
    register_dataset,
    require_files,
)
from facebehavior.data.labels import LabelTable
from facebehavior.relatedness import RAFDB_COMPOUND_11
from facebehavior.schema import EXPRESSIONS_8

__all__ = ["RAFDB", "RAFDBCompound", "RAFDB_BASIC_NAMES"]

RAFDB_BASIC_NAMES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
BASIC_TO_CANON = np.array([EXPRESSIONS_8.index(n) for n in RAFDB_BASIC_NAMES], np.int64)
LIST_FILE = "EmoLabel/list_patition_label.txt"
HINT = "RAF-DB is licensed by its owners (request access); see docs/datasets.md#raf-db."


class _RAF(ImageFilesMixin, DatasetAdapter):
    part = "basic"
    num_classes = 7
    splits = ("train", "test")

    def __init__(self, root: str | Path, *, images: str = "aligned") -> None:
        super().__init__(root)
        if images not in ("aligned", "original"):
            raise ValueError(f"images must be 'aligned' or 'original', got {images!r}")
        self.images = images
        require_files(self.root, [f"{self.part}/{LIST_FILE}", f"{self.part}/Image/{images}"],
                      corpus=self.name, hint=HINT)  # fmt: skip

    def _image_name(self, name: str) -> str:
        if self.images == "original":
            return f"{self.part}/Image/original/{name}"
        stem, dot, ext = name.rpartition(".")
        return f"{self.part}/Image/aligned/{stem}_aligned.{ext}"

    def _read(self, split: str) -> tuple[list[str], np.ndarray]:
        path = self.root / self.part / LIST_FILE
        names, labels = [], []
        for lineno, line in text_lines(path):
            parts = line.split()
            if len(parts) != 2:
                raise LabelFormatError(path, lineno, f"expected '<image> <label>', got {line!r}")
            name, lab = parts
            if not (name.startswith("train_") or name.startswith("test_")):
                raise LabelFormatError(
                    path, lineno, f"image name {name!r} does not start with train_ or test_"
                )
            if not lab.isdigit() or not 1 <= int(lab) <= self.num_classes:
                raise LabelFormatError(path, lineno, f"label {lab!r} not in 1..{self.num_classes}")
            if name.startswith(f"{split}_"):
                names.append(name)
                labels.append(int(lab) - 1)
        return names, np.asarray(labels, np.int64)


@register_dataset("rafdb")
class RAFDB(_RAF):
    """RAF-DB basic expressions (7 classes).

    Args:
        root: the RAF-DB folder holding ``basic/``.
        images: ``"aligned"`` (the owners' 100×100 aligned crops) or ``"original"``.
    """

    name = "rafdb"
    expected_files = (f"basic/{LIST_FILE}", "basic/Image/aligned/train_00001_aligned.jpg")

    def load(self, split: str) -> LabelTable:
        """Images of ``split`` with their basic expression."""
        names, labels = self._read(self.check_split(split))
        n = len(names)
        return table_from_rows(self.name, split, self.root, image=[self._image_name(x) for x in names],
                               subject=[""] * n, expression=BASIC_TO_CANON[labels])  # fmt: skip


@register_dataset("rafdb_compound")
class RAFDBCompound(_RAF):
    """RAF-DB compound expressions (11 classes, ``extra["compound"]``)."""

    name = "rafdb_compound"
    part = "compound"
    num_classes = len(RAFDB_COMPOUND_11)
    expected_files = (f"compound/{LIST_FILE}", "compound/Image/aligned/train_0001_aligned.jpg")

    def load(self, split: str) -> LabelTable:
        """Images of ``split`` with their compound class (``extra["compound"]``)."""
        names, labels = self._read(self.check_split(split))
        n = len(names)
        return table_from_rows(self.name, split, self.root, image=[self._image_name(x) for x in names],
                               subject=[""] * n, extra={"compound": labels})  # fmt: skip
