"""Helpers shared by the corpus adapters (private: not an adapter, not auto-registered).

Parsing helpers report malformed lines as ``LabelFormatError`` with file and 1-based line
number; frame helpers map numbered frame files (any zero padding) to frame indices; the
``VideoFramesMixin`` serves pixels for corpora whose ``image`` column names a video file.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from facebehavior.data.datasets.base import DatasetNotFoundError, LabelFormatError
from facebehavior.data.labels import OPTIONAL_ROW_ARRAYS, ROW_ARRAYS, LabelTable

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".wmv", ".flv", ".mpg", ".mpeg", ".webm")
DIGITS = re.compile(r"(\d+)$")


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a text file as (1-based line number, stripped text)."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if line:
                yield lineno, line


def csv_rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Non-empty CSV rows as (1-based line number, fields stripped of spaces)."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f, delimiter=delimiter)
        for row in reader:
            if row and any(c.strip() for c in row):
                yield reader.line_num, [c.strip() for c in row]


def to_float(path: Path, lineno: int, text: str, what: str) -> float:
    """Parse a float or raise ``LabelFormatError`` naming the field."""
    try:
        v = float(text)
    except ValueError:
        raise LabelFormatError(path, lineno, f"{what} {text!r} is not a number") from None
    if not np.isfinite(v):
        raise LabelFormatError(path, lineno, f"{what} {text!r} is not finite")
    return v


def to_int(path: Path, lineno: int, text: str, what: str) -> int:
    """Parse an integer (``"3"`` or ``"3.0"``) or raise ``LabelFormatError`` naming the field."""
    v = to_float(path, lineno, text, what)
    if v != int(v):
        raise LabelFormatError(path, lineno, f"{what} {text!r} is not an integer")
    return int(v)


def numeric_table(path: Path, ncols: int | None = None, *, header: bool, delimiter: str = ",") -> np.ndarray:
    """A numeric CSV as a float64 (R, C) array, with line-numbered errors.

    Args:
        path: the file.
        ncols: required number of columns (``None``: as many as the first data row).
        header: skip the first non-blank line.
        delimiter: field separator.
    """
    try:
        # Fast path; the slow path below only runs to locate a bad line for the error message.
        arr = np.loadtxt(
            path, delimiter=delimiter, skiprows=1 if header else 0, ndmin=2, encoding="utf-8-sig"
        )
        if np.isfinite(arr).all() and (ncols is None or arr.shape[1] == ncols or arr.size == 0):
            return arr.astype(np.float64)
    except ValueError:
        pass
    rows: list[list[float]] = []
    first = True
    for lineno, fields in csv_rows(path, delimiter):
        if first and header:
            first = False
            continue
        first = False
        if ncols is None:
            ncols = len(fields)
        if len(fields) != ncols:
            raise LabelFormatError(path, lineno, f"expected {ncols} fields, got {len(fields)}")
        rows.append([to_float(path, lineno, x, f"field {j + 1}") for j, x in enumerate(fields)])
    return np.asarray(rows, np.float64).reshape(-1, ncols or 0)


def line_of_row(path: Path, row: int, *, header: bool = False) -> int:
    """1-based line number of the ``row``-th (0-based) non-blank data line of a file."""
    seen = -2 if header else -1
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                seen += 1
                if seen == row:
                    return lineno
    return 0


def frame_files(folder: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> dict[int, str]:
    """Numbered frame images of a folder: frame number (as written in the name) → file name.

    ``00042.jpg``, ``42.jpg`` and ``frame_042.png`` all map to 42, so the adapters do not
    depend on a corpus' zero padding.
    """
    # Plain string operations: corpora hold millions of frames and pathlib costs ~20 µs a name.
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out: dict[int, str] = {}
    for name in names:
        stem, ext = os.path.splitext(name)
        if ext.lower() in suffixes:
            m = DIGITS.search(stem)
            if m:
                out[int(m.group(1))] = name
    return out


def find_video(folder: Path, pattern: str) -> Path | None:
    """The first video file in ``folder`` whose name contains ``pattern`` (case-insensitive)."""
    if not folder.is_dir():
        return None
    pat = pattern.lower()
    hits = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and pat in p.name.lower())
    return hits[0] if hits else None


def table_from_rows(
    corpus: str,
    split: str,
    root: Path,
    *,
    image: Sequence[str],
    subject: Sequence[str],
    video: Sequence[str] | None = None,
    frame: Sequence[int] | None = None,
    expression: Sequence[int] | None = None,
    **arrays: object,
) -> LabelTable:
    """Build a ``LabelTable`` from per-row lists (defaults: still images, no expression)."""
    n = len(image)
    return LabelTable(
        corpus=corpus,
        split=split,
        root=root,
        image=np.asarray(list(image), dtype=object).reshape(n),
        subject=np.asarray(list(subject), dtype=object).reshape(n),
        video=np.full(n, "", dtype=object)
        if video is None
        else np.asarray(list(video), dtype=object).reshape(n),
        frame=np.full(n, -1, np.int64) if frame is None else np.asarray(frame, np.int64).reshape(n),
        expression=np.full(n, -1, np.int64)
        if expression is None
        else np.asarray(expression, np.int64).reshape(n),
        **arrays,  # type: ignore[arg-type]
    )


def concat_tables(tables: Sequence[LabelTable], split: str) -> LabelTable:
    """Row-wise concatenation of tables of one corpus with identical AU columns."""
    if len(tables) == 1:
        return replace(tables[0], split=split)
    t0 = tables[0]

    def cat(name: str) -> np.ndarray | None:
        vals = [getattr(t, name) for t in tables]
        return None if any(v is None for v in vals) else np.concatenate(vals)

    keys = set(t0.extra)
    return LabelTable(
        corpus=t0.corpus,
        split=split,
        root=t0.root,
        aus=t0.aus,
        **{f: cat(f) for f in ROW_ARRAYS + OPTIONAL_ROW_ARRAYS},
        extra={
            k: np.concatenate([t.extra[k] for t in tables]) for k in keys if all(k in t.extra for t in tables)
        },
    )


def parse_fold(split: str, num_folds: int) -> tuple[int, str] | None:
    """``"fold2_test"`` → (2, "test"); ``None`` for any other name."""
    m = re.fullmatch(r"fold(\d+)_(train|test)", split)
    if not m or not 1 <= int(m.group(1)) <= num_folds:
        return None
    return int(m.group(1)), m.group(2)


def fold_splits(num_folds: int) -> tuple[str, ...]:
    """Split names ``fold1_train, fold1_test, …`` for a k-fold protocol."""
    return tuple(f"fold{k}_{s}" for k in range(1, num_folds + 1) for s in ("train", "test"))


def assign_folds(subjects: Iterable[str], num_folds: int) -> dict[str, int]:
    """Deterministic subject → fold (1-based) assignment: sorted ids dealt round-robin.

    Used for corpora without a published fold list; documented per adapter so results are
    reproducible.
    """
    return {s: i % num_folds + 1 for i, s in enumerate(sorted(set(subjects)))}


def missing_frames_note(corpus: str, dropped: int, total: int, where: str) -> None:
    """Log (once per load) how many labelled frames have no image file."""
    if dropped:
        logger.warning("%s: %d of %d labelled frames have no image under %s; those rows are skipped",
                       corpus, dropped, total, where)  # fmt: skip


def read_image_file(corpus: str, path: Path) -> np.ndarray:
    """One image file as (H, W, 3) uint8 RGB, read like the Analyzer reads images.

    ``facebehavior.io.images.read_image`` applies the EXIF orientation (web corpora such as
    AffectNet and EmotioNet carry it), so training crops are oriented as inference sees them.

    Raises:
        DatasetNotFoundError: the file listed in the labels is missing.
        facebehavior.io.InputError: the file is unreadable (the face-crop cache records such rows).
    """
    from facebehavior.io.images import read_image

    if not path.is_file():
        raise DatasetNotFoundError(f"{corpus}: image {path} listed in the labels is missing")
    return read_image(path, downscale=True)


class ImageFilesMixin:
    """``read_images`` for tables whose ``image`` column names image files under ``table.root``."""

    name: str

    def read_images(self, table: LabelTable, index: Iterable[int]) -> list[np.ndarray]:
        """Pixels of rows ``index``: one (H, W, 3) uint8 RGB array each (EXIF orientation applied)."""
        return [read_image_file(self.name, table.root / str(table.image[int(i)])) for i in index]


class _VideoCursor:
    """An open decoder positioned in one video; serves increasing frame indices without re-decoding."""

    def __init__(self, path: Path, start: int) -> None:
        from facebehavior.io.video import VideoReader

        self.path = path
        self._batches = iter(VideoReader(path, batch_size=32, start_frame=start))
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        self.next_index = start  # every frame before this one has been decoded already

    def take(self, need: set[int]) -> dict[int, np.ndarray]:
        """Decode forward up to ``max(need)``, returning the needed frames found."""
        out: dict[int, np.ndarray] = {}
        last = max(need)
        while self.next_index <= last:
            if not self._pending:
                batch = next(self._batches, None)
                if batch is None:
                    break
                self._pending.extend(zip(batch.index.tolist(), batch.images, strict=True))
            fi, img = self._pending.popleft()
            self.next_index = fi + 1
            if fi in need:
                out[fi] = np.array(img)
        return out


class VideoFramesMixin:
    """``read_images`` for tables whose ``image`` column names a video file and ``frame`` a 0-based index.

    The adapter keeps one open decoder per video between calls, so reading a video's rows batch
    by batch in frame order (what ``facebehavior prepare`` does) decodes it once; a request for
    an earlier frame reopens the video.
    """

    name: str
    _MAX_CURSORS = 4

    def __getstate__(self) -> dict:
        # Open decoders cannot be pickled (process workers); each process opens its own.
        state = dict(self.__dict__)
        state.pop("_cursors", None)
        return state

    def read_images(self, table: LabelTable, index: Iterable[int]) -> list[np.ndarray]:
        """Pixels of rows ``index``: one (H, W, 3) uint8 RGB array each (decoded from the videos)."""
        idx = [int(i) for i in index]
        out: list[np.ndarray | None] = [None] * len(idx)
        by_video: dict[str, list[tuple[int, int]]] = {}
        for k, i in enumerate(idx):
            path = str(table.image[i])
            if Path(path).suffix.lower() not in VIDEO_SUFFIXES:
                out[k] = read_image_file(self.name, table.root / path)
                continue
            by_video.setdefault(path, []).append((int(table.frame[i]), k))
        cursors: dict[Path, _VideoCursor] = self.__dict__.setdefault("_cursors", {})
        for path, wanted in by_video.items():
            p = table.root / path
            if not p.is_file():
                raise DatasetNotFoundError(f"{self.name}: video {p} listed in the labels is missing")
            need: dict[int, list[int]] = {}
            for f, k in wanted:
                need.setdefault(f, []).append(k)
            cur = cursors.get(p)
            if cur is None or min(need) < cur.next_index:
                cursors.pop(p, None)
                while len(cursors) >= self._MAX_CURSORS:
                    cursors.pop(next(iter(cursors)))
                cur = cursors[p] = _VideoCursor(p, min(need))
            got = cur.take(set(need))
            missing = sorted(set(need) - set(got))
            if missing:
                cursors.pop(p, None)
                raise DatasetNotFoundError(
                    f"{self.name}: video {p} ended before frames {missing[:5]} listed in the labels"
                )
            for f, ks in need.items():
                for k in ks:
                    out[k] = got[f]
        return out  # type: ignore[return-value]
