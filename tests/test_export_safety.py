"""Exported feeds are well-formed whatever the stories hold.

Control characters, U+FFFE/U+FFFF and lone surrogates in any field still give RSS and Atom
that a strict XML parser accepts and JSON Feed that is valid UTF-8 JSON: from stories as a
database written before the parser cleaned them may hold them (export.py on its own), and
end to end from hostile feeds through the real pipeline (local server -> parse -> SQLite
store -> export), where they must not reach the store at all.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from httpserver import LocalServer
from lxml import etree

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.export import ATOM_NS, outline, render, write_feed
from aggregator.types import Story, StoryQuery, TopicScore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# XML 1.0 §2.2 forbids these; a lone surrogate is not even encodable as UTF-8.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
BAD = "\x01\x08\x0b\x0c\x1f\ufffe\uffff\ud800\udfff\x00"
STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)


def strict_xml(document: str) -> etree._Element:
    """The document as a strict parser sees it (lxml/libxml2 and expat both)."""
    data = document.encode("utf-8")  # a surrogate raises here
    ET.fromstring(data)
    return etree.fromstring(data, STRICT)


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


def story(**overrides: Any) -> Story:
    fields: dict[str, Any] = {
        "id": 1,
        "feed_id": 1,
        "feed_url": f"https://feed.example/rss{BAD}",
        "feed_title": f"Feed{BAD}",
        "key": f"v1:guid:g{BAD}",
        "guid": f"g{BAD}",
        "link": f"https://site.example/a{BAD}",
        "canonical_url": "https://site.example/a",
        "title": f"Title{BAD}end",
        "author": f"Ann{BAD}",
        "published": datetime(2026, 11, 27, 9, tzinfo=UTC),
        "first_seen": NOW,
        "summary": f"<p>Summary{BAD}</p>",
        "content": f"<p>Content{BAD}</p>" * 3,
        "full_text": None,
        "extraction_status": "skipped",
        "extraction_error": None,
        "categories": (f"DNS{BAD}",),
        "topics": (TopicScore(topic=f"DNS{BAD}", score=0.9),),
    }
    fields.update(overrides)
    return Story(**fields)


STORIES = [
    story(),
    story(id=2, link=None, published=None, content=None, summary=None, full_text=f"a{BAD}\nb"),
]


FFFD2 = "%EF%BF%BD%EF%BF%BD"  # two U+FFFD, as a link holds them


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_xml_exports_of_dirty_stories_are_well_formed(fmt: str) -> None:
    out = render(
        STORIES, fmt, title=f"Export{BAD}", updated=NOW, self_url=f"https://x.example/{BAD}"
    )
    root = strict_xml(out)
    texts = [t for el in root.iter() for t in (el.text, *el.attrib.values()) if t]
    assert not any(NOT_XML.search(t) for t in texts)
    ns = {"a": ATOM_NS}
    path = "channel/item/title" if fmt == "rss" else "a:entry/a:title"
    # Surrogates become U+FFFD (something was there); the other characters are dropped.
    assert root.findtext(path, namespaces=ns) == "Title\ufffd\ufffdend"
    if fmt == "rss":
        # in a link, escaped: an IRI may not hold U+FFFD (RFC 3987 ucschar)
        assert root.findtext("channel/item/link") == f"https://site.example/a{FFFD2}"
        assert root.findtext("channel/item/category") == "DNS\ufffd\ufffd"
    else:
        link = root.find("a:entry/a:link", ns)
        assert link is not None and link.get("href") == f"https://site.example/a{FFFD2}"
        category = root.find("a:entry/a:category", ns)
        assert category is not None and category.get("term") == "DNS\ufffd\ufffd"
        assert root.findtext("a:entry/a:author/a:name", namespaces=ns) == "Ann\ufffd\ufffd"


def test_json_export_of_dirty_stories_is_valid_json() -> None:
    out = render(STORIES, "json", title=f"Export{BAD}", updated=NOW)
    doc = json.loads(out.encode("utf-8"))  # a surrogate raises on encoding
    assert not any(NOT_XML.search(s) for s in json_strings(doc))
    first = doc["items"][0]
    assert (first["title"], first["authors"], first["tags"]) == (
        "Title\ufffd\ufffdend",
        [{"name": "Ann\ufffd\ufffd"}],
        ["DNS\ufffd\ufffd"],
    )


# --- end to end: hostile feeds through the real pipeline -----------------------------------

RSS_BODY = (
    b'<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    b"<channel><title>Dirty &#x1;RSS</title><link>http://rss.example/</link>"
    b"<item><title>Registry &#x1;update &#xd800;</title><link>http://rss.example/a</link>"
    b"<guid>r1</guid><dc:creator>Ann&#xFFFE;</dc:creator><category>DNS&#x8;</category>"
    b"<description>Body &#x8;text &amp;#1; &amp;#xd800;</description>"
    b"<pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item>"
    b"</channel></rss>"
)
# json.dumps writes a lone surrogate as the escape "\ud800", as broken publishers do.
JSON_BODY = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Dirty\u0001 JSON",
        "home_page_url": "http://json.example/",
        "items": [
            {
                "id": "j1",
                "url": "http://json.example/1",
                "title": "Lone \ud800 title\u0001",
                "summary": "sum \udfff",
                "content_html": "<p>html \ud800 \u000b x &#1;</p>",
                "tags": ["t\ud800", "u\u0002"],
                "authors": [{"name": "Bo\u0007b"}],
                "date_published": "2026-11-27T11:00:00Z",
            },
            {
                "id": "j2",
                "url": "http://json.example/2",
                "title": "From the future",
                "content_text": "text \ud800\u0001",
                "date_published": "2099-01-01T00:00:00Z",
            },
        ],
    }
).encode()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    s = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, extract=False, timeout_s=3
    )
    with make_app(s, now=lambda: NOW) as a:
        yield a


def test_hostile_feeds_are_stored_clean_and_export_well_formed(
    app: App, server: LocalServer
) -> None:
    app.add_feed(server.route("/dirty.xml", body=RSS_BODY), discover=False)
    app.add_feed(
        server.route("/dirty.json", body=JSON_BODY, content_type="application/feed+json"),
        discover=False,
    )
    results = list(app.update_due(all_feeds=True))
    assert sorted((r.status, r.new, r.error) for r in results) == [("ok", 1, None), ("ok", 2, None)]

    stories = {s.key: s for s in app.stories(StoryQuery(limit=None))}
    for s in stories.values():
        for value in (s.title, s.link, s.author, s.summary, s.content, s.feed_title, *s.categories):
            assert value is None or NOT_XML.search(value) is None, value
    rss_story, json_story = stories["v1:guid:r1"], stories["v1:guid:j1"]
    assert (rss_story.title, rss_story.author, rss_story.categories) == (
        "Registry update \ufffd",
        "Ann",
        ("DNS",),
    )
    assert rss_story.summary == "Body text  \ufffd"  # "&#1;" went, its space stayed
    assert (json_story.title, json_story.author) == ("Lone \ufffd title", "Bob")
    assert json_story.categories == ("t\ufffd", "u")
    assert json_story.content == "<p>html \ufffd  x </p>"

    # The 2099 date is not trusted: the story sorts by when it was first seen.
    future = stories["v1:guid:j2"]
    assert (future.published, future.date) == (None, NOW)

    for fmt in ("rss", "atom"):
        root = strict_xml(app.export(StoryQuery(limit=None), fmt))
        if fmt == "atom":
            assert root.findtext(f"{{{ATOM_NS}}}updated") == "2026-11-28T12:00:00Z"
    doc = json.loads(app.export(StoryQuery(limit=None), "json").encode("utf-8"))
    assert not any(NOT_XML.search(s) for s in json_strings(doc))
    # the date, not "2099" alone: the server's random port may hold those digits
    assert "2099-01-01" not in json.dumps(doc)


@pytest.mark.parametrize(
    "author", ["  \t", "\x01\x02", "\x00\ufffe \x0b"], ids=["blank", "c0", "mix"]
)
def test_an_author_of_nothing_but_what_is_dropped_is_no_author(author: str) -> None:
    """JSON Feed 1.1: an author object names someone (name, url or avatar). An author of
    spaces or of characters the export drops (a row written before the parser stripped
    and cleaned them) gave ``"authors": [{"name": ""}]``, an Atom ``<name/>`` and an empty
    ``dc:creator``; such a story has no author: JSON Feed leaves ``authors`` out and Atom
    names the feed, as for a story without one."""
    stories = [story(author=author), story(id=2, author=None)]
    doc = json.loads(render(stories, "json", title="Export", updated=NOW))
    assert ["authors" in item for item in doc["items"]] == [False, False]
    atom = strict_xml(render(stories, "atom", title="Export", updated=NOW))
    names = atom.findall(f"{{{ATOM_NS}}}entry/{{{ATOM_NS}}}author/{{{ATOM_NS}}}name")
    assert [n.text for n in names] == ["Feed\ufffd\ufffd"] * 2
    rss = render(stories, "rss", title="Export", updated=NOW)
    assert "dc:creator" not in rss
    streamed: list[str] = []
    write_feed(
        stories, "rss", streamed.append, outline=outline(stories), title="Export", updated=NOW
    )
    assert "".join(streamed) == rss
