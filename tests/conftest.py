import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpserver import LocalServer  # tests/ is on sys.path (rootdir conftest, no __init__)

# pytest-xdist gives its workers COLUMNS=80. A rich console takes COLUMNS as its fixed
# width when it is made (the CLI's, at import), so the tests that set COLUMNS for one
# command could no longer change it: every test starts without it, however it is run.
os.environ.pop("COLUMNS", None)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A real HTTP server on 127.0.0.1:<free port> serving tests/data plus routes."""
    with LocalServer(root=Path(__file__).parent / "data") as s:
        yield s


# Database fixtures (SQLite file, PostgreSQL database) live in tests/dbfixtures.py.
pytest_plugins = ("dbfixtures",)
