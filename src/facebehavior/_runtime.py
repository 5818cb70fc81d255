"""Process-level runtime settings applied explicitly (never at import)."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

# Measured on 2-core VMs: small convnets ran 10-100x slower and erratically with torch's
# default intra-op threading than with one thread (see benchmarks/pipeline_speed.py).
DEFAULT_THREADS = 1


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count.

    Args:
        threads: number of threads; ``None`` uses ``$FACEBEHAVIOR_THREADS`` or ``DEFAULT_THREADS``;
            ``0`` leaves torch's own default untouched.

    Returns:
        The thread count torch now uses.
    """
    import torch

    if threads is None:
        env = os.environ.get("FACEBEHAVIOR_THREADS")
        threads = int(env) if env else DEFAULT_THREADS
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
        logger.debug("torch intra-op threads set to %d", threads)
    return torch.get_num_threads()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)
_allocator_configured = False


def configure_allocator() -> bool:
    """Keep freed tensor memory in the process instead of returning it to the OS (glibc only).

    glibc serves blocks above a threshold with fresh ``mmap`` pages and gives heap tops back to the
    OS, so every forward pass of a small convnet page-faults its activations in again: measured
    ~2,000-5,000 minor faults and 30-50 % of FaceMesh's CPU time per batch of 4 faces
    (``benchmarks/pipeline_speed.py``). This raises the mmap threshold to 32 MiB and the trim
    threshold to 256 MiB (freed memory is reused, not re-faulted). Applied once per process, by
    ``Analyzer``; ``$FACEBEHAVIOR_ALLOCATOR=default`` leaves malloc untouched.

    Returns:
        Whether the setting was applied (False off glibc, when disabled, or if mallopt refused).
    """
    global _allocator_configured
    if _allocator_configured:
        return True
    if os.environ.get("FACEBEHAVIOR_ALLOCATOR", "").lower() == "default":
        return False
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = (
            libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20) == 1
        )
    except (OSError, AttributeError):
        return False
    _allocator_configured = ok
    logger.debug(
        "glibc malloc: mmap threshold 32 MiB, trim threshold 256 MiB (%s)", "ok" if ok else "refused"
    )
    return ok
