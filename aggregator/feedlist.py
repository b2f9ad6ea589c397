"""The feed list: feeds.yaml and OPML files -> ``FeedSource``, and back to OPML; what
makes a URL a feed's URL (``check_feed_url``) and when two spellings are one subscription
(``feed_key``).

Owns the format of feeds.yaml and of our OPML. Must not do I/O beyond reading the files it
is pointed at, and must stay cheap to import (the CLI loads it on every command).
"""

import bisect
import difflib
import html.entities
import json
import math
import re
import reprlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from xml.parsers.expat import errors as expat_errors

import yaml

from .config import SPAN, SPAN_UNITS, YAML_LOADER
from .credentials import display_url, without_credentials
from .errors import ConfigError
from .taxonomy import normalize_category
from .types import MAX_FEED_URL_BYTES, FeedSource

_FEED_FIELDS = ("url", "name", "topics", "interval", "enabled")
_OPML_SUFFIXES = (".opml", ".xml")
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_SCHEME_PREFIX = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://")
_MINUTES = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
# Characters XML 1.0 cannot carry, not even escaped (XML 1.0 §2.2): one in a feed's title
# would make the exported OPML unreadable by every importer, ours included.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# A value quoted in an error, bounded: YAML aliases nest a list in itself billions of times
# in a few hundred bytes, and repr() of it ran out of memory.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxtuple = 2, 4, 4, 4
_SHOWN.maxstring = _SHOWN.maxother = 80


@dataclass(frozen=True, slots=True)
class FeedList:
    """A feeds file as read: its feeds, and the OPML entries left out, each with why (in
    feeds.yaml a bad entry is an error instead: that file is yours to fix)."""

    sources: tuple[FeedSource, ...]
    skipped: tuple[str, ...] = ()
    kind: Literal["yaml", "opml"] = "yaml"


def unwrap_feed_scheme(url: str) -> str:
    """``url`` with a ``feed:`` scheme turned into the http(s) URL it stands for, as
    browsers and feed readers take it: ``feed://host/rss`` is ``http://host/rss``,
    ``feed:https://host/rss`` (and ``feed://https://host/rss``, as some sites write it)
    is ``https://host/rss``. Sites publish their "subscribe" links so; anything else,
    ``feed:`` followed by another scheme included, is returned as it is."""
    if url[:5].lower() != "feed:":
        return url
    rest = url[5:]
    inner = rest[2:] if rest.startswith("//") else rest
    if inner[:7].lower() == "http://" or inner[:8].lower() == "https://":
        return inner
    if rest.startswith("//") and not _SCHEME_PREFIX.match(inner):
        return "http:" + rest
    return url


