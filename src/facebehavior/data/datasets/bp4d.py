"""BP4D-Spontaneous (Zhang et al., 2014) and BP4D+ (Zhang et al., 2016): FACS-coded task videos.

Official distribution layout (BP4D; BP4D+ is the same with subjects F001–F082, M001–M058)::

    BP4D/
      AUCoding/
        AU_OCC/F001_T1.csv          # header "<frame>,1,2,4,…" (AU numbers); rows frame,0/1/9 …
        AU_INT/AU06/F001_T1_AU06.csv  # "frame,intensity" lines, 0–5 (also accepted: BP4D/AU_INT/…)
      Sequences/F001/T1/0000.jpg …  # 2D texture frames; "2D+3D/" or "Sequences(2D+3D)/" also found
      2D+3D/F001.zip                # … or left zipped as shipped: entries <top>/<task>/<frame>.jpg

The first header field of ``AU_OCC`` files names the frame column (``Frame`` or ``0`` in the
releases); the others are AU numbers (``AU01`` is accepted too). ``9`` marks frames the coders
did not code: those AUs are masked, never read as absent. ``AU_INT`` files (AUs 6, 10, 12, 14,
17 — the FERA2015 intensity set) fill ``au_intensity``/``au_intensity_mask`` where present.
Frame image names may use any zero padding (``frame_files``); labelled frames without an image
are skipped with a warning.

Protocol: subject-exclusive 3-fold cross-validation. BP4D uses the fold lists of JAA-Net/ARL
(``BP4D_PARTS``; ``foldK_test`` = part ``4 − K``). BP4D+ has no standard list; its subjects are
dealt round-robin over 3 folds in sorted order (``assign_folds``), reproducible and
subject-exclusive. ``all`` is every coded sequence.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from facebehavior.data.datasets._common import (
    DIGITS,
    IMAGE_SUFFIXES,
    ImageFilesMixin,
    assign_folds,
    concat_tables,
    csv_rows,
    fold_splits,
    frame_files,
    line_of_row,
    missing_frames_note,
    numeric_table,
    table_from_rows,
)
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    register_dataset,
)
from facebehavior.data.datasets.disfa import fold_subjects
from facebehavior.data.labels import LabelTable
from facebehavior.schema import au_subset

__all__ = ["BP4D", "BP4DPlus", "BP4D_PARTS", "read_au_occ", "read_au_int"]

logger = logging.getLogger(__name__)

BP4D_PARTS: tuple[tuple[str, ...], ...] = (
    (
        "F001",
        "M007",
        "F018",
        "F008",
        "F002",
        "M004",
        "F010",
        "F009",
        "M012",
        "M001",
        "F016",
        "M014",
        "F023",
        "M008",
    ),
    (
        "M011",
        "F003",
        "M010",
        "M002",
        "F005",
        "F022",
        "M018",
        "M017",
        "F013",
        "M016",
        "F020",
        "F011",
        "M013",
        "M005",
    ),
    ("F007", "F015", "F006", "F019", "M006", "M009", "F012", "M003", "F004", "F021", "F017", "M015", "F014"),
)
UNCODED = 9
OCC_DIRS = ("AUCoding/AU_OCC", "AU_OCC")
INT_DIRS = ("AUCoding/AU_INT", "AU_INT")
FRAME_DIRS = ("Sequences", "2D+3D", "Sequences(2D+3D)", "images")


def _au_number(path: Path, text: str) -> int:
    t = text.strip().upper().removeprefix("AU")
    try:
        return int(t)
    except ValueError:
        raise LabelFormatError(path, 1, f"header field {text!r} is not an AU number") from None


def read_au_occ(path: Path, aus: Sequence[int] | None = None) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """One ``AU_OCC`` file.

    Args:
        path: the file.
        aus: AUs whose codes are checked (``None``: every column). The releases carry a column
            for every AU number up to 99, mostly all-9; only the ones used need to be valid.

    Returns:
        frames (R,) int64 as written, and AU number → (R,) float64 codes (0, 1 or 9).

    Raises:
        LabelFormatError: bad header, wrong field count, or a code other than 0/1/9 (with line).
    """
    header = next(csv_rows(path), None)
    if header is None:
        raise LabelFormatError(path, 0, "empty file")
    columns = [_au_number(path, h) for h in header[1][1:]]
    arr = numeric_table(path, len(header[1]), header=True)
    codes = arr[:, 1:]
    checked = [j for j, a in enumerate(columns) if aus is None or a in aus]
    bad = np.argwhere(~np.isin(codes[:, checked], (0, 1, UNCODED)))
    if bad.size:
        r, c = bad[0][0], checked[bad[0][1]]
        raise LabelFormatError(path, line_of_row(path, r, header=True),
                               f"AU{columns[c]} code {codes[r, c]:g} is not 0, 1 or {UNCODED}")  # fmt: skip
    return arr[:, 0].astype(np.int64), {a: codes[:, j] for j, a in enumerate(columns)}


def read_au_int(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One ``AU_INT`` file: frames (R,) int64 and intensities (R,) float64 (0–5, or 9 = uncoded).

    The files are "frame,intensity" lines; a header line, if a copy has one, is skipped.
    """
    first = next(csv_rows(path), None)
    header = first is not None and not first[1][0].lstrip("-").replace(".", "", 1).isdigit()
    arr = numeric_table(path, 2, header=header)
    bad = np.flatnonzero(~np.isin(arr[:, 1], (0, 1, 2, 3, 4, 5, UNCODED)))
    if bad.size:
        raise LabelFormatError(
            path, line_of_row(path, bad[0], header=header), f"intensity {arr[bad[0], 1]:g} not in 0..5 or 9"
        )
    return arr[:, 0].astype(np.int64), arr[:, 1]


