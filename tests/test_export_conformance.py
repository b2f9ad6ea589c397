"""Merged feeds as validators and strict readers hold them: Atom 1.0 (RFC 4287), RSS 2.0
(the RSS Advisory Board's profile) and JSON Feed 1.1, from hostile and unusual stories
polled through the real pipeline (local server -> parse -> SQLite -> export / serve).

Each document is read back with a strict XML parser (lxml, no recovery), with feedparser
(``bozo`` must stay 0 and the fields must come back as stored) and with ``json``, and
checked against the rules those formats set: required elements, ids and links that are
valid IRIs (RFC 3987), dates in RFC 3339 or RFC 822 with a 4-digit year and GMT.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
from httpserver import LocalServer
from lxml import etree
from test_learning_cli import env, run  # noqa: F401  (env: fixture)

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.serve import FeedServer
from aggregator.types import StoryQuery

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"
STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
# An RSS title is HTML to feedparser: the tags go, "]]>" and "&" stay.
CDATA_TITLE = "Close ]]> a CDATA & not bold"
LONG_TITLE = "Registry policy " + "very " * 400 + "long title"

# Unusual but well-formed: markup-like text, "]]>", an entity-encoded title, scripts and
# on* handlers and a javascript: link in the HTML, relative links, two enclosures, a date
# before 1900, odd zones, a date past 9999 in UTC, no title, no link, no date, RTL and
# emoji, a link with spaces and quotes.
HOSTILE_RSS = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>Hostile &amp; Co &lt;news&gt;</title><link>https://hostile.example/</link>
<description>d</description>
<item><title>Close ]]&gt; a CDATA &amp; &lt;b&gt;not bold&lt;/b&gt;</title>
<link>https://hostile.example/posts/cdata</link><guid>cdata</guid>
<description><![CDATA[<p>Sum ]]]]><![CDATA[> <script>alert(1)</script>
<a href="/rel/x" onclick="evil()">rel</a> <img src="img.png" onerror="x()">
<a href="javascript:alert(1)">js</a> <a href="&#106;avascript:alert(2)">enc</a></p>]]></description>
<pubDate>Fri, 27 Nov 2026 10:00:00 +0530</pubDate><dc:creator>Ann O'Neil &amp; Co</dc:creator>
<category>Cats &amp; Dogs</category>
<enclosure url="https://hostile.example/1.mp3" length="1" type="audio/mpeg"/>
<enclosure url="https://hostile.example/2.mp3" length="1" type="audio/mpeg"/></item>
<item><title>{LONG_TITLE}</title><link>https://hostile.example/long</link><guid>long</guid>
<description>An old one</description><pubDate>Mon, 01 Jan 1800 00:00:00 GMT</pubDate></item>
<item><title></title><link>https://hostile.example/empty</link><guid>empty</guid>
<description>Empty title, the text stands in</description>
<pubDate>Fri, 27 Nov 2026 08:00:00 -1130</pubDate></item>
<item><guid isPermaLink="false">no-link</guid>
<description>No title, no link and no date at all</description></item>
<item><title>مرحبا بالعالم 🌍 emoji 🎉</title><link>https://hostile.example/rtl</link>
<guid>rtl</guid><description>نص عربي 👍</description>
<pubDate>Fri, 31 Dec 9999 23:59:59 -1200</pubDate></item>
<item><title>Spaces in the link</title><link>https://hostile.example/a b?q="x"&amp;r={{1}}|^</link>
<guid isPermaLink="false">space</guid><description>A link a browser would escape</description>
<pubDate>Thu, 26 Nov 2026 10:00:00 EST</pubDate></item>
</channel></rss>""".encode()

