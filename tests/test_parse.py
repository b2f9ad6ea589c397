"""parse_feed and html_to_text: golden feeds, refusals, security and property tests."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.parse import FUTURE_SLACK, html_to_text, parse_feed
from aggregator.types import ParsedFeed

FEEDS = Path(__file__).parent / "data" / "feeds"
URL = "https://feeds.example.org/feed"


def _load_regen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("feeds_regen", FEEDS / "regen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regen = _load_regen()


def rss(items: str, channel: str = "", *, namespaces: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {namespaces}><channel>'
        f"<title>T</title><link>https://site.example.com/</link>{channel}{items}"
        "</channel></rss>"
    ).encode()


# --- golden files ---------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", regen.fixtures(), ids=lambda p: p.name)
def test_golden(fixture: Path) -> None:
    expected = json.loads(regen.expected_path(fixture).read_text(encoding="utf-8"))
    assert regen.snapshot(fixture) == expected


def test_golden_set_covers_the_formats() -> None:
    versions = {json.loads(regen.expected_path(f).read_text())["version"] for f in regen.fixtures()}
    assert {"rss091n", "rss10", "rss20", "atom10", "json10", "json11"} <= versions


# --- not a feed -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        pytest.param(b"", None, "empty body", id="empty"),
        pytest.param(b" \r\n\t ", None, "empty body", id="whitespace"),
        pytest.param(b"\xef\xbb\xbf\n", None, "empty body", id="bom-only"),
        pytest.param((FEEDS / "bad/page.html").read_bytes(), "text/html", "HTML page", id="html"),
        pytest.param(b"<html><body><p>hi</p></body></html>", None, "HTML page", id="xhtml-ish"),
        pytest.param((FEEDS / "bad/truncated.json").read_bytes(), None, "invalid JSON", id="json"),
        pytest.param(b"{nope}", "application/feed+json", "invalid JSON", id="json-garbage"),
        pytest.param(b"[1, 2]", "application/json", "no .items. list", id="json-array"),
        pytest.param(
            (FEEDS / "bad/not-a-feed.json").read_bytes(), None, "no 'items'", id="json-api"
        ),
        pytest.param(
            (FEEDS / "bad/truncated.xml").read_bytes(), None, "not well-formed", id="truncated-xml"
        ),
        pytest.param(b"just some words", None, "not a feed", id="text"),
        pytest.param(b"<catalog><book/></catalog>", None, "not a feed", id="other-xml"),
    ],
)
def test_not_a_feed(body: bytes, content_type: str | None, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as raised:
        parse_feed(body, URL, content_type=content_type)
    assert raised.value.url == URL


def test_body_is_never_treated_as_a_path_or_url(tmp_path: Path) -> None:
    # feedparser.parse(bytes) would open() a body that happens to name a file.
    feed_file = tmp_path / "real.xml"
    feed_file.write_bytes(rss("<item><title>secret</title></item>"))
    for body in (str(feed_file).encode(), b"/etc/hostname", b"http://127.0.0.1:9/feed.xml"):
        with pytest.raises(ParseError):
            parse_feed(body, URL)


def test_external_entities_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><title>T</title>'
        "<item><title>a &x; b</title><description>&x;</description></item></channel></rss>"
    ).encode()
    parsed = parse_feed(body, URL)
    assert "TOP-SECRET" not in repr(parsed)
    assert parsed.entries[0].title == "a b"


# --- JSON Feed detection and fields ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(
            b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', None, id="brace"
        ),
        pytest.param(b'\xef\xbb\xbf \n{"items": []}', None, id="bom-whitespace"),
        pytest.param(b'{"items": []}', "application/feed+json; charset=utf-8", id="feed+json"),
    ],
)
def test_json_feed_detected(body: bytes, content_type: str | None) -> None:
    assert parse_feed(body, URL, content_type=content_type).version.startswith("json")


def test_xml_wins_over_a_wrong_json_content_type() -> None:
    parsed = parse_feed(rss("<item><title>x</title></item>"), URL, content_type="application/json")
    assert parsed.version == "rss20"


@pytest.mark.parametrize(
    ("raw", "guid"),
    [
        ('"a1"', "a1"),
        ("12", "12"),
        ("12.0", "12"),
        ("1.2e1", "12"),
        ("2.5", "2.5"),
        ("1e400", None),
        ("true", None),
        ("[1]", None),
    ],
)
def test_json_feed_ids_given_as_numbers(raw: str, guid: str | None) -> None:
    body = '{"items": [{"id": ' + raw + ', "title": "t", "url": "https://x.example/1"}]}'
    assert parse_feed(body.encode(), URL).entries[0].guid == guid


def test_json_feed_tolerates_wrong_types() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": 7,
            "items": [
                {
                    "id": True,
                    "url": ["x"],
                    "title": None,
                    "tags": "dns",
                    "authors": "me",
                    "date_published": "yesterday",
                    "attachments": [1, {"url": 2}],
                }
            ],
        }
    ).encode()
    parsed = parse_feed(body, URL)
    (entry,) = parsed.entries
    assert parsed.title is None
    assert (entry.guid, entry.link, entry.title, entry.categories) == (None, None, "(untitled)", ())
    assert (entry.author, entry.published, entry.enclosures) == (None, None, ())


def test_json_feed_character_references_in_plain_text_are_read() -> None:
    """WordPress writes titles and excerpts with character references for curly quotes
    (``It&#8217;s``; Kottke's and pxlnv's JSON Feeds), which the same site's RSS feed
    reads as characters: the JSON Feed showed them as written, and the same story had
    two titles. A bare ``&`` and what names no character stay as they are."""
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Kottke&#8217;s &amp; co",
            "description": "Links &amp; more",
            "items": [
                {
                    "id": "1",
                    "title": "It&#8217;s &#x201C;here&#x201D; &mdash; AT&T &bogus; R&D &#1;",
                    "summary": "Use &lt;div&gt; &amp; more&#8230;",
                    "content_text": "x",
                }
            ],
        }
    ).encode()
    parsed = parse_feed(body, URL)
    (entry,) = parsed.entries
    assert (parsed.title, parsed.description) == ("Kottke\u2019s & co", "Links & more")
    assert entry.title == "It\u2019s \u201chere\u201d \u2014 AT&T &bogus; R&D"
    assert entry.summary == "<p>Use &lt;div&gt; &amp; more\u2026</p>"


@pytest.mark.parametrize(
    ("feed", "item", "author"),
    [
        pytest.param({}, {"authors": [], "author": {"name": "Old"}}, "Old", id="item-empty"),
        pytest.param(
            {},
            {"authors": [{"url": "https://a.example/"}], "author": {"name": "Old"}},
            "Old",
            id="item-nameless",
        ),
        pytest.param({"authors": [], "author": {"name": "Feed"}}, {}, "Feed", id="feed-empty"),
        pytest.param(
            {"authors": [], "author": {"name": "Feed"}}, {"authors": []}, "Feed", id="both-empty"
        ),
        pytest.param(
            {}, {"authors": [{"name": "New"}], "author": {"name": "Old"}}, "New", id="new-wins"
        ),
    ],
)
def test_json_feed_empty_authors_fall_back_to_the_1_0_author(
    feed: dict[str, object], item: dict[str, object], author: str
) -> None:
    """A 1.1 feed that keeps 1.0's ``author`` for older readers, with ``authors`` empty
    (or naming no one), has its author in ``author``: an empty list named nobody, and the
    story had no author."""
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            **feed,
            "items": [{"id": "1", "title": "t", "content_text": "x", **item}],
        }
    ).encode()
    assert parse_feed(body, URL).entries[0].author == author


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2024-07-01T10:00:00-07:00", "2024-07-01T17:00:00+00:00"),
        ("2024-07-01t10:00:00z", "2024-07-01T10:00:00+00:00"),
        ("2024-07-01T10:00:00.123456789Z", "2024-07-01T10:00:00+00:00"),
        ("2024-07-01T10:00:00", "2024-07-01T10:00:00+00:00"),
        ("Mon, 01 Jul 2024 10:00:00 +0200", "2024-07-01T08:00:00+00:00"),
        ("not a date", None),
        ("", None),
        # the email module's int() of the year overflowed: OverflowError lost the feed
        ("Mon, 01 Jan 99999999999999999999 00:00:00 GMT", None),
        ("01 Jan 2024 99999999999999999999:00:00 GMT", None),
    ],
)
def test_json_feed_dates_become_utc(value: str, iso: str | None) -> None:
    body = json.dumps({"items": [{"id": "1", "title": "t", "date_published": value}]}).encode()
    published = parse_feed(body, URL).entries[0].published
    assert (published.isoformat() if published else None) == iso


# --- normalisation details ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "ttl"),
    [
        pytest.param("<ttl>30</ttl>", timedelta(minutes=30), id="ttl"),
        pytest.param("<ttl> 90 </ttl>", timedelta(minutes=90), id="ttl-spaces"),
        pytest.param("<ttl>0</ttl>", None, id="ttl-zero"),
        pytest.param("<ttl>soon</ttl>", None, id="ttl-garbage"),
        pytest.param("<sy:updatePeriod>hourly</sy:updatePeriod>", timedelta(hours=1), id="hourly"),
        pytest.param(
            "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>",
            timedelta(minutes=15),
            id="hourly/4",
        ),
        pytest.param("<sy:updatePeriod>Weekly</sy:updatePeriod>", timedelta(weeks=1), id="weekly"),
        pytest.param(
            "<sy:updatePeriod>yearly</sy:updatePeriod><sy:updateFrequency>x</sy:updateFrequency>",
            timedelta(days=365),
            id="yearly-bad-frequency",
        ),
        pytest.param("<sy:updatePeriod>fortnightly</sy:updatePeriod>", None, id="unknown"),
        pytest.param(
            "<ttl>10</ttl><sy:updatePeriod>daily</sy:updatePeriod>",
            timedelta(minutes=10),
            id="ttl-wins",
        ),
        pytest.param("", None, id="none"),
    ],
)
def test_ttl(channel: str, ttl: timedelta | None) -> None:
    ns = 'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"'
    parsed = parse_feed(rss("<item><title>x</title></item>", channel, namespaces=ns), URL)
    assert parsed.ttl == ttl


def test_dates_are_utc_and_missing_dates_are_none() -> None:
    items = (
        "<item><title>a</title><pubDate>Wed, 01 May 2024 14:00:00 +0930</pubDate></item>"
        "<item><title>b</title></item>"
        "<item><title>c</title><pubDate>not a date</pubDate></item>"
    )
    a, b, c = parse_feed(rss(items), URL).entries
    assert a.published is not None and a.published.utcoffset() == timedelta(0)
    assert a.published.isoformat() == "2024-05-01T04:30:00+00:00"
    assert b.published is None and b.updated is None
    assert c.published is None


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("Wed, 01 May 2024 14:00:00 CEST", "2024-05-01T12:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 cet", "2024-05-01T13:00:00+00:00"),
        ("Wed, 01 May 2024 14:00 IST", "2024-05-01T08:30:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 AEST", "2024-05-01T04:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 JST", "2024-05-01T05:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 BST", "2024-05-01T13:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 GMT+2", "2024-05-01T12:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 GMT-03:30", "2024-05-01T17:30:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 UTC+0545", "2024-05-01T08:15:00+00:00"),
        ("2024-05-01T14:00:00 CEST", "2024-05-01T12:00:00+00:00"),
        # RFC 822's names after an ISO date (PHP's "Y-m-d H:i:s T"): the zone was dropped,
        # and with a space before the time the time too (2024-05-01T00:00 for EDT's)
        ("2024-05-01 14:00:00 EDT", "2024-05-01T18:00:00+00:00"),
        ("2024-05-01T14:00:00 PDT", "2024-05-01T21:00:00+00:00"),
        ("2024-05-01 14:00:00 GMT", "2024-05-01T14:00:00+00:00"),
        # ISO 8601's basic offset (Java's "Z", PHP's "O"): feedparser read +0530 as +05:00
        ("2024-05-01T14:00:00+0530", "2024-05-01T08:30:00+00:00"),
        ("2024-05-01T14:00:00.000+0545", "2024-05-01T08:15:00+00:00"),
        ("2024-05-01 14:00:00 -0330", "2024-05-01T17:30:00+00:00"),
        # an offset of three digits, its hour unpadded: feedparser read -500 as -50 hours
        ("Wed, 01 May 2024 14:00:00 -500", "2024-05-01T19:00:00+00:00"),
        ("Wed, 01 May 2024 14:00 +530", "2024-05-01T08:30:00+00:00"),
        ("2024-05-01T14:00:00-700", "2024-05-01T21:00:00+00:00"),
        # ISO 8601's basic format (iCalendar's 20240501T140000Z): feedparser read only the
        # date, at midnight, dropping the time and the offset
        ("20240501T140000Z", "2024-05-01T14:00:00+00:00"),
        ("20240501T140000+0530", "2024-05-01T08:30:00+00:00"),
        ("20240501T1400-05", "2024-05-01T19:00:00+00:00"),
        ("20240501T140000", "2024-05-01T14:00:00+00:00"),
        ("20240501T140000 EDT", "2024-05-01T18:00:00+00:00"),
        ("20240501 14:00:00", "2024-05-01T14:00:00+00:00"),
        ("2024-05-01T140000-0330", "2024-05-01T17:30:00+00:00"),
        ("20240501", "2024-05-01T00:00:00+00:00"),
        # an offset with a colon after an RFC 822 date: the email module (JSON Feed) read
        # it as UTC; of the hour alone: feedparser found no date (after ISO's, it dropped
        # the offset) and the email module read +2 and +02 as two minutes
        ("Wed, 01 May 2024 14:00:00 +02:00", "2024-05-01T12:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 -3:30", "2024-05-01T17:30:00+00:00"),
        ("Wed, 01 May 2024 14:00:00+02:00", "2024-05-01T12:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 +02", "2024-05-01T12:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 +2", "2024-05-01T12:00:00+00:00"),
        ("Wed, 01 May 2024 14:00 -5", "2024-05-01T19:00:00+00:00"),
        ("2024-05-01T14:00:00-5", "2024-05-01T19:00:00+00:00"),
        ("2024-05-01 14:00:00 +10", "2024-05-01T04:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 +30", None),  # a day or more, as +3000 is
        # the year first, then month and day after "/" or "." (or 年月日): feedparser read
        # only the year, and the month from the clock; a time and zone read as after ISO's
        ("2024/05/01 14:00:00", "2024-05-01T14:00:00+00:00"),
        ("2024/5/1", "2024-05-01T00:00:00+00:00"),
        ("2024.05.01", "2024-05-01T00:00:00+00:00"),
        ("2024.05.01 14:00 CEST", "2024-05-01T12:00:00+00:00"),
        ("2024/05/01T14:00:00-03:30", "2024-05-01T17:30:00+00:00"),
        ("2024/05/01 14:00:00 +0530", "2024-05-01T08:30:00+00:00"),
        ("2024年5月1日", "2024-05-01T00:00:00+00:00"),
        ("2024/13/01", None),
        ("01/05/2024", None),  # day or month first: which is which is a guess, not a reading
        # a two-digit year is RFC 2822's (4.3): 00-49 is 20xx, 50-99 19xx; feedparser made
        # 50-89 20xx (then refused as future), the email module (JSON Feed) 50-68
        ("Wed, 01 May 75 14:00:00 GMT", "1975-05-01T14:00:00+00:00"),
        ("Wed, 01 May 89 14:00:00 +0200", "1989-05-01T12:00:00+00:00"),
        ("01 May 50 14:00 EST", "1950-05-01T19:00:00+00:00"),
        ("Wed, 01 May 99 14:00:00", "1999-05-01T14:00:00+00:00"),
        ("Wed, 01 May 24 14:00:00 GMT", "2024-05-01T14:00:00+00:00"),
        ("Wed, 01 May 49 14:00:00 GMT", None),  # 2049: later than the latest trusted
        # RFC 822's two-letter names (ET, PT...) as feedparser reads them: the email module
        # read them as UTC
        ("Wed, 01 May 2024 14:00:00 ET", "2024-05-01T19:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 PT", "2024-05-01T22:00:00+00:00"),
        ("2024-05-01 14:00:00 CT", "2024-05-01T20:00:00+00:00"),
        # RFC 822's own names and numeric offsets are unchanged; unknown names stay UTC.
        ("Wed, 01 May 2024 14:00:00 EDT", "2024-05-01T18:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 GMT", "2024-05-01T14:00:00+00:00"),
        ("Wed, 01 May 2024 14:00:00 XYZ", "2024-05-01T14:00:00+00:00"),
    ],
)
@pytest.mark.parametrize("form", ["rss", "rss-not-well-formed", "json"])
def test_zone_names_publishers_use(value: str, iso: str | None, form: str) -> None:
    if form == "json":
        body = json.dumps({"items": [{"id": "1", "title": "t", "date_published": value}]})
        parsed = parse_feed(body.encode(), URL)
    else:
        title = "a & b" if form == "rss-not-well-formed" else "a"  # the feedparser path
        item = f"<item><title>{title}</title><pubDate>{value}</pubDate></item>"
        parsed = parse_feed(rss(item), URL)
        assert ("not well-formed" in " ".join(parsed.warnings)) == (form != "rss")
    published = parsed.entries[0].published
    assert (published.isoformat() if published else None) == iso


def test_relative_links_without_any_base_resolve_against_the_feed_url() -> None:
    body = (
        b'<rss version="2.0"><channel><title>T</title>'
        b"<item><title>a</title><link>/p/1</link></item></channel></rss>"
    )
    assert parse_feed(body, "https://host.example/feeds/x.xml").entries[0].link == (
        "https://host.example/p/1"
    )


def test_content_is_the_longest_variant() -> None:
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
    <entry><title>x</title><id>1</id>
      <content type="html">&lt;p&gt;short&lt;/p&gt;</content>
      <content type="html">&lt;p&gt;the much longer body&lt;/p&gt;</content>
    </entry></feed>"""
    assert parse_feed(atom, URL).entries[0].content == "<p>the much longer body</p>"


def test_sanitised_links_get_rel_noopener() -> None:
    body = rss(
        "<item><title>x</title><description>&lt;a href='https://a.example/'"
        " rel='opener' target='_blank'&gt;a&lt;/a&gt;</description></item>"
    )
    summary = parse_feed(body, URL).entries[0].summary
    assert summary == '<a href="https://a.example/" rel="noopener noreferrer">a</a>'


def test_text_xml_without_charset_gives_no_encoding_warning() -> None:
    parsed = parse_feed(rss("<item><title>café</title></item>"), URL, content_type="text/xml")
    assert parsed.warnings == ()
    assert parsed.entries[0].title == "café"


def test_content_type_charset_is_used() -> None:
    body = '<rss version="2.0"><channel><title>Caf\xe9</title></channel></rss>'.encode("latin-1")
    parsed = parse_feed(body, URL, content_type="application/rss+xml; charset=iso-8859-1")
    assert parsed.title == "Café"


def test_hostile_feed_keeps_nothing_executable() -> None:
    parsed = parse_feed((FEEDS / "hostile.xml").read_bytes(), URL)
    dump = repr(parsed).lower()
    for needle in ("javascript", "vbscript", "data:", "<script", "onerror", "onmouseover",
                   "<iframe", "<form", "<input", "<svg", "style=", "alert("):  # fmt: skip
        assert needle not in dump, needle
    assert "mailto:abuse@example.com" in dump  # an allowed scheme survives


# --- html_to_text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        pytest.param("plain  text\n here", "plain text here", id="plain"),
        pytest.param("<p>One</p><p>Two <b>bold</b></p>", "One\nTwo bold", id="blocks"),
        pytest.param("a<br>b<br/>c", "a\nb\nc", id="br"),
        pytest.param("<ul><li>x</li><li>y</li></ul>", "x\ny", id="list"),
        pytest.param("AT&amp;T &lt;tag&gt; &#x2014; &eacute;", "AT&T <tag> — é", id="entities"),
        pytest.param("a<script>alert(1)</script>b<style>p{}</style>c", "abc", id="script"),
        pytest.param("a<!-- hidden -->b", "ab", id="comment"),
        pytest.param("<p>unclosed <b>bold<p>next", "unclosed bold\nnext", id="broken"),
        pytest.param("x&nbsp;&nbsp;y\u00a0z", "x y z", id="nbsp"),
        pytest.param("5 < 6 and 7 > 3", "5 < 6 and 7 > 3", id="bare-angle"),
        pytest.param("", "", id="empty"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("title", "text"),
    [
        # a <template>'s content is not shown (as in a browser), the text around it is
        pytest.param("&lt;template&gt;x&lt;/template&gt;Real title", "Real title", id="escaped"),
        pytest.param("<![CDATA[<template>x</template>Real title]]>", "Real title", id="cdata"),
        pytest.param("<![CDATA[<template><p>x</p></template>Real]]>", "Real", id="blocks"),
        pytest.param("<![CDATA[<TEMPLATE>x</Template >Real]]>", "Real", id="case"),
        # a <template> (or <script>...) never closed is a title naming the element, not
        # markup: everything after it was dropped ("Using the"), or the whole title, the
        # story then titled with its summary's first words
        pytest.param("<![CDATA[Using the <template> element]]>", "Using the element", id="open"),
        pytest.param("Real &lt;template&gt; title", "Real title", id="open-escaped"),
        pytest.param("&lt;template&gt;Real title", "Real title", id="open-first"),
        pytest.param("<![CDATA[Why <script> tags matter]]>", "Why tags matter", id="script"),
        pytest.param("<![CDATA[Styling <button type=x> well]]>", "Styling well", id="button"),
        pytest.param("<![CDATA[<template>a</template>b <template/> c]]>", "b c", id="both"),
    ],
)
@pytest.mark.parametrize("fast", [True, False])
def test_a_template_element_in_a_title(title: str, text: str, fast: bool) -> None:
    body = rss(f"<item><title>{title}</title><description>Summary words</description></item>")
    assert parse_feed(body, URL, fast=fast).entries[0].title == text
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><id>1</id>'
        f'<title type="html">{title}</title><summary>Summary words</summary></entry></feed>'
    ).encode()
    assert parse_feed(atom, URL).entries[0].title == text


