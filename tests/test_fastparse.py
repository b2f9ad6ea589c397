"""The lxml fast path (aggregator/fastparse.py): identical to the feedparser path on what
it accepts, and declining what it cannot prove."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from aggregator import fastparse
from aggregator.errors import ParseError
from aggregator.parse import feedparser_headers, parse_feed
from aggregator.types import ParsedFeed

URL = "https://feeds.example.org/feed"
BENCHMARKS = Path(__file__).parent.parent / "benchmarks"

DC = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
CONTENT = 'xmlns:content="http://purl.org/rss/1.0/modules/content/"'
ATOM_NS = 'xmlns:atom="http://www.w3.org/2005/Atom"'


def rss(items: str, channel: str = "", *, namespaces: str = "", decl: str = "") -> bytes:
    return (
        f'{decl or """<?xml version="1.0" encoding="utf-8"?>"""}\n'
        f'<rss version="2.0" {namespaces}><channel>'
        "<title>Site &amp; News</title><link>https://site.example.com/blog/</link>"
        f"<description>All the &lt;b&gt;news&lt;/b&gt;</description>{channel}{items}"
        "</channel></rss>"
    ).encode()


RSS20_FULL = rss(
    """
    <item>
      <title>Caf&#233; &amp; bar &lt;em&gt;opens&lt;/em&gt;</title>
      <link>/2025/06/cafe?a=1&amp;b=2</link>
      <guid isPermaLink="false">tag:site,2025:1</guid>
      <pubDate>Mon, 2 Jun 2025 9:05:00 +0200</pubDate>
      <dc:creator>Ada Okafor</dc:creator>
      <category>Food</category><category domain="x">food</category><category>Town</category>
      <description><![CDATA[<p>Short <a href="/more">more</a> <script>x()</script>
        </p>]]></description>
      <content:encoded><![CDATA[<p>Long text with <img src="img/1.png"> and
        <a href="javascript:alert(1)">a bad link</a>.</p>]]></content:encoded>
      <enclosure url="https://cdn.example.com/a.mp3" length="1" type="audio/mpeg"/>
      <comments>https://site.example.com/c/1</comments>
    </item>
    <item>
      <description>No title, no date: the summary gives the title words here.</description>
      <guid>https://site.example.com/p/2</guid>
      <author>ravi@example.com (Ravi Singh)</author>
      <dc:date>2025-06-01T08:00:00Z</dc:date>
    </item>
    <item><title>Undated</title><link>https://site.example.com/p/3</link></item>
    """,
    "<ttl>90</ttl><language>en</language><lastBuildDate>Mon, 02 Jun 2025 10:00:00 GMT"
    "</lastBuildDate><atom:link href='https://feeds.example.org/feed' rel='self' "
    "type='application/rss+xml'/><image><url>https://site.example.com/logo.png</url>"
    "<title>Logo</title><link>https://site.example.com/</link></image>",
    namespaces=f"{DC} {CONTENT} {ATOM_NS}",
)

RSS10 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
  xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"
  xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"
  xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel rdf:about="https://site.example.com/index.rdf">
  <title>RDF site</title><link>https://site.example.com/</link>
  <description>Plain &amp; simple</description>
  <sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>
  <items><rdf:Seq><rdf:li rdf:resource="https://site.example.com/1"/></rdf:Seq></items>
</channel>
<item rdf:about="https://site.example.com/1">
  <title>First</title><link>https://site.example.com/1</link>
  <description>&lt;p&gt;Hello&lt;/p&gt;</description>
  <dc:date>2025-06-02T07:15:00+02:00</dc:date><dc:creator>Mei Tanaka</dc:creator>
  <dc:subject>network</dc:subject><dc:subject>Network</dc:subject>
  <content:encoded><![CDATA[<p>Full <b>body</b></p>]]></content:encoded>
</item>
</rdf:RDF>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en" xml:base="https://site.example.com/a/">
  <title type="html">Atom &lt;i&gt;site&lt;/i&gt;</title>
  <subtitle>Plain &lt;text&gt; subtitle</subtitle>
  <link rel="alternate" type="text/html" href="/"/>
  <link rel="self" href="https://feeds.example.org/feed"/>
  <id>tag:site.example.com,2025:feed</id><updated>2025-06-02T09:30:00Z</updated>
  <author><name>Feed Author</name></author>
  <entry>
    <title>Plain &amp; simple</title>
    <link rel="enclosure" href="files/a.pdf" type="application/pdf"/>
    <link href="posts/1"/>
    <id>tag:site.example.com,2025:1</id>
    <published>2025-06-01T10:00:00-05:00</published><updated>2025-06-02T01:02:03Z</updated>
    <category term="dns" label="DNS"/><category term="bgp"/>
    <summary type="html">&lt;p&gt;Sum &lt;a href="x"&gt;x&lt;/a&gt;&lt;/p&gt;</summary>
    <content type="html">&lt;p&gt;Body&lt;/p&gt;</content>
  </entry>
  <entry>
    <title type="text">Second</title><link href="https://site.example.com/2"/>
    <id>tag:site.example.com,2025:2</id><updated>2025-06-02T09:30:00Z</updated>
    <author><name>Noor Haddad</name><email>noor@example.com</email></author>
    <content type="text">Line one

Line two</content>
  </entry>
</feed>
"""

LATIN1 = (
    '<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>Zürich'
    "</title><link>https://site.example.com/</link><item><title>Café déjà</title>"
    "<link>https://site.example.com/1</link></item></channel></rss>"
).encode("iso-8859-1")