HOSTILE_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr" xml:base="https://atom.example/blog/">
<title>Atom &amp; source</title><id>urn:atom-source</id><updated>2026-11-27T00:00:00Z</updated>
<entry><title type="text">x &lt; y &amp; z</title><id>urn:e1</id><link href="post/1"/>
<updated>2026-11-27T05:00:00+14:00</updated><author><name>Zoë</name></author>
<content type="html">&lt;p&gt;See &lt;a href="../other"&gt;other&lt;/a&gt;
&lt;img src="pic.png" onload="x()"&gt;&lt;/p&gt;</content></entry>
<entry><title>The same story</title><id>urn:same</id><link href="https://shared.example/story"/>
<updated>2026-11-26T05:00:00Z</updated>
<summary>One story that two feeds carry, with the same text in both.</summary></entry>
</feed>""".encode()

# A JSON Feed may hold what XML cannot: lone surrogates and control characters, in every
# field (json.dumps writes them as escapes, as broken publishers do).
HOSTILE_JSON = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON\u0001 source",
        "home_page_url": "https://json.example/",
        "items": [
            {
                "id": 42,
                "url": "https://json.example/\ud800post\u0001",
                "title": "Lone \ud800 surrogate\u0002",
                "content_html": "<p>x \ud800\u000b <a href='rel'>r</a></p>",
                "summary": "sum \udfff\u0003",
                "author": {"name": "Old \udfff style\u0007"},
                "tags": ["t\ud800", "u\u0002"],
                "date_published": "2026-11-27T11:00:00+05:45",
            },
            {
                "id": "same",
                "url": "https://shared.example/story",
                "title": "The same story",
                "summary": "One story that two feeds carry, with the same text in both.",
                "date_published": "2026-11-26T05:00:00Z",
            },
        ],
    }
).encode()

#: RFC 3987 §2.2: what an IRI may not hold anywhere (and a bare "%"). U+FFF0-U+FFFF are
#: not ucschar either, but the U+FFFD that stands for a lone surrogate in a link is still
#: written as it is (test_a_replaced_surrogate_in_a_link_is_escaped below).
_NOT_IRI = re.compile(r'[\x00-\x20\x7f-\x9f<>"{}|\\^`]|%(?![0-9A-Fa-f]{2})')
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
# RFC 822 as the RSS profile has it: 4-digit year, GMT or a numeric zone.
_RFC822 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d{2}:\d{2}:\d{2} (GMT|[+-]\d{4})"
)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def is_iri(value: str | None) -> bool:
    return (
        bool(value)
        and re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", value or "") is not None
        and (_NOT_IRI.search(value or "") is None)
    )


def is_http_iri(value: str | None) -> bool:
    return (
        is_iri(value)
        and (value or "").startswith(("http://", "https://"))
        and bool(urlsplit(value or "").netloc)
    )


def rfc3339(value: str) -> datetime:
    assert _RFC3339.fullmatch(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rfc822(value: str) -> datetime:
    assert _RFC822.fullmatch(value), value
    return parsedate_to_datetime(value)


def strict(document: str) -> Any:
    return etree.fromstring(document.encode("utf-8"), STRICT)


def read_back(document: str) -> Any:
    """feedparser's view of an XML document, which it must read without complaint."""
    parsed = feedparser.parse(document.encode("utf-8"))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)


def no_active_html(html: str) -> None:
    """Nothing in ``html`` a reader would run, and every link and image absolute."""
    lowered = html.lower()
    assert "<script" not in lowered and "javascript:" not in lowered, html
    assert re.search(r"\son\w+\s*=", lowered) is None, html
    for url in re.findall(r'(?:href|src)="([^"]*)"', html):
        assert url.startswith(("http://", "https://", "mailto:")), html


