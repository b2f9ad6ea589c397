"""Feed documents -> :class:`ParsedFeed`: RSS 0.9x/1.0/2.0 and Atom via feedparser, JSON Feed
1.0/1.1 by hand, plus :func:`html_to_text`.

Owns: turning one fetched body into normalised data — timezone-aware UTC datetimes, absolute
http(s) links only, HTML cleaned with nh3 (allowlisted tags, http/https/mailto URLs,
``rel="noopener noreferrer"``, relative URLs resolved), plain-text titles, de-duplicated
categories, the publisher's polling hint (``ttl``) and non-fatal warnings.

Must not: do any I/O. feedparser is handed a ``BytesIO`` — never a URL, and never the raw
bytes, because ``feedparser.parse(bytes)`` first tries ``open(bytes)`` as a *file path*.
Must not know about story identity (dedupe.py), the store or HTTP.

Choices worth knowing:

- Relative links resolve against the element's ``xml:base`` (feedparser applies it), then
  for RSS and JSON Feed the site link (channel ``<link>``, ``home_page_url``: neither format
  defines a base, and the site is what publishers mean), then the feed URL (the retrieval
  URI of RFC 3986 §5.1.3, which is also Atom's rule).
- RSS titles are read as HTML (the spec does not say; publishers put markup and entities
  in them), Atom titles as their ``type`` says, JSON Feed titles as plain text (its spec).
- ``published`` falls back to ``updated`` (Atom only requires ``updated``; RSS 1.0's
  ``dc:date`` arrives as ``updated``), so an entry lacks a date only when it has none.
- A date more than a day (:data:`FUTURE_SLACK`) after the time of parsing is not trusted:
  it is treated as missing, so the story sorts by when it was first seen instead of
  heading every listing (and passing every ``since``) until the year 2099. A day absorbs
  clocks and time zones that are merely wrong; nothing else about the entry is recorded.
- RFC 822 dates know a handful of North American zone names; feedparser (and the email
  module, for JSON Feed) read any other name as UTC and refuse ``GMT+2``. Publishers
  write ``CEST``, ``IST``, ``AEST``, ``JST``... and ``GMT+2``: :data:`_ZONE_HOURS` names
  the common ones (where a name is ambiguous, the reading news feeds mean: ``IST`` is
  India, ``BST`` British summer time) and :func:`_zoned_date` turns them into numeric
  offsets for feedparser's own RFC 822 and W3C-DTF parsers. A name it does not know stays
  UTC, as before. A date without a zone is UTC (feedparser lost it when it had a day name).
- Every string in the result is valid Unicode holding only characters XML 1.0 allows
  (``textutil.xml_chars``): a lone surrogate (JSON's ``"\\ud800"``, XML's ``&#xd800;``)
  becomes U+FFFD, other control characters are dropped (HTML after sanitising too: nh3
  decodes ``&#1;``). Such input would otherwise be refused by the store's UTF-8 encoder,
  by nh3, or by feedparser (the whole feed lost), or make the exported feeds not
  well-formed.
"""

from __future__ import annotations

import calendar
import functools
import io
import json
import math
import re
import xml.sax
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html import escape, unescape
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import nh3
from feedparser.datetimes.rfc822 import _parse_date_rfc822
from feedparser.datetimes.w3dtf import _parse_date_w3dtf

from aggregator import fastparse
from aggregator.errors import ParseError
from aggregator.textutil import DROP_WITH_CONTENT as _DROP_WITH_CONTENT
from aggregator.textutil import html_to_text, nh3_clean, xml_chars
from aggregator.types import ParsedEntry, ParsedFeed, utc_now

__all__ = ["FUTURE_SLACK", "html_to_text", "parse_feed"]

FUTURE_SLACK = timedelta(days=1)

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

_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
_FALLBACK_TITLE_WORDS = 12
# Zone names RFC 822 does not define (it has UT, GMT, Z, the North American ones and the
# military letters, which feedparser and the email module know), in hours east of UTC.
_ZONE_HOURS = {
    "utc": 0, "wet": 0, "west": 1, "bst": 1, "ist": 5.5, "cet": 1, "cest": 2, "met": 1,
    "mest": 2, "eet": 2, "eest": 3, "msk": 3, "sast": 2, "cat": 2, "eat": 3, "wat": 1,
    "pkt": 5, "npt": 5.75, "ict": 7, "wib": 7, "hkt": 8, "sgt": 8, "pht": 8, "awst": 8,
    "jst": 9, "kst": 9, "acst": 9.5, "acdt": 10.5, "aest": 10, "aedt": 11, "nzst": 12,
    "nzdt": 13, "hst": -10, "akst": -9, "akdt": -8, "nst": -3.5, "ndt": -2.5, "brt": -3,
    "art": -3,
}  # fmt: skip
_ZONED = re.compile(
    r"(?P<stamp>.*\d)\s*(?:(?P<name>[A-Za-z]{3,4})|(?:GMT|UTC)(?P<sign>[+-])(?P<h>\d{1,2})"
    r"(?::?(?P<m>[0-5]\d))?)\s*",
    re.ASCII,
)
_UNZONED_RFC822 = re.compile(
    r"[A-Za-z]{3,9},?\s+\d{1,2}\s+[A-Za-z]{3,9}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?", re.ASCII
)
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
    if head.startswith(b"{") or (media_type in _JSON_TYPES and not head.startswith(b"<")):
        return _parse_json_feed(body, url, latest)
    return _parse_xml_feed(body, url, content_type, latest, fast=fast)


