"""Feed parsing and date bugs found in session 28: each test is a user-visible failure
that was fixed, checked on the lxml fast path and feedparser's, Atom and JSON Feed where
the format carries it, and once through the real pipeline (a local HTTP server, a SQLite
file) where what is stored is the point."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_parse_s27 import NOW, URL, dated_in, json_feed

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.parse import parse_feed
from aggregator.types import StoryQuery

FORMS = ["rss-fast", "rss-feedparser", "atom", "json"]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    s = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, extract=False, timeout_s=3
    )
    with make_app(s, now=lambda: NOW) as a:
        yield a


def rss_item(item: str, namespaces: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"{namespaces}><channel><title>T</title>'
        f"<link>https://blog.example.org/</link>{item}</channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        # PHP's "Y-m-d H:i:s e" (the zone's identifier), winter and summer time
        pytest.param("2024-03-01 10:00 Europe/Berlin", "2024-03-01T09:00:00+00:00", id="cet"),
        pytest.param("2024-07-01 10:00:00 Europe/Berlin", "2024-07-01T08:00:00+00:00", id="cest"),
        pytest.param(
            "2024-03-01T10:00:00 America/New_York", "2024-03-01T15:00:00+00:00", id="iso-t"
        ),
        pytest.param(
            "Fri, 01 Mar 2024 10:00:00 America/Los_Angeles",
            "2024-03-01T18:00:00+00:00",
            id="rfc822",
        ),
        pytest.param(
            "2024-03-01 10:00 America/Argentina/Buenos_Aires",
            "2024-03-01T13:00:00+00:00",
            id="three-parts",
        ),
        pytest.param("2024-03-01 10:00 Asia/Kolkata", "2024-03-01T04:30:00+00:00", id="kolkata"),
        # RFC 9557's brackets without an offset before them
        pytest.param("2024-07-01T10:00:00[Europe/Paris]", "2024-07-01T08:00:00+00:00", id="bare"),
        # an offset says it already; the name after it changes nothing
        pytest.param(
            "2024-07-01T10:00:00+02:00 Europe/Berlin", "2024-07-01T08:00:00+00:00", id="offset"
        ),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_an_iana_zone_name_is_read_at_its_offset_on_that_day(
    value: str, iso: str, form: str
) -> None:
    # RSS and Atom read "Europe/Berlin" as UTC (an hour or two off, America/* five to
    # eight), the JSON Feed reader found no date at all.
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-01 10:00 " + "a/" * 2000 + "b",  # zoneinfo imported a module per part
        "2024-03-01 10:00 Europe/" + "B" * 5000,
        "2024-03-01 10:00 America/Argentina",  # a directory of the zone database
        "2024-03-01 10:00 ../../etc/passwd",
    ],
    ids=["many-parts", "long-part", "directory", "path"],
)
@pytest.mark.parametrize("form", FORMS)
def test_a_hostile_zone_name_is_no_zone(value: str, form: str) -> None:
    dated_in(form, value)  # parses, whatever it reads


@pytest.mark.parametrize("form", FORMS)
def test_an_unknown_zone_name_with_a_slash_stays_as_before(form: str) -> None:
    # not a zone the system knows: read as before (UTC for RSS and Atom)
    expected = {"json": (None, None)}.get(form, ("2024-03-01T10:00:00+00:00",) * 2)
    assert dated_in(form, "2024-03-01 10:00 Mars/Olympus_Mons") == expected


def test_a_story_dated_in_an_iana_zone_is_stored_at_its_utc_time(
    app: App, server: LocalServer
) -> None:
    # through the poll: fetched from a real server, parsed in the worker, stored in SQLite
    item = (
        "<item><title>Registry news</title><link>https://blog.example.org/a</link>"
        "<pubDate>2024-07-01 10:00:00 Europe/Berlin</pubDate></item>"
    )
    app.add_feed(server.route("/feed", body=rss_item(item)), discover=False)
    (result,) = app.update_due()
    assert result.status == "ok" and result.new == 1
    (story,) = app.stories(StoryQuery(limit=10))
    assert story.published == datetime(2024, 7, 1, 8, tzinfo=UTC)


DCTERMS = ' xmlns:dcterms="http://purl.org/dc/terms/"'


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize(
    ("dates", "published", "updated"),
    [
        pytest.param(
            "<dcterms:created>2024-03-01T10:00:00Z</dcterms:created>",
            "2024-03-01T10:00:00+00:00",
            None,
            id="created-alone",
        ),
        pytest.param(
            "<dcterms:modified>2024-03-05T10:00:00Z</dcterms:modified>"
            "<dcterms:created>2024-03-01T10:00:00Z</dcterms:created>",
            "2024-03-01T10:00:00+00:00",
            "2024-03-05T10:00:00+00:00",
            id="created-before-modified",
        ),
        pytest.param(
            "<dcterms:created>2024-03-01T10:00:00Z</dcterms:created>"
            "<pubDate>Sat, 02 Mar 2024 10:00:00 GMT</pubDate>",
            "2024-03-02T10:00:00+00:00",
            None,
            id="pubdate-first",
        ),
        pytest.param(
            "<dcterms:created>2099-03-01T10:00:00Z</dcterms:created>",
            None,
            None,
            id="future-untrusted",
        ),
    ],
)
def test_dcterms_created_dates_an_item(
    dates: str, published: str | None, updated: str | None, fast: bool
) -> None:
    # an item dated only by dcterms:created (Dublin Core feeds of repositories and
    # libraries) had no date, and sorted by when it was first seen; beside
    # dcterms:modified, the item was dated by its last edit
    body = rss_item(
        f"<item><title>t</title><link>https://blog.example.org/a</link>{dates}</item>", DCTERMS
    )
    (entry,) = parse_feed(body, URL, now=NOW, fast=fast).entries
    got = tuple(d.isoformat() if d else None for d in (entry.published, entry.updated))
    assert got == (published, updated)


def test_atom_03_created_dates_an_entry() -> None:
    # Atom 0.3's <created> and <modified> (feedparser reads that version; the fast path
    # leaves it to feedparser)
    body = (
        b'<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>T</title>'
        b"<entry><title>t</title><id>1</id><modified>2024-03-05T10:00:00Z</modified>"
        b"<created>2024-03-01T10:00:00Z</created></entry></feed>"
    )
    (entry,) = parse_feed(body, URL, now=NOW).entries
    assert entry.published == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert entry.updated == datetime(2024, 3, 5, 10, tzinfo=UTC)


DC = ' xmlns:dc="http://purl.org/dc/elements/1.1/"'


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize(
    ("authors", "shown"),
    [
        # WordPress's Co-Authors Plus writes one dc:creator per author
        pytest.param(
            "<dc:creator>Ann Lee</dc:creator><dc:creator>Bo Ng</dc:creator>",
            "Ann Lee, Bo Ng",
            id="two-creators",
        ),
        pytest.param(
            "<dc:creator>Ann Lee</dc:creator><dc:creator>Bo Ng</dc:creator>"
            "<dc:creator>Ann Lee</dc:creator>",
            "Ann Lee, Bo Ng",
            id="repeated",
        ),
        pytest.param(
            "<author>cy@example.com (Cy Dee)</author><dc:creator>Cy Dee</dc:creator>",
            "Cy Dee",
            id="same-person-twice",
        ),
        pytest.param(
            "<author>cy@example.com (Cy Dee)</author><dc:creator>Ann Lee</dc:creator>",
            "Cy Dee, Ann Lee",
            id="author-and-creator",
        ),
        pytest.param(
            "<dc:creator>Ann Lee</dc:creator><dc:creator></dc:creator>", "Ann Lee", id="empty"
        ),
        pytest.param(
            "<dc:creator>editor@example.com</dc:creator><dc:creator>Bo Ng</dc:creator>",
            "editor@example.com, Bo Ng",
            id="address-only",
        ),
        pytest.param(
            "<dc:creator>Ann Lee</dc:creator><author>bo@example.museum (Bo Ng)</author>",
            "Ann Lee, Bo Ng",
            id="long-tld-last",
        ),
        pytest.param(
            "<author>bo@news.online (Bo Ng)</author><dc:creator>Ann Lee</dc:creator>",
            "Bo Ng, Ann Lee",
            id="long-tld-first",
        ),
    ],
)
def test_every_author_of_an_rss_item_is_kept(authors: str, shown: str, fast: bool) -> None:
    # only the last of an item's authors was kept: a story by two people was credited to
    # the second alone
    body = rss_item(
        f"<item><title>t</title><link>https://blog.example.org/a</link>{authors}</item>", DC
    )
    (entry,) = parse_feed(body, URL, now=NOW, fast=fast).entries
    assert entry.author == shown


def atom(entry: str, feed: str = "", base: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"{base}><title>Planet</title>'
        "<id>urn:planet</id><updated>2024-03-01T10:00:00Z</updated>"
        f'<link href="https://planet.example.org/"/>{feed}'
        f"<entry><title>t</title><id>urn:e1</id><updated>2024-03-01T10:00:00Z</updated>{entry}"
        "</entry></feed>"
    ).encode()


SOURCE = (
    "<source><id>urn:blog</id><title>Ann's blog</title>"
    '<link href="https://ann.example.org/"/><author><name>Ann Lee</name></author></source>'
)


@pytest.mark.parametrize(
    ("entry", "feed", "shown"),
    [
        # RFC 4287 4.2.1: an entry's own authors, else its source's, else the feed's
        pytest.param(SOURCE, "<author><name>Planet Team</name></author>", "Ann Lee", id="source"),
        pytest.param(SOURCE, "", "Ann Lee", id="source-no-feed-author"),
        pytest.param(
            f"<author><name>Bo Ng</name></author>{SOURCE}",
            "<author><name>Planet Team</name></author>",
            "Bo Ng",
            id="own-first",
        ),
        pytest.param(
            "<source><id>urn:blog</id><title>Blog</title></source>",
            "<author><name>Planet Team</name></author>",
            "Planet Team",
            id="source-without-author",
        ),
    ],
)
def test_an_atom_entry_without_authors_is_credited_to_its_sources(
    entry: str, feed: str, shown: str
) -> None:
    # a planet (an aggregated Atom feed) names each post's author in its <source>: every
    # post was credited to the planet's own author, or to no one
    (parsed,) = parse_feed(atom(entry, feed), URL, now=NOW).entries
    assert parsed.author == shown


@pytest.mark.parametrize(
    ("entry", "base", "link"),
    [
        pytest.param(
            '<content type="text/html" src="https://ann.example.org/post/1"/>',
            "",
            "https://ann.example.org/post/1",
            id="absolute",
        ),
        pytest.param(
            '<content type="text/html" src="/post/1"/>',
            "",
            "https://feeds.example.org/post/1",
            id="relative-to-the-feed",
        ),
        pytest.param(
            '<content type="text/html" src="post/1" xml:base="https://ann.example.org/blog/"/>',
            "",
            "https://ann.example.org/blog/post/1",
            id="its-xml-base",
        ),
        pytest.param(
            '<content type="text/html" src="post/1"/>',
            ' xml:base="https://ann.example.org/b/"',
            "https://ann.example.org/b/post/1",
            id="the-feed-xml-base",
        ),
        # an alternate link says where the entry is: it comes first
        pytest.param(
            '<link href="https://ann.example.org/post/1.html"/>'
            '<content type="application/pdf" src="https://ann.example.org/post/1.pdf"/>',
            "",
            "https://ann.example.org/post/1.html",
            id="alternate-first",
        ),
        pytest.param(
            '<content type="text/html" src="javascript:alert(1)"/>', "", None, id="not-http"
        ),
    ],
)
def test_atom_content_src_is_the_link_of_an_entry_without_one(
    entry: str, base: str, link: str | None
) -> None:
    # RFC 4287 4.1.3.2: out-of-line content lives at its src, and an entry with content
    # needs no alternate link. Such an entry had no link, nor any text: a story nobody
    # could open.
    (parsed,) = parse_feed(atom(entry, base=base), URL, now=NOW).entries
    assert parsed.link == link


@pytest.mark.parametrize(
    ("item", "link"),
    [
        pytest.param(
            {"id": "https://blog.example.org/p/1"}, "https://blog.example.org/p/1", id="url-id"
        ),
        pytest.param(
            {"id": "https://blog.example.org/p/1", "url": "https://blog.example.org/p/1.html"},
            "https://blog.example.org/p/1.html",
            id="url-first",
        ),
        pytest.param(
            {"id": "https://blog.example.org/p/1", "external_url": "https://news.example/a"},
            "https://news.example/a",
            id="external-url-first",
        ),
        # not an address: no link is made of it
        pytest.param({"id": "1"}, None, id="number"),
        pytest.param({"id": "/p/1"}, None, id="relative"),
        pytest.param({"id": "urn:uuid:0f6c3a64-52a4-4a02-9b1e-2f4bd0f1c5aa"}, None, id="urn"),
        pytest.param({"id": "javascript:alert(1)"}, None, id="script"),
        pytest.param({"id": "http://[::1/p/1"}, None, id="bad-ipv6"),
    ],
)
def test_a_json_feed_item_id_that_is_an_http_url_is_its_link_when_it_has_none(
    item: dict[str, str], link: str | None
) -> None:
    # JSON Feed: "Ideally, the id is the full URL of the resource described by the item".
    # An item with such an id and no url had no link, as an RSS item whose guid is its
    # address has one; it could not be opened.
    (entry,) = parse_feed(json_feed(content_text="x", **item), URL, now=NOW).entries
    assert entry.link == link


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("Nov  6 08:49:37 1994", "1994-11-06T08:49:37+00:00", id="no-day-name"),
        pytest.param("Nov 6 08:49 2024", "2024-11-06T08:49:00+00:00", id="no-seconds"),
        pytest.param("Sun Nov  6 08:49:37 1994", "1994-11-06T08:49:37+00:00", id="asctime"),
        pytest.param("Nov  6 08:49:37 2024 +0200", "2024-11-06T06:49:37+00:00", id="zone"),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_asctime_without_the_day_name_is_read(value: str, iso: str, form: str) -> None:
    # C's asctime without its day name ("%b %e %H:%M:%S %Y"): the JSON Feed reader read
    # it, RSS and Atom had no date
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("Fri, 01 Mar 0024 10:00:00 GMT", "2024-03-01T10:00:00+00:00", id="0024"),
        pytest.param("01 Mar 0075 10:00 +0000", "1975-03-01T10:00:00+00:00", id="0075"),
        pytest.param("Mar 1, 0024 10:00 AM", "2024-03-01T10:00:00+00:00", id="month-first"),
        pytest.param("Mar 1, 24 10:00 AM", "2024-03-01T10:00:00+00:00", id="month-first-24"),
        pytest.param("Mar 1, 24", "2024-03-01T00:00:00+00:00", id="month-first-day-alone"),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_a_two_digit_year_padded_to_four_is_read_as_two(value: str, iso: str, form: str) -> None:
    # a formatter given a two-digit year pads it ("yyyy" of the year 24: "0024"): RSS and
    # Atom dated the story in the year 24, the JSON Feed reader (the email module) in 2024
    assert dated_in(form, value) == (iso, iso)
