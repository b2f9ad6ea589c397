"""Database fixtures: a real SQLite file in tmp_path and a real PostgreSQL database on the
local server (127.0.0.1:5432, user postgres). In CI (CI or AGGREGATOR_REQUIRE_POSTGRES
set) an unreachable PostgreSQL fails the tests instead of skipping them."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

PG_ADMIN = os.environ.get(
    "AGGREGATOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_counter = itertools.count()


def _require_pg() -> bool:
    return bool(os.environ.get("AGGREGATOR_REQUIRE_POSTGRES") or os.environ.get("CI"))


def _admin_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


class _PgDatabases:
    """Creates and drops the test databases on a thread of its own: the next test's
    database is created while the current test runs, and a finished test's is dropped
    while the next one runs (CREATE DATABASE waits ~0.25 s on the disk; ~300 tests).
    Each test gets a database of its own, none used by two tests: empty (from
    template1), or holding the current schema (a copy of one database that
    ``open_store`` set up once per test process: migrating a new database took ~0.4 s
    of each PostgreSQL test, the copy ~0.1 s, and ``open_store`` then finds nothing to
    do, as on any store but a new one)."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._engine = _admin_engine()
        self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-databases")
        self._next: tuple[bool, Future[str]] | None = None
        self._drops: list[tuple[str, Future[None]]] = []
        self._template: str | None = None

    def url(self, name: str) -> str:
        return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"

    def _create(self, with_schema: bool) -> str:
        from sqlalchemy import text

        template = self._schema_template() if with_schema else "template1"
        name = f"aggregator_test_{os.getpid()}_{next(_counter)}"
        with self._engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        return name

    def _schema_template(self) -> str:
        """The database the schema-holding ones are copied from: made (on the jobs'
        thread) by the code under test, the first time one is asked for."""
        if self._template is None:
            from aggregator.store import open_store

            name = self._create(False)
            try:
                open_store(self.url(name)).close()
            except BaseException:
                self.give_back(name)
                raise
            self._template = name
        return self._template

    def _drop(self, name: str) -> None:
        from sqlalchemy import text

        with self._engine.connect() as c:
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))

    def take(self, *, with_schema: bool) -> str:
        """A new database's name, empty or holding the current schema; raises what
        creating it raised. The next one, of the same kind, is made meanwhile."""
        ahead, self._next = self._next, None
        if ahead is not None and ahead[0] != with_schema:
            with contextlib.suppress(Exception):  # its error is the next take's to raise
                self.give_back(ahead[1].result())
            ahead = None
        ready = ahead[1] if ahead else self._jobs.submit(self._create, with_schema)
        name = ready.result()  # an unreachable server fails here, and is not retried ahead
        self._next = (with_schema, self._jobs.submit(self._create, with_schema))
        return name

    def give_back(self, name: str) -> None:
        self._drops.append((name, self._jobs.submit(self._drop, name)))

    def close(self) -> None:
        """Drop what is left; a database that could not be dropped is an error here (it
        was a teardown error of its own test when the drop was done there)."""
        if self._next is not None:
            with contextlib.suppress(Exception):
                self.give_back(self._next[1].result())
        if self._template is not None:
            self.give_back(self._template)
        self._jobs.shutdown(wait=True)
        self._engine.dispose()
        failed = [f"{name}: {f.exception()}" for name, f in self._drops if f.exception()]
        assert not failed, "test databases not dropped: " + "; ".join(failed)


@pytest.fixture(scope="session")
def _pg_databases() -> Iterator[_PgDatabases]:
    databases = _PgDatabases()
    try:
        yield databases
    finally:
        databases.close()


@contextlib.contextmanager
def fresh_pg_url(databases: _PgDatabases, *, with_schema: bool = True) -> Iterator[str]:
    """The URL of a new PostgreSQL database holding the current schema (or, without
    ``with_schema``, an empty one), dropped afterwards; skips (fails in CI) when the
    server is not reachable."""
    from sqlalchemy.exc import OperationalError

    try:
        name = databases.take(with_schema=with_schema)
    except OperationalError as e:
        msg = f"PostgreSQL at {PG_ADMIN} is not reachable: {str(e).splitlines()[0]}"
        if _require_pg():
            pytest.fail(msg)
        pytest.skip(msg)
    try:
        yield databases.url(name)
    finally:
        databases.give_back(name)


@pytest.fixture
def pg_url(_pg_databases: _PgDatabases) -> Iterator[str]:
    """A new PostgreSQL database for one test, holding the current schema as
    ``open_store`` leaves a new database (no rows); dropped afterwards."""
    with fresh_pg_url(_pg_databases) as url:
        yield url


@pytest.fixture
def empty_pg_url(_pg_databases: _PgDatabases) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test (no schema: for what a store's
    first opening does, migrations, racing first starts); dropped afterwards."""
    with fresh_pg_url(_pg_databases, with_schema=False) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'data' / 'aggregator.db').as_posix()}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))