# --- properties -----------------------------------------------------------------------------


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_raise_parse_error(body: bytes) -> None:
    try:
        parsed = parse_feed(body, URL)
    except ParseError:
        return
    assert isinstance(parsed, ParsedFeed)


_FIELD_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(max_examples=150, deadline=None)
@given(title=_FIELD_TEXT, link=_FIELD_TEXT, description=_FIELD_TEXT, date=_FIELD_TEXT)
def test_entry_invariants_hold_for_any_field_text(
    title: str, link: str, description: str, date: str
) -> None:
    from xml.sax.saxutils import escape

    item = (
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<description>{escape(description)}</description>"
        f"<pubDate>{escape(date)}</pubDate></item>"
    )
    try:
        parsed = parse_feed(rss(item), URL)
    except ParseError:
        return  # e.g. control characters make the XML unrecoverable
    for entry in parsed.entries:
        assert entry.title and "\n" not in entry.title and entry.title == entry.title.strip()
        assert entry.link is None or entry.link.startswith(("http://", "https://"))
        for value in (entry.published, entry.updated):
            assert value is None or value.utcoffset() == timedelta(0)
        for name in (f.name for f in fields(entry)):
            assert "<script" not in repr(getattr(entry, name)).lower()


# --- characters: valid Unicode, XML 1.0 characters only --------------------------------------

