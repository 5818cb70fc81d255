"""DISFA (Mavadati et al., 2013): 27 subjects, stereo video, 12 AUs coded 0–5 per frame.

Official distribution layout (as shipped by the DISFA owners)::

    DISFA/
      ActionUnit_Labels/
        SN001/SN001_au1.txt … SN001_au26.txt    # one "frame,intensity" line per frame (frame 1-based)
        SN002/…
      Videos_LeftCamera/LeftVideoSN001_comp.avi  # 4845 frames each, 20 fps
      Videos_RightCamera/RightVideoSN001_Comp.avi
      Landmark_Points/…                          # not used

Table rows are video frames: ``image`` is the video file (relative to the root), ``frame`` the
0-based index (label frame − 1), ``subject``/``video`` the subject id (``SN001``). Both
occurrence and intensity are filled for the 12 AUs (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26):
intensity 0–5 as coded, occurrence = intensity ≥ 2 (the convention of every DISFA AU-detection
paper; ``threshold`` changes it). Pass ``aus=schema.au_subset("disfa")`` for the 8-AU
detection protocol.

Protocol: subject-exclusive 3-fold cross-validation with the fold lists of JAA-Net/ARL
(``DISFA_PARTS``); ``foldK_test`` is part ``4 − K`` and ``foldK_train`` the two other parts,
exactly as those codebases define fold 1 (test part 3), fold 2 (test part 2), fold 3 (test
part 1). ``all`` is every subject.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import (
    VideoFramesMixin,
    concat_tables,
    find_video,
    fold_splits,
    line_of_row,
    numeric_table,
    parse_fold,
    table_from_rows,
)
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    register_dataset,
    require_files,
)
from facebehavior.data.labels import LabelTable
from facebehavior.schema import au_subset

__all__ = ["DISFA", "DISFA_AUS", "DISFA_PARTS"]

logger = logging.getLogger(__name__)

DISFA_AUS: tuple[int, ...] = au_subset("disfa_intensity")
DISFA_PARTS: tuple[tuple[str, ...], ...] = (
    ("SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"),
    ("SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"),
    ("SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"),
)
LABELS_DIR = "ActionUnit_Labels"
CAMERA_DIRS = {"left": "Videos_LeftCamera", "right": "Videos_RightCamera"}
HINT = "DISFA is licensed by its owners (request access); see docs/datasets.md#disfa."


def fold_subjects(parts: tuple[tuple[str, ...], ...], split: str) -> tuple[str, ...]:
    """Subjects of ``all`` or ``foldK_train``/``foldK_test`` (test part = ``parts[-K]``)."""
    if split == "all":
        return tuple(s for p in parts for s in p)
    fold = parse_fold(split, len(parts))
    if fold is None:
        raise KeyError(f"unknown split {split!r}")
    k, which = fold
    test = len(parts) - k
    if which == "test":
        return parts[test]
    return tuple(s for i, p in enumerate(parts) if i != test for s in p)


@register_dataset("disfa")
class DISFA(VideoFramesMixin, DatasetAdapter):
    """DISFA adapter.

    Args:
        root: the DISFA folder (holding ``ActionUnit_Labels`` and the camera folders).
        camera: ``"left"`` or ``"right"`` camera video the frames come from.
        aus: AU columns (must be DISFA AUs); default all 12.
        threshold: occurrence = intensity ≥ threshold.
    """

    name = "disfa"
    splits = ("all", *fold_splits(3))
    expected_files = (f"{LABELS_DIR}/SN001/SN001_au1.txt", "Videos_LeftCamera/LeftVideoSN001_comp.avi")

    def __init__(
        self, root: str | Path, *, camera: str = "left", aus: tuple[int, ...] = DISFA_AUS, threshold: int = 2
    ) -> None:
        super().__init__(root)
        if camera not in CAMERA_DIRS:
            raise ValueError(f"camera must be one of {sorted(CAMERA_DIRS)}, got {camera!r}")
        bad = [a for a in aus if a not in DISFA_AUS]
        if bad:
            raise ValueError(f"DISFA codes AUs {list(DISFA_AUS)}; not {bad}")
        self.camera = camera
        self.aus = tuple(int(a) for a in aus)
        self.threshold = threshold
        require_files(self.root, [LABELS_DIR, CAMERA_DIRS[camera]], corpus=self.name, hint=HINT)

    def label_files(self, subject: str) -> list[Path]:
        """The per-AU label files of one subject, in ``self.aus`` order."""
        return [self.root / LABELS_DIR / subject / f"{subject}_au{a}.txt" for a in self.aus]

    def load(self, split: str) -> LabelTable:
        """Frames of the split's subjects with AU intensity/occurrence (see module docstring)."""
        subjects = fold_subjects(DISFA_PARTS, self.check_split(split))
        missing = [
            str(p.relative_to(self.root)) for s in subjects for p in self.label_files(s) if not p.is_file()
        ]
        if missing:
            raise DatasetNotFoundError(
                f"disfa: missing {len(missing)} label files under {self.root}, e.g. {', '.join(missing[:4])} "
                f"(expected {LABELS_DIR}/<SNxxx>/<SNxxx>_au<N>.txt for AUs {list(self.aus)}). {HINT}"
            )
        tables = [self._subject_table(s, split) for s in subjects]
        return concat_tables(tables, split)

    def _subject_table(self, subject: str, split: str) -> LabelTable:
        video = find_video(self.root / CAMERA_DIRS[self.camera], subject)
        if video is None:
            raise DatasetNotFoundError(
                f"disfa: no {self.camera}-camera video for {subject} in "
                f"{self.root / CAMERA_DIRS[self.camera]} "
                f"(expected e.g. {self.camera.title()}Video{subject}_comp.avi). {HINT}"
            )
        per_au = []
        for path in self.label_files(subject):
            arr = numeric_table(path, 2, header=False)
            if len(arr) == 0:
                raise LabelFormatError(path, 0, "no label lines")
            frames = arr[:, 0]
            bad = np.flatnonzero((frames < 1) | (frames != np.round(frames)))
            if bad.size:
                raise LabelFormatError(
                    path, line_of_row(path, bad[0]), f"frame {arr[bad[0], 0]:g} is not a 1-based integer"
                )
            bad = np.flatnonzero((arr[:, 1] < 0) | (arr[:, 1] > 5) | (arr[:, 1] != np.round(arr[:, 1])))
            if bad.size:
                raise LabelFormatError(
                    path, line_of_row(path, bad[0]), f"intensity {arr[bad[0], 1]:g} not in 0..5"
                )
            per_au.append(arr)
        frames = np.unique(np.concatenate([a[:, 0] for a in per_au])).astype(np.int64)
        n, na = len(frames), len(self.aus)
        inten = np.zeros((n, na), np.float32)
        mask = np.zeros((n, na), bool)
        for j, arr in enumerate(per_au):
            pos = np.searchsorted(frames, arr[:, 0].astype(np.int64))
            inten[pos, j] = arr[:, 1]
            mask[pos, j] = True
        rel = str(video.relative_to(self.root))
        return table_from_rows(
            self.name, split, self.root,
            image=[rel] * n, subject=[subject] * n, video=[subject] * n, frame=frames - 1,
            aus=self.aus,
            au_occurrence=((inten >= self.threshold) & mask).astype(np.float32),
            au_mask=mask,
            au_intensity=inten,
            au_intensity_mask=mask.copy(),
        )  # fmt: skip
