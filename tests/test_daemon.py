"""The daemon: same code path as poll, sleeps until the next feed is due, and stops
cleanly on SIGTERM (a real process gets the signal)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpserver import LocalServer
from proclines import Output

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.daemon import Stopper, run_daemon, seconds_until
from aggregator.types import FeedSource

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
    output = Output(proc)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not server.requests_for("/feed.xml"):
            time.sleep(0.1)
        assert server.requests_for("/feed.xml"), "the daemon never polled"
        # it stored the feed and went to sleep (a fixed second's wait before)
        assert output.wait_for_err("sleeping "), output.err
        proc.send_signal(signal.SIGTERM)
        _out, err = output.communicate(timeout=30)
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


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


@pytest.mark.parametrize(
    "lease_left",
    [
        pytest.param(timedelta(minutes=15), id="leased-by-another-daemon"),
        # next_due says "now" (the lease's end) but a claim needs it to have ended
        # before now: only the daemon's own floor stands between it and a busy loop
        pytest.param(timedelta(0), id="lease-ends-this-instant"),
    ],
)
def test_a_daemon_with_nothing_it_can_claim_does_not_spin(
    tmp_path: Path, server: LocalServer, lease_left: timedelta
) -> None:
    urls = [server.route(f"/f{i}.xml", body=RSS) for i in range(3)]
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, extract=False)
    clock = Clock()  # fixed: no lease runs out during the test
    with make_app(s, now=clock) as app, make_app(s, now=clock) as other:
        for u in urls:
            app.add_feed(u, discover=False)
        # every due feed is held by another daemon
        taken = other.store.claim_due(
            clock.t - (timedelta(minutes=15) - lease_left),
            owner="elsewhere:1:other",
            lease=timedelta(minutes=15),
            include_not_due=True,
        )
        assert len(taken) == 3 and app.due_count() == 0
        stopper = Stopper()
        cycles: list[int] = []
        daemon = threading.Thread(
            target=lambda: cycles.append(run_daemon(app, stopper=stopper, max_sleep=300)),
            name="daemon",
        )
        t0 = time.monotonic()
        daemon.start()
        time.sleep(2.5)
        stopper.event.set()
        daemon.join(timeout=10)
        stopped_in = time.monotonic() - t0 - 2.5
    assert not daemon.is_alive() and stopped_in < 1.0  # the stop ends its sleep at once
    # at most one cycle per second (IDLE_SLEEP), not thousands
    assert 1 <= cycles[0] <= 3, cycles
    assert server.requests == []


def test_sigterm_mid_poll_cancels_the_fetches_quietly(tmp_path: Path, server: LocalServer) -> None:
    # 50 feeds whose server answers only after 30 s: SIGTERM arrives while every fetch is
    # in flight or queued for its host. The daemon must not wait for them (a fetch
    # timeout), and its fetch tasks must end on the loop before it closes: left pending,
    # each printed "Task was destroyed but it is pending!" and "Event loop is closed".
    urls = [server.route(f"/slow{i}.xml", body=RSS, delay=30) for i in range(50)]
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - url: {u}\n" for u in urls))
    env = {
        **os.environ,
        "AGGREGATOR_DATA_DIR": str(tmp_path / "data"),
        "AGGREGATOR_FEEDS": str(feeds),
        "AGGREGATOR_ALLOW_PRIVATE_ADDRESSES": "1",
        "AGGREGATOR_PER_HOST": "16",
    }
    env.pop("AGGREGATOR_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "-v", "daemon", "--no-extract"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.in_flight < 16:
            time.sleep(0.05)
        assert server.in_flight == 16, "the daemon never fetched"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert took < 5, f"stopping took {took:.1f} s"
    for noise in ("Task was destroyed", "Event loop is closed", "Traceback", "ERROR"):
        assert noise not in err, err
    assert "poll stopped with 50 feeds not stored" in err and "daemon stopped by signal" in err
    # every lease was handed back: the next run takes all 50 at once
    with make_app(Settings.from_env(env)) as app:
        assert app.due_count() == 50
        assert not [f for f in app.feeds() if f.last_check is not None]


def test_the_daemon_warns_once_when_a_feed_starts_failing(
    tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    """At the default level (WARNING) a daemon said nothing at all, not even that a feed
    had stopped answering; at INFO it said so at every retry."""
    import logging

    from test_update import Clock

    from aggregator.daemon import FeedHealth

    url = server.route("/feed.xml", status=500, body=b"oops", content_type="text/plain")
    clock = Clock()
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, extract=False)
    caplog.set_level(logging.WARNING, logger="aggregator")
    with make_app(s, now=clock) as app:
        app.store.add_feed(FeedSource(url=url), app.now())
        assert run_daemon(app, stopper=Stopper(), max_cycles=2, max_sleep=0.01) == 2
        warned = [r.getMessage() for r in caplog.records]
        assert warned == [
            f"feed {url} failing: HTTP 500 Internal Server Error (retried with backoff)"
        ]

        health = FeedHealth(app.policy.disable_after)
        caplog.clear()
        for _ in range(3):  # retries: no news
            clock.advance(days=1)
            for res in app.update_due(all_feeds=True):
                health.note(res)
        assert [r.getMessage() for r in caplog.records] == [
            f"feed {url} failing: HTTP 500 Internal Server Error (retried with backoff)"
        ]
        caplog.clear()
        server.route("/feed.xml", body=RSS)
        for res in app.update_due(all_feeds=True):
            health.note(res)
        assert [r.getMessage() for r in caplog.records] == [f"feed {url} recovered"]
        caplog.clear()
        server.route("/feed.xml", status=410, body=b"gone", content_type="text/plain")
        for res in app.update_due(all_feeds=True):
            health.note(res)
        (gone,) = [r.getMessage() for r in caplog.records]
        assert gone.startswith(f"feed {url} is gone (HTTP 410): no longer polled")


def test_the_daemon_warns_when_the_30_day_rule_disables_a_feed(
    tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from test_update import Clock

    from aggregator.daemon import FeedHealth

    url = server.route("/down.xml", status=503, body=b"down", content_type="text/plain")
    clock = Clock()
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, extract=False)
    caplog.set_level(logging.WARNING, logger="aggregator")
    with make_app(s, now=clock) as app:
        app.store.add_feed(FeedSource(url=url), app.now())
        health = FeedHealth(app.policy.disable_after)
        for days in (0, 10, 21):  # failing since day 0; day 31 is past the 30 days
            clock.advance(days=days)
            for res in app.update_due(all_feeds=True):
                health.note(res)
        warned = [r.getMessage() for r in caplog.records]
        assert len(warned) == 2, warned
        assert warned[0].startswith(f"feed {url} failing: HTTP 503")
        assert warned[1].startswith(
            f"feed {url} disabled after failing for 30 days: no longer polled "
            "(`aggregator feeds enable` turns it back on)"
        )