# What XML 1.0 (§2.2) forbids, lone surrogates included: no string parse_feed returns holds one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, tuple):
        for v in value:
            yield from _strings(v)
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _strings(getattr(value, f.name))


def assert_clean(parsed: ParsedFeed) -> None:
    for s in _strings(parsed):
        assert _NOT_XML.search(s) is None, s
        s.encode("utf-8")  # what the store does; a surrogate raises here


def json_feed(**item: object) -> bytes:
    # ensure_ascii (the default) writes a lone surrogate as the escape "\ud800", as publishers do
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [item]}).encode()


@pytest.mark.parametrize("field", ["title", "summary", "content_text", "content_html"])
def test_json_lone_surrogate_becomes_replacement_character(field: str) -> None:
    item: dict[str, object] = {"id": "1", "title": "T", field: "a \ud800 b \udfff"}
    parsed = parse_feed(json_feed(**item), URL)
    assert_clean(parsed)
    (entry,) = parsed.entries
    value = {"title": entry.title, "summary": entry.summary}.get(field, entry.content)
    assert value is not None and "a \ufffd b \ufffd" in value


def test_json_every_string_field_is_cleaned() -> None:
    bad = "x\ud800\x01\x0b\ufffe\uffff\x00y"
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": bad,
            "description": bad,
            "home_page_url": "https://site.example/\x01\ud800",
            "authors": [{"name": bad}],
            "items": [
                {
                    "id": bad,
                    "url": "https://site.example/p\x01/\ud800",
                    "title": bad,
                    "summary": bad,
                    "content_html": f"<p title='{bad}'>{bad} &#1; &#xd800; &#xFFFE;</p>",
                    "tags": [bad, "ok\x02"],
                    "authors": [{"name": bad}],
                    "attachments": [{"url": "https://cdn.example/a\x01.mp3"}],
                },
            ],
        }
    ).encode()
    parsed = parse_feed(body, URL)
    assert_clean(parsed)
    (entry,) = parsed.entries
    assert parsed.title == "x\ufffdy" and entry.title == "x\ufffdy"
    assert (entry.guid, entry.author, entry.categories) == (
        "x\ufffdy",
        "x\ufffdy",
        ("x\ufffdy", "ok"),
    )
    assert (parsed.link, entry.link) == (
        "https://site.example/\ufffd",
        "https://site.example/p/\ufffd",
    )
    assert entry.enclosures == ("https://cdn.example/a.mp3",)
    assert entry.content == '<p title="x\ufffdy">x\ufffdy  \ufffd </p>'


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize(
    "ref",
    [
        "&#xd800;",
        "&#xDFFF;",
        "&#55296;",
        "&#x0000d800;",
        "&#x110000;",
        "&#99999999;",
        "&#" + "9" * 5000 + ";",  # past int()'s 4,300-digit limit
    ],
    ids=lambda ref: ref[:12],
)
def test_xml_reference_to_no_character_keeps_the_feed(ref: str, fast: bool) -> None:
    # feedparser's recovering parser raised UnicodeEncodeError on these: the feed was lost.
    body = rss(
        f"<item><title>A {ref} B</title><link>https://site.example/a</link>"
        f"<description>d {ref} e</description><category>c{ref}</category></item>"
        "<item><title>Second</title></item>"
    )
    parsed = parse_feed(body, URL, fast=fast)
    assert_clean(parsed)
    first, second = parsed.entries
    assert (first.title, first.summary, first.categories) == (
        "A \ufffd B",
        "d \ufffd e",
        ("c\ufffd",),
    )
    assert second.title == "Second"


