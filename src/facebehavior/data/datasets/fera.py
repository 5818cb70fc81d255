"""FERA 2015 and FERA 2017 challenge partitions of BP4D (Valstar et al., 2015 / 2017).

Both challenges ship BP4D material in the BP4D coding format (see ``bp4d``), one folder per
partition, subject-exclusive by the organisers' design (the adapter checks it)::

    FERA2015/                                 FERA2017/
      BP4D-training/                            Train/
        AUCoding/AU_OCC/F001_T1.csv               AUCoding/AU_OCC/F001_T1.csv
        AUCoding/AU_INT/AU06/F001_T1_AU06.csv     AUCoding/AU_INT/AU01/F001_T1_AU01.csv
        Sequences/F001/T1/<frame>.jpg             Sequences/F001/T1/<frame>.jpg   (frames of one view)
      BP4D-development/ (same)                  Valid/ (same)

FERA2015 splits ``train``/``dev``: occurrence of AUs 1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23 and
intensity of AUs 6, 10, 12, 14, 17 (``schema.au_subset("fera2015_intensity")``). FERA2017
splits ``train``/``valid``: occurrence of the 10 AUs of ``schema.au_subset("fera2017")`` and
intensity of AUs 1, 4, 6, 10, 12, 14, 17. FERA2017 renders each sequence from 9 head poses; the
challenge videos are per view, so extract the frames of the view you train on into
``Sequences/<subject>/<task>/`` (``facebehavior prepare`` then caches them) — the partition
folder names are arguments (``partitions=``) for releases that name them differently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from facebehavior.data.datasets.base import DatasetAdapter, DatasetNotFoundError, register_dataset
from facebehavior.data.datasets.bp4d import _FACSSequences
from facebehavior.data.labels import LabelTable
from facebehavior.schema import au_subset

__all__ = ["FERA2015", "FERA2017"]


class _Partition(_FACSSequences):
    name = "fera"
    splits = ("all",)


class _FERA(DatasetAdapter):
    default_partitions: ClassVar[Mapping[str, str]] = {}
    default_aus: ClassVar[tuple[int, ...]] = ()
    hint: ClassVar[str] = ""

    def __init__(
        self,
        root: str | Path,
        *,
        partitions: Mapping[str, str] | None = None,
        aus: Sequence[int] | None = None,
        frames_dir: str | None = None,
    ) -> None:
        super().__init__(root)
        self.partitions = dict(partitions or self.default_partitions)
        self.aus = tuple(aus or self.default_aus)
        self.frames_dir = frames_dir
        missing = [d for d in self.partitions.values() if not (self.root / d).is_dir()]
        if missing:
            raise DatasetNotFoundError(
                f"{self.name}: missing partition folders {missing} under {self.root} (each holds "
                f"AUCoding/AU_OCC/<subject>_<task>.csv, AUCoding/AU_INT/AU<NN>/…, "
                f"Sequences/<subject>/<task>/). "
                f"{self.hint}"
            )

    def _partition(self, split: str) -> _Partition:
        p = _Partition(self.root / self.partitions[split], aus=self.aus, frames_dir=self.frames_dir)
        p.hint = self.hint
        return p

    def load(self, split: str) -> LabelTable:
        """Coded frames of one partition (``image`` paths are relative to the challenge root)."""
        self.check_split(split)
        part = self._partition(split)
        own = {s for s, _ in part.sequences()}
        for other, folder in self.partitions.items():
            if other != split and (self.root / folder / "AUCoding").exists():
                shared = own & {s for s, _ in self._partition(other).sequences()}
                if shared:
                    raise ValueError(
                        f"{self.name}: partitions {split} and {other} share subjects {sorted(shared)}; "
                        "the challenge partitions are subject-exclusive — check the folders"
                    )
        t = part.load("all")
        prefix = self.partitions[split]
        image = np.array([f"{prefix}/{p}" for p in t.image], dtype=object)
        return replace(t, corpus=self.name, split=split, root=self.root, image=image)


@register_dataset("fera2015")
class FERA2015(_FERA):
    """FERA 2015 (BP4D part): ``train`` = BP4D-training, ``dev`` = BP4D-development."""

    name = "fera2015"
    splits = ("train", "dev")
    default_partitions = {"train": "BP4D-training", "dev": "BP4D-development"}
    default_aus = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23)
    expected_files = ("BP4D-training/AUCoding/AU_OCC/", "BP4D-development/AUCoding/AU_OCC/")
    hint = "FERA 2015 data come from the BP4D owners; see docs/datasets.md#fera."


@register_dataset("fera2017")
class FERA2017(_FERA):
    """FERA 2017: ``train`` and ``valid`` partitions (occurrence of 10 AUs, intensity of 7)."""

    name = "fera2017"
    splits = ("train", "valid")
    default_partitions = {"train": "Train", "valid": "Valid"}
    default_aus = au_subset("fera2017")
    expected_files = ("Train/AUCoding/AU_OCC/", "Valid/AUCoding/AU_OCC/")
    hint = "FERA 2017 data come from the BP4D owners; see docs/datasets.md#fera."
