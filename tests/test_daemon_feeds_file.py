"""The daemon follows its feeds file: a feed added to feeds.yaml while it runs is synced
and polled within about a second (it was only read at the daemon's start, so a new feed
waited for a restart), a broken edit is logged and changes nothing, and SIGHUP syncs the
file again. The real `aggregator daemon` in a subprocess, a real local server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from httpserver import LocalServer
from proclines import Output

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import StoryQuery

RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>{t}</title>'
    "<item><title>{t} story</title><guid>{t}-1</guid></item></channel></rss>"
)


def test_the_daemon_syncs_its_feeds_file_when_it_changes(
    tmp_path: Path, server: LocalServer
) -> None:
    one = server.route("/one.xml", body=RSS.format(t="one").encode())
    two = server.route("/two.xml", body=RSS.format(t="two").encode())
    three = server.route("/three.xml", body=RSS.format(t="three").encode())
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {one}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env.update(
        AGGREGATOR_DATA_DIR=str(tmp_path / "data"),
        AGGREGATOR_FEEDS=str(feeds),
        AGGREGATOR_ALLOW_PRIVATE_ADDRESSES="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "-v", "daemon", "--no-extract", "--max-sleep", "300"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output = Output(proc)
    try:
        assert output.wait_for_err("sleeping "), output.err
        assert server.requests_for("/one.xml") and not server.requests_for("/two.xml")

        # An edit: the new feed is synced and polled at once, not after the 300 s sleep.
        feeds.write_text(f"feeds:\n  - url: {one}\n  - url: {two}\n", encoding="utf-8")
        assert output.wait_for_err("synced: 1 feed added, 0 updated", timeout=30), output.err
        assert output.wait_for_err("two.xml status=ok", timeout=30), output.err

        # A broken edit changes nothing and the daemon goes on.
        feeds.write_text("feeds:\n  - url: [unclosed\n", encoding="utf-8")
        assert output.wait_for_err("not applied, the feeds stay as they were", timeout=30)

        # Fixed, and SIGHUP'd too: synced again (the change alone would do).
        feeds.write_text(f"feeds:\n  - url: {one}\n  - url: {three}\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        assert output.wait_for_err("synced: 1 feed added, 0 updated", count=2, timeout=30)
        assert output.wait_for_err("three.xml status=ok", timeout=30), output.err
        assert proc.poll() is None  # SIGHUP did not end it

        proc.send_signal(signal.SIGTERM)
        _out, err = output.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    # a feed left out of the file is not deleted (`feeds remove` deletes); read in this
    # process (an `aggregator stories` process cost ~1 s to start)
    with make_app(Settings.from_env(env)) as app:
        titles = [s.title for s in app.stories(StoryQuery(limit=None))]
    assert "two story" in titles and "three story" in titles


def test_a_sync_the_database_refused_is_tried_again(tmp_path: Path) -> None:
    """The file was fine but the database could not take it (locked here): the change
    is not forgotten as a broken edit would be, but synced at the next look."""
    import sqlite3

    from aggregator.app import make_app
    from aggregator.config import Settings
    from aggregator.daemon import FeedsFile

    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - url: https://a.example/feed\n", encoding="utf-8")
    db = tmp_path / "data" / "aggregator.db"
    settings = Settings.from_env({}, data_dir=tmp_path / "data").with_(
        database_url=f"sqlite:///{db}?timeout=0.2"
    )
    with make_app(settings) as app:
        app.sync_feeds(feeds)
        watch = FeedsFile(feeds)
        feeds.write_text(
            "feeds:\n  - url: https://a.example/feed\n  - url: https://b.example/feed\n",
            encoding="utf-8",
        )
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            watch.sync_if_changed(app)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert watch.unsynced and len(app.feeds()) == 1
        watch.sync_if_changed(app)  # the file unchanged since: tried again all the same
        assert not watch.unsynced and len(app.feeds()) == 2
