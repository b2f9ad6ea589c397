"""The parts of storage that differ between SQLite and PostgreSQL at run time, each in
one small function: engine set-up (WAL, busy timeout, foreign keys; PostgreSQL's
connection and session limits), story ids that are never given twice, SimHash bands.
The schema's migrations are in ``migrations.py``, the full-text index and filter in
``search.py``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url

from ..errors import StoreError, StoreUnavailableError
from ..lockwait import stop_requested

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: SQLite: WAL pages (4 KiB) after which a commit copies the WAL into the database and
#: syncs both (the default is 1,000, 4 MB). A first poll of 1,000 feeds writes ~340 MB,
#: so that was a sync every few commits: at 10,000 its wall time fell ~5 % (benchmark
#: medians of six alternated runs, 27.0 -> 25.7 s) for a WAL of up to ~40 MB between
#: copies. Power lost meanwhile can cost more of the latest commits (synchronous=NORMAL
#: syncs the WAL at a copy), never consistency: a poll's lost work is fetched again.
SQLITE_WAL_AUTOCHECKPOINT = 10_000
LOCK_SLICE_MS = 100  # how long SQLite waits for the write lock before Python looks again
# A PostgreSQL URL that points at something which accepts TCP but never answers (a
# firewall, a wrong port) would otherwise hold the open for psycopg's default of 130 s
# per address, and every pool reconnection after it. libpq counts whole seconds, at
# least 2.
PG_CONNECT_TIMEOUT_S = 10
# TCP keepalives on PostgreSQL connections (libpq's, unless the URL sets its own): a
# server that vanishes without closing the connection (a network partition, a host that
# lost power, a NAT or firewall that dropped the flow) left a query waiting for an answer
# for the operating system's default of two hours of silence plus its probes, and a
# daemon in it could neither poll nor stop. Now the connection fails after ~1 minute
# (30 s idle, then 3 probes 10 s apart), the cycle is logged as failed, and the next one
# reconnects.
PG_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def make_engine(url: str, *, connect_timeout: int = PG_CONNECT_TIMEOUT_S) -> Engine:
    """The engine for ``url``. ``connect_timeout`` bounds each PostgreSQL connection
    attempt (psycopg / psycopg2) unless the URL sets its own ``connect_timeout``."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql"):
        if url.startswith("postgresql://"):  # default to psycopg 3, the driver we ship
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        connect_args: dict[str, Any] = {}
        parsed = make_url(url)
        if parsed.get_driver_name() in ("psycopg", "psycopg2"):
            if "connect_timeout" not in parsed.query:
                connect_args["connect_timeout"] = connect_timeout
            connect_args.update({k: v for k, v in PG_KEEPALIVES.items() if k not in parsed.query})
        engine = create_engine(
            parsed, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args
        )
        event.listen(engine, "connect", _pg_on_connect)
        return engine
    raise StoreError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://")


#: Our sessions' bounds on waiting, where the server, the role or the URL (``options=-c
#: lock_timeout=…``) sets none (PostgreSQL's default for both is 0, no limit):
#:
#: - ``lock_timeout``: a statement waiting this long for a lock fails. Without it, a row
#:   or table lock held by a stuck session (an interactive ``psql`` left mid-transaction,
#:   a frozen process) held the daemon's write, hence the daemon, for as long; now that
#:   feed's store fails, is recorded and retried, and the other feeds go on. A migration
#:   that cannot get its table lock fails with PostgreSQL's message instead of hanging
#:   (and queueing every other session behind its lock request); waiting for another
#:   process's migration is not limited (``migrate``).
#: - ``idle_in_transaction_session_timeout``: a session of ours that stops inside a
#:   transaction (the process frozen: SIGSTOP, a VM paused, a debugger) is ended by the
#:   server, releasing its locks for the other daemons. Our transactions never idle
#:   between statements for more than a moment.
PG_SESSION_LIMITS = {
    "lock_timeout": "60s",
    "idle_in_transaction_session_timeout": "5min",
}


