"""Feed parsing bugs found in session 27: each test is a user-visible failure that was
fixed, checked on both the lxml fast path and feedparser."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aggregator.parse import parse_feed

URL = "https://feeds.example.org/rss.xml"
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def rss(items: str, *, encoding: str = "utf-8", extra: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"{extra}><channel>'
        f"<title>T</title><link>https://blog.example.org/</link>{items}</channel></rss>"
    ).encode(encoding)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize("flag", ["True", "TRUE", " true ", "1"])
def test_permalink_guid_flag_is_read_whatever_its_case(flag: str, fast: bool) -> None:
    # Templates that print a boolean as Python or .NET do write isPermaLink="True": the
    # guid was taken for no link, and an item with only a guid had no link to open.
    body = rss(
        f'<item><title>a</title><guid isPermaLink="{flag}">https://blog.example.org/p/1</guid>'
        "</item>"
    )
    (entry,) = parse_feed(body, URL, fast=fast, now=NOW).entries
    assert entry.link == "https://blog.example.org/p/1"
    assert entry.guid == "https://blog.example.org/p/1"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize("flag", ["false", "False", "FALSE", "0", "no"])
def test_guid_that_says_it_is_no_permalink_is_still_no_link(flag: str, fast: bool) -> None:
    body = rss(
        f'<item><title>a</title><guid isPermaLink="{flag}">https://blog.example.org/p/1</guid>'
        "</item>"
    )
    (entry,) = parse_feed(body, URL, fast=fast, now=NOW).entries
    assert entry.link is None
    assert entry.guid == "https://blog.example.org/p/1"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize(
    ("encoding", "title"),
    [
        ("iso-2022-jp", "β版を公開 αβγ Ω"),
        ("iso-2022-jp-ext", "β版 ｦﾁ ﾆｭｰｽ"),  # half-width katakana: "ｦﾁ" is ESC ( I "&A"
        ("shift_jis", "β版を公開 αβγ Ω"),
        ("euc-jp", "β版を公開 αβγ Ω"),
    ],
    ids=["iso-2022-jp", "iso-2022-jp-ext", "shift_jis", "euc-jp"],
)
def test_bare_ampersand_repair_keeps_text_in_legacy_japanese_encodings(
    encoding: str, title: str, fast: bool
) -> None:
    # ISO-2022-JP writes Greek letters as "&" and a letter ("β" is ESC $ B "&B"), as in
    # "β版" (beta release): with a bare "&" elsewhere in the feed, the repair escaped them
    # too and every Japanese string in the feed came out as escape codes ("$B&B&G<(B").
    body = rss(
        f"<item><title>{title}</title><link>https://blog.example.org/a</link>"
        "<description>AT&T の発表</description></item>",
        encoding=encoding,
    )
    feed = parse_feed(body, URL, fast=fast, now=NOW)
    (entry,) = feed.entries
    assert entry.title == title
    assert entry.summary == "AT&amp;T の発表"
    assert feed.warnings == ("not well-formed, recovered: a bare '&' read as text",)


def json_feed(**item: object) -> bytes:
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [item]}).encode()


def dated_in(form: str, value: str) -> tuple[str | None, str | None]:
    """The published and updated dates (ISO) of an item dated ``value`` in ``form``: RSS
    on the fast path or feedparser's, Atom, or JSON Feed."""
    if form == "json":
        body = json_feed(id="1", title="t", date_published=value, date_modified=value)
    elif form == "atom":
        body = (
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><title>t</title>'
            f"<id>1</id><published>{value}</published><updated>{value}</updated></entry></feed>"
        ).encode()
    else:
        body = rss(
            f"<item><title>t</title><pubDate>{value}</pubDate><dc:date>{value}</dc:date></item>",
            extra=' xmlns:dc="http://purl.org/dc/elements/1.1/"',
        )
    (entry,) = parse_feed(body, URL, now=NOW, fast=form != "rss-feedparser").entries
    published, updated = (d.isoformat() if d else None for d in (entry.published, entry.updated))
    return published, updated


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("Mon, 01 Jan 2024 10:00 PM GMT", "2024-01-01T22:00:00+00:00", id="pm"),
        pytest.param("Mon, 01 Jan 2024 10:00 AM GMT", "2024-01-01T10:00:00+00:00", id="am"),
        pytest.param("Mon, 01 Jan 2024 10:00:30 pm +0200", "2024-01-01T20:00:30+00:00", id="pm-tz"),
        pytest.param("Mon, 01 Jan 2024 12:30 AM GMT", "2024-01-01T00:30:00+00:00", id="12-am"),
        pytest.param("Mon, 01 Jan 2024 12:30 PM GMT", "2024-01-01T12:30:00+00:00", id="12-pm"),
        pytest.param("Mon, 01 Jan 2024 9:05 p.m. EST", "2024-01-02T02:05:00+00:00", id="p.m."),
        pytest.param("01 Jan 2024 10:00PM", "2024-01-01T22:00:00+00:00", id="no-space"),
        pytest.param("2024-01-01 10:00:00 PM", "2024-01-01T22:00:00+00:00", id="iso-pm"),
    ],
)
@pytest.mark.parametrize("form", ["rss-fast", "rss-feedparser", "atom", "json"])
def test_twelve_hour_times_are_read_with_their_am_or_pm(value: str, iso: str, form: str) -> None:
    # "10:00 PM" was read as 10:00 by every reader (or lost): the story was dated twelve
    # hours early, under the morning's news.
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("Sunday, 06-Nov-94 08:49:37 GMT", "1994-11-06T08:49:37+00:00", id="rfc850"),
        # PHP's DATE_COOKIE ("l, d-M-Y H:i:s T"), which some feeds use for pubDate
        pytest.param(
            "Saturday, 15-Jun-2024 10:00:00 UTC", "2024-06-15T10:00:00+00:00", id="cookie"
        ),
        pytest.param("Sat, 15-Jun-24 10:00:00 +0200", "2024-06-15T08:00:00+00:00", id="short-day"),
        pytest.param("15-Jun-2024 10:00:00 CEST", "2024-06-15T08:00:00+00:00", id="no-day-name"),
        pytest.param("31-Apr-2024 10:00:00 GMT", None, id="apr-31"),
    ],
)
@pytest.mark.parametrize("form", ["rss-fast", "rss-feedparser", "atom", "json"])
def test_rfc850_dates_with_dashes_are_read(value: str, iso: str | None, form: str) -> None:
    # RFC 850's "06-Nov-94" (HTTP's obsolete date, PHP's DATE_COOKIE and DATE_RFC850):
    # the JSON Feed reader read it, feedparser found no date, and the story had none.
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("Jan 15, 2024 10:00:00 GMT", "2024-01-15T10:00:00+00:00", id="short"),
        pytest.param("January 15, 2024 10:00 PM", "2024-01-15T22:00:00+00:00", id="long-pm"),
        pytest.param("Jun 15, 2024 10:00:00 PM EDT", "2024-06-16T02:00:00+00:00", id="edt"),
        pytest.param("Saturday, June 15, 2024 10:00", "2024-06-15T10:00:00+00:00", id="day-name"),
        pytest.param("June 15th, 2024 10:00 +0200", "2024-06-15T08:00:00+00:00", id="ordinal"),
        pytest.param("Sept. 5, 2024 10:00 GMT", "2024-09-05T10:00:00+00:00", id="sept"),
        pytest.param("Juni 15, 2024 10:00 CEST", "2024-06-15T08:00:00+00:00", id="german"),
        pytest.param("Feb 30, 2024 10:00 GMT", None, id="feb-30"),
    ],
)
@pytest.mark.parametrize("form", ["rss-fast", "rss-feedparser", "atom", "json"])
def test_month_first_dates_are_read(value: str, iso: str | None, form: str) -> None:
    # "January 15, 2024 10:00 AM", as US sites print dates: no reader found a date in
    # most of them (the story sorted by when it was first seen).
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize("form", ["rss-fast", "rss-feedparser", "atom"])
@pytest.mark.parametrize(
    "value", ["Jan 15, 2024", "January 15th, 2024", "Monday, January 15, 2024"]
)
def test_month_first_day_alone_is_read_as_midnight(value: str, form: str) -> None:
    # as feedparser reads "15 Jan 2024" and "Jan 15 2024"
    midnight = "2024-01-15T00:00:00+00:00"
    assert dated_in(form, value) == (midnight, midnight)