class _FACSSequences(ImageFilesMixin, DatasetAdapter):
    """Shared reader of the BP4D-format coding (``AU_OCC`` / ``AU_INT`` + frame folders)."""

    parts: ClassVar[tuple[tuple[str, ...], ...] | None] = None
    num_folds: ClassVar[int] = 3
    default_aus: ClassVar[tuple[int, ...]] = au_subset("bp4d")
    hint: ClassVar[str] = ""

    def __init__(
        self, root: str | Path, *, aus: Sequence[int] | None = None, frames_dir: str | None = None
    ) -> None:
        super().__init__(root)
        self.aus = tuple(int(a) for a in (aus or self.default_aus))
        self.occ_dir = self._first_dir(OCC_DIRS, "AU occurrence folder")
        self.int_dir = next((self.root / d for d in INT_DIRS if (self.root / d).is_dir()), None)
        names = (frames_dir,) if frames_dir else FRAME_DIRS
        self.frames_dir = self._first_dir(names, "frame folder")

    def _first_dir(self, names: Sequence[str], what: str) -> Path:
        for d in names:
            if (self.root / d).is_dir():
                return self.root / d
        raise DatasetNotFoundError(
            f"{self.name}: no {what} under {self.root}; expected one of {', '.join(names)} "
            f"(layout: {', '.join(self.expected_files)}). {self.hint}".strip()
        )

    def sequences(self) -> list[tuple[str, str]]:
        """(subject, task) of every ``AU_OCC/<subject>_<task>.csv`` file, sorted."""
        out = []
        for p in sorted(self.occ_dir.glob("*.csv")):
            subject, _, task = p.stem.partition("_")
            if task:
                out.append((subject, task))
        if not out:
            raise DatasetNotFoundError(
                f"{self.name}: no <subject>_<task>.csv files in {self.occ_dir}. {self.hint}"
            )
        return out

    def _zip_frames(self, subject: str) -> dict[str, dict[int, str]]:
        """Task → frame number → ``image`` entry for a subject's zip (``<zip>/<member>``)."""
        zpath = self.frames_dir / f"{subject}.zip"
        rel = zpath.relative_to(self.root)
        out: dict[str, dict[int, str]] = {}
        with zipfile.ZipFile(zpath) as z:
            for member in z.namelist():
                parts = member.split("/")
                m = DIGITS.search(Path(member).stem)
                if len(parts) >= 2 and Path(member).suffix.lower() in IMAGE_SUFFIXES and m:
                    out.setdefault(parts[-2], {})[int(m.group(1))] = f"{rel}/{member}"
        return out

    def read_images(self, table: LabelTable, index: Iterable[int]) -> list[np.ndarray]:
        """Pixels of rows ``index`` (frames inside per-subject zips are read from the zip)."""
        from PIL import Image

        out = []
        zips: dict[str, zipfile.ZipFile] = {}
        try:
            for i in index:
                path = str(table.image[i])
                zname, sep, member = path.partition(".zip/")
                if not sep:
                    out.extend(super().read_images(table, [i]))
                    continue
                if zname not in zips:
                    zips[zname] = zipfile.ZipFile(table.root / f"{zname}.zip")
                try:
                    data = zips[zname].read(member)
                except KeyError:
                    raise DatasetNotFoundError(f"{self.name}: {member} is not in {zname}.zip") from None
                with Image.open(io.BytesIO(data)) as im:
                    out.append(np.asarray(im.convert("RGB")))
        finally:
            for z in zips.values():
                z.close()
        return out

    def split_subjects(self, split: str, subjects: Sequence[str]) -> set[str]:
        """Subjects of a split (fold lists, or the round-robin assignment when there is none)."""
        if split == "all":
            return set(subjects)
        if self.parts is not None:
            return set(fold_subjects(self.parts, split))
        fold = assign_folds(subjects, self.num_folds)
        k, which = int(split[4 : split.index("_")]), split.rsplit("_", 1)[1]
        return {s for s, f in fold.items() if (f == k) == (which == "test")}

    def load(self, split: str) -> LabelTable:
        """Coded frames of the split's subjects (see module docstring)."""
        self.check_split(split)
        seqs = self.sequences()
        keep = self.split_subjects(split, [s for s, _ in seqs])
        chosen = [(s, t) for s, t in seqs if s in keep]
        if self.parts is not None:
            absent = sorted(keep - {s for s, _ in chosen})
            if absent:
                raise DatasetNotFoundError(
                    f"{self.name}: split {split} needs subjects {absent} but {self.occ_dir} has no "
                    f"<subject>_<task>.csv for them. {self.hint}"
                )
        tables = [self._sequence_table(s, t, split) for s, t in chosen]
        return concat_tables(tables, split)

    def _sequence_table(self, subject: str, task: str, split: str) -> LabelTable:
        occ_path = self.occ_dir / f"{subject}_{task}.csv"
        frames, codes = read_au_occ(occ_path, self.aus)
        n, na = len(frames), len(self.aus)
        occ = np.zeros((n, na), np.float32)
        mask = np.zeros((n, na), bool)
        for j, a in enumerate(self.aus):
            if a in codes:
                c = codes[a]
                mask[:, j] = c != UNCODED
                occ[:, j] = c == 1
        inten = np.zeros((n, na), np.float32)
        imask = np.zeros((n, na), bool)
        if self.int_dir is not None:
            for j, a in enumerate(self.aus):
                p = self.int_dir / f"AU{a:02d}" / f"{subject}_{task}_AU{a:02d}.csv"
                if p.is_file():
                    f_int, v = read_au_int(p)
                    pos = np.searchsorted(frames, f_int)
                    ok = (pos < n) & (frames[np.minimum(pos, n - 1)] == f_int) & (v != UNCODED)
                    inten[pos[ok], j] = v[ok]
                    imask[pos[ok], j] = True
        folder = self.frames_dir / subject / task
        rel = folder.relative_to(self.root).as_posix()
        files = {f: f"{rel}/{name}" for f, name in frame_files(folder).items()}
        where = str(folder)
        if not files and (self.frames_dir / f"{subject}.zip").is_file():
            files = self._zip_frames(subject).get(task, {})
            where = str(self.frames_dir / f"{subject}.zip")
        if not files:
            raise DatasetNotFoundError(
                f"{self.name}: no frame images for {occ_path.name}: expected "
                f"{folder.relative_to(self.root)}/<frame>.jpg or {self.frames_dir.name}/{subject}.zip "
                f"holding <subject>/{task}/<frame>.jpg. {self.hint}"
            )
        has = np.isin(frames, np.fromiter(files, np.int64, len(files)))
        missing_frames_note(self.name, int((~has).sum()), n, where)
        fr = frames[has]
        return table_from_rows(
            self.name, split, self.root,
            image=[files[f] for f in fr.tolist()],
            subject=[subject] * len(fr), video=[f"{subject}_{task}"] * len(fr), frame=fr,
            aus=self.aus,
            au_occurrence=occ[has], au_mask=mask[has],
            au_intensity=inten[has], au_intensity_mask=imask[has],
        )  # fmt: skip


