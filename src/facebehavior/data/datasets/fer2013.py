"""FER2013 (Goodfellow et al., 2013) with the FER+ crowd votes (Barsoum et al., ICMI 2016).

Two layouts are read, both with the original row order (row ``i`` = line ``i + 1`` of the csv):

- the official files: ``fer2013.csv`` (Kaggle tarball; columns ``emotion,pixels,Usage``) and,
  for FER+ labels, Microsoft's ``fer2013new.csv`` (columns ``Usage,Image name,neutral,happiness,
  surprise,sadness,anger,disgust,fear,contempt,unknown,NF``) beside it;
- the consolidated ``fer2013.npz`` (arrays ``images``, ``fer_label``, ``usage``,
  ``ferplus_votes``) of the project's shared data folder.

Splits: ``train`` = Training, ``val`` = PublicTest, ``test`` = PrivateTest (the FER+ protocol:
select on PublicTest, report on PrivateTest). The official names are accepted too.

Labels are mapped to ``facebehavior.schema.EXPRESSIONS_8`` (contempt is the 8th class):

- ``expression_dist``: the 8 FER+ emotion votes normalised to sum 1 (``unknown`` and ``NF``
  votes are dropped); all-zero — hence unlabelled — when a row has no emotion vote;
- ``expression``: the FER+ *majority* label: arg-max of the 8 emotion votes. A row has no
  majority label (-1) when (a) the top emotion count is tied between two or more emotions
  (no majority exists; we do not break ties by column order, which would favour ``neutral``),
  or (b) ``unknown`` or ``NF`` received at least as many votes as the top emotion (the FER+
  paper drops unknown / not-a-face images). See ``ferplus_majority``.
  With ``majority="microsoft"`` the FER+ paper's own test protocol instead (Microsoft's
  ``ferplus.py`` "majority" mode, ``ferplus_majority_microsoft``): emotions chosen by a single
  tagger are zeroed first, and a row keeps its label only when the top category holds more than
  half of all remaining votes (``unknown``/``NF`` included) and is an emotion.
- with ``labels="fer2013"`` the original 7-class Kaggle labels instead (no distribution).

Exact duplicate images: FER2013 holds byte-identical pictures in several rows, some of them
across splits. With ``exclude_test_duplicates=True`` (default) training rows whose pixels also
occur in PublicTest or PrivateTest are dropped from ``train``, so that neither checkpoint
selection nor the test score sees training images; ``duplicate_report()`` gives the counts.
"""

from __future__ import annotations

import csv
import logging
import os
import zipfile
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from facebehavior.data.datasets.base import (
    ARRAY_PREFIX,
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    register_dataset,
)
from facebehavior.data.labels import LabelTable
from facebehavior.schema import EXPRESSIONS_8

__all__ = [
    "FER2013",
    "FERPLUS_COLUMNS",
    "FERRaw",
    "ferplus_majority",
    "ferplus_majority_microsoft",
    "read_fer2013_csv",
    "read_fer2013_npz",
    "default_root",
]

logger = logging.getLogger(__name__)

IMAGE_SIDE = 48
USAGE_NAMES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
SPLIT_USAGE: dict[str, int] = {
    "train": 0,
    "val": 1,
    "test": 2,
    "Training": 0,
    "PublicTest": 1,
    "PrivateTest": 2,
}
FER2013_CLASSES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
# FER2013 label index -> EXPRESSIONS_8 index.
FER2013_TO_CANON = np.array(
    [
        EXPRESSIONS_8.index(n)
        for n in ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    ]
)
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)  # fmt: skip
# FER+ emotion vote column -> EXPRESSIONS_8 index (the first 8 columns).
FERPLUS_TO_CANON = np.array([EXPRESSIONS_8.index(n) for n in FERPLUS_COLUMNS[:8]])

CSV_NAME = "fer2013.csv"
NEW_CSV_NAME = "fer2013new.csv"
NPZ_NAME = "fer2013.npz"
HINT = (
    "FER2013 is the Kaggle 'Challenges in Representation Learning: Facial Expression Recognition' "
    "tarball (fer2013/fer2013.csv); FER+ votes are fer2013new.csv from github.com/microsoft/FERPlus. "
    "See docs/training.md."
)


