"""Merged feeds from stories: RSS 2.0, Atom 1.0 (RFC 4287) and JSON Feed 1.1.

Pure rendering: stories in, a document out; no queries, no I/O. Topics become
categories/tags (with scheme ``aggregator:topic``), so a reader can filter on them; the
categories the story's own feed gave it follow, without that scheme (JSON Feed: in
``tags`` too, and in ``_aggregator.categories``, which says which they are).
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
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from .textutil import html_to_text, one_line, xml_chars
from .types import Story

ATOM_NS = "http://www.w3.org/2005/Atom"
TOPIC_SCHEME = "aggregator:topic"
GENERATOR = "aggregator"
DC_NS = "http://purl.org/dc/elements/1.1/"
DC_CREATOR = f"{{{DC_NS}}}creator"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
CONTENT_ENCODED = f"{{{CONTENT_NS}}}encoded"
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'


def _http(url: str | None) -> str | None:
    """``url`` (made XML-safe and IRI-safe, as it will be written) if it is an absolute
    http(s) URL, else None. The scheme must be the very first characters: a browser skips
    leading spaces and control characters and drops tabs and newlines, so
    ``" javascript:"`` or ``java<TAB>script:`` would still run."""
    if not url:
        return None
    url = xml_chars(url)
    if not url[:8].lower().startswith(("http://", "https://")):
        return None
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # an unbalanced IPv6 bracket
        return None
    # Escaped as a browser escapes it before following it: a feed's link with a space or
    # a quote made the href, the RSS permalink guid and the entry id invalid IRIs.
    return _iri_safe(url) if netloc else None


def _ids(stories: Sequence[Story], owners: Mapping[str, int] | None = None) -> list[str]:
    """Each story's entry id: its link, which readers have remembered it by, unless the
    link does not identify it (a feed that points every item at its home page: the store
    leaves such a story without a canonical URL), it was the id of another story first,
    or another story in the document may have it too. ``owners`` maps canonical URLs to
    the cluster of the first story stored at each (``Store.first_clusters_at``): a
    "today" page's later items, each a story of its own at the first day's URL, were
    given the id a reader had for the first day's story (and so never shown), or a URN
    when they were in one document with it, the first day's story too. Ids must be
    unique within a feed (RFC 4287 §4.2.6; a reader keeps one of two RSS items with the
    same guid), so the others get a URN of the story instead; both tests keep that
    choice the same in every export, whichever of the stories sharing the link it
    holds."""
    held = _held((c for s in stories if (c := _claim(s))), owners)
    return [_entry_id(s, held, owners) for s in stories]


#: A story's claim to its link as its entry id: the link (as written), its canonical
#: URL and its cluster.
_Claim = tuple[str, str, int]


def _claim(s: Story) -> _Claim | None:
    """``s``'s claim: its link, or the link its cluster had as id before ``s`` became its
    first story (``Story.entry_link``: the cluster's first story was pruned, or its feed
    removed, and readers know the story by that id, not by this copy's link)."""
    own = s.cluster_id is None or s.cluster_id == s.id
    link = _http(s.entry_link if own and s.entry_link else s.link)
    if link is None or s.canonical_url is None:
        return None
    return link, s.canonical_url, s.id if s.cluster_id is None else s.cluster_id


def _owns(claim: _Claim, owners: Mapping[str, int] | None) -> bool:
    _, url, cluster = claim
    return owners is None or owners.get(url, cluster) == cluster


def _held(claims: Iterable[_Claim], owners: Mapping[str, int] | None) -> Counter[str]:
    """How many stories of a document, given by their claims, may have each link as id."""
    return Counter(claim[0] for claim in claims if _owns(claim, owners))


def _entry_id(s: Story, held: Counter[str], owners: Mapping[str, int] | None = None) -> str:
    """``s``'s entry id (see ``_ids``), given ``_held`` of the document's stories. A URN
    names the story by its row id (never given twice) and its key; a story at another's
    URL by its row id and the second it was first stored instead: its key moves (a
    "today" page's item is keyed by the page until the next day's comes, then by its
    title and date, ``v1:title-date:``), and each move gave it a new id, which a reader
    showed as another story."""
    claim = _claim(s)
    if claim is not None and not _owns(claim, owners):
        return f"urn:aggregator:story:{s.id}:{s.first_seen.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    if claim is not None and held[claim[0]] == 1:
        return claim[0]
    return f"urn:aggregator:story:{s.id}:{_iri_safe(s.key)}"


#: What an IRI may not hold (RFC 3987 §2.2: spaces, C0 and C1 controls, ``<>"{}|\^` ``,
#: the noncharacters, U+FFFD among them (what the parser puts for a lone surrogate), and
#: a "%" that starts no escape): a guid such as "Weekly update 12" made the Atom id,
#: and the JSON Feed id, an invalid IRI that strict readers refused; so did a link with a
#: space or a quote. Everything else (non-ASCII letters included) stays as it is, so an id
#: that was valid keeps its spelling.
_NOT_IN_IRI = re.compile(
    r'[\x00-\x20\x7f-\x9f<>"{}|\\^`\ufdd0-\ufdef\ufff0-\uffff]|%(?![0-9A-Fa-f]{2})'
)


def _iri_safe(text: str) -> str:
    return _NOT_IN_IRI.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)