def test_a_reference_inside_cdata_html_is_decoded_to_a_valid_character() -> None:
    body = rss("<item><title>t</title><description><![CDATA[<p>a &#xd800; &#1; b</p>]]>"
               "</description></item>")  # fmt: skip
    (entry,) = parse_feed(body, URL).entries
    assert entry.summary == "<p>a \ufffd  b</p>"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize("ref", ["&#x1;", "&#0;", "&#x8;", "&#x1F;", "&#xFFFE;", "&#xFFFF;"])
def test_xml_control_characters_are_dropped(ref: str, fast: bool) -> None:
    dc = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
    body = rss(
        f"<item><title>Registry {ref}update</title><link>https://site.example/a{ref}</link>"
        f"<guid isPermaLink='false'>g{ref}1</guid><dc:creator>Ann{ref}</dc:creator>"
        f"<category>DNS{ref}</category><description>Body {ref}text &amp;#1;</description>"
        "</item>",
        namespaces=dc,
    )
    parsed = parse_feed(body, URL, fast=fast)
    assert_clean(parsed)
    (entry,) = parsed.entries
    assert (entry.title, entry.guid, entry.author, entry.categories) == (
        "Registry update",
        "g1",
        "Ann",
        ("DNS",),
    )
    assert entry.summary == "Body text"
    assert entry.link == "https://site.example/a"


