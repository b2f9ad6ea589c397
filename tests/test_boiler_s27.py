"""Session 27 hunt: what a feed document repeats under every item (its boilerplate,
``neardup.boilerplate``) against the decision to fetch a story's page and what the page
then gives it, through the real App, a local HTTP server, the worker processes and a
real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_dedupe_s27 import SITE_BOILERPLATE, STORIES, _item, _rss
from test_extract_pipeline import ARTICLE

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.textutil import html_to_text
from aggregator.types import StoryQuery


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as a:
        yield a


def _page(title: str) -> bytes:
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{title}. {ARTICLE}</p></article></body></html>"
    ).encode()


def _footed_feed(server: LocalServer) -> str:
    """A feed of two teasers above the site's footer, each linking to its article."""
    assert len(html_to_text(SITE_BOILERPLATE)) > 850  # the premise
    items = ""
    for name in ("verisign", "hosting"):
        title, teaser = STORIES[name]
        link = server.route(f"/2026/{name}", body=_page(title), content_type="text/html")
        items += _item(title, text=f"<p>{teaser}</p>{SITE_BOILERPLATE}", link=link, guid=name)
    return server.route("/feed", body=_rss(items, "https://news.example/"))


def _assert_articles_taken(app: App) -> None:
    stories = app.stories(StoryQuery(limit=None))
    assert len(stories) == 2
    for story in stories:
        assert story.extraction_status == "ok", story.extraction_error
        assert story.full_text and "signed with DNSSEC" in story.full_text
        assert len(story.full_text) < len(html_to_text(SITE_BOILERPLATE))


def test_a_teaser_above_the_sites_footer_gets_its_page(app: App, server: LocalServer) -> None:
    """Each item of the feed is a one-sentence teaser above the site's 900 characters of
    newsletter sign-up, cookie notice and "About us": 1,000 characters in all, past the
    600 below which a story's page is fetched. No page was fetched, and the stories were
    stored, tagged and searched on the footer. What the document repeats under its items
    is not the story's text: the teaser is short, the page is fetched, and its article,
    shorter than teaser and footer together, is the story's text."""
    app.add_feed(_footed_feed(server), discover=False)
    assert [(r.status, r.new) for r in app.update_due(all_feeds=True)] == [("ok", 2)]
    _assert_articles_taken(app)


def test_teasers_stored_without_their_pages_get_them_later(app: App, server: LocalServer) -> None:
    """The same stories stored by ``poll --no-extract`` wait for their pages, and
    ``aggregator extract`` takes the articles: what the feed's stories it extracts
    repeat under their titles is not counted as their feed text either."""
    app.add_feed(_footed_feed(server), discover=False)
    assert [r.new for r in app.update_due(all_feeds=True, extract=False)] == [2]
    stored = app.stories(StoryQuery(limit=None))
    assert [s.extraction_status for s in stored] == ["pending", "pending"]
    tally = app.extract_waiting()
    assert (tally.tried, tally.extracted) == (2, 2)
    _assert_articles_taken(app)
