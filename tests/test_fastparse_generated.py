"""The lxml fast path against feedparser on generated documents: RSS 2.0, RSS 1.0 and Atom
put together from the elements, attributes and text that real feeds carry (entities,
character references, CDATA, escaped and raw markup, relative and hostile URLs, dates in
the formats feedparser reads and some it does not), in any order and number. Whatever
the fast path accepts must parse exactly as feedparser parses it; what it cannot prove it
declines, and feedparser reads it (``parse_feed`` then equals itself trivially, so the
test also checks that the fast path accepts most of what is generated).

The hand-written cases are in ``test_fastparse.py``; ``benchmarks/parse_fidelity.py``
compares the two on feedparser's own test corpus and the fetch benchmark's corpus. Run
with ``AGGREGATOR_FUZZ_EXAMPLES=20000`` for a longer search than CI's."""

from __future__ import annotations

import os
from collections.abc import Callable
from xml.sax.saxutils import quoteattr, unescape

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aggregator import fastparse
from aggregator.errors import ParseError
from aggregator.parse import feedparser_headers, parse_feed

URL = "https://feeds.example.org/news/feed"
EXAMPLES = int(os.environ.get("AGGREGATOR_FUZZ_EXAMPLES", "150"))
#: CI's run draws the same documents every time (Hypothesis derives them from the test):
#: the share the fast path accepts varies from draw to draw (Atom's from 0.30 to 0.62 over
#: twenty random draws of 150, 0.40 in the middle: its generated content is often XHTML,
#: which the fast path leaves to feedparser), so a random draw failed the one-third bound
#: about once in twenty runs with no change to the code. This draw accepts 82, 93 and 51
#: of 150 (RSS 2.0, RSS 1.0, Atom). A longer search (AGGREGATOR_FUZZ_EXAMPLES) draws anew.
DERANDOMIZE = "AGGREGATOR_FUZZ_EXAMPLES" not in os.environ

# Pieces of element text: each is well-formed XML content on its own.
FRAGMENTS = [
    "DNS",
    "registry fees rise",
    " ",
    "\n  ",
    "&amp;",
    "AT&amp;T",
    "&lt;b&gt;bold&lt;/b&gt;",
    "&lt;p&gt;a &lt;a href=&quot;/x?a=1&amp;amp;b=2&quot;&gt;link&lt;/a&gt;&lt;/p&gt;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&lt;img src=&quot;javascript:alert(1)&quot;&gt;",
    "&#233;",
    "&#xE9;",
    "&#x2019;",
    "&#150;",
    "&#38;",
    "&#60;em&#62;",
    "&quot;",
    "&apos;",
    "&gt;",
    "<![CDATA[<p>x & y</p>]]>",
    "<![CDATA[plain]]>",
    "<![CDATA[]]>",
    "日本語",
    "Ünïcödé",
    "🙂",
    "https://example.com/a?b=1&amp;c=2",
    "/relative/path",
    "relative.html",
    "//cdn.example.net/x",
    "javascript:alert(1)",
    "mailto:someone@example.org",
    "Tue, 03 Jun 2025 09:05:00 GMT",
    "Tue, 3 Jun 2025 9:05:00 +0200",
    "3 Jun 2025 09:05 EST",
    "2025-06-03T09:05:00Z",
    "2025-06-03T09:05:00.123+02:00",
    "2025-06-03",
    "20250603",
    "not a date",
    "someone@example.org (Some One)",
    "<em>raw</em>",
    "<br/>",
    "<!-- a comment -->",
    "<?pi data?>",
]

TEXT = st.lists(st.sampled_from(FRAGMENTS), max_size=4).map("".join)
URLISH = st.sampled_from(
    [
        "https://example.com/story/1",
        "http://example.com/a?b=1&amp;c=2",
        "/relative/path",
        "relative.html",
        "",
        " https://example.com/padded ",
        "javascript:alert(1)",
        "https://EXAMPLE.com:443/Path/../x",
        "https://例え.テスト/記事",
    ]
)
DATE = st.sampled_from([f for f in FRAGMENTS if any(c.isdigit() for c in f)] + ["not a date"])


_QUOTES = {"&quot;": '"', "&apos;": "'"}


def attr(name: str, value: str) -> str:
    """An attribute holding ``value`` (element text, escaped as such) as its text."""
    return f" {name}={quoteattr(unescape(value, _QUOTES))}"