def check_feed_url(url: str) -> str:
    """``url`` stripped, or a ConfigError saying why it cannot be a feed's URL: http(s)
    only, with a host, a port in range, no spaces and at most MAX_FEED_URL_BYTES (the
    error shows no password). A ``feed:`` URL is taken as the http(s) URL it stands for
    (:func:`unwrap_feed_scheme`), which is returned."""
    url = unwrap_feed_scheme(url.strip())
    size = len(url.encode("utf-8", "surrogatepass"))
    if size > MAX_FEED_URL_BYTES:
        raise ConfigError(
            f"{display_url(url)[:80]!r}… is longer than {MAX_FEED_URL_BYTES:,} bytes ({size:,})"
        )
    shown = display_url(url)
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        hint = "" if sep or ":" in url.split("/")[0] else " (add https:// in front)"
        raise ConfigError(f"only http(s) URLs are supported, got {shown!r}{hint}")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise ConfigError(f"{shown!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as e:  # an unclosed "[" of an IPv6 address: a traceback before
        raise ConfigError(f"{shown!r} is not a valid URL: {e}") from e
    try:
        parts.port  # noqa: B018 - validates it
    except ValueError as e:
        raise ConfigError(f"{shown!r} has a bad port: {e}") from e
    if not parts.hostname:
        raise ConfigError(f"{shown!r} has no host")
    return url


def feed_key(url: str) -> str:
    """What two subscription URLs must share to be the same feed: http and https, the
    host's case and trailing dot, the spelling of an internationalised host (``bücher``
    or ``xn--bcher-kva``), a default port, a trailing slash and a fragment make no
    difference (sites serve one feed at both, and readers treat them as one), nor does
    an unreserved character percent-encoded or not (``%7E`` or ``~``, RFC 3986 6.2.2);
    the user name, the path's case and the query do. The password does not: a new one
    written into feeds.yaml is the same subscription (it made a second feed, and the first kept
    being polled with the old password), while a login given to a feed first added
    without one is another (a site may serve members more). A URL that does not parse
    is its own key."""
    url = unwrap_feed_scheme(url.strip())
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed "[": no feed has it, and lookups must say so
        return url
    host = _ascii_host((parts.hostname or "").rstrip("."))
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo.partition(":")[0] + "@" if userinfo else "") + host
    if port not in (None, 80, 443):
        netloc += f":{port}"
    path, query = _PCT.sub(_pct, parts.path.rstrip("/")), _PCT.sub(_pct, parts.query)
    return urlunsplit(("", netloc, path, query, ""))


#: A percent-encoded octet (RFC 3986 2.1)
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
#: RFC 3986 2.3: what needs no encoding, and means the same encoded or not
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _pct(m: re.Match[str]) -> str:
    """An encoded octet as RFC 3986 6.2.2 compares it: an unreserved character decoded
    (``%7E`` is ``~``), any other with its hex upper-cased (``%2f`` is ``%2F``)."""
    c = chr(int(m.group(1), 16))
    return c if c in _UNRESERVED else m.group(0).upper()


def host_key(host: str) -> str:
    """What two spellings of a host name must share to be the same host, as
    :func:`feed_key` compares them: case, a trailing dot and the form of an
    internationalised name (httpx names ``xn--bcher-kva.example`` ``bücher.example``)
    make no difference. A host that asked to be left alone is held by this key."""
    return _ascii_host(host.lower().rstrip("."))


def url_host(url: str) -> str:
    """The :func:`host_key` of a URL's host; "" when it has none or does not parse."""
    try:
        return host_key(urlsplit(url).hostname or "")
    except ValueError:  # an unclosed "["
        return ""


def _ascii_host(host: str) -> str:
    """An internationalised host name in its ASCII form (IDNA 2008 with UTS #46 mapping,
    as httpx resolves it: ``faß.de`` is ``xn--fa-hia.de``, not ``fass.de``); anything
    else, including what is not a valid IDN, as it is."""
    if host.isascii():
        return host
    import idna  # httpx's own dependency; only for the rare non-ASCII host

    try:
        return str(idna.encode(host, uts46=True).decode("ascii"))
    except idna.IDNAError:
        return host


def _interval(value: Any, where: str) -> timedelta:
    """Minutes as a number (``30``), or a span as ``--since`` reads it (``30m``, ``2h``)."""
    shown = _SHOWN.repr(value)
    bad = f"{where}: 'interval' is minutes (30) or a span such as 30m, 2h or 1d, got {shown}"
    if isinstance(value, str) and _MINUTES.match(value):
        value = float(value)
    if isinstance(value, str):
        m = SPAN.match(value)
        if not m:
            raise ConfigError(bad)
        amount, unit = float(m.group(1)), SPAN_UNITS[m.group(2).lower()]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            amount, unit = float(value), "minutes"
        except OverflowError as e:  # an int past float's range: a traceback before
            raise ConfigError(f"{where}: 'interval' {str(value)[:20]}… is too long") from e
    else:
        raise ConfigError(bad)
    if not math.isfinite(amount) or amount <= 0:
        raise ConfigError(f"{where}: 'interval' must be positive, got {value!r}")
    try:
        return timedelta(**{unit: amount})
    except OverflowError as e:
        raise ConfigError(f"{where}: 'interval' {value!r} is too long") from e


def _source_from_mapping(item: Any, where: str) -> FeedSource:
    if isinstance(item, str):
        item = {"url": item}
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping with 'url', got {type(item).__name__}")
    unknown = sorted(str(k) for k in set(item) - set(_FEED_FIELDS))
    if unknown:
        close = [m for k in unknown for m in difflib.get_close_matches(k, _FEED_FIELDS, 1)]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}{hint}")
    url = item.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}: 'url' is required")
    try:
        url = check_feed_url(url)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        # YAML reads `name: 2600` as a number and `name: yes` as true: say how to keep it
        raise ConfigError(f"{where}: 'name' must be a string, got {_SHOWN.repr(name)}: quote it")
    topics_raw = item.get("topics") or []
    if isinstance(topics_raw, str):
        topics_raw = [topics_raw]
    if not isinstance(topics_raw, list) or not all(isinstance(t, str) for t in topics_raw):
        raise ConfigError(f"{where}: 'topics' must be a list of topic names")
    interval_raw = item.get("interval")
    interval = None if interval_raw is None else _interval(interval_raw, where)
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: 'enabled' must be true or false")
    return FeedSource(
        url=url,
        name=name.strip() or None if isinstance(name, str) else None,
        # blank and repeated topics dropped, as read_opml drops them: kept, they made an
        # OPML round trip report the feed as changed
        topics=unique_topics(t.strip() for t in topics_raw),
        interval=interval,
        enabled=enabled,
    )


