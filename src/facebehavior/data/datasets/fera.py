"""FERA 2015 and FERA 2017: the challenge partitions of BP4D (Valstar et al., 2015 / 2017).

FERA 2015 ships the BP4D coding once, for all subjects, and the frames in one folder per
partition (subject-exclusive by the organisers' design: odd-numbered subjects train, even ones
development; the adapter checks that no subject is in both)::

    FERA2015/BP4D/
      AUCoding/AU_OCC/F001_T1.csv                 # the BP4D format (see ``bp4d``)
      AUCoding/AU_INT/AU06/F001_T1_AU06.csv
      BP4D-training/F001/T1/<frame>.jpg
      BP4D-development/F002/T1/<frame>.jpg

Splits ``train``/``dev``: occurrence of AUs 1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23 and intensity
of AUs 6, 10, 12, 14, 17 (``schema.au_subset("fera2015_intensity")``). ``partitions=`` renames
the partition folders for copies that name them differently.

FERA 2017 renders every BP4D sequence from 9 head poses and ships one video per pose, with the
partition in each file name (``TR`` training, ``VA`` validation); the sub-folders they sit in
are found by name, so the release's folder names do not matter::

    FERA2017/
      …/FERA17_TR_F001_T1_1.mp4 … FERA17_TR_F001_T1_9.mp4   # video of pose 1..9
      …/FERA17_TR_F001_T1.csv          # occurrence: header "Frame,AU01,…"; one row per video frame
      …/FERA17_TR_F001_T1_AU01_Int.csv  # intensity: "frame,intensity" lines (0–5; 9 = uncoded)
      …/FERA17_VA_F002_T1_6.mp4, …     # validation partition

Rows of an occurrence file label the video's frames in order (row ``i`` → frame ``i``), as the
challenge's readers align them. Splits ``train``/``valid``: occurrence of the 10 AUs of
``schema.au_subset("fera2017")`` and intensity of AUs 1, 4, 6, 10, 12, 14, 17; ``pose`` (default
6, the near-frontal view most papers train on) picks the video, ``pose="all"`` (or a list) serves
the same labelled frames once per view.

View labels: the last number of a video's name is its camera view (``_1`` … ``_9``: the 9 poses
the organisers rendered from BP4D's 3-D models, the challenge paper's view numbering), stored as
``extra["view"]`` (N,) int64 0..8 (view − 1), the target of AUNets' view classifier
(``aunets_view_classifier``, task ``view``). With several views a row's ``video`` is
``<subject>_<task>_<view>`` so that clips never mix views; its ``subject`` stays the person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import (
    VIDEO_SUFFIXES,
    ImageFilesMixin,
    VideoFramesMixin,
    concat_tables,
    table_from_rows,
)
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    register_dataset,
)
from facebehavior.data.datasets.bp4d import UNCODED, _FACSSequences, read_au_int, read_au_occ
from facebehavior.data.labels import LabelTable
from facebehavior.schema import au_subset

__all__ = ["FERA2015", "FERA2017"]


class _Partition(_FACSSequences):
    """The BP4D coding of the FERA 2015 release, restricted to one partition's subjects."""

    name = "fera2015"
    splits = ("all",)

    def __init__(
        self, root: Path, *, aus: Sequence[int], frames_dir: str, subjects: set[str], hint: str
    ) -> None:
        self.hint = hint
        super().__init__(root, aus=aus, frames_dir=frames_dir)
        self.only = subjects

    def split_subjects(self, split: str, subjects: Sequence[str]) -> set[str]:
        return set(self.only)


@register_dataset("fera2015")
class FERA2015(ImageFilesMixin, DatasetAdapter):
    """FERA 2015 (BP4D part): ``train`` = BP4D-training subjects, ``dev`` = BP4D-development.

    Args:
        root: the release's BP4D folder (holding ``AUCoding/`` and the partition folders).
        partitions: split → partition folder name.
        aus: occurrence AU columns (default the challenge's 11).
    """

    name = "fera2015"
    splits = ("train", "dev")
    default_partitions = {"train": "BP4D-training", "dev": "BP4D-development"}
    default_aus = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23)
    expected_files = (
        "AUCoding/AU_OCC/F001_T1.csv",
        "AUCoding/AU_INT/AU06/F001_T1_AU06.csv",
        "BP4D-training/F001/T1/<frame>.jpg",
        "BP4D-development/F002/T1/<frame>.jpg",
    )
    hint = "FERA 2015 data come from the BP4D owners; see docs/datasets.md#fera-2015-and-fera-2017."

    def __init__(
        self,
        root: str | Path,
        *,
        partitions: Mapping[str, str] | None = None,
        aus: Sequence[int] | None = None,
    ) -> None:
        super().__init__(root)
        self.partitions = dict(partitions or self.default_partitions)
        self.aus = tuple(aus or self.default_aus)
        missing = [d for d in self.partitions.values() if not (self.root / d).is_dir()]
        if missing:
            raise DatasetNotFoundError(
                f"{self.name}: missing partition folders {missing} under {self.root}; the layout is "
                f"{', '.join(self.expected_files)}. {self.hint}"
            )

    def subjects(self, split: str) -> set[str]:
        """Subject folders of one partition."""
        return {p.name for p in (self.root / self.partitions[split]).iterdir() if p.is_dir()}

    def load(self, split: str) -> LabelTable:
        """Coded frames of one partition (``image`` paths are relative to ``root``)."""
        self.check_split(split)
        own = self.subjects(split)
        for other in self.partitions:
            shared = own & self.subjects(other) if other != split else set()
            if shared:
                raise ValueError(
                    f"{self.name}: partitions {split} and {other} share subjects {sorted(shared)}; "
                    "the challenge partitions are subject-exclusive — check the folders"
                )
        part = _Partition(
            self.root, aus=self.aus, frames_dir=self.partitions[split], subjects=own, hint=self.hint
        )
        return replace(part.load("all"), split=split)


