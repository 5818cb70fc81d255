"""Scale-out: analyse a corpus on a Ray cluster into a resumable, partitioned Parquet dataset.

``analyze_distributed`` (``facebehavior analyze … --engine ray``) runs the ``Analyzer`` in Ray
tasks; ``read_dataset`` reads the result back in a local run's row order. Ray is an optional
dependency (``pip install 'facebehavior[ray]'``), imported only when a distributed run starts.
See docs/scale.md.
"""

from __future__ import annotations

from facebehavior.scale.engine import DistributedRun, RayNotInstalledError, analyze_distributed
from facebehavior.scale.parts import read_dataset

__all__ = ["DistributedRun", "RayNotInstalledError", "analyze_distributed", "read_dataset"]
