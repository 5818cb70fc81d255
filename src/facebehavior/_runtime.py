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
