"""Reading images, videos and webcams into ``Frames``; writing results as CSV/Parquet/JSON Lines.

Submodules are imported on use (``facebehavior.io.images``, ``.video``, ``.sources``,
``.writers``); this package only defines the error every reader raises for bad input.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(Exception):
    """An input file, folder or device cannot be read.

    The message is one line naming the input and the reason, fit to show a user as is.

    Attributes:
        path: the offending input as given (file path, folder entry or device).
        reason: why it failed, e.g. ``"empty file (0 bytes)"``.
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
