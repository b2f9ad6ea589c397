"""The daemon as an operator runs it (under systemd, from a terminal, killed by the OOM
killer): the real `aggregator daemon` in a subprocess, real local servers, a real SQLite
file, its worker processes looked up in /proc.

- systemd's stop signals every process of the service at once (KillMode=control-group,
  the default), as `kill -TERM -PGID` does: the workers must leave that to the daemon
  (a worker that died of it failed the feed it was parsing as "the parser crashed");
- a second SIGTERM / Ctrl-C while stopping exits at once;
- `kill -9` at any moment leaves a whole database (integrity, foreign keys, the search
  index, each feed's state matching its fetch log), and the next start takes up every
  feed at once (its dead leases released, not waited out)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from pathlib import Path

import pytest
from httpserver import LocalServer, Request
from proclines import Output
from test_resilience_postgres import wait_for

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.workers import WorkerPool

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def big_feed(name: str, items: int) -> Callable[[Request], bytes]:
    """A feed of ``items`` stories, new ones at every request (so every poll parses it
    all): a few hundred milliseconds to a second of a worker's time."""
    n = [0]

    def body(_: Request) -> bytes:
        n[0] += 1
        entries = "".join(
            f"<item><title>Story {j} of {name}, round {n[0]}: resolver operators meet</title>"
            f"<guid>{name}-{n[0]}-{j}</guid><link>http://example.org/{name}/{n[0]}/{j}</link>"
            f"<description>Operators met to discuss DNSSEC validation ({j}) and encrypted"
            " transports.</description></item>"
            for j in range(items)
        )
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
            f"{entries}</channel></rss>"
        ).encode()

    return body


def daemon_env(tmp_path: Path, urls: list[str], **extra: str) -> dict[str, str]:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - url: {u}\n" for u in urls), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env.update(
        AGGREGATOR_DATA_DIR=str(tmp_path / "data"),
        AGGREGATOR_FEEDS=str(feeds),
        AGGREGATOR_ALLOW_PRIVATE_ADDRESSES="1",
        AGGREGATOR_WORKERS="2",
        **extra,
    )
    return env


def start_daemon(env: dict[str, str], *args: str, session: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "-v", "daemon", "--no-extract", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=session,
    )


def children(pid: int) -> dict[int, str]:
    """The worker processes of ``pid`` (not zombies), with their state letter."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and b"aggregator.workers" in cmdline and state != "Z":
            found[int(entry)] = state
    return found


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not: an orphan's reaper may be slow)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def db_rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as c:
        return c.execute(sql).fetchall()


def test_a_stop_sent_to_every_process_of_the_service_fails_no_feed(
    tmp_path: Path, server: LocalServer
) -> None:
    urls = [server.route(f"/big{i}.xml", body=big_feed(f"big{i}", 2500)) for i in range(6)]
    env = daemon_env(tmp_path, urls)
    proc = start_daemon(env, session=True)  # its own process group, as a service's cgroup
    output = Output(proc)
    try:
        # the first feed is stored and the workers are parsing the next: the stop
        # comes now
        assert output.wait_for_err("status=ok", timeout=30), output.err
        workers = set(children(proc.pid))
        os.killpg(proc.pid, signal.SIGTERM)
        _out, err = output.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert "crashed" not in err and "failing" not in err, err
    db = tmp_path / "data" / "aggregator.db"
    feeds = db_rows(db, "SELECT status, error_count, last_error, lease_owner FROM feed")
    assert feeds == [("active", 0, None, None)] * 6  # none failed, every lease handed back
    assert "poll stopped with" in err  # some were being parsed when it came
    wait_for(lambda: not [p for p in workers if alive(p)], timeout=5)


def test_a_second_stop_signal_while_stopping_exits_at_once(tmp_path: Path) -> None:
    """The daemon's stop finishes the work in flight (seconds; longer behind a hanging
    page or parser): a second SIGTERM / Ctrl-C ends the process at once, 128 + the
    signal's number, as `kill -9` would (the database is whole: see below)."""
    script = tmp_path / "stopping.py"
    script.write_text(
        textwrap.dedent(
            """
            import logging, sys, time
            from aggregator.daemon import Stopper
            logging.basicConfig(level=logging.WARNING)
            stopper = Stopper(second_signal_exits=True)
            stopper.install()
            print("ready", flush=True)
            stopper.event.wait()
            print("stopping", flush=True)
            time.sleep(30)  # a long stop: the work in flight
            """
        ),
        encoding="utf-8",
    )
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            proc.send_signal(sig)
            assert proc.stdout.readline() == "stopping\n"
            t0 = time.monotonic()
            proc.send_signal(sig)
            _out, err = proc.communicate(timeout=10)
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == code and took < 2, (proc.returncode, took, err)
        assert f"stopping on signal {sig} (send it again to exit at once)" in err
        assert f"signal {sig} while stopping: exiting now" in err
        assert "Traceback" not in err


