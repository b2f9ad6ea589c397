"""Small text helpers shared by several stages (HTML fragment -> plain text, whitespace,
characters that are not valid Unicode or not allowed in XML).

Cheap to import (stdlib and nh3, a few milliseconds): the store and the CLI use it on query
paths, the parser and the worker jobs in hot loops.
"""

from __future__ import annotations

import re
from html import unescape

import nh3

# Dropped together with their content: code, styling, or fallback text that is not prose.
DROP_WITH_CONTENT = {
    "script", "style", "iframe", "object", "embed", "noembed", "noframes", "template", "svg",
    "math", "select", "textarea", "button",
}  # fmt: skip

_TEXT_ONLY = nh3.Cleaner(
    tags=set(), clean_content_tags=DROP_WITH_CONTENT, attributes={}, link_rel=None
)
# Not XML 1.0 characters (§2.2: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD]
# | [#x10000-#x10FFFF]): C0 controls but tab/LF/CR, U+FFFE/U+FFFF, and lone UTF-16
# surrogates. A surrogate is not even valid Unicode text (JSON's "\ud800" decodes to one;
# UTF-8 cannot encode it, so SQLite, nh3 and every writer refuse it).
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_BLOCK_START = re.compile(
    r"<(?:br|hr|/?(?:p|div|li|dt|dd|h[1-6]|tr|blockquote|pre|table|ul|ol|dl|section|article"
    r"|header|footer|aside|figure|figcaption|address|details|summary))\b",
    re.IGNORECASE,
)


def xml_chars(text: str) -> str:
    """``text`` with only characters XML 1.0 allows: a lone surrogate becomes U+FFFD (a
    character was there, mangled), other control characters and U+FFFE/U+FFFF are dropped
    (nothing a reader could see). The result is valid Unicode, encodable as UTF-8."""
    if _NOT_XML_CHAR.search(text) is None:  # the common case: one scan, no copy
        return text
    return _NOT_XML_CHAR.sub(_replacement, text)


def _replacement(match: re.Match[str]) -> str:
    return "\ufffd" if "\ud800" <= match.group() <= "\udfff" else ""


def nh3_clean(cleaner: nh3.Cleaner, html: str) -> str:
    """``cleaner.clean(html)``, also when ``html`` holds a lone surrogate, which nh3 (Rust
    strings are UTF-8) refuses: retried with :func:`xml_chars` applied. Scanning only then
    keeps the common case to nh3's own pass; its output may still hold control characters
    (it decodes "&#1;"), so callers that need XML characters clean the result. Elements
    nested past :data:`_MAX_DEPTH` lose their tags first (:func:`_shallow`)."""
    html = _shallow(html)
    try:
        return cleaner.clean(html)
    except UnicodeEncodeError:
        return cleaner.clean(xml_chars(html))


#: html5ever, under nh3, looks through the open elements at each block's start, so its
#: time grows with the square of how deeply elements nest: a description of 30,000
#: unclosed ``<div>``s (150 KB) took ~12 s to sanitise, 100,000 minutes, and the feed's
#: parse was killed on every poll. No page nests a thousand deep: past that the tags are
#: dropped and their text kept. HTML of at most :data:`_SCAN_TAGS` tags cannot nest deep
#: enough to cost much (under a second), and is not scanned: most is far shorter.
_MAX_DEPTH = 1_000
_SCAN_TAGS = 5_000
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)[^>]*?(/?)>")
#: The start of :data:`_TAG`, which :func:`_too_deep` finds faster (it counts a self-closed
#: tag as a start tag: more depth, never less, than :class:`_Nesting` counts).
_TAG_NAME = re.compile(r"<(/?)([A-Za-z][^\s/>]*)")
#: Elements that hold no others open: the void ones, those an HTML parser closes when the
#: next one starts (a page of unclosed ``<p>``s or ``<li>``s is not deep), and those
#: holding only text (a ``<script>``'s code).
_NOT_NESTING = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup",
    "rb", "rp", "rt", "tbody", "thead", "tfoot", "script", "style", "textarea", "title",
    "xmp", "iframe", "noembed", "noframes", "plaintext",
}  # fmt: skip


class _Nesting:
    """How deep each tag of a document nests, counted as written: a start tag opens an
    element (unless it is self-closed or one of :data:`_NOT_NESTING`), an end tag closes
    one of its name that is open (a stray end tag closes nothing, as for the parser)."""

    def __init__(self) -> None:
        self.depth = 0
        self.open: dict[str, int] = {}

    def level(self, end: str, name: str, closed: str) -> int:
        """The depth of the element this tag starts or ends; 0 when it nests nothing."""
        name = name.lower()
        if closed or name in _NOT_NESTING:
            return 0
        if not end:
            self.depth += 1
            self.open[name] = self.open.get(name, 0) + 1
            return self.depth
        if not self.open.get(name):
            return 0
        self.open[name] -= 1
        self.depth -= 1
        return self.depth + 1


