"""The values of a feed's entries made safe and normal, the same for every format: used by
:mod:`aggregator.parse` (RSS, Atom) and :mod:`aggregator.jsonfeed` (JSON Feed).

Owns: HTML cleaned with nh3 (allowlisted tags and attributes, http/https/mailto URLs,
``rel="noopener noreferrer"``, relative URLs resolved against the base given, one cached
Cleaner per base), plain text as HTML paragraphs, the fallback title of an untitled entry,
links made absolute http(s) URLs (a ``javascript:`` scheme refused however it is spelt:
character references decoded and the characters browsers ignore removed first), and
strings made valid XML text (``textutil.xml_chars``), stripped and de-duplicated.

Must not: do any I/O, know which format a value came from, or choose the base URL (that
rule is the readers'). Must not import :mod:`aggregator.parse` or :mod:`aggregator.jsonfeed`,
which import it.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3

from aggregator.textutil import DROP_WITH_CONTENT as _DROP_WITH_CONTENT
from aggregator.textutil import html_to_text, nh3_clean, xml_chars

_LINK_SCHEMES = frozenset({"http", "https"})
_HTML_URL_SCHEMES = {"http", "https", "mailto"}

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "details",
    "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "time", "tr", "u", "ul", "var",
}  # fmt: skip
# Only href/src carry URLs: nh3 checks their scheme and rewrites them when relative.
_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "ol": {"start"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
}
# A URL that says "scheme:" once character references and the whitespace/control characters
# browsers ignore are removed (WHATWG URL: tab/newline stripped, C0/space trimmed).
_REF = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|(colon|Tab|NewLine));?")
_IGNORED_IN_URL = re.compile(r"[\x00-\x20\x7f]+")
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_NAMED = {"colon": ":", "Tab": "\t", "NewLine": "\n"}
_FALLBACK_TITLE_WORDS = 12
# A character reference (see _char_refs): decimal, hexadecimal or named, ended by ";".
_CHAR_REF = re.compile(r"&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z][A-Za-z0-9]{1,31});")


@functools.lru_cache(maxsize=64)
def _cleaner(base: str) -> nh3.Cleaner:
    """One nh3 Cleaner per base URL (few per feed); relative href/src are resolved by
    ammonia itself, much faster than a per-attribute Python callback."""
    relative: Any = "deny"  # without an absolute base a relative URL can only mislead
    if _is_http(base):
        relative = ("rewrite_with_base", base)
    try:
        return _new_cleaner(relative)
    except ValueError:  # ammonia rejected the base URL
        return _new_cleaner("deny")


def _new_cleaner(relative: Any) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        url_schemes=_HTML_URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
        url_relative=relative,
    )


def _sanitize(html: str, base: str) -> str | None:
    return xml_chars(nh3_clean(_cleaner(base), html)).strip() or None


def _xml_bases_applied(markup: str, base: str) -> str:
    """``markup`` (Atom XHTML content, ``base`` its own base) with the relative links
    (``href``, ``src``) of the elements under an ``xml:base`` inside it resolved against
    that base, which nests (``<p xml:base="https://cdn.example.com/posts/"><a
    href="one.html">``): they were resolved against ``base``, links to pages that do not
    exist. The markup comes back unchanged when no element has one."""
    if "xml:base" not in markup:
        return markup
    from lxml.etree import LxmlError  # type: ignore[import-untyped]
    from lxml.html import fragment_fromstring, tostring  # type: ignore[import-untyped]

    try:
        root = fragment_fromstring(markup, create_parent="div")
    except (LxmlError, ValueError):
        return markup
    bases = {root: base}
    for element in root.iterdescendants():
        scope = bases[element.getparent()]
        if isinstance(element.tag, str) and (own := element.attrib.pop("xml:base", None)):
            scope = _join(scope, own) or scope
        bases[element] = scope
        for name in ("href", "src") if scope != base else ():
            if (value := element.get(name)) is not None and (joined := _join(scope, value)):
                element.set(name, joined)
    head = escape(root.text or "", quote=False)
    return head + "".join(tostring(child, encoding="unicode") for child in root)


def _text_to_html(text: str) -> str:
    paragraphs = (p.strip() for p in re.split(r"\n\s*\n", xml_chars(text)))
    return "".join(
        "<p>" + escape(p, quote=False).replace("\n", "<br>") + "</p>" for p in paragraphs if p
    )


def _fallback_title(html: str | None) -> str:
    words = html_to_text(html).split() if html else []
    if not words:
        return "(untitled)"
    more = len(words) > _FALLBACK_TITLE_WORDS
    return " ".join(words[:_FALLBACK_TITLE_WORDS]) + ("…" if more else "")


def _first_link(candidates: Iterable[str | None], base: str) -> str | None:
    for candidate in candidates:
        link = _http_url(candidate, base)
        if link is not None:
            return link
    return None


def _links(candidates: Iterable[str | None], base: str) -> tuple[str, ...]:
    links = (_http_url(candidate, base) for candidate in candidates)
    return tuple(dict.fromkeys(link for link in links if link is not None))


def _http_url(raw: object, base: str) -> str | None:
    """``raw`` resolved against ``base`` if it is, or becomes, an http(s) URL; else None.

    Checks the scheme both as written and as a browser would read it (character references
    decoded, ignored characters removed) so ``jav&#x61;script:`` and ``java\\tscript:`` are
    refused even when a later consumer decodes once more.
    """
    if not isinstance(raw, str):
        return None
    link = xml_chars(raw).strip()
    if not link:
        return None
    probe = _IGNORED_IN_URL.sub("", _REF.sub(_ref_char, link)).lower()
    scheme = _SCHEME.match(probe)
    if scheme is not None and scheme.group(1) not in _LINK_SCHEMES:
        return None
    absolute = _join(base, link)
    if absolute is None or not _is_http(absolute):
        return None
    return absolute


def _ref_char(match: re.Match[str]) -> str:
    decimal, hexadecimal, name = match.groups()
    if name:
        return _NAMED[name]
    try:
        return chr(int(decimal) if decimal else int(hexadecimal, 16))
    except (ValueError, OverflowError):
        return ""


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in _LINK_SCHEMES and bool(parts.netloc)


def _join(base: str, ref: str) -> str | None:
    try:
        return urljoin(base, ref)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    """Stripped, non-empty, first spelling kept, compared case-insensitively."""
    seen: dict[str, str] = {}
    for value in values:
        if isinstance(value, str):
            text = " ".join(xml_chars(value).split())
            if text and text.casefold() not in seen:
                seen[text.casefold()] = text
    return tuple(seen.values())


def _char_refs(value: str) -> str:
    """A plain-text value (a JSON Feed title, a category) with its character references
    read: publishers escape such values for HTML before writing them to the feed
    (``It&#8217;s``, ``News &amp;amp; Views``). Only references ended by ";" count:
    ``AT&T`` and ``R&D`` stay, and so does ``&bogus;``."""
    if "&" not in value:
        return value
    return xml_chars(_CHAR_REF.sub(lambda m: html.unescape(m.group()), value))


def _clean_str(value: object) -> str | None:
    return xml_chars(value).strip() or None if isinstance(value, str) else None