@pytest.fixture(scope="module")
def _polled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory holding the hostile feeds polled through the real pipeline and
    every story labelled, made once for the module; its server keeps serving them, for a
    test that polls again. Each test gets a copy of it (``app``): none sees another's
    writes, and the poll (worker processes started for three feeds) is not redone 20 times."""
    data = tmp_path_factory.mktemp("polled") / "data"
    s = Settings.from_env(
        {}, data_dir=data, allow_private_addresses=True, extract=False, timeout_s=3
    )
    with LocalServer(root=Path(__file__).parent / "data") as server:
        with make_app(s, now=lambda: NOW) as a:
            a.add_feed(server.route("/hostile.xml", body=HOSTILE_RSS), discover=False)
            a.add_feed(
                server.route("/a.atom", body=HOSTILE_ATOM, content_type="application/atom+xml"),
                discover=False,
            )
            a.add_feed(
                server.route("/j.json", body=HOSTILE_JSON, content_type="application/feed+json"),
                discover=False,
            )
            results = list(a.update_due(all_feeds=True))
            assert sorted((r.status, r.new, r.error) for r in results) == [
                ("ok", 2, None),
                ("ok", 2, None),
                ("ok", 6, None),
            ]
            # A topic whose name needs escaping in XML, on every story.
            for story in a.stories(StoryQuery(limit=None)):
                a.label(story.id, ["Policy & Regulation"], [])
        yield data


@pytest.fixture
def app(tmp_path: Path, _polled: Path) -> Iterator[App]:
    """An App on a copy of ``_polled``'s data directory, for this test alone."""
    data = shutil.copytree(_polled, tmp_path / "data")
    s = Settings.from_env(
        {}, data_dir=data, allow_private_addresses=True, extract=False, timeout_s=3
    )
    with make_app(s, now=lambda: NOW) as a:
        yield a


def _stories(app: App) -> dict[str, Any]:
    return {s.title: s for s in app.stories(StoryQuery(limit=None))}


ALL = StoryQuery(limit=None)


# --- Atom 1.0 ---------------------------------------------------------------------------


def test_atom_export_of_hostile_stories_conforms_to_rfc_4287(app: App) -> None:
    stories = _stories(app)
    out = app.export(ALL, "atom", self_url="https://news.example/feed.atom")
    root = strict(out)
    assert root.tag == f"{ATOM}feed"
    # §4.1.1: exactly one id, title and updated; a self link; authors on every entry.
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"{ATOM}{name}")) == 1, name
    assert is_iri(root.findtext(f"{ATOM}id"))
    rfc3339(root.findtext(f"{ATOM}updated"))
    selfs = [x for x in root.findall(f"{ATOM}link") if x.get("rel") == "self"]
    assert [x.get("href") for x in selfs] == ["https://news.example/feed.atom"]

    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == len(stories) == 9  # the story two feeds carry is one entry
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(set(ids)) == len(ids)
    for e in entries:
        for name in ("id", "title", "updated"):
            assert len(e.findall(f"{ATOM}{name}")) == 1, (name, ids)
        assert is_iri(e.findtext(f"{ATOM}id")), e.findtext(f"{ATOM}id")
        rfc3339(e.findtext(f"{ATOM}updated"))
        for published in e.findall(f"{ATOM}published"):
            rfc3339(published.text)
        assert [a.findtext(f"{ATOM}name") for a in e.findall(f"{ATOM}author")] != []
        alternates = [x for x in e.findall(f"{ATOM}link") if x.get("rel") == "alternate"]
        assert len(alternates) <= 1
        # §4.1.1.1: no alternate link, then content.
        assert alternates or e.find(f"{ATOM}content") is not None
        for link in e.iter(f"{ATOM}link"):
            assert is_http_iri(link.get("href")), link.get("href")
        for html in (e.find(f"{ATOM}summary"), e.find(f"{ATOM}content")):
            if html is not None:
                assert html.get("type") == "html"
                no_active_html(html.text or "")

    parsed = read_back(out)
    by_title = {e.title: e for e in parsed.entries}
    assert set(by_title) == set(stories)  # every title, RTL, long and "]]>" ones too
    for title, s in stories.items():
        e = by_title[title]
        # our topic, then the source's own categories
        assert [t.term for t in e.tags] == ["Policy & Regulation", *s.categories]
        assert e.updated_parsed[:6] == s.date.timetuple()[:6]
        assert e.author == (s.author or s.feed_title)
    assert LONG_TITLE in by_title
    assert by_title[CDATA_TITLE].author == "Ann O'Neil & Co"


