"""Feed discovery: the feeds an HTML page announces with <link rel="alternate">, and
whether a fetched body is an HTML page rather than a feed."""

from __future__ import annotations

import contextlib
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

__all__ = ["discover_feeds", "looks_like_html"]

_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
_GENERIC_JSON = "application/json"


class _Done(Exception):
    pass


class _LinkFinder(HTMLParser):
    """Collects <base href> and <link rel=alternate type=feed-type> until the head ends
    (rel=alternate is not allowed in the body, and the body is most of the bytes)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            raise _Done
        values = {k: (v or "").strip() for k, v in attrs}
        if tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        elif tag == "link" and "alternate" in values.get("rel", "").lower().split():
            kind = values.get("type", "").split(";")[0].strip().lower()
            if values.get("href") and (kind in _FEED_TYPES or kind == _GENERIC_JSON):
                self.links.append((kind, values["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            raise _Done


def discover_feeds(html: bytes, base_url: str) -> list[str]:
    """Feed URLs a page advertises with <link rel="alternate">, absolute and unique.

    RSS, Atom and JSON Feed links come in document order, then plain
    ``application/json`` ones (older JSON Feeds), minus WordPress REST API links
    (``/wp-json/``), which use that type on nearly every WordPress page.
    """
    finder = _LinkFinder()
    with contextlib.suppress(_Done):
        finder.feed(html.decode("utf-8", errors="replace"))
        finder.close()
    base = urljoin(base_url, finder.base) if finder.base else base_url
    specific: list[str] = []
    generic: list[str] = []
    for kind, href in finder.links:
        absolute = urljoin(base, href)
        parts = urlsplit(absolute)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            continue
        if kind == _GENERIC_JSON:
            if "/wp-json/" not in parts.path:
                generic.append(absolute)
        else:
            specific.append(absolute)
    return list(dict.fromkeys(specific + generic))


_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
_FEED_STARTS = (b"<rss", b"<feed", b"<rdf:rdf", b"<rdf", b"{", b"[")


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    """True when a response is an HTML page rather than a feed: judged by the first
    markup after any BOM, XML declaration and comments, and only when that is
    inconclusive by the media type (feeds are often mislabelled text/html)."""
    head = body[:4096].removeprefix(b"\xef\xbb\xbf")
    match = _PROLOG.match(head)
    start = head[match.end() if match else 0 :].lower()
    if start.startswith(_HTML_STARTS):
        return True
    if start.startswith(_FEED_STARTS):
        return False
    mime = (content_type or "").split(";")[0].strip().lower()
    return mime in ("text/html", "application/xhtml+xml")
