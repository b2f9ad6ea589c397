"""Feed documents -> :class:`ParsedFeed`: RSS 0.9x/1.0/2.0 and Atom via feedparser (or its
lxml fast path, fastparse.py), JSON Feed 1.0/1.1 by hand (jsonfeed.py), plus
:func:`html_to_text`.

Owns: :func:`parse_feed`, the one entry point, which tells the formats apart; and for RSS
and Atom, turning feedparser-shaped dictionaries into normalised data — timezone-aware UTC
datetimes, absolute http(s) links only, HTML cleaned with nh3 (allowlisted tags,
http/https/mailto URLs, ``rel="noopener noreferrer"``, relative URLs resolved), plain-text
titles, de-duplicated categories, the publisher's polling hint (``ttl``) and non-fatal
warnings. The cleaning of values is :mod:`aggregator.feedclean`'s and the reading of dates
:mod:`aggregator.feeddates`', shared with the JSON Feed reader (:mod:`aggregator.jsonfeed`);
the choices below hold for every format.

Must not: do any I/O. feedparser is handed a ``BytesIO`` — never a URL, and never the raw
bytes, because ``feedparser.parse(bytes)`` first tries ``open(bytes)`` as a *file path*.
Must not know about story identity (dedupe.py), the store or HTTP.

Choices worth knowing:

- Relative links resolve against the element's ``xml:base`` (feedparser applies it; that
  of the ``<div>`` Atom XHTML content sits in, which feedparser removes, is kept:
  :func:`_pop_content`, and those of elements inside it apply to their links:
  ``feedclean._xml_bases_applied``), then
  for RSS and JSON Feed the site link (channel ``<link>``, ``home_page_url``: neither format
  defines a base, and the site is what publishers mean), then the feed URL (the retrieval
  URI of RFC 3986 §5.1.3, which is also Atom's rule).
- RSS titles are read as HTML (the spec does not say; publishers put markup and entities
  in them), Atom titles as their ``type`` says, JSON Feed titles as plain text (its spec).
- ``published`` falls back to the date the entry was created (``dcterms:created``, Atom
  0.3's ``<created>``), then to ``updated`` (Atom only requires ``updated``; RSS 1.0's
  ``dc:date`` arrives as ``updated``), so an entry lacks a date only when it has none.
- A date more than a day (:data:`FUTURE_SLACK`) after the time of parsing is not trusted:
  it is treated as missing, so the story sorts by when it was first seen instead of
  heading every listing (and passing every ``since``) until the year 2099. A day absorbs
  clocks and time zones that are merely wrong; nothing else about the entry is recorded.
- Zone names beyond RFC 822's (``CEST``, ``IST``, ``AEST``... and ``GMT+2``) are read at
  their offset, a name not known stays UTC, and a date without a zone is UTC
  (:mod:`aggregator.feeddates`, which registers a date handler with feedparser). What
  feedparser's ISO 8601 reader would make another date of (a year of five digits, a Unix
  time, an offset of a day or more) is no date, as for JSON Feed.
- Reading an RSS author costs time in proportion to its length: importing this module
  gives feedparser 6.0 a linear search for the e-mail address in an author
  (:data:`AUTHOR_EMAIL`), for the whole process; its own took ~60 s on 100,000 letters.
- An RSS ``<guid>`` is the item's link unless ``isPermaLink`` says otherwise, its value
  read in any case (``"True"``): importing this module gives feedparser 6.0 the fast
  path's reading (:func:`fastparse.guid_is_permalink`), for the whole process.
- A ``media:description`` is plain text unless ``type="html"``, as Media RSS says (a
  YouTube video's text); feedparser 6.0 is given that reading, for the whole process.
  An item's is its summary only when it has no text of its own: it describes the item's
  media (a news photo's caption, which was the story's content or summary).
- An RSS item's ``<itunes:summary>`` is its summary and its ``<description>`` its
  content (without ``content:encoded``), in either order: feedparser 6.0 is given that
  reading (:func:`_start_itunes_summary`), for the whole process.
- Every string in the result is valid Unicode holding only characters XML 1.0 allows
  (``textutil.xml_chars``): a lone surrogate (JSON's ``"\\ud800"``, XML's ``&#xd800;``)
  becomes U+FFFD, other control characters are dropped (HTML after sanitising too: nh3
  decodes ``&#1;``). Such input would otherwise be refused by the store's UTF-8 encoder,
  by nh3, or by feedparser (the whole feed lost), or make the exported feeds not
  well-formed.
"""

