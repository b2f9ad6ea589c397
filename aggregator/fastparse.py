"""lxml fast path for parse.py: a well-formed RSS 2.0 / 0.9x / 1.0 or Atom 1.0 document read
into the same raw dictionaries feedparser would build, or ``None`` so feedparser reads it.

Owns: proving a document lies inside an envelope where the result is identical to
feedparser's (strict SAX mode, ``sanitize_html=False``, ``resolve_relative_uris=False``),
and replaying feedparser's element handlers (``feedparser/namespaces/_base.py``,
``feedparser/mixin.py``) for that envelope only. parse.py turns the dictionaries into a
``ParsedFeed`` with the same code for both paths, so the paths can differ only here.

Must not: accept anything it has not replicated. It declines (returns ``None``) on: an
encoding feedparser would override or flag (its own ``convert_to_utf8`` decides, on the
same bytes), a DOCTYPE or entity declaration, a document lxml does not parse without
recovery, a root other than ``rss`` / ``rdf:RDF`` / Atom 1.0 ``feed``, a namespace outside
a short allowlist (or declared below the root), ``xml:base`` below the root, an element
without a replayed handler, child elements or unusual ``type`` / ``mode`` / ``src`` on
text constructs (XHTML content included), RSS ``source``, contributors, images inside items.
Must not do I/O or know about ``ParsedFeed``.

Reused from feedparser so the values match exactly: the encoding conversion, the date
parser, its URL joiner, its HTML guess for RSS text, its cp1252 table. Only feedparser
6.0.x is trusted; another version turns the fast path off.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import feedparser
from feedparser.datetimes import _parse_date
from feedparser.encodings import convert_to_utf8
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri
from lxml import etree  # type: ignore[import-untyped]

__all__ = ["RawFeed", "extract"]

_ENABLED = str(getattr(feedparser, "__version__", "")).startswith("6.0.")

# Namespace URI (lower case) -> feedparser's prefix: "" folds into the core element names.
_MATCH: dict[str, str] = {k.lower(): v for k, v in _FeedParserMixin.namespaces.items()}
_ATOM = "http://www.w3.org/2005/atom"
_RSS10 = "http://purl.org/rss/1.0/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_ALLOWED_NS = frozenset(
    {
        _ATOM,
        _RSS10,
        _RDF,
        "http://purl.org/dc/elements/1.1/",
        "http://purl.org/dc/terms/",
        "http://purl.org/rss/1.0/modules/content/",
        "http://purl.org/rss/1.0/modules/syndication/",
        "http://purl.org/rss/1.0/modules/slash/",
        "http://wellformedweb.org/commentapi/",
        "http://rssnamespace.org/feedburner/ext/1.0",
    }
)
_CANONICAL_PREFIXES = frozenset(v for v in _MATCH.values() if v)
_VERSIONS = frozenset({"rss20", "rss091u", "rss092", "rss093", "rss094", "rss", "rss10", "atom10"})

# Elements feedparser has no handler for: it keeps their text under their name (or their
# attributes, if any). Checked against feedparser at import time below.
_UNKNOWN = frozenset(
    {
        "ttl", "docs", "comments", "rating", "skiphours", "skipdays", "hour", "day", "icon",
        "logo", "items", "rdf_rdf", "rdf_seq", "rdf_li", "sy_updateperiod",
        "sy_updatefrequency", "sy_updatebase", "feedburner_origlink", "wfw_commentrss",
        "wfw_comment", "slash_comments", "slash_department", "slash_section",
    }
)  # fmt: skip
# Elements whose text is read: they must have no child elements (feedparser would file a
# child's text elsewhere, or switch the construct to inline XHTML).
_LEAF = frozenset(
    {
        "title", "dc_title", "description", "dc_description", "summary", "subtitle",
        "tagline", "rights", "copyright", "dc_rights", "content", "content_encoded", "link",
        "guid", "id", "pubdate", "published", "issued", "dcterms_issued", "updated",
        "modified", "lastbuilddate", "dc_date", "dcterms_modified", "created",
        "dcterms_created", "category", "keywords", "dc_subject", "generator", "language",
        "dc_language", "name", "email", "uri", "url", "homepage", "width", "height",
        "webmaster", "enclosure", "cloud",
    }
)  # fmt: skip
_TEXT_TYPES = frozenset({"text/plain", "text/html"})
_HTML_TYPES = _FeedParserMixin.html_types
_CAN_BE_RELATIVE = _FeedParserMixin.can_be_relative_uri
_LOOKS_LIKE_HTML: Callable[[str], bool] = _FeedParserMixin.looks_like_html
_QUERY_REF = re.compile("&([A-Za-z0-9_]+);")
_EMAIL = re.compile(
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"""
)
_C1_CONTROL = re.compile("[\x80-\x9f]")  # the keys of feedparser's _cp1252 table
_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")
_DECLARATION = re.compile(rb"<!(?!--)")
_FIRST_ELEMENT = re.compile(rb"<\w")
_VERSION_MAP = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}


