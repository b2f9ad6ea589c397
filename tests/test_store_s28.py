"""Session 28: the store, leases and daemons on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest
from httpserver import LocalServer, Request

from aggregator.app import lease_host, make_app
from aggregator.config import Settings
from aggregator.errors import StoreUnavailableError
from aggregator.store import open_store
from aggregator.store.feeds import process_stamp
from aggregator.types import FeedCheck, FeedSource

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Store</title>
<link>http://example.org/</link><item><title>Registry operators meet</title>
<link>http://example.org/a</link><guid>a</guid><description>Operators met to discuss
DNSSEC key rollovers.</description></item></channel></rss>"""


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings.from_env(
        {},
        data_dir=tmp_path / "data",
        database_url=url,
        allow_private_addresses=True,
        extract=False,
    )


def _polled(feed_id: int, at: datetime, **kw: Any) -> FeedCheck:
    """A feed's state as a successful poll at ``at`` leaves it."""
    base: dict[str, Any] = {
        "feed_id": feed_id,
        "at": at,
        "outcome": "ok",
        "next_check": at + timedelta(hours=1),
        "status": "active",
        "error_count": 0,
        "first_error_at": None,
        "last_error": None,
        "success": True,
    }
    return FeedCheck(**(base | kw))


class _ReleaseOnLog(logging.Handler):
    """Rolls ``holder`` back (another connection's write lock goes) when a record
    matching ``marker`` is logged: the moment a write that failed is tried again."""

    def __init__(self, holder: sqlite3.Connection, marker: str) -> None:
        super().__init__(logging.DEBUG)
        self.holder, self.marker = holder, marker

    def emit(self, record: logging.LogRecord) -> None:
        if self.marker in record.getMessage() and self.holder.in_transaction:
            self.holder.rollback()


def test_an_unchanged_feeds_outcome_meeting_a_locked_database_is_no_feed_error(
    tmp_path: Path, server: LocalServer
) -> None:
    """`prune --vacuum` (or any long write) holds SQLite's write lock past a poll's busy
    timeout just as the poll writes its story-less outcomes (a 304, an unchanged body):
    the database's trouble, to be tried again, never a "could not store" error, error
    count and backoff recorded on a healthy feed (the lock had gone by the time that
    error was written)."""
    db = tmp_path / "data" / "aggregator.db"
    holder: sqlite3.Connection | None = None
    taking = threading.Event()

    def body(_: Request) -> bytes:
        if taking.is_set() and holder is not None and not holder.in_transaction:
            holder.execute("BEGIN IMMEDIATE")  # after the claim, before the outcome's write
        return RSS

    url = server.route("/f.xml", body=body)
    s = _settings(tmp_path, f"sqlite:///{db.as_posix()}?timeout=0.3")
    with make_app(s) as app:
        feed_id = app.add_feed(url, discover=False).feed.id
        now = app.now()
        # polled before: this body is the one seen last time (an "unchanged" outcome)
        app.store.save_checks([_polled(feed_id, now, body_hash=hashlib.sha256(RSS).hexdigest())])
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        handler = _ReleaseOnLog(holder, "could not store")
        logging.getLogger("aggregator").addHandler(handler)
        try:
            taking.set()
            with pytest.raises(StoreUnavailableError, match="locked"):
                list(app.update_due(all_feeds=True))
        finally:
            logging.getLogger("aggregator").removeHandler(handler)
            if holder.in_transaction:
                holder.rollback()
            holder.close()
            taking.clear()
        (feed,) = app.feeds()
        assert (feed.status, feed.error_count, feed.last_error) == ("active", 0, None)
        # tried again: the next poll takes the feed up (its lease handed back) and stores it
        (again,) = app.update_due(all_feeds=True)
        assert (again.status, again.error) == ("unchanged", None)
        assert len(server.requests_for("/f.xml")) == 2


def test_a_restarted_daemon_with_its_old_pid_releases_its_dead_predecessors_leases(
    tmp_path: Path, db_url: str
) -> None:
    """A container's daemon is pid 1 again after a restart (and the kernel may give its
    new PID namespace the old one's number), a rebooted machine gives its pids out again:
    the dead daemon's leases named a pid that runs, the live process's, and held its feeds
    for the whole 15 minutes. Told apart by when the process that has the pid started;
    a live process's leases (this one's, another's) and other hosts' stay."""
    s = _settings(tmp_path, db_url)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=PIPE)
    try:
        with make_app(s, now=lambda: T0) as app:
            me, here = os.getpid(), lease_host()
            mine, other = process_stamp(me), process_stamp(child.pid)
            assert mine is not None and other is not None
            assert app.owner.startswith(f"{here}:{me}:") and app.owner.endswith(f"@{mine}")
            boot, ticks = mine.split(".")
            owners = [
                # dead: this pid's earlier process (a restart), the child's pid in a boot before
                f"{here}:{me}:0badcafe@{boot}.{int(ticks) - 1}",
                f"{here}:{child.pid}:0badcafe@00000000.{other.split('.')[1]}",
                # live: this process, another one, and an owner without a stamp that names
                # this pid (an older aggregator's: nothing tells)
                app.owner,
                f"{here}:{child.pid}:5ca1ab1e@{other}",
                f"{here}:{me}:5ca1ab1e",
                # another host's: its pids mean nothing here
                f"elsewhere/pidns-1:{me}:0badcafe@{boot}.{int(ticks) - 1}",
            ]
            sources = [FeedSource(url=f"https://h{i}.example/feed") for i in range(len(owners))]
            app.store.upsert_feeds(sources, T0)
            for owner in owners:
                assert app.store.claim_due(T0, owner=owner, lease=timedelta(minutes=15), limit=1)
            assert app.due_count() == 0
            app.prepare_poll()
            held = [app.store.get_feed(x.url).lease_owner for x in sources]
            assert held == [None, None, *owners[2:]]
            assert app.due_count() == 2
    finally:
        child.communicate(b"")


