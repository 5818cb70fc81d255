"""What ``Analyzer.analyze`` accepts, normalised: paths and in-memory images with their source names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["input_items"]


def input_items(inputs: Any, *, video: bool = False) -> list[tuple[str, Any]]:
    """``inputs`` as ``(source name, item)`` pairs; an item is a path (``str``) or a uint8 array.

    Arrays come out as (H, W, 3) photos, or (N, H, W, 3) when ``video`` says a stack is one
    video. PIL images become arrays (EXIF orientation applied, as for image files); ``bytes`` paths
    are decoded with the file system's encoding. In-memory photos are named ``"array"`` when they
    are the only input, else ``"array[i]"`` (i counting photos across the inputs).

    Raises:
        TypeError: an input of any other type, with what is accepted.
        ValueError: an array of the wrong shape or dtype.
    """
    if isinstance(inputs, (list, tuple)):
        raw = [_one(x) for x in inputs]
    elif inputs is None or isinstance(inputs, (str, bytes, Path, np.ndarray)) or hasattr(inputs, "getexif"):
        raw = [_one(inputs)]
    elif hasattr(inputs, "__iter__"):
        raw = [_one(x) for x in inputs]
    else:
        raw = [_one(inputs)]
    expanded: list[Any] = []
    for x in raw:
        if isinstance(x, np.ndarray):
            _check_array(x, video)
            if x.ndim == 4 and not video:
                expanded += list(x)  # a stack of photos: each on its own
                continue
        expanded.append(x)
    n_arrays = sum(isinstance(x, np.ndarray) for x in expanded)
    out: list[tuple[str, Any]] = []
    k = 0
    for x in expanded:
        if isinstance(x, np.ndarray):
            single = n_arrays == 1 and len(expanded) == 1
            out.append(("array" if single else f"array[{k}]", x))
            k += 1
        else:
            out.append((x, x))
    return out


def _one(x: Any) -> Any:
    if isinstance(x, (str, Path)):
        return str(x)
    if isinstance(x, bytes):
        import os

        return os.fsdecode(x)
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("PIL.") and hasattr(x, "getexif"):
        from PIL import ImageOps

        from facebehavior.io.images import to_rgb8

        return to_rgb8(ImageOps.exif_transpose(x))
    raise TypeError(
        f"cannot analyse {type(x).__name__}: pass a path (str, bytes, Path), a uint8 RGB array "
        "(H, W, 3) or (N, H, W, 3), a PIL image, or a list of these"
    )


def _check_array(arr: np.ndarray, video: bool) -> None:
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3 or arr.dtype != np.uint8 or 0 in arr.shape:
        what = "(N, H, W, 3) video frames" if video else "(H, W, 3) or (N, H, W, 3)"
        raise ValueError(
            f"arrays must be {what} uint8 RGB, got {arr.shape} {arr.dtype}"
            + ("; convert with .astype(np.uint8) (values 0-255)" if arr.dtype != np.uint8 else "")
        )
    if video and arr.ndim != 4:
        raise ValueError(f"video=True needs an (N, H, W, 3) stack of frames, got {arr.shape}")