ACCEPTED = [
    pytest.param(RSS20_FULL, None, id="rss20-full"),
    pytest.param(RSS20_FULL, "application/rss+xml", id="rss20-content-type"),
    pytest.param(RSS20_FULL, "text/xml; charset=utf-8", id="rss20-text-xml-charset"),
    pytest.param(RSS10, "application/rdf+xml", id="rss10"),
    pytest.param(ATOM, "application/atom+xml", id="atom-xml-base"),
    pytest.param(LATIN1, None, id="iso-8859-1"),
    pytest.param(LATIN1, "application/rss+xml; charset=iso-8859-1", id="iso-8859-1-header"),
    pytest.param(b"\xef\xbb\xbf" + RSS20_FULL, None, id="utf8-bom"),
    pytest.param(rss("", "<ttl>0</ttl>"), None, id="no-items"),
    pytest.param(
        rss(
            "<item><title>A</title><description>one</description><description>two</description>"
            "</item>"
        ),
        None,
        id="second-description-becomes-content",
    ),
    pytest.param(
        rss("<item><title>x</title><title>y</title><guid isPermaLink='true'>/rel</guid></item>"),
        None,
        id="two-titles-relative-guid",
    ),
]


@pytest.mark.parametrize(("body", "content_type"), ACCEPTED)
def test_fast_path_accepts_and_matches_feedparser(body: bytes, content_type: str | None) -> None:
    assert fastparse.extract(body, feedparser_headers(content_type)) is not None
    fast = parse_feed(body, URL, content_type=content_type)
    assert fast == parse_feed(body, URL, content_type=content_type, fast=False)


def test_fixture_values_are_the_normalised_ones() -> None:
    """A spot check that the comparison above compares something."""
    feed = parse_feed(RSS20_FULL, URL)
    assert feed.version == "rss20"
    assert feed.title == "Site & News"
    assert feed.ttl is not None and feed.ttl.total_seconds() == 90 * 60
    first, second, third = feed.entries
    assert first.title == "Café & bar opens"
    assert first.link == "https://site.example.com/2025/06/cafe?a=1&b=2"
    assert first.published is not None and first.published.isoformat() == (
        "2025-06-02T07:05:00+00:00"
    )  # a one-digit hour, +0200
    assert first.categories == ("Food", "Town")
    assert first.enclosures == ("https://cdn.example.com/a.mp3",)
    assert first.content is not None and "javascript" not in first.content
    assert second.author == "Ravi Singh" and second.title.startswith("No title, no date")
    assert second.published is not None  # dc:date arrives as updated
    assert third.published is None
    atom = parse_feed(ATOM, URL)
    assert atom.link == "https://site.example.com/"
    assert atom.entries[0].link == "https://site.example.com/a/posts/1"
    assert atom.entries[0].categories == ("DNS", "bgp")
    assert atom.entries[0].author == "Feed Author"


DECLINED = [
    pytest.param(rss("<item><title>R&D</title></item>"), None, id="bare-ampersand"),
    pytest.param(rss("<item><title>caf&eacute;</title></item>"), None, id="html-entity"),
    pytest.param(
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x "y">]>'
        + rss("<item><title>&x;</title></item>").split(b"?>", 1)[1],
        None,
        id="doctype",
    ),
    pytest.param(
        rss(
            "<item><media:title>t</media:title></item>",
            namespaces='xmlns:media="http://search.yahoo.com/mrss/"',
        ),
        None,
        id="media-namespace",
    ),
    pytest.param(rss("<item><title>a <b>b</b></title></item>"), None, id="child-in-title"),
    pytest.param(rss("<item><source url='https://x.test/'>X</source></item>"), None, id="source"),
    pytest.param(RSS20_FULL, "text/html; charset=utf-8", id="not-an-xml-media-type"),
    pytest.param(
        ATOM.replace(
            b'<content type="html">&lt;p&gt;Body&lt;/p&gt;</content>',
            b'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
            b"<p>Body</p></div></content>",
        ),
        None,
        id="atom-xhtml-content",
    ),
    pytest.param(
        ATOM.replace(b"<entry>", b'<entry xml:base="https://other.example.com/">', 1),
        None,
        id="xml-base-below-root",
    ),
    pytest.param(RSS20_FULL.decode().encode("utf-16"), None, id="utf-16"),
    pytest.param(LATIN1.replace(b'"iso-8859-1"', b'"utf-8"'), None, id="declared-utf8-is-latin1"),
    pytest.param(b"<catalog><book/></catalog>", None, id="not-a-feed"),
]


@pytest.mark.parametrize(("body", "content_type"), DECLINED)
def test_fast_path_declines_and_feedparser_decides(body: bytes, content_type: str | None) -> None:
    assert fastparse.extract(body, feedparser_headers(content_type)) is None
    try:
        reference: ParsedFeed | str = parse_feed(body, URL, content_type=content_type, fast=False)
    except ParseError as e:
        reference = str(e)
    try:
        result: ParsedFeed | str = parse_feed(body, URL, content_type=content_type)
    except ParseError as e:
        result = str(e)
    assert result == reference


def _bench_fetch() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fetch", BENCHMARKS / "fetch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_benchmark_corpus_is_identical(tmp_path: Path) -> None:
    feeds = _bench_fetch().build_corpus(7, 100, 1, tmp_path)
    accepted = 0
    for feed in feeds:
        content_type = feed.spec.content_type
        if fastparse.extract(feed.raw, feedparser_headers(content_type)) is None:
            continue
        accepted += 1
        fast = parse_feed(feed.raw, URL, content_type=content_type)
        assert fast == parse_feed(feed.raw, URL, content_type=content_type, fast=False), feed.path
    assert accepted >= 80  # declined: not well-formed ones and Atom with XHTML content