class _KeyTwice(yaml.YAMLError):
    def __init__(self, key: object, line: int, first: int) -> None:
        super().__init__(key, line, first)
        self.key, self.line, self.first = key, line, first


class _BadValue(yaml.YAMLError):
    """A scalar the safe loader's constructor fails on with a Python error rather than a
    YAML one (``!!int x``, ``!!bool maybe``, a 5,000-digit number): a traceback before.
    ``field`` is the key it is the value of, when it is one; ``entry`` the feed entry
    (0-based) it is in, when known."""

    def __init__(self, node: yaml.ScalarNode, error: Exception) -> None:
        super().__init__(node.value)
        self.value: str = node.value
        self.tag: str = node.tag.rpartition(":")[2]
        self.line = node.start_mark.line + 1
        # why, where Python's words say more than the value does: "day is out of range
        # for month"; an int past Python's 4,300-digit limit for reading one
        if self.tag == "timestamp" and isinstance(error, ValueError):
            self.reason = str(error)
        elif "digits" in str(error):
            self.reason = "too many digits"
        else:
            self.reason = ""
        self.field: object = None
        self.entry: int | None = None


_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _FeedsLoader(YAML_LOADER):  # type: ignore[misc]
    """The safe loader, refusing a mapping key given twice. YAML 1.2 (§3.2.1.1) forbids
    it, yet PyYAML keeps the last silently: a second ``feeds:`` appended to the file
    dropped every feed listed above it, and ``name:`` twice in an entry dropped one.

    No field of feeds.yaml is a date, so a plain scalar that looks like one is its text,
    as YAML 1.2's core schema reads it: YAML 1.1 made ``name: 2024-01-01`` a date (an
    error for a name) and ``name: 2024-02-30`` a ValueError, a traceback. A value the
    constructor cannot build (``!!int x``) is a :class:`_BadValue`, never a traceback."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in YAML_LOADER.yaml_implicit_resolvers.items()
    }

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
            if not isinstance(node, yaml.ScalarNode):
                raise
            raise _BadValue(node, e) from e

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base`: the entry's own keys override the merged ones
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _KeyTwice(key, line, seen[key])
                seen[key] = line
            except TypeError:  # an unhashable key: the base class says so
                continue
            if isinstance(value_node, yaml.ScalarNode):
                # built here, where its key is known, for the error to name the field
                # (the base class then takes it as built)
                try:
                    self.construct_object(value_node)
                except _BadValue as e:
                    e.field = key
                    raise
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str) -> tuple[Any, list[int]]:
    """The document, and the line of each entry of its feed list (1-based; empty when
    there is no list), so that an error names the line to fix, not only "feed #7412"."""
    loader = _FeedsLoader(text)
    try:
        node = loader.get_single_node()
        listed = node
        if isinstance(listed, yaml.MappingNode):
            listed = next(
                (v for k, v in listed.value if getattr(k, "value", None) == "feeds"), None
            )
        lines = (
            [n.start_mark.line + 1 for n in listed.value]
            if isinstance(listed, yaml.SequenceNode)
            else []
        )
        try:
            data = None if node is None else loader.construct_document(node)
        except _BadValue as e:
            e.entry = bisect.bisect_right(lines, e.line) - 1 if lines else None
            raise
    finally:
        loader.dispose()
    return data, lines


def _yaml_error(origin: str, text: str, e: yaml.MarkedYAMLError) -> str:
    """PyYAML's error as one line naming the file and line (``feeds.yaml:3: …``, with
    the column): its own text named ``"<unicode string>"`` and put the context first.
    A tab where the error is gets the rule it broke."""
    mark = e.problem_mark
    if mark is None:
        return f"{origin}: not valid YAML: {e}"
    lines = text.splitlines()
    at = lines[mark.line][: mark.column + 1] if mark.line < len(lines) else ""
    tab = "; YAML indents with spaces, not tabs" if "\t" in at else ""
    # the context when it started on another line ("while parsing a block collection
    # from line 2"); on the same one it is the scanner's ("while scanning for the next
    # token") and says nothing more
    began = e.context_mark
    context = ""
    if e.context and began is not None and began.line != mark.line:
        context = f", {e.context} from line {began.line + 1}"
    return (
        f"{origin}:{mark.line + 1}: not valid YAML: {e.problem} "
        f"(column {mark.column + 1}{tab}){context}"
    )


def _bad_value(origin: str, e: _BadValue) -> str:
    """``feeds.yaml:4: feed #2: 'interval': cannot read 'x' as !!int`` and why."""
    entry = f" feed #{e.entry + 1}:" if e.entry is not None and e.entry >= 0 else ""
    field = f" {str(e.field)!r}:" if e.field is not None else ""
    value = e.value if len(e.value) <= 40 else e.value[:40] + "…"
    why = f" ({e.reason[:120]})" if e.reason else ""
    return f"{origin}:{e.line}:{entry}{field} cannot read {value!r} as !!{e.tag}{why}"


