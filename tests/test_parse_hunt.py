"""Parsing and exporting bugs found in the parse hunt: each test is a user-visible failure
that was fixed (JSON Feed input, dates, the exporter's round trip)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from aggregator.errors import ParseError
from aggregator.parse import html_to_text, parse_feed

URL = "https://feeds.example.org/feed.json"
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def json_feed(*items: dict[str, object], **doc: object) -> bytes:
    return json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": "T", **doc, "items": list(items)}
    ).encode()


# --- JSON Feed --------------------------------------------------------------------------------


def test_json_content_text_is_kept_when_content_html_sanitises_to_nothing() -> None:
    # A video post: its HTML is only the embed (an iframe, which the sanitiser drops), its
    # text the description. The story had no text at all and was titled "(untitled)".
    item = {
        "id": "1",
        "url": "https://video.example/1",
        "content_html": '<iframe src="https://www.youtube.com/embed/x"></iframe>',
        "content_text": "Watch our launch video: the new release explained.",
    }
    (entry,) = parse_feed(json_feed(item), URL, now=NOW).entries
    assert entry.content == "<p>Watch our launch video: the new release explained.</p>"
    assert entry.title == "Watch our launch video: the new release explained."


# --- HTML sanitising ----------------------------------------------------------------------


def test_deeply_nested_html_is_sanitised_in_linear_time() -> None:
    # html5ever (under nh3) looks through every open element at each block's start: a
    # description of 30,000 unclosed <div>s (150 KB) took ~12 s to sanitise, 100,000 (in
    # a feed under the 10 MB cap) minutes, and the feed's parse was killed on every poll.
    depth = 30_000
    description = '<p><a href="/first">first</a></p>' + "<div>" * depth + "the end"
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        "<link>https://site.example/</link><item><title>Deep</title><guid>deep</guid>"
        f"<description><![CDATA[{description}]]></description></item></channel></rss>"
    ).encode()
    started = time.monotonic()
    (entry,) = parse_feed(body, "https://site.example/feed", now=NOW).entries
    assert time.monotonic() - started < 3  # ~12 s before; ~0.1 s
    # the text is kept, and the markup to a thousand deep, the link before it included
    assert entry.summary is not None
    assert 'href="https://site.example/first"' in entry.summary
    assert entry.summary.count("<div>") == entry.summary.count("</div>") == 1_000
    assert html_to_text(entry.summary) == "first\nthe end"
    # what the sanitiser drops with its content is dropped at any depth
    deep = "<div>" * 6_000 + "text <script>alert(1)</script><svg><text>svg</text></svg> end"
    assert html_to_text(deep) == "text end"


def test_a_json_array_is_reported_as_json_that_is_not_a_feed() -> None:
    # An API endpoint's list of posts, served without a JSON type: the error said the
    # body was not well-formed XML ("syntax error, line 1, column 0").
    body = b'[{"id": 1, "title": "Post"}]'
    for content_type in (None, "text/plain"):
        with pytest.raises(ParseError, match="JSON document has no 'items' list"):
            parse_feed(body, URL, content_type=content_type, now=NOW)


# --- dates --------------------------------------------------------------------------------


def test_a_json_feed_date_at_a_leap_second_is_read_as_rss_and_atom_read_it() -> None:
    # RFC 3339 (§5.6) allows a second of 60; feedparser reads it as the next second, the
    # JSON Feed reader found no date and the story sorted by when it was first seen.
    items = [
        {"id": "1", "content_text": "x", "date_published": "2016-12-31T23:59:60Z"},
        {"id": "2", "content_text": "x", "date_published": "2016-12-31t23:59:60.5+01:00"},
    ]
    first, second = parse_feed(json_feed(*items), URL, now=NOW).entries
    assert first.published == datetime(2017, 1, 1, tzinfo=UTC)
    # (whole seconds, as feedparser reads RSS and Atom: the fraction is dropped)
    assert second.published == datetime(2016, 12, 31, 23, 0, 0, tzinfo=UTC)
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id>'
        b"<updated>2016-12-31T23:59:60Z</updated><entry><id>urn:1</id><title>t</title>"
        b"<updated>2016-12-31T23:59:60Z</updated></entry></feed>"
    )
    (entry,) = parse_feed(atom, "https://feeds.example.org/feed.atom", now=NOW).entries
    assert entry.published == first.published


def rss_dated(date: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        "<link>https://site.example/</link><item><title>t</title><guid>g</guid>"
        f"<pubDate>{date}</pubDate></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        # PHP's strftime / date under a German, French, Spanish, Italian, Dutch or
        # Portuguese locale: the story had no date, in RSS and JSON Feed alike
        ("Di, 15 Okt 2024 10:00:00 +0200", datetime(2024, 10, 15, 8, tzinfo=UTC)),
        ("Do, 12. Dez 2024 10:00:00 CET", datetime(2024, 12, 12, 9, tzinfo=UTC)),
        ("Mi, 15 Mai 2024 10:00:00 GMT", datetime(2024, 5, 15, 10, tzinfo=UTC)),
        ("15 Mär 2024 10:00:00 +0100", datetime(2024, 3, 15, 9, tzinfo=UTC)),
        ("mar., 15 oct. 2024 10:00:00 +0200", datetime(2024, 10, 15, 8, tzinfo=UTC)),
        ("mer, 3 juil. 2024 10:00 +0200", datetime(2024, 7, 3, 8, tzinfo=UTC)),
        ("jeu., 1 août 2024 10:00:00 +0200", datetime(2024, 8, 1, 8, tzinfo=UTC)),
        ("lun, 2 déc 2024 10:00:00 +0100", datetime(2024, 12, 2, 9, tzinfo=UTC)),
        ("vie, 20 dic 2024 10:00:00 +0100", datetime(2024, 12, 20, 9, tzinfo=UTC)),
        ("ven, 9 ago 2024 10:00:00 +0200", datetime(2024, 8, 9, 8, tzinfo=UTC)),
        ("gio, 9 mag 2024 10:00:00 +0200", datetime(2024, 5, 9, 8, tzinfo=UTC)),
        ("wo, 6 mrt 2024 10:00:00 +0100", datetime(2024, 3, 6, 9, tzinfo=UTC)),
        ("qua, 9 out 2024 10:00:00 -0300", datetime(2024, 10, 9, 13, tzinfo=UTC)),
        ("Lun, 15 Jan 2024 10:00:00 +0100", datetime(2024, 1, 15, 9, tzinfo=UTC)),
    ],
)
def test_dates_with_month_and_day_names_of_other_languages_are_read(
    date: str, expected: datetime
) -> None:
    for fast in (True, False):
        (entry,) = parse_feed(rss_dated(date), URL, fast=fast, now=NOW).entries
        assert entry.published == expected, fast
    item = {"id": "1", "content_text": "x", "date_published": date}
    (entry,) = parse_feed(json_feed(item), URL, now=NOW).entries
    assert entry.published == expected
