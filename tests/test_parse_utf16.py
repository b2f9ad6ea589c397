"""Feeds in UTF-16 without a byte-order mark (XML 1.0 Appendix F: ``3C 00 3F 00`` is
UTF-16LE, ``00 3C 00 3F`` UTF-16BE) are read by both parse paths, whatever the
Content-Type says: with the XML declaration, without one, or after a blank line (each of
the last two was "not well-formed" unless the header named UTF-16 and the byte order was
the machine's). `feeds add` tells such a feed from a page, also when it is labelled
text/html."""

from __future__ import annotations

import pytest

from aggregator.discover import looks_like_html
from aggregator.errors import ParseError
from aggregator.parse import parse_feed

URL = "https://a.example/feed"
DECLARED = '<?xml version="1.0" encoding="UTF-16"?>'
RSS = (
    '<rss version="2.0"><channel><title>Tést ✓</title><link>https://a.example/</link>'
    "<item><title>Ünïcode 日本 😀</title><link>https://a.example/1</link><guid>g1</guid>"
    "</item></channel></rss>"
)
ATOM = (
    '<feed xmlns="http://www.w3.org/2005/Atom"><title>Tést ✓</title><id>urn:x</id>'
    "<updated>2024-01-01T00:00:00Z</updated><entry><title>Ünïcode 日本 😀</title>"
    '<id>urn:1</id><link href="https://a.example/1"/><updated>2024-01-01T00:00:00Z</updated>'
    "</entry></feed>"
)
CODECS = ["utf-16-le", "utf-16-be"]
TYPES = [
    None,
    "application/rss+xml",
    "text/xml",
    "text/xml; charset=utf-16",
    "text/xml; charset=utf-8",
]


@pytest.mark.parametrize("content_type", TYPES)
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "text",
    [
        pytest.param(DECLARED + RSS, id="rss-declared"),
        pytest.param(DECLARED + ATOM, id="atom-declared"),
        pytest.param(DECLARED.replace("UTF-16", "UTF-16" + "LE") + RSS, id="declared-le"),
        pytest.param(RSS, id="rss-undeclared"),
        pytest.param(ATOM, id="atom-undeclared"),
        pytest.param("\r\n" + DECLARED + RSS, id="blank-line-first"),
        pytest.param("<!-- a comment -->" + RSS, id="comment-first"),
    ],
)
def test_utf16_without_a_bom_is_read(text: str, codec: str, content_type: str | None) -> None:
    if text.startswith(DECLARED.replace("UTF-16", "UTF-16LE")) and codec == "utf-16-be":
        text = text.replace("UTF-16LE", "UTF-16BE", 1)
    body = text.encode(codec)
    with_bom = "\ufeff".encode(codec) + body
    for fast in (True, False):
        feed = parse_feed(body, URL, content_type=content_type, fast=fast)
        assert feed.title == "Tést ✓"
        assert [e.title for e in feed.entries] == ["Ünïcode 日本 😀"]
        assert [e.link for e in feed.entries] == ["https://a.example/1"]
        # as the same document with its byte-order mark is read
        assert feed == parse_feed(with_bom, URL, content_type=content_type, fast=fast)


@pytest.mark.parametrize("codec", CODECS)
def test_both_paths_agree(codec: str) -> None:
    for text in (DECLARED + RSS, RSS, DECLARED + ATOM):
        body = text.encode(codec)
        assert parse_feed(body, URL) == parse_feed(body, URL, fast=False)


def test_nuls_that_are_not_utf16_markup_are_still_no_feed() -> None:
    for body in (b"\x00\x00\x00<", b"<\x00\x00\x00", b"\x00<\x00 \x00"):
        with pytest.raises(ParseError):
            parse_feed(body, URL)


@pytest.mark.parametrize("codec", [*CODECS, "utf-16"])
def test_a_utf16_feed_labelled_html_is_no_page(codec: str) -> None:
    for text in (DECLARED + RSS, "\n" + RSS):
        assert not looks_like_html(text.encode(codec), "text/html")
    assert looks_like_html("<!doctype html><html></html>".encode(codec), None)
