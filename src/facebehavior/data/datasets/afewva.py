"""AFEW-VA (Kossaifi et al., 2017): 600 film clips with per-frame valence, arousal and landmarks.

Official layout of the owners' release (one zip per 50 clips, unpacked side by side)::

    AFEW-VA/
      001/
        001.json        # {"actor": …, "video_id": "001", "frames": {"00000": {"valence": v,
        00000.png       #   "arousal": a, "landmarks": [[x, y] × 68]}, …}}
        00001.png …
      002/ …

Copies that keep the release's zip parts as folders (``01/001/001.json`` …) work too: clip
folders are searched one level deeper. Valence and arousal are integers in -10..10, scaled to
[-1, 1] (÷ 10). ``extra["landmarks68"]`` (N, 68, 2) float32 holds the annotated landmarks in
image pixels (NaN where a frame has none).
``subject`` is the ``actor`` field, ``video`` the clip id, ``frame`` the frame number.

Protocol: AFEW-VA has no official split; papers use subject-independent k-fold CV. Splits
``foldK_train``/``foldK_test`` (K = 1..5) deal the sorted actor names round-robin over 5 folds
(``_common.assign_folds``), so no actor is in both halves of a fold; ``all`` is every clip.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import (
    ImageFilesMixin,
    assign_folds,
    fold_splits,
    frame_files,
    missing_frames_note,
    parse_fold,
    table_from_rows,
)
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    register_dataset,
)
from facebehavior.data.labels import LabelTable

__all__ = ["AFEWVA", "NUM_FOLDS"]

logger = logging.getLogger(__name__)

NUM_FOLDS = 5
HINT = "AFEW-VA is distributed by its authors; see docs/datasets.md#afew-va."


@register_dataset("afewva")
class AFEWVA(ImageFilesMixin, DatasetAdapter):
    """AFEW-VA adapter.

    Args:
        root: the folder holding the clip folders ``001/`` … ``600/``.
    """

    name = "afewva"
    splits = ("all", *fold_splits(NUM_FOLDS))
    expected_files = ("001/001.json", "001/00000.png")

    def clips(self) -> list[Path]:
        """Every ``<clip>/<clip>.json`` annotation file, sorted."""
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"afewva: folder {self.root} does not exist; expected "
                                       f"{', '.join(self.expected_files)}. {HINT}")  # fmt: skip
        dirs = [p for p in self.root.iterdir() if p.is_dir()]
        dirs += [q for p in dirs for q in p.iterdir() if q.is_dir()]
        files = sorted(
            (p / f"{p.name}.json" for p in dirs if (p / f"{p.name}.json").is_file()), key=lambda p: p.name
        )
        if not files:
            raise DatasetNotFoundError(
                f"afewva: no <clip>/<clip>.json files under {self.root} "
                f"(expected {', '.join(self.expected_files)}). "
                f"{HINT}"
            )
        return files

    def load(self, split: str) -> LabelTable:
        """Annotated frames of ``split``."""
        self.check_split(split)
        parsed = [_read_clip(p, self.root) for p in self.clips()]
        keep = {c[0] for c in parsed}
        fold = parse_fold(split, NUM_FOLDS)
        if fold is not None:
            folds = assign_folds(keep, NUM_FOLDS)
            keep = {a for a, f in folds.items() if (f == fold[0]) == (fold[1] == "test")}
        image, subject, video, frame, va, lm = [], [], [], [], [], []
        dropped = total = 0
        for actor, clip, frames in parsed:
            if actor not in keep:
                continue
            files = frame_files(self.root / clip)
            video_id = Path(clip).name
            for f, (v, a, pts) in frames.items():
                total += 1
                if f not in files:
                    dropped += 1
                    continue
                image.append(f"{clip}/{files[f]}")
                subject.append(actor)
                video.append(video_id)
                frame.append(f)
                va.append((v / 10.0, a / 10.0))
                lm.append(pts)
        missing_frames_note(self.name, dropped, total, str(self.root))
        n = len(image)
        return table_from_rows(
            self.name, split, self.root, image=image, subject=subject, video=video, frame=frame,
            va=np.asarray(va, np.float32).reshape(n, 2), va_mask=np.ones(n, bool),
            extra={"landmarks68": np.asarray(lm, np.float32).reshape(n, 68, 2)},
        )  # fmt: skip


def _read_clip(path: Path, root: Path) -> tuple[str, str, dict[int, tuple[float, float, np.ndarray]]]:
    """(actor, clip folder relative to ``root``, frame → (valence, arousal, landmarks))."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise LabelFormatError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), dict):
        raise LabelFormatError(path, 0, "expected an object with a 'frames' object")
    actor = str(data.get("actor") or "").strip()
    if not actor:
        # Without the actor the clip is its own subject: folds stay clip-exclusive only.
        logger.warning("afewva: %s has no 'actor' field; using the clip id as subject", path)
        actor = f"clip:{path.parent.name}"
    out: dict[int, tuple[float, float, np.ndarray]] = {}
    for key, fr in data["frames"].items():
        where = f"frame {key!r}"
        try:
            num = int(key)
            v, a = float(fr["valence"]), float(fr["arousal"])
        except (KeyError, TypeError, ValueError):
            raise LabelFormatError(
                path, 0, f"{where}: needs integer key and numeric 'valence', 'arousal'"
            ) from None
        if not (-10 <= v <= 10 and -10 <= a <= 10):
            raise LabelFormatError(path, 0, f"{where}: valence/arousal {v:g}, {a:g} outside -10..10")
        pts = np.full((68, 2), np.nan, np.float32)
        if fr.get("landmarks") is not None:
            arr = np.asarray(fr["landmarks"], np.float32)
            if arr.shape != (68, 2):
                raise LabelFormatError(
                    path, 0, f"{where}: landmarks have shape {arr.shape}, expected (68, 2)"
                )
            pts = arr
        out[num] = (v, a, pts)
    return actor, str(path.parent.relative_to(root)), out
