from collections.abc import Iterator
from pathlib import Path

import pytest
from httpserver import LocalServer  # tests/ is on sys.path (rootdir conftest, no __init__)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A real HTTP server on 127.0.0.1:<free port> serving tests/data plus routes."""
    with LocalServer(root=Path(__file__).parent / "data") as s:
        yield s


# Database fixtures (SQLite file, PostgreSQL database) live in tests/dbfixtures.py.
pytest_plugins = ("dbfixtures",)