YOUTUBE = "https://www.youtube.com/feeds/videos.xml?channel_id=UC1"


def youtube(description: str, attributes: str = "") -> bytes:
    """An entry of a YouTube channel's feed (Atom, the video's text in Media RSS)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns:yt="http://www.youtube.com/xml/'
        'schemas/2015" xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/'
        '2005/Atom"><id>yt:channel:UC1</id><title>Chan</title><entry><id>yt:video:abc</id>'
        "<yt:videoId>abc</yt:videoId><title>Video</title>"
        '<link rel="alternate" href="https://www.youtube.com/watch?v=abc"/>'
        "<published>2024-06-15T10:00:00+00:00</published><media:group>"
        "<media:title>Video</media:title>"
        '<media:thumbnail url="https://i1.ytimg.com/vi/abc/hqdefault.jpg"/>'
        f"<media:description{attributes}>{description}</media:description>"
        "</media:group></entry></feed>"
    ).encode()


def test_media_description_is_plain_text_unless_typed_html() -> None:
    # Media RSS: media:description is "plain" unless type="html". A YouTube video's text
    # was read as HTML: its lines ran together and "<stdio.h>" (written "&lt;stdio.h&gt;")
    # was dropped as an unknown tag.
    text = (
        "Chapters:\n00:00 Intro\n01:23 Why &lt;stdio.h&gt; &amp; printf\n\n"
        "Links: https://example.com/x?a=1&amp;b=2"
    )
    (entry,) = parse_feed(youtube(text), YOUTUBE, now=NOW).entries
    assert entry.summary == (
        "<p>Chapters:<br>00:00 Intro<br>01:23 Why &lt;stdio.h&gt; &amp; printf</p>"
        "<p>Links: https://example.com/x?a=1&amp;b=2</p>"
    )
    (entry,) = parse_feed(youtube(text, ' type="plain"'), YOUTUBE, now=NOW).entries
    assert entry.summary is not None and "&lt;stdio.h&gt;" in entry.summary
    html = "&lt;p&gt;A &lt;b&gt;bold&lt;/b&gt; move&lt;/p&gt;"
    (entry,) = parse_feed(youtube(html, ' type="html"'), YOUTUBE, now=NOW).entries
    assert entry.summary == "<p>A <b>bold</b> move</p>"


def test_rss_media_description_with_markup_is_still_read_as_html() -> None:
    # RSS guesses whether text is HTML, for media:description too
    body = rss(
        "<item><title>a</title><link>https://blog.example.org/a</link>"
        "<media:description>&lt;p&gt;A &lt;b&gt;bold&lt;/b&gt; move&lt;/p&gt;</media:description>"
        "</item>",
        extra=' xmlns:media="http://search.yahoo.com/mrss/"',
    )
    (entry,) = parse_feed(body, URL, now=NOW).entries
    assert entry.summary == "<p>A <b>bold</b> move</p>"


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("Sat Jun 15 10:00:00 CEST 2024", "2024-06-15T08:00:00+00:00", id="cest"),
        pytest.param("Sat Jun 15 10:00:00 JST 2024", "2024-06-15T01:00:00+00:00", id="jst"),
        pytest.param("Sat Jun 15 10:00:00 IST 2024", "2024-06-15T04:30:00+00:00", id="ist"),
        pytest.param("Sat Jun 15 10:00:00 GMT+02:00 2024", "2024-06-15T08:00:00+00:00", id="gmt+2"),
        # read right already
        pytest.param("Sat Jun 15 10:00:00 EDT 2024", "2024-06-15T14:00:00+00:00", id="edt"),
        pytest.param("Sat Jun 15 10:00:00 +0200 2024", "2024-06-15T08:00:00+00:00", id="offset"),
        pytest.param("Sat Jun 15 10:00:00 2024", "2024-06-15T10:00:00+00:00", id="asctime"),
    ],
)
@pytest.mark.parametrize("form", ["rss-fast", "rss-feedparser", "atom", "json"])
def test_zone_name_before_the_year_is_read_at_its_offset(
    value: str, iso: str | None, form: str
) -> None:
    # Java's Date.toString() and Unix date(1) put the zone before the year: a name RFC
    # 822 does not define (CEST, JST, IST) was read as UTC there, hours off, though it
    # is read at its offset after the time ("Sat, 15 Jun 2024 10:00:00 CEST").
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        # JavaScript's Date.toString()
        pytest.param(
            "Sat Jun 15 2024 19:00:00 GMT+0900 (Japan Standard Time)",
            "2024-06-15T10:00:00+00:00",
            id="javascript",
        ),
        pytest.param(
            "Sat Jun 15 2024 19:00:00 GMT+0900 (日本標準時)",
            "2024-06-15T10:00:00+00:00",
            id="js-ja",
        ),
        pytest.param(
            "Sat, 15 Jun 2024 10:00:00 CEST (Central European Summer Time)",
            "2024-06-15T08:00:00+00:00",
            id="name",
        ),
        pytest.param("2024-06-15T10:00:00+02:00 (CEST)", "2024-06-15T08:00:00+00:00", id="iso"),
        pytest.param(
            "Sat, 15 Jun 2024 10:00:00 +0200 (CEST)", "2024-06-15T08:00:00+00:00", id="ok"
        ),
    ],
)
@pytest.mark.parametrize("form", ["rss-fast", "rss-feedparser", "atom", "json"])
def test_a_comment_after_the_zone_is_ignored(value: str, iso: str, form: str) -> None:
    # RFC 822 allows a comment, "(...)", after the zone, and JavaScript's Date.toString()
    # writes one: the JSON Feed reader then dropped the offset (19:00 UTC, nine hours
    # off), and a zone name before one was read as UTC by every reader.
    assert dated_in(form, value) == (iso, iso)


def atom_xhtml(div_attributes: str, feed_attributes: str = "") -> bytes:
    return (
        f'<feed xmlns="http://www.w3.org/2005/Atom"{feed_attributes}><title>A</title>'
        "<id>x</id><updated>2024-01-01T00:00:00Z</updated><entry><title>e</title><id>y</id>"
        '<updated>2024-01-01T00:00:00Z</updated><link href="https://blog.example.org/a"/>'
        '<summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"'
        f'{div_attributes}><a href="s.html">s</a></div></summary>'
        '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"'
        f'{div_attributes}><p><a href="one.html">one</a><img src="img/x.png"/></p></div>'
        "</content></entry></feed>"
    ).encode()


@pytest.mark.parametrize(
    ("feed_attributes", "div_attributes", "base"),
    [
        ("", ' xml:base="https://cdn.example.com/posts/"', "https://cdn.example.com/posts/"),
        (' xml:base="https://e.org/blog/"', ' xml:base="posts/"', "https://e.org/blog/posts/"),
        (' xml:base="https://e.org/blog/"', "", "https://e.org/blog/"),
        ("", ' xml:base="https://e.org/?a=1&amp;b=2"', "https://e.org/"),
    ],
    ids=["absolute", "relative", "feed-only", "escaped"],
)
def test_xml_base_on_the_xhtml_div_resolves_its_links(
    feed_attributes: str, div_attributes: str, base: str
) -> None:
    # Atom's xhtml content sits in a <div>, and an xml:base there applies to the links
    # inside it: feedparser drops the div, and they were resolved against the feed's URL
    # (https://feeds.example.org/one.html, a page that does not exist).
    body = atom_xhtml(div_attributes, feed_attributes)
    (entry,) = parse_feed(body, "https://feeds.example.org/atom.xml", now=NOW).entries
    assert entry.content == (
        f'<p><a href="{base}one.html" rel="noopener noreferrer">one</a>'
        f'<img src="{base}img/x.png"></p>'
    )
    assert entry.summary == f'<a href="{base}s.html" rel="noopener noreferrer">s</a>'


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_bare_ampersand_is_read_as_text_in_utf16(encoding: str, fast: bool) -> None:
    # The repair of a bare "&" skipped UTF-16 documents: feedparser's loose parser read
    # "AT&T" as a reference and wrote "AT&T;" (without a byte-order mark, too).
    body = rss(
        "<item><title>AT&T und R&D – 日本</title><link>https://blog.example.org/a</link>"
        "<category>Q&A</category></item>",
        encoding=encoding,
    )
    feed = parse_feed(body, URL, fast=fast, now=NOW)
    (entry,) = feed.entries
    assert entry.title == "AT&T und R&D – 日本"
    assert entry.categories == ("Q&A",)
    assert feed.warnings == ("not well-formed, recovered: a bare '&' read as text",)