def test_atom_plain_text_and_xhtml_are_cleaned() -> None:
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">
    <title>Feed &#x1;title</title><author><name>N&#x2;</name></author>
    <entry><title type="text">a &#x1;&lt;b&gt;</title><id>urn:1&#xd800;</id>
      <summary type="text">s &#x7;one</summary>
      <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>c &#x3;</p></div></content>
    </entry></feed>"""
    parsed = parse_feed(atom, URL)
    assert_clean(parsed)
    (entry,) = parsed.entries
    assert (parsed.title, entry.title, entry.guid, entry.author) == (
        "Feed title",
        "a <b>",
        "urn:1\ufffd",
        "N",
    )
    assert entry.summary == "<p>s one</p>"


def test_html_to_text_leaves_only_xml_characters() -> None:
    assert html_to_text("a\x01b \ud800 &#1;c&#xd800;") == "ab \ufffd c\ufffd"
    assert html_to_text("<p>x\x01y\x0cw &#xFFFE;z</p>") == "xy w z"  # U+000C: whitespace
    assert html_to_text("<p>\ud800</p>") == "\ufffd"  # nh3 refuses it: cleaned, retried


_ANY_TEXT = st.text(max_size=60)  # surrogates and control characters included


@settings(max_examples=150, deadline=None)
@given(title=_ANY_TEXT, summary=_ANY_TEXT, html=_ANY_TEXT, tag=_ANY_TEXT)
def test_any_json_string_gives_only_valid_characters(
    title: str, summary: str, html: str, tag: str
) -> None:
    item = {"id": title, "title": title, "summary": summary, "content_html": html, "tags": [tag]}
    assert_clean(parse_feed(json_feed(**item), URL))


@settings(max_examples=150, deadline=None)
@given(codes=st.lists(st.integers(min_value=0, max_value=0x11_0000), min_size=1, max_size=8))
def test_any_character_reference_parses_cleanly_or_raises_parse_error(codes: list[int]) -> None:
    refs = "".join(f"&#{c};" if i % 2 else f"&#x{c:x};" for i, c in enumerate(codes))
    for fast in (True, False):
        try:
            parsed = parse_feed(rss(f"<item><title>t{refs}</title></item>"), URL, fast=fast)
        except ParseError:
            continue
        assert_clean(parsed)


# --- dates in the future --------------------------------------------------------------------

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pub_date", "trusted"),
    [
        pytest.param("Fri, 01 Jan 2099 00:00:00 GMT", False, id="2099"),
        pytest.param("Sun, 29 Nov 2026 13:00:00 GMT", False, id="25h-ahead"),
        pytest.param("Sun, 29 Nov 2026 11:00:00 GMT", True, id="23h-ahead"),
        pytest.param("Sat, 28 Nov 2026 12:00:00 GMT", True, id="now"),
        pytest.param("Sat, 01 Jan 2000 00:00:00 GMT", True, id="past"),
    ],
)
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_a_date_more_than_a_day_ahead_is_not_trusted(
    pub_date: str, trusted: bool, fast: bool
) -> None:
    body = rss(f"<item><title>t</title><pubDate>{pub_date}</pubDate></item>")
    (entry,) = parse_feed(body, URL, now=NOW, fast=fast).entries
    assert (entry.published is not None) is trusted
    assert entry.published is None or entry.published <= NOW + FUTURE_SLACK


def test_an_untrusted_published_falls_back_to_a_trusted_updated() -> None:
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
    <entry><title>a</title><id>1</id><published>2099-01-01T00:00:00Z</published>
      <updated>2026-11-27T10:00:00Z</updated></entry>
    <entry><title>b</title><id>2</id><updated>2098-01-01T00:00:00Z</updated></entry>
    </feed>"""
    a, b = parse_feed(atom, URL, now=NOW).entries
    assert a.published == a.updated == datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert (b.published, b.updated) == (None, None)