def _summary_html(story: Story) -> str | None:
    return story.summary or (story.content if story.content and len(story.content) < 4000 else None)


def _content_html(story: Story) -> str | None:
    """The story's whole text as HTML: the feed's content or the article extracted from
    its page, whichever holds more text. The feed's content came first whatever its
    length, and a feed giving a teaser (``content:encoded``, Atom ``<content>``, a JSON
    Feed's ``content_html``: the stories whose pages are read) kept the article out of
    every export. The article is stored only when longer than the feed's text, but an
    edited story keeps its article when the edit gives the whole text (``fill_row``)."""
    article = None
    if story.full_text:
        paragraphs = [p for p in story.full_text.split("\n") if p.strip()]
        from html import escape

        article = "".join(f"<p>{escape(p)}</p>" for p in paragraphs) or None
    if not story.content or (
        article and len(story.full_text or "") > len(html_to_text(story.content))
    ):
        return article
    return story.content


def _source_categories(story: Story) -> list[str]:
    """The categories the story's own feed gave it, as a merged feed writes them: one
    line, non-empty, each once (the parser stores them so; a row written before it did,
    or by hand, may hold an empty one, which Atom's required ``term`` cannot be)."""
    seen: dict[str, str] = {}
    for category in story.categories:
        text = " ".join(xml_chars(category).split())
        if text:
            seen.setdefault(text.casefold(), text)
    return list(seen.values())


def _author(story: Story) -> str | None:
    """The story's author, unless it is nothing but spaces and what ``xml_chars`` drops
    (a row written before the parser cleaned authors): JSON Feed 1.1's author object must
    name someone, and an empty Atom ``<name>`` or ``dc:creator`` names no one either."""
    return story.author if story.author and xml_chars(story.author).strip() else None


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


@dataclass(frozen=True, slots=True)
class Pages:
    """Where the other pages of a paged feed are (RFC 5005 §3): its first page (the
    subscription URL, which is also the Atom feed's id on every page), the page before
    and the page after this one (None at either end)."""

    first: str
    previous: str | None = None
    next: str | None = None


def render(
    stories: Sequence[Story],
    fmt: str,
    *,
    title: str,
    updated: datetime,
    self_url: str | None = None,
    home_url: str | None = None,
    pages: Pages | None = None,
    owners: Mapping[str, int] | None = None,
) -> str:
    """``owners``: see ``_ids``; without it a link that is the one story's of the
    document with it is its id."""
    if fmt == "atom":
        return render_atom(
            stories, title=title, updated=updated, self_url=self_url, pages=pages, owners=owners
        )
    if fmt == "rss":
        return render_rss(
            stories,
            title=title,
            updated=updated,
            self_url=self_url,
            home_url=home_url,
            pages=pages,
            owners=owners,
        )
    if fmt == "json":
        return render_json(
            stories, title=title, self_url=self_url, home_url=home_url, pages=pages, owners=owners
        )
    raise ValueError(f"unknown format {fmt!r}")


def _page_links(pages: Pages | None) -> list[tuple[str, str]]:
    """(rel, href) of the links to the other pages, as Atom and RSS write them."""
    if pages is None or (pages.previous is None and pages.next is None):
        return []  # one page: the feed is not paged
    links = [("first", pages.first), ("previous", pages.previous), ("next", pages.next)]
    return [(rel, href) for rel, url in links if url and (href := _http(url))]


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """An Atom element under ``parent``."""
    el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _atom_feed(
    *, title: str, updated: datetime, self_url: str | None, pages: Pages | None = None
) -> ET.Element:
    """The Atom document's root with its own elements, before the entries. Every page of
    a paged feed has the first page's URL as its id: they are one feed."""
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    self_url = _http(self_url)
    feed_id = _http(pages.first) if pages is not None else self_url
    _sub(feed, "id", feed_id or f"urn:aggregator:export:{_iri_safe(xml_chars(title))}")
    _sub(feed, "title", title)
    _sub(feed, "updated", _iso(updated))
    _sub(feed, "generator", GENERATOR)
    if self_url:
        _sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    for rel, href in _page_links(pages):
        _sub(feed, "link", rel=rel, href=href, type="application/atom+xml")
    return feed