from __future__ import annotations

import io
import re
import xml.sax
from collections.abc import Mapping
from datetime import datetime, timedelta
from html import unescape
from html.entities import name2codepoint
from typing import Any

import feedparser
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin
from feedparser.util import FeedParserDict

from aggregator import fastparse
from aggregator.errors import ParseError
from aggregator.feedclean import (
    _char_refs,
    _clean_str,
    _fallback_title,
    _first_link,
    _http_url,
    _join,
    _links,
    _sanitize,
    _text_to_html,
    _unique,
    _xml_bases_applied,
)
from aggregator.feeddates import _struct_time_utc, _trusted  # registers feedparser's handler
from aggregator.jsonfeed import _parse_json_feed
from aggregator.textutil import has_html_tag, html_to_text, title_text, xml_chars
from aggregator.types import ParsedEntry, ParsedFeed, utc_now

__all__ = ["FUTURE_SLACK", "html_to_text", "parse_feed"]

FUTURE_SLACK = timedelta(days=1)

_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
_HTML_PAGE = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_JSON_TYPES = ("application/feed+json", "application/json")
# Numeric character references to a surrogate (U+D800-U+DFFF) or past U+10FFFF, as
# candidates (the value is checked in _charref_fix): no XML parser may accept them, and
# feedparser's recovering parser raises UnicodeEncodeError on the first, losing the feed.
_SUSPECT_REF = re.compile(
    rb"&#(?:[xX]0*([dD][89a-fA-F][0-9a-fA-F]{2}|[0-9a-fA-F]{6,})|0*(5[5-7][0-9]{3}|[0-9]{7,}));"
)


def parse_feed(
    body: bytes,
    url: str,
    *,
    content_type: str | None = None,
    fast: bool = True,
    now: datetime | None = None,
) -> ParsedFeed:
    """Parse one feed document; raise :class:`ParseError` when ``body`` is not a feed.

    ``url`` is the URL the body came from (the base for relative links). ``content_type``
    is the HTTP Content-Type, if known: it selects JSON Feed and may carry the charset.
    ``fast=False`` skips the lxml fast path (fastparse.py) and always runs feedparser, the
    reference the fast path is checked against (benchmarks/parse_fidelity.py).
    ``now`` is the time of parsing (default: the wall clock): an entry date later than
    ``now + FUTURE_SLACK`` is not trusted and becomes ``None``.
    """
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise ParseError(url, "empty body")
    latest = (now or utc_now()) + FUTURE_SLACK
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    # "[": a JSON array (an API's list of posts) is no feed, but JSON: it was reported as
    # XML that is not well-formed
    if head.startswith((b"{", b"[")) or (media_type in _JSON_TYPES and not head.startswith(b"<")):
        return _parse_json_feed(body, url, latest)
    return _parse_xml_feed(body, url, content_type, latest, fast=fast)


# --- XML (feedparser) ---------------------------------------------------------------------


# UTF-16 without a byte-order mark, by its first markup character (XML 1.0 Appendix F:
# "3C 00 3F 00" is UTF-16LE, "00 3C 00 3F" UTF-16BE), after any whitespace. feedparser
# tells it only by "<?xml" at the very first byte: one without the declaration, or with a
# blank line before it, was "not well-formed" unless the Content-Type named UTF-16 and
# the byte order was the machine's. A NUL is in no UTF-8 or single-byte XML document.
_UTF16LE_START = re.compile(rb"(?:[ \t\r\n]\x00)*<\x00[?!A-Za-z_:]\x00")
_UTF16BE_START = re.compile(rb"(?:\x00[ \t\r\n])*\x00<\x00[?!A-Za-z_:]")


