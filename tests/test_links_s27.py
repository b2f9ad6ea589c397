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
from test_update import Clock

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.types import Story, StoryQuery


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