@dataclass(frozen=True)
class FERRaw:
    """The whole corpus in csv row order.

    Attributes:
        images: (N, 48, 48) uint8 grayscale pixels.
        fer_label: (N,) int64 original FER2013 label 0..6 (``FER2013_CLASSES`` order).
        usage: (N,) int64 0 = Training, 1 = PublicTest, 2 = PrivateTest.
        votes: (N, 10) int64 FER+ votes in ``FERPLUS_COLUMNS`` order, or None without FER+.
        source: the file(s) read.
    """

    images: np.ndarray
    fer_label: np.ndarray
    usage: np.ndarray
    votes: np.ndarray | None
    source: str


ROOT_ENV = "FACEBEHAVIOR_FER2013"


def default_root() -> Path:
    """Folder of ``fer2013.npz`` for the benchmarks and tools: ``$FACEBEHAVIOR_FER2013``, else
    ``../shared/datasets/fer2013`` relative to the working directory (the development checkout)."""
    return Path(os.environ.get(ROOT_ENV, "../shared/datasets/fer2013"))


def read_fer2013_npz(path: str | Path) -> FERRaw:
    """Read the consolidated ``fer2013.npz`` (see the shared data README)."""
    path = Path(path)
    try:
        with np.load(path) as d:
            missing = [k for k in ("images", "fer_label", "usage") if k not in d.files]
            if missing:
                raise LabelFormatError(path, 0, f"array(s) {missing} missing; found {d.files}")
            images = np.asarray(d["images"], np.uint8)
            votes = np.asarray(d["ferplus_votes"], np.int64) if "ferplus_votes" in d.files else None
            labels, usage = d["fer_label"].astype(np.int64), d["usage"].astype(np.int64)
            raw = FERRaw(images, labels, usage, votes, str(path))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        if isinstance(e, LabelFormatError):
            raise
        raise LabelFormatError(path, 0, f"not a readable .npz ({e}); check it against its sha256") from None
    n = len(raw.images)
    if raw.images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or len(raw.fer_label) != n or len(raw.usage) != n:
        raise LabelFormatError(path, 0, f"inconsistent array shapes: images {raw.images.shape}, "
                               f"fer_label {raw.fer_label.shape}, usage {raw.usage.shape}")  # fmt: skip
    if votes is not None and votes.shape != (n, len(FERPLUS_COLUMNS)):
        raise LabelFormatError(path, 0, f"ferplus_votes shape {votes.shape} != {(n, len(FERPLUS_COLUMNS))}")
    return raw


def _header(path: Path, row: list[str], required: tuple[str, ...]) -> dict[str, int]:
    cols = {c.strip(): i for i, c in enumerate(row)}
    missing = [c for c in required if c not in cols]
    if missing:
        raise LabelFormatError(
            path, 1, f"header lacks column(s) {missing}; expected {list(required)}, got {row}"
        )
    return cols


def read_fer2013_csv(csv_path: str | Path, new_csv_path: str | Path | None = None) -> FERRaw:
    """Read the official ``fer2013.csv`` and, optionally, FER+ ``fer2013new.csv``.

    Raises:
        LabelFormatError: a malformed line (file and 1-based line number in the message), or
            files whose row counts / Usage columns disagree.
    """
    csv_path = Path(csv_path)
    images, labels, usage = [], [], []
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        head = next(reader, None)
        if head is None:
            raise LabelFormatError(csv_path, 0, "empty file")
        cols = _header(csv_path, head, ("emotion", "pixels", "Usage"))
        ie, ip, iu = cols["emotion"], cols["pixels"], cols["Usage"]
        for lineno, row in enumerate(reader, start=2):
            if len(row) != len(head):
                raise LabelFormatError(csv_path, lineno, f"expected {len(head)} fields, got {len(row)}")
            try:
                emo = int(row[ie])
            except ValueError:
                raise LabelFormatError(csv_path, lineno, f"emotion {row[ie]!r} is not an integer") from None
            if not 0 <= emo < len(FER2013_CLASSES):
                raise LabelFormatError(
                    csv_path, lineno, f"emotion {emo} outside 0..{len(FER2013_CLASSES) - 1}"
                )
            try:
                px = np.array(row[ip].split(), dtype=np.int64)
            except ValueError:
                raise LabelFormatError(csv_path, lineno, "pixels holds a non-integer value") from None
            if px.size != IMAGE_SIDE * IMAGE_SIDE:
                raise LabelFormatError(csv_path, lineno, f"{px.size} pixel values, expected {IMAGE_SIDE**2}")
            if px.min() < 0 or px.max() > 255:
                raise LabelFormatError(csv_path, lineno, "pixel values outside 0..255")
            u = row[iu].strip()
            if u not in USAGE_NAMES:
                raise LabelFormatError(csv_path, lineno, f"Usage {u!r} not one of {list(USAGE_NAMES)}")
            images.append(px.astype(np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE))
            labels.append(emo)
            usage.append(USAGE_NAMES.index(u))
    if not images:
        raise LabelFormatError(csv_path, 0, "no data rows")
    votes = None
    source = str(csv_path)
    if new_csv_path is not None:
        votes = _read_ferplus_votes(Path(new_csv_path), np.asarray(usage))
        source += f" + {new_csv_path}"
    return FERRaw(np.stack(images), np.asarray(labels, np.int64), np.asarray(usage, np.int64), votes, source)


