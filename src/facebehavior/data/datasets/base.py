"""Conventions shared by every dataset adapter.

An adapter reads one corpus in its *official distribution layout* (never a re-packaged copy the
user would have to produce by hand) and turns each split into a columnar
``facebehavior.data.labels.LabelTable``. Adapters:

- are classes deriving from ``DatasetAdapter``, registered in ``facebehavior.registry.DATASETS``
  with ``@register_dataset("name")`` (the registry stores the class; ``create_dataset`` builds it);
- never download: when files are missing they raise ``DatasetNotFoundError`` naming every
  expected file and where to get it (``require_files``);
- report malformed label lines as ``LabelFormatError`` with the file and 1-based line number
  (``LabelFormatError.at``) instead of a deep traceback or a silently skipped row;
- map their corpus' own label orders onto ``facebehavior.schema`` (``EXPRESSIONS_8``, AU numbers);
- serve pixels through ``read_images``: the default reads ``root / table.image[i]`` files; corpora
  stored as arrays name their rows ``"<array>:<i>"`` and override it.

Extension points for later adapters: ``splits`` (names accepted by ``load``), ``expected_files``
(shown in the not-found message) and ``read_images`` (face-crop caches plug in here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from facebehavior.data.labels import LabelTable
from facebehavior.registry import DATASETS

__all__ = [
    "ARRAY_PREFIX",
    "DatasetAdapter",
    "DatasetNotFoundError",
    "LabelFormatError",
    "create_dataset",
    "list_datasets",
    "register_dataset",
    "require_files",
]

ARRAY_PREFIX = "<array>:"

register_dataset = DATASETS.register


class DatasetNotFoundError(FileNotFoundError):
    """A corpus (or one of its files) is not where the adapter was told to look."""


class LabelFormatError(ValueError):
    """A label file holds a line that cannot be parsed.

    Attributes:
        path: the offending file.
        line: 1-based line number (0 when the problem concerns the whole file).
    """

    def __init__(self, path: str | Path, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = int(line)
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        super().__init__(f"{where}: {message}")

    @classmethod
    def at(cls, path: str | Path, line: int, message: str) -> LabelFormatError:
        """Build the error for ``path`` at 1-based ``line``."""
        return cls(path, line, message)


def require_files(root: str | Path, files: Sequence[str], *, corpus: str, hint: str = "") -> Path:
    """Check that every file of a layout exists under ``root``.

    Args:
        root: corpus root folder.
        files: paths relative to ``root`` that must exist.
        corpus: corpus name for the message.
        hint: where to obtain the data / which docs section to read.

    Returns:
        ``root`` as a ``Path``.

    Raises:
        DatasetNotFoundError: listing every missing file and every file the layout expects.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"{corpus}: folder {root} does not exist; expected it to hold {', '.join(files)}. {hint}".strip()
        )
    missing = [f for f in files if not (root / f).exists()]
    if missing:
        raise DatasetNotFoundError(
            f"{corpus}: missing {', '.join(missing)} under {root} "
            f"(the layout expects {', '.join(files)}). {hint}".strip()
        )
    return root


class DatasetAdapter:
    """Base class of corpus adapters.

    Subclasses set ``name`` and ``splits`` and implement ``load``. Building an adapter checks the
    layout (cheap) but parses nothing; ``load(split)`` parses and returns the labels.

    Args:
        root: the corpus root folder, in the official distribution layout.
    """

    name: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ()
    expected_files: ClassVar[tuple[str, ...]] = ()

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def load(self, split: str) -> LabelTable:
        """Labels of one split.

        Raises:
            KeyError: unknown split (the message lists the valid ones).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement load()")

    def check_split(self, split: str) -> str:
        """Validate a split name and return it."""
        if split not in self.splits:
            raise KeyError(f"{self.name}: unknown split {split!r}; valid: {list(self.splits)}")
        return split

    def read_images(self, table: LabelTable, index: Iterable[int]) -> list[np.ndarray]:
        """Pixels of the rows ``index`` of ``table``.

        Returns:
            One ``(H, W, 3)`` uint8 RGB array per row (sizes may differ between rows).
        """
        from PIL import Image

        out = []
        for i in index:
            path = table.root / str(table.image[i])
            if not path.is_file():
                raise DatasetNotFoundError(f"{self.name}: image {path} listed in the labels is missing")
            with Image.open(path) as im:
                out.append(np.asarray(im.convert("RGB")))
        return out

    def image_array(self, table: LabelTable) -> np.ndarray | None:
        """All pixels of ``table`` as one ``(N, H, W, C)`` uint8 array, for corpora held in memory.

        Returns ``None`` (the default) when images are files of varying size; callers then use
        ``read_images``.
        """
        return None


def create_dataset(name: str, root: str | Path, **kwargs: object) -> DatasetAdapter:
    """Build a registered adapter by name.

    Raises:
        KeyError: unknown name; the message lists the registered datasets.
    """
    return DATASETS.get(name)(root, **kwargs)  # type: ignore[return-value]


def list_datasets() -> list[str]:
    """Names of every registered dataset adapter."""
    return DATASETS.names()
