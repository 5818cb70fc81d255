"""Aff-Wild2 as distributed for the ABAW challenges (Kollias & Zafeiriou, 2019–2023).

Official layout (ABAW3 and later; the ABAW2 folder names in brackets are accepted too)::

    Aff-Wild2/
      Annotations/                                  [annotations/]
        VA_Estimation_Challenge/                    [VA_Set/]
          Train_Set/<video>.txt                     # header "valence,arousal"; -5 = unannotated
          Validation_Set/<video>.txt
        EXPR_Classification_Challenge/              [EXPR_Set/, EXPR_Recognition_Challenge/]
          Train_Set/<video>.txt                     # header "Neutral,Anger,…,Surprise,Other"; one class
          Validation_Set/<video>.txt                #   index per line; -1 = unannotated
        AU_Detection_Challenge/                     [AU_Set/]
          Train_Set/<video>.txt                     # header "AU1,AU2,AU4,…,AU26"; 0/1, -1 = unannotated
          Validation_Set/<video>.txt                # ([Training_Set/] in ABAW2)
      cropped_aligned/<video>/00001.jpg …           # the organisers' aligned crops, 1-based frames
      cropped_aligned_new_50_vids/<video>/…         # (ABAW5 additions; searched as well)

The releases name the annotation folder differently ("Third ABAW Annotations", "6th ABAW
Annotations", …): any folder up to two levels below the root that holds a challenge folder is
used (``annotations=`` forces one); crop folders named ``cropped_aligned*`` are found the same
way (``images=`` forces them).

Line ``i`` (1-based, after the header) of an annotation file labels frame ``i``, whose crop is
``cropped_aligned/<video>/<i:05d>.jpg``; the organisers skipped frames without a detected face,
so rows without a crop are dropped (with a warning). Videos with two annotated people are split
into ``<video>_left`` and ``<video>_right``; each is its own ``video`` and ``subject``.

``load(split)`` merges the requested challenges (``tasks``) frame by frame: a frame annotated for
VA only has its expression and AU masks off. Class mapping: ABAW's 7 basic classes go to
``EXPRESSIONS_8`` by name; ABAW3+'s ``Other`` has no canonical class, so such frames get
``expression = -1`` and ``extra["expression_other"] = True`` (keep them for 8-class ABAW
scoring). AU columns are the AU numbers in the header (12 from ABAW2 on). Splits: ``train`` and
``val``, the challenge partitions (subject-independent by the organisers' design).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import (
    ImageFilesMixin,
    csv_rows,
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
from facebehavior.data.labels import LabelTable
from facebehavior.schema import EXPRESSIONS_8

__all__ = ["AffWild2", "TASK_DIRS", "SPLIT_DIRS"]

TASK_DIRS: dict[str, tuple[str, ...]] = {
    "va": ("VA_Estimation_Challenge", "VA_Set"),
    "expr": ("EXPR_Classification_Challenge", "EXPR_Recognition_Challenge", "EXPR_Set"),
    "au": ("AU_Detection_Challenge", "AU_Set"),
}
SPLIT_DIRS: dict[str, tuple[str, ...]] = {
    "train": ("Train_Set", "Training_Set"),
    "val": ("Validation_Set",),
}
IMAGE_DIRS = ("cropped_aligned", "cropped_aligned_new_50_vids")
EXPR_NAMES = {
    "neutral": "neutral", "anger": "anger", "angry": "anger", "disgust": "disgust", "fear": "fear",
    "happiness": "happiness", "happy": "happiness", "sadness": "sadness", "sad": "sadness",
    "surprise": "surprise", "surprised": "surprise", "other": "other",
}  # fmt: skip
VA_UNANNOTATED = -5.0
HINT = "Aff-Wild2 is distributed by its authors to ABAW participants; see docs/datasets.md#aff-wild2."


@register_dataset("affwild2")
class AffWild2(ImageFilesMixin, DatasetAdapter):
    """Aff-Wild2 / ABAW adapter.

    Args:
        root: the Aff-Wild2 folder (holding ``Annotations`` and ``cropped_aligned``).
        tasks: challenges whose annotations are merged: any of ``"va"``, ``"expr"``, ``"au"``.
    """

    name = "affwild2"
    splits = ("train", "val")
    expected_files = (
        "Annotations/VA_Estimation_Challenge/Train_Set/<video>.txt",
        "Annotations/EXPR_Classification_Challenge/Train_Set/<video>.txt",
        "Annotations/AU_Detection_Challenge/Train_Set/<video>.txt",
        "cropped_aligned/<video>/00001.jpg",
    )

    def __init__(
        self,
        root: str | Path,
        *,
        tasks: Sequence[str] = ("va", "expr", "au"),
        annotations: str | None = None,
        images: Sequence[str] | None = None,
    ) -> None:
        super().__init__(root)
        bad = [t for t in tasks if t not in TASK_DIRS]
        if bad or not tasks:
            raise ValueError(f"tasks must be a non-empty subset of {list(TASK_DIRS)}, got {list(tasks)}")
        self.tasks = tuple(tasks)
        task_names = {n for names in TASK_DIRS.values() for n in names}
        if annotations is not None:
            ann = self.root / annotations if (self.root / annotations).is_dir() else None
        else:
            ann = next((d for d in _folders(self.root) if any((d / n).is_dir() for n in task_names)), None)
        if images is not None:
            image_dirs = [self.root / d for d in images if (self.root / d).is_dir()]
        else:
            image_dirs = sorted(d for d in _folders(self.root) if d.name.startswith("cropped_aligned"))
        if ann is None or not image_dirs:
            raise DatasetNotFoundError(
                f"affwild2: expected an annotation folder (e.g. Annotations/) holding {TASK_DIRS['va'][0]}/… "
                f"and {IMAGE_DIRS[0]}/ under {self.root} "
                f"(layout: {', '.join(self.expected_files)}). {HINT}"
            )
        self.annotation_dir = ann
        self.image_dirs = image_dirs

    def task_dir(self, task: str, split: str) -> Path:
        """Folder of one challenge's annotation files for ``split``."""
        for t in TASK_DIRS[task]:
            for s in SPLIT_DIRS[split]:
                p = self.annotation_dir / t / s
                if p.is_dir():
                    return p
        raise DatasetNotFoundError(
            f"affwild2: no {task.upper()} annotations for {split}: expected "
            f"{self.annotation_dir / TASK_DIRS[task][0] / SPLIT_DIRS[split][0]}/<video>.txt. {HINT}"
        )

    def load(self, split: str) -> LabelTable:
        """Frames of ``split`` with the merged annotations of ``self.tasks``."""
        self.check_split(split)
        per_task = {t: {p.stem: p for p in sorted(self.task_dir(t, split).glob("*.txt"))} for t in self.tasks}
        videos = sorted(set().union(*[set(v) for v in per_task.values()]))
        au_numbers: tuple[int, ...] = ()
        parsed: list[tuple[str, dict[str, object]]] = []
        for v in videos:
            labels: dict[str, object] = {}
            if v in per_task.get("va", {}):
                labels["va"] = _read_va(per_task["va"][v])
            if v in per_task.get("expr", {}):
                labels["expr"] = _read_expr(per_task["expr"][v])
            if v in per_task.get("au", {}):
                aus, occ = _read_au(per_task["au"][v])
                if au_numbers and aus != au_numbers:
                    raise LabelFormatError(per_task["au"][v], 1, f"AU header {aus} differs from {au_numbers}")
                au_numbers = aus
                labels["au"] = occ
            parsed.append((v, labels))
        cols: dict[str, list] = {
            k: [] for k in ("image", "video", "frame", "expr", "other", "va", "vam", "au", "aum")
        }
        dropped = total = 0
        na = len(au_numbers)
        for v, labels in parsed:
            n = max(len(x) if isinstance(x, np.ndarray) else len(x[0]) for x in labels.values())  # type: ignore[arg-type]
            va = np.zeros((n, 2), np.float32)
            vam = np.zeros(n, bool)
            expr = np.full(n, -1, np.int64)
            other = np.zeros(n, bool)
            au = np.zeros((n, na), np.float32)
            aum = np.zeros((n, na), bool)
            if "va" in labels:
                x = labels["va"]
                vam[: len(x)] = (x != VA_UNANNOTATED).all(1)  # type: ignore[union-attr]
                va[: len(x)] = np.where(vam[: len(x), None], x, 0)  # type: ignore[arg-type]
            if "expr" in labels:
                e, o = labels["expr"]  # type: ignore[misc]
                expr[: len(e)] = e
                other[: len(o)] = o
            if "au" in labels:
                x = labels["au"]
                aum[: len(x)] = x >= 0  # type: ignore[operator]
                au[: len(x)] = x == 1  # type: ignore[operator]
            annotated = vam | (expr >= 0) | other | aum.any(1)
            folder = next((d / v for d in self.image_dirs if (d / v).is_dir()), self.image_dirs[0] / v)
            files = frame_files(folder)
            frames = np.arange(1, n + 1)
            has = annotated & np.isin(frames, np.fromiter(files, np.int64, len(files)))
            total += int(annotated.sum())
            dropped += int(annotated.sum() - has.sum())
            rel = folder.relative_to(self.root).as_posix()
            cols["image"] += [f"{rel}/{files[f]}" for f in frames[has].tolist()]
            cols["video"] += [v] * int(has.sum())
            for key, arr in (("frame", frames), ("expr", expr), ("other", other), ("va", va), ("vam", vam),
                             ("au", au), ("aum", aum)):  # fmt: skip
                cols[key].append(arr[has])
        missing_frames_note(self.name, dropped, total, ", ".join(str(d) for d in self.image_dirs))

        def cat(key: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
            return np.concatenate(cols[key]) if cols[key] else np.zeros(shape, dtype)

        return table_from_rows(
            self.name, split, self.root,
            image=cols["image"], subject=cols["video"], video=cols["video"],
            frame=cat("frame", (0,), np.int64), expression=cat("expr", (0,), np.int64),
            aus=au_numbers, au_occurrence=cat("au", (0, na), np.float32), au_mask=cat("aum", (0, na), bool),
            va=cat("va", (0, 2), np.float32), va_mask=cat("vam", (0,), bool),
            extra={"expression_other": cat("other", (0,), bool)},
        )  # fmt: skip


def _folders(root: Path) -> list[Path]:
    """Folders up to two levels below ``root`` (``root`` excluded), shallowest first."""
    if not root.is_dir():
        return []
    first = sorted(p for p in root.iterdir() if p.is_dir())
    return first + [q for p in first for q in sorted(p.iterdir()) if q.is_dir()]


def _header(path: Path) -> list[str]:
    first = next(csv_rows(path), None)
    if first is None:
        raise LabelFormatError(path, 0, "empty annotation file")
    return first[1]


def _read_va(path: Path) -> np.ndarray:
    head = [h.lower() for h in _header(path)]
    if head != ["valence", "arousal"]:
        raise LabelFormatError(path, 1, f"header {head} is not 'valence,arousal'")
    x = numeric_table(path, 2, header=True)
    bad = np.flatnonzero(((x < -1) | (x > 1)).any(1) & ~(x == VA_UNANNOTATED).all(1))
    if bad.size:
        line = line_of_row(path, bad[0], header=True)
        raise LabelFormatError(path, line, f"valence/arousal {x[bad[0]].tolist()} outside [-1, 1] (-5: none)")
    return x.astype(np.float32)


def _read_expr(path: Path) -> tuple[np.ndarray, np.ndarray]:
    head = [h.strip().lower() for h in _header(path)]
    names = []
    for h in head:
        if h not in EXPR_NAMES:
            raise LabelFormatError(path, 1, f"unknown expression class {h!r} in header")
        names.append(EXPR_NAMES[h])
    to_canon = np.array([EXPRESSIONS_8.index(n) if n != "other" else -1 for n in names], np.int64)
    x = numeric_table(path, 1, header=True)[:, 0]
    bad = np.flatnonzero((x != np.round(x)) | (x < -1) | (x >= len(names)))
    if bad.size:
        raise LabelFormatError(path, line_of_row(path, bad[0], header=True),
                               f"class {x[bad[0]]:g} not in -1..{len(names) - 1}")  # fmt: skip
    xi = x.astype(np.int64)
    canon = np.where(xi >= 0, to_canon[np.maximum(xi, 0)], -1)
    other = (xi >= 0) & (to_canon[np.maximum(xi, 0)] < 0)
    return canon, other


def _read_au(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    head = _header(path)
    try:
        aus = tuple(int(h.strip().upper().removeprefix("AU")) for h in head)
    except ValueError:
        raise LabelFormatError(path, 1, f"AU header {head} is not AU1,AU2,…") from None
    x = numeric_table(path, len(aus), header=True)
    bad = np.argwhere(~np.isin(x, (-1, 0, 1)))
    if bad.size:
        r, c = bad[0]
        raise LabelFormatError(path, line_of_row(path, r, header=True),
                               f"AU{aus[c]} value {x[r, c]:g} is not 0, 1 or -1")  # fmt: skip
    return aus, x