def test_atom_dates_keep_odd_zones_and_old_years(app: App) -> None:
    stories = _stories(app)
    root = strict(app.export(ALL, "atom"))
    updated = {e.findtext(f"{ATOM}title"): e.findtext(f"{ATOM}updated") for e in root}
    assert updated[LONG_TITLE] == "1800-01-01T00:00:00Z"
    # +0530 and +14:00 come out in UTC; a date past 9999 in UTC is not trusted.
    assert updated[CDATA_TITLE] == "2026-11-27T04:30:00Z"
    assert updated["x < y & z"] == "2026-11-26T15:00:00Z"
    assert stories["مرحبا بالعالم 🌍 emoji 🎉"].published is None
    assert updated["مرحبا بالعالم 🌍 emoji 🎉"] == "2026-11-28T12:00:00Z"  # first seen


# --- RSS 2.0 ----------------------------------------------------------------------------


def test_rss_export_of_hostile_stories_conforms_to_the_rss_profile(app: App) -> None:
    stories = _stories(app)
    out = app.export(ALL, "rss", self_url="https://news.example/feed.rss")
    root = strict(out)
    assert (root.tag, root.get("version")) == ("rss", "2.0")
    (channel,) = root.findall("channel")
    for name in ("title", "link", "description"):
        assert len(channel.findall(name)) == 1 and channel.findtext(name), name
    rfc822(channel.findtext("lastBuildDate"))
    selfs = [x for x in channel.findall(f"{ATOM}link") if x.get("rel") == "self"]
    assert [(x.get("href"), x.get("type")) for x in selfs] == [
        ("https://news.example/feed.rss", "application/rss+xml")
    ]
    items = channel.findall("item")
    assert len(items) == len(stories)
    guids = []
    for item in items:
        assert item.findtext("title") or item.findtext("description")
        assert len(item.findall("enclosure")) <= 1
        rfc822(item.findtext("pubDate"))
        link = item.findtext("link")
        assert link is None or is_http_iri(link), link
        (guid,) = item.findall("guid")
        guids.append(guid.text)
        assert is_iri(guid.text), guid.text
        # isPermaLink="true" only for a guid that is the item's URL.
        if guid.get("isPermaLink") == "true":
            assert guid.text == link and is_http_iri(guid.text)
        else:
            assert guid.get("isPermaLink") == "false"
        no_active_html(item.findtext("description") or "")
        for source in item.findall("source"):
            assert is_http_iri(source.get("url"))
    assert len(set(guids)) == len(guids)

    parsed = read_back(out)
    assert parsed.version == "rss20"
    by_title = {e.title: e for e in parsed.entries}
    assert set(by_title) == set(stories)
    for title, s in stories.items():
        assert by_title[title].published_parsed[:6] == s.date.timetuple()[:6]
        assert [t.term for t in by_title[title].tags] == ["Policy & Regulation", *s.categories]


def test_rss_export_carries_the_full_content_as_atom_and_json_feed_do(app: App) -> None:
    """A story's content goes in ``content:encoded`` beside its summary, as Atom's
    ``<content>`` and JSON Feed's ``content_html`` carry it: RSS readers were given the
    summary alone."""
    out = app.export(ALL, "rss", self_url="https://news.example/feed.rss")
    atom = read_back(app.export(ALL, "atom", self_url="https://news.example/feed.atom"))
    parsed = read_back(out)
    in_rss = {e.title: [c.value for c in e.get("content", [])] for e in parsed.entries}
    # an Atom entry without a link must have content: its summary stands in there
    linkless = {e.title for e in parsed.entries if not e.get("link")}
    in_atom = {
        e.title: [c.value for c in e.get("content", [])] if e.title not in linkless else []
        for e in atom.entries
    }
    assert in_rss == in_atom
    assert sum(bool(c) for c in in_rss.values()) == 1  # the JSON Feed story with a summary
    content = "{http://purl.org/rss/1.0/modules/content/}encoded"
    for item in strict(out).iter("item"):
        assert len(item.findall(content)) <= 1
        no_active_html(item.findtext(content) or "")


# --- JSON Feed 1.1 ----------------------------------------------------------------------