def _read_ferplus_votes(path: Path, usage: np.ndarray) -> np.ndarray:
    rows = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        head = next(reader, None)
        if head is None:
            raise LabelFormatError(path, 0, "empty file")
        cols = _header(path, head, ("Usage", *FERPLUS_COLUMNS))
        iu = cols["Usage"]
        iv = [cols[c] for c in FERPLUS_COLUMNS]
        for lineno, row in enumerate(reader, start=2):
            if len(row) != len(head):
                raise LabelFormatError(path, lineno, f"expected {len(head)} fields, got {len(row)}")
            i = lineno - 2
            if i >= len(usage):
                raise LabelFormatError(path, lineno, f"more rows than {CSV_NAME} ({len(usage)})")
            if row[iu].strip() != USAGE_NAMES[usage[i]]:
                raise LabelFormatError(
                    path, lineno, f"Usage {row[iu]!r} disagrees with {CSV_NAME} ({USAGE_NAMES[usage[i]]!r}); "
                    "the two files must be in the same row order"
                )  # fmt: skip
            try:
                v = [int(row[j]) for j in iv]
            except ValueError:
                raise LabelFormatError(path, lineno, "vote counts must be integers") from None
            if min(v) < 0:
                raise LabelFormatError(path, lineno, "negative vote count")
            rows.append(v)
    if len(rows) != len(usage):
        raise LabelFormatError(path, 0, f"{len(rows)} rows, but {CSV_NAME} has {len(usage)}")
    return np.asarray(rows, np.int64)


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """FER+ majority label of each row, in ``EXPRESSIONS_8`` order.

    Args:
        votes: (N, 10) vote counts in ``FERPLUS_COLUMNS`` order.

    Returns:
        (N,) int64 index into ``EXPRESSIONS_8``; -1 where the top emotion count is tied between
        emotions, where ``unknown`` or ``NF`` has at least the top emotion count, or where no
        emotion received a vote.
    """
    emo = votes[:, :8]
    top = emo.max(1)
    ties = (emo == top[:, None]).sum(1) > 1
    other = votes[:, 8:].max(1)
    valid = (top > 0) & (top > other) & ~ties
    return np.where(valid, FERPLUS_TO_CANON[emo.argmax(1)], -1).astype(np.int64)


def ferplus_majority_microsoft(votes: np.ndarray) -> np.ndarray:
    """Majority label under the FER+ paper's protocol (microsoft/FERPlus ``ferplus.py``, "majority").

    Votes of 1 (a single tagger) are zeroed as outliers; the top category of the remaining 10
    counts must hold more than half of their sum, and must be one of the 8 emotions (not
    ``unknown`` / ``NF``). This is the test set the FER+ paper reports on (3,153 of PrivateTest's
    3,589 rows); it is stricter than :func:`ferplus_majority`.

    Args:
        votes: (N, 10) vote counts in ``FERPLUS_COLUMNS`` order.

    Returns:
        (N,) int64 index into ``EXPRESSIONS_8``, -1 where the row has no label under the protocol.
    """
    v = np.where(votes <= 1, 0, votes).astype(np.int64)
    total = v.sum(1)
    top = v.max(1)
    arg = v.argmax(1)
    valid = (2 * top > total) & (arg < 8) & (total > 0)
    return np.where(valid, FERPLUS_TO_CANON[np.minimum(arg, 7)], -1).astype(np.int64)


