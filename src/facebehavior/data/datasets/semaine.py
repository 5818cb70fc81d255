"""SEMAINE (McKeown et al., 2012) as released for FERA 2015 (Valstar et al., 2015): AU occurrence per
video frame of 31 user sessions, from ELAN annotation files.

Layout of the FERA 2015 SEMAINE release (the organisers' baseline code reads it this way:
``find_SEMAINE.m`` / ``extract_SEMAINE_labels.m`` / ``ParseSEMAINEAnnotations.m`` of
TadasBaltrusaitis/FERA-2015)::

    SEMAINE/                               # root (or give SEMAINE-Sessions itself)
      SEMAINE-Sessions/
        rec1.txt                           # "start end": the session's challenge segment (frames)
        rec1/
          <session>.eaf                    # ELAN annotation (XML), one tier per AU
          <session>.avi                    # the user's video, 50 frames/s
        rec12.txt, rec12/, …

ELAN files hold time slots in milliseconds (``TIME_ORDER/TIME_SLOT``) and, per AU, an activation
tier ``TIER_ID="AU<n>"`` whose annotations span the frames where the AU is active; intensity
tiers (other ids) are ignored, as by the organisers' reader. A time ``t`` ms is frame
``floor(t · 50 / 1000)`` (SEMAINE's 50 frames/s), the 0-based index of the video frame starting at
that time; an annotation marks its first to its last frame inclusive. The challenge uses the
frames ``start … end − 1`` of ``<rec>.txt`` (3,000 per session at most; the organisers clip the
segment to the annotated span), and every frame from 1 to the last time slot without that file.
Frames outside every annotation of an AU tier are absent (0); an AU without a tier is masked.

AUs: the six the challenge selected, 2, 12, 17, 25, 28 and 45 (blink); AU28 (lip suck) is not in
``facebehavior.schema``'s catalogue and is skipped, so the default is 2, 12, 17, 25, 45 — the only
corpus here with AU45 labels (FATAUVA-Net's ``Con_Val``/``Con_Aro`` read the AU45 unit).

Splits: ``train`` (16 sessions) and ``dev`` (15 sessions), the FERA 2015 partitions as the
organisers' baseline lists them (``FERA2015_PARTITIONS``); ``all`` = every session in the tree.
The session folders do not name the user (SEMAINE users recorded several sessions), so
``subject`` is "" and ``video`` the session: a holdout groups by session.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import (
    VIDEO_SUFFIXES,
    VideoFramesMixin,
    concat_tables,
    table_from_rows,
    text_lines,
)
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    register_dataset,
)
from facebehavior.data.labels import LabelTable

__all__ = ["SEMAINE", "SEMAINE_AUS", "FERA2015_PARTITIONS", "FPS", "read_eaf"]

logger = logging.getLogger(__name__)

FPS = 50  # every SEMAINE video (the organisers' reader converts ELAN milliseconds at this rate)
# The FERA 2015 SEMAINE AUs usable here (the challenge's 2, 12, 17, 25, 28, 45 without AU28).
SEMAINE_AUS: tuple[int, ...] = (2, 12, 17, 25, 45)
CHALLENGE_AUS: tuple[int, ...] = (2, 12, 17, 25, 28, 45)
FERA2015_PARTITIONS: dict[str, tuple[str, ...]] = {
    "train": ("rec1", "rec12", "rec14", "rec19", "rec23", "rec25", "rec37", "rec39", "rec43", "rec45",
              "rec48", "rec50", "rec52", "rec54", "rec56", "rec60"),
    "dev": ("rec9", "rec13", "rec15", "rec20", "rec24", "rec26", "rec38", "rec42", "rec44", "rec46",
            "rec49", "rec51", "rec53", "rec55", "rec58"),
}  # fmt: skip
HINT = (
    "SEMAINE's FERA 2015 release comes from the FERA 2015 data website after signing the SEMAINE "
    "EULA; see docs/datasets.md."
)


def read_eaf(path: Path, aus: Sequence[int]) -> tuple[int, dict[int, list[tuple[int, int]]]]:
    """Activation periods of an ELAN ``.eaf`` file, in frames.

    Args:
        path: the annotation file.
        aus: AU numbers whose ``AU<n>`` tiers are read.

    Returns:
        ``(last_frame, periods)``: the frame of the last time slot, and AU number → list of
        ``(first, last)`` frames (inclusive) for every AU that has a tier.

    Raises:
        LabelFormatError: not XML, a non-numeric time value, or an AU annotation that refers to an
            unknown or unaligned time slot or ends before it starts.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise LabelFormatError(path, e.position[0], f"not a readable ELAN file ({e})") from None
    slots: dict[str, float] = {}
    for slot in root.iter("TIME_SLOT"):
        # ELAN allows unaligned slots (no TIME_VALUE); only an AU annotation using one is an error.
        sid, value = slot.get("TIME_SLOT_ID", ""), slot.get("TIME_VALUE")
        if value is None:
            continue
        try:
            slots[sid] = float(value)
        except ValueError:
            raise LabelFormatError(path, 0, f"time slot {sid!r} has a non-numeric value {value!r}") from None
    if not slots:
        raise LabelFormatError(path, 0, "no TIME_ORDER/TIME_SLOT entries: not a SEMAINE AU annotation")

    def frame(ms: float) -> int:
        return math.floor(ms / 1000.0 * FPS)

    wanted = {f"AU{a}": a for a in aus}
    periods: dict[int, list[tuple[int, int]]] = {}
    for tier in root.iter("TIER"):
        au = wanted.get(tier.get("TIER_ID", "").strip().upper())
        if au is None:
            continue
        spans = periods.setdefault(au, [])
        for ann in tier.iter("ALIGNABLE_ANNOTATION"):
            r1, r2 = ann.get("TIME_SLOT_REF1", ""), ann.get("TIME_SLOT_REF2", "")
            if r1 not in slots or r2 not in slots:
                raise LabelFormatError(
                    path, 0, f"AU{au} annotation uses unknown/unaligned time slot {r1!r}/{r2!r}"
                )
            a, b = frame(slots[r1]), frame(slots[r2])
            if b < a:
                raise LabelFormatError(path, 0, f"AU{au} annotation ends ({slots[r2]} ms) before it starts")
            spans.append((a, b))
    return frame(max(slots.values())), periods


