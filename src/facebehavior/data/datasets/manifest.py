"""Generic manifest adapter: any corpus described by one CSV or JSON file.

For corpora without a dedicated adapter (in-house data, AFEW, SEMAINE exports, Du et al.'s
compound set, …). The manifest lists one row per image (or video frame)::

    manifest.csv (or .json: a list of objects with the same keys)
      image        required  path relative to the manifest's folder (an image, or a video + ``frame``)
      split        required  split name (e.g. train / val / test); ``load(split)`` selects on it
      subject      optional  subject id — give it whenever known: ``check_subject_exclusive`` uses it
      video        optional  video / sequence id
      frame        optional  0-based frame index (required when ``image`` is a video file)
      expression   optional  name from ``schema.EXPRESSIONS_8`` (``happiness``…) or its index;
                             empty or -1 = not annotated
      valence, arousal  optional  in [-1, 1]; empty = not annotated (both or neither)
      AU<n>        optional  occurrence 0/1 per AU (``AU1``, ``AU01`` and ``AU12`` all work);
                             empty or -1 = not annotated
      AU<n>_intensity  optional  intensity 0–5; empty or -1 = not annotated

Any other column is ignored. Rows of a video file decode through PyAV (``VideoFramesMixin``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import (
    VIDEO_SUFFIXES,
    VideoFramesMixin,
    csv_rows,
    table_from_rows,
    to_float,
    to_int,
)
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    register_dataset,
)
from facebehavior.data.labels import LabelTable
from facebehavior.schema import AU_NUMBERS, EXPRESSIONS_8

__all__ = ["Manifest", "check_subject_exclusive"]


def check_subject_exclusive(a: LabelTable, b: LabelTable) -> None:
    """Raise ``ValueError`` naming the subjects two splits share (empty ids are ignored)."""
    shared = (set(a.subject) & set(b.subject)) - {""}
    if shared:
        raise ValueError(f"splits {a.split} and {b.split} share subjects {sorted(shared)[:10]}")


def _au_of(column: str) -> tuple[int, str] | None:
    c = column.strip()
    if not c.upper().startswith("AU"):
        return None
    num, _, kind = c[2:].partition("_")
    if not num.isdigit() or int(num) not in AU_NUMBERS or kind not in ("", "intensity"):
        return None
    return int(num), kind or "occurrence"


@register_dataset("manifest")
class Manifest(VideoFramesMixin, DatasetAdapter):
    """Manifest adapter.

    Args:
        root: the manifest file (``.csv`` or ``.json``), or a folder holding ``manifest.csv``.
        corpus: corpus name written into the tables.
    """

    name = "manifest"
    expected_files = ("manifest.csv",)

    def __init__(self, root: str | Path, *, corpus: str = "manifest") -> None:
        path = Path(root)
        if path.is_dir() or (not path.exists() and not path.suffix):
            path = path / "manifest.csv"
        if not path.is_file():
            raise DatasetNotFoundError(
                f"manifest: {path} does not exist; expected a CSV/JSON manifest with columns image, split "
                "and any of subject, video, frame, expression, valence, arousal, AU<n>, AU<n>_intensity "
                "(docs/datasets.md#manifest)"
            )
        super().__init__(path.parent)
        self.path = path
        self.corpus = corpus
        self._rows = self._read()
        self.splits = tuple(dict.fromkeys(r["split"] for _, r in self._rows))  # type: ignore[misc]

    def _read(self) -> list[tuple[int, dict[str, str]]]:
        if self.path.suffix.lower() == ".json":
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise LabelFormatError(self.path, e.lineno, f"invalid JSON: {e.msg}") from None
            if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
                raise LabelFormatError(self.path, 0, "expected a JSON list of objects")
            rows = [
                (i + 1, {k: "" if v is None else str(v) for k, v in d.items()}) for i, d in enumerate(data)
            ]
            where = "entry"
        else:
            it = csv_rows(self.path)
            head = next(it, None)
            if head is None:
                raise LabelFormatError(self.path, 0, "empty manifest")
            rows = []
            for lineno, r in it:
                if len(r) != len(head[1]):
                    raise LabelFormatError(self.path, lineno, f"expected {len(head[1])} fields, got {len(r)}")
                rows.append((lineno, dict(zip(head[1], r, strict=True))))
            where = "line"
        for n, r in rows:
            for req in ("image", "split"):
                if not r.get(req, "").strip():
                    raise LabelFormatError(self.path, n if where == "line" else 0,
                                           f"{where} {n}: required field {req!r} is empty")  # fmt: skip
        return rows

    def load(self, split: str) -> LabelTable:
        """Rows whose ``split`` column equals ``split``."""
        self.check_split(split)
        rows = [(n, r) for n, r in self._rows if r["split"] == split]
        cols = {c: _au_of(c) for c in rows[0][1]} if rows else {}
        aus = tuple(sorted({a for a in cols.values() if a is not None for a in [a[0]]}))
        n, na = len(rows), len(aus)
        occ, om = np.zeros((n, na), np.float32), np.zeros((n, na), bool)
        inten, im = np.zeros((n, na), np.float32), np.zeros((n, na), bool)
        expr = np.full(n, -1, np.int64)
        va, vam = np.zeros((n, 2), np.float32), np.zeros(n, bool)
        frame = np.full(n, -1, np.int64)
        p = self.path
        for i, (ln, r) in enumerate(rows):
            e = r.get("expression", "").strip().lower()
            if e and e != "-1":
                if e in EXPRESSIONS_8:
                    expr[i] = EXPRESSIONS_8.index(e)
                elif e.isdigit() and int(e) < len(EXPRESSIONS_8):
                    expr[i] = int(e)
                else:
                    raise LabelFormatError(
                        p, ln, f"expression {e!r} is not one of {list(EXPRESSIONS_8)} or 0..7"
                    )
            v, a = r.get("valence", "").strip(), r.get("arousal", "").strip()
            if bool(v) != bool(a):
                raise LabelFormatError(p, ln, "valence and arousal must be given together")
            if v:
                va[i] = to_float(p, ln, v, "valence"), to_float(p, ln, a, "arousal")
                if np.abs(va[i]).max() > 1:
                    raise LabelFormatError(p, ln, f"valence/arousal {va[i].tolist()} outside [-1, 1]")
                vam[i] = True
            f = r.get("frame", "").strip()
            if f:
                frame[i] = to_int(p, ln, f, "frame")
            if Path(r["image"]).suffix.lower() in VIDEO_SUFFIXES and frame[i] < 0:
                raise LabelFormatError(p, ln, f"{r['image']} is a video: give its 0-based 'frame'")
            for c, au in cols.items():
                if au is None or not r[c].strip() or r[c].strip() == "-1":
                    continue
                j = aus.index(au[0])
                x = to_float(p, ln, r[c], c)
                if au[1] == "occurrence":
                    if x not in (0, 1):
                        raise LabelFormatError(p, ln, f"{c} = {r[c]!r}; occurrence must be 0, 1 or -1/empty")
                    occ[i, j], om[i, j] = x, True
                else:
                    if not 0 <= x <= 5:
                        raise LabelFormatError(p, ln, f"{c} = {r[c]!r}; intensity must be 0–5 or -1/empty")
                    inten[i, j], im[i, j] = x, True
        has_int = bool(im.any())
        return table_from_rows(
            self.corpus, split, self.root,
            image=[r["image"] for _, r in rows], subject=[r.get("subject", "") for _, r in rows],
            video=[r.get("video", "") for _, r in rows], frame=frame, expression=expr,
            aus=aus, au_occurrence=occ, au_mask=om,
            au_intensity=inten if has_int else None, au_intensity_mask=im if has_int else None,
            va=va, va_mask=vam,
        )  # fmt: skip
