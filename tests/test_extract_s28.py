"""Session 28: full-text extraction and search, found by a demanding user's use."""

from __future__ import annotations

from pathlib import Path

from httpserver import LocalServer
from test_extract_pipeline import ARTICLE, TITLE, article_page

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import StoryQuery

# A site's footer under every item of its feed: ~900 characters, longer than the article
FOOTER = " ".join(
    f"Footer sentence {word} of the newsletter: subscribe to our {word} digest for more."
    for word in (
        [
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ]
    )
)


def _teaser_feed(server: LocalServer, n: int) -> str:
    items = ""
    for i in range(n):
        link = server.route(f"/page/{i}", body=article_page().encode(), content_type="text/html")
        items += (
            f"<item><title>s{i} {TITLE}</title><link>{link}</link><guid>g{i}</guid>"
            f"<description>Teaser {i} of the story. {FOOTER}</description></item>"
        )
    return server.route(
        "/feed",
        body=(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
            "</channel></rss>"
        ).encode(),
    )


def test_a_story_extracted_alone_has_its_feeds_footer_left_out(
    tmp_path: Path, server: LocalServer
) -> None:
    """A story taken up alone by `extract` (``--limit 1``, or the only one of its feed
    still waiting) had the feed's footer counted as its own text (the footer is told by
    the feed's other stories): its article, longer than the teaser but not than teaser
    and footer together, was ``skipped`` where a poll or a run over the whole feed takes
    it."""
    url = _teaser_feed(server, 3)
    assert len(FOOTER) > len(ARTICLE) * 2  # the page's text is shorter than the footer
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as app:
        app.add_feed(url, discover=False)
        assert [r.new for r in app.update_due(all_feeds=True, extract=False)] == [3]
        done = app.extract_waiting(limit=1)
        assert (done.tried, done.extracted) == (1, 1)
        done = app.extract_waiting(limit=1)
        assert (done.tried, done.extracted) == (1, 1)
        statuses = sorted(st.extraction_status for st in app.stories(StoryQuery(limit=None)))
        assert statuses == ["ok", "ok", "pending"]
