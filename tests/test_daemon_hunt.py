"""The daemon's lifecycle found wanting in a bug hunt: a real `aggregator daemon` in a
subprocess, a real SQLite file, stopped while it does the work after a cycle."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_daemon_audit import daemon_env, db_rows
from test_resilience_postgres import wait_for
from test_store import check, draft, pred

from aggregator.store import open_store
from aggregator.types import FeedSource, StoryRecord


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
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "daemon", "--no-extract", "--max-sleep", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