@register_dataset("fera2017")
class FERA2017(VideoFramesMixin, DatasetAdapter):
    """FERA 2017: ``train`` and ``valid`` partitions (occurrence of 10 AUs, intensity of 7).

    Args:
        root: folder holding the release (searched recursively for ``FERA17_*`` files).
        pose: head pose 1..9 whose videos serve the frames, a list of poses, or ``"all"`` (1..9);
            every row carries its view in ``extra["view"]`` (pose − 1).
        aus: AU columns (default ``schema.au_subset("fera2017")``).
    """

    name = "fera2017"
    splits = ("train", "valid")
    prefixes = {"train": "FERA17_TR_", "valid": "FERA17_VA_"}
    expected_files = ("FERA17_TR_F001_T1.csv", "FERA17_TR_F001_T1_6.mp4", "FERA17_TR_F001_T1_AU01_Int.csv")
    hint = "FERA 2017 data come from the BP4D owners; see docs/datasets.md#fera-2015-and-fera-2017."

    def __init__(
        self,
        root: str | Path,
        *,
        pose: int | str | Sequence[int] = 6,
        aus: Sequence[int] = au_subset("fera2017"),
    ) -> None:
        super().__init__(root)
        self.poses = _poses(pose)
        self.pose = self.poses[0]
        self.aus = tuple(int(a) for a in aus)
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"fera2017: folder {self.root} does not exist; expected it to hold "
                f"{', '.join(self.expected_files)} (any sub-folders). {self.hint}"
            )

    def load(self, split: str) -> LabelTable:
        """Frames of one partition's sequences in the chosen pose."""
        prefix = self.prefixes[self.check_split(split)]
        files: dict[str, Path] = {}
        for p in self.root.rglob(f"{prefix}*"):
            files.setdefault(p.name, p)
        occ = sorted(n for n in files if n.endswith(".csv") and n.count("_") == 3)
        if not occ:
            raise DatasetNotFoundError(
                f"fera2017: no {prefix}<subject>_<task>.csv occurrence files under {self.root} "
                f"(expected e.g. {prefix}F001_T1.csv, {prefix}F001_T1_{self.pose}.mp4). {self.hint}"
            )
        tables = []
        for name in occ:
            seq = name[len(prefix) : -len(".csv")]
            labels = self._sequence(files, prefix, seq, files[name], split)
            for pose in self.poses:
                video = next(
                    (files[f"{prefix}{seq}_{pose}{ext}"] for ext in VIDEO_SUFFIXES
                     if f"{prefix}{seq}_{pose}{ext}" in files),
                    None,
                )  # fmt: skip
                if video is None:
                    raise DatasetNotFoundError(
                        f"fera2017: no pose-{pose} video {prefix}{seq}_{pose}.mp4 for {files[name]}. "
                        f"{self.hint}"
                    )
                n = len(labels)
                tables.append(
                    replace(
                        labels,
                        image=np.full(n, str(video.relative_to(self.root)), dtype=object),
                        video=np.full(n, seq if len(self.poses) == 1 else f"{seq}_{pose}", dtype=object),
                        extra={"view": np.full(n, pose - 1, np.int64)},
                    )
                )
        return concat_tables(tables, split)

    def _sequence(self, files, prefix: str, seq: str, occ_path: Path, split: str) -> LabelTable:
        frames, codes = read_au_occ(occ_path, self.aus)
        n, na = len(frames), len(self.aus)
        occ = np.zeros((n, na), np.float32)
        mask = np.zeros((n, na), bool)
        inten = np.zeros((n, na), np.float32)
        imask = np.zeros((n, na), bool)
        for j, a in enumerate(self.aus):
            if a in codes:
                mask[:, j] = codes[a] != UNCODED
                occ[:, j] = codes[a] == 1
            int_name = f"{prefix}{seq}_AU{a:02d}_Int.csv"
            if int_name in files:
                f_int, v = read_au_int(files[int_name])
                if len(v) != n:
                    raise LabelFormatError(
                        files[int_name], 0, f"{len(v)} intensity lines but {n} frames in {occ_path.name}"
                    )
                inten[:, j] = np.where(v == UNCODED, 0, v)
                imask[:, j] = v != UNCODED
        subject = seq.split("_")[0]
        return table_from_rows(
            self.name, split, self.root, image=[""] * n, subject=[subject] * n, video=[seq] * n,
            frame=np.arange(n), aus=self.aus, au_occurrence=occ, au_mask=mask,
            au_intensity=inten, au_intensity_mask=imask,
        )  # fmt: skip


def _poses(pose: int | str | Sequence[int]) -> tuple[int, ...]:
    """FERA 2017 view numbers (1..9) from the ``pose`` option: one number, a list, or ``"all"``."""
    if isinstance(pose, str) and pose.strip().lower() == "all":
        return tuple(range(1, 10))
    values = [pose] if isinstance(pose, (int, str)) else list(pose)
    try:
        poses = tuple(int(p) for p in values)
    except (TypeError, ValueError):
        raise ValueError(f"fera2017: pose must be 1..9, a list of them or 'all', got {pose!r}") from None
    if not poses or any(not 1 <= p <= 9 for p in poses) or len(set(poses)) != len(poses):
        raise ValueError(f"FERA 2017 has poses 1..9 (distinct), got {pose!r}")
    return poses