def _utf16_bom(body: bytes) -> bytes:
    """``body`` with the byte-order mark UTF-16 without one lacks (which feedparser and
    lxml then read first, as they read a UTF-16 document that has one); else as it is."""
    if _UTF16LE_START.match(body):
        return b"\xff\xfe" + body
    if _UTF16BE_START.match(body):
        return b"\xfe\xff" + body
    return body


def _parse_xml_feed(
    body: bytes, url: str, content_type: str | None, latest: datetime, *, fast: bool = True
) -> ParsedFeed:
    headers = feedparser_headers(content_type)
    body = _utf16_bom(body)
    if b"&#" in body:  # both paths get the same bytes, so they still read them identically
        body = _SUSPECT_REF.sub(_charref_fix, body)
    if fast:
        # The same raw dictionaries feedparser would build, or None (not provably the same).
        raw = fastparse.extract(body, headers)
        if raw is not None:
            return _xml_feed(url, raw.version, raw.feed, raw.entries, None, body, latest)
    escaped = _bare_amps_escaped(body) if b"&" in body else body
    if escaped != body:
        body, note = escaped, "not well-formed, recovered: a bare '&' read as text"
    else:
        note = None
    try:
        doc = feedparser.parse(
            io.BytesIO(body),
            response_headers=headers,
            sanitize_html=False,  # nh3 below is faster and stricter
            resolve_relative_uris=False,  # nh3 rewrites relative URLs while sanitising
        )
    except Exception as e:  # feedparser reports bad input as "bozo"; a raise is its bug
        raise ParseError(url, f"feedparser failed: {type(e).__name__}: {e}") from e

    problem = doc.get("bozo_exception") if doc.get("bozo") else None
    if problem is None and note is not None:
        problem = note
    return _xml_feed(
        url,
        doc.get("version") or "",
        doc.get("feed") or {},
        doc.get("entries") or [],
        problem,
        body,
        latest,
    )


# A "&" before a name with no ";" (CDATA sections, comments and PIs are passed over): XML forbids
# it, and feedparser's loose parser, which then reads the document, took "&T" in "AT&T"
# for an unknown reference and wrote it "&T;" ("AT&T; and R&D;", "Q&A;"). Escaped, the
# document may be well-formed (a warning says it was not). A name HTML knows without ";"
# ("&copy") is left to feedparser, which reads it as the character; so is "& " (text).
# The runs of ISO-2022 (JP, KR, CN) in a set other than ASCII are passed over too: from an
# ESC that selects one (all but "ESC ( B" and "ESC ( J") to the next ESC, and from SO to
# SI. Their bytes are 0x21-0x7E, so a Greek letter in ISO-2022-JP is "&" and a letter
# ("β" is "&B", as in "β版"): escaped, the run no longer decoded, and every Japanese
# string of the feed came out as escape codes. (ESC, SO and SI are in no XML document
# otherwise; the multi-byte encodings without shifts put no "&" inside a character.)
_BARE_AMP = re.compile(
    rb"<!\[CDATA\[(?:.*?\]\]>|.*)|<!--(?:.*?-->|.*)|<\?(?:.*?\?>|.*)"
    rb"|\x1b(?!\([BJ])[^\x1b]*+|\x0e[^\x0f]*+"
    rb"|&([A-Za-z_:][\w.:-]*+)(?!;)",
    re.DOTALL,
)


def _bare_amps_escaped(body: bytes) -> bytes:
    """``body`` with its bare "&"s escaped (:data:`_BARE_AMP`); the same bytes when it has
    none (a well-formed document). UTF-16 (with its byte-order mark, :func:`_utf16_bom`)
    is read as UTF-8 for the search and written back as it came: skipped, feedparser's
    loose parser read "AT&T" as "AT&T;"."""
    codec = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}.get(body[:2])
    if codec is None:
        return _BARE_AMP.sub(_escape_bare_amp, body)
    try:
        utf8 = body[2:].decode(codec).encode("utf-8")
    except UnicodeError:  # a lone surrogate: left to feedparser, as it is
        return body
    escaped = _BARE_AMP.sub(_escape_bare_amp, utf8)
    return body if escaped == utf8 else body[:2] + escaped.decode("utf-8").encode(codec)