def parse_feeds_yaml(text: str, *, origin: str = "feeds.yaml") -> list[FeedSource]:
    """The feeds of a feeds.yaml (see README): a list under ``feeds:``, or a bare list.
    A URL listed twice, also as the same feed spelled differently (``feed_key``), is an
    error: which entry's settings should win is for the user to say. Errors name the
    file and line as compilers do (``feeds.yaml:12: feed #5: …``), so editors jump there."""
    try:
        data, lines = _load_yaml(text)
    except _KeyTwice as e:
        raise ConfigError(
            f"{origin}:{e.line}: {str(e.key)!r} is given twice (first on line {e.first}): "
            "only the last would count"
        ) from e
    except _BadValue as e:
        raise ConfigError(_bad_value(origin, e)) from None
    except yaml.MarkedYAMLError as e:
        raise ConfigError(_yaml_error(origin, text, e)) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{origin}: not valid YAML: {e}") from e
    if data is None:
        return []
    if isinstance(data, dict):
        # A typo here ("feed:") would otherwise read as an empty list and stop every feed.
        unknown = sorted(str(k) for k in data if k != "feeds")
        if unknown:
            raise ConfigError(
                f"{origin}: unknown top-level key(s) {', '.join(unknown)}: "
                "the feeds go in a list under 'feeds:'"
            )
        items = data.get("feeds")
    else:
        items = data
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"{origin}: expected a list under 'feeds'")
    if len(lines) != len(items):  # not the list the nodes gave (a merge key at the top)
        lines = []

    def where(i: int) -> str:
        return f"{origin}:{lines[i]}: feed #{i + 1}" if lines else f"{origin}: feed #{i + 1}"

    sources = [_source_from_mapping(item, where(i)) for i, item in enumerate(items)]
    seen: dict[str, tuple[int, str]] = {}
    for i, s in enumerate(sources):
        first = seen.setdefault(feed_key(s.url), (i, s.url))
        if first[0] != i:
            line = f" on line {lines[first[0]]}" if lines else ""
            shown = display_url(first[1])
            if first[1] == s.url:
                same = ""
            elif shown == display_url(s.url):  # they differ in what is shown as ***
                same = " (with another password)"
            else:
                same = f" (as {shown})"
            raise ConfigError(
                f"{where(i)}: {display_url(s.url)} is listed twice, "
                f"first as feed #{first[0] + 1}{line}{same}"
            )
    return sources