@dataclass(frozen=True, slots=True)
class RawFeed:
    """What feedparser's result holds under "version", "feed" and "entries"."""

    version: str
    feed: dict[str, Any]
    entries: list[dict[str, Any]]


class _Decline(Exception):
    """The document is outside the envelope; feedparser must read it."""


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
    start = _FIRST_ELEMENT.search(data)
    if start is None or _DECLARATION.search(data, 0, start.start() + 1):
        return None  # no element, or DOCTYPE / ENTITY (feedparser rewrites those)
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    try:
        return _Replay(root, data).run()
    except _Decline:
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


def _name(tag: str) -> tuple[str, bool]:
    """feedparser's handler suffix for an lxml tag ("dc_creator", "title"), and whether the
    tag is in no namespace or a core one (feedparser then applies its "special hack")."""
    if tag[0] != "{":
        return tag.lower(), True
    uri, _, local = tag[1:].partition("}")
    lower = uri.lower()
    if lower not in _ALLOWED_NS:
        raise _Decline
    prefix = _MATCH[lower]
    return (f"{prefix}_{local.lower()}", False) if prefix else (local.lower(), True)


def _attributes(items: list[tuple[str, str]], prefixes: dict[str, str]) -> dict[str, str]:
    """feedparser's attrs_d: each attribute under its name with feedparser's prefix, then
    under its qname as written (expat runs with namespace_prefixes on); names lower-cased,
    rel/type values lower-cased. ``prefixes``: namespace URI -> the document's prefix."""
    raw: dict[str, str] = {}
    for key, value in items:
        if key[0] == "{":
            uri, _, local = key[1:].partition("}")
            prefix = _MATCH.get(uri.lower(), "")
            raw[(f"{prefix}:{local}" if prefix else local).lower()] = value
        else:
            raw[key.lower()] = value
    for key, value in items:
        if key[0] == "{":
            uri, _, local = key[1:].partition("}")
            raw[f"{prefixes[uri]}:{local}".lower()] = value
        else:
            raw[key.lower()] = value
    return {k: (v.lower() if k in ("rel", "type") else v) for k, v in raw.items()}


def _map_type(value: str) -> str:
    return _FeedParserMixin.map_content_type(value)  # type: ignore[no-any-return]


def _fix_text(output: str, c1: bool) -> str:
    # feedparser's repair of UTF-8 read as ISO-8859-1, then its cp1252 mapping (mixin.pop).
    if output.isascii():  # both are no-ops on ASCII
        return output
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        output = output.encode("iso-8859-1").decode("utf-8")
    if not c1 or _C1_CONTROL.search(output) is None:  # str.translate with a dict is slow
        return output
    return output.translate(_cp1252)