def test_json_export_of_hostile_stories_conforms_to_json_feed_1_1(app: App) -> None:
    stories = _stories(app)
    out = app.export(ALL, "json", self_url="https://news.example/feed.json")
    doc = json.loads(out.encode("utf-8"))  # a lone surrogate raises on encoding
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and doc["feed_url"] == "https://news.example/feed.json"
    assert "next_url" not in doc or doc["next_url"] != doc["feed_url"]
    assert not any(_NOT_XML.search(s) for s in json_strings(doc))
    items = doc["items"]
    assert {i["title"] for i in items} == set(stories)
    ids = [i["id"] for i in items]
    assert len(set(ids)) == len(ids) and all(isinstance(i, str) and is_iri(i) for i in ids)
    for item in items:
        assert "content_html" in item or "content_text" in item
        assert "author" not in item  # 1.1: authors, an array
        for a in item.get("authors", []):
            assert a["name"]
        rfc3339(item["date_published"])
        if "url" in item:
            assert is_http_iri(item["url"]), item["url"]
        no_active_html(item.get("content_html", ""))
        assert item["tags"] == ["Policy & Regulation", *stories[item["title"]].categories]
    lone = next(i for i in items if i["title"].startswith("Lone"))
    assert (lone["title"], lone["authors"], lone["summary"]) == (
        "Lone \ufffd surrogate",
        [{"name": "Old \ufffd style"}],
        "sum \ufffd",
    )


# --- what every format shares -----------------------------------------------------------