def _escape_bare_amp(match: re.Match[bytes]) -> bytes:
    text, name = match.group(), match.group(1)
    if name is None or name.decode("ascii") in name2codepoint:
        return text  # a CDATA section, comment, processing instruction or ISO-2022 run
    return b"&amp;" + name


def _charref_fix(match: re.Match[bytes]) -> bytes:
    """A reference to no character becomes one to U+FFFD (same length for the usual
    ``&#xd800;`` / ``&#55296;``, so error positions still point at the right column).
    Only ASCII-compatible encodings are caught; in UTF-16 feedparser still fails."""
    hexadecimal, decimal = match.groups()
    digits = (hexadecimal or decimal).lstrip(b"0")
    # int() refuses over 4,300 decimal digits; eight digits already exceed U+10FFFF.
    value = int(digits, 16 if hexadecimal else 10) if len(digits) <= 8 else 0x110000
    if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
        return b"&#xFFFD;" if hexadecimal else b"&#65533;"
    return match.group()


def feedparser_headers(content_type: str | None) -> dict[str, str]:
    """The response headers feedparser (and the fast path) are given for ``content_type``."""
    # RFC 3023 made text/* without a charset mean us-ascii; RFC 7303 dropped that, but
    # feedparser still applies it (and then warns). Pass the header only when it helps.
    if content_type and (
        "charset=" in content_type.lower() or not content_type.lower().startswith("text/")
    ):
        return {"content-type": content_type}
    return {}


def _xml_feed(
    url: str,
    version: str,
    raw_feed: Mapping[str, Any],
    raw_entries: list[Any],
    problem: object | None,
    body: bytes,
    latest: datetime,
) -> ParsedFeed:
    """feedparser-shaped data (from feedparser or fastparse) -> :class:`ParsedFeed`."""
    broken = isinstance(problem, xml.sax.SAXException | feedparser.UndeclaredNamespace)
    if not raw_entries and (not version or broken):
        raise ParseError(url, _not_a_feed(body, problem if broken else None))

    # Plain dict copies: FeedParserDict.get() is slow and aliases keys ("updated" silently
    # falls back to "published"; "enclosures" is computed from "links").
    feed = dict(raw_feed)
    is_atom = version.startswith("atom")
    feed_link = _first_link(_alternates(feed), url)
    base = url if is_atom or feed_link is None else feed_link
    feed_authors = _atom_authors(feed) if is_atom else None
    # feedparser's loose parser (after the strict one gave up) leaves the text of some
    # elements entity-escaped: authors, and RSS categories ("Cats &amp; Dogs")
    loose = broken
    entries = tuple(
        _xml_entry(dict(e), base, is_atom, feed_authors, latest, loose=loose) for e in raw_entries
    )

    warnings: list[str] = []
    if problem is not None:
        warnings.append(xml_chars(_describe(problem)))
    return ParsedFeed(
        url=url,
        version=version or "unknown",
        title=_text_of(feed.get("title_detail"), is_atom) or None,
        link=feed_link,
        description=_text_of(feed.get("subtitle_detail"), is_atom) or None,
        entries=entries,
        ttl=_ttl(feed),
        warnings=tuple(warnings),
    )