def _atom_entry(feed: ET.Element, s: Story, entry_id: str) -> None:
    entry = _sub(feed, "entry")
    _sub(entry, "id", entry_id)
    _sub(entry, "title", s.title)
    link = _http(s.link)
    if link:
        _sub(entry, "link", rel="alternate", href=link)
    _sub(entry, "updated", _iso(s.date))
    if s.published:
        _sub(entry, "published", _iso(s.published))
    author = _sub(entry, "author")
    _sub(author, "name", _author(s) or s.feed_title or s.feed_url)
    for t in s.topics:
        # No label: a reader names the category by its label before its term (ours
        # does), and one holding the score ("DNS (0.95)") made the topic another category
        # to an aggregator polling this feed, which lost the topic. RSS has no label.
        _sub(entry, "category", term=t.topic, scheme=TOPIC_SCHEME)
    for category in _source_categories(s):
        _sub(entry, "category", term=category)
    summary = _summary_html(s)
    if summary:
        _sub(entry, "summary", summary, type="html")
    content = _content_html(s)
    if not link:
        # An entry with no alternate link must have content (RFC 4287 §4.1.1.1): a
        # link-less RSS item with only a description gave an entry validators refuse.
        _sub(entry, "content", content or summary or "", type="html")
    elif content and content != summary:
        _sub(entry, "content", content, type="html")
    source = _sub(entry, "source")
    feed_link = _http(s.feed_url)
    _sub(source, "id", feed_link or f"urn:aggregator:feed:{s.feed_id}")
    _sub(source, "title", s.feed_title or feed_link or f"feed {s.feed_id}")
    if feed_link:
        _sub(source, "link", rel="self", href=feed_link)


def render_atom(
    stories: Sequence[Story],
    *,
    title: str,
    updated: datetime,
    self_url: str | None = None,
    pages: Pages | None = None,
    owners: Mapping[str, int] | None = None,
) -> str:
    ET.register_namespace("", ATOM_NS)
    feed = _atom_feed(
        title=title, updated=_newest(stories, updated), self_url=self_url, pages=pages
    )
    for s, entry_id in zip(stories, _ids(stories, owners), strict=True):
        _atom_entry(feed, s, entry_id)
    ET.indent(_xml_safe(feed))
    return XML_DECLARATION + ET.tostring(feed, encoding="unicode") + "\n"


def _rss_channel(
    *,
    title: str,
    last_build: datetime,
    self_url: str | None,
    home_url: str | None,
    pages: Pages | None = None,
) -> tuple[ET.Element, ET.Element]:
    """The RSS document's root and channel with the channel's own elements."""
    rss = ET.Element("rss", version="2.0")
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = title
    home_url, self_url = _http(home_url), _http(self_url)
    ET.SubElement(channel, "link").text = home_url or self_url or "urn:aggregator"
    ET.SubElement(channel, "description").text = f"{title}: merged, deduplicated and tagged"
    ET.SubElement(channel, "generator").text = GENERATOR
    # The newest story's date, as Atom's <updated>: the time of rendering would change
    # the bytes, and so serve's ETag, every second.
    ET.SubElement(channel, "lastBuildDate").text = format_datetime(last_build, usegmt=True)
    if self_url:
        ET.SubElement(
            channel, f"{{{ATOM_NS}}}link", href=self_url, rel="self", type="application/rss+xml"
        )
    for rel, href in _page_links(pages):
        ET.SubElement(channel, f"{{{ATOM_NS}}}link", href=href, rel=rel, type="application/rss+xml")
    return rss, channel


