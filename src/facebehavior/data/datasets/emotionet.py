"""EmotioNet (Benitez-Quiroz et al., 2016): web faces; the manually FACS-coded subset.

Release followed: the manually annotated set of the EmotioNet Challenge (2017/2018; ~25k
images coded by experts for AUs 1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26 and more), as the owners
distribute it. Two label formats are read:

- the spreadsheet (one row per image: the image URL, then one column per AU holding 1 present,
  0 absent, 999 not coded), exported to CSV::

      emotionet_manual.csv   # header: URL,AU1,AU2,AU4,… ("AU 1", "AU01" and "ImageName"/"File" accepted)

- the challenge's tab-separated text files without header: ``<URL> <tab> <second field> <tab>
  <AU1> <tab> <AU2> …`` — the values are positional, value ``k`` is AU ``k`` (1-based), 999 = not
  coded.

Images are distributed as URLs: fetch them into ``images/``, either under their URL file name or
keeping the URL's last folder (``images/<folder>/<file>``, which avoids name clashes)::

    EmotioNet/
      emotionet_manual.csv
      images/<file>.jpg  or  images/<folder>/<file>.jpg

The AU columns of the table are the file's AUs intersected with ``aus`` (default
``schema.au_subset("emotionet")``); 999 → masked. Images missing from ``images/`` are skipped with
a warning (dead URLs are common). ``files=`` maps split names to label files (default one split
``all``); EmotioNet has no subject ids, so ``subject`` is "".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import numpy as np

from facebehavior.data.datasets._common import (
    ImageFilesMixin,
    csv_rows,
    missing_frames_note,
    table_from_rows,
    text_lines,
    to_float,
)
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
class EmotioNet(ImageFilesMixin, DatasetAdapter):
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
        first = next(text_lines(path), None)
        if first is None:
            raise LabelFormatError(path, 0, "empty file")
        if first[1].lower().startswith(("http://", "https://")):
            rows, url_col, au_cols = self._positional(path)
        else:
            rows, url_col, au_cols = self._with_header(path)
        aus = tuple(a for a in self.aus if a in au_cols)
        if not aus:
            raise LabelFormatError(path, first[0], f"none of AUs {list(self.aus)} in the label file")
        images_dir = self.root / "images"
        available = {p.relative_to(images_dir).as_posix() for p in images_dir.rglob("*") if p.is_file()}
        image, occ, mask = [], [], []
        total = 0
        for lineno, r in rows:
            vals = [to_float(path, lineno, r[au_cols[a]], f"AU{a}") for a in aus]
            bad = [a for a, v in zip(aus, vals, strict=True) if v not in (0, 1, NOT_CODED)]
            if bad:
                raise LabelFormatError(path, lineno, f"AU{bad[0]} value is not 0, 1 or {NOT_CODED}")
            total += 1
            parts = PurePosixPath(urlparse(r[url_col]).path).parts
            file = next(
                (c for c in ("/".join(parts[-2:]), parts[-1] if parts else "") if c in available), None
            )
            if file is None:
                continue
            image.append(f"images/{file}")
            occ.append([v == 1 for v in vals])
            mask.append([v != NOT_CODED for v in vals])
        missing_frames_note(self.name, total - len(image), total, str(images_dir))
        n = len(image)
        return table_from_rows(
            self.name, split, self.root, image=image, subject=[""] * n, aus=aus,
            au_occurrence=np.asarray(occ, np.float32).reshape(n, len(aus)),
            au_mask=np.asarray(mask, bool).reshape(n, len(aus)),
        )  # fmt: skip

    @staticmethod
    def _with_header(path: Path) -> tuple[list[tuple[int, list[str]]], int, dict[int, int]]:
        rows = csv_rows(path)
        head = next(rows)
        names = [h.strip().lower().replace(" ", "") for h in head[1]]
        url_col = next((i for i, h in enumerate(names) if h in IMAGE_COLUMNS), None)
        if url_col is None:
            raise LabelFormatError(path, head[0], f"no image column (one of {IMAGE_COLUMNS}) in {head[1]}")
        au_cols = {
            int(h[2:]): i
            for i, h in enumerate(names)
            if h.startswith("au") and h[2:].isdigit() and int(h[2:]) in AU_NUMBERS
        }
        body = []
        for lineno, r in rows:
            if len(r) != len(head[1]):
                raise LabelFormatError(path, lineno, f"expected {len(head[1])} fields, got {len(r)}")
            body.append((lineno, r))
        return body, url_col, au_cols

    @staticmethod
    def _positional(path: Path) -> tuple[list[tuple[int, list[str]]], int, dict[int, int]]:
        body = []
        width = None
        for lineno, line in text_lines(path):
            r = [f.strip() for f in line.split("\t")]
            if width is None:
                width = len(r)
            if len(r) != width or len(r) < 3:
                raise LabelFormatError(path, lineno, f"expected {width} tab-separated fields, got {len(r)}")
            body.append((lineno, r))
        # Field 0 is the URL, field 1 a second id; value k (k = 1, 2, …) is AU k.
        au_cols = {k: k + 1 for k in range(1, (width or 0) - 1) if k in AU_NUMBERS}
        return body, 0, au_cols