def _too_deep(html: str) -> bool:
    """Whether an element of ``html`` may nest deeper than :data:`_MAX_DEPTH`, counted
    as :class:`_Nesting` counts (inlined: it runs on every long text)."""
    depth, opened, flat = 0, dict[str, int](), _NOT_NESTING
    for end, name in _TAG_NAME.findall(html):
        if (name := name.lower()) in flat:
            continue
        if not end:
            depth += 1
            if depth > _MAX_DEPTH:
                return True
            opened[name] = opened.get(name, 0) + 1
        elif opened.get(name):
            opened[name] -= 1
            depth -= 1
    return False


def _shallow(html: str) -> str:
    """``html`` with the start and end tags of elements nested deeper than
    :data:`_MAX_DEPTH` removed; ``html`` itself when none is."""
    if html.count("<") <= _SCAN_TAGS:
        return html
    if not _too_deep(html):
        return html
    nesting = _Nesting()

    def kept(tag: re.Match[str]) -> str:
        deep = nesting.level(*tag.groups()) > _MAX_DEPTH
        # what is dropped with its content is dropped at any depth
        return "" if deep and tag[2].lower() not in DROP_WITH_CONTENT else tag[0]

    return _TAG.sub(kept, html)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped (script/style with their content),
    entities decoded, one line per block element, whitespace collapsed, only characters
    XML allows (:func:`xml_chars`, also applied to what character references decode to)."""
    if "<" not in html and "&" not in html:
        return " ".join(xml_chars(html).split())
    # Source newlines are spaces in HTML; block boundaries become the line breaks.
    marked = _BLOCK_START.sub(r"\n\g<0>", " ".join(html.split()))
    # Cleaned after nh3, which decodes "&#1;" to a raw U+0001 (unescape would drop it).
    text = xml_chars(unescape(nh3_clean(_TEXT_ONLY, marked)))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


#: A start or end tag of an element :data:`DROP_WITH_CONTENT` drops with its content.
_DROPPED_TAG = re.compile(
    r"<(?P<end>/?)(?P<name>" + "|".join(sorted(DROP_WITH_CONTENT)) + r")(?=[\s/>])[^<>]*>",
    re.IGNORECASE,
)


#: HTML's elements (with the obsolete ones publishers still write), as tag names.
_HTML_ELEMENTS = {
    "a", "abbr", "acronym", "address", "area", "article", "aside", "audio", "b", "base",
    "basefont", "bdi", "bdo", "big", "blink", "blockquote", "body", "br", "button",
    "canvas", "caption", "center", "cite", "code", "col", "colgroup", "data", "datalist",
    "dd", "del", "details", "dfn", "dialog", "dir", "div", "dl", "dt", "em", "embed",
    "fieldset", "figcaption", "figure", "font", "footer", "form", "frame", "frameset", "h1",
    "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup", "hr", "html", "i", "iframe",
    "img", "input", "ins", "kbd", "label", "legend", "li", "link", "main", "map", "mark",
    "marquee", "menu", "meta", "meter", "nav", "nobr", "noembed", "noframes", "noscript",
    "object", "ol", "optgroup", "option", "output", "p", "param", "picture", "plaintext",
    "pre", "progress", "q", "rb", "rp", "rt", "rtc", "ruby", "s", "samp", "script",
    "search", "section", "select", "slot", "small", "source", "span", "strike", "strong",
    "style", "sub", "summary", "sup", "svg", "math", "table", "tbody", "td", "template",
    "textarea", "tfoot", "th", "thead", "time", "title", "tr", "track", "tt", "u", "ul",
    "var", "video", "wbr", "xmp",
}  # fmt: skip
#: The ``<`` of a start or end tag (as an HTML parser reads its name: up to a space, "/" or
#: ">"), which :func:`_as_text` keeps as text when the name is no HTML element.
_UNKNOWN_TAG = re.compile(r"<(?=/?([A-Za-z][^\s/>]*))")


def has_html_tag(text: str) -> bool:
    """Whether ``text`` holds a start or end tag of an HTML element (``<br>``, ``</p>``,
    ``<iframe ...>``): ``Vec<T>`` or ``a < b`` does not."""
    return "<" in text and any(
        name.lower() in _HTML_ELEMENTS for name in _UNKNOWN_TAG.findall(text)
    )


def _as_text(tag: re.Match[str]) -> str:
    name = tag[1].lower()
    return "<" if name in _HTML_ELEMENTS or "-" in name else "&lt;"


def title_text(html: str) -> str:
    """One line of text of a title that may be HTML (an RSS title, an Atom ``type="html"``
    one): :func:`html_to_text`, but a start tag of an element dropped with its content
    (``<template>``, ``<script>``...) that no end tag of its name follows is dropped
    alone. Such a tag in a title names the element ("Using the <template> element"):
    taken for markup, it hid the rest of the title ("Using the"), or all of it (the story
    was titled with its summary's first words). A closed one is still dropped whole.
    A tag whose name is no HTML element (nor a custom element's, which has a "-") is
    text: titles name generics and components ("Using Vec<T> in Rust", "<Suspense>"),
    and read as tags they were dropped ("Using Vec in Rust")."""
    if "<" not in html:
        return html_to_text(html)
    html = _UNKNOWN_TAG.sub(_as_text, html)
    last_end: dict[str, int] = {}
    for tag in _DROPPED_TAG.finditer(html):
        if tag["end"]:
            last_end[tag["name"].lower()] = tag.start()

    def kept(tag: re.Match[str]) -> str:
        closed = tag["end"] or tag.start() < last_end.get(tag["name"].lower(), -1)
        return tag[0] if closed else ""

    return " ".join(html_to_text(_DROPPED_TAG.sub(kept, html)).split())


def page_media_type(content_type: str | None) -> str | None:
    """The media type of ``content_type`` if a response with it cannot be a web page
    (a PDF, an image, audio, a feed); None when it may be one: none given, an HTML or
    another XML type, or plain text (an advisory, an RFC: its text is the article). The
    rule both the page fetch and the extractor apply."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type in _FEED_TYPES:
        return media_type
    if not media_type or "html" in media_type or media_type.endswith("xml"):
        return None
    if media_type == PLAIN_TEXT:
        return None
    return media_type


PLAIN_TEXT = "text/plain"


# A <meta> or <noscript> tag, opening or closing ([^<>]: linear on "<meta<meta<meta...")
_REFRESH_TAGS = re.compile(rb"<(/?)(meta|noscript)\b([^<>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(rb"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
# WHATWG HTML, "shared declarative refresh steps": a time, then ";" or "," (or spaces),
# then an optional "url=", then the URL, quoted or not.
_REFRESH = re.compile(
    r"""\s*(\d+)(?:\.[\d.]*)?(?:[\s;,]+(?:url\s*=\s*)?(?:"([^"]*)|'([^']*)|(.*)))?""",
    re.IGNORECASE | re.DOTALL,
)
_REFRESH_SCAN_BYTES = 64 * 1024


def meta_refresh(html: bytes) -> tuple[int, str] | None:
    """The first ``<meta http-equiv="refresh" content="N; url=...">`` of a page's first
    64 KiB that names a URL, as (N seconds, the URL as written, entities decoded); None
    when there is none. One inside ``<noscript>`` does not count: browsers that run
    scripts (every reader's) ignore it, and sites use it to send script-less clients
    to a "turn JavaScript on" page."""
    hidden = 0
    for tag in _REFRESH_TAGS.finditer(html, 0, _REFRESH_SCAN_BYTES):
        closing, name = tag.group(1), tag.group(2).lower()
        if name == b"noscript":
            hidden = max(0, hidden - 1) if closing else hidden + 1
            continue
        if hidden or closing:
            continue
        attributes: dict[bytes, bytes] = {}
        for a in _ATTRIBUTE.finditer(tag.group(3)):
            value = a.group(2) if a.group(2) is not None else a.group(3) or a.group(4) or b""
            attributes.setdefault(a.group(1).lower(), value)
        if attributes.get(b"http-equiv", b"").strip().lower() != b"refresh":
            continue
        content = unescape(attributes.get(b"content", b"").decode("utf-8", "replace"))
        match = _REFRESH.match(content)
        if match is None:
            continue
        url = next((g for g in match.groups()[1:] if g is not None), "").strip()
        if url:
            return int(match.group(1)), url
    return None


# XML types that are a feed, never a web page: their text read as a page came out with
# the feed's elements glued together and the entries' escaped markup in it.
_FEED_TYPES = frozenset({"application/atom+xml", "application/rss+xml", "application/rdf+xml"})


def counted(n: int, one: str, many: str | None = None, *, grouped: bool = True) -> str:
    """``n`` and the noun that goes with it: "1 story", "2,000 stories", "0 errors"
    (``grouped=False``: "2000 stories", as a table beside it has the figure). Here, not in
    the CLI, so the daemon's log lines and the library's messages count alike."""
    return (f"{n:,}" if grouped else str(n)) + f" {one if n == 1 else many or one + 's'}"


def one_line(text: str, limit: int | None = None) -> str:
    s = " ".join(text.split())
    if limit is not None and len(s) > limit:
        return s[: max(0, limit - 1)].rstrip() + "…"
    return s
