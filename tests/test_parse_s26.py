"""Feed parsing bugs found in session 26: each test is a user-visible failure that was
fixed, checked on both the lxml fast path and feedparser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aggregator.parse import parse_feed

URL = "https://feeds.example.org/rss.xml"
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def rss(items: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://blog.example.org/</link>{items}</channel></rss>"
    ).encode()


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("Using Vec&lt;T&gt; in Rust", "Using Vec<T> in Rust"),
        ("Why List&lt;String&gt; is slow", "Why List<String> is slow"),
        ("Use &lt;Suspense&gt; in React", "Use <Suspense> in React"),
        ("Map&lt;K, V&gt; explained", "Map<K, V> explained"),
        # markup is still markup
        ("A &lt;b&gt;bold&lt;/b&gt; move", "A bold move"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Hello", "Hello"),
    ],
    ids=["vec", "list", "react", "map", "bold", "script"],
)
def test_rss_title_keeps_angle_brackets_that_are_no_html_element(
    written: str, shown: str, fast: bool
) -> None:
    # Programming blogs' titles name generics and components: "<T>" is no HTML element,
    # but read as a tag it was dropped ("Using Vec in Rust").
    body = rss(f"<item><title>{written}</title><link>https://blog.example.org/a</link></item>")
    (entry,) = parse_feed(body, URL, fast=fast, now=NOW).entries
    assert entry.title == shown


ATOM = "https://feeds.example.org/atom.xml"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_categories_written_with_character_references_read_as_characters(fast: bool) -> None:
    # CMSs escape a category's name for HTML and then for XML (or inside CDATA): the story
    # was filed under "News &amp; Views", and the merged feed said "News &amp;amp; Views".
    body = rss(
        "<item><title>a</title><link>https://blog.example.org/a</link>"
        "<category><![CDATA[News &amp; Views]]></category>"
        "<category>Caf&amp;eacute; &amp;#8217;s</category><category>AT&amp;T</category></item>"
    )
    (entry,) = parse_feed(body, URL, fast=fast, now=NOW).entries
    assert entry.categories == ("News & Views", "Café ’s", "AT&T")
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><entry><title>e</title>'
        b"<id>x</id><updated>2024-01-01T00:00:00Z</updated>"
        b'<category term="Q &amp;amp; A"/><category term="x" label="R &amp;amp; D"/>'
        b"</entry></feed>"
    )
    (entry,) = parse_feed(atom, ATOM, fast=fast, now=NOW).entries
    assert entry.categories == ("Q & A", "R & D")


@pytest.mark.parametrize("name", ["ter\ufeffm", "t\u3001erm"], ids=["bom", "ideographic-comma"])
def test_fast_path_declines_attribute_names_expat_refuses(name: str) -> None:
    # XML 1.0 fifth edition allows these characters in names (lxml reads the document),
    # expat, under feedparser, does not: feedparser recovers with a warning and reads the
    # element otherwise, so the fast path must leave the document to it.
    body = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><entry><title>e</title>'
        "<id>x</id><updated>2024-01-01T00:00:00Z</updated>"
        f'<category {name}="t" label="L"/></entry></feed>'
    ).encode()
    fast = parse_feed(body, ATOM, fast=True, now=NOW)
    assert fast == parse_feed(body, ATOM, fast=False, now=NOW)
    assert fast.warnings


def test_fast_path_declines_namespace_prefixes_expat_refuses() -> None:
    body = (
        '<rss version="2.0" xmlns:a\u3001="http://www.w3.org/2005/Atom"><channel><title>T'
        "</title><item><title>a</title></item></channel></rss>"
    ).encode()
    fast = parse_feed(body, URL, fast=True, now=NOW)
    assert fast == parse_feed(body, URL, fast=False, now=NOW)
    assert fast.warnings


@pytest.mark.parametrize(
    "pi",
    ['<?xm\ufeffl version="1.0"?>', "<?x\u3001y a?>"],
    ids=["declaration", "before-root"],
)
@pytest.mark.parametrize("where", ["prolog", "item"])
def test_fast_path_declines_processing_instruction_targets_expat_refuses(
    pi: str, where: str
) -> None:
    before, inside = (pi, "") if where == "prolog" else ("", pi)
    body = (
        f'{before}<rss version="2.0"><channel><title>T</title><item><title>a</title>{inside}'
        "</item></channel></rss>"
    ).encode()
    fast = parse_feed(body, URL, fast=True, now=NOW)
    assert fast == parse_feed(body, URL, fast=False, now=NOW)
    assert fast.warnings


PODCAST = (
    '<?xml version="1.0"?><rss version="2.0" '
    'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><title>P</title>'
    "<link>https://pod.example.org/</link>{}</channel></rss>"
)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize(
    ("notes", "stored"),
    [
        (
            '<p>Notes</p><iframe src="https://player.example/1"></iframe>',
            "<p>Notes</p>",
        ),
        ("Show notes<br>Line two", "Show notes<br>Line two"),
    ],
    ids=["iframe", "br"],
)
def test_rss_description_after_itunes_summary_is_html(fast: bool, notes: str, stored: str) -> None:
    # A podcast item with <itunes:summary> before <description>: feedparser files the
    # description as content of type text/plain unless its guess calls it HTML (closing
    # tags of its own list only), and the show notes were shown as their HTML source.
    item = (
        "<item><title>Ep 1</title><link>https://pod.example.org/1</link>"
        f"<itunes:summary>Plain summary</itunes:summary><description><![CDATA[{notes}]]>"
        "</description></item>"
    )
    body = PODCAST.format(item).encode()
    (entry,) = parse_feed(body, URL, fast=fast, now=NOW).entries
    assert entry.summary == "<p>Plain summary</p>"
    assert entry.content == stored


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_rss_plain_text_with_angle_brackets_stays_text(fast: bool) -> None:
    item = (
        "<item><title>Ep 2</title><link>https://pod.example.org/2</link>"
        "<itunes:summary>Why Vec&lt;T&gt; beats a &lt; b\n\nSecond part</itunes:summary>"
        "<description>Same Vec&lt;T&gt; text</description></item>"
    )
    (entry,) = parse_feed(PODCAST.format(item).encode(), URL, fast=fast, now=NOW).entries
    assert entry.summary == "<p>Why Vec&lt;T&gt; beats a &lt; b</p><p>Second part</p>"
    assert entry.content == "<p>Same Vec&lt;T&gt; text</p>"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_bare_ampersands_are_not_read_as_references(fast: bool) -> None:
    # A bare "&" makes the document not well-formed; feedparser's loose parser then read
    # "&T" as an unknown reference and wrote it "&T;": "AT&T; and R&D;", "Q&A;".
    body = rss(
        "<item><title>AT&T and R&D</title><link>https://blog.example.org/?a=1&b=2</link>"
        "<author>Tom&Jerry</author><category>Q&A</category>"
        "<description>Q&A here &amp; there &copy; <![CDATA[<b>M&M</b>]]></description></item>"
    )
    (entry,) = parse_feed(body, URL, fast=fast, now=NOW).entries
    assert entry.title == "AT&T and R&D"
    assert entry.link == "https://blog.example.org/?a=1&b=2"
    assert entry.author == "Tom&Jerry"
    assert entry.categories == ("Q&A",)
    assert entry.summary == "Q&amp;A here &amp; there © <b>M&amp;M</b>"


def test_declared_entities_are_still_read() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY site "Example Co">]>'
        b'<rss version="2.0"><channel><title>&site;</title>'
        b"<item><title>From &site; &amp; R&D</title></item></channel></rss>"
    )
    feed = parse_feed(body, URL, now=NOW)
    assert feed.title == "Example Co"
    assert feed.entries[0].title == "From Example Co & R&D"
    assert feed.warnings == ("not well-formed, recovered: a bare '&' read as text",)


def test_ampersand_in_xml_declaration_is_left_alone() -> None:
    body = rss("<item><title>a</title></item>").replace(b'version="1.0"', b'version="1.&x0"')
    assert parse_feed(body, URL, fast=True, now=NOW) == parse_feed(body, URL, fast=False, now=NOW)
