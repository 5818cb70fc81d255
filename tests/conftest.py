import sys
from pathlib import Path

import pytest

# Make tests/shared_data.py importable as a plain module from every test file.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tests run with the library's default thread setting (one intra-op thread)."""
    from facebehavior._runtime import configure_threads

    configure_threads()