# --- XML (feedparser) ---------------------------------------------------------------------


def _parse_xml_feed(
    body: bytes, url: str, content_type: str | None, latest: datetime, *, fast: bool = True
) -> ParsedFeed:
    headers = feedparser_headers(content_type)
    if b"&#" in body:  # both paths get the same bytes, so they still read them identically
        body = _SUSPECT_REF.sub(_charref_fix, body)
    if fast:
        # The same raw dictionaries feedparser would build, or None (not provably the same).
        raw = fastparse.extract(body, headers)
        if raw is not None:
            return _xml_feed(url, raw.version, raw.feed, raw.entries, None, body, latest)
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
    return _xml_feed(
        url,
        doc.get("version") or "",
        doc.get("feed") or {},
        doc.get("entries") or [],
        problem,
        body,
        latest,
    )


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
    content = _html_of(content_detail, base)
    summary_detail = e.get("summary_detail") or {}
    summary: str | None
    if content is not None and summary_detail.get("value") == content_detail.get("value"):
        summary = content  # the same text in both (common in RSS): sanitise once
    else:
        summary = _html_of(summary_detail, base)
    published = _trusted(_struct_time_utc(e.get("published_parsed")), latest)
    updated = _trusted(_struct_time_utc(e.get("updated_parsed")), latest)
    links = e.get("links") or []
    candidates = [e.get("feedburner_origlink")]  # the publisher's URL behind feedproxy
    candidates += _alternates(e)
    if not is_atom:  # RSS: <guid isPermaLink="true"> doubles as the link; an Atom id never
        candidates.append(e.get("link"))
    author = (_atom_authors(e) or feed_authors) if is_atom else _rss_author(e.get("author"))
    categories = _unique(t.get("label") or t.get("term") for t in e.get("tags") or [])
    if loose:  # element text left escaped (Atom's category attributes are decoded)
        author = unescape(author) if author else author
        if not is_atom:
            categories = _unique(unescape(c) for c in categories)
    return ParsedEntry(
        guid=_clean_str(e.get("id")),
        link=_first_link(candidates, base),
        title=_text_of(e.get("title_detail"), is_atom) or _fallback_title(summary or content),
        author=author,
        published=published or updated,
        updated=updated,
        summary=summary,
        content=content,
        categories=categories,
        enclosures=_links(
            (link.get("href") for link in links if link.get("rel") == "enclosure"), base
        ),
    )


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


def _html_of(detail: Mapping[str, Any], base: str) -> str | None:
    value = detail.get("value")
    if not value or value.isspace():
        return None
    kind = detail.get("type") or "text/html"
    if "html" not in kind:  # text/plain: literal text, so escape instead of parsing
        return _text_to_html(value) or None
    scope = detail.get("base")  # the xml:base in scope, possibly relative
    return _sanitize(value, (_join(base, scope) or base) if scope else base)


def _text_of(detail: Mapping[str, Any] | None, is_atom: bool) -> str:
    """One line of plain text. Atom says whether a text construct is HTML; for RSS
    feedparser guesses, and a literal "<script>" in a title is better dropped than shown."""
    if not detail or not detail.get("value"):
        return ""
    value: str = xml_chars(detail["value"])
    if not is_atom or "html" in (detail.get("type") or ""):
        value = html_to_text(value)
    return " ".join(value.split())


def _atom_authors(element: Mapping[str, Any]) -> str | None:
    names = _unique(author.get("name") for author in element.get("authors") or [])
    return ", ".join(names) or None


_EMAIL_AND_NAME = re.compile(r"^\s*\S+@\S+\s*\((.+)\)\s*$")


def _rss_author(raw: object) -> str | None:
    # RSS 2.0 <author> is "email (Name)". feedparser's own split truncates long TLDs.
    author = _clean_str(raw)
    if author is None:
        return None
    match = _EMAIL_AND_NAME.match(author)
    return " ".join((match.group(1) if match else author).split())


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