def read_segment(path: Path) -> tuple[int, int]:
    """``<rec>.txt``: the challenge segment ``(start, end)``, frames ``start … end − 1``."""
    lines = list(text_lines(path))
    if len(lines) != 1:
        raise LabelFormatError(path, lines[1][0] if len(lines) > 1 else 0, "expected one 'start end' line")
    lineno, text = lines[0]
    parts = text.replace(",", " ").split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[1]) <= int(parts[0]):
        raise LabelFormatError(
            path, lineno, f"expected 'start end' frame numbers with start < end, got {text!r}"
        )
    return int(parts[0]), int(parts[1])


@register_dataset("semaine")
class SEMAINE(VideoFramesMixin, DatasetAdapter):
    """SEMAINE (FERA 2015 release): AU occurrence of 2, 12, 17, 25, 45 per frame of each session.

    Args:
        root: the folder holding ``SEMAINE-Sessions/`` (or that folder itself).
        aus: AU columns, a subset of ``SEMAINE_AUS`` (default all five).
        video: a text the session's video name must contain when a session folder holds several
            videos (default: the only video of the folder).
    """

    name = "semaine"
    splits = ("train", "dev", "all")
    expected_files = ("SEMAINE-Sessions/rec1.txt", "SEMAINE-Sessions/rec1/<session>.eaf",
                      "SEMAINE-Sessions/rec1/<session>.avi")  # fmt: skip

    def __init__(self, root: str | Path, *, aus: Sequence[int] = SEMAINE_AUS, video: str = "") -> None:
        super().__init__(root)
        self.aus = tuple(int(a) for a in aus)
        bad = [a for a in self.aus if a not in SEMAINE_AUS]
        if bad or not self.aus:
            raise ValueError(f"semaine: AUs {bad or '[]'} are not annotated here; choose from {SEMAINE_AUS}")
        self.video = video
        base = self.root / "SEMAINE-Sessions"
        self.sessions_dir = base if base.is_dir() else self.root
        if not self.sessions_dir.is_dir() or not self._sessions():
            raise DatasetNotFoundError(
                f"semaine: no session folders with an .eaf annotation under {self.root}; the layout is "
                f"{', '.join(self.expected_files)}. {HINT}"
            )

    def _sessions(self) -> list[str]:
        folders = [p for p in self.sessions_dir.iterdir() if p.is_dir() and any(p.glob("*.eaf"))]
        return sorted((p.name for p in folders), key=lambda s: (len(s), s))

    def load(self, split: str) -> LabelTable:
        """Labelled frames of the sessions of ``split`` (``image`` = the session video)."""
        self.check_split(split)
        present = self._sessions()
        if split == "all":
            wanted = present
        else:
            wanted = [s for s in FERA2015_PARTITIONS[split] if s in present]
            absent = [s for s in FERA2015_PARTITIONS[split] if s not in present]
            if absent:
                logger.warning("semaine/%s: sessions %s are not under %s; using the %d others",
                               split, absent, self.sessions_dir, len(wanted))  # fmt: skip
        if not wanted:
            raise DatasetNotFoundError(
                f"semaine: none of the {split} sessions {list(FERA2015_PARTITIONS.get(split, ()))} is under "
                f"{self.sessions_dir}. {HINT}"
            )
        return concat_tables([self._session(s, split) for s in wanted], split)

    def _session(self, rec: str, split: str) -> LabelTable:
        folder = self.sessions_dir / rec
        eafs = sorted(folder.glob("*.eaf"))
        if len(eafs) > 1:
            raise DatasetNotFoundError(f"semaine: {folder} holds several .eaf files {[p.name for p in eafs]}")
        last, periods = read_eaf(eafs[0], self.aus)
        seg = self.sessions_dir / f"{rec}.txt"
        if seg.is_file():
            start, end = read_segment(seg)
            # As the organisers' reader: a segment past the annotated span is clipped to its end.
            end = min(end, last + 1)
            frames = np.arange(start, end, dtype=np.int64)
        else:
            frames = np.arange(1, last + 1, dtype=np.int64)
        n, na = len(frames), len(self.aus)
        occ = np.zeros((n, na), np.float32)
        mask = np.zeros((n, na), bool)
        for j, au in enumerate(self.aus):
            if au not in periods:
                continue
            mask[:, j] = True
            for a, b in periods[au]:
                occ[(frames >= a) & (frames <= b), j] = 1.0
        video = self._video(folder)
        return table_from_rows(
            self.name, split, self.root, image=[str(video.relative_to(self.root))] * n, subject=[""] * n,
            video=[rec] * n, frame=frames, aus=self.aus, au_occurrence=occ, au_mask=mask,
        )  # fmt: skip

    def _video(self, folder: Path) -> Path:
        videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if self.video:
            videos = [p for p in videos if self.video.lower() in p.name.lower()]
        if len(videos) != 1:
            names = [p.name for p in videos]
            raise DatasetNotFoundError(
                f"semaine: {folder} needs exactly one session video"
                + (f" containing {self.video!r}" if self.video else "")
                + f", found {names or 'none'}; pass --option video=<part of its name>. {HINT}"
            )
        return videos[0]