def _rss_item(channel: ET.Element, s: Story, entry_id: str) -> None:
    item = ET.SubElement(channel, "item")
    ET.SubElement(item, "title").text = s.title
    link = _http(s.link)
    if link:
        ET.SubElement(item, "link").text = link
    # isPermaLink="true" says the guid is the item's URL (RSS 2.0), and readers open it.
    guid = ET.SubElement(item, "guid", isPermaLink="true" if entry_id == link else "false")
    guid.text = entry_id
    ET.SubElement(item, "pubDate").text = format_datetime(s.date, usegmt=True)
    if author := _author(s):
        # RSS 2.0 has no author-name element (only an e-mail address); use Dublin Core.
        ET.SubElement(item, DC_CREATOR).text = author
    for t in s.topics:
        ET.SubElement(item, "category", domain=TOPIC_SCHEME).text = t.topic
    for category in _source_categories(s):
        ET.SubElement(item, "category").text = category
    desc = _summary_html(s) or _content_html(s)
    if desc:
        ET.SubElement(item, "description").text = desc
    if (content := _rss_content(s)) is not None:
        ET.SubElement(item, CONTENT_ENCODED).text = content
    feed_link = _http(s.feed_url)
    if feed_link:  # RSS requires the url attribute
        ET.SubElement(item, "source", url=feed_link).text = s.feed_title or feed_link


def _rss_content(s: Story) -> str | None:
    """The whole story for an RSS item's ``content:encoded`` when its description is not
    that already, as Atom's ``<content>`` and JSON Feed's ``content_html`` carry it (RSS
    readers were given the summary alone)."""
    content = _content_html(s)
    return content if content and content != (_summary_html(s) or content) else None


def _rss_namespaces() -> None:
    ET.register_namespace("atom", ATOM_NS)
    ET.register_namespace("dc", DC_NS)
    ET.register_namespace("content", CONTENT_NS)


def render_rss(
    stories: Sequence[Story],
    *,
    title: str,
    updated: datetime,
    self_url: str | None = None,
    home_url: str | None = None,
    pages: Pages | None = None,
    owners: Mapping[str, int] | None = None,
) -> str:
    _rss_namespaces()
    rss, channel = _rss_channel(
        title=title,
        last_build=_newest(stories, updated),
        self_url=self_url,
        home_url=home_url,
        pages=pages,
    )
    for s, entry_id in zip(stories, _ids(stories, owners), strict=True):
        _rss_item(channel, s, entry_id)
    ET.indent(_xml_safe(rss))
    return XML_DECLARATION + ET.tostring(rss, encoding="unicode") + "\n"


def _json_item(s: Story, entry_id: str) -> dict[str, Any]:
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
    if author := _author(s):
        item["authors"] = [{"name": author}]
    categories = _source_categories(s)
    # JSON Feed's tags have no scheme: _aggregator's topics and categories tell them
    # apart. Each tag once, as the document will spell it (a topic first).
    tags: dict[str, str] = {}
    for tag in (*(xml_chars(t.topic) for t in s.topics), *categories):
        tags.setdefault(tag.casefold(), tag)
    if tags:
        item["tags"] = list(tags.values())
    item["_aggregator"] = {
        "story_id": s.id,
        "feed": s.feed_url,
        "feed_title": s.feed_title,
        "topics": [
            {"topic": t.topic, "score": round(t.score, 4), "source": t.source} for t in s.topics
        ],
        "categories": categories,
    }
    return item


def _json_doc(
    *, title: str, self_url: str | None, home_url: str | None, pages: Pages | None = None
) -> dict[str, Any]:
    """The JSON Feed document without its items. JSON Feed has one link between pages,
    ``next_url``; ``feed_url`` is the subscription's, the first page's."""
    doc: dict[str, Any] = {"version": "https://jsonfeed.org/version/1.1", "title": title}
    home_url, self_url = _http(home_url), _http(self_url)
    if home_url:
        doc["home_page_url"] = home_url
    feed_url = _http(pages.first) if pages is not None else self_url
    if feed_url:
        doc["feed_url"] = feed_url
    if pages is not None and (next_url := _http(pages.next)):
        doc["next_url"] = next_url
    return doc


def _dumps(value: Any) -> str:
    return json.dumps(_json_safe(value), ensure_ascii=False, indent=2)


def render_json(
    stories: Sequence[Story],
    *,
    title: str,
    self_url: str | None = None,
    home_url: str | None = None,
    pages: Pages | None = None,
    owners: Mapping[str, int] | None = None,
) -> str:
    ids = _ids(stories, owners)
    items = [_json_item(s, entry_id) for s, entry_id in zip(stories, ids, strict=True)]
    doc = _json_doc(title=title, self_url=self_url, home_url=home_url, pages=pages)
    doc["items"] = items
    return _dumps(doc) + "\n"


# --- streamed: the same bytes, written as the stories come ----------------------------------


