"""Review: `feeds add` of a private site (credentials in the URL) shows no password and
subscribes to the feed it finds with the credentials the site was given with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_learning_cli import env, run  # noqa: F401  (fixture)

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Members only</title>
<item><title>Registry raises wholesale domain prices</title><link>/news/1</link>
<guid>n1</guid><description>The registry raised the wholesale price.</description>
</item></channel></rss>"""
PAGE = (
    b"<!doctype html><html><head><title>Members</title>"
    b'<link rel="alternate" type="application/rss+xml" href="/members/feed.xml">'
    b"</head><body>hello</body></html>"
)
BARE = b"<!doctype html><html><head><title>Members</title></head><body>hi</body></html>"


def _private(url: str) -> str:
    return url.replace("http://", "http://ann:hunter2@")


def test_feeds_add_of_a_private_page_shows_no_password_and_keeps_the_login(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    server.route("/members/feed.xml", body=FEED)
    page = _private(server.route("/members/", body=PAGE, content_type="text/html"))
    code, out, err = run(capsys, "feeds", "add", page)
    assert code == 0, err
    assert "hunter2" not in out + err
    assert "ann:***@" in out
    # the feed found on the private page is fetched with the page's credentials
    code, out, err = run(capsys, "poll", "--all", "--no-extract", "--format", "json")
    assert code == 0, err
    assert "hunter2" not in out + err
    (req,) = server.requests_for("/members/feed.xml")[-1:]
    assert req.headers.get("authorization", "").startswith("Basic ")


def test_feeds_add_probes_the_usual_paths_with_the_login(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    server.route("/club/feed", body=FEED)
    page = _private(server.route("/club/", body=BARE, content_type="text/html"))
    code, out, err = run(capsys, "feeds", "add", page)
    assert code == 0, err
    assert "hunter2" not in out + err
    assert (
        server.requests_for("/club/feed")[0].headers.get("authorization", "").startswith("Basic ")
    )
    listed = json.loads(run(capsys, "feeds", "list", "--format", "json")[1])
    assert [f["url"] for f in listed] == [
        _private(server.url("/club/feed")).replace("hunter2", "***")
    ]


def test_feeds_add_failure_shows_no_password(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    url = _private(server.route("/gone.xml", status=404, body=b"no"))
    code, out, err = run(capsys, "feeds", "add", url)
    assert code == 2
    assert "hunter2" not in out + err
    assert "ann:***@" in err


def test_removing_a_private_feed_archives_its_labels_without_the_password(db_url: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text
    from test_prune import _save

    from aggregator.store import open_store
    from aggregator.types import FeedSource

    now = datetime(2026, 11, 29, tzinfo=UTC)
    url = "https://ann:hunter2@members.example/feed"
    store = open_store(db_url)
    try:
        store.sync_topics([("DNS", None)])
        store.upsert_feeds([FeedSource(url=url)], now)
        sid = _save(store, store.get_feed(url).id, "k1", at=now)
        store.add_labels(sid, ["DNS"], [], now)
        assert store.remove_feed(url, now) == 1
        (kept,) = store.labelled_stories()
        assert kept.positive == ("DNS",)
        assert kept.story.feed_url == "https://members.example/feed"
        with store.engine.connect() as conn:
            stored = conn.execute(text("SELECT feed_url FROM label_archive")).scalars().all()
        assert stored == ["https://members.example/feed"]
    finally:
        store.close()


def test_stories_of_a_private_feed_by_its_url_as_shown(db_url: str) -> None:
    """`--feed URL` (and serve's ?feed=) finds a private feed's stories by the URL that
    stories and `feeds list` show, and answers a guessed password as it answers any."""
    from datetime import UTC, datetime

    from test_prune import _save

    from aggregator.store import open_store
    from aggregator.types import FeedSource, StoryQuery

    now = datetime(2026, 11, 29, tzinfo=UTC)
    url = "https://ann:hunter2@members.example/feed"
    store = open_store(db_url)
    try:
        store.sync_topics([("DNS", None)])
        store.upsert_feeds([FeedSource(url=url, name="Club")], now)
        sid = _save(store, store.get_feed(url).id, "k1", at=now)
        (story,) = store.stories(StoryQuery())
        for shown in (story.feed_url, "https://ann:***@members.example/feed", url):
            assert [s.id for s in store.stories(StoryQuery(feeds=(shown,)))] == [sid], shown
        guessed = store.stories(StoryQuery(feeds=("https://ann:hunter3@members.example/feed",)))
        assert [s.id for s in guessed] == [sid]  # no password oracle
        assert store.stories(StoryQuery(feeds=("https://other.example/feed",))) == []
    finally:
        store.close()


def test_feeds_add_with_credentials_is_not_the_feed_without_them(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Credentials make a feed URL another subscription (feedlist.feed_key): the login
    given to a feed first added without it is not reported as already present."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    bare = server.route("/members.xml", body=FEED)
    code, out, err = run(capsys, "feeds", "add", "--no-discover", bare)
    assert code == 0 and out.startswith("added:"), err
    code, out, err = run(capsys, "feeds", "add", _private(bare))
    assert code == 0, err
    assert out.startswith("added: ") and "ann:***@" in out
    listed = json.loads(run(capsys, "feeds", "list", "--format", "json")[1])
    assert sorted(f["url"] for f in listed) == sorted([bare, bare.replace("://", "://ann:***@")])