def test_json_feed_future_dates_are_not_trusted() -> None:
    body = json_feed(
        id="1",
        title="t",
        date_published="2099-01-01T00:00:00Z",
        date_modified="2099-01-02T00:00:00Z",
    )
    (entry,) = parse_feed(body, URL, now=NOW).entries
    assert (entry.published, entry.updated) == (None, None)
    body = json_feed(id="1", title="t", date_published="2026-11-29T11:00:00Z")
    (entry,) = parse_feed(body, URL, now=NOW).entries
    assert entry.published == datetime(2026, 11, 29, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        # W3C-DTF's partial dates, as feedparser reads them for RSS and Atom: the first day
        # of the month or of the year, UTC (the JSON Feed reader found no date in them)
        ("2024-05", "2024-05-01T00:00:00+00:00"),
        ("2024-5", "2024-05-01T00:00:00+00:00"),
        (" 2024-12 ", "2024-12-01T00:00:00+00:00"),
        ("2024", "2024-01-01T00:00:00+00:00"),
        ("2026-11", "2026-11-01T00:00:00+00:00"),
        # later than the latest trusted (NOW + a day): no date, as for a full date
        ("2026-12", None),
        ("2027", None),
        ("0000", None),
    ],
)
@pytest.mark.parametrize("form", ["rss", "atom", "json"])
def test_partial_w3cdtf_dates_read_alike_in_every_format(
    value: str, iso: str | None, form: str
) -> None:
    if form == "json":
        body = json_feed(id="1", title="t", date_published=value, date_modified=value)
    elif form == "atom":
        body = (
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><title>t</title>'
            f"<id>1</id><published>{value}</published><updated>{value}</updated></entry></feed>"
        ).encode()
    else:
        dc = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
        body = rss(f"<item><title>t</title><dc:date>{value}</dc:date></item>", namespaces=dc)
    (entry,) = parse_feed(body, URL, now=NOW).entries
    published, updated = (d.isoformat() if d else None for d in (entry.published, entry.updated))
    assert (published, updated) == (iso, iso)


