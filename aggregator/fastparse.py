"""lxml fast path for parse.py: a well-formed RSS 2.0 / 0.9x / 1.0 or Atom 1.0 document read
into the same raw dictionaries feedparser would build, or ``None`` so feedparser reads it.

Owns: proving a document lies inside an envelope where the result is identical to
feedparser's (strict SAX mode, ``sanitize_html=False``, ``resolve_relative_uris=False``):
``extract`` and the element handlers of ``feedparser/namespaces/_base.py``, replayed as
``_Replay`` on top of fastparse_replay.py's walk and ``feedparser/mixin.py`` machinery
(``ReplayBase``). parse.py turns the dictionaries into a ``ParsedFeed`` with the same code
for both paths, so the paths can differ only in these two modules.

Must not: accept anything it has not replicated. It declines (returns ``None``) on: an
encoding feedparser would override or flag (its own ``convert_to_utf8`` decides, on the
same bytes), a DOCTYPE or entity declaration, a document lxml does not parse without
recovery, a root other than ``rss`` / ``rdf:RDF`` / Atom 1.0 ``feed``, a namespace outside
a short allowlist (or declared below the root), ``xml:base`` below the root, an element
without a replayed handler, child elements or unusual ``type`` / ``mode`` / ``src`` on
text constructs (XHTML content included), RSS ``source``, contributors, images inside items,
a name (attribute, namespace prefix, processing instruction target) that is not ASCII.
A handler replays feedparser's in full or raises ``Decline``. Must not do I/O or know about
``ParsedFeed``.

Reused from feedparser so the values match exactly: the encoding conversion, the date
parser, its URL joiner (and, in fastparse_replay.py, its HTML guess for RSS text and its
cp1252 table). Only feedparser 6.0.x is trusted; another version turns the fast path off;
the replayed handler names are checked against feedparser's when this module is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import feedparser
from feedparser.datetimes import _parse_date
from feedparser.encodings import convert_to_utf8
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin
from lxml import etree  # type: ignore[import-untyped]

from aggregator.fastparse_replay import UNKNOWN, Decline, RawFeed, ReplayBase, map_type

__all__ = ["RawFeed", "extract", "guid_is_permalink"]

_ENABLED = str(getattr(feedparser, "__version__", "")).startswith("6.0.")
_DECLARATION = re.compile(rb"<!(?!--)")
_FIRST_ELEMENT = re.compile(rb"<\w")
#: A processing instruction whose target is not ASCII: XML 1.0's fifth edition (libxml2)
#: allows characters in names (U+FEFF, U+3001...) that expat, on its fourth, calls an
#: invalid token (feedparser then recovers, with a warning).
_NON_ASCII_PI = re.compile(rb"<\?[^\s?>]*[\x80-\xff]")


def extract(body: bytes, headers: dict[str, str]) -> RawFeed | None:
    """``body`` as feedparser would see it given ``headers``, or None when not provable."""
    if not _ENABLED:
        return None
    result: dict[str, Any] = {}
    try:
        data = convert_to_utf8(headers, body, result)
    except Exception:  # feedparser's own problem: let feedparser report it
        return None
    if result.get("bozo") or not result.get("encoding"):
        return None  # an encoding warning or override: feedparser's words, not ours
    if b"<?" in data and _NON_ASCII_PI.search(data):
        return None
    start = _FIRST_ELEMENT.search(data)
    if start is None or _DECLARATION.search(data, 0, start.start() + 1):
        return None  # no element, or DOCTYPE / ENTITY (feedparser rewrites those)
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    try:
        return _Replay(root, data).run()
    except Decline:
        return None


_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    recover=False,
    huge_tree=False,
    collect_ids=False,
    remove_comments=False,
)


_HTML_TYPES = _FeedParserMixin.html_types
#: The longest author searched here for an e-mail address (_Replay._sync_author_detail):
#: under a millisecond with the quadratic pattern (authors are rarely over 100 characters).
_AUTHOR_SEARCHED = 300
_VERSION_MAP = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}


class _Replay(ReplayBase):
    """feedparser's element handlers, on the replayed state machine of fastparse.py."""

    # --- namespaces/_base.py --------------------------------------------------------------

    def start_rss(self, attrs: dict[str, str]) -> None:
        if not self.version or not self.version.startswith("rss"):
            attr_version = attrs.get("version", "")
            version = _VERSION_MAP.get(attr_version)
            if version:
                self.version = version
            elif attr_version.startswith("2."):
                self.version = "rss20"
            else:
                self.version = "rss"

    def start_feed(self, attrs: dict[str, str]) -> None:
        self.infeed = 1
        if not self.version:
            raise Decline  # Atom 0.x or a feed element in no namespace

    def start_channel(self, attrs: dict[str, str]) -> None:
        self.infeed = 1
        self._cdf_common(attrs)

    def _cdf_common(self, attrs: dict[str, str]) -> None:
        if "lastmod" in attrs or "href" in attrs:
            raise Decline

    def end_channel(self) -> None:
        self.infeed = 0

    def start_image(self, attrs: dict[str, str]) -> None:
        if self.inentry or self.intextinput:
            raise Decline  # an item's image title would become the item's title
        self.feed.setdefault("image", {})
        self.inimage = 1
        self.title_depth = -1
        self._push("image", 0)

    def end_image(self) -> None:
        self._pop("image")
        self.inimage = 0

    def start_textinput(self, attrs: dict[str, str]) -> None:
        if self.inentry or self.inimage:
            raise Decline
        self.feed.setdefault("textinput", {})
        self.intextinput = 1
        self.title_depth = -1
        self._push("textinput", 0)

    def end_textinput(self) -> None:
        self._pop("textinput")
        self.intextinput = 0

    def start_author(self, attrs: dict[str, str]) -> None:
        self.inauthor = 1
        self._push("author", 1)
        self._context().setdefault("authors", []).append({})

    def end_author(self) -> None:
        self._pop("author")
        self.inauthor = 0
        self._sync_author_detail()

    def _sync_author_detail(self) -> None:
        # An author without name or email elements is searched for an e-mail address with
        # feedparser's pattern as written (fastparse_replay._EMAIL), which retries every
        # position of a run of letters: a long one goes to feedparser, whose search
        # parse.AUTHOR_EMAIL makes linear (100,000 letters took ~60 s).
        context = self._context()
        author = context.get("author")
        if not context.get("authors", [{}])[-1] and author and len(author) > _AUTHOR_SEARCHED:
            raise Decline
        super()._sync_author_detail()

    def start_name(self, attrs: dict[str, str]) -> None:
        self._push("name", 0)

    def end_name(self) -> None:
        value = self._pop("name")
        if self.inauthor:
            self._save_author("name", value)
        elif self.intextinput:
            self._context()["name"] = value

    def start_width(self, attrs: dict[str, str]) -> None:
        self._push("width", 0)

    def end_width(self) -> None:
        self._pop("width")  # feedparser keeps it only under "image"

    def start_height(self, attrs: dict[str, str]) -> None:
        self._push("height", 0)

    def end_height(self) -> None:
        self._pop("height")

    def start_url(self, attrs: dict[str, str]) -> None:
        self._push("href", 1)

    def end_url(self) -> None:
        value = self._pop("href")
        if self.inauthor:
            self._save_author("href", value)

    def start_email(self, attrs: dict[str, str]) -> None:
        self._push("email", 0)

    def end_email(self) -> None:
        value = self._pop("email")
        if self.inauthor:
            self._save_author("email", value)

    def start_subtitle(self, attrs: dict[str, str]) -> None:
        self._push_content("subtitle", attrs, "text/plain", 1)

    def end_subtitle(self) -> None:
        self._pop_content("subtitle")

    def start_rights(self, attrs: dict[str, str]) -> None:
        self._push_content("rights", attrs, "text/plain", 1)

    def end_rights(self) -> None:
        self._pop_content("rights")

    def start_item(self, attrs: dict[str, str]) -> None:
        if self.inentry:
            raise Decline
        self.entries.append({})
        self.depths.append({})
        self._push("item", 0)
        self.inentry = 1
        self.guidislink = False
        self.title_depth = -1
        about = attrs.get("rdf:about")
        if about:
            self._context()["id"] = about
        self._cdf_common(attrs)

    def end_item(self) -> None:
        self._pop("item")
        self.inentry = 0
        self.has_content = 0

    def start_language(self, attrs: dict[str, str]) -> None:
        self._push("language", 1)

    def end_language(self) -> None:
        self._pop("language")  # feedparser's self.lang: only contentparams["language"]

    def start_webmaster(self, attrs: dict[str, str]) -> None:
        self._push("publisher", 1)

    def end_webmaster(self) -> None:
        self._pop("publisher")  # _sync_author_detail("publisher") writes publisher_* only

    def start_published(self, attrs: dict[str, str]) -> None:
        self._push("published", 1)

    def end_published(self) -> None:
        value = self._pop("published")
        self._save("published_parsed", _date(value), overwrite=True)

    def start_updated(self, attrs: dict[str, str]) -> None:
        self._push("updated", 1)

    def end_updated(self) -> None:
        value = self._pop("updated")
        self._save("updated_parsed", _date(value), overwrite=True)

    def start_created(self, attrs: dict[str, str]) -> None:
        self._push("created", 1)

    def end_created(self) -> None:
        value = self._pop("created")
        self._save("created_parsed", _date(value), overwrite=True)

    def start_category(self, attrs: dict[str, str]) -> None:
        self._add_tag(
            attrs.get("term"), attrs.get("scheme", attrs.get("domain")), attrs.get("label")
        )
        self._push("category", 1)

    def end_category(self) -> None:
        value = self._pop("category")
        if not value:
            return
        tags = self._context()["tags"]
        if value and len(tags) and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self._add_tag(value, None, None)

    def start_cloud(self, attrs: dict[str, str]) -> None:
        self._context()["cloud"] = dict(attrs)

    def start_link(self, attrs: dict[str, str]) -> None:
        attrs = dict(attrs)
        attrs.setdefault("rel", "alternate")
        if attrs["rel"] == "self":
            attrs.setdefault("type", "application/atom+xml")
        else:
            attrs.setdefault("type", "text/html")
        context = self._context()
        _enforce_href(attrs)
        if "href" in attrs:
            attrs["href"] = _urljoin(self.baseuri or "", attrs["href"])
        expecting_text = self.infeed or self.inentry
        context.setdefault("links", [])
        if not (self.inentry and self.inimage):
            context["links"].append(attrs)
        if "href" in attrs:
            if attrs.get("rel") == "alternate" and map_type(attrs["type"]) in _HTML_TYPES:
                context["link"] = attrs["href"]
        else:
            self._push("link", expecting_text)

    def end_link(self) -> None:
        self._pop("link")

    def start_guid(self, attrs: dict[str, str]) -> None:
        self.guidislink = guid_is_permalink(attrs)
        self._push("id", 1)

    def end_guid(self) -> None:
        value = self._pop("id")
        self._save("guidislink", self.guidislink and "link" not in self._context())
        if self.guidislink:
            self._save("link", value)

    def start_title(self, attrs: dict[str, str]) -> None:
        self._push_content("title", attrs, "text/plain", self.infeed or self.inentry)

    def end_title(self) -> None:
        value = self._pop_content("title")
        if value:
            self.title_depth = self.depth

    def start_description(self, attrs: dict[str, str]) -> None:
        if "summary" in self._context() and not self.has_content:
            self.summary_key = "content"
            self.start_content(attrs)
        else:
            self._push_content("description", attrs, "text/html", self.infeed or self.inentry)

    def end_description(self) -> None:
        if self.summary_key == "content":
            self.end_content()
        else:
            self._pop_content("description")
        self.summary_key = None

    def start_generator(self, attrs: dict[str, str]) -> None:
        self._push("generator", 1)  # generator_detail is not read

    def end_generator(self) -> None:
        self._pop("generator")

    def start_summary(self, attrs: dict[str, str]) -> None:
        if "summary" in self._context() and not self.has_content:
            self.summary_key = "content"
            self.start_content(attrs)
        else:
            self.summary_key = "summary"
            self._push_content("summary", attrs, "text/plain", 1)

    def end_summary(self) -> None:
        if self.summary_key == "content":
            self.end_content()
        else:
            self._pop_content(self.summary_key or "summary")
        self.summary_key = None

    def start_enclosure(self, attrs: dict[str, str]) -> None:
        attrs = dict(attrs)
        _enforce_href(attrs)
        attrs["rel"] = "enclosure"
        self._context().setdefault("links", []).append(attrs)

    def start_content(self, attrs: dict[str, str]) -> None:
        self.has_content = 1
        self._push_content("content", attrs, "text/plain", 1)
        self._push("content", 1)

    def start_content_encoded(self, attrs: dict[str, str]) -> None:
        self.has_content = 1
        self._push_content("content", attrs, "text/html", 1)

    def end_content(self) -> None:
        copy_to_summary = self.params.get("type") in ("text/plain", *_HTML_TYPES)
        value = self._pop_content("content")
        if copy_to_summary:
            self._save("summary", value)