def _categories(document: str, fmt: str) -> dict[str, list[tuple[str | None, str]]]:
    """Each entry's categories by the start of its link (or its title when it has no
    link), as (scheme or domain, term): JSON Feed's tags with our topics' scheme taken
    from ``_aggregator.topics``, which names them."""
    if fmt == "json":
        found = {}
        for i in json.loads(document)["items"]:
            ours = {t["topic"] for t in i["_aggregator"]["topics"]}
            assert i["_aggregator"]["categories"] == [t for t in i["tags"] if t not in ours]
            found[i.get("url") or i["title"]] = [
                ("aggregator:topic" if t in ours else None, t) for t in i["tags"]
            ]
        return found
    root = strict(document)
    if fmt == "rss":
        return {
            item.findtext("link") or item.findtext("title"): [
                (c.get("domain"), c.text or "") for c in item.findall("category")
            ]
            for item in root.iter("item")
        }
    return {
        next((x.get("href") for x in e.findall(f"{ATOM}link")), None)
        or e.findtext(f"{ATOM}title"): [
            (c.get("scheme"), c.get("term") or "") for c in e.findall(f"{ATOM}category")
        ]
        for e in root.findall(f"{ATOM}entry")
    }


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_the_source_feeds_categories_are_exported_beside_our_topics(app: App, fmt: str) -> None:
    """A merged feed carried our topics alone: the categories the story's own feed gave
    it (RSS ``<category>``, Atom ``<category term>``, JSON Feed ``tags``) were stored but
    dropped, so a reader filtering on the source's tags found nothing. They follow our
    topics, without our scheme (RSS domain), which still tells the topics apart; the
    same in the document returned, the one streamed (``aggregator export``) and the one
    served."""
    topic = ("aggregator:topic", "Policy & Regulation")
    returned = app.export(ALL, fmt)
    streamed: list[str] = []
    app.export_to(streamed.append, ALL, fmt, chunk=2)
    with FeedServer(app) as srv:
        _, served = _raw_get(
            srv.url,
            f"GET /feed.{fmt}?limit=0 HTTP/1.1\r\nHost: feeds.example\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
    for document in (returned, "".join(streamed), served):
        found = _categories(document, fmt)
        assert found["https://hostile.example/posts/cdata"] == [topic, (None, "Cats & Dogs")]
        lone = next(v for k, v in found.items() if k.startswith("https://json.example/"))
        assert lone == [topic, (None, "t\ufffd"), (None, "u")]
        assert found["https://hostile.example/long"] == [topic]  # no categories of its own
        assert sum(len(v) for v in found.values()) == len(found) + 3


def test_links_a_browser_would_escape_are_written_as_valid_iris(app: App) -> None:
    """A feed's link with spaces, quotes and braces was written as it came: the Atom id
    and href, the RSS link and its permalink guid, the JSON Feed id and url were all
    invalid IRIs, which strict readers refuse. They are percent-escaped, as a browser
    escapes them before following the link."""
    escaped = "https://hostile.example/a%20b?q=%22x%22&r=%7B1%7D%7C%5E"
    atom = strict(app.export(ALL, "atom"))
    entry = next(e for e in atom if e.findtext(f"{ATOM}title") == "Spaces in the link")
    assert entry.findtext(f"{ATOM}id") == escaped
    assert entry.find(f"{ATOM}link").get("href") == escaped
    rss = strict(app.export(ALL, "rss"))
    item = next(i for i in rss.iter("item") if i.findtext("title") == "Spaces in the link")
    assert (item.findtext("link"), item.findtext("guid")) == (escaped, escaped)
    assert item.find("guid").get("isPermaLink") == "true"
    doc = json.loads(app.export(ALL, "json"))
    found = next(i for i in doc["items"] if i["title"] == "Spaces in the link")
    assert (found["id"], found["url"]) == (escaped, escaped)


def test_a_feed_without_a_self_url_has_an_id_that_is_an_iri(app: App) -> None:
    """``aggregator export`` knows no URL of its own: the Atom feed id was
    "urn:aggregator:export:" and the title as it is, spaces and all."""
    root = strict(app.export(StoryQuery(topics=("Policy & Regulation",), limit=None), "atom"))
    feed_id = root.findtext(f"{ATOM}id")
    assert feed_id == "urn:aggregator:export:aggregator%20—%20Policy%20&%20Regulation"
    assert is_iri(feed_id)


def test_one_story_in_two_feeds_is_one_entry(app: App) -> None:
    for fmt in ("atom", "rss"):
        parsed = read_back(app.export(ALL, fmt))
        assert [e.get("link") for e in parsed.entries].count("https://shared.example/story") == 1
    doc = json.loads(app.export(ALL, "json"))
    assert [i.get("url") for i in doc["items"]].count("https://shared.example/story") == 1


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_cli_export_to_stdout_and_to_a_file_is_one_valid_document(
    env: Path,  # noqa: F811
    server: LocalServer,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
) -> None:
    """The streamed path (``aggregator export``), empty and full, to stdout and to a
    file: the same bytes, a document the format's readers take."""
    # No stories yet: still a whole document.
    code, empty, err = run(capsys, "export", "--format", fmt)
    assert (code, err) == (0, "")
    if fmt == "json":
        assert json.loads(empty)["items"] == []
    else:
        strict(empty)
        assert read_back(empty).entries == []
    s = Settings.from_env(
        {},
        data_dir=env / "data",
        allow_private_addresses=True,
        extract=False,
        workers=1,  # two small feeds: a second worker process only cost its start
    )
    with make_app(s, now=lambda: NOW) as a:
        a.add_feed(server.route("/hostile.xml", body=HOSTILE_RSS), discover=False)
        a.add_feed(
            server.route("/j.json", body=HOSTILE_JSON, content_type="application/feed+json"),
            discover=False,
        )
        assert [r.error for r in a.update_due(all_feeds=True)] == [None, None]
    code, out, err = run(capsys, "export", "--format", fmt, "-n", "0")
    target = env / f"merged.{fmt}"
    code2, _, err2 = run(capsys, "export", "--format", fmt, "-n", "0", "-o", str(target))
    assert (code, err, code2, err2) == (0, "", 0, f"wrote {target}\n")
    assert target.read_text(encoding="utf-8") == out
    if fmt == "json":
        items = json.loads(out.encode("utf-8"))["items"]
        assert len(items) == 8 and all(is_iri(i["id"]) for i in items)
    else:
        root = strict(out)
        parsed = read_back(out)
        assert len(parsed.entries) == 8
        assert all(is_iri(e.id) for e in parsed.entries)
        if fmt == "atom":
            assert is_iri(root.findtext(f"{ATOM}id"))


# --- serve ------------------------------------------------------------------------------


def _raw_get(url: str, request: bytes) -> tuple[int, str]:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    with socket.create_connection((host or "", port or 0), timeout=10) as c:
        c.sendall(request)
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8")


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_served_feeds_conform_and_link_to_themselves(app: App, fmt: str) -> None:
    with FeedServer(app) as srv:
        path = f"/topics/Policy%20%26%20Regulation.{fmt}?limit=0"
        status, body = _raw_get(
            srv.url,
            f"GET {path} HTTP/1.1\r\nHost: feeds.example:8080\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
    assert status == 200
    self_url = f"http://feeds.example:8080{path}"
    home = "http://feeds.example:8080/"  # the index page, the feeds' website
    if fmt == "json":
        doc = json.loads(body)
        assert doc["feed_url"] == self_url and len(doc["items"]) == 9
        assert doc["home_page_url"] == home
        return
    if fmt == "rss":
        assert strict(body).findtext("channel/link") == home
    root = strict(body)
    parsed = read_back(body)
    assert len(parsed.entries) == 9
    assert parsed.feed.title == "aggregator — Policy & Regulation"
    links = root.iter(f"{ATOM}link")
    assert self_url in [x.get("href") for x in links if x.get("rel") == "self"]


def test_serve_refuses_a_host_header_no_url_may_hold(app: App) -> None:
    """The self link (and so the Atom feed id) is built from Host: a value with spaces or
    quotes made them invalid IRIs. RFC 9112 §3.2: 400 for an invalid Host."""
    with FeedServer(app) as srv:
        for host in (b'ex ample"<>', b"a/b", b"x@y", b"100%"):
            status, _ = _raw_get(
                srv.url,
                b"GET /feed.atom HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n",
            )
            assert status == 400, host
        status, _ = _raw_get(
            srv.url,
            b"GET /feed.atom HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        )
        assert status == 400
        for host in (b"[::1]:8080", b"news.example", b"127.0.0.1:1"):
            status, body = _raw_get(
                srv.url,
                b"GET /feed.atom HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n",
            )
            assert status == 200, host
            assert strict(body).findtext(f"{ATOM}id") == f"http://{host.decode()}/feed.atom"


def test_serve_self_link_from_an_odd_request_target_is_a_valid_iri(app: App) -> None:
    """Quotes, angle brackets, braces and raw non-ASCII bytes in the request target went
    into the self link and the feed id as they came."""
    with FeedServer(app) as srv:
        status, body = _raw_get(
            srv.url,
            b'GET /feed.atom?q=x&z="<{|}>"&w=caf\xc3\xa9\x80&p=100%&e=%20 HTTP/1.1\r\n'
            b"Host: feeds.example\r\nConnection: close\r\n\r\n",
        )
    assert status == 200
    root = strict(body)
    feed_id = root.findtext(f"{ATOM}id")
    assert feed_id == (
        "http://feeds.example/feed.atom?q=x&z=%22%3C%7B%7C%7D%3E%22&w=caf%C3%A9%80&p=100%25&e=%20"
    )
    assert is_http_iri(feed_id)


# --- not ours to fix here ---------------------------------------------------------------


def test_an_author_in_a_feed_feedparser_reads_loosely_is_not_escaped_twice(
    app: App, server: LocalServer
) -> None:
    body = HOSTILE_RSS.replace(b"<title>Close ]]&gt;", b"<title>&#x1;Close ]]&gt;")
    body = body.replace(b"hostile.example", b"loose.example")
    app.add_feed(server.route("/loose.xml", body=body), discover=False)
    assert {r.error for r in app.update_due(all_feeds=True)} == {None}
    # its own copy (the hostile feed's copy of the same story is the cluster's first)
    loose = app.stories(replace(ALL, feeds=("/loose.xml",)))
    story = next(s for s in loose if s.title.startswith("Close"))
    assert (story.author, story.categories) == ("Ann O'Neil & Co", ("Cats & Dogs",))


def test_a_replaced_surrogate_in_a_link_is_escaped(app: App) -> None:
    """A JSON Feed url with a lone surrogate is stored with U+FFFD in its place, which an
    IRI may not hold (RFC 3987 ucschar stops at U+FFEF); a browser sends %EF%BF%BD."""
    doc = json.loads(app.export(ALL, "json"))
    lone = next(i for i in doc["items"] if i["title"].startswith("Lone"))
    assert lone["url"] == lone["id"] == "https://json.example/%EF%BF%BDpost"
