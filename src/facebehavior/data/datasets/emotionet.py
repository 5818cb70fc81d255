"""EmotioNet (Benitez-Quiroz et al., 2016): web faces; the manually FACS-coded subset.

Release followed: the manually annotated set of the EmotioNet Challenge (2017/2018; ~25k
images coded by experts for AUs 1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26 and more). The owners ship
the annotations as a spreadsheet with one row per image: the image URL, then one column per AU
holding 1 (present), 0 (absent) or 999 (not coded). Export it to CSV (any spreadsheet program)
and fetch the images, which EmotioNet distributes as URLs, into ``images/`` under their URL
file names::

    EmotioNet/
      emotionet_manual.csv   # header: URL,AU1,AU2,AU4,… ("AU 1", "AU01" and "ImageName"/"File" accepted)
      images/<file name of the URL>.jpg

The AU columns of the table are the header's AUs intersected with ``aus`` (default
``schema.au_subset("emotionet")``); 999 → masked. Images that are missing from ``images/`` are
skipped with a warning (dead URLs are common). ``files=`` maps split names to CSV files
(default one split ``all``); EmotioNet has no subject ids, so ``subject`` is "".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from facebehavior.data.datasets._common import csv_rows, missing_frames_note, table_from_rows, to_float
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    LabelFormatError,
    register_dataset,
    require_files,
)
from facebehavior.data.labels import LabelTable
from facebehavior.schema import AU_NUMBERS, au_subset

__all__ = ["EmotioNet"]

IMAGE_COLUMNS = ("url", "imagename", "image", "file", "filename")
NOT_CODED = 999
HINT = "EmotioNet is distributed by its owners on request; see docs/datasets.md#emotionet."


@register_dataset("emotionet")
class EmotioNet(DatasetAdapter):
    """EmotioNet manually annotated AU adapter.

    Args:
        root: folder holding the CSV file(s) and ``images/``.
        files: split name → CSV file relative to ``root``.
        aus: AUs to expose (those absent from the header are left out).
    """

    name = "emotionet"
    expected_files = ("emotionet_manual.csv", "images/")

    def __init__(
        self,
        root: str | Path,
        *,
        files: Mapping[str, str] | None = None,
        aus: Sequence[int] = au_subset("emotionet"),
    ) -> None:
        super().__init__(root)
        self.files = dict(files or {"all": "emotionet_manual.csv"})
        self.splits = tuple(self.files)  # type: ignore[misc]
        self.aus = tuple(aus)
        require_files(self.root, [*self.files.values(), "images"], corpus=self.name, hint=HINT)

    def load(self, split: str) -> LabelTable:
        """Coded images of ``split``."""
        path = self.root / self.files[self.check_split(split)]
        rows = csv_rows(path)
        head = next(rows, None)
        if head is None:
            raise LabelFormatError(path, 0, "empty file")
        names = [h.strip().lower().replace(" ", "") for h in head[1]]
        img_col = next((i for i, h in enumerate(names) if h in IMAGE_COLUMNS), None)
        if img_col is None:
            raise LabelFormatError(path, head[0], f"no image column (one of {IMAGE_COLUMNS}) in {head[1]}")
        au_cols: dict[int, int] = {}
        for i, h in enumerate(names):
            if h.startswith("au") and h[2:].isdigit() and int(h[2:]) in AU_NUMBERS:
                au_cols[int(h[2:])] = i
        aus = tuple(a for a in self.aus if a in au_cols)
        if not aus:
            raise LabelFormatError(path, head[0], f"none of AUs {list(self.aus)} in header {head[1]}")
        available = {p.name for p in (self.root / "images").iterdir()}
        image, occ, mask = [], [], []
        total = 0
        for lineno, r in rows:
            if len(r) != len(head[1]):
                raise LabelFormatError(path, lineno, f"expected {len(head[1])} fields, got {len(r)}")
            vals = [to_float(path, lineno, r[au_cols[a]], f"AU{a}") for a in aus]
            bad = [a for a, v in zip(aus, vals, strict=True) if v not in (0, 1, NOT_CODED)]
            if bad:
                raise LabelFormatError(path, lineno, f"AU{bad[0]} value is not 0, 1 or {NOT_CODED}")
            total += 1
            file = Path(urlparse(r[img_col]).path).name
            if file not in available:
                continue
            image.append(f"images/{file}")
            occ.append([v == 1 for v in vals])
            mask.append([v != NOT_CODED for v in vals])
        missing_frames_note(self.name, total - len(image), total, str(self.root / "images"))
        n = len(image)
        return table_from_rows(
            self.name, split, self.root, image=image, subject=[""] * n, aus=aus,
            au_occurrence=np.asarray(occ, np.float32).reshape(n, len(aus)),
            au_mask=np.asarray(mask, bool).reshape(n, len(aus)),
        )  # fmt: skip