def _ferplus_distribution(votes: np.ndarray, drop_single_votes: bool) -> np.ndarray:
    emo = votes[:, :8].astype(np.float32)
    if drop_single_votes:
        # FER+'s own outlier rule (microsoft/FERPlus ferplus.py): an emotion chosen by a single
        # tagger out of ten is treated as annotation noise.
        emo = np.where(emo <= 1, 0, emo)
    total = emo.sum(1, keepdims=True)
    dist = np.zeros((len(votes), 8), np.float32)
    dist[:, FERPLUS_TO_CANON] = np.divide(emo, total, out=np.zeros_like(emo), where=total > 0)
    return dist


class FER2013(DatasetAdapter):
    """FER2013 / FER+ adapter.

    Args:
        root: folder holding ``fer2013.npz``, or ``fer2013.csv`` (directly or in ``fer2013/``)
            with ``fer2013new.csv`` beside it or in ``root``.
        labels: ``"ferplus"`` (vote distributions + majority labels, 8 classes) or ``"fer2013"``
            (the original 7 Kaggle classes).
        exclude_test_duplicates: drop from ``train`` the rows whose exact pixels also occur in
            PublicTest or PrivateTest.
        drop_single_votes: zero emotions chosen by a single tagger before normalising the
            distribution (FER+'s outlier rule); the majority label is unaffected.
        majority: which rows get a single-class label (the evaluated test set): ``"plurality"``
            (:func:`ferplus_majority`) or ``"microsoft"`` (the FER+ paper's protocol,
            :func:`ferplus_majority_microsoft`).
    """

    name = "fer2013"
    splits = ("train", "val", "test", "Training", "PublicTest", "PrivateTest")
    expected_files = (NPZ_NAME, CSV_NAME, NEW_CSV_NAME)

    def __init__(
        self,
        root: str | Path,
        *,
        labels: Literal["ferplus", "fer2013"] = "ferplus",
        exclude_test_duplicates: bool = True,
        drop_single_votes: bool = False,
        majority: Literal["plurality", "microsoft"] = "plurality",
    ) -> None:
        super().__init__(root)
        if majority not in ("plurality", "microsoft"):
            raise ValueError(f"majority must be 'plurality' or 'microsoft', got {majority!r}")
        self.majority = majority
        if labels not in ("ferplus", "fer2013"):
            raise ValueError(f"labels must be 'ferplus' or 'fer2013', got {labels!r}")
        self.labels = labels
        self.exclude_test_duplicates = exclude_test_duplicates
        self.drop_single_votes = drop_single_votes
        self._files = self._locate()

    def _locate(self) -> tuple[Path, Path | None]:
        root = self.root
        if (root / NPZ_NAME).is_file():
            return root / NPZ_NAME, None
        for csv_path in (root / CSV_NAME, root / "fer2013" / CSV_NAME):
            if csv_path.is_file():
                new = next(
                    (p for p in (csv_path.parent / NEW_CSV_NAME, root / NEW_CSV_NAME) if p.is_file()), None
                )
                if new is None and self.labels == "ferplus":
                    raise DatasetNotFoundError(
                        f"fer2013: found {csv_path} but not {NEW_CSV_NAME} (FER+ votes) beside it or in "
                        f"{root}; add it or use labels='fer2013'. {HINT}"
                    )
                return csv_path, new
        raise DatasetNotFoundError(
            f"fer2013: none of {root / NPZ_NAME}, {root / CSV_NAME}, {root / 'fer2013' / CSV_NAME} exists "
            f"(and {NEW_CSV_NAME} for FER+ labels). {HINT}"
        )

    @cached_property
    def raw(self) -> FERRaw:
        """The parsed corpus (read once, on first use)."""
        path, new = self._files
        raw = read_fer2013_npz(path) if path.suffix == ".npz" else read_fer2013_csv(path, new)
        if self.labels == "ferplus" and raw.votes is None:
            raise LabelFormatError(
                path, 0, "no FER+ votes (ferplus_votes) in this file; use labels='fer2013'"
            )
        return raw

    @cached_property
    def _image_groups(self) -> np.ndarray:
        """(N,) int64 id of each row's exact-duplicate group (equal ids = byte-identical pixels)."""
        flat = np.ascontiguousarray(self.raw.images.reshape(len(self.raw.images), -1))
        _, inverse = np.unique(flat.view(np.dtype((np.void, flat.shape[1]))).ravel(), return_inverse=True)
        return inverse.ravel()

    def duplicate_report(self) -> dict[str, int]:
        """Counts of exact-duplicate images.

        Returns:
            ``groups`` (pixel contents occurring on ≥ 2 rows), ``rows`` (rows in such groups),
            ``cross_split_groups`` (groups with copies in Training and in a test split),
            ``train_rows_excluded`` (Training rows whose pixels occur in PublicTest/PrivateTest),
            ``val_test_groups`` (groups shared by PublicTest and PrivateTest).
        """
        g, usage = self._image_groups, self.raw.usage
        counts = np.bincount(g)
        in_split = [np.zeros(len(counts), bool) for _ in range(3)]
        for s in range(3):
            in_split[s][g[usage == s]] = True
        in_eval = in_split[1] | in_split[2]
        return {
            "groups": int((counts > 1).sum()),
            "rows": int(counts[g].__gt__(1).sum()),
            "cross_split_groups": int((in_split[0] & in_eval).sum()),
            "train_rows_excluded": int(((usage == 0) & in_eval[g]).sum()),
            "val_test_groups": int((in_split[1] & in_split[2]).sum()),
        }

    def load(self, split: str) -> LabelTable:
        """Labels of ``split`` (``train``/``val``/``test`` or the official usage names)."""
        usage_id = SPLIT_USAGE[self.check_split(split)]
        raw = self.raw
        rows = np.flatnonzero(raw.usage == usage_id)
        if usage_id == 0 and self.exclude_test_duplicates:
            g = self._image_groups
            in_eval = np.zeros(g.max() + 1, bool)
            in_eval[g[raw.usage != 0]] = True
            keep = ~in_eval[g[rows]]
            logger.info("fer2013: %d training rows also occur in PublicTest/PrivateTest; excluded",
                        int((~keep).sum()))  # fmt: skip
            rows = rows[keep]
        n = len(rows)
        if self.labels == "ferplus":
            assert raw.votes is not None
            votes = raw.votes[rows]
            rule = ferplus_majority_microsoft if self.majority == "microsoft" else ferplus_majority
            expression = rule(votes)
            dist = _ferplus_distribution(votes, self.drop_single_votes)
        else:
            expression = FER2013_TO_CANON[raw.fer_label[rows]].astype(np.int64)
            dist = None
        return LabelTable(
            corpus="ferplus" if self.labels == "ferplus" else "fer2013",
            split=USAGE_NAMES[usage_id],
            root=self.root,
            image=np.array([f"{ARRAY_PREFIX}{r}" for r in rows], dtype=object),
            subject=np.full(n, "", dtype=object),
            video=np.full(n, "", dtype=object),
            frame=np.full(n, -1, np.int64),
            expression=expression,
            expression_dist=dist,
        )

    def read_images(self, table: LabelTable, index) -> list[np.ndarray]:
        """Pixels of rows ``index`` of ``table``: one ``(48, 48, 1)`` uint8 grayscale array each."""
        return list(self.image_array(table)[np.asarray(list(index), np.int64)])

    def image_array(self, table: LabelTable) -> np.ndarray:
        """All pixels of ``table`` at once: ``(N, 48, 48, 1)`` uint8 grayscale."""
        rows = np.array([int(s[len(ARRAY_PREFIX) :]) for s in table.image], np.int64)
        return self.raw.images[rows][..., None]


@register_dataset("ferplus")
def ferplus(root: str | Path, **kwargs: object) -> FER2013:
    """FER2013 images with FER+ labels: ``FER2013(root, labels="ferplus", ...)``."""
    kwargs.setdefault("labels", "ferplus")
    return FER2013(root, **kwargs)  # type: ignore[arg-type]


@register_dataset("fer2013")
def fer2013(root: str | Path, **kwargs: object) -> FER2013:
    """FER2013 with its original 7 Kaggle labels: ``FER2013(root, labels="fer2013", ...)``."""
    kwargs.setdefault("labels", "fer2013")
    return FER2013(root, **kwargs)  # type: ignore[arg-type]