def test_kill_9_mid_poll_leaves_a_whole_database_and_the_next_start_resumes(
    tmp_path: Path, server: LocalServer
) -> None:
    urls = [server.route(f"/f{i}.xml", body=big_feed(f"f{i}", 300)) for i in range(8)]
    env = daemon_env(tmp_path, urls)
    db = tmp_path / "data" / "aggregator.db"

    def check_whole() -> None:
        assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
        assert db_rows(db, "PRAGMA foreign_key_check") == []
        with sqlite3.connect(db) as c:  # raises "database disk image is malformed" if not
            c.execute("INSERT INTO story_fts(story_fts) VALUES('integrity-check')")
        # no half-written feed: its stories, its state and its fetch log agree
        assert (
            db_rows(
                db,
                "SELECT f.id FROM feed f WHERE"
                " (SELECT count(*) FROM story s WHERE s.feed_id = f.id)"
                " != (SELECT coalesce(sum(new), 0) FROM fetch_log l WHERE l.feed_id = f.id)"
                " OR f.last_check IS NOT (SELECT max(at) FROM fetch_log l WHERE l.feed_id = f.id)",
            )
            == []
        )

    seen_workers: set[int] = set()
    # killed while fetching and parsing (the first poll), then while storing
    for moment in ("parsing", "storing"):
        before = len(server.requests)
        if moment == "storing":  # every feed due again, so the poll stores them anew
            with sqlite3.connect(db) as c:
                c.execute("UPDATE feed SET next_check = NULL")
        proc = start_daemon(env, "--max-sleep", "60")
        try:
            wait_for(lambda: len(server.requests) > before, timeout=30)  # noqa: B023
            if moment == "parsing":
                wait_for(lambda: bool(children(proc.pid)), timeout=30)  # noqa: B023
            else:
                wait_for(lambda: db_rows(db, "SELECT count(*) FROM fetch_log") != [(0,)])
            seen_workers |= set(children(proc.pid))
            proc.kill()
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        check_whole()
        held = db_rows(db, "SELECT count(*) FROM feed WHERE lease_owner IS NOT NULL")[0][0]
        assert held > 0 or moment == "storing"
    # the killed daemons' workers do not outlive them (their watchdog: within a second)
    wait_for(lambda: not [p for p in seen_workers if alive(p)], timeout=5)

    # a new start releases the dead leases at once and polls every feed
    with sqlite3.connect(db) as c:
        c.execute("UPDATE feed SET next_check = NULL")
    proc = start_daemon(env, "--max-sleep", "60")
    output = Output(proc)
    try:
        assert output.wait_for_err("poll cycle: 8 feeds", timeout=30), output.err
        proc.send_signal(signal.SIGTERM)
        _out, err = output.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    check_whole()
    assert db_rows(db, "SELECT DISTINCT status, error_count, lease_owner FROM feed") == [
        ("active", 0, None)
    ]


def test_closing_a_pool_can_abandon_the_tasks_it_runs() -> None:
    """``close(kill_running=True)``: for an owner that will not take up the results (a
    stopped daemon), the tasks being run are not waited for, up to their time limit."""
    pool = WorkerPool(2)
    running = [pool.submit(time.sleep, 30, timeout=60) for _ in range(2)]
    queued = pool.submit(time.sleep, 30, timeout=60)
    wait_for(lambda: all(f.running() for f in running))
    pids = pool.pids
    t0 = time.monotonic()
    pool.close(kill_running=True)
    assert time.monotonic() - t0 < 3
    for f in running:
        with pytest.raises(CancelledError, match="the worker pool was closed"):
            f.result(timeout=0)
    assert queued.cancelled()
    assert not [p for p in pids if alive(p)]


def test_a_stop_during_the_extraction_backlog_does_not_wait_for_the_pages(
    tmp_path: Path, server: LocalServer
) -> None:
    """After each cycle the daemon extracts up to 50 stories stored without their page;
    behind hanging sites that is up to a fetch deadline per host, 120 s in all
    (AGGREGATOR_EXTRACT_BUDGET), longer than systemd waits before SIGKILL (90 s)."""
    page = server.route("/page", hang=True, content_type="text/html")
    items = "".join(
        f"<item><title>Story {j}</title><guid>g{j}</guid><link>{page}?{j}</link>"
        "<description>short</description></item>"
        for j in range(3)
    )
    url = server.route(
        "/f.xml",
        body=f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode(),
    )
    env = daemon_env(tmp_path, [url], AGGREGATOR_TIMEOUT="4")
    # what `aggregator poll --no-extract` does, in this process (~1 s less to start)
    with make_app(Settings.from_env(env)) as app:
        app.sync_feeds(app.settings.feeds_path)
        assert [r.new for r in app.update_due(extract=False)] == [3]  # stored "pending"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "daemon", "--max-sleep", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: any(r.path.startswith("/page") for r in server.requests))
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert took < 2, f"stopping took {took:.1f} s"
    # the pages not fetched get their try later: still pending, not failed
    statuses = db_rows(tmp_path / "data" / "aggregator.db", "SELECT extraction_status FROM story")
    assert statuses == [("pending",)] * 3
