"""Review: `show` prints an extraction error without the terminal control sequences a
hostile page server put in it (the Content-Type header quoted by "not an HTML page")."""

from __future__ import annotations

from pathlib import Path

import pytest
from httpserver import LocalServer
from test_learning_cli import env, run  # noqa: F401  (fixture)

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import StoryQuery


def test_show_prints_an_extraction_error_without_control_sequences(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.route(
        "/article",
        raw=b"HTTP/1.1 200 OK\r\nContent-Type: text/\x1b]0;owned\x07x\x1b[2J\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\nhi",
    )
    feed = server.route(
        "/feed.xml",
        body=b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><title>Registry raises wholesale domain prices</title>"
        b"<link>/article</link><guid>g1</guid><description>Short.</description>"
        b"</item></channel></rss>",
    )
    s = Settings.from_env({}, data_dir=env / "data", allow_private_addresses=True, extract=True)
    with make_app(s) as app:
        app.store.upsert_feeds([], app.now())
        app.add_feed(feed, discover=False)
        list(app.update_due(extract=True))
        (story,) = app.stories(StoryQuery())
        assert story.extraction_status == "failed"
        assert "\x1b" in (story.extraction_error or "")  # as the server sent it
    code, out, err = run(capsys, "show", str(story.id))
    assert code == 0, err
    assert "not an HTML page" in out
    assert "\x1b" not in out and "\x07" not in out


def test_feed_errors_are_listed_without_control_sequences(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server's reason phrase is part of the feed's error, shown by `poll` and `feeds
    list`: a hostile one must not clear the screen or retitle the terminal."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    url = server.route(
        "/feed.xml",
        raw=b"HTTP/1.1 500 Oops \x1b]0;owned\x07\x1b[2J\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    code, out, err = run(capsys, "feeds", "add", "--no-discover", url)
    assert code == 0, err
    code, out, err = run(capsys, "poll", "--all", "--no-extract")
    assert "Oops" in out + err
    assert "\x1b" not in out + err and "\x07" not in out + err
    code, out, err = run(capsys, "feeds", "list")
    assert code == 0, err
    assert "Oops" in out
    assert "\x1b" not in out and "\x07" not in out