def _trusted(value: datetime | None, latest: datetime) -> datetime | None:
    """``value``, unless it is later than ``latest`` (see FUTURE_SLACK)."""
    return None if value is None or value > latest else value


def _struct_time_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    try:  # feedparser normalises dates to a UTC struct_time
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


# --- JSON Feed ----------------------------------------------------------------------------


def _parse_json_feed(body: bytes, url: str, latest: datetime) -> ParsedFeed:
    try:
        doc = json.loads(body)  # detects UTF-8/16/32 and skips a UTF-8 BOM (RFC 8259)
    except (ValueError, RecursionError) as e:
        raise ParseError(url, f"not a feed: invalid JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ParseError(url, "not a feed: JSON document has no 'items' list")
    declared = doc.get("version")
    version = {"1": "json10", "1.1": "json11"}.get(
        declared.rsplit("/", 1)[-1] if isinstance(declared, str) else "", "json"
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
    if html and not html.isspace():
        content: str | None = _sanitize(html, base)
    else:
        content = _text_to_html(text) if text and not text.isspace() else None
    summary_text = _str(item.get("summary"))
    summary = _text_to_html(summary_text) if summary_text and not summary_text.isspace() else None
    guid = _json_id(item.get("id"))
    tags = item.get("tags")
    attachments = item.get("attachments")
    updated = _trusted(_iso_utc(item.get("date_modified")), latest)
    return ParsedEntry(
        guid=guid,
        link=_first_link([_str(item.get("url")), _str(item.get("external_url"))], base),
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
    authors = obj.get("authors")  # 1.1
    if not isinstance(authors, list):
        authors = [obj.get("author")]  # 1.0
    names = _unique(_str(a.get("name")) for a in authors if isinstance(a, dict))
    return ", ".join(names) or None


def _iso_utc(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    parsed: datetime | None = None
    for text in (*_zoned(value), value):  # a zone name the email module reads as UTC first
        try:
            parsed = datetime.fromisoformat(text.strip().upper())  # RFC 3339 per JSON Feed
            break
        except ValueError:
            try:
                parsed = parsedate_to_datetime(text)  # some publishers use RFC 822 dates
                break
            except (TypeError, ValueError, IndexError):
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def _zoned(value: str) -> tuple[str, ...]:
    """``value`` with its zone name (one of :data:`_ZONE_HOURS`) or ``GMT±h[:mm]`` offset
    written as a numeric offset, RFC 822 style (``... +0200``) and ISO style
    (``...+02:00``); empty when it ends in neither."""
    match = _ZONED.fullmatch(value.strip())
    if match is None:
        return ()
    if match["name"] is not None:
        hours = _ZONE_HOURS.get(match["name"].lower())
        if hours is None:
            return ()
        minutes = round(hours * 60)
    else:
        minutes = int(match["h"]) * 60 + int(match["m"] or 0)
        if match["sign"] == "-":
            minutes = -minutes
    if abs(minutes) > 14 * 60:  # no zone is further from UTC
        return ()
    sign, (hh, mm) = "-" if minutes < 0 else "+", divmod(abs(minutes), 60)
    stamp = match["stamp"]
    return f"{stamp} {sign}{hh:02d}{mm:02d}", f"{stamp}{sign}{hh:02d}:{mm:02d}"


def _zoned_date(value: str) -> Any:
    """A feedparser date handler (tried before its own): a date :func:`_zoned` rewrites,
    read by feedparser's RFC 822 or W3C-DTF parser; None leaves it to the others.

    An RFC 822 date with a day name and a time but no zone (``Fri, 27 Nov 2026
    10:00:00``) is read as UTC, as feedparser reads it without the day name and as the
    JSON Feed reader reads it: feedparser's own parser counts the day name as the
    missing zone and returns nothing."""
    forms = _zoned(value)
    if not forms:
        if _UNZONED_RFC822.fullmatch(value.strip()):
            return _parse_date_rfc822(f"{value.strip()} +0000")
        return None
    return _parse_date_rfc822(forms[0]) or _parse_date_w3dtf(forms[1])


feedparser.registerDateHandler(_zoned_date)


# --- shared helpers -----------------------------------------------------------------------


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


def _str(value: object) -> str | None:
    return xml_chars(value) if isinstance(value, str) else None


def _clean_str(value: object) -> str | None:
    return xml_chars(value).strip() or None if isinstance(value, str) else None


def _plain(value: object) -> str | None:
    return " ".join(xml_chars(value).split()) or None if isinstance(value, str) else None


def _positive_int(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None