def _xml_entry(
    e: dict[str, Any],
    base: str,
    is_atom: bool,
    feed_authors: str | None,
    latest: datetime,
    *,
    loose: bool = False,
) -> ParsedEntry:
    content_detail = max(e.get("content") or [{}], key=lambda c: len(c.get("value") or ""))
    content = _html_of(content_detail, base, is_atom)
    # a media:description only when the item has no text of its own (a YouTube video's)
    summary_detail = e.get("summary_detail") or {}
    if not summary_detail and not e.get("content"):
        summary_detail = e.get("media_description_detail") or {}
    summary: str | None
    if content is not None and summary_detail.get("value") == content_detail.get("value"):
        summary = content  # the same text in both (common in RSS): sanitise once
    else:
        summary = _html_of(summary_detail, base, is_atom)
    published = _trusted(_struct_time_utc(e.get("published_parsed")), latest)
    created = _trusted(_struct_time_utc(e.get("created_parsed")), latest)
    updated = _trusted(_struct_time_utc(e.get("updated_parsed")), latest)
    links = e.get("links") or []
    candidates = [e.get("feedburner_origlink")]  # the publisher's URL behind feedproxy
    candidates += _alternates(e)
    if not is_atom:  # RSS: <guid isPermaLink="true"> doubles as the link; an Atom id never
        candidates.append(e.get("link"))
    else:  # out-of-line content is at its src (RFC 4287 4.1.3.2), the entry's only address
        candidates += (_content_src(c, base) for c in e.get("content") or [])
    if is_atom:  # RFC 4287 4.2.1: its own, else its source's (a planet's), else the feed's
        author = _atom_authors(e) or _atom_authors(e.get("source") or {}) or feed_authors
    else:
        author = _rss_authors(e)
    labels = [t.get("label") or t.get("term") for t in e.get("tags") or []]
    if loose:  # element text left escaped (Atom's category attributes are decoded)
        author = unescape(author) if author else author
        if not is_atom:
            labels = [unescape(c) if isinstance(c, str) else c for c in labels]
    # escaped for HTML by the publisher too, like RSS titles: "News &amp; Views"
    categories = _unique(_char_refs(c) if isinstance(c, str) else c for c in labels)
    return ParsedEntry(
        guid=_clean_str(e.get("id")),
        link=_first_link(candidates, base),
        title=_text_of(e.get("title_detail"), is_atom)
        or _itunes_title(e)
        or _fallback_title(summary or content),
        author=author,
        published=published or created or updated,
        updated=updated,
        summary=summary,
        content=content,
        categories=categories,
        enclosures=_enclosures(e, links, base),
    )


def _enclosures(entry: Mapping[str, Any], links: list[Any], base: str) -> tuple[str, ...]:
    """An entry's enclosures (``<enclosure>``, Atom's rel=enclosure), else its Media RSS
    ``<media:content>`` URLs (each rendition of a ``<media:group>``, in order): a podcast
    episode or news video given only that way had none, and episodes told apart by their
    media file alone (no guid, link, text or other date) were folded into one story.
    Thumbnails are a preview, not the item's media."""
    found = _links((link.get("href") for link in links if link.get("rel") == "enclosure"), base)
    if found:
        return found
    media = entry.get("media_content") or []
    return _links((m.get("url") for m in media if isinstance(m, Mapping)), base)


def _itunes_title(entry: Mapping[str, Any]) -> str:
    """An item's ``<itunes:title>``, read as an RSS title is: podcast hosts write the
    episode's title only there at times, and the story was "(untitled)"."""
    value = entry.get("itunes_title")
    return _text_of({"value": value}, False) if isinstance(value, str) else ""


def _content_src(detail: Mapping[str, Any], base: str) -> str | None:
    """The http(s) URL of an Atom ``<content src>``, resolved against its ``xml:base``
    (feedparser leaves it as written), or None."""
    scope = detail.get("base")
    return _http_url(detail.get("src"), (_join(base, scope) or base) if scope else base)


def _alternates(element: Mapping[str, Any]) -> list[str | None]:
    """rel=alternate hrefs, HTML ones first (Atom entries may also link a PDF, say)."""
    links = [
        link
        for link in element.get("links") or []
        if link.get("rel", "alternate") == "alternate" and link.get("href")
    ]
    links.sort(
        key=lambda link: link.get("type") not in (None, "text/html", "application/xhtml+xml")
    )
    return [link["href"] for link in links]