@dataclass(slots=True)
class Outline:
    """What a document needs from all of its stories before its first entry: their
    claims to their links (the entry ids, ``_ids``), the newest date (the feed's date) and
    whether any story has an author or content beside its summary (RSS declares the
    Dublin Core and content namespaces on its root). ``outline`` gathers it in a first
    pass over the stories."""

    #: The stories' claims to their links as entry ids, and (the caller fills it in from
    #: the store) the cluster of the first story at each of their canonical URLs.
    claims: Counter[_Claim] = field(default_factory=Counter)
    owners: dict[str, int] | None = None
    newest: datetime | None = None
    authors: bool = False
    contents: bool = False

    def add(self, s: Story) -> None:
        if claim := _claim(s):
            self.claims[claim] += 1
        if self.newest is None or s.date > self.newest:
            self.newest = s.date
        self.authors = self.authors or _author(s) is not None
        self.contents = self.contents or _rss_content(s) is not None


def outline(stories: Iterable[Story]) -> Outline:
    found = Outline()
    for s in stories:
        found.add(s)
    return found


def _batches(
    stories: Iterable[Story], found: Outline, size: int
) -> Iterator[list[tuple[Story, str]]]:
    batch: list[tuple[Story, str]] = []
    held = _held(found.claims.elements(), found.owners)
    for s in stories:
        batch.append((s, _entry_id(s, held, found.owners)))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _between(text: str, start: str, end: str) -> str:
    """``text`` after the first ``start`` and before the last ``end``."""
    return text[text.index(start) + len(start) : text.rindex(end)]


def write_feed(
    stories: Iterable[Story],
    fmt: str,
    write: Callable[[str], object],
    *,
    outline: Outline,
    title: str,
    updated: datetime,
    self_url: str | None = None,
    home_url: str | None = None,
    batch: int = 100,
) -> None:
    """Write what ``render`` returns for the same stories, ``batch`` entries at a time:
    memory holds one batch, whatever the number of stories. ``outline`` is the
    ``Outline`` of the same stories (a first pass over them).

    Each batch is an ElementTree (or JSON) document of its own, serialized as ``render``
    does and cut out of its root: ``ET.indent`` indents an entry by its depth alone, and
    the namespace prefixes are the registered ones, so the pieces are the whole
    document's. The head is cut from a document holding a stand-in entry (in RSS with
    an author, so that the root declares what the entries use)."""
    if fmt not in ("atom", "rss", "json"):
        raise ValueError(f"unknown format {fmt!r}")
    newest = outline.newest or updated
    entries = _batches(stories, outline, batch)
    if fmt == "atom":
        ET.register_namespace("", ATOM_NS)
        feed = _atom_feed(title=title, updated=newest, self_url=self_url)
        _sub(feed, "entry")
        ET.indent(_xml_safe(feed))
        head = ET.tostring(feed, encoding="unicode")
        write(XML_DECLARATION + head[: head.index("\n  <entry")])
        for part in entries:
            ET.register_namespace("", ATOM_NS)
            root = ET.Element(f"{{{ATOM_NS}}}feed")
            for s, entry_id in part:
                _atom_entry(root, s, entry_id)
            ET.indent(_xml_safe(root))
            write(_between(ET.tostring(root, encoding="unicode"), ">", "\n</feed>"))
        write("\n</feed>\n")
    elif fmt == "rss":
        _rss_namespaces()
        rss, channel = _rss_channel(
            title=title, last_build=newest, self_url=self_url, home_url=home_url
        )
        stand_in = ET.SubElement(channel, "item")
        if outline.authors:
            ET.SubElement(stand_in, DC_CREATOR)
        if outline.contents:
            ET.SubElement(stand_in, CONTENT_ENCODED)
        ET.indent(_xml_safe(rss))
        head = ET.tostring(rss, encoding="unicode")
        write(XML_DECLARATION + head[: head.index("\n    <item")])
        for part in entries:
            _rss_namespaces()
            root = ET.Element("rss", version="2.0")
            channel = ET.SubElement(root, "channel")
            for s, entry_id in part:
                _rss_item(channel, s, entry_id)
            ET.indent(_xml_safe(root))
            write(_between(ET.tostring(root, encoding="unicode"), "<channel>", "\n  </channel>"))
        write("\n  </channel>\n</rss>\n")
    else:
        doc = _json_doc(title=title, self_url=self_url, home_url=home_url)
        doc["items"] = []
        empty = _dumps(doc)  # ... "items": []\n}
        first = True
        for part in entries:
            items = [_json_item(s, entry_id) for s, entry_id in part]
            body = _between(_dumps({"items": items}), '"items": [', "\n  ]\n}")
            write((empty[: -len("]\n}")] if first else ",") + body)
            first = False
        write(empty + "\n" if first else "\n  ]\n}\n")