@register_dataset("bp4d")
class BP4D(_FACSSequences):
    """BP4D-Spontaneous adapter (41 subjects × 8 tasks; 12 AUs; 3-fold CV with the JAA-Net lists).

    Args:
        root: the BP4D folder.
        aus: AU columns (default the 12 of ``schema.au_subset("bp4d")``).
        frames_dir: frame folder name under ``root`` when not one of the usual ones.
    """

    name = "bp4d"
    splits = ("all", *fold_splits(3))
    parts = BP4D_PARTS
    expected_files = (
        "AUCoding/AU_OCC/F001_T1.csv",
        "AUCoding/AU_INT/AU06/F001_T1_AU06.csv",
        "Sequences/F001/T1/",
    )
    hint = "BP4D is licensed by Binghamton University; see docs/datasets.md#bp4d-and-bp4d."


@register_dataset("bp4d_plus")
class BP4DPlus(_FACSSequences):
    """BP4D+ adapter (140 subjects; 12 AUs; 3 subject-exclusive folds by sorted round-robin)."""

    name = "bp4d_plus"
    splits = ("all", *fold_splits(3))
    default_aus = au_subset("bp4d_plus")
    expected_files = ("AUCoding/AU_OCC/F001_T1.csv", "2D+3D/F001/T1/")
    hint = "BP4D+ is licensed by Binghamton University; see docs/datasets.md#bp4d-and-bp4d."