def _html_of(detail: Mapping[str, Any], base: str, is_atom: bool = True) -> str | None:
    value = detail.get("value")
    if not value or value.isspace():
        return None
    kind = detail.get("type") or "text/html"
    # RSS says nothing of a type: text/plain is feedparser's guess (closing tags from its
    # own list), which called show notes of "<br>"s or with an <iframe> text, and a
    # <description> after <itunes:summary> was shown as its HTML source.
    if "html" not in kind and (is_atom or not has_html_tag(value)):
        return _text_to_html(value) or None  # literal text, so escape instead of parsing
    scope = detail.get("base")  # the xml:base in scope, possibly relative
    base = (_join(base, scope) or base) if scope else base
    if kind == "application/xhtml+xml":  # and those of elements inside it
        value = _xml_bases_applied(value, base)
    return _sanitize(value, base)


def _text_of(detail: Mapping[str, Any] | None, is_atom: bool) -> str:
    """One line of plain text. Atom says whether a text construct is HTML; for RSS
    feedparser guesses, and a literal "<script>" in a title is better dropped than shown
    (alone when never closed, with the words after it kept: :func:`title_text`)."""
    if not detail or not detail.get("value"):
        return ""
    value: str = xml_chars(detail["value"])
    if not is_atom or "html" in (detail.get("type") or ""):
        value = title_text(value)
    return " ".join(value.split())


def _atom_authors(element: Mapping[str, Any]) -> str | None:
    names = _unique(author.get("name") for author in element.get("authors") or [])
    return ", ".join(names) or None


_SPACE = re.compile(r"\s")


def _rss_authors(entry: Mapping[str, Any]) -> str | None:
    """Every author of an RSS item, as :func:`_atom_authors` names Atom's: feedparser keeps
    the last one's text as ``author`` (read by :func:`_rss_author`) and each one's name or
    address in ``authors``, so a story by two people (WordPress's Co-Authors Plus writes a
    ``dc:creator`` for each) was credited to the second alone. Those before the last are
    read from feedparser's split (:func:`_split_author`)."""
    last = _rss_author(entry.get("author"))
    details = entry.get("authors") or []
    if len(details) < 2:
        return last
    return ", ".join(_unique((*map(_split_author, details[:-1]), last))) or None


def _split_author(detail: Mapping[str, Any]) -> str | None:
    """The name (else the address) of one of an RSS item's authors as feedparser split it.
    Its pattern takes at most four letters of a TLD, so ``bo@news.online (Bo Ng)`` was
    split into ``bo@news.onli`` and ``ne (Bo Ng``: such a name, a ``(`` left open, is
    written back after the address and read as :func:`_rss_author` reads the last."""
    name, email = _clean_str(detail.get("name")), _clean_str(detail.get("email"))
    if name and email and name.count("(") > name.count(")"):
        return _rss_author(f"{email}{name})")
    return name or email


def _rss_author(raw: object) -> str | None:
    # RSS 2.0 <author> is "email (Name)". feedparser's own split truncates long TLDs.
    author = _clean_str(raw)
    if author is None:
        return None
    return " ".join((_name_after_address(author) or author).split())


def _name_after_address(author: str) -> str | None:
    r"""The ``Name`` of an ``email (Name)`` author (stripped), or None: what the pattern
    ``^\s*\S+@\S+\s*\((.+)\)\s*$`` captured, found without it, since it tried every
    ``@`` of the first word against every ``(`` after it (100,000 ``@`` signs: minutes).
    The name follows the ``(`` that leaves the longest address (one after the first word
    and its spaces, else the rightmost inside that word), where the address has an ``@``
    with a character before and after it; it ends at the final ``)``, is not empty and
    is on one line (the pattern's ``.``)."""
    if not author.endswith(")"):
        return None
    space = _SPACE.search(author)
    word_end = space.start() if space else len(author)
    at = author.find("@", 1, word_end)
    newline = author.rfind("\n")
    rest = author[word_end:].lstrip()
    paren = len(author) - len(rest) if rest.startswith("(") else author.rfind("(", 0, word_end)
    while paren != -1 and at != -1 and at <= min(paren, word_end) - 2:
        if paren + 1 < len(author) - 1 and newline < paren:
            return author[paren + 1 : -1]
        paren = author.rfind("(", 0, min(paren, word_end))
    return None


_TTL_MAX_MINUTES = 366 * 24 * 60


