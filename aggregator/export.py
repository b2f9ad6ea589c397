"""Merged feeds from stories: RSS 2.0, Atom 1.0 (RFC 4287) and JSON Feed 1.1.

Pure rendering: stories in, a document out; no queries, no I/O. Topics become
categories/tags (with scheme ``aggregator:topic``), so a reader can filter on them.
The same stories give the same bytes (the feed's date is its newest story's, never the
clock), so ``serve``'s ETag holds until the content changes.

Only http(s) URLs are written as links (story links, feed links, the self and home
links): the parser refuses the others, but a row written before it did, or by hand, may
hold ``javascript:``, and a reader would render it as a link.

Every text and attribute value written passes ``textutil.xml_chars`` on the way out:
ElementTree writes a control character or a lone surrogate as it is, giving XML no
parser accepts (and ``json.dumps(ensure_ascii=False)`` a surrogate UTF-8 cannot encode).
The parser no longer lets such characters in, but a database written before it did may
hold them, so the documents are made safe here whatever the stories contain.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from .textutil import html_to_text, one_line, xml_chars
from .types import Story

ATOM_NS = "http://www.w3.org/2005/Atom"
TOPIC_SCHEME = "aggregator:topic"
GENERATOR = "aggregator"


def _http(url: str | None) -> str | None:
    """``url`` (made XML-safe, as it will be written) if it is an absolute http(s) URL,
    else None. The scheme must be the very first characters: a browser skips leading
    spaces and control characters and drops tabs and newlines, so ``" javascript:"`` or
    ``java<TAB>script:`` would still run."""
    if not url:
        return None
    url = xml_chars(url)
    if not url[:8].lower().startswith(("http://", "https://")):
        return None
    try:
        return url if urlsplit(url).netloc else None
    except ValueError:  # an unbalanced IPv6 bracket
        return None


def _ids(stories: Sequence[Story]) -> list[str]:
    """Each story's entry id: its link, which readers have remembered it by, unless the
    link does not identify it (a feed that points every item at its home page: the store
    leaves such a story without a canonical URL) or another story in the document has the
    same link. Ids must be unique within a feed (RFC 4287 §4.2.6; a reader keeps one of
    two RSS items with the same guid), so those get a URN of the story instead; the
    canonical-URL test keeps that choice the same in every export, whichever of the
    stories sharing the link it holds."""
    links = Counter(_http(s.link) for s in stories)
    return [
        link
        if link and s.canonical_url is not None and links[link] == 1
        else f"urn:aggregator:story:{s.id}:{s.key}"
        for s, link in ((s, _http(s.link)) for s in stories)
    ]


def _summary_html(story: Story) -> str | None:
    return story.summary or (story.content if story.content and len(story.content) < 4000 else None)


def _content_html(story: Story) -> str | None:
    if story.content:
        return story.content
    if story.full_text:
        paragraphs = [p for p in story.full_text.split("\n") if p.strip()]
        from html import escape

        return "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return None


def _newest(stories: Sequence[Story], default: datetime) -> datetime:
    """The feed's date: its newest story's, ``default`` only for an empty feed."""
    return max((s.date for s in stories), default=default)


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _xml_safe(root: ET.Element) -> ET.Element:
    """``root`` with every text, tail and attribute value reduced to XML characters."""
    for el in root.iter():
        if el.text:
            el.text = xml_chars(el.text)
        if el.tail:
            el.tail = xml_chars(el.tail)
        for name, value in el.attrib.items():
            el.attrib[name] = xml_chars(value)
    return root


def _json_safe(value: Any) -> Any:
    """``value`` (JSON-ready) with every string, keys included, reduced to XML characters:
    valid Unicode, and nothing a JSON Feed reader would show as a control character."""
    if isinstance(value, str):
        return xml_chars(value)
    if isinstance(value, dict):
        return {_json_safe(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def render(
    stories: Sequence[Story],
    fmt: str,
    *,
    title: str,
    updated: datetime,
    self_url: str | None = None,
    home_url: str | None = None,
) -> str:
    if fmt == "atom":
        return render_atom(stories, title=title, updated=updated, self_url=self_url)
    if fmt == "rss":
        return render_rss(
            stories, title=title, updated=updated, self_url=self_url, home_url=home_url
        )
    if fmt == "json":
        return render_json(stories, title=title, self_url=self_url, home_url=home_url)
    raise ValueError(f"unknown format {fmt!r}")


def render_atom(
    stories: Sequence[Story], *, title: str, updated: datetime, self_url: str | None = None
) -> str:
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    self_url = _http(self_url)
    sub(feed, "id", self_url or f"urn:aggregator:export:{title}")
    sub(feed, "title", title)
    sub(feed, "updated", _iso(_newest(stories, updated)))
    sub(feed, "generator", GENERATOR)
    if self_url:
        sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    for s, entry_id in zip(stories, _ids(stories), strict=True):
        entry = sub(feed, "entry")
        sub(entry, "id", entry_id)
        sub(entry, "title", s.title)
        link = _http(s.link)
        if link:
            sub(entry, "link", rel="alternate", href=link)
        sub(entry, "updated", _iso(s.date))
        if s.published:
            sub(entry, "published", _iso(s.published))
        author = sub(entry, "author")
        sub(author, "name", s.author or s.feed_title or s.feed_url)
        for t in s.topics:
            sub(
                entry,
                "category",
                term=t.topic,
                scheme=TOPIC_SCHEME,
                label=f"{t.topic} ({t.score:.2f})",
            )
        summary = _summary_html(s)
        if summary:
            sub(entry, "summary", summary, type="html")
        content = _content_html(s)
        if content and content != summary:
            sub(entry, "content", content, type="html")
        source = sub(entry, "source")
        feed_link = _http(s.feed_url)
        sub(source, "id", feed_link or f"urn:aggregator:feed:{s.feed_id}")
        sub(source, "title", s.feed_title or feed_link or f"feed {s.feed_id}")
        if feed_link:
            sub(source, "link", rel="self", href=feed_link)
    ET.indent(_xml_safe(feed))
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"


def render_rss(
    stories: Sequence[Story],
    *,
    title: str,
    updated: datetime,
    self_url: str | None = None,
    home_url: str | None = None,
) -> str:
    ET.register_namespace("atom", ATOM_NS)
    rss = ET.Element("rss", version="2.0")
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = title
    home_url, self_url = _http(home_url), _http(self_url)
    ET.SubElement(channel, "link").text = home_url or self_url or "urn:aggregator"
    ET.SubElement(channel, "description").text = f"{title}: merged, deduplicated and tagged"
    ET.SubElement(channel, "generator").text = GENERATOR
    # The newest story's date, as Atom's <updated>: the time of rendering would change
    # the bytes, and so serve's ETag, every second.
    last_build = _newest(stories, updated)
    ET.SubElement(channel, "lastBuildDate").text = format_datetime(last_build, usegmt=True)
    if self_url:
        ET.SubElement(
            channel, f"{{{ATOM_NS}}}link", href=self_url, rel="self", type="application/rss+xml"
        )
    for s, entry_id in zip(stories, _ids(stories), strict=True):
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = s.title
        link = _http(s.link)
        if link:
            ET.SubElement(item, "link").text = link
        # isPermaLink="true" says the guid is the item's URL (RSS 2.0), and readers open it.
        guid = ET.SubElement(item, "guid", isPermaLink="true" if entry_id == link else "false")
        guid.text = entry_id
        ET.SubElement(item, "pubDate").text = format_datetime(s.date, usegmt=True)
        if s.author:
            ET.SubElement(item, "dc_creator").text = s.author
        for t in s.topics:
            ET.SubElement(item, "category", domain=TOPIC_SCHEME).text = t.topic
        desc = _summary_html(s) or _content_html(s)
        if desc:
            ET.SubElement(item, "description").text = desc
        feed_link = _http(s.feed_url)
        if feed_link:  # RSS requires the url attribute
            ET.SubElement(item, "source", url=feed_link).text = s.feed_title or feed_link
    # RSS 2.0 has no author-name element (only an e-mail address); use Dublin Core.
    for el in rss.iter("dc_creator"):
        el.tag = "{http://purl.org/dc/elements/1.1/}creator"
    ET.register_namespace("dc", "http://purl.org/dc/elements/1.1/")
    ET.indent(_xml_safe(rss))
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(rss, encoding="unicode") + "\n"


def render_json(
    stories: Sequence[Story],
    *,
    title: str,
    self_url: str | None = None,
    home_url: str | None = None,
) -> str:
    items: list[dict[str, Any]] = []
    for s, entry_id in zip(stories, _ids(stories), strict=True):
        item: dict[str, Any] = {"id": entry_id, "title": s.title}
        link = _http(s.link)
        if link:
            item["url"] = link
        content = _content_html(s)
        if content:
            item["content_html"] = content
        else:
            item["content_text"] = html_to_text(s.summary or "") or s.title
        summary = s.summary and one_line(html_to_text(s.summary), 500)
        if summary:
            item["summary"] = summary
        if s.published:
            item["date_published"] = _iso(s.published)
        else:
            item["date_published"] = _iso(s.first_seen)
        if s.author:
            item["authors"] = [{"name": s.author}]
        if s.topics:
            item["tags"] = [t.topic for t in s.topics]
        item["_aggregator"] = {
            "story_id": s.id,
            "feed": s.feed_url,
            "feed_title": s.feed_title,
            "topics": [
                {"topic": t.topic, "score": round(t.score, 4), "source": t.source} for t in s.topics
            ],
        }
        items.append(item)
    doc: dict[str, Any] = {"version": "https://jsonfeed.org/version/1.1", "title": title}
    home_url, self_url = _http(home_url), _http(self_url)
    if home_url:
        doc["home_page_url"] = home_url
    if self_url:
        doc["feed_url"] = self_url
    doc["items"] = items
    return json.dumps(_json_safe(doc), ensure_ascii=False, indent=2) + "\n"