def _dated_in(form: str, value: str) -> tuple[str | None, str | None]:
    """The published and updated dates (ISO) of an item dated ``value`` in ``form``:
    RSS's ``dc:date`` on the fast path or feedparser's, Atom, or JSON Feed."""
    if form == "json":
        body = json_feed(id="1", title="t", date_published=value, date_modified=value)
    elif form == "atom":
        body = (
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><title>t</title>'
            f"<id>1</id><published>{value}</published><updated>{value}</updated></entry></feed>"
        ).encode()
    else:
        dc = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
        body = rss(f"<item><title>t</title><dc:date>{value}</dc:date></item>", namespaces=dc)
    (entry,) = parse_feed(body, URL, now=NOW, fast=form != "rss-feedparser").entries
    published, updated = (d.isoformat() if d else None for d in (entry.published, entry.updated))
    return published, updated


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        # an impossible month, day, hour, minute or day of the year is no date: feedparser's
        # ISO 8601 reader moved it (2024-13 was 2025-01-01, 2024-02-30 March 1st), as the
        # JSON Feed reader did not
        pytest.param("2024-13", None, id="month-13"),
        pytest.param("2024-00", None, id="month-0"),
        pytest.param("2024-13-01", None, id="month-13-day"),
        pytest.param("2024-00-10", None, id="month-0-day"),
        pytest.param("2024-02-30", None, id="feb-30"),
        pytest.param("2023-02-29", None, id="feb-29-not-leap"),
        pytest.param("2024-06-00", None, id="day-0"),
        pytest.param("2024-06-32", None, id="day-32"),
        pytest.param("2024-04-31T10:00:00Z", None, id="apr-31-time"),
        pytest.param("20240230T100000Z", None, id="basic-feb-30"),
        pytest.param("2024-06-15T25:00:00Z", None, id="hour-25"),
        pytest.param("2024-06-15T25:00Z", None, id="hour-25-no-seconds"),
        pytest.param("2024-06-15 25:00:00", None, id="hour-25-space"),
        pytest.param("2024-01-1T25:00:00Z", None, id="hour-25-one-digit-day"),
        pytest.param("2024-01-1 24:00:00", None, id="hour-24-one-digit-day-space"),
        pytest.param("2024-06-15T24:00:00Z", None, id="hour-24"),
        pytest.param("2024-06-15T10:61:00Z", None, id="minute-61"),
        pytest.param("2024-06-15T10:00:61Z", None, id="second-61"),
        pytest.param("2024-Q1", None, id="quarter"),
        # ISO 8601's week dates: Monday of the week (or the day given), UTC; the 1st of the
        # current month before
        pytest.param("2024-W10", "2024-03-04T00:00:00+00:00", id="week"),
        pytest.param("2024W10", "2024-03-04T00:00:00+00:00", id="week-basic"),
        pytest.param("2024-W10-3", "2024-03-06T00:00:00+00:00", id="week-day"),
        pytest.param("2024-W10-3T10:00:00+02:00", "2024-03-06T08:00:00+00:00", id="week-time"),
        pytest.param("2020-W53", "2020-12-28T00:00:00+00:00", id="week-53"),
        pytest.param("2024-W53", None, id="week-53-none"),
        pytest.param("2024-W00", None, id="week-0"),
        pytest.param("2024-W10-8", None, id="week-day-8"),
        # still read: a leap day, the last day of a month, a leap second, an RFC 822 date
        pytest.param("2024-02-29", "2024-02-29T00:00:00+00:00", id="leap-day"),
        pytest.param("2024-04-30T23:59:59Z", "2024-04-30T23:59:59+00:00", id="apr-30"),
        pytest.param("2016-12-31T23:59:60Z", "2017-01-01T00:00:00+00:00", id="leap-second"),
        pytest.param("Sat, 15 Jun 2024 10:00:00 GMT", "2024-06-15T10:00:00+00:00", id="rfc822"),
        # impossible RFC 822 dates were no date already, on every path
        pytest.param("Wed, 31 Apr 2024 10:00:00 GMT", None, id="rfc822-apr-31"),
        pytest.param("Sat, 15 Jun 2024 25:00:00 GMT", None, id="rfc822-hour-25"),
    ],
)
@pytest.mark.parametrize("form", ["rss-fast", "rss-feedparser", "atom", "json"])
def test_impossible_and_week_dates_read_alike_in_every_format(
    value: str, iso: str | None, form: str
) -> None:
    assert _dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        # fractions of a second: feedparser reads whole seconds, and so does JSON Feed now
        # (it kept them: one story, two dates a fraction apart)
        pytest.param("2024-06-15T10:00:00.5Z", "2024-06-15T10:00:00+00:00", id="fraction"),
        pytest.param("2024-06-15T10:00:00.999999Z", "2024-06-15T10:00:00+00:00", id="fraction-9"),
        pytest.param(
            "2024-06-15T10:00:00.123456789+02:00", "2024-06-15T08:00:00+00:00", id="nanoseconds"
        ),
        # a fraction written with a comma, as ISO 8601 allows: feedparser dropped the offset
        # after it (10:00 UTC, two hours off) or, after a space, the time (midnight); an
        # offset of the hour alone after a fraction was no date in JSON Feed
        pytest.param("2024-06-15T10:00:00,5+02:00", "2024-06-15T08:00:00+00:00", id="comma"),
        pytest.param("2024-06-15T10:00:00,5Z", "2024-06-15T10:00:00+00:00", id="comma-z"),
        pytest.param("2024-06-15T10:00:00,5+0200", "2024-06-15T08:00:00+00:00", id="comma-basic"),
        pytest.param("2024-06-15T10:00:00,5+02", "2024-06-15T08:00:00+00:00", id="comma-hour"),
        pytest.param("2024-06-15T10:00:00,5 +0200", "2024-06-15T08:00:00+00:00", id="comma-sp"),
        pytest.param("2024-06-15T10:00:00,5 CEST", "2024-06-15T08:00:00+00:00", id="comma-cest"),
        pytest.param("2024-06-15 10:00:00,5+02:00", "2024-06-15T08:00:00+00:00", id="comma-space"),
        pytest.param("2024-06-15 10:00:00,5", "2024-06-15T10:00:00+00:00", id="comma-no-zone"),
        pytest.param("2024-06-15T10:00:00.5+02:00", "2024-06-15T08:00:00+00:00", id="dot"),
        pytest.param("2024-06-15T10:00:00.5+0200", "2024-06-15T08:00:00+00:00", id="dot-basic"),
        pytest.param("2024-06-15T10:00:00.5+02", "2024-06-15T08:00:00+00:00", id="dot-hour"),
        pytest.param("2024-06-15T10:00:00.5-3:30", "2024-06-15T13:30:00+00:00", id="dot-h-mm"),
        # a month or day of one digit, as publishers write them (feedparser reads them;
        # JSON Feed found no date)
        pytest.param("2024-6-15", "2024-06-15T00:00:00+00:00", id="one-digit-month"),
        pytest.param("2024-01-1", "2024-01-01T00:00:00+00:00", id="one-digit-day"),
        pytest.param("2024-6-15T10:00:00Z", "2024-06-15T10:00:00+00:00", id="one-digit-z"),
        pytest.param("2024-6-5 10:00:00", "2024-06-05T10:00:00+00:00", id="one-digit-space"),
        pytest.param("2024-6-15T10:00:00+02:00", "2024-06-15T08:00:00+00:00", id="one-digit-tz"),
        pytest.param("2024-6-15T10:00:00 CEST", "2024-06-15T08:00:00+00:00", id="one-digit-cest"),
        pytest.param("2024-6-15T10:00:00,5+02", "2024-06-15T08:00:00+00:00", id="one-digit-frac"),
        pytest.param("2024-2-30", None, id="one-digit-feb-30"),
        pytest.param("2024-2-3T25:00:00Z", None, id="one-digit-hour-25"),
        # ISO 8601's ordinal dates, the day of the year: feedparser read the day as a month
        # (2024-012 was December 1st, 2024-100 no date), JSON Feed found no date
        pytest.param("2024-001", "2024-01-01T00:00:00+00:00", id="ordinal-1"),
        pytest.param("2024-012", "2024-01-12T00:00:00+00:00", id="ordinal-12"),
        pytest.param("2024-166T10:00:00+02:00", "2024-06-14T08:00:00+00:00", id="ordinal-time"),
        pytest.param("2024-366", "2024-12-31T00:00:00+00:00", id="ordinal-366-leap"),
        pytest.param("2023-366", None, id="ordinal-366"),
        pytest.param("2024-000", None, id="ordinal-0"),
        pytest.param("2024-367", None, id="ordinal-367"),
        pytest.param("2024-400T10:00:00Z", None, id="ordinal-400-time"),
        # a time after a year, or a year and month: no day is named (ISO 8601 and W3C-DTF
        # put a time only after a full date); feedparser made it the 1st, JSON Feed found
        # no date, as every format finds none now
        pytest.param("2024-01T10:00:00Z", None, id="month-time"),
        pytest.param("2024-1T10:00:00+02:00", None, id="one-digit-month-time"),
        pytest.param("2024-01 10:00", None, id="month-space-time"),
        pytest.param("2024T10:00:00Z", None, id="year-time"),
        pytest.param("2024-01T10Z", None, id="month-hour"),
    ],
)
@pytest.mark.parametrize("form", ["rss-fast", "rss-feedparser", "atom", "json"])
def test_iso_dates_read_alike_in_every_format(value: str, iso: str | None, form: str) -> None:
    assert _dated_in(form, value) == (iso, iso)


