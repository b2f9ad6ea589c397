"""Feeds whose URL carries credentials: fetched with HTTP Basic auth (test_fetch.py), and
the password shown nowhere and published nowhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_learning_cli import run

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.credentials import display_url, without_credentials
from aggregator.types import StoryQuery

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Members only</title>
<item><title>Registry raises wholesale domain prices</title><link>/news/1</link>
<guid>n1</guid><description>The registry raised the wholesale price of its domains.</description>
</item></channel></rss>"""


@pytest.mark.parametrize(
    ("url", "shown", "bare"),
    [
        ("https://ann:pw@h.example/f", "https://ann:***@h.example/f", "https://h.example/f"),
        ("https://tok3n@h.example/f", "https://***@h.example/f", "https://h.example/f"),
        ("http://a:p@ss@h.example:8080/", "http://a:***@h.example:8080/", "http://h.example:8080/"),
        ("https://h.example/f?u=a@b", "https://h.example/f?u=a@b", "https://h.example/f?u=a@b"),
        ("https://h.example/f", "https://h.example/f", "https://h.example/f"),
    ],
)
def test_display_and_bare_urls(url: str, shown: str, bare: str) -> None:
    assert display_url(url) == shown
    assert without_credentials(url) == bare


def test_a_private_feed_is_polled_and_its_password_is_never_shown(
    tmp_path: Path,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain = server.route("/members.xml", body=FEED)
    url = plain.replace("http://", "http://ann:hunter2@")
    s = Settings.from_env(
        {}, data_dir=tmp_path / "data", allow_private_addresses=True, extract=False
    )
    with make_app(s) as app:
        app.store.upsert_feeds([], app.now())
        app.add_feed(url, discover=False)
        (result,) = app.update_due()
        assert result.status == "ok" and result.new == 1
        (story,) = app.stories(StoryQuery())
        assert story.feed_url == plain
        assert story.link == server.url("/news/1")  # resolved against the bare URL
        exported = "".join(app.export(StoryQuery(), fmt) for fmt in ("atom", "rss", "json"))
    assert "hunter2" not in exported
    assert server.requests_for("/members.xml")[0].headers["authorization"].startswith("Basic ")

    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "none.yaml").write_text("feeds: []\n")  # named, so it must exist
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    for argv in (
        ("feeds", "list", "--format", "json"),
        ("feeds", "list"),
        ("stories", "--format", "json"),
        ("poll", "--all", "--no-extract", "--format", "json"),
        ("poll", "--all", "--no-extract"),
    ):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        assert "hunter2" not in out + err, argv
    code, out, _ = run(capsys, "feeds", "list", "--format", "json")
    assert json.loads(out)[0]["url"] == display_url(url)
    # the subscription list you export keeps the credentials: it is yours
    code, out, _ = run(capsys, "feeds", "export")
    assert "ann:hunter2@" in out
