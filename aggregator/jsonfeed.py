"""JSON Feed 1.0/1.1 documents -> :class:`~aggregator.types.ParsedFeed`, read by hand:
:func:`aggregator.parse.parse_feed` hands a body here when it or its Content-Type says JSON.

Owns: the JSON Feed shape: ``items`` (an item that is not a JSON object is skipped, with a
warning), the version, ids written as JSON numbers (of any length), the authors of 1.0
(``author``) and 1.1 (``authors``, first unless it names no one), titles as plain text
(as its spec says; the character references WordPress writes there read as
characters), ``content_html``
before ``content_text`` (which stands in when the HTML sanitises to nothing, or to
nothing shown: ``<p></p>``),
``summary`` as text (the same), attachments as enclosures, an id that is an absolute
http(s) URL as the link of an item without ``url`` or ``external_url``, and
``home_page_url`` as the base of relative links before the feed URL (the format defines
no base).

Must not: do any I/O, or import :mod:`aggregator.parse` (which imports it). Cleaning the
values is :mod:`aggregator.feedclean`'s and reading dates :mod:`aggregator.feeddates`', as
for RSS and Atom.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aggregator.errors import ParseError
from aggregator.feedclean import (
    _char_refs,
    _clean_str,
    _fallback_title,
    _first_link,
    _links,
    _sanitize,
    _text_to_html,
    _unique,
)
from aggregator.feeddates import _iso_utc, _trusted
from aggregator.textutil import html_to_text, xml_chars
from aggregator.types import ParsedEntry, ParsedFeed


def _parse_json_feed(body: bytes, url: str, latest: datetime) -> ParsedFeed:
    try:
        # detects UTF-8/16/32 and skips a UTF-8 BOM (RFC 8259)
        doc = json.loads(body, parse_int=_json_int)
    except (ValueError, RecursionError) as e:
        raise ParseError(url, f"not a feed: invalid JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ParseError(url, "not a feed: JSON document has no 'items' list")
    declared = doc.get("version")
    # the last segment of the URL: also written with a trailing "/" or spaces around it,
    # which warned "unknown JSON Feed version" on every poll
    version = {"1": "json10", "1.1": "json11"}.get(
        declared.strip().rstrip("/").rsplit("/", 1)[-1] if isinstance(declared, str) else "",
        "json",
    )
    warnings = [] if version != "json" else [f"unknown JSON Feed version: {declared!r}"]
    feed_authors = _json_authors(doc)
    home = _first_link([_str(doc.get("home_page_url"))], url)
    entries = [
        _json_entry(i, home or url, feed_authors, latest)
        for i in doc["items"]
        if isinstance(i, dict)
    ]
    if skipped := len(doc["items"]) - len(entries):
        warnings.append(f"skipped {skipped} item{'s' if skipped > 1 else ''}: not a JSON object")
    return ParsedFeed(
        url=url,
        version=version,
        title=_plain(doc.get("title")),
        link=home,
        description=_plain(doc.get("description")),
        entries=tuple(entries),
        warnings=tuple(warnings),
    )


def _json_entry(
    item: Mapping[str, Any], base: str, feed_authors: str | None, latest: datetime
) -> ParsedEntry:
    html = _str(item.get("content_html"))
    text = _str(item.get("content_text"))
    content = _sanitize(html, base) if html and not html.isspace() else None
    has_text = bool(text and not text.isspace())
    if content is not None and has_text and _blank(content):
        content = None  # "<p></p>": the text was lost and the story "(untitled)"
    if content is None and text and has_text:
        # also when the HTML was only what the sanitiser drops (a video post's iframe):
        # the text was lost with it and the story titled "(untitled)"
        content = _text_to_html(text)
    raw_summary = item.get("summary")
    summary_text = _text(raw_summary) if isinstance(raw_summary, str) else None
    summary = _text_to_html(summary_text) if summary_text and not summary_text.isspace() else None
    guid = _json_id(item.get("id"))
    tags = item.get("tags")
    attachments = item.get("attachments")
    updated = _trusted(_iso_utc(item.get("date_modified")), latest)
    return ParsedEntry(
        guid=guid,
        link=_first_link(
            [_str(item.get("url")), _str(item.get("external_url")), _absolute_http(guid)], base
        ),
        title=_plain(item.get("title")) or _fallback_title(summary or content),
        author=_json_authors(item) or feed_authors,
        published=_trusted(_iso_utc(item.get("date_published")), latest) or updated,
        updated=updated,
        summary=summary,
        content=content,
        categories=_unique(tag for tag in tags if isinstance(tag, str))
        if isinstance(tags, list)
        else (),
        enclosures=_links((_str(a.get("url")) for a in attachments if isinstance(a, dict)), base)
        if isinstance(attachments, list)
        else (),
    )


_MEDIA_TAG = re.compile(r"<(?:img|video|audio|picture|source|svg|object|embed|iframe)\b", re.I)


def _blank(html: str) -> bool:
    """Whether sanitised ``html`` shows nothing: no text and no image or other media."""
    return not html_to_text(html).strip() and _MEDIA_TAG.search(html) is None


def _absolute_http(value: str | None) -> str | None:
    """``value`` when it is an absolute http(s) URL, else None: an item's id stands in for
    its link (the spec: "Ideally, the id is the full URL of the resource"), as an RSS
    guid does, but a relative id ("1", "/p/1") is no address."""
    try:
        scheme = urlsplit(value).scheme.lower() if value is not None else ""
    except ValueError:  # an unbalanced IPv6 bracket
        return None
    return value if scheme in ("http", "https") else None


def _json_int(digits: str) -> int | str:
    """A JSON integer as an int, or as its digits past the 4,300 that ``int()`` converts
    (CVE-2020-10735): ``json.loads`` raised on one such number, in an item's ``id`` or
    anywhere else, and the whole feed failed on every poll."""
    try:
        return int(digits)
    except ValueError:
        return digits


def _json_id(raw: object) -> str | None:
    """An item's id: a string per spec; some publishers emit numbers, which are the same
    id written as a JSON number (``12``, ``12.0`` and ``1.2e1`` are all "12")."""
    if isinstance(raw, bool) or (isinstance(raw, float) and not math.isfinite(raw)):
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, str | int | float):
        return _clean_str(str(raw))
    return None


def _json_authors(obj: Mapping[str, Any]) -> str | None:
    """The names in 1.1's ``authors``, else in 1.0's ``author``: a 1.1 feed that keeps
    ``author`` for 1.0 readers may leave ``authors`` empty (``[]``) or without names, and
    the story had no author (Miniflux reads both too)."""
    for authors in (obj.get("authors"), [obj.get("author")]):
        if isinstance(authors, list):
            names = _unique(_str(a.get("name")) for a in authors if isinstance(a, dict))
            if names:
                return ", ".join(names)
    return None


def _str(value: object) -> str | None:
    return xml_chars(value) if isinstance(value, str) else None


def _plain(value: object) -> str | None:
    return " ".join(_text(value).split()) or None if isinstance(value, str) else None


def _text(value: str) -> str:
    """A plain-text field (a title, a summary) with its character references read.
    Plain text per spec, but WordPress writes its titles and excerpts there as it writes
    them for HTML (``It&#8217;s``; Kottke's and pxlnv's feeds), and the same site's RSS
    feed reads them as characters: shown as written, one story had two titles. Only
    references ended by ";" count: ``AT&T`` and ``R&D`` stay, and so does ``&bogus;``."""
    return xml_chars(_char_refs(value))