def element(name: str, text: str = "", attrs: str = "") -> str:
    return f"<{name}{attrs}>{text}</{name}>"


def any_of(*parts: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[str]:
    """Up to ``max_size`` of ``parts``, in any order, repeats allowed."""
    return st.lists(st.one_of(*parts), max_size=max_size).map("".join)


RSS_ITEM = any_of(
    TEXT.map(lambda t: element("title", t)),
    URLISH.map(lambda u: element("link", u)),
    TEXT.map(lambda t: element("description", t)),
    TEXT.map(lambda t: element("content:encoded", t)),
    st.tuples(URLISH, st.sampled_from(["", "true", "false", "TRUE"])).map(
        lambda g: element("guid", g[0], attr("isPermaLink", g[1]) if g[1] else "")
    ),
    DATE.map(lambda d: element("pubDate", d)),
    DATE.map(lambda d: element("dc:date", d)),
    TEXT.map(lambda t: element("dc:creator", t)),
    TEXT.map(lambda t: element("author", t)),
    st.tuples(TEXT, st.sampled_from(["", "http://example.com/cats"])).map(
        lambda c: element("category", c[0], attr("domain", c[1]) if c[1] else "")
    ),
    TEXT.map(lambda t: element("dc:subject", t)),
    URLISH.map(lambda u: element("comments", u)),
    st.tuples(URLISH, st.sampled_from(["audio/mpeg", "", "image/png"])).map(
        lambda e: f'<enclosure{attr("url", e[0])} length="123"{attr("type", e[1])}/>'
    ),
    st.tuples(URLISH, st.sampled_from(["alternate", "self", "enclosure", ""])).map(
        lambda a: f"<atom:link{attr('href', a[0])}" + (attr("rel", a[1]) if a[1] else "") + "/>"
    ),
    URLISH.map(lambda u: element("feedburner:origLink", u)),
    URLISH.map(lambda u: element("wfw:commentRss", u)),
    st.integers(0, 99).map(lambda n: element("slash:comments", str(n))),
    max_size=9,
)


RSS_CHANNEL = any_of(
    TEXT.map(lambda t: element("title", t)),
    URLISH.map(lambda u: element("link", u)),
    TEXT.map(lambda t: element("description", t)),
    st.sampled_from(["en", "en-US", "de", ""]).map(lambda t: element("language", t)),
    st.sampled_from(["60", "x", ""]).map(lambda t: element("ttl", t)),
    DATE.map(lambda d: element("pubDate", d)),
    DATE.map(lambda d: element("lastBuildDate", d)),
    TEXT.map(lambda t: element("generator", t)),
    TEXT.map(lambda t: element("copyright", t)),
    TEXT.map(lambda t: element("managingEditor", t)),
    TEXT.map(lambda t: element("webMaster", t)),
    st.sampled_from(["hourly", "daily", "weekly", "bogus"]).map(
        lambda t: element("sy:updatePeriod", t)
    ),
    st.sampled_from(["1", "2", "x"]).map(lambda t: element("sy:updateFrequency", t)),
    st.tuples(URLISH, TEXT).map(
        lambda i: (
            "<image>"
            + element("url", i[0])
            + element("title", i[1])
            + element("link", i[0])
            + "</image>"
        )
    ),
    URLISH.map(lambda u: f'<atom:link rel="self"{attr("href", u)}/>'),
    TEXT.map(lambda t: element("category", t)),
    max_size=8,
)


NAMESPACES = (
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" '
    'xmlns:slash="http://purl.org/rss/1.0/modules/slash/" '
    'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
    'xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0" '
    'xmlns:atom="http://www.w3.org/2005/Atom"'
)


@st.composite
def rss20(draw: st.DrawFn) -> bytes:
    channel = draw(RSS_CHANNEL)
    items = draw(st.lists(RSS_ITEM, max_size=4))
    version = draw(st.sampled_from(["2.0", "0.91", "0.92"]))
    body = "".join(f"<item>{i}</item>" for i in items)
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="{version}" {NAMESPACES}>'
        f"<channel>{channel}{body}</channel></rss>"
    ).encode()


