"""Session 27 hunt: a feed correcting an entry's link. Through the real App, a local HTTP
server and real SQLite and PostgreSQL databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_dedupe_s26 import _item, _rss
from test_extract_pipeline import TITLE, article_page
from test_store import T0, check, draft
from test_update import Clock

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.store import open_store
from aggregator.types import FeedSource, Story, StoryQuery, StoryRecord


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def extracting_app(tmp_path: Path, clock: Clock, db_url: str) -> Iterator[App]:
    """The App, extracting article pages, on SQLite, then on PostgreSQL."""
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        database_url=db_url,
        allow_private_addresses=True,
        workers=1,
        timeout_s=3,
    )
    with make_app(s, now=clock) as a:
        yield a


def _one_story(app: App) -> Story:
    (story,) = app.stories(StoryQuery(limit=None))
    return story


def test_a_corrected_link_is_stored_and_its_page_extracted(
    extracting_app: App, server: LocalServer, clock: Clock
) -> None:
    """The feed fixes a typo in an item's link (same guid, title and text): the next poll
    found the story unchanged by its text alone, kept the broken link (in exports too)
    and the first link's 404 as the story's extraction outcome, never asking for the
    corrected page."""
    app = extracting_app
    typo = server.route("/typo", status=404, content_type="text/html", body=b"gone")
    article = server.route("/article", content_type="text/html", body=article_page().encode())
    teaser = "The registry has signed every zone."

    def feed(link: str) -> bytes:
        return _rss(_item(TITLE, text=teaser, link=link, guid="g0"))

    url = server.route("/feed", body=feed(typo))
    app.add_feed(url, discover=False)
    (r1,) = list(app.update_due(all_feeds=True))
    assert (r1.status, r1.new) == ("ok", 1)
    before = _one_story(app)
    assert (before.link, before.extraction_status) == (typo, "failed")

    server.route("/feed", body=feed(article))
    clock.advance(hours=1)
    (r2,) = list(app.update_due(all_feeds=True))
    assert (r2.status, r2.new, r2.updated) == ("ok", 0, 1)
    after = _one_story(app)
    assert after.id == before.id
    assert (after.link, after.canonical_url) == (article, article)
    assert after.extraction_status == "ok", after.extraction_error
    assert after.full_text and "signed with DNSSEC" in after.full_text
    assert len(server.requests_for("/article")) == 1
    exported = json.loads(app.export(StoryQuery(), "json"))["items"]
    assert [i["url"] for i in exported] == [article]

    # polled again unchanged (the body changed elsewhere): nothing rewritten or fetched
    server.route("/feed", body=feed(article).replace(b"<title>T<", b"<title>T2<"))
    clock.advance(hours=1)
    (r3,) = list(app.update_due(all_feeds=True))
    assert (r3.status, r3.new, r3.updated) == ("ok", 0, 0)
    assert len(server.requests_for("/article")) == 1


def test_a_corrected_link_does_not_keep_the_wrong_pages_text(
    extracting_app: App, server: LocalServer, clock: Clock
) -> None:
    """The item first linked another article's page (extracted); the corrected page does
    not answer yet. The story kept the wrong article's text as its own (status ok,
    searchable by it), so it was never extracted again at its right link."""
    app = extracting_app
    other = (
        "The registry finishes DNSSEC signing of all zones it runs, its operator said, and"
        " moved its anycast nodes to a new provider last winter. "
    ) * 4
    wrong = server.route("/wrong", content_type="text/html", body=article_page(other).encode())
    right = server.route("/article", status=404, content_type="text/html", body=b"not yet")

    def feed(link: str) -> bytes:
        return _rss(_item(TITLE, text="The registry has signed every zone.", link=link, guid="g0"))

    url = server.route("/feed", body=feed(wrong))
    app.add_feed(url, discover=False)
    list(app.update_due(all_feeds=True))
    assert _one_story(app).extraction_status == "ok", _one_story(app).extraction_error
    assert [s.title for s in app.stories(StoryQuery(text="anycast"))] == [TITLE]

    server.route("/feed", body=feed(right))
    clock.advance(hours=1)
    (r2,) = list(app.update_due(all_feeds=True))
    assert (r2.status, r2.updated) == ("ok", 1)
    story = _one_story(app)
    assert story.link == right
    assert (story.extraction_status, story.full_text) == ("failed", None)
    assert "404" in (story.extraction_error or "")
    assert app.stories(StoryQuery(text="anycast")) == []


def test_a_story_moved_to_https_keeps_its_text_when_the_new_page_fails(db_url: str) -> None:
    """Only another article drops the text: the http<->https twin of its URL is the same
    page (dedupe.scheme_twin), whose text stays when fetching it again fails."""
    store = open_store(db_url)
    try:
        store.upsert_feeds([FeedSource(url="https://a.example/feed", name="A")], T0)
        fid = store.get_feed("https://a.example/feed").id

        def save(link: str, full_text: str | None) -> Story:
            status = "ok" if full_text else "failed"
            rec = StoryRecord(
                draft=draft("g1", "Resolver news", link=link),
                full_text=full_text,
                extraction_status=status,
                extraction_error=None if full_text else "HTTP 503",
            )
            store.save_update(check(fid), [rec])
            (story,) = store.stories(StoryQuery())
            return story

        save("http://n.example/1", "The article's text.")
        moved = save("https://n.example/1", None)
        assert (moved.link, moved.full_text) == ("https://n.example/1", "The article's text.")
        other = save("https://n.example/2", None)
        assert (other.full_text, other.extraction_status) == (None, "failed")
    finally:
        store.close()
