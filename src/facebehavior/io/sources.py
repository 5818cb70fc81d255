"""Turn command-line INPUT arguments (files, folders, globs, webcams) into a list of sources.

Each argument expands in natural sort order (``img2`` before ``img10``); arguments keep the
order they were given in and duplicates are dropped. Problems never stop the expansion: every
unusable entry comes back as an ``InputError`` so the caller can report it and go on.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from facebehavior.io import InputError
from facebehavior.io.images import IMAGE_EXTENSIONS
from facebehavior.io.video import VIDEO_EXTENSIONS

__all__ = ["Source", "expand_inputs", "classify"]

logger = logging.getLogger(__name__)

SourceKind = Literal["image", "video", "webcam"]
_WEBCAM = re.compile(r"^(?:webcam(?::(?P<idx>\S+))?|/dev/video(?P<dev>\d+))$")


@dataclass(frozen=True)
class Source:
    """One thing to analyse.

    Attributes:
        path: file path as given/expanded, or ``"webcam:N"``.
        kind: ``"image"``, ``"video"`` or ``"webcam"``.
    """

    path: str
    kind: SourceKind

    @property
    def device(self) -> int | str:
        """Camera index or device name (webcam sources only)."""
        m = _WEBCAM.match(self.path)
        if not m:
            raise ValueError(f"{self.path} is not a webcam source")
        idx = m.group("dev") or m.group("idx") or "0"
        return int(idx) if idx.isdigit() else idx


def classify(path: str | Path) -> SourceKind | None:
    """``"image"`` / ``"video"`` by file extension (case-insensitive), ``None`` if neither."""
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def expand_inputs(
    inputs: Iterable[str | Path], *, recursive: bool = False
) -> tuple[list[Source], list[InputError]]:
    """Expand files, folders, glob patterns and webcam names into sources.

    Args:
        inputs: file paths, folder paths (their images and videos are taken), glob patterns
            (``"clips/*.mp4"``, ``"**"`` with ``recursive``), or ``webcam``, ``webcam:N``, ``/dev/videoN``.
        recursive: descend into sub-folders of folder arguments and let ``**`` match across folders.

    Returns:
        ``(sources, errors)``: usable sources in order, and one ``InputError`` per argument or
        folder entry that cannot be used (missing, unreadable, unsupported, matching nothing).
        Files inside folders whose extension is neither image nor video are skipped silently
        (folders hold notes, labels, thumbnails' sidecars).
    """
    sources: list[Source] = []
    errors: list[InputError] = []
    seen: set[str] = set()

    def add(src: Source) -> None:
        key = os.path.normpath(src.path) if src.kind != "webcam" else src.path
        if key not in seen:
            seen.add(key)
            sources.append(src)

    for arg in inputs:
        text = str(arg)
        m = _WEBCAM.match(text)
        if m and not Path(text).is_file():
            add(Source(f"webcam:{m.group('dev') or m.group('idx') or '0'}", "webcam"))
            continue
        p = Path(text)
        if p.is_dir():
            for entry in _walk(p, recursive, errors):
                kind = classify(entry)
                if kind is None:
                    logger.debug("skipping %s: neither an image nor a video", entry)
                elif _check_readable(entry, errors):
                    add(Source(str(entry), kind))
        elif p.exists() or p.is_symlink():
            _add_file(p, add, errors)
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=recursive), key=_natural)
            files = [Path(x) for x in matches if not Path(x).is_dir()]
            if not files:
                errors.append(InputError(text, "no files match this pattern"))
            for f in files:
                if classify(f) is not None:
                    _add_file(f, add, errors)
        else:
            errors.append(InputError(text, "file or folder not found"))
    return sources, errors


def _add_file(p: Path, add, errors: list[InputError]) -> None:
    kind = classify(p)
    if kind is None:
        errors.append(
            InputError(
                p,
                f"unsupported file type {p.suffix or '(no extension)'!r}; images: "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}; videos: {', '.join(sorted(VIDEO_EXTENSIONS))}",
            )
        )
    elif _check_readable(p, errors):
        add(Source(str(p), kind))


def _check_readable(p: Path, errors: list[InputError]) -> bool:
    if not p.exists():  # a dangling symlink
        errors.append(InputError(p, "broken link (target does not exist)"))
        return False
    if not os.access(p, os.R_OK):
        errors.append(InputError(p, "permission denied (file is not readable)"))
        return False
    return True


def _walk(folder: Path, recursive: bool, errors: list[InputError]) -> list[Path]:
    try:
        entries = sorted(folder.iterdir(), key=lambda q: _natural(q.name))
    except OSError as e:
        errors.append(InputError(folder, f"cannot list folder ({e.strerror})"))
        return []
    out: list[Path] = []
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir():
            if recursive:
                out += _walk(e, recursive, errors)
        else:
            out.append(e)
    return out


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(text))]