@st.composite
def rss10(draw: st.DrawFn) -> bytes:
    channel = draw(RSS_CHANNEL)
    items = draw(st.lists(st.tuples(URLISH, RSS_ITEM), max_size=4))
    seq = "".join(f"<rdf:li{attr('rdf:resource', u)}/>" for u, _ in items)
    body = "".join(f"<item{attr('rdf:about', u)}>{i}</item>" for u, i in items)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        f'xmlns="http://purl.org/rss/1.0/" {NAMESPACES}>'
        f'<channel rdf:about="{URL}">{channel}<items><rdf:Seq>{seq}</rdf:Seq></items>'
        f"</channel>{body}</rdf:RDF>"
    ).encode()


TEXT_TYPE = st.sampled_from(["", "text", "html", "xhtml", "text/plain", "bogus"])


def text_construct(name: str) -> st.SearchStrategy[str]:
    return st.tuples(TEXT, TEXT_TYPE).map(
        lambda t: element(name, t[0], attr("type", t[1]) if t[1] else "")
    )


ATOM_LINK = st.tuples(
    URLISH,
    st.sampled_from(["", "alternate", "self", "enclosure", "related", "replies"]),
    st.sampled_from(["", "text/html", "audio/mpeg", "application/atom+xml"]),
    st.sampled_from(["", "A title &amp; more"]),
).map(
    lambda a: (
        f"<link{attr('href', a[0])}"
        + (attr("rel", a[1]) if a[1] else "")
        + (attr("type", a[2]) if a[2] else "")
        + (attr("title", a[3]) if a[3] else "")
        + "/>"
    )
)
ATOM_PERSON = st.tuples(TEXT, st.sampled_from(["", "a@example.org"]), URLISH).map(
    lambda p: (
        "<author>"
        + element("name", p[0])
        + (element("email", p[1]) if p[1] else "")
        + element("uri", p[2])
        + "</author>"
    )
)
ATOM_CATEGORY = st.tuples(TEXT, st.sampled_from(["", "http://example.com/s"]), TEXT).map(
    lambda c: (
        f"<category{attr('term', c[0])}"
        + (attr("scheme", c[1]) if c[1] else "")
        + (attr("label", c[2]) if c[2] else "")
        + "/>"
    )
)


# What a feed and an entry both have.
ATOM_COMMON = [
    text_construct("title"),
    text_construct("rights"),
    ATOM_LINK,
    URLISH.map(lambda u: element("id", u)),
    DATE.map(lambda d: element("updated", d)),
    ATOM_PERSON,
    ATOM_CATEGORY,
]


ATOM_ENTRY = any_of(
    *ATOM_COMMON,
    text_construct("summary"),
    text_construct("content"),
    DATE.map(lambda d: element("published", d)),
    TEXT.map(lambda t: element("dc:subject", t)),
    max_size=9,
)


ATOM_HEAD = any_of(
    *ATOM_COMMON,
    text_construct("subtitle"),
    TEXT.map(lambda t: element("generator", t)),
    URLISH.map(lambda u: element("icon", u)),
    URLISH.map(lambda u: element("logo", u)),
    max_size=8,
)


@st.composite
def atom(draw: st.DrawFn) -> bytes:
    head = draw(ATOM_HEAD)
    entries = draw(st.lists(ATOM_ENTRY, max_size=4))
    base = draw(st.sampled_from(["", ' xml:base="https://base.example.net/dir/"']))
    lang = draw(st.sampled_from(["", ' xml:lang="en"']))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" {NAMESPACES}{base}{lang}>'
        + head
        + "".join(f"<entry>{e}</entry>" for e in entries)
        + "</feed>"
    ).encode()


def parsed_or_refused(body: bytes, *, fast: bool) -> object:
    try:
        return parse_feed(body, URL, fast=fast)
    except ParseError as e:
        return ("refused", str(e))


@pytest.mark.parametrize("kind", [rss20, rss10, atom], ids=["rss20", "rss10", "atom"])
def test_generated_documents_parse_as_feedparser_parses_them(
    kind: Callable[[], st.SearchStrategy[bytes]],
) -> None:
    accepted = [0, 0]

    @settings(
        max_examples=EXAMPLES,
        derandomize=DERANDOMIZE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(kind())
    def check(body: bytes) -> None:
        took = fastparse.extract(body, feedparser_headers(None)) is not None
        event("fast path" if took else "declined")
        accepted[0] += took
        accepted[1] += 1
        assert parsed_or_refused(body, fast=True) == parsed_or_refused(body, fast=False)

    check()
    # Not vacuous: most generated documents are inside what the fast path proves.
    assert accepted[0] >= accepted[1] // 3, accepted
