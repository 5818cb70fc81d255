"""Still images → (H, W, 3) uint8 RGB arrays, whatever the file's mode.

Pillow decodes JPEG, PNG, BMP, TIFF and WebP (plus GIF); of a multi-page file (TIFF stack,
animation) only the first page is read, with a warning. Every image is normalised the same way so
that detectors never see a surprise: EXIF orientation applied (a phone photo shot in portrait
arrives upright), grayscale replicated to three channels, transparency composited on black,
palette expanded, and 16-bit samples *scaled* to 8 bits (``round(v / 257)``) rather than
clipped — clipping would turn almost every 16-bit pixel white.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np

from facebehavior.io import InputError

__all__ = ["IMAGE_EXTENSIONS", "DEFAULT_MAX_PIXELS", "read_image", "to_rgb8"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
)

# 40 megapixels: above any camera's still (and 4x an 8K frame); a decoded 40 MP RGB image already
# takes 120 MB, and faces in a bigger picture are found just as well after downscaling.
DEFAULT_MAX_PIXELS = 40_000_000


def read_image(
    path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, downscale: bool = False
) -> np.ndarray:
    """Read one still image.

    Args:
        path: image file.
        max_pixels: largest accepted width × height; ``None`` for no limit.
        downscale: if the image exceeds ``max_pixels``, shrink it (keeping the aspect ratio) to fit
            instead of raising.

    Returns:
        (H, W, 3) uint8 RGB array, EXIF orientation applied.

    Raises:
        InputError: missing, empty, corrupt, unsupported or too large file; the message names the
            file and the reason.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            # We apply our own pixel cap below; Pillow's warning would only duplicate it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except UnidentifiedImageError:
        raise InputError(
            path, f"not a readable image (unsupported format or corrupt; {_supported()})"
        ) from None
    except Image.DecompressionBombError as e:
        raise InputError(path, f"image too large to decode safely ({e})") from None
    except OSError as e:
        raise InputError(path, f"cannot open image ({e})") from None
    with img:
        pages = getattr(img, "n_frames", 1)
        if pages > 1:
            # Multi-page TIFFs (scans, microscope stacks) and animated GIF/WebP: a still image is one
            # frame, so only the first page is read; say so rather than drop the rest silently.
            logger.warning(
                "%s: %d pages/frames; only the first is analysed (save the pages as separate images, "
                "or convert an animation to a video, to analyse them all)",
                path,
                pages,
            )
        w, h = img.size
        if max_pixels is not None and w * h > max_pixels:
            if not downscale:
                raise InputError(
                    path,
                    f"image is {w}x{h} = {w * h / 1e6:.1f} MP, above the {max_pixels / 1e6:.1f} MP limit; "
                    "pass downscale=True (CLI: --downscale-huge) or raise max_pixels",
                )
            scale = math.sqrt(max_pixels / (w * h))
            target = (max(1, int(w * scale)), max(1, int(h * scale)))
            # JPEG can decode directly at 1/2, 1/4, 1/8 scale, which keeps memory bounded.
            img.draft("RGB", target)
            logger.warning("%s: %dx%d image downscaled to fit %d pixels", path, w, h, max_pixels)
        try:
            img.load()
            img = ImageOps.exif_transpose(img)
            if max_pixels is not None and downscale and img.width * img.height > max_pixels:
                scale = math.sqrt(max_pixels / (img.width * img.height))
                img = img.resize(
                    (max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.BILINEAR
                )
            return to_rgb8(img)
        except (OSError, SyntaxError, ValueError) as e:
            raise InputError(path, f"corrupt or truncated image ({e})") from None


def to_rgb8(img) -> np.ndarray:  # img: PIL.Image.Image
    """Convert a Pillow image of any mode to (H, W, 3) uint8 RGB.

    16-bit and 32-bit integer modes are scaled from their full range (65535 for 16-bit data),
    float images from [0, 1]; alpha is composited on black.
    """
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    elif mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(img).astype(np.float64)
        # 16-bit PNG/TIFF open as "I;16" or "I" (32-bit container); both hold 0..65535 samples.
        top = 65535.0 if mode.startswith("I;16") or a.max(initial=0) <= 65535 else float(a.max())
        g = np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        scale = 255.0 if a.max(initial=0) <= 1.0 else 1.0
        g = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "RGBa", "La"):
        a = np.asarray(img.convert("RGBA"), dtype=np.uint16)
        rgb = (a[..., :3] * a[..., 3:4] + 127) // 255  # composite on black, rounded
        return rgb.astype(np.uint8)
    if mode == "L":
        g = np.asarray(img, dtype=np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode != "RGB":
        img = img.convert("RGB")  # 1, CMYK, YCbCr, LAB, HSV
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not an image")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(path, f"cannot access file ({e.strerror})") from None
    if size == 0:
        raise InputError(path, "empty file (0 bytes)")


def _supported() -> str:
    return "supported: " + ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