def guid_is_permalink(attrs: dict[str, str]) -> bool:
    """Whether an RSS ``<guid>`` with (lower-cased) attributes ``attrs`` is the item's link:
    unless ``isPermaLink`` says otherwise. feedparser compares the value with ``"true"``
    exactly, so ``"True"`` (a boolean printed by Python or .NET) made the guid no link and
    an item with only a guid had none; the value is read as XML Schema's boolean, its
    case and surrounding spaces aside. parse.py gives feedparser this reading too."""
    return attrs.get("ispermalink", "true").strip().lower() in ("true", "1")


def _enforce_href(attrs: dict[str, str]) -> None:
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href


_DATES: dict[str, Any] = {}


def _date(value: str | None) -> Any:
    if not value:
        return None
    try:
        return _DATES[value]
    except KeyError:
        pass
    if len(_DATES) > 4096:
        _DATES.clear()
    parsed = _DATES[value] = _parse_date(value)
    return parsed


# Unbound _Replay methods, which ReplayBase._element calls on itself (always a _Replay at
# run time): the instance is typed Any, as the base class cannot name _Replay.
_Start = Callable[[Any, dict[str, str]], None]
_End = Callable[[Any], None]
R = _Replay
# feedparser handler suffix -> replayed start / end handler (aliases as feedparser has them).
_STARTS: dict[str, _Start] = {
    "rss": R.start_rss,
    "feed": R.start_feed,
    "channel": R.start_channel,
    "image": R.start_image,
    "textinput": R.start_textinput,
    "author": R.start_author,
    "managingeditor": R.start_author,
    "dc_author": R.start_author,
    "dc_creator": R.start_author,
    "name": R.start_name,
    "width": R.start_width,
    "height": R.start_height,
    "url": R.start_url,
    "homepage": R.start_url,
    "uri": R.start_url,
    "email": R.start_email,
    "subtitle": R.start_subtitle,
    "tagline": R.start_subtitle,
    "rights": R.start_rights,
    "copyright": R.start_rights,
    "dc_rights": R.start_rights,
    "item": R.start_item,
    "entry": R.start_item,
    "language": R.start_language,
    "dc_language": R.start_language,
    "webmaster": R.start_webmaster,
    "published": R.start_published,
    "issued": R.start_published,
    "pubdate": R.start_published,
    "dcterms_issued": R.start_published,
    "updated": R.start_updated,
    "modified": R.start_updated,
    "lastbuilddate": R.start_updated,
    "dc_date": R.start_updated,
    "dcterms_modified": R.start_updated,
    "created": R.start_created,
    "dcterms_created": R.start_created,
    "category": R.start_category,
    "keywords": R.start_category,
    "dc_subject": R.start_category,
    "cloud": R.start_cloud,
    "link": R.start_link,
    "guid": R.start_guid,
    "id": R.start_guid,
    "title": R.start_title,
    "dc_title": R.start_title,
    "description": R.start_description,
    "dc_description": R.start_description,
    "generator": R.start_generator,
    "summary": R.start_summary,
    "enclosure": R.start_enclosure,
    "content": R.start_content,
    "content_encoded": R.start_content_encoded,
}
_ENDS: dict[str, _End] = {
    "channel": R.end_channel,
    "feed": R.end_channel,
    "image": R.end_image,
    "textinput": R.end_textinput,
    "author": R.end_author,
    "managingeditor": R.end_author,
    "dc_author": R.end_author,
    "dc_creator": R.end_author,
    "name": R.end_name,
    "width": R.end_width,
    "height": R.end_height,
    "url": R.end_url,
    "homepage": R.end_url,
    "uri": R.end_url,
    "email": R.end_email,
    "subtitle": R.end_subtitle,
    "tagline": R.end_subtitle,
    "rights": R.end_rights,
    "copyright": R.end_rights,
    "dc_rights": R.end_rights,
    "item": R.end_item,
    "entry": R.end_item,
    "language": R.end_language,
    "dc_language": R.end_language,
    "webmaster": R.end_webmaster,
    "published": R.end_published,
    "issued": R.end_published,
    "pubdate": R.end_published,
    "dcterms_issued": R.end_published,
    "updated": R.end_updated,
    "modified": R.end_updated,
    "lastbuilddate": R.end_updated,
    "dc_date": R.end_updated,
    "dcterms_modified": R.end_updated,
    "created": R.end_created,
    "dcterms_created": R.end_created,
    "category": R.end_category,
    "keywords": R.end_category,
    "dc_subject": R.end_category,
    "link": R.end_link,
    "guid": R.end_guid,
    "id": R.end_guid,
    "title": R.end_title,
    "dc_title": R.end_title,
    "description": R.end_description,
    "dc_description": R.end_description,
    "generator": R.end_generator,
    "summary": R.end_summary,
    "content": R.end_content,
    "content_encoded": R.end_content,
}
_Replay.STARTS = _STARTS
_Replay.ENDS = _ENDS


def _check_against_feedparser() -> None:
    """The replayed names must be feedparser's: an unknown element must have no handler, and
    every replayed handler must exist there (guards a feedparser upgrade)."""
    parser = feedparser.api.StrictFeedParser
    if not all(0x80 <= key <= 0x9F for key in _cp1252):
        raise RuntimeError("feedparser's _cp1252 table changed: fix _C1_CONTROL / _C1_UTF8")
    for name in UNKNOWN:
        if hasattr(parser, "_start_" + name) or hasattr(parser, "_end_" + name):
            raise RuntimeError(f"feedparser handles {name}: fastparse must replay it")
    for name in _STARTS:
        if name not in ("rss", "feed") and not hasattr(parser, "_start_" + name):
            raise RuntimeError(f"feedparser has no _start_{name}")
    for name in _ENDS:
        if not hasattr(parser, "_end_" + name):
            raise RuntimeError(f"feedparser has no _end_{name}")
    for name in _STARTS.keys() - _ENDS.keys():
        if hasattr(parser, "_end_" + name):
            raise RuntimeError(f"feedparser has _end_{name}: fastparse must replay it")


if _ENABLED:
    _check_against_feedparser()
