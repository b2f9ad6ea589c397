"""Article extraction, hunted in session 26 for what a demanding user would call wrong:
each test is a bug that was, against the real parts (a local HTTP server, a SQLite
store, the worker processes)."""

from __future__ import annotations

from pathlib import Path

from httpserver import LocalServer
from test_extract import PAYWALL
from test_extract_pipeline import TITLE, poll

from aggregator.extract import NOT_THE_STORY


def _paywall_page(title: str, teaser: str = "") -> bytes:
    """A paywall as news sites serve one: the story's headline, perhaps its first
    sentence, then the subscription notice."""
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{teaser}</p><div class='paywall'><p>{PAYWALL}</p></div></article></body></html>"
    ).encode()


def test_a_paywall_keeping_the_headline_is_not_stored_as_the_article(
    tmp_path: Path, server: LocalServer
) -> None:
    """A paywall or consent page that shows the story's headline above its notice (as
    nearly every paywall does) passed the "does the text mention the story?" check on
    the headline alone: the notice was stored as the story's full text ("ok"), shown and
    classified as the article, and its SimHash clustered the site's paywalled stories
    together. The headline repeated on the page says nothing of its text: the notice is
    refused as the consent page without the headline is."""
    titled = f"s0 {TITLE}"  # the title poll() gives the story linking to /page/0
    pages = [
        {"body": _paywall_page(titled)},
        {"body": _paywall_page(f"s1 {TITLE}", "The registry said on Tuesday.")},
    ]
    results, stories = poll(tmp_path, server, pages)
    assert results == [("ok", 2)]
    for key in ("s0", "s1"):
        story = stories[key]
        assert story.full_text is None, story.full_text
        assert story.extraction_status == "failed"
        assert story.extraction_error == NOT_THE_STORY
