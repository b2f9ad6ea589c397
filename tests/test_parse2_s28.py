"""Feed parsing bugs found in session 28 (second pass): each test is a user-visible failure
that was fixed, checked on the lxml fast path and on feedparser's where the format is XML."""

from __future__ import annotations

import json

import pytest
from test_parse_s27 import NOW

from aggregator.parse import parse_feed

FEED_URL = "https://feeds.example.org/feed"


def rss_item(item: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"'
        ' xmlns:media="http://search.yahoo.com/mrss/"'
        ' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
        "<channel><title>T</title><link>https://blog.example.org/</link>"
        f"<item>{item}</item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "version",
    [
        "https://jsonfeed.org/version/1.1/",
        "https://jsonfeed.org/version/1/",
        " https://jsonfeed.org/version/1.1 ",
    ],
)
def test_json_feed_version_url_with_a_trailing_slash_is_known(version: str) -> None:
    # "unknown JSON Feed version" was recorded as the feed's warning on every poll
    doc = {"version": version, "title": "T", "items": [{"id": "1", "content_text": "hi"}]}
    parsed = parse_feed(json.dumps(doc).encode(), FEED_URL, now=NOW)
    assert parsed.version == ("json11" if "1.1" in version else "json10")
    assert parsed.warnings == ()
