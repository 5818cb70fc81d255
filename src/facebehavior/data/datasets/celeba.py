"""CelebA (Liu et al., 2015): 202,599 celebrity faces with 40 binary attributes.

Official layout of the owners' release::

    CelebA/
      Anno/list_attr_celeba.txt         # line 1: count; line 2: 40 attribute names;
                                        #   then "000001.jpg -1  1 …" (±1 per attribute)
      Anno/identity_CelebA.txt          # "000001.jpg 2880" (optional: fills ``subject``)
      Eval/list_eval_partition.txt      # "000001.jpg 0" — 0 train, 1 val, 2 test
      Img/img_align_celeba/000001.jpg

FATAUVA-Net (Table 2) trains its attribute layer on 10 of the 40 attributes, grouped by facial
part (face: Attractive, Male, No_Beard, Young; eyebrows: Arched_Eyebrows, Bushy_Eyebrows; eyes:
Eyeglasses, Narrow_Eyes; mouth: Mouth_Slightly_Open, Smiling). They are exposed as
``extra["attributes"]`` (N, 10) float32 0/1 in ``FATAUVA_ATTRIBUTES`` order (``attributes=``
selects others). Splits: ``train``, ``val``, ``test`` — the owners' partition, which is
identity-disjoint.
"""

from __future__ import annotations

from collections.abc import Sequence
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

__all__ = ["CelebA", "FATAUVA_ATTRIBUTES", "FATAUVA_ATTRIBUTE_GROUPS"]

FATAUVA_ATTRIBUTE_GROUPS: dict[str, tuple[str, ...]] = {
    "face": ("Attractive", "Male", "No_Beard", "Young"),
    "eyebrows": ("Arched_Eyebrows", "Bushy_Eyebrows"),
    "eyes": ("Eyeglasses", "Narrow_Eyes"),
    "mouth": ("Mouth_Slightly_Open", "Smiling"),
}
FATAUVA_ATTRIBUTES: tuple[str, ...] = tuple(a for g in FATAUVA_ATTRIBUTE_GROUPS.values() for a in g)
ATTR_FILE = "Anno/list_attr_celeba.txt"
PARTITION_FILE = "Eval/list_eval_partition.txt"
IDENTITY_FILE = "Anno/identity_CelebA.txt"
IMAGES = "Img/img_align_celeba"
SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
HINT = "CelebA is available from its owners for non-commercial research; see docs/datasets.md#celeba."


@register_dataset("celeba")
class CelebA(ImageFilesMixin, DatasetAdapter):
    """CelebA attributes adapter.

    Args:
        root: the CelebA folder.
        attributes: attribute names to expose (default ``FATAUVA_ATTRIBUTES``).
    """

    name = "celeba"
    splits = tuple(SPLIT_CODE)
    expected_files = (ATTR_FILE, PARTITION_FILE, f"{IMAGES}/000001.jpg")

    def __init__(self, root: str | Path, *, attributes: Sequence[str] = FATAUVA_ATTRIBUTES) -> None:
        super().__init__(root)
        self.attributes = tuple(attributes)
        require_files(self.root, [ATTR_FILE, PARTITION_FILE, IMAGES], corpus=self.name, hint=HINT)

    def load(self, split: str) -> LabelTable:
        """Images of ``split`` with ``extra["attributes"]``."""
        code = SPLIT_CODE[self.check_split(split)]
        part: dict[str, int] = {}
        ppath = self.root / PARTITION_FILE
        for lineno, line in text_lines(ppath):
            f = line.split()
            if len(f) != 2 or f[1] not in ("0", "1", "2"):
                raise LabelFormatError(ppath, lineno, f"expected '<image> 0|1|2', got {line!r}")
            part[f[0]] = int(f[1])
        apath = self.root / ATTR_FILE
        lines = text_lines(apath)
        first, second = next(lines, None), next(lines, None)
        if first is None or second is None:
            raise LabelFormatError(apath, 0, "needs a count line and an attribute-name line")
        names = second[1].split()
        missing = [a for a in self.attributes if a not in names]
        if missing:
            raise LabelFormatError(
                apath, second[0], f"attributes {missing} not in the header; valid: {names}"
            )
        cols = [names.index(a) for a in self.attributes]
        images, attrs = [], []
        for lineno, line in lines:
            f = line.split()
            if len(f) != len(names) + 1:
                raise LabelFormatError(
                    apath, lineno, f"expected image + {len(names)} values, got {len(f)} fields"
                )
            if f[0] not in part:
                raise LabelFormatError(apath, lineno, f"{f[0]} is not in {PARTITION_FILE}")
            if part[f[0]] != code:
                continue
            vals = f[1:]
            if any(vals[c] not in ("1", "-1") for c in cols):
                raise LabelFormatError(apath, lineno, "attribute values must be 1 or -1")
            images.append(f[0])
            attrs.append([vals[c] == "1" for c in cols])
        identity = self._identities()
        n = len(images)
        return table_from_rows(
            self.name, split, self.root, image=[f"{IMAGES}/{x}" for x in images],
            subject=[identity.get(x, "") for x in images],
            extra={"attributes": np.asarray(attrs, np.float32).reshape(n, len(cols))},
        )  # fmt: skip

    def _identities(self) -> dict[str, str]:
        path = self.root / IDENTITY_FILE
        if not path.is_file():
            return {}
        out = {}
        for lineno, line in text_lines(path):
            f = line.split()
            if len(f) != 2:
                raise LabelFormatError(path, lineno, f"expected '<image> <identity>', got {line!r}")
            out[f[0]] = f[1]
        return out