def unique_topics(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without blanks and without a topic named again in another spelling,
    each under its first: a topic is found however it is spelled (``normalize_category``:
    case, spaces, punctuation, "&" for "and"), so a folder "DNS" and a ``category`` of
    "/dns" on one feed were stored as two topics. A name without a letter or digit has
    no such key, and is matched exactly."""
    seen: dict[str, str] = {}
    for name in names:
        if name:
            seen.setdefault(normalize_category(name) or f"\0{name}", name)
    return tuple(seen.values())


def _category_topics(value: str | None) -> list[str]:
    """OPML 2.0 ``category``: comma-separated, slash-delimited paths (``/DNS,/Tech/IPv6``)."""
    return [part.strip() for item in (value or "").split(",") for part in item.split("/")]


def read_opml(text: str | bytes, *, origin: str = "OPML") -> FeedList:
    """Every feed outline at any depth, as Feedly, Inoreader, NewsBlur, Miniflux and
    FreshRSS write them: ``xmlUrl`` in any case (or ``url`` on a ``type="rss"`` outline),
    the name from ``title`` else ``text`` (none when it is just the URL). The folders
    around a feed (outlines without a feed URL) and its ``category`` attribute become its
    ``topics`` hint, so folders survive an export and import. A feed listed again (in a
    second folder) is merged into the first, its topics (and a name the first lacks)
    added; entries that cannot be a feed are skipped with the reason, and so are a
    ``url`` outline without a type (a page or a feed: ``feeds add`` tells which) and one
    with only an ``htmlUrl``. A feed outline's own outlines are feeds too. Our
    ``aggregator:interval``, ``aggregator:enabled`` and ``aggregator:named``
    attributes (``to_opml``) are read back, and an http(s) ``htmlUrl`` as the feed's
    ``site`` (kept until a poll stores the feed's own link, so an export right after an
    import still has it). Files as tools
    really write them are read: HTML's named entities (``&eacute;``, ``&nbsp;``) and a
    bare ``&`` where no DTD declares entities, blank lines before the XML declaration, a
    default namespace. DTD entity expansion is
    bounded by expat (a "billion laughs" file is an error, not a hang); external entities
    and DTDs are never loaded."""
    text = _utf16_as_text(_bom_over_declaration(text))
    try:
        root = _parse_xml(text)
    except ET.ParseError as e:
        raise ConfigError(f"{origin}: not valid OPML/XML: {e}") from e
    except (ValueError, LookupError):
        # expat reads UTF-8/16 and single-byte encodings; others it knows by name only
        # through Python (UTF-16BE without a BOM, Shift_JIS) fail with a bare ValueError,
        # and one Python does not know either ("ANSI") with a LookupError (a traceback):
        # _decoded_root says it cannot read that.
        root = _decoded_root(text, origin)
    if _local(root.tag).lower() != "opml":
        raise ConfigError(f"{origin}: root element is <{root.tag}>, expected <opml>")
    found: dict[str, FeedSource] = {}
    skipped: list[str] = []
    # Depth-first by hand, in document order: a file nesting outlines thousands deep must
    # not end in RecursionError.
    stack: list[tuple[Iterator[ET.Element], tuple[str, ...]]] = [(iter(root), ())]
    while stack:
        children, folders = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        if not isinstance(child.tag, str):
            continue
        if _local(child.tag).lower() != "outline":
            stack.append((iter(child), folders))
            continue
        attrs = {k.lower(): (v or "").strip() for k, v in child.attrib.items()}
        label = attrs.get("title") or attrs.get("text") or ""
        url = attrs.get("xmlurl") or ""
        kind = attrs.get("type", "").lower()
        if not url and kind in ("rss", "atom"):
            url = attrs.get("url") or ""
        if not url:
            site = attrs.get("htmlurl")
            if attrs.get("url") and not kind and not len(child):
                skipped.append(
                    f"{label or display_url(attrs['url'])}: no xmlUrl, and a url without "
                    'type="rss" may be a web page (`feeds add URL` finds its feed)'
                )
            elif site and kind != "link" and not len(child):
                # a site without its feed (xmlUrl lost or empty): no folder, and it was
                # dropped without a word
                shown = display_url(site)
                skipped.append(
                    f"{label or shown}: no xmlUrl, only the site's htmlUrl"
                    f" (`feeds add {shown}` finds its feed)"
                )
            stack.append((iter(child), (*folders, label) if label else folders))
            continue
        # The outlines a feed outline holds are feeds of their own (they were dropped).
        stack.append((iter(child), folders))
        try:
            source = _opml_source(url, label, attrs, folders)
        except ConfigError as e:
            skipped.append(f"{label or display_url(url)}: {e}")
            continue
        key = feed_key(source.url)
        if key in found:
            first = found[key]
            skipped.append(f"{display_url(source.url)}: listed twice, merged into the first")
            topics = unique_topics([*first.topics, *source.topics])
            # a name (or site) only the second entry gives was dropped with it
            found[key] = replace(
                first, name=first.name or source.name, topics=topics, site=first.site or source.site
            )
            continue
        found[key] = source
    return FeedList(tuple(found.values()), tuple(skipped), "opml")


#: The namespace of the outline attributes only we read (``to_opml``): the settings
#: OPML has no word for. Other readers ignore them (OPML 2.0 allows namespaced ones).
OPML_NS = "urn:aggregator:opml"
_INTERVAL_ATTR = f"{{{OPML_NS}}}interval"
_ENABLED_ATTR = f"{{{OPML_NS}}}enabled"
#: A JSON list of the feed's topics, written when ``category`` cannot hold them all.
_TOPICS_ATTR = f"{{{OPML_NS}}}topics"
#: ``"false"`` on a feed you never named: its ``title`` is the feed's own, not a name.
_NAMED_ATTR = f"{{{OPML_NS}}}named"


def _our_topics(value: str | None) -> list[str]:
    """``aggregator:topics`` (``to_opml``): the topics in order, or a ConfigError."""
    if value is None:
        return []
    try:
        topics = json.loads(value)
    except ValueError:
        topics = None
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise ConfigError(f"aggregator:topics is a JSON list of names, got {value[:80]!r}")
    return [t.strip() for t in topics]


def _opml_source(
    url: str, label: str, attrs: Mapping[str, str], folders: tuple[str, ...]
) -> FeedSource:
    """One feed outline (``attrs`` with lower-case names) as a FeedSource, or a
    ConfigError saying why it cannot be one."""
    given, url = url, check_feed_url(url)
    topics = [*_our_topics(attrs.get(_TOPICS_ATTR)), *folders]
    topics += _category_topics(attrs.get("category"))
    interval_raw = attrs.get(_INTERVAL_ATTR)
    enabled_raw = attrs.get(_ENABLED_ATTR, "true").lower()
    if enabled_raw not in ("true", "false"):
        raise ConfigError(f"aggregator:enabled is true or false, got {enabled_raw!r}")
    # A label that is the URL (to_opml writes it without the password) is no name, nor
    # one our export marks as the feed's own title (aggregator:named="false").
    unnamed = ("", url, without_credentials(url), given, without_credentials(given))
    if attrs.get(_NAMED_ATTR, "").lower() == "false":
        label = ""
    return FeedSource(
        url=url,
        name=None if label in unnamed else label,
        topics=unique_topics(topics),
        interval=_interval(interval_raw, "aggregator:interval") if interval_raw else None,
        enabled=enabled_raw == "true",
        site=_site_url(attrs.get("htmlurl")),
    )


def _site_url(value: str | None) -> str | None:
    """An outline's ``htmlUrl`` when it is an http(s) URL with a host (without a login,
    which no one needs to see a site's page); else None: a ``javascript:`` or relative
    one, or one that does not parse, is dropped, not the feed."""
    if not value:
        return None
    try:
        return without_credentials(check_feed_url(value))
    except ConfigError:
        return None


def _local(tag: str) -> str:
    """An element's name without its namespace: ``{http://opml.org/spec2}outline`` is an
    outline (a file declaring a default namespace was refused as "not <opml>")."""
    return tag.rpartition("}")[2]


_ENTITY_REF = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_UNDEFINED_ENTITY = expat_errors.codes[expat_errors.XML_ERROR_UNDEFINED_ENTITY]
_INVALID_TOKEN = expat_errors.codes[expat_errors.XML_ERROR_INVALID_TOKEN]
# An "&" that starts no reference (``?a=1&b=2``, ``Tom & Jerry``). In UTF-16, seen
# through latin-1, every "&" is followed by a NUL: none is taken, and expat's error stands.
_BARE_AMP = re.compile(r"&(?!\x00|#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z_:][\w.:-]*;)")


def _html_entity(match: re.Match[str]) -> str:
    name = match.group(1)
    chars = None if name in _XML_ENTITIES else html.entities.html5.get(name + ";")
    return "".join(f"&#{ord(c)};" for c in chars) if chars else match.group(0)


def _parse_xml(text: str | bytes) -> ET.Element:
    """``ET.fromstring`` as the OPML files people have need it. Blank lines before the
    XML declaration (PHP scripts print them), also after a byte-order mark, are dropped:
    expat refuses a declaration that is not first. A file expat refuses for an undefined
    entity or a bare ``&``, and that has no DTD to declare entities, is read again with
    HTML's named entities as character references and each bare ``&`` as ``&amp;``:
    hand-written and CMS-made OPML use ``&eacute;`` and ``&nbsp;``, podcast apps and
    hand-written files leave ``&`` unescaped in URLs and titles, and one refused the
    whole file. Raises ``ET.ParseError`` as ``ET.fromstring`` does."""
    # Bytes are seen through latin-1, which maps each byte to one character and back:
    # markup and entity references are ASCII in every encoding expat reads but UTF-16,
    # where they do not match and expat's error stands.
    chars = text if isinstance(text, str) else text.decode("latin-1")
    # A UTF-8 byte-order mark stays first, the blank lines after it dropped all the same:
    # a PHP file saved with one prints it before them.
    bom = "\ufeff" if isinstance(text, str) else "\xef\xbb\xbf"
    mark = bom if chars.startswith(bom) else ""
    rest = chars[len(mark) :]
    if not rest.lstrip().startswith("\x00"):  # UTF-16 without a BOM keeps its spaces
        chars = mark + rest.lstrip()
    try:
        return ET.fromstring(_as_given(chars, text))
    except ET.ParseError as e:
        bare = e.code == _INVALID_TOKEN and _BARE_AMP.search(chars) is not None
        if not (e.code == _UNDEFINED_ENTITY or bare) or "<!doctype" in chars.lower():
            raise
    repaired = _ENTITY_REF.sub(_html_entity, _BARE_AMP.sub("&amp;", chars))
    return ET.fromstring(_as_given(repaired, text))


def _as_given(chars: str, given: str | bytes) -> str | bytes:
    """``chars`` as ``_parse_xml`` was given them: back to bytes through latin-1, so
    that expat still reads the file's own declared encoding."""
    return chars if isinstance(given, str) else chars.encode("latin-1")


_DECLARED = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["'][^>]*\?>""")


def _bom_over_declaration(text: str | bytes) -> str | bytes:
    """``text`` without its XML declaration when it starts with a UTF-8 byte-order mark
    and declares another encoding: the mark says how the bytes are encoded (XML 1.0
    Appendix F; libxml2 and browsers read it so). Notepad's "UTF-8" adds one and keeps
    the ``encoding="ISO-8859-1"`` the file was first written with, which expat obeyed:
    every accented name came in garbled, without a word."""
    if not isinstance(text, bytes) or not text.startswith(b"\xef\xbb\xbf"):
        return text
    rest = text[3:].lstrip()
    declared = _DECLARED.match(rest)
    if declared is None or declared.group(1).lower().replace(b"-", b"") == b"utf8":
        return text
    return b"\xef\xbb\xbf" + rest[declared.end() :]


def _utf16_as_text(text: str | bytes) -> str | bytes:
    """UTF-16 bytes (with a byte-order mark, or markup as XML 1.0 Appendix F tells it
    without one) as text, so that ``_parse_xml`` repairs a bare ``&`` and HTML's named
    entities in them as it does in every other encoding: Windows tools save OPML as
    "Unicode", and such a file was refused whole. Bytes that do not decode stay bytes,
    for expat to say where."""
    if not isinstance(text, bytes):
        return text
    if text.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"  # the mark says which order, and is dropped
    elif text.startswith((b"\x00<", b"<\x00")):
        codec = "utf-16-be" if text.startswith(b"\x00") else "utf-16-le"
    else:
        return text
    try:
        return text.decode(codec)
    except UnicodeDecodeError:
        return text


def _decoded_root(text: str | bytes, origin: str) -> ET.Element:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if raw.startswith((b"\x00<", b"<\x00")):
        encoding = "utf-16-be" if raw.startswith(b"\x00") else "utf-16-le"
    else:
        declared = _DECLARED.match(raw.lstrip())
        encoding = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        decoded = raw.decode(encoding)
    except (LookupError, UnicodeDecodeError) as e:
        raise ConfigError(f"{origin}: cannot read it as {encoding}: {e}") from e
    try:
        return _parse_xml(re.sub(r"^\s*<\?xml[^>]*\?>", "", decoded))
    except (ET.ParseError, ValueError) as e:
        raise ConfigError(f"{origin}: not valid OPML/XML: {e}") from e


def parse_opml(text: str | bytes, *, origin: str = "OPML") -> list[FeedSource]:
    """The feeds of an OPML file (see ``read_opml``)."""
    return list(read_opml(text, origin=origin).sources)


def _first_character(raw: bytes) -> str:
    if raw.startswith((b"\x00<", b"<\x00")):  # UTF-16 without a BOM (XML 1.0 Appendix F)
        return "<"
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return raw[len(bom) : 1024].decode(encoding, "ignore").lstrip()[:1]
    return raw[:1024].decode("utf-8", "ignore").lstrip()[:1]


def load_feed_list(path: Path) -> FeedList:
    """Read feeds.yaml or an OPML file. The content decides (markup is OPML, anything
    else YAML), so a feeds.yaml saved as ``.xml`` or an OPML file named ``feeds.yaml``
    still reads; an empty ``.opml`` file is an error rather than no feeds."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise ConfigError(f"feeds file not found: {path}") from e
    except OSError as e:
        raise ConfigError(f"cannot read feeds file {path}: {e}") from e
    first = _first_character(raw)
    if first == "<":
        return read_opml(raw, origin=str(path))
    if not first and path.suffix.lower() in _OPML_SUFFIXES:
        raise ConfigError(f"{path}: the file is empty")
    encoding = next((enc for bom, enc in _BOMS[1:] if raw.startswith(bom)), "utf-8-sig")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        if encoding != "utf-8-sig":
            raise ConfigError(f"{path}: not {encoding} text: {e.reason}") from e
        # where, so that the byte can be found (a Latin-1 "é" said only "not UTF-8")
        line, start = raw.count(b"\n", 0, e.start) + 1, raw.rfind(b"\n", 0, e.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
            f"{e.start - start + 1}): save it as UTF-8"
        ) from e
    return FeedList(tuple(parse_feeds_yaml(text.removeprefix("\ufeff"), origin=str(path))))


def load_feeds(path: Path) -> list[FeedSource]:
    """Read feeds.yaml or an OPML file (see ``load_feed_list``)."""
    return list(load_feed_list(path).sources)


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("", value)


def to_opml(
    sources: Sequence[FeedSource],
    title: str = "aggregator feeds",
    *,
    sites: Mapping[str, str] | None = None,
    titles: Mapping[str, str] | None = None,
) -> str:
    """OPML 2.0 as Feedly, Inoreader, Miniflux and FreshRSS import it: each feed an
    ``<outline type="rss">`` with ``text``, ``title``, ``xmlUrl`` and, from ``sites``
    (feed URL -> web page), ``htmlUrl``; a feed with topics sits in a folder named after
    the first (readers keep one folder per feed) with all of them in ``category``, so
    ``read_opml`` gives the same topics back. A feed's own interval and ``enabled:
    false`` go in ``aggregator:`` attributes (``OPML_NS``), which other readers ignore:
    without them a move to a new machine lost every interval and turned the feeds you
    had turned off back on. Characters XML cannot carry are dropped. Credentials in a
    feed URL are kept in ``xmlUrl``: this is the user's own subscription list; ``text``,
    which other readers show as the feed's name until they fetch it, has none. A feed
    without a name is labelled with its own title from ``titles`` (feed URL -> title),
    marked ``aggregator:named="false"``: taken for a name, it pinned the old title on a
    feed moved to a new machine."""
    ET.register_namespace("aggregator", OPML_NS)
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = _xml_text(title)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for s in sources:
        parent = body
        topics = [t for t in (_xml_text(t).strip() for t in s.topics) if t]
        if topics:
            if topics[0] not in folders:
                folders[topics[0]] = ET.SubElement(
                    body, "outline", {"text": topics[0], "title": topics[0]}
                )
            parent = folders[topics[0]]
        name = _xml_text(s.name or "").strip()
        own = "" if name else _xml_text((titles or {}).get(s.url) or "").strip()
        attrs = {"type": "rss", "text": name or own or _xml_text(without_credentials(s.url))}
        if name or own:
            attrs["title"] = name or own
        attrs["xmlUrl"] = _xml_text(s.url)
        site = (sites or {}).get(s.url)
        if site and site.lower().startswith(("http://", "https://")):
            attrs["htmlUrl"] = _xml_text(site)
        # "/" and "," delimit OPML categories: a topic holding one stays in its folder only,
        # and those after the first, which no folder holds, in aggregator:topics too.
        category = ",".join("/" + t for t in topics if not set(t) & {"/", ","})
        if len(topics) > 1 and category:
            attrs["category"] = category
        if any(set(t) & {"/", ","} for t in topics[1:]):
            attrs[_TOPICS_ATTR] = json.dumps(topics, ensure_ascii=False)
        if s.interval is not None:  # minutes, as feeds.yaml reads them (never 1e+07)
            minutes = s.interval.total_seconds() / 60
            attrs[_INTERVAL_ATTR] = f"{minutes:.4f}".rstrip("0").rstrip(".")
        if not s.enabled:
            attrs[_ENABLED_ATTR] = "false"
        if own:
            attrs[_NAMED_ATTR] = "false"
        ET.SubElement(parent, "outline", attrs)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