def test_a_running_daemons_next_poll_takes_up_the_feeds_of_a_poll_killed_beside_it(
    tmp_path: Path, server: LocalServer
) -> None:
    """`aggregator poll` run by hand beside the daemon (or a second daemon on the host)
    is killed (-9, the OOM killer) holding feeds: only a start released a dead process's
    leases, so the daemon, started long before, left those feeds for the whole 15
    minutes. Each poll releases them before it claims."""
    urls = [server.route(f"/f{i}.xml", etag='"v1"') for i in range(2)]  # 304s
    s = _settings(tmp_path, f"sqlite:///{(tmp_path / 'a.db').as_posix()}")
    with make_app(s) as app:
        app.prepare_poll()  # the daemon's start
        ids = [app.add_feed(u, discover=False).feed.id for u in urls]
        app.store.save_checks(
            [_polled(i, app.now() - timedelta(hours=2), etag='"v1"') for i in ids]
        )
        killed = subprocess.Popen([sys.executable, "-c", "pass"])
        killed.wait()
        dead = f"{lease_host()}:{killed.pid}:0badcafe"
        assert app.store.claim_due(app.now(), owner=dead, lease=timedelta(minutes=15), ids=ids[:1])
        polled = sorted(r.feed_id for r in app.update_due())
        assert polled == ids
        assert [app.store.get_feed(i).lease_owner for i in ids] == [None, None]


def test_compacting_beside_a_running_daemon_leaves_no_write_ahead_log_the_size_of_the_database(
    tmp_path: Path,
) -> None:
    """`prune --vacuum` rewrites the database into the write-ahead log; with a daemon's
    connections open the file was never removed, nor shrunk (SQLite reuses it as it is),
    so a database of 10 GB pruned to 6 GB took 16 GB on the disk for as long as the daemon ran. The
    log is checkpointed and truncated once the VACUUM is done."""
    db = tmp_path / "a.db"
    url = f"sqlite:///{db.as_posix()}"
    daemon = open_store(url)  # a running daemon's store: its connection stays open
    try:
        with daemon.engine.begin() as c:
            c.exec_driver_sql("CREATE TABLE junk (x BLOB)")
            c.exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)"
                " INSERT INTO junk SELECT randomblob(4000) FROM n"
            )
        with daemon.engine.begin() as c:  # pruned: half of it goes
            c.exec_driver_sql("DELETE FROM junk WHERE rowid % 2 = 0")
        with daemon.engine.connect() as c:  # as the daemon's writes do, once the log is long
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        before = db.stat().st_size
        assert before > 10_000_000
        cli = open_store(url)  # `aggregator prune --vacuum`
        try:
            cli.compact()
        finally:
            cli.close()
        wal = Path(f"{db}-wal")
        assert db.stat().st_size < 0.7 * before
        assert not wal.exists() or wal.stat().st_size < 1_000_000, wal.stat().st_size
        with daemon.engine.begin() as c:  # the daemon goes on writing
            c.exec_driver_sql("INSERT INTO junk VALUES (x'00')")
        with daemon.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        daemon.close()


def test_no_start_stamp_is_read_from_another_pid_namespaces_proc() -> None:
    """A process in a PID namespace of its own whose ``/proc`` is still the parent's
    (``unshare --pid --fork`` without ``--mount-proc``) read its stamp off the parent's
    process of its pid number: a live daemon's leases could then look ended to another
    process of its namespace, and be polled twice. Such a ``/proc`` gives no stamp
    (the pid alone is judged, as before)."""
    probe = (
        "import os; from aggregator.store.feeds import process_stamp;"
        " print(os.getpid(), process_stamp(os.getpid()))"
    )
    try:
        done = subprocess.run(
            ["unshare", "--pid", "--fork", sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.skip("no unshare(1)")
    if done.returncode and "Operation not permitted" in done.stderr:
        pytest.skip("no PID namespaces for this user")
    assert done.stdout.split() == ["1", "None"], done.stderr
