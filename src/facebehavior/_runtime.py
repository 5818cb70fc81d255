"""Process-level runtime settings applied explicitly (never at import)."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Iterator

logger = logging.getLogger(__name__)

# Measured on 2-core VMs: small convnets ran 10-100x slower and erratically with torch's
# default intra-op threading than with one thread (see benchmarks/pipeline_speed.py).
DEFAULT_THREADS = 1

# The count ``scoped_threads`` applies, for runtimes that take it per session (onnxruntime).
_ACTIVE_THREADS: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "facebehavior_threads", default=None
)


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count.

    Args:
        threads: number of threads; ``None`` uses ``$FACEBEHAVIOR_THREADS`` or ``DEFAULT_THREADS``;
            ``0`` leaves torch's own default untouched.

    Returns:
        The thread count torch now uses.

    Raises:
        ValueError: a negative count, or ``$FACEBEHAVIOR_THREADS`` that is not a whole number >= 0.
    """
    import torch

    threads = resolve_threads(threads)
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
        logger.debug("torch intra-op threads set to %d", threads)
    return torch.get_num_threads()


def resolve_threads(threads: int | None = None) -> int:
    """The thread count ``threads`` asks for: ``None`` → ``$FACEBEHAVIOR_THREADS`` or ``DEFAULT_THREADS``.

    Returns:
        A count >= 0 (0: leave torch's own setting).

    Raises:
        ValueError: a negative count, or ``$FACEBEHAVIOR_THREADS`` that is not a whole number >= 0.
    """
    if threads is None:
        env = os.environ.get("FACEBEHAVIOR_THREADS", "").strip()
        try:
            threads = int(env) if env else DEFAULT_THREADS
        except ValueError:
            threads = -1
        if threads < 0:
            raise ValueError(
                f"FACEBEHAVIOR_THREADS={env!r}: expected a whole number >= 0 (0: torch's default); "
                "fix or unset the variable"
            ) from None
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0: torch's default), got {threads}")
    return int(threads)


@contextlib.contextmanager
def scoped_threads(threads: int, *, torch: bool = True) -> Iterator[None]:
    """Run a block with ``threads`` intra-op threads, then restore the caller's count.

    This is how the library applies its speed default without reconfiguring its host process: a
    training script that embeds ``Analyzer`` keeps its own thread count between calls. Switching
    costs a few microseconds per batch. ``threads == 0`` leaves the count alone. torch's count is
    set only when torch is already imported (the onnxruntime path never imports it); onnxruntime
    sessions read the count from ``active_threads``. ``torch=False`` scopes that count only, for
    a block that runs no torch code in a second thread (torch's count is process-wide).
    """
    token = _ACTIVE_THREADS.set(threads)
    tm = sys.modules.get("torch") if torch else None
    before = tm.get_num_threads() if tm is not None else 0
    change = tm is not None and threads > 0 and threads != before
    if change:
        tm.set_num_threads(threads)
    try:
        yield
    finally:
        if change:
            tm.set_num_threads(before)
        _ACTIVE_THREADS.reset(token)


def active_threads() -> int:
    """The intra-op thread count the library runs with now: ``scoped_threads``' count inside one,
    else ``resolve_threads()``; ``0`` means the runtime's own default."""
    active = _ACTIVE_THREADS.get()
    return resolve_threads() if active is None else active


def check_device(device: str) -> str:
    """Check that torch can use ``device`` before any model is built.

    Args:
        device: a torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).

    Returns:
        ``device`` unchanged.

    Raises:
        ValueError: an unknown device name, or a device this torch build or machine lacks; the
            message says which devices are available.
    """
    if device == "cpu":  # always there; checking it would import torch for nothing
        return device
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"unknown device {device!r}; use cpu, cuda, cuda:N or mps ({_available_devices()} here)"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {device!r}: {why}; use --device cpu ({_available_devices()} here)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0 …)"
            )
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r}: MPS is not available; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r} is not supported; use cpu, cuda, cuda:N or mps")
    return device


def _available_devices() -> str:
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        out.append("mps")
    return "available: " + ", ".join(out)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)
_allocator_configured = False


def configure_allocator() -> bool:
    """Keep freed tensor memory in the process instead of returning it to the OS (glibc only).

    glibc serves blocks above a threshold with fresh ``mmap`` pages and gives heap tops back to the
    OS, so every forward pass of a small convnet page-faults its activations in again: measured
    ~2,000-5,000 minor faults and 30-50 % of FaceMesh's CPU time per batch of 4 faces
    (``benchmarks/pipeline_speed.py``). This raises the mmap threshold to 32 MiB and the trim
    threshold to 256 MiB (freed memory is reused, not re-faulted). A process-wide setting, so the
    library never applies it by itself: the CLI does (``facebehavior analyze``), and an application
    embedding the library may call it; ``$FACEBEHAVIOR_ALLOCATOR=default`` makes it a no-op.

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
