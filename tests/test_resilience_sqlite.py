"""The daemon outlives SQLite's bad hours: another process holding the write lock past
the busy timeout, and a disk that refuses writes for a while.

Both are real: a second process holds ``BEGIN IMMEDIATE`` on the file; the daemon
process's file-size limit (``RLIMIT_FSIZE``, set from outside with ``prlimit``) makes its
writes past the database's current size fail as a full disk does (``disk I/O error``),
and lifting the limit is the disk getting space again."""

from __future__ import annotations

import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from httpserver import LocalServer
from proclines import Output
from test_resilience_postgres import wait_for

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.daemon import Stopper, run_daemon
from aggregator.errors import StoreError
from aggregator.store import open_store

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Resilience</title>
<link>http://example.org/</link><item><title>Registry operators meet</title>
<link>http://example.org/a</link><guid>a</guid><description>Operators met to discuss
DNSSEC key rollovers.</description></item></channel></rss>"""


def test_the_busy_timeout_comes_from_the_url(tmp_path: Path) -> None:
    db = (tmp_path / "a.db").as_posix()
    for url, ms in ((f"sqlite:///{db}", 30_000), (f"sqlite:///{db}?timeout=0.25", 250)):
        store = open_store(url)
        try:
            with store.engine.connect() as c:
                assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == ms
                assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
        finally:
            store.close()
    with pytest.raises(StoreError, match="timeout must be a number of seconds"):
        open_store(f"sqlite:///{db}?timeout=soon")


def test_a_daemon_outlives_a_write_lock_held_past_the_busy_timeout(
    tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.route("/f.xml", body=RSS)
    db = tmp_path / "data" / "aggregator.db"
    s = Settings.from_env(
        {},
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{db.as_posix()}?timeout=0.3",
        allow_private_addresses=True,
        extract=False,
    )
    cycles: list[int] = []
    stopper = Stopper()
    daemon: threading.Thread | None = None
    holder: subprocess.Popen[str] | None = None
    try:
        with make_app(s) as app:
            app.add_feed(url, discover=False)
            holder = _hold_the_write_lock(db)  # another process, in a long write
            caplog.set_level(logging.DEBUG, logger="aggregator")
            daemon = threading.Thread(
                target=lambda: cycles.append(
                    run_daemon(app, stopper=stopper, max_sleep=0.5, idle_sleep=0.1, retry_sleep=0.2)
                )
            )
            daemon.start()
            wait_for(lambda: "database is locked" in caplog.text)
            time.sleep(1.0)  # a few more tries while the lock is held
            assert daemon.is_alive()
            assert not server.requests_for("/f.xml")
            holder.communicate("", timeout=10)  # the other process commits and ends
            wait_for(lambda: app.feeds()[0].stories == 1)
            stopper.event.set()
            daemon.join(timeout=10)
            (feed,) = app.feeds()
            assert (feed.status, feed.error_count) == ("active", 0)
    finally:
        stopper.event.set()
        if daemon is not None:
            daemon.join(timeout=10)
        if holder is not None and holder.poll() is None:
            holder.kill()
            holder.communicate()
    assert cycles and cycles[0] >= 3
    failures = [r for r in caplog.records if "poll cycle failed" in r.getMessage()]
    # about one try per 0.2 s doubling to 0.5 s: no busy loop; each one line, no traceback
    assert 2 <= len(failures) <= 8, [r.getMessage() for r in failures]
    for r in failures:
        assert r.levelno == logging.ERROR and r.exc_info is None
        assert r.getMessage().endswith("database is locked")
    assert any(r.levelno == logging.DEBUG and r.exc_info for r in caplog.records)


def _hold_the_write_lock(db: Path) -> subprocess.Popen[str]:
    """Another process in the middle of a long write: it holds SQLite's write lock until
    its stdin closes."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None)"
            "; c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()",
            str(db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def _one_story(data: Path) -> int:
    from aggregator.types import FeedCheck, FeedSource, StoryDraft, StoryRecord

    with make_app(Settings.from_env({}, data_dir=data)) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://news.example/feed"), app.now())
        draft = StoryDraft(
            key="k", guid="k", link="https://news.example/1", canonical_url=None,
            title="Registry operators meet", author=None, published=None, updated=None,
            summary="DNSSEC key rollovers.", content=None, categories=(), content_hash="h",
        )  # fmt: skip
        check = FeedCheck(
            feed_id=feed.id, at=app.now(), outcome="ok", next_check=app.now(), status="active",
            error_count=0, first_error_at=None, last_error=None, success=True,
        )  # fmt: skip
        (story,) = app.store.save_update(check, [StoryRecord(draft=draft)]).new
        return int(story)


def _label(data: Path, story: int, *, url: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "AGGREGATOR_DATA_DIR": str(data)}
    if url is not None:
        env["AGGREGATOR_DATABASE_URL"] = url
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "label", str(story), "+DNS"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _has_open(pid: int, path: Path) -> bool:
    return any(p.resolve() == path.resolve() for p in Path(f"/proc/{pid}/fd").iterdir())


def _interrupted_while_locked(
    data: Path, start: Callable[[], subprocess.Popen[str]]
) -> tuple[int, float, str]:
    """A command started while another process holds the write lock, then SIGINT once
    it waits for it: (its exit status, seconds from the signal to its end, stderr)."""
    db = data / "aggregator.db"
    holder = _hold_the_write_lock(db)
    try:
        command = start()
        # Once it has the database open it has its handlers, and its first write waits
        # for the lock. (A fixed 3 s wait raced its start-up on a loaded machine: the
        # signal came while Python imported, before `poll` turned it into a stop, and it
        # ended as Ctrl-C during start-up does, 130 or -2, without a word.)
        wait_for(lambda: command.poll() is not None or _has_open(command.pid, db))
        time.sleep(0.5)  # into the wait (the stop is seen there however late it comes)
        assert command.poll() is None, command.communicate()
        stopped = time.monotonic()
        command.send_signal(signal.SIGINT)
        _, err = command.communicate(timeout=40)
        return command.returncode, time.monotonic() - stopped, err
    finally:
        holder.communicate("", timeout=10)


def test_ctrl_c_while_waiting_for_the_write_lock_ends_the_command_at_once(
    tmp_path: Path,
) -> None:
    """SQLite waited for another writer's lock in C for the whole busy timeout (30 s):
    Ctrl-C on `label` while a daemon wrote did nothing for up to 30 s, and the command
    then failed with "database is locked". The wait now goes in slices of 0.1 s."""
    data = tmp_path / "data"
    story = _one_story(data)
    code, took, err = _interrupted_while_locked(data, lambda: _label(data, story))
    assert code == 130 and took < 3, (code, took, err)


def test_poll_stopped_while_waiting_for_the_write_lock_says_so_at_once(tmp_path: Path) -> None:
    """`poll` turns SIGINT into an event (the feed being stored is finished first), so a
    write waiting for the lock ran to the busy timeout: it now gives up at the signal."""
    data = tmp_path / "data"
    _one_story(data)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    env = {
        **os.environ,
        "AGGREGATOR_DATA_DIR": str(data),
        "AGGREGATOR_FEEDS": str(tmp_path / "feeds.yaml"),
    }
    code, took, err = _interrupted_while_locked(
        data,
        lambda: subprocess.Popen(
            [sys.executable, "-m", "aggregator", "poll", "--all"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    )
    assert (code, took < 3) == (130, True), (code, took, err)
    assert "poll interrupted: stopped while waiting for another process's write lock" in err


def test_a_write_waits_for_the_lock_and_gives_up_after_the_busy_timeout(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    story = _one_story(data)
    db = data / "aggregator.db"
    holder = _hold_the_write_lock(db)
    try:
        started = time.monotonic()
        label = _label(data, story, url=f"sqlite:///{db.as_posix()}?timeout=1.5")
        # meanwhile, one with the default timeout: the lock is given up while it waits,
        # and it goes on (started after the first one ended, it cost that one's start-up)
        waiting = _label(data, story)
        _, err = label.communicate(timeout=60)
        took = time.monotonic() - started
        assert label.returncode == 1 and err.strip() == "error: database is locked", err
        assert took >= 1.5, took  # the whole timeout, not one slice of it
        # by now it has the database open and its write waits for the lock (a fixed
        # 2.5 s from its start gave it about a second of that, less on a loaded machine)
        wait_for(lambda: waiting.poll() is not None or _has_open(waiting.pid, db))
        time.sleep(0.5)
        assert waiting.poll() is None, waiting.communicate()
    finally:
        holder.communicate("", timeout=10)
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert "DNS 1.00 (user)" in out


def test_a_daemon_told_to_stop_while_waiting_for_the_write_lock_stops_at_once(
    tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A stop signal sets the daemon's event, and the feed being stored is finished
    first: a write waiting for another process's lock ran to the whole busy timeout
    (30 s) before the daemon could stop, then logged a failed cycle. It now gives up at
    the stop, and the poll ends as stopped."""
    url = server.route("/f.xml", body=RSS)
    db = tmp_path / "data" / "aggregator.db"
    s = Settings.from_env(
        {}, data_dir=tmp_path / "data", allow_private_addresses=True, extract=False
    )
    stopper = Stopper()
    cycles: list[int] = []
    with make_app(s) as app:
        app.add_feed(url, discover=False)
        holder = _hold_the_write_lock(db)
        try:
            caplog.set_level(logging.DEBUG, logger="aggregator")
            daemon = threading.Thread(
                target=lambda: cycles.append(run_daemon(app, stopper=stopper, max_sleep=0.5))
            )
            daemon.start()
            time.sleep(1.5)  # the poll's first write (its claim) waits for the lock
            assert daemon.is_alive() and not server.requests_for("/f.xml")
            stopped = time.monotonic()
            stopper.event.set()
            daemon.join(timeout=40)
            took = time.monotonic() - stopped
        finally:
            holder.communicate("", timeout=10)
    assert not daemon.is_alive() and took < 3, took
    assert cycles == [1]
    assert "poll stopped: stopped while waiting for another process's write lock" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.skipif(not hasattr(__import__("resource"), "prlimit"), reason="Linux only")
def test_a_real_daemon_outlives_a_disk_that_refuses_writes(
    tmp_path: Path, server: LocalServer
) -> None:
    import resource

    slow = server.route("/slow.xml", body=RSS, delay=1.0)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {slow}\n")
    env = {
        **os.environ,
        "AGGREGATOR_DATA_DIR": str(tmp_path / "data"),
        "AGGREGATOR_FEEDS": str(feeds),
        "AGGREGATOR_ALLOW_PRIVATE_ADDRESSES": "1",
    }
    env.pop("AGGREGATOR_DATABASE_URL", None)
    db = tmp_path / "data" / "aggregator.db"

    def feed_row() -> tuple[object, ...]:
        with sqlite3.connect(db) as c:
            row = c.execute("SELECT lease_owner, status, error_count FROM feed").fetchone()
            n = c.execute("SELECT count(*) FROM story").fetchone()[0]
        return (*row, n)

    proc = subprocess.Popen(  # default log level: what an operator sees
        [sys.executable, "-m", "aggregator", "daemon", "--no-extract", "--max-sleep", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output = Output(proc)
    try:
        # the feed is being fetched when the disk fills: its outcome cannot be written,
        # nor its error, nor its lease released
        wait_for(lambda: server.in_flight == 1)
        soft, hard = resource.prlimit(proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (4096, hard))
        # the next fetch is answered at once: the delay was there to catch this one
        server.route("/slow.xml", body=RSS)
        # a try against the full disk (waited for: a fixed 2 s passed before the outcome
        # was stored on a loaded machine, which then wrote it with space again)
        assert output.wait_for_err("poll cycle failed"), output.err
        assert proc.poll() is None, output.err
        lease_owner, *_ = feed_row()
        assert lease_owner is not None  # kept: the daemon could not hand it back
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (soft, hard))  # space again
        # handed back and polled again at once, not after the 15-minute lease
        wait_for(lambda: feed_row() == (None, "active", 0, 1), timeout=15)
        assert len(server.requests_for("/slow.xml")) == 2
        proc.send_signal(signal.SIGTERM)
        _out, err = output.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            output.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    failed = [line for line in lines if "poll cycle failed" in line]
    assert 1 <= len(failed) <= 4 and all("disk I/O error" in line for line in failed), err
    assert any("poll cycle succeeded again" in line for line in lines), err
    assert "Traceback" not in err
    assert all(re.match(r"\d{4}-\d\d-\d\d ", line) for line in lines), err
