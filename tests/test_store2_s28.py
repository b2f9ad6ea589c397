"""Session 28: the poll pipeline and the daemon's scheduling (polling, daemon, feed rows)."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpserver import LocalServer
from sqlalchemy import event
from sqlalchemy.orm import Session
from test_store_s28 import _polled, _settings

from aggregator.app import lease_host, make_app
from aggregator.errors import StoreUnavailableError
from aggregator.types import FeedSource, UpdateResult

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _rss(*items: str) -> bytes:
    entries = "".join(
        f"<item><title>Registry note {i}</title><link>http://example.org/{i}</link>"
        f"<guid>{i}</guid><description>Operators met about DNSSEC key rollovers, {i}."
        "</description></item>"
        for i in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Store</title>'
        f"<link>http://example.org/</link>{entries}</channel></rss>"
    ).encode()


def _wait_for(cond: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("stopped", [False, True], ids=["database-locked", "stop-signal"])
def test_feeds_stored_in_a_batch_whose_story_less_write_fails_are_still_reported(
    tmp_path: Path, server: LocalServer, stopped: bool
) -> None:
    """A batch stores its feeds with stories first, then writes its story-less outcomes
    (304s, unchanged bodies, errors) in one transaction. When that second write met the
    database's trouble (SQLite locked past the busy timeout by a `prune --vacuum`, or a
    stop signal ending the wait for the lock), the feeds whose stories had been committed
    were never yielded: `aggregator poll` (stopped by Ctrl-C, it reports what was polled)
    and the daemon's cycle counted neither the feed nor its new stories. They are
    reported, then the error ends the poll (or the stop, quietly)."""
    db = tmp_path / "data" / "aggregator.db"
    first, moved, quiet = _rss("a"), _rss("a", "b"), _rss("q")
    state = {"body": first}
    stories = server.route("/stories.xml", body=lambda _: state["body"], delay=0.15)
    fast = server.route("/fast.xml", body=quiet)
    slow = server.route("/slow.xml", body=quiet, delay=0.3)
    s = _settings(tmp_path, f"sqlite:///{db.as_posix()}?timeout=0.3")
    stop = threading.Event()
    holder: sqlite3.Connection | None = None
    armed, taken = threading.Event(), threading.Event()

    def take_lock(session: Session) -> None:
        if holder is None or taken.is_set() or not armed.is_set():
            return
        if holder.execute("SELECT count(*) FROM story").fetchone()[0] < 2:
            return  # not the commit that stored the new story
        holder.execute("BEGIN IMMEDIATE")  # the next write waits for it
        taken.set()
        if stopped:
            stop.set()

    with make_app(s) as app:
        ids = {u: app.add_feed(u, discover=False).feed.id for u in (stories, fast, slow)}
        # polled before: the worker pool is up, and two feeds' bodies are the ones seen last
        (warm,) = app.update_due(feed_ids=[ids[stories]])
        assert warm.new == 1
        digest = hashlib.sha256(quiet).hexdigest()
        app.store.save_checks(
            [
                _polled(ids[u], app.now() - timedelta(hours=2), body_hash=digest)
                for u in (fast, slow)
            ]
        )
        state["body"] = moved
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        event.listen(Session, "after_commit", take_lock)
        results: list[UpdateResult] = []

        def consume() -> None:
            for r in app.update_due(all_feeds=True, stop=stop):
                results.append(r)
                if r.feed_id == ids[fast]:
                    # the other two finish meanwhile, and are taken up in one batch
                    _wait_for(lambda: server.requests_for("/slow.xml"))
                    armed.set()
                    time.sleep(0.6)

        try:
            if stopped:
                consume()  # the poll ends as stopped, quietly
            else:
                with pytest.raises(StoreUnavailableError, match="locked"):
                    consume()
        finally:
            event.remove(Session, "after_commit", take_lock)
            if holder.in_transaction:
                holder.rollback()
            holder.close()
        assert taken.is_set()
        done = {r.feed_id: r for r in results}
        assert sorted(done) == sorted([ids[fast], ids[stories]])
        assert (done[ids[stories]].status, done[ids[stories]].new) == ("ok", 1)
        assert app.store.get_feed(ids[stories]).stories == 2
        # the feed whose outcome was not written is polled again
        assert ids[slow] in {r.feed_id for r in app.update_due(all_feeds=True)}


def _ended_pid() -> int:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return ended.pid


def test_a_sleeping_daemon_wakes_for_the_feeds_a_dead_local_poll_left_leased(
    tmp_path: Path, db_url: str
) -> None:
    """A `poll` killed (-9, the OOM killer) beside a running daemon while the daemon's
    cycle ran left its feeds leased for 15 minutes: the cycle had released the dead
    polls' leases before claiming, and `next_due` then counted the dead poll's lease, so
    the daemon slept --max-sleep (300 s by default) before its next cycle released them.
    A lease of an ended process of this host is no wait; a live process's lease (this
    App's, or another host's) still is."""
    s = _settings(tmp_path, db_url)
    with make_app(s, now=lambda: T0) as app:
        ids = [
            app.store.add_feed(FeedSource(url=f"https://n{i}.example/feed"), T0)[0].id
            for i in range(3)
        ]
        app.store.save_checks([_polled(i, T0 - timedelta(hours=2)) for i in ids])  # due now
        lease = timedelta(minutes=15)
        dead = f"{lease_host()}:{_ended_pid()}:0badcafe"
        assert app.store.claim_due(T0, owner=dead, lease=lease, ids=ids[:1])
        other = "elsewhere/pidns-1:1:0badcafe"  # another host's: its pids mean nothing here
        assert app.store.claim_due(T0, owner=other, lease=lease, ids=ids[1:2])
        assert app.store.claim_due(T0, owner=app.owner, lease=lease, ids=ids[2:])
        due = app.next_due()
        assert due is not None and due <= T0
        assert app.store.next_due() == T0 + lease  # judged by no host: every lease counts
        # the dead lease released, the live ones bind
        app.store.release(ids[:1], dead)
        app.store.save_checks([_polled(ids[0], T0, next_check=T0 + timedelta(hours=1))])
        assert app.next_due() == T0 + lease


def test_an_interval_shortened_in_the_feeds_file_brings_the_next_check_forward(
    tmp_path: Path, db_url: str
) -> None:
    """`interval: 24h` changed to `interval: 30m` in feeds.yaml (the daemon syncs it at
    once) left the feed's next check where the old interval put it, up to a day away:
    the new interval counts from the last check. A longer interval, or a feed failing
    (its backoff), a server's Retry-After and a feed never polled stay as they were."""
    s = _settings(tmp_path, db_url)
    feeds = tmp_path / "feeds.yaml"

    def write(*intervals: str) -> None:
        feeds.write_text(
            "feeds:\n"
            + "".join(
                f"  - url: https://{h}.example/feed\n    interval: {i}\n"
                for h, i in zip("abcd", intervals, strict=True)
            )
        )

    clock = [T0]
    with make_app(s, now=lambda: clock[0]) as app:
        write("24h", "24h", "24h", "24h")
        app.sync_feeds(feeds)
        by_url = {f.url: f.id for f in app.feeds()}
        a, b, c, d = (by_url[f"https://{h}.example/feed"] for h in "abcd")
        day = T0 + timedelta(hours=24)
        app.store.save_checks(
            [
                _polled(a, T0, next_check=day),
                _polled(b, T0, next_check=day),
                _polled(
                    c,
                    T0,
                    outcome="error",
                    success=False,
                    status="error",
                    error_count=3,
                    first_error_at=T0 - timedelta(hours=5),
                    last_error="HTTP 500",
                    next_check=day,
                ),
                _polled(d, T0, next_check=day, not_before=T0 + timedelta(hours=2)),
            ]
        )
        clock[0] = T0 + timedelta(minutes=10)
        write("30m", "2d", "1h", "1h")
        app.sync_feeds(feeds)
        got = {f.id: f for f in app.feeds()}
        assert got[a].next_check == T0 + timedelta(minutes=30)
        assert got[b].next_check == day  # longer: the next poll's schedule takes it up
        assert got[c].next_check == day  # failing: its backoff stands
        assert got[d].next_check == T0 + timedelta(hours=2)  # its Retry-After binds
        assert app.due_count() == 0
        clock[0] = T0 + timedelta(minutes=31)
        assert app.due_count() == 1