class _Replay:
    """feedparser's SAX-driven state machine, replayed over an lxml tree."""

    def __init__(self, root: Any, data: bytes) -> None:
        self.root = root
        self.data = data
        self.version = ""
        self.baseuri = ""
        self.feed: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self.depths: list[dict[str, int]] = []  # feedparser's property_depth_map
        self.stack: list[list[Any]] = []  # [element, expecting_text, pieces]
        self.params: dict[str, Any] = {}  # contentparams
        self.infeed = self.inentry = self.inimage = self.intextinput = 0
        self.inauthor = self.incontent = self.has_content = 0
        self.title_depth = -1
        self.depth = 0
        self.summary_key: str | None = None
        self.guidislink = False
        # Whether any text may hold U+0080..U+009F (UTF-8 C2 80..C2 9F, or a character
        # reference): if not, feedparser's cp1252 mapping cannot change anything.
        self.c1 = b"&#" in data or (b"\xc2" in data and _C1_UTF8.search(data) is not None)
        # Namespace URI -> the document's prefix, for attribute qnames; "xml" is implicit.
        self.prefixes = {"http://www.w3.org/XML/1998/namespace": "xml"}

    # --- envelope ---------------------------------------------------------------------

    def run(self) -> RawFeed:
        root = self.root
        nsmap = root.nsmap
        # Declarations below the root would be tracked mid-document: decline them (and any
        # "xmlns" in text, to keep the check a byte count).
        if self.data.count(b"xmlns") != len(nsmap):
            raise _Decline
        for prefix, uri in nsmap.items():  # document order (libxml2's nsDef list)
            lower = uri.lower()
            if lower not in _ALLOWED_NS:
                raise _Decline
            canonical = _MATCH[lower]
            if prefix is None:
                if canonical:
                    raise _Decline
            elif prefix != canonical and (canonical or prefix in _CANONICAL_PREFIXES):
                raise _Decline
            if prefix is not None:
                if uri in self.prefixes:
                    raise _Decline  # two prefixes for one namespace: which qname?
                self.prefixes[uri] = prefix
            if not self.version:  # feedparser's track_namespace
                if lower == _RSS10:
                    self.version = "rss10"
                elif lower == _ATOM:
                    self.version = "atom10"
        name, bare = _name(root.tag)
        if name not in ("rss", "feed", "rdf_rdf"):
            raise _Decline
        attrs = _attributes(root.items(), self.prefixes)
        if "base" in attrs:
            raise _Decline
        if "xml:base" in attrs:
            base = _urljoin("", attrs["xml:base"])
            if base and (make_safe_absolute_uri(base, base) or base) != base:
                raise _Decline
            self.baseuri = base
        self._element(root, name, bare, attrs)
        if self.version not in _VERSIONS or (name == "rss" and not self.version.startswith("rss")):
            raise _Decline
        return RawFeed(self.version, self.feed, self.entries)

    def _element(self, el: Any, name: str, bare: bool, attrs: dict[str, str]) -> None:
        self.depth += 1
        if bare:  # feedparser's "special hack", for tags in no or a core namespace only
            if name not in ("title", "link", "description", "name"):
                self.intextinput = 0
            if name not in ("title", "link", "description", "url", "href", "width", "height"):
                self.inimage = 0
        stack = self.stack
        before = len(stack)
        start = _STARTS.get(name)
        if start is not None:
            start(self, attrs)
        elif name in _UNKNOWN:
            if attrs:
                self._context()[name] = attrs
            else:
                self._push(name, 1)
        else:
            raise _Decline
        if len(el):  # children: elements, comments or PIs
            if name in _LEAF:
                raise _Decline  # feedparser would file a child's text elsewhere
            # A container's own text is never read: require whitespace, so whitespace
            # (stripped by feedparser's pop) need not be collected.
            text = el.text
            if text and not text.isspace():
                raise _Decline
            prefixes = self.prefixes
            for child in el:
                tag = child.tag
                if type(tag) is str:
                    known = _NAMES.get(tag)
                    if known is None:
                        known = _NAMES[tag] = _name(tag)
                    if child.keys():
                        child_attrs = _attributes(child.items(), prefixes)
                        if "xml:base" in child_attrs or "base" in child_attrs:
                            raise _Decline
                    else:
                        child_attrs = {}
                    self._element(child, known[0], known[1], child_attrs)
                tail = child.tail
                if tail and not tail.isspace():
                    raise _Decline
        else:
            text = el.text
            if text:
                if len(stack) > before:
                    stack[-1][2].append(text)
                elif not text.isspace():
                    raise _Decline  # text of an element that pushed nothing: parent's text
        end = _ENDS.get(name)
        if end is not None:
            end(self)
        else:
            self._pop(name)
        self.depth -= 1

    # --- mixin.py -------------------------------------------------------------------------

    def _data(self, text: str) -> None:
        if self.stack:
            self.stack[-1][2].append(text)

    def _push(self, element: str, expecting_text: int) -> None:
        self.stack.append([element, expecting_text, []])

    def _pop(self, element: str) -> str | None:
        stack = self.stack
        if not stack or stack[-1][0] != element:
            return None
        _, expecting_text, pieces = stack.pop()
        output = "".join(pieces).strip()
        if not expecting_text:
            return output
        if element in _CAN_BE_RELATIVE and output and (element != "id" or self.guidislink):
            output = _urljoin(self.baseuri or "", output)
        params = self.params
        if (
            not self.version.startswith("atom")
            and params.get("type") == "text/plain"
            and _LOOKS_LIKE_HTML(output)
        ):
            params["type"] = "text/html"
        output = _fix_text(output, self.c1)
        if element in ("category", "tags", "itunes_keywords"):
            return output
        if element == "title" and -1 < self.title_depth <= self.depth:
            return output
        if self.inentry:
            entry = self.entries[-1]
            if element == "content":
                entry.setdefault(element, []).append({**params, "value": output})
            elif element == "link":
                if not self.inimage:
                    output = _QUERY_REF.sub(r"&\g<1>", output.replace("&amp;", "&"))
                    entry[element] = output
                    if output:
                        entry["links"][-1]["href"] = output
            else:
                if element == "description":
                    element = "summary"
                depths = self.depths[-1]
                old = depths.get(element)
                if old is None or self.depth <= old:
                    depths[element] = self.depth
                    entry[element] = output
                if self.incontent:
                    entry[element + "_detail"] = {**params, "value": output}
        elif self.infeed:
            context = self._context()
            if element == "description":
                element = "subtitle"
            context[element] = output
            if element == "link":
                output = _QUERY_REF.sub(r"&\g<1>", output)
                context[element] = output
                context["links"][-1]["href"] = output
            elif self.incontent:
                context[element + "_detail"] = {**params, "value": output}
        return output

    def _push_content(
        self, tag: str, attrs: dict[str, str], default_type: str, expecting_text: int
    ) -> None:
        if "mode" in attrs or "src" in attrs:
            raise _Decline  # base64 or out-of-line content
        kind = _map_type(attrs.get("type", default_type))
        if kind not in _TEXT_TYPES:
            raise _Decline  # XHTML, XML or base64-encoded media types
        self.incontent += 1
        self.params = {"type": kind, "language": None, "base": self.baseuri}
        self._push(tag, expecting_text)

    def _pop_content(self, tag: str) -> str | None:
        value = self._pop(tag)
        self.incontent -= 1
        self.params = {}
        return value

    def _context(self) -> dict[str, Any]:
        if self.inimage and "image" in self.feed:
            return self.feed["image"]  # type: ignore[no-any-return]
        if self.intextinput:
            return self.feed["textinput"]  # type: ignore[no-any-return]
        if self.inentry:
            return self.entries[-1]
        return self.feed

    def _save(self, key: str, value: Any, overwrite: bool = False) -> None:
        context = self._context()
        if overwrite:
            context[key] = value
        else:
            context.setdefault(key, value)

    def _save_author(self, key: str, value: Any) -> None:
        context = self._context()
        context.setdefault("author_detail", {})
        context["author_detail"][key] = value
        self._sync_author_detail()
        context.setdefault("authors", [{}])
        context["authors"][-1][key] = value

    def _sync_author_detail(self) -> None:
        context = self._context()
        detail = context.get("authors", [{}])[-1]
        if detail:
            name = detail.get("name")
            email = detail.get("email")
            if name and email:
                context["author"] = f"{name} ({email})"
            elif name:
                context["author"] = name
            elif email:
                context["author"] = email
            return
        author, email = context.get("author"), None
        if not author:
            return
        match = _EMAIL.search(author)
        if match:
            email = match.group(0)
            author = author.replace(email, "")
            author = author.replace("()", "")
            author = author.replace("<>", "")
            author = author.replace("&lt;&gt;", "")
            author = author.strip()
            if author and (author[0] == "("):
                author = author[1:]
            if author and (author[-1] == ")"):
                author = author[:-1]
            author = author.strip()
        if author or email:
            context.setdefault("author_detail", detail)
        if author:
            detail["name"] = author
        if email:
            detail["email"] = email

    def _add_tag(self, term: str | None, scheme: str | None, label: str | None) -> None:
        tags = self._context().setdefault("tags", [])
        if not term and not scheme and not label:
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in tags:
            tags.append(value)

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
            raise _Decline  # Atom 0.x or a feed element in no namespace

    def start_channel(self, attrs: dict[str, str]) -> None:
        self.infeed = 1
        self._cdf_common(attrs)

    def _cdf_common(self, attrs: dict[str, str]) -> None:
        if "lastmod" in attrs or "href" in attrs:
            raise _Decline

    def end_channel(self) -> None:
        self.infeed = 0

    def start_image(self, attrs: dict[str, str]) -> None:
        if self.inentry or self.intextinput:
            raise _Decline  # an item's image title would become the item's title
        self.feed.setdefault("image", {})
        self.inimage = 1
        self.title_depth = -1
        self._push("image", 0)

    def end_image(self) -> None:
        self._pop("image")
        self.inimage = 0

    def start_textinput(self, attrs: dict[str, str]) -> None:
        if self.inentry or self.inimage:
            raise _Decline
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
            raise _Decline
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
        self._pop("created")  # created_parsed is not read

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
            if attrs.get("rel") == "alternate" and _map_type(attrs["type"]) in _HTML_TYPES:
                context["link"] = attrs["href"]
        else:
            self._push("link", expecting_text)

    def end_link(self) -> None:
        self._pop("link")

    def start_guid(self, attrs: dict[str, str]) -> None:
        self.guidislink = attrs.get("ispermalink", "true") == "true"
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


_NAMES: dict[str, tuple[str, bool]] = {}  # lxml tag -> _name(tag), for allowed tags only

_Start = Callable[[_Replay, dict[str, str]], None]
_End = Callable[[_Replay], None]
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


def _check_against_feedparser() -> None:
    """The replayed names must be feedparser's: an unknown element must have no handler, and
    every replayed handler must exist there (guards a feedparser upgrade)."""
    parser = feedparser.api.StrictFeedParser
    if not all(0x80 <= key <= 0x9F for key in _cp1252):
        raise RuntimeError("feedparser's _cp1252 table changed: fix _C1_CONTROL / _C1_UTF8")
    for name in _UNKNOWN:
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
