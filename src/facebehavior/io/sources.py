"""Turn command-line INPUT arguments (files, folders, globs, webcams) into a list of sources.

Each argument expands in natural sort order (``img2`` before ``img10``); arguments keep the
order they were given in and duplicates are dropped (a file reached twice, through a link or a
second argument, is analysed once). Folders are walked following links, but each real folder is
entered once, so a link loop (``loop -> .``) ends instead of recursing forever. Problems never stop
the expansion: every unusable entry comes back as an ``InputError`` so the caller can report it
and go on.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import stat
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
        key = os.path.realpath(src.path) if src.kind != "webcam" else src.path
        if key not in seen:
            seen.add(key)
            sources.append(src)

    for arg in inputs:
        text = os.fsdecode(arg) if isinstance(arg, bytes) else str(arg)
        if not text.strip():
            # Path("") is ".": an empty argument (an unset shell variable) would analyse the cwd.
            errors.append(InputError(repr(text), "empty input path; name a file, folder or glob"))
            continue
        m = _WEBCAM.match(text)
        if m and not Path(text).is_file():
            add(Source(f"webcam:{m.group('dev') or m.group('idx') or '0'}", "webcam"))
            continue
        p = Path(text)
        if p.is_dir():
            entries = _walk(p, recursive, errors)
            usable = [e for e in entries if classify(e) is not None]
            for entry in entries:
                kind = classify(entry)
                if kind is None:
                    logger.debug("skipping %s: neither an image nor a video", entry)
                elif _check_readable(entry, errors):
                    add(Source(str(entry), kind))
            if not usable:
                has_sub = not recursive and any(q.is_dir() for q in _listdir(p))
                hint = "; add --recursive to descend into its sub-folders" if has_sub else ""
                errors.append(InputError(p, f"folder holds no images or videos{hint}"))
        elif p.exists() or p.is_symlink():
            _add_file(p, add, errors)
        elif glob.has_magic(text):
            if recursive and "**" in text:
                matches = _deep_glob(text, errors)
            else:
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
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:  # a dangling symlink
        errors.append(InputError(p, "broken link (target does not exist)"))
        return False
    except OSError as e:  # a link loop, a name too long
        errors.append(InputError(p, f"cannot access file ({e.strerror})"))
        return False
    if not stat.S_ISREG(mode):
        # A FIFO would block the reader forever (or read as 0 bytes); devices and sockets are no files.
        what = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device or socket"
        errors.append(InputError(p, f"not a regular file ({what}); save the stream to a file first"))
        return False
    if not os.access(p, os.R_OK):
        errors.append(InputError(p, "permission denied (file is not readable)"))
        return False
    return True


def _listdir(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _walk(
    folder: Path, recursive: bool, errors: list[InputError], visited: set[tuple[int, int]] | None = None
) -> list[Path]:
    """Files of ``folder`` (and, with ``recursive``, of its sub-folders), natural order.

    Links are followed, but a real folder (device, inode) already entered is not entered again:
    ``loop -> .`` or ``up -> ..`` would otherwise recurse until the path is too long, branching at
    every level.
    """
    visited = set() if visited is None else visited
    try:
        st = folder.stat()
        entries = sorted(folder.iterdir(), key=lambda q: _natural(q.name))
    except OSError as e:
        errors.append(InputError(folder, f"cannot list folder ({e.strerror})"))
        return []
    if (st.st_dev, st.st_ino) in visited:
        logger.debug("skipping %s: folder already visited (a link loop)", folder)
        return []
    visited.add((st.st_dev, st.st_ino))
    out: list[Path] = []
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir():
            if recursive:
                out += _walk(e, recursive, errors, visited)
        else:
            out.append(e)
    return out


def _deep_glob(pattern: str, errors: list[InputError]) -> list[str]:
    """``**`` patterns matched over ``_walk`` (loop-safe) instead of ``glob.glob``.

    ``glob`` follows folder links without remembering where it has been: two loop links make the
    expansion branch twice per level until paths reach the OS limit (hours, gigabytes). Here the
    part before the first wildcard is walked once per real folder and each file's path is matched:
    ``**/`` spans zero or more folders, ``*`` and ``?`` stay within one name.
    """
    parts = Path(pattern).parts
    k = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:k]) if k else Path(".")
    regex = _glob_regex("/".join(parts[k:]))
    out = []
    for f in _walk(root, True, errors) if root.is_dir() else []:
        if regex.fullmatch(f.relative_to(root).as_posix()):
            out.append(str(f))
    return out


def _glob_regex(pattern: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            j = pattern.index("]", i + 2)
            body = pattern[i + 1 : j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(text))]
