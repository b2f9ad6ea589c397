"""Hunt: feeds.yaml synced into a store whose feed a permanent redirect moved, through the
real App, a real local server and a fixed clock."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_learning_cli import run
from test_update import Clock, _yaml_app, clock, rss  # noqa: F401  (clock: fixture)

from aggregator.feedlist import read_opml


def _password_sent(server: LocalServer, path: str) -> str:
    (request,) = server.requests_for(path)
    scheme, _, token = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(token).decode().partition(":")[2]


def test_a_new_password_in_feeds_yaml_reaches_a_feed_a_redirect_moved(
    tmp_path: Path,
    server: LocalServer,
    clock: Clock,  # noqa: F811
) -> None:
    """README: "write a new one into feeds.yaml and the next sync updates the feed". Once
    a permanent redirect within the origin was adopted (keeping the login), the new
    password went only to the URL it was subscribed under, and the feed went on being
    fetched with the old one."""
    server.route("/new", body=rss("a"))
    server.redirect("/old", "/new", status=301)
    login = f"127.0.0.1:{server.port}"
    old = f"http://reader:old@{login}/old"
    with _yaml_app(tmp_path, clock, old) as app:
        for _ in range(4):
            app.sync_feeds()
            list(app.update_due(all_feeds=True))
            clock.advance(hours=10)
        assert [f.url for f in app.feeds()] == [f"http://reader:old@{login}/new"]

        (tmp_path / "feeds.yaml").write_text(
            f"feeds:\n  - name: X\n    url: http://reader:new@{login}/old\n"
        )
        assert app.sync_feeds() == (0, 1)
        assert [f.url for f in app.feeds()] == [f"http://reader:new@{login}/new"]
        server.reset()
        list(app.update_due(all_feeds=True))
        assert _password_sent(server, "/new") == "new"
        assert app.sync_feeds() == (0, 0)  # and the same file is no news next time


def test_remove_and_enable_of_a_moved_feed_say_when_feeds_yaml_will_undo_them(
    tmp_path: Path,
    server: LocalServer,
    clock: Clock,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """README: `feeds remove` and `feeds enable` "say so on stderr when feeds.yaml will
    undo them", and a feed is found in the file "by the URL it was listed under before a
    permanent redirect was adopted". Named by id or by its new URL, a moved feed was
    looked up in the file by its new URL only: no note, and the next sync added the old
    URL back as a new feed (or turned the feed off again)."""
    new = server.route("/new", body=rss("a"))
    old = server.redirect("/old", new, status=301)
    with _yaml_app(tmp_path, clock, old) as app:
        for _ in range(4):
            app.sync_feeds()
            list(app.update_due(all_feeds=True))
            clock.advance(hours=10)
        (feed,) = app.feeds()
        assert (feed.url, feed.source_url) == (new, old)
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")

    (tmp_path / "feeds.yaml").write_text(f"feeds:\n  - {{url: '{old}', enabled: false}}\n")
    code, out, err = run(capsys, "feeds", "list", "--format", "json")  # syncs the file
    assert code == 0, err
    code, out, err = run(capsys, "feeds", "enable", str(feed.id))
    assert code == 0 and out.startswith(f"enabled: {new}"), err
    assert "enabled: false" in err and "turns it off again" in err

    (tmp_path / "feeds.yaml").write_text(f"feeds:\n  - {old}\n")
    code, out, err = run(capsys, "feeds", "remove", new)
    assert code == 0 and out.startswith(f"removed: {new}"), err
    assert "still listed in" in err and "adds it back" in err


def test_opml_import_listing_a_moved_feed_by_its_old_url_keeps_its_settings(
    tmp_path: Path,
    server: LocalServer,
    clock: Clock,  # noqa: F811
) -> None:
    """README: on `feeds import`, "an existing feed keeps the interval, enabled and name
    the OPML cannot carry". An OPML written before a feed moved (another reader's, or an
    old export) lists it by the URL it was subscribed under: the import found the feed
    (by that URL) but not its settings, and reset its interval to adaptive."""
    new = server.route("/new", body=rss("a"))
    old = server.redirect("/old", new, status=301)
    with _yaml_app(tmp_path, clock, old) as app:
        (tmp_path / "feeds.yaml").write_text(f"feeds:\n  - {{url: '{old}', interval: 2h}}\n")
        for _ in range(4):
            app.sync_feeds()
            list(app.update_due(all_feeds=True))
            clock.advance(hours=10)
        (feed,) = app.feeds()
        assert (feed.url, feed.source_url, feed.interval) == (new, old, timedelta(hours=2))
        opml = read_opml(
            f'<opml version="2.0"><body><outline text="Moved" type="rss" xmlUrl="{old}"/>'
            "</body></opml>"
        )
        assert app.import_feeds(opml) == (0, 1)  # named
        (feed,) = app.feeds()
        assert (feed.url, feed.name, feed.interval) == (new, "Moved", timedelta(hours=2))


def test_feeds_remove_takes_the_old_url_of_a_moved_feed_spelled_another_way(
    tmp_path: Path,
    server: LocalServer,
    clock: Clock,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The sync finds a moved feed by its subscribed URL spelled any way (``feed_key``),
    and `feeds remove` takes that URL as stored and any spelling of the feed's current
    one, yet a respelling of the subscribed URL (the file's entry, with a trailing slash)
    was "no feed"."""
    new = server.route("/new", body=rss("a"))
    old = server.redirect("/old", new, status=301)
    with _yaml_app(tmp_path, clock, old) as app:
        for _ in range(4):
            app.sync_feeds()
            list(app.update_due(all_feeds=True))
            clock.advance(hours=10)
        assert [(f.url, f.source_url) for f in app.feeds()] == [(new, old)]
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    code, out, err = run(capsys, "feeds", "remove", old + "/")
    assert code == 0 and out.startswith(f"removed: {new}"), err
    with _yaml_app(tmp_path, clock, old) as app:
        assert app.feeds() == []