def test_json_feed_partial_date_modified_alone_dates_the_item() -> None:
    (entry,) = parse_feed(json_feed(id="1", title="t", date_modified="2024-05"), URL).entries
    assert entry.published == entry.updated == datetime(2024, 5, 1, tzinfo=UTC)


def test_the_wall_clock_is_the_default_now() -> None:
    body = rss("<item><title>t</title><pubDate>Fri, 01 Jan 2999 00:00:00 GMT</pubDate></item>")
    assert parse_feed(body, URL).entries[0].published is None


# Any JSON value where a JSON Feed has a field: the wrong type, nesting, numbers of any
# size, empty containers. A publisher's mistake is skipped or read as far as it makes
# sense, never an exception other than ParseError (which refuses the whole document).
_JSON_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "x", "https://example.org/a", "/rel", "2025-06-03T09:05:00Z", "\ud800"])
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_JSON_FEED_KEYS = ["version", "title", "home_page_url", "description", "author", "authors"]
_JSON_ITEM_KEYS = [
    *("id", "url", "external_url", "title", "content_html", "content_text", "summary"),
    *("date_published", "date_modified", "author", "authors", "tags", "attachments"),
]
_PERSON_OR_ATTACHMENT = st.dictionaries(
    st.sampled_from(["name", "url", "mime_type", "size_in_bytes", "title", "avatar"]),
    _JSON_ANY,
    max_size=4,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    feed=st.dictionaries(st.sampled_from(_JSON_FEED_KEYS), _JSON_ANY, max_size=4),
    items=st.lists(
        st.dictionaries(
            st.sampled_from(_JSON_ITEM_KEYS),
            _JSON_ANY | st.lists(_PERSON_OR_ATTACHMENT, max_size=2),
            max_size=7,
        )
        | _JSON_ANY,
        max_size=3,
    ),
)
def test_any_json_value_in_any_json_feed_field_parses_or_is_refused(
    feed: dict[str, object], items: list[object]
) -> None:
    from aggregator.dedupe import story_drafts

    body = json.dumps({**feed, "items": items}).encode()
    try:
        parsed = parse_feed(body, URL, content_type="application/feed+json")
    except ParseError:
        return
    assert_clean(parsed)
    assert len(story_drafts(parsed)) <= len(items)