def _ttl(feed: Mapping[str, Any]) -> timedelta | None:
    minutes = _positive_int(feed.get("ttl"))
    if minutes is not None:
        # at most a year (the schedule clamps to a day anyway): 13 digits or more
        # overflowed timedelta, and the feed failed on every poll
        return timedelta(minutes=min(minutes, _TTL_MAX_MINUTES))
    period = _PERIODS.get(str(feed.get("sy_updateperiod") or "").strip().lower())
    if period is None:
        return None
    return period / (_positive_int(feed.get("sy_updatefrequency")) or 1)


def _describe(problem: object) -> str:
    if isinstance(problem, str):
        return problem
    if isinstance(problem, xml.sax.SAXException | feedparser.UndeclaredNamespace):
        return f"not well-formed, recovered: {_xml_error(problem)}"
    return f"{type(problem).__name__}: {problem}"


def _not_a_feed(body: bytes, problem: object | None) -> str:
    if _HTML_PAGE.search(body[:2048]):
        return "not a feed: looks like an HTML page"
    if problem is not None:
        return f"not a feed: not well-formed XML: {_xml_error(problem)}"
    return "not a feed: no RSS, Atom or JSON Feed document found"


def _xml_error(problem: object) -> str:
    if isinstance(problem, xml.sax.SAXParseException):
        where = f"line {problem.getLineNumber()}, column {problem.getColumnNumber()}"
        return f"{problem.getMessage()} ({where})"
    return str(problem)


