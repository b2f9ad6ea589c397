"""The same article in two feeds (a site's main feed and its topic feeds, as CircleID
publishes them) is fetched and extracted once: a story whose canonical URL has an
extracted text stored already takes that text instead of fetching the page again."""

from __future__ import annotations

from pathlib import Path

from httpserver import LocalServer
from test_extract_pipeline import ARTICLE, TITLE, article_page

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import StoryQuery


def _feed(server: LocalServer, path: str, guid: str, link: str) -> str:
    return server.route(
        path,
        body=(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            f"<item><title>{TITLE}</title><link>{link}</link><guid>{guid}</guid>"
            "<description>Teaser.</description></item></channel></rss>"
        ).encode(),
    )


def test_an_article_in_two_feeds_is_fetched_once(tmp_path: Path, server: LocalServer) -> None:
    page = server.route("/2026/dnssec", content_type="text/html", body=article_page().encode())
    main = _feed(server, "/main.xml", "main-1", page)
    topic = _feed(server, "/topics/dns.xml", "dns-1", page + "?utm_source=dns-feed")
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as app:
        app.add_feed(main, discover=False)
        assert [r.extracted for r in app.update_due(all_feeds=True)] == [1]
        app.add_feed(topic, discover=False)
        results = list(app.update_due(all_feeds=True))
        assert sorted((r.new, r.extracted) for r in results) == [(0, 0), (1, 1)]
        assert len(server.requests_for("/2026/dnssec")) == 1

        stories = app.store.get_stories(app.store.story_ids())
        assert len(stories) == 2
        a, b = stories
        assert a.extraction_status == b.extraction_status == "ok"
        assert a.full_text == b.full_text and ARTICLE[:40] in (b.full_text or "")
        # the second is a duplicate of the first, as its own extraction would have made it
        assert a.cluster_id == b.cluster_id
        assert [t.topic for t in b.topics] == [t.topic for t in a.topics]
        assert len(app.stories(StoryQuery(text="resolvers"))) == 1  # one per cluster
