"""The machinery of the lxml fast path (fastparse.py): feedparser's SAX-driven state
machine replayed over an lxml tree, without the element handlers.

Owns: the walk over the tree and the envelope checks made on the way (namespaces from a
short allowlist declared at the root, no ``xml:base`` below it, no child elements or text
where feedparser would file them elsewhere), ``feedparser/mixin.py``'s state, push / pop
and context, and the ``RawFeed`` result. ``ReplayBase`` calls the handlers a subclass
names in ``STARTS`` / ``ENDS``; an element with none raises ``Decline``.

Must not: hold element handlers or decide which documents enter the fast path (both are
fastparse.py's), do I/O, or know about ``ParsedFeed``.

Reused from feedparser so the values match exactly: its URL joiner, its HTML guess for
RSS text, its cp1252 table.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri

__all__ = ["UNKNOWN", "Decline", "RawFeed", "ReplayBase", "map_type"]


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
UNKNOWN = frozenset(
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
_CAN_BE_RELATIVE = _FeedParserMixin.can_be_relative_uri
_LOOKS_LIKE_HTML: Callable[[str], bool] = _FeedParserMixin.looks_like_html
_QUERY_REF = re.compile("&([A-Za-z0-9_]+);")
_EMAIL = re.compile(
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"""
)
_C1_CONTROL = re.compile("[\x80-\x9f]")  # the keys of feedparser's _cp1252 table
_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")


@dataclass(frozen=True, slots=True)
class RawFeed:
    """What feedparser's result holds under "version", "feed" and "entries"."""

    version: str
    feed: dict[str, Any]
    entries: list[dict[str, Any]]


class Decline(Exception):
    """The document is outside the envelope; feedparser must read it."""


def _name(tag: str) -> tuple[str, bool]:
    """feedparser's handler suffix for an lxml tag ("dc_creator", "title"), and whether the
    tag is in no namespace or a core one (feedparser then applies its "special hack")."""
    if tag[0] != "{":
        return tag.lower(), True
    uri, _, local = tag[1:].partition("}")
    lower = uri.lower()
    if lower not in _ALLOWED_NS:
        raise Decline
    prefix = _MATCH[lower]
    return (f"{prefix}_{local.lower()}", False) if prefix else (local.lower(), True)


def _attributes(items: list[tuple[str, str]], prefixes: dict[str, str]) -> dict[str, str]:
    """feedparser's attrs_d: each attribute under its name with feedparser's prefix, then
    under its qname as written (expat runs with namespace_prefixes on); names lower-cased,
    rel/type values lower-cased. ``prefixes``: namespace URI -> the document's prefix.
    Declines a name that is not ASCII: XML 1.0's fifth edition (libxml2) allows characters
    in names (U+FEFF, U+3001...) that expat, on its fourth, calls an invalid token."""
    raw: dict[str, str] = {}
    for key, value in items:
        if not key.isascii():
            raise Decline
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


def map_type(value: str) -> str:
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


class ReplayBase:
    """feedparser's SAX-driven state machine, replayed over an lxml tree: the state, the
    walk and mixin.py's machinery. A subclass (fastparse._Replay) holds the element
    handlers and names them in ``STARTS`` / ``ENDS``: feedparser handler suffix -> the
    unbound start / end method."""

    STARTS: ClassVar[Mapping[str, Callable[[Any, dict[str, str]], None]]] = {}
    ENDS: ClassVar[Mapping[str, Callable[[Any], None]]] = {}

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
            raise Decline
        for prefix, uri in nsmap.items():  # document order (libxml2's nsDef list)
            if prefix is not None and not prefix.isascii():
                raise Decline  # a name expat may refuse (see _attributes)
            lower = uri.lower()
            if lower not in _ALLOWED_NS:
                raise Decline
            canonical = _MATCH[lower]
            if prefix is None:
                if canonical:
                    raise Decline
            elif prefix != canonical and (canonical or prefix in _CANONICAL_PREFIXES):
                raise Decline
            if prefix is not None:
                if uri in self.prefixes:
                    raise Decline  # two prefixes for one namespace: which qname?
                self.prefixes[uri] = prefix
            if not self.version:  # feedparser's track_namespace
                if lower == _RSS10:
                    self.version = "rss10"
                elif lower == _ATOM:
                    self.version = "atom10"
        name, bare = _name(root.tag)
        if name not in ("rss", "feed", "rdf_rdf"):
            raise Decline
        attrs = _attributes(root.items(), self.prefixes)
        if "base" in attrs:
            raise Decline
        if "xml:base" in attrs:
            base = _urljoin("", attrs["xml:base"])
            if base and (make_safe_absolute_uri(base, base) or base) != base:
                raise Decline
            self.baseuri = base
        self._element(root, name, bare, attrs)
        if self.version not in _VERSIONS or (name == "rss" and not self.version.startswith("rss")):
            raise Decline
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
        start = self.STARTS.get(name)
        if start is not None:
            start(self, attrs)
        elif name in UNKNOWN:
            if attrs:
                self._context()[name] = attrs
            else:
                self._push(name, 1)
        else:
            raise Decline
        if len(el):  # children: elements, comments or PIs
            if name in _LEAF:
                raise Decline  # feedparser would file a child's text elsewhere
            # A container's own text is never read: require whitespace, so whitespace
            # (stripped by feedparser's pop) need not be collected.
            text = el.text
            if text and not text.isspace():
                raise Decline
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
                            raise Decline
                    else:
                        child_attrs = {}
                    self._element(child, known[0], known[1], child_attrs)
                tail = child.tail
                if tail and not tail.isspace():
                    raise Decline
        else:
            text = el.text
            if text:
                if len(stack) > before:
                    stack[-1][2].append(text)
                elif not text.isspace():
                    raise Decline  # text of an element that pushed nothing: parent's text
        end = self.ENDS.get(name)
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
            raise Decline  # base64 or out-of-line content
        kind = map_type(attrs.get("type", default_type))
        if kind not in _TEXT_TYPES:
            raise Decline  # XHTML, XML or base64-encoded media types
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


_NAMES: dict[str, tuple[str, bool]] = {}  # lxml tag -> _name(tag), for allowed tags only
