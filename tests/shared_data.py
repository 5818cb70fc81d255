"""The one door from the test suite to ``../shared`` (data and docs outside the repo).

Tests call ``shared_path(...)``; when the folder is absent the test is skipped with a printed
reason, so the suite never depends on it silently. ``$FACEBEHAVIOR_SHARED`` overrides the location.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """Location of the shared folder (may not exist)."""
    env = os.environ.get("FACEBEHAVIOR_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """Path inside the shared folder, or skip the calling test if it is absent."""
    p = shared_root().joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not available: {p} (set FACEBEHAVIOR_SHARED to its location)")
    return p
