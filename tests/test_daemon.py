"""The daemon: same code path as poll, sleeps until the next feed is due, and stops
cleanly on SIGTERM (a real process gets the signal)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from httpserver import LocalServer

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.daemon import Stopper, run_daemon, seconds_until

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Daemon feed</title>
<link>http://example.org/</link><item><title>DNS resolver operators meet</title>
<link>http://example.org/a</link><guid>a</guid><description>Resolver operators met to
discuss DNSSEC validation and encrypted transports.</description></item></channel></rss>"""


def test_seconds_until() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert seconds_until(None, now, 300) == 300
    assert seconds_until(now + timedelta(seconds=30), now, 300) == 30
    assert seconds_until(now - timedelta(seconds=30), now, 300) == 0
    assert seconds_until(now + timedelta(hours=2), now, 300) == 300


def test_daemon_cycle_in_process(tmp_path: Path, server: LocalServer) -> None:
    url = server.route("/feed.xml", body=RSS, etag='"v1"')
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, extract=False)
    with make_app(s) as app:
        app.store.upsert_feeds([], app.now())
        app.add_feed(url, discover=False)
        stopper = Stopper()
        assert run_daemon(app, stopper=stopper, max_cycles=2, max_sleep=0.01) == 2
        feed = app.feeds()[0]
        assert feed.stories == 1
        assert feed.next_check is not None and feed.next_check > app.now()
    # the second cycle found nothing due, so the server saw exactly one request
    assert len(server.requests_for("/feed.xml")) == 1


def test_sigterm_stops_a_real_daemon_cleanly(tmp_path: Path, server: LocalServer) -> None:
    url = server.route("/feed.xml", body=RSS, etag='"v1"')
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {url}\n    name: daemon test\n")
    env = {
        **os.environ,
        "AGGREGATOR_DATA_DIR": str(tmp_path / "data"),
        "AGGREGATOR_FEEDS": str(feeds),
        "AGGREGATOR_ALLOW_PRIVATE_ADDRESSES": "1",
    }
    env.pop("AGGREGATOR_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "-v", "daemon", "--no-extract", "--max-sleep", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not server.requests_for("/feed.xml"):
            time.sleep(0.1)
        assert server.requests_for("/feed.xml"), "the daemon never polled"
        time.sleep(1.0)  # let it store the feed and go to sleep
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "feed update" in err and "status=ok" in err
    assert "daemon stopped by signal" in err
    listed = subprocess.run(
        [sys.executable, "-m", "aggregator", "feeds", "list", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    (feed,) = json.loads(listed.stdout)
    assert feed["stories"] == 1 and feed["status"] == "active"
