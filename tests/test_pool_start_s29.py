"""Worker processes start when a task needs one, counted as real child processes of this
process: a poll that has nothing to parse starts none, a poll with one body to parse
starts one however many the pool may have, and a pool never runs more than its size."""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from httpserver import LocalServer

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.workers import WorkerPool

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def worker_processes() -> set[int]:
    """This process's live worker processes (not zombies), read from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid() and b"aggregator.workers" in cmdline and state != "Z":
            found.add(int(entry))
    return found


def rss(title: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<link>http://example.org/</link><item><title>"
        f"{title}</title><link>http://example.org/{title}</link><guid>{title}</guid>"
        "<description>A story about resolvers and registries.</description></item>"
        "</channel></rss>"
    ).encode()


def test_a_pool_starts_a_worker_only_for_a_task_and_no_more_than_its_size() -> None:
    before = worker_processes()
    with WorkerPool(3) as pool:
        time.sleep(0.3)  # time enough for eagerly started workers to show
        assert pool.pids == ()
        assert worker_processes() - before == set()
        pid = pool.submit(os.getpid).result(timeout=30)
        assert pool.pids == (pid,)  # one task at a time: the same worker for each
        assert pool.submit(os.getpid).result(timeout=30) == pid
        assert worker_processes() - before == {pid}
        # five at once: as many workers as the pool's size, and the tasks all done
        futures = [pool.submit(time.sleep, 0.5) for _ in range(5)]
        seen: set[int] = set()
        while not all(f.done() for f in futures):
            seen |= worker_processes() - before
            time.sleep(0.05)
        assert [f.result(timeout=30) for f in futures] == [None] * 5
        assert len(pool.pids) == 3 and pid in pool.pids
        assert seen == set(pool.pids)
    assert worker_processes() - before == set()


def test_a_poll_with_one_body_to_parse_starts_one_worker_and_an_all_304_poll_none(
    tmp_path: Path, server: LocalServer
) -> None:
    urls = [server.route(f"/feed/{i}", body=rss(f"s{i}"), etag=f'"v{i}"') for i in range(3)]
    settings = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, extract=False, workers=2
    )
    before = worker_processes()
    with make_app(settings, now=lambda: NOW) as app:
        for url in urls[:1]:
            app.add_feed(url, discover=False)
        results = list(app.update_due(all_feeds=True))
        assert [(r.status, r.new) for r in results] == [("ok", 1)]
        assert app._pool is not None and len(app._pool.pids) == 1
        assert worker_processes() - before == set(app._pool.pids)
        for url in urls[1:]:
            app.add_feed(url, discover=False)
        results = list(app.update_due(all_feeds=True))  # two bodies: up to two workers
        assert sorted((r.status, r.new) for r in results) == [
            ("not_modified", 0),
            ("ok", 1),
            ("ok", 1),
        ]
        assert worker_processes() - before == set(app._pool.pids)
        assert 1 <= len(app._pool.pids) <= 2
    assert worker_processes() - before == set()
    # every feed answers 304 now: a new App's poll starts no worker process at all
    with make_app(settings, now=lambda: NOW) as app:
        results = list(app.update_due(all_feeds=True))
        assert [r.status for r in results] == ["not_modified"] * 3
        assert app._pool is None
        assert worker_processes() - before == set()


def test_a_worker_whose_start_hangs_is_cut_off_by_its_tasks_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's limit runs again from its worker's start, and from when it was given to
    a worker not started yet too: an interpreter that never starts (a hung import)
    does not hold its task for ever."""
    hangs = tmp_path / "hangs"
    hangs.write_text("#!/bin/sh\nexec sleep 60\n")
    hangs.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(hangs))
    with WorkerPool(1) as pool:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"exceeded its 0\.5 s limit"):
            pool.submit(pow, 2, 2, timeout=0.5).result(timeout=10)
        assert time.monotonic() - started < 5
        monkeypatch.undo()
        (pid,) = pool.pids  # its replacement, which hangs too (it would not stop)
        os.kill(pid, signal.SIGKILL)
        assert pool.submit(pow, 3, 2, timeout=30).result(timeout=30) == 9  # a real one again