def _positive_int(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None


# --- feedparser's search for an author's e-mail address ----------------------------------

#: feedparser 6.0's pattern for the e-mail address in an author (``mixin.py``,
#: ``_sync_author_detail``: RSS ``<author>``, ``dc:creator``, ``managingEditor``...) behind a
#: look-behind, so that a match starts only where a run of the characters of its local
#: part starts. The match found is the same: the local part must reach the ``@``, which
#: it cannot hold, so a start inside a run succeeds exactly when the run's start does.
#: But the search no longer retries every position of a run to its end: an author of
#: 100,000 letters took ~60 s, and its feed's parse timed out on every poll.
AUTHOR_EMAIL = re.compile(
    r"(?<![a-zA-Z0-9_\-.+])"
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|"
    r"(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)


def _sync_author_detail(self: Any, key: str = "author") -> None:
    """feedparser 6.0's ``_FeedParserMixin._sync_author_detail`` line for line, but for
    its search, which is :data:`AUTHOR_EMAIL`'s (the fast path declines a long author,
    fastparse._Replay, so both paths read it alike)."""
    context = self._get_context()
    detail = context.get(f"{key}s", [FeedParserDict()])[-1]
    if detail:
        name, email = detail.get("name"), detail.get("email")
        if name and email:
            context[key] = f"{name} ({email})"
        elif name:
            context[key] = name
        elif email:
            context[key] = email
        return
    author, email = context.get(key), None
    if not author:
        return
    match = AUTHOR_EMAIL.search(author)
    if match:
        email = match.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "")
        author = author.replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    if author or email:
        context.setdefault(f"{key}_detail", detail)
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email


def _start_guid(self: Any, attrs_d: dict[str, str]) -> None:
    """feedparser 6.0's ``Namespace._start_guid`` (``_start_id`` too), with ``isPermaLink``
    read as the fast path reads it (:func:`fastparse.guid_is_permalink`: ``"True"`` too)."""
    self.guidislink = fastparse.guid_is_permalink(attrs_d)
    self.push("id", 1)


def _start_media_description(self: Any, attrs_d: dict[str, str]) -> None:
    """feedparser 6.0's ``_start_media_description``, with the type Media RSS gives it:
    ``"plain"`` unless ``type="html"``. feedparser read it as HTML, so a YouTube video's
    text (plain, in lines) ran together and a ``<stdio.h>`` in it was dropped as a tag.
    (For RSS, feedparser still guesses whether plain text is HTML, and so does
    :func:`_html_of`.) The fast path declines Media RSS."""
    kind = "html" if attrs_d.get("type", "").strip().lower() == "html" else "plain"
    if not self.inentry:
        self._start_description({**attrs_d, "type": kind})
        return
    # An item's is kept apart (``media_description``): it describes the item's media (a
    # news photo's caption), so it is the summary only of an item with no text of its
    # own (:func:`_xml_entry`). As a second summary-like element feedparser made it the
    # story's content, and before the <description> its summary.
    self.push_content("media_description", {**attrs_d, "type": kind}, "text/plain", 1)


def _end_media_description(self: Any) -> None:
    """feedparser 6.0's ``_end_media_description``, for :func:`_start_media_description`."""
    if not self.inentry:
        self._end_description()
        return
    self.pop_content("media_description")


def _start_itunes_summary(self: Any, attrs_d: dict[str, str]) -> None:
    """feedparser 6.0's ``_start_itunes_summary``, after filing an item's summary read
    before (its ``<description>``) as content when it has none: feedparser files a second
    summary-like element as content, so with ``<description>`` first the short iTunes
    summary became the story's content and the whole text its summary (the other order
    gave the description as content already). An item's ``<itunes:summary>`` is now its
    summary and its description its content, in either order. The fast path declines
    the iTunes namespace. (feedparser takes an AttributeError raised by a handler for
    "no handler": the element's text would be lost without a word.)"""
    context = self._get_context()
    if self.inentry and "summary" in context and not self.hasContent:
        detail = context.pop("summary_detail", None) or FeedParserDict()
        detail["value"] = context.pop("summary")
        context.setdefault("content", []).append(detail)
        self.hasContent = 1
    self._start_summary(attrs_d)


_XHTML_DIV_BASE = re.compile(r'<div\b[^>]*?\sxml:base="([^"]*)"')


def _enclosing_div(pieces: list[Any]) -> str | None:
    """The start tag of the ``<div>`` feedparser 6.0's ``pop`` removes from an Atom XHTML
    construct's ``pieces`` (all of the content nested in it), or None: its test, line
    for line."""
    pieces = [p.decode("utf-8") if isinstance(p, bytes) else p for p in pieces]
    while pieces and len(pieces) > 1 and not pieces[-1].strip():
        del pieces[-1]
    while pieces and len(pieces) > 1 and not pieces[0].strip():
        del pieces[0]
    if not pieces or pieces[-1] != "</div>":
        return None
    first = pieces[0]
    if first != "<div>" and not first.startswith("<div "):
        return None
    depth = 0
    for piece in pieces[:-1]:
        if piece.startswith("</"):
            depth -= 1
            if depth == 0:
                return None
        elif piece.startswith("<") and not piece.endswith("/>"):
            depth += 1
    return str(first)


_feedparser_pop_content = _FeedParserMixin.pop_content


def _pop_content(self: Any, tag: str) -> Any:
    """feedparser 6.0's ``pop_content``, after taking the ``xml:base`` of the ``<div>`` an
    Atom XHTML construct sits in (which ``pop`` then removes, with its attributes) into
    the construct's ``base``, against which :func:`_html_of` resolves its links: they
    were resolved against the feed's URL, links to pages that do not exist. The fast
    path declines XHTML constructs."""
    params = self.contentparams
    if params.get("type") == "application/xhtml+xml" and self.elementstack:
        start = _enclosing_div(self.elementstack[-1][2])
        found = _XHTML_DIV_BASE.match(start) if start else None
        if found is not None:
            params["base"] = _urljoin(params.get("base") or "", unescape(found.group(1)))
    return _feedparser_pop_content(self, tag)


if str(getattr(feedparser, "__version__", "")).startswith("6.0."):  # the version copied
    _FeedParserMixin._sync_author_detail = _sync_author_detail
    _FeedParserMixin._start_guid = _start_guid
    _FeedParserMixin._start_id = _start_guid
    _FeedParserMixin._start_media_description = _start_media_description
    _FeedParserMixin._end_media_description = _end_media_description
    _FeedParserMixin._start_itunes_summary = _start_itunes_summary
    _FeedParserMixin.pop_content = _pop_content