def _pg_on_connect(dbapi_conn: Any, _record: Any) -> None:
    """No JIT compilation for our statements: they are short, but the planner's cost for
    a correlated subquery (the story lists' "no earlier copy matches") runs past
    ``jit_above_cost`` on a big store, and compiling then took longer than the query
    (90 ms of a 120 ms topic page at 30,000 stories, over a second on a cold backend).
    Then ``PG_SESSION_LIMITS`` where nothing set them. SETs rather than startup options,
    which connection poolers refuse."""
    statements = ["SET jit = off"]
    try:
        with dbapi_conn.cursor() as cur:
            for name, value in PG_SESSION_LIMITS.items():
                cur.execute(f"SHOW {name}")
                row = cur.fetchone()
                if row is not None and str(row[0]) == "0":
                    statements.append(f"SET {name} = '{value}'")
        dbapi_conn.commit()
    except Exception:  # a server without the settings: keep its defaults
        dbapi_conn.rollback()
    for statement in statements:
        try:
            with dbapi_conn.cursor() as cur:
                cur.execute(statement)
            dbapi_conn.commit()
        except Exception:
            dbapi_conn.rollback()


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    path = parsed.database or ""
    # SQLite opens an empty path or ":memory:" as a private in-memory database: nothing
    # would be kept, and with a connection per thread the poll's threads would not even
    # share it. A URL with no path is almost always a mistyped one, so say so.
    if not path:
        raise StoreError(
            f"{url!r} has no file path; use sqlite:////abs/path.db (four slashes for an "
            "absolute path) or sqlite:///relative/path.db"
        )
    if path == ":memory:" or parsed.query.get("mode") == "memory":
        raise StoreError(
            f"{url!r} is an in-memory database and nothing in it would be kept; "
            "use sqlite:////abs/path.db"
        )
    # How long a write waits for another process's write lock before "database is
    # locked": ``?timeout=SECONDS`` in the URL, as pysqlite names it (it was ignored).
    busy_ms = SQLITE_BUSY_TIMEOUT_MS
    if "timeout" in parsed.query:
        try:
            busy_ms = round(float(str(parsed.query["timeout"])) * 1000)
        except ValueError:
            busy_ms = -1
        if not 0 <= busy_ms < 2**31:
            raise StoreError(f"{url!r}: timeout must be a number of seconds, 0 or more")
    if not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed, connect_args={"timeout": busy_ms / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that writers can say BEGIN IMMEDIATE:
        # a deferred transaction that reads and then writes fails at once with
        # SQLITE_BUSY_SNAPSHOT under WAL when another writer got in between (no retry).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "DEFERRED":  # readers: WAL never makes them wait
            conn.exec_driver_sql("BEGIN DEFERRED")
        else:
            _begin_in_slices(conn, mode, busy_ms)

    return engine


def _begin_in_slices(conn: Connection, mode: str, busy_ms: int) -> None:
    """``BEGIN IMMEDIATE`` (the write lock), waiting for another writer in slices of
    LOCK_SLICE_MS so that a signal is handled between them: SQLite's own wait ran in C
    for the whole busy timeout (30 s), and Ctrl-C on `label` while a daemon wrote did
    nothing until then, and then failed with "database is locked". The last try, once
    the timeout is nearly spent, goes through SQLAlchemy, whose "database is locked"
    the store reports as it always did."""
    raw = conn.connection.driver_connection
    if raw is None or busy_ms <= LOCK_SLICE_MS:
        conn.exec_driver_sql(f"BEGIN {mode}")
        return
    deadline = time.monotonic() + busy_ms / 1000
    raw.execute(f"PRAGMA busy_timeout={LOCK_SLICE_MS}")
    try:
        while time.monotonic() + LOCK_SLICE_MS / 1000 < deadline:
            try:
                raw.execute(f"BEGIN {mode}")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e):
                    break  # not the lock: the last try reports it
            if stop_requested():  # a stop signal: see aggregator.lockwait
                raise StoreUnavailableError(
                    "stopped while waiting for another process's write lock"
                )
        left = round((deadline - time.monotonic()) * 1000)
        raw.execute(f"PRAGMA busy_timeout={max(1, left)}")
        conn.exec_driver_sql(f"BEGIN {mode}")
    finally:
        raw.execute(f"PRAGMA busy_timeout={busy_ms}")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def simhash_bands(fp: int) -> dict[str, int]:
    u = fp & ((1 << 64) - 1)
    return {f"b{i}": (u >> (16 * i)) & 0xFFFF for i in range(4)}


def keep_story_ids(conn: Connection) -> None:
    """SQLite, before stories are deleted: remember the largest story id given so far.
    New stories take the ids after the larger of it and the largest stored one
    (:func:`last_story_id`): SQLite gives max(rowid) + 1, so deleting the newest stories
    (``feeds remove``) gave their ids to the next poll's, and ``show 123`` or
    ``label 123`` named another story than the one a user had listed. (PostgreSQL's
    sequence never goes back.)"""
    _keep_id_floor(conn, "story")


def _keep_id_floor(conn: Connection, table: str) -> None:
    """SQLite: store_meta's ``{table}_id_floor`` raised to ``table``'s largest id."""
    if conn.dialect.name != "sqlite":
        return
    largest = conn.exec_driver_sql(f"SELECT max(id) FROM {table}").scalar()
    if largest is not None:
        conn.exec_driver_sql(
            f"INSERT INTO store_meta (key, value) VALUES ('{table}_id_floor', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            (int(largest),),
        )


_LAST_STORY_ID = text(
    "SELECT max(coalesce((SELECT max(id) FROM story), 0), "
    "coalesce((SELECT value FROM store_meta WHERE key = 'story_id_floor'), 0))"
)


def last_story_id(conn: Connection) -> int:
    """SQLite: the largest story id ever given (see :func:`keep_story_ids`)."""
    return int(conn.execute(_LAST_STORY_ID).scalar() or 0)


def keep_feed_ids(conn: Connection) -> None:
    """SQLite, before a feed is deleted: remember the largest feed id given so far, as
    :func:`keep_story_ids` does for stories. A removed newest feed's id went to the next
    feed added, so ``--feed 2``, a reading list kept with ``-f 2`` and serve's
    ``?feed=2`` went on, silently, with another feed's stories."""
    _keep_id_floor(conn, "feed")


_NEXT_FEED_ID = text(
    "SELECT max(coalesce((SELECT max(id) FROM feed), 0), "
    "coalesce((SELECT value FROM store_meta WHERE key = 'feed_id_floor'), 0)) + 1"
)


def next_feed_id(conn: Connection) -> int | None:
    """SQLite: the id the next feed added takes, after every id ever given (see
    :func:`keep_feed_ids`); None on PostgreSQL, whose sequence gives it."""
    if conn.dialect.name != "sqlite":
        return None
    return int(conn.execute(_NEXT_FEED_ID).scalar() or 1)
