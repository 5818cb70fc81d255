"""Aff-Wild (Zafeiriou et al., 2017; Kollias et al., 2019): in-the-wild videos with per-frame VA.

Official layout of the owners' release (annotations, boxes and landmarks package + videos)::

    Aff-Wild/
      videos/
        train/105.avi …                 # 252 training videos (.avi or .mp4)
        test/271.mp4 …                  # 46 test videos
      annotations/
        train/
          valence/105.txt               # one value in [-1, 1] per line, line i = frame i - 1
          arousal/105.txt
        test/valence/…, test/arousal/…  # test labels, released after the challenge
      bboxes/…, landmarks/…             # not used (``facebehavior prepare`` re-detects)

The annotation package unpacks into ``aff_wild_annotations_bboxes_landmarks_new/annotations/``;
``annotations/`` and ``videos/`` are looked up at the root and one folder below it.

Rows are video frames: ``image`` is the video file, ``frame`` the 0-based frame index,
``subject``/``video`` the video name (one annotated person per video). Valence and arousal
files of a video must have the same number of lines. Splits: ``train`` and ``test`` (the
challenge partitions; no subject overlaps by the organisers' design).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import (
    VIDEO_SUFFIXES,
    VideoFramesMixin,
    concat_tables,
    line_of_row,
    numeric_table,
    table_from_rows,
)
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    register_dataset,
)
from facebehavior.data.labels import LabelTable

__all__ = ["AffWild"]

HINT = "Aff-Wild is distributed by its authors on request; see docs/datasets.md#aff-wild."


def read_series(path: Path) -> np.ndarray:
    """One per-frame annotation file: (T,) float32 values, each in [-1, 1]."""
    x = numeric_table(path, 1, header=False)[:, 0]
    bad = np.flatnonzero((x < -1) | (x > 1))
    if bad.size:
        raise LabelFormatError(path, line_of_row(path, bad[0]), f"value {x[bad[0]]:g} outside [-1, 1]")
    return x.astype(np.float32)


@register_dataset("affwild")
class AffWild(VideoFramesMixin, DatasetAdapter):
    """Aff-Wild adapter (valence/arousal per video frame).

    Args:
        root: the Aff-Wild folder holding ``videos/`` and ``annotations/``.
    """

    name = "affwild"
    splits = ("train", "test")
    expected_files = ("videos/train/<video>.avi", "annotations/train/valence/<video>.txt",
                      "annotations/train/arousal/<video>.txt")  # fmt: skip

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"affwild: folder {self.root} does not exist; expected it to hold "
                f"{', '.join(self.expected_files)}. {HINT}"
            )
        self.annotations = self._locate("annotations")
        self.videos = self._locate("videos")

    def _locate(self, name: str) -> Path:
        for d in (self.root, *sorted(p for p in self.root.iterdir() if p.is_dir())):
            if (d / name).is_dir():
                return d / name
        raise DatasetNotFoundError(
            f"affwild: no {name}/ folder in {self.root} or one level below; expected "
            f"{', '.join(self.expected_files)}. {HINT}"
        )

    def load(self, split: str) -> LabelTable:
        """Annotated frames of ``split``."""
        self.check_split(split)
        vdir = self.annotations / split / "valence"
        adir = self.annotations / split / "arousal"
        if not vdir.is_dir() or not adir.is_dir():
            raise DatasetNotFoundError(
                f"affwild: expected {vdir} and {adir} holding <video>.txt per-frame annotations. {HINT}"
            )
        tables = []
        for vpath in sorted(vdir.glob("*.txt")):
            name = vpath.stem
            apath = adir / vpath.name
            if not apath.is_file():
                raise DatasetNotFoundError(f"affwild: {vpath} has no arousal counterpart {apath}. {HINT}")
            v, a = read_series(vpath), read_series(apath)
            if len(v) != len(a):
                raise LabelFormatError(
                    apath, 0, f"{len(a)} arousal lines but {len(v)} valence lines in {vpath}"
                )
            vfolder = self.videos / split
            video = next(
                (vfolder / f"{name}{e}" for e in VIDEO_SUFFIXES if (vfolder / f"{name}{e}").is_file()), None
            )
            if video is None:
                raise DatasetNotFoundError(
                    f"affwild: no video for {vpath.name}: expected {vfolder}/{name}.mp4 (or .avi). {HINT}"
                )
            n = len(v)
            rel = str(video.relative_to(self.root))
            tables.append(
                table_from_rows(
                    self.name,
                    split,
                    self.root,
                    image=[rel] * n,
                    subject=[name] * n,
                    video=[name] * n,
                    frame=np.arange(n),
                    va=np.stack([v, a], 1),
                    va_mask=np.ones(n, bool),
                )  # fmt: skip
            )
        if not tables:
            raise DatasetNotFoundError(f"affwild: no <video>.txt files in {vdir}. {HINT}")
        return concat_tables(tables, split)
