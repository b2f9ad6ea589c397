"""The daemon's lifecycle found wanting in a bug hunt: a real `aggregator daemon` in a
subprocess, a real SQLite file, stopped while it does the work after a cycle."""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_daemon_audit import daemon_env, db_rows
from test_resilience_postgres import wait_for
from test_resilience_sqlite import _hold_the_write_lock
from test_store import check, draft, pred

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.daemon import Stopper, run_daemon
from aggregator.store import open_store
from aggregator.types import FeedSource, StoryQuery, StoryRecord


def _daemon(env: dict[str, str]) -> subprocess.Popen[str]:
    """``aggregator daemon --no-extract`` in a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "daemon", "--no-extract", "--max-sleep", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _old_stories(db: Path, n: int) -> None:
    """``n`` stories first seen and dated 400 days ago, across 10 feeds."""
    old = datetime.now(UTC) - timedelta(days=400)
    st = open_store(f"sqlite:///{db}")
    try:
        st.sync_topics([("DNS", "Domain Name System")])
        st.upsert_feeds([FeedSource(url=f"https://f{i}.example/feed") for i in range(10)], old)
        for f in st.feeds():
            for start in range(0, n // 10, 1000):
                records = [
                    StoryRecord(
                        draft=draft(
                            f"{f.id}-{i}",
                            f"Story {i} of feed {f.id} about resolvers",
                            published=old,
                            summary=f"body of story {i} " * 20,
                            h=f"h{i}",
                        ),
                        prediction=pred(("DNS", 0.9)),
                    )
                    for i in range(start, min(n // 10, start + 1000))
                ]
                st.save_update(check(f.id, at=old), records)
    finally:
        st.close()


def test_a_stop_during_the_daily_prune_does_not_wait_for_the_whole_prune(
    tmp_path: Path,
) -> None:
    """With AGGREGATOR_RETENTION the daemon prunes after its first cycle; on a store of
    years of news that is tens of thousands of stories (~4 s per 20,000 here, minutes
    at 300,000), and a SIGTERM meanwhile waited for all of it, past systemd's 90 s
    before SIGKILL. The prune stops between batches; the rest goes at the next one."""
    n = 20_000
    env = daemon_env(tmp_path, [], AGGREGATOR_RETENTION="180d", AGGREGATOR_KEEP_PER_FEED="0")
    (tmp_path / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    db = data / "aggregator.db"
    _old_stories(db, n)
    proc = _daemon(env)
    try:

        def pruning() -> bool:
            try:
                return db_rows(db, "SELECT count(*) FROM story")[0][0] < n  # type: ignore[operator]
            except sqlite3.OperationalError:  # locked a moment
                return False

        wait_for(pruning, timeout=60)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    left = db_rows(db, "SELECT count(*) FROM story")[0][0]
    assert 0 < left < n, "the prune ran to its end before the daemon stopped"  # type: ignore[operator]
    assert took < 3, f"stopping took {took:.1f} s"
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    with sqlite3.connect(db) as c:  # the search index follows the stories deleted
        c.execute("INSERT INTO story_fts(story_fts) VALUES('integrity-check')")


def test_worker_processes_that_cannot_start_do_not_end_the_daemon_in_its_backlog(
    tmp_path: Path,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Worker processes that exit as they start (the interpreter upgraded in place under
    a running daemon, no memory or processes left to start them) fail the pool for
    good. A poll records that as its feeds' errors and the next one starts new
    workers; the extraction of stories stored without their page, after each cycle,
    let the pool's RuntimeError out of the daemon: it ended with a traceback."""
    # its page's extraction job is the pool's first task: the workers started for it die
    # before they take it, and the pool gives up on them
    page = server.route("/page", body=b"<html><body><p>An article.</p></body></html>")
    feed = server.route(
        "/f.xml",
        body=(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
            f"<item><title>Resolver operators meet</title><guid>g1</guid><link>{page}</link>"
            "<description>short</description></item></channel></rss>"
        ).encode(),
    )
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as app:
        app.add_feed(feed, discover=False)
        assert [r.new for r in app.update_due(extract=False)] == [1]  # stored "pending"
    monkeypatch.setattr(sys, "executable", "/bin/false")  # every worker exits at once
    caplog.set_level(logging.WARNING, logger="aggregator")
    with make_app(s) as app:
        cycles = run_daemon(
            app, stopper=Stopper(), max_cycles=2, max_sleep=0.2, idle_sleep=0.1, retry_sleep=0.1
        )
        assert cycles == 2
        (story,) = app.stories(StoryQuery(limit=None))
        # nothing was learnt of its page: it waits for a later try, not failed
        got = app.story(story.id)
        assert got.extraction_status == "pending", got.extraction_error
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and all("worker" in e for e in errors), errors


def test_sighup_while_the_daemon_starts_does_not_end_it(
    tmp_path: Path, server: LocalServer
) -> None:
    """SIGHUP asks a running daemon to sync its feeds file again (`systemctl reload`,
    ExecReload=kill -HUP). One that came while it started (a migration, the first
    sync waiting for another process's write lock) met the signal's default action: the
    daemon ended without a word, which systemd counts as a clean exit and does not
    restart. It is taken as what it means: the feeds file synced, the daemon polling."""
    url = server.route("/f.xml", body=b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>')
    env = daemon_env(tmp_path, [url])
    db = tmp_path / "data" / "aggregator.db"
    subprocess.run(
        [sys.executable, "-m", "aggregator", "feeds", "list"],
        env=env,
        check=True,
        capture_output=True,
    )
    holder = _hold_the_write_lock(db)
    proc = _daemon(env)
    try:
        # starting: its first sync of the feeds file waits for the write lock
        wait_for(lambda: any(p.resolve() == db for p in Path(f"/proc/{proc.pid}/fd").iterdir()))
        proc.send_signal(signal.SIGHUP)
        holder.communicate("")  # the lock released
        wait_for(lambda: server.requests_for("/f.xml") or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, f"the daemon ended: {proc.returncode}"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        for p in (proc, holder):
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert proc.returncode == 0, (proc.returncode, err)
    assert "Traceback" not in err, err
