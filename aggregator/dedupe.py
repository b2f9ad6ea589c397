"""Story identity and canonical URLs. Pure functions: no I/O, no clock, no store.

Owns: URL canonicalisation (:func:`canonicalize_url`), the versioned identity of an entry
inside its feed (:func:`story_drafts`), the content hash that says "this story changed",
and the http<->https twin of a key or canonical URL (:func:`scheme_twin`). The
near-duplicate keys that cluster one story across feeds by its text (SimHash, title
keys) are :mod:`aggregator.neardup`'s.

Must not: fetch (so redirectors that hide their target, such as t.co or
feedproxy.google.com/~r/..., stay as they are — parse.py prefers feedburner:origLink),
import sibling modules (parse, extract, ...), or change what an existing key means:
the ``v1:`` prefix is the identity scheme's version, and a new scheme must get a new prefix
plus a migration, never a silent change (stored stories would be duplicated). A change of
the canonical form within ``v1`` comes with a store migration that brings the stored
canonical URLs and the keys made of them to it (migration 20: more tracking parameters,
IDNA 2008; migration 25: cache-busters).

Identity of an entry within one document, strongest first:

1. ``v1:guid:<guid>`` — the entry's guid/id as given;
2. ``v1:link:<canonical link>``;
3. ``v1:hash:<sha1 of title, summary and content text>``.

A source is skipped for an entry when it does not identify anything: a guid or link that
equals the feed's own URL or home page, or one shared by several entries of the same
document that may be different items (some feeds repeat one link or guid for every
item): entries whose text differs, unless they are versions of one item — the same
title, link and enclosures and the same publication date, only the text (and
``updated``) edited: a publisher listing an older and an edited copy (RFC 4287 §4.1.1:
entries with the same id are the same entry). Such entries fall through to the next
source. The check only sees one document: a feed that repeats a guid across polls but
never twice in one document is not detected here (the store tells the stored story from
the new one: ``PollWrites._reused_guids``). (Versions were refused until keys 4-7
came: a store that met them then holds each copy under its link or text and keeps those
stories, while the item goes on under its guid.)

Entries that get the same key are one item repeated and give one draft: the copy updated
last, then published last, then with the most text (:func:`_preferred`) — never by
position, so copies listed in another order on the next poll change nothing. Unless
something the key does not cover tells them apart: for a guid, another link or
enclosure; for a link, another enclosure; for a content hash (entries with neither guid
nor link: podcast episodes all titled "Weekly news roundup" with no text, notices with
one boilerplate line), another enclosure or publication date. Then each is an item of
its own. The one listed as oldest (earliest date, undated ones last) keeps the shared
key: it is the one a store polled before saw alone and holds under that key. Each other
one takes the first of these keys that no other item of the document could take:

4. ``v1:link:<canonical link>`` (for items that shared a guid);
5. ``v1:enclosure:<canonical URL of its first enclosure>`` — a podcast episode is its
   media file, which stays when the publisher edits the date;
6. ``v1:title-date:<sha1 of the title>:<publication date>`` (FeedDemon's rule for items
   without a guid; hashing title and content alone, as Miniflux does, folds such items
   into one);
7. ``v1:variant:<sha1 of the shared key and what tells the item apart>``, unique by
   construction.

Keys 4-7 came within ``v1`` because they change no key a store holds: they go only to
entries that used to fold into another entry's draft and so were never stored. Items
nothing tells apart (the same text, no enclosure, no date) stay one story: a key from
their position would change with every item published above them. Limits: an item keyed
by its text alone gets a new key when its text is edited (keying it by an enclosure
instead would change stored keys: that needs a new scheme and a migration; the store
takes a new story without a link for the one its feed no longer lists under the same
title and date with near-identical text, and moves that one's key: see
``PollWrites._unlisted_versions``); a date edit
that makes another item of a group the oldest moves the shared key to that one, and the
item that had it is stored once more under its fallback; and when the oldest item
leaves the document, the next oldest takes over the shared key, found stored unchanged
(the same text), while its own story is no longer listed for pruning.

A link refused as identity is no cross-feed key either: such a draft's ``canonical_url``
is None (its ``link`` is kept). The store clusters stories by canonical URL, so a link
every item shares (a podcast's or status page's home page, one "latest" URL) would
otherwise put all those stories into one cluster and show only the first. A link that
identifies its entry stays the key across polls and feeds: a guid that changes on every
poll while the link stays is the same story, and so is one article in two feeds.

Keys and canonical URLs keep the scheme (changing that would change every stored key).
A site moving from http:// to https:// would then make every story of its feed new; so
the store also looks up each key's and URL's :func:`scheme_twin` and takes a stored twin
for the same story (moving its key to the new form). Only that exact swap counts.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from html import unescape
from urllib.parse import parse_qsl, unquote, urlsplit

from aggregator.types import ParsedEntry, ParsedFeed, StoryDraft

__all__ = [
    "canonicalize_url",
    "content_hash",
    "listing_digest",
    "scheme_twin",
    "story_drafts",
    "title_date_key",
]

KEY_VERSION = "v1"

# --- URL canonicalisation -----------------------------------------------------------------

_DEFAULT_PORTS = {"http": "80", "https": "443"}
#: Tracking parameters dropped since store migration 20, which brings stored keys and
#: canonical URLs to the rule: AT Internet's ``xtor`` (most French news sites' RSS links),
#: Webtrends' ``WT.*``, comScore's ``ns_*``, Yahoo's consent ``guccounter`` / ``guce_*``,
#: and a few campaign ids only trackers use.
TRACKING_PARAMS_SINCE_M20 = (
    "xtor", "at_platform", "at_creation", "at_variant", "at_format", "at_send_date",
    "at_link", "at_emailtype", "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname",
    "ns_fee", "_openstat", "ocid", "icid", "sc_cid", "guccounter", "guce_referrer",
    "guce_referrer_sig", "__twitter_impression", "_branch_match_id",
)  # fmt: skip
TRACKING_PREFIXES_SINCE_M20 = ("wt.",)
#: Cache-busters dropped since store migration 25: a value that changes at every request
#: (jQuery's ``_=<milliseconds>``, a CDN's ``cachebuster=``) names no other page, and a
#: feed stamping its items' links with one gave each item a new canonical URL at every
#: poll: an item without a guid was stored again at each poll (its key is its link), and
#: one with a guid was re-written, classified again and its page fetched again.
CACHE_BUSTERS_SINCE_M25 = ("_", "cachebuster", "cache_buster", "cachebust", "nocache", "no_cache")
_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "twclid", "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_hsenc", "_hsmi",
        "__hstc", "__hssc", "__hsfp", "hsctatracking", "mkt_tok", "_ga", "_gl", "oly_anon_id",
        "oly_enc_id", "vero_id", "vero_conv", "wickedid", "rb_clickid", "s_cid", "ref_src",
        "ref_url", "at_medium", "at_campaign", "spm", "cmpid", "ncid", "sr_share",
        *TRACKING_PARAMS_SINCE_M20, *CACHE_BUSTERS_SINCE_M25,
    }
)  # fmt: skip
_TRACKING_PREFIXES = (
    "utm_", "pk_", "mtm_", "piwik_", "matomo_", "_hs", "hsa_", "ga_",
    *TRACKING_PREFIXES_SINCE_M20,
)  # fmt: skip
# Hosts whose only job is to bounce to the URL held in a query parameter:
# host -> (path of the redirect endpoint, or None for any path; parameters holding the target)
_REDIRECTORS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "news.google.com": (None, ("url",)),
    "www.google.com": ("/url", ("url", "q")),
    "google.com": ("/url", ("url", "q")),
    "l.facebook.com": ("/l.php", ("u",)),
    "lm.facebook.com": ("/l.php", ("u",)),
    "m.facebook.com": ("/l.php", ("u",)),
    "l.messenger.com": ("/l.php", ("u",)),
    "l.instagram.com": (None, ("u",)),
    "www.youtube.com": ("/redirect", ("q",)),
    "out.reddit.com": (None, ("url",)),
    "slack-redir.net": ("/link", ("url",)),
    "www.linkedin.com": ("/redir/redirect", ("url",)),
    "duckduckgo.com": ("/l/", ("uddg",)),
    "href.li": ("/", ()),  # href.li/?https://target: the whole query is the target
}
_MAX_UNWRAP = 16
_REDIRECTOR_SUFFIXES = {".safelinks.protection.outlook.com": (None, ("url",))}

_HEX = "0123456789ABCDEFabcdef"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# RFC 3986 pchar minus "%" (handled separately): what may stay literal in a path segment.
_PATH_SAFE = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_QUERY_PART_SAFE = _UNRESERVED | frozenset("!$'()*+,;:@/?")  # "&" and "=" delimit pairs
_FRAGMENT_SAFE = _PATH_SAFE | frozenset("?")


def canonicalize_url(url: str) -> str:
    """The canonical form of ``url`` for identity and cross-feed matching.

    For absolute http(s) URLs: redirector wrappers unwrapped, scheme and host lower-cased,
    IDN hosts in punycode, default port and empty query dropped, tracking parameters
    and cache-busters (``_=``) removed and the rest sorted, percent-encoding normalised
    (RFC 3986 §6.2.2), dot segments removed, fragment dropped (except ``#!`` routes,
    which name distinct pages).
    Paths are otherwise kept as they are: ``/a``, ``/a/`` and ``/a/index.html`` may be
    different pages. Anything else is returned stripped but unchanged. Never raises;
    ``canonicalize_url(canonicalize_url(u)) == canonicalize_url(u)``; whatever it changes
    comes out as an http(s) URL with a host.

    Also kept apart, as possibly different pages: ``m.`` and ``www.`` hosts, AMP paths
    and ``?amp=1`` (CMS conventions, not rules), ``ref=`` (a branch or section as often
    as a tracker), userinfo. Copies of one article under such URLs meet by SimHash. Each
    rule here is part of the stored ``v1:link:`` keys: changing one re-keys stories, so it
    comes with a store migration (``store/rekey.py``).
    """
    current = url.strip()
    for _ in range(_MAX_UNWRAP):
        canonical = _normalise(current)
        if canonical is None:
            return current
        inner = _unwrap(canonical)
        if inner is None:
            return canonical
        current = inner
    # Absurdly deep nesting: stop here (idempotence holds for anything shallower).
    return _normalise(current) or current


def _normalise(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        return None
    netloc = _netloc(scheme, parts.netloc)
    if netloc is None:
        return None
    path = _remove_dot_segments(_quote(parts.path, _PATH_SAFE)) or "/"
    query = _query(parts.query)
    fragment = _quote(parts.fragment, _FRAGMENT_SAFE) if parts.fragment.startswith("!") else ""
    return (
        f"{scheme}://{netloc}{path}"
        + (f"?{query}" if query else "")
        + (f"#{fragment}" if fragment else "")
    )


def _netloc(scheme: str, netloc: str) -> str | None:
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal
        host, bracket, port = hostport.partition("]")
        if not bracket or (port and not port.startswith(":")):
            return None
        host, port = host + "]", port[1:]
    else:
        host, _, port = hostport.partition(":")
        if ":" in port:
            return None
    canonical_host = _host(host)
    if canonical_host is None:
        return None
    if port:
        if not port.isascii() or not port.isdigit():
            return None
        port = str(int(port))
    if not port or port == _DEFAULT_PORTS[scheme]:
        port = ""
    return f"{userinfo}{at}{canonical_host}" + (f":{port}" if port else "")


def _host(host: str) -> str | None:
    host = host.rstrip(".").lower()  # "example.com." is the same host (fully qualified)
    if not host:
        return None
    if host.isascii():
        return host
    encoded = _idn_ascii(host)
    if encoded is None:  # not a valid IDN: leave the whole URL as it is
        return None
    # Both IDNAs read "\u3002", "\uff0e" and "\uff61" as dots, so one ending the host
    # comes out as the trailing "." stripped above: strip it here too, or the canonical
    # form of "example.com\u3002" would not be a fixed point.
    return encoded.rstrip(".") or None


def _idn_ascii(host: str) -> str | None:
    """A non-ASCII host name in its ASCII form, as registries and browsers read it: IDNA
    2008 with UTS #46 mapping, non-transitional (since store migration 20). So ``faß.de``
    is ``xn--fa-hia.de``, the domain DENIC registers, not ``fass.de``, another domain
    that IDNA 2003 made of it (and the same for Greek final sigma and the joiners of
    Persian and Indic names). A name IDNA 2008 refuses but IDNA 2003 took (a symbol such
    as ``☃.net``) is read as IDNA 2003 reads it, as before; None for what neither takes
    (not a host name: the URL is left as it is)."""
    import idna  # httpx's own dependency; only for the rare non-ASCII host

    try:
        return str(idna.encode(host, uts46=True, transitional=False).decode("ascii"))
    except (idna.IDNAError, UnicodeError):
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _quote(text: str, safe: frozenset[str]) -> str:
    """Percent-encoding normalised: unreserved characters decoded, hex upper-cased, other
    unsafe characters (and a "%" that starts no escape) encoded as UTF-8."""
    if text.isascii() and all(c in safe for c in text):
        return text  # the common case; "%" is never in ``safe``
    out: list[str] = []
    i = 0
    while i < len(text):
        char, escaped = text[i], text[i + 1 : i + 3]
        if char == "%" and len(escaped) == 2 and all(c in _HEX for c in escaped):
            decoded = chr(int(escaped, 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + escaped.upper())
            i += 3
            continue
        if char in safe:
            out.append(char)
        else:
            out.extend(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path."""
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments[1:], start=1):
        last = i == len(segments) - 1
        if segment == "..":
            if len(output) > 0:
                output.pop()
            if last:
                output.append("")
        elif segment == ".":
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def _query(query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for pair in query.split("&"):
        if not pair:
            continue
        key, eq, value = pair.partition("=")
        key = _quote(key, _QUERY_PART_SAFE)
        if _is_tracking(key):
            continue
        pairs.append((key, eq + _quote(value, _QUERY_PART_SAFE | frozenset("="))))
    pairs.sort()
    return "&".join(key + value for key, value in pairs)


def _is_tracking(key: str) -> bool:
    # ``key`` is normalised, so "%75tm_source" already reads "utm_source".
    name = key.lower()
    return name in _TRACKING_PARAMS or name.startswith(_TRACKING_PREFIXES)


def _unwrap(canonical: str) -> str | None:
    """The target URL when ``canonical`` is a known redirector wrapping one, else None."""
    parts = urlsplit(canonical)
    host = parts.hostname or ""
    rule = _REDIRECTORS.get(host) or next(
        (rule for suffix, rule in _REDIRECTOR_SUFFIXES.items() if host.endswith(suffix)), None
    )
    if rule is None or (rule[0] is not None and parts.path != rule[0]):
        return None
    if rule[1]:
        values = dict(parse_qsl(parts.query))
        candidates = [values[name] for name in rule[1] if name in values]
    else:
        candidates = [unquote(parts.query)]
    for candidate in candidates:
        target = candidate.strip()
        if (
            target.lower().startswith(("http://", "https://"))
            and len(target) < len(canonical)
            # a target with no host ("https:///x") is no URL: the wrapper stays the link
            and _normalise(target) is not None
        ):
            return target
    return None


# --- identity -----------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]*>")
_NEVER = datetime.min.replace(tzinfo=UTC)  # sorts before every date


def story_drafts(parsed: ParsedFeed) -> list[StoryDraft]:
    """One draft per distinct item of ``parsed``, keyed as the module docstring says.

    Each entry first gets its key from sources 1-3; the entries that share a key are
    then told apart into items (:func:`_items`), and each item but the oldest takes a
    fallback key (:func:`_fallbacks`). Nothing here depends on the order of the entries:
    a document listing the same entries in another order gives the same drafts."""
    entries = parsed.entries
    hashes = [content_hash(e.title, e.summary, e.content) for e in entries]
    links = [canonicalize_url(e.link) if e.link else None for e in entries]
    own = {canonicalize_url(url) for url in (parsed.url, parsed.link) if url}
    guid_ok = _identifying([e.guid for e in entries], entries, hashes, links, own)
    link_ok = _identifying(links, entries, hashes, links, own)

    shared: dict[str, list[int]] = {}  # key -> the entries it is the key of, in order
    for i in range(len(entries)):
        if guid_ok[i]:
            key = f"{KEY_VERSION}:guid:{entries[i].guid}"
        elif link_ok[i]:
            key = f"{KEY_VERSION}:link:{links[i]}"
        else:
            key = f"{KEY_VERSION}:hash:{hashes[i]}"
        shared.setdefault(key, []).append(i)

    chosen: list[tuple[int, str, int]] = []  # (first position, key, the copy drafted)
    # the items that take a fallback key: (first position, shared key, what tells the
    # item apart, the copy drafted, its fallback keys)
    split: list[tuple[int, str, tuple[str, ...], int, list[str]]] = []
    proposed: Counter[str] = Counter()  # how many items could take each fallback key
    for key, indices in shared.items():
        if len(indices) == 1:
            chosen.append((indices[0], key, indices[0]))
            continue
        items = _items(key, indices, entries, links)
        oldest = _oldest(items, entries)
        for sig, copies in items.items():
            best = _preferred(copies, entries, hashes)
            fallbacks = (
                _fallbacks(key, entries[best], links[best], link_ok[best]) if len(items) > 1 else []
            )
            proposed.update(fallbacks)
            if sig == oldest:
                chosen.append((copies[0], key, best))
            else:
                split.append((copies[0], key, sig, best, fallbacks))
    for position, key, sig, best, fallbacks in split:
        # A fallback another item could also take would tell neither apart.
        unique = (k for k in fallbacks if proposed[k] == 1 and k not in shared)
        variant = f"{KEY_VERSION}:variant:{_sha1(chr(0x1F).join((key, *sig)))}"
        chosen.append((position, next(unique, variant), best))

    chosen.sort()
    return [
        _draft(key, entries[i], links[i] if link_ok[i] else None, hashes[i])  # see docstring
        for _, key, i in chosen
    ]


def _identifying(
    values: list[str | None],
    entries: tuple[ParsedEntry, ...],
    hashes: list[str],
    links: list[str | None],
    own: set[str],
) -> list[bool]:
    """Whether each value identifies its entry: present, not the feed's own URL or home
    page, and carried only by copies or versions of one item (:func:`_one_item`)."""
    carriers: defaultdict[str, list[int]] = defaultdict(list)
    for i, value in enumerate(values):
        if value is not None:
            carriers[value].append(i)
    one_item = {
        value: _one_item(indices, entries, hashes, links) for value, indices in carriers.items()
    }
    return [value is not None and one_item[value] and _as_url(value) not in own for value in values]


def _one_item(
    indices: list[int],
    entries: tuple[ParsedEntry, ...],
    hashes: list[str],
    links: list[str | None],
) -> bool:
    """Whether the entries at ``indices`` (carrying one guid or link) may all be one item:
    the same text, or versions of one item — the same title, link, enclosures and
    publication date, only the text (and ``updated``) edited. Different texts with no
    date to agree on may as well be different items under a reused guid: they are not."""
    if len({hashes[i] for i in indices}) == 1:
        return True
    if any(entries[i].published is None for i in indices):
        return False
    versions = {
        (entries[i].title, links[i], _enclosures(entries[i]), entries[i].published) for i in indices
    }
    return len(versions) == 1


def _items(
    key: str, indices: list[int], entries: tuple[ParsedEntry, ...], links: list[str | None]
) -> dict[tuple[str, ...], list[int]]:
    """The entries at ``indices``, which share ``key``, grouped into items by what tells
    items apart that ``key`` does not already cover: for a guid, the link and the
    enclosures; for a link, the enclosures; for a content hash, the enclosures and the
    publication date. (Under one guid or link, another date is the same item re-dated.)"""
    kind = key.split(":", 2)[1]
    items: dict[tuple[str, ...], list[int]] = {}
    for i in indices:
        entry = entries[i]
        enclosures = " ".join(_enclosures(entry))
        sig: tuple[str, ...]
        if kind == "guid":
            sig = (links[i] or "", enclosures)
        elif kind == "link":
            sig = (enclosures,)
        else:
            sig = (enclosures, entry.published.isoformat() if entry.published else "")
        items.setdefault(sig, []).append(i)
    return items


def _oldest(
    items: dict[tuple[str, ...], list[int]], entries: tuple[ParsedEntry, ...]
) -> tuple[str, ...]:
    """The item listed as oldest, which keeps the key its entries share: the earliest
    publication date, undated items last (a date too far ahead is dropped by the parser,
    so "no date" is as likely new as old), then by what tells them apart. Not the
    position: the order of a document is no evidence of age (Atom defines none)."""

    def age(sig: tuple[str, ...]) -> tuple[bool, datetime, tuple[str, ...]]:
        dates = [d for i in items[sig] if (d := entries[i].published) is not None]
        return (not dates, min(dates, default=_NEVER), sig)

    return min(items, key=age)


def _preferred(indices: list[int], entries: tuple[ParsedEntry, ...], hashes: list[str]) -> int:
    """The copy to draft among copies or versions of one item: updated last, then
    published last (RFC 4287 §4.1.1: entries with one id are one entry, and a reader may
    show only the one updated last), then the one with more text (an edit usually adds;
    parse.py keeps the longest content for the same reason), then any other difference.
    Never the position: copies listed in another order on the next poll must not make
    an "update" each time."""

    def preference(i: int) -> tuple[object, ...]:
        e = entries[i]
        text = sum(len(_plain_text(part)) for part in (e.summary, e.content) if part)
        fields = (e.link, e.guid, e.author, e.summary, e.content)
        updated, published = e.updated or _NEVER, e.published or _NEVER
        return (updated, published, text, hashes[i], *(f or "" for f in fields), e.categories)

    return max(indices, key=preference) if len(indices) > 1 else indices[0]


def _fallbacks(key: str, entry: ParsedEntry, link: str | None, link_ok: bool) -> list[str]:
    """The keys, strongest first, that an item which shared ``key`` with others may take
    (sources 4-6 of the module docstring)."""
    keys = []
    if link_ok and key.startswith(f"{KEY_VERSION}:guid:"):
        keys.append(f"{KEY_VERSION}:link:{link}")
    if entry.enclosures:
        keys.append(f"{KEY_VERSION}:enclosure:{_enclosures(entry)[0]}")
    if entry.published is not None:
        keys.append(title_date_key(entry.title, entry.published))
    return keys


def title_date_key(title: str, published: datetime) -> str:
    """The ``v1:title-date:`` key of an item (source 6 of the module docstring)."""
    return f"{KEY_VERSION}:title-date:{_sha1(title)}:{published.isoformat()}"


def _enclosures(entry: ParsedEntry) -> tuple[str, ...]:
    return tuple(canonicalize_url(url) for url in entry.enclosures)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def content_hash(title: str, summary: str | None, content: str | None) -> str:
    """SHA-1 over the *text* of title, summary and content: markup-only changes (or a new
    sanitiser version re-serialising the same HTML) do not count as an edit."""
    material = "\x1f".join(_plain_text(part) for part in (title, summary or "", content or ""))
    return hashlib.sha1(material.encode("utf-8", "surrogatepass")).hexdigest()


def listing_digest(key: str) -> str:
    """A short, stable stand-in for a story key (16 hex digits of BLAKE2b): the store
    remembers which keys a feed's latest document lists by these, so that pruning spares
    the stories the document would otherwise bring back as new (a few hundred bytes per
    feed instead of its full keys)."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _draft(key: str, entry: ParsedEntry, canonical_url: str | None, digest: str) -> StoryDraft:
    return StoryDraft(
        key=key,
        guid=entry.guid,
        link=entry.link,
        canonical_url=canonical_url,
        title=entry.title,
        author=entry.author,
        published=entry.published,
        updated=entry.updated,
        summary=entry.summary,
        content=entry.content,
        categories=entry.categories,
        content_hash=digest,
    )


def _plain_text(html: str) -> str:
    # Deliberately tiny and dependency-free: it must give the same answer for years.
    return " ".join(unescape(_TAG.sub(" ", html)).split())


def _as_url(value: str) -> str:
    return (
        canonicalize_url(value) if value[:8].lower().startswith(("http://", "https://")) else value
    )


_TWIN_PREFIXES = (*(f"{KEY_VERSION}:{kind}:" for kind in ("guid", "link", "enclosure")), "")
_SCHEMES = {"http://": "https://", "https://": "http://"}


def scheme_twin(value: str) -> str | None:
    """``value`` with ``http://`` and ``https://`` swapped, for a story key of the form
    ``v1:guid:http…`` / ``v1:link:http…`` / ``v1:enclosure:http…`` or a URL starting with
    the (lower-case) scheme; None for anything else (hash keys, non-URL guids). Nothing
    else is changed: the twin of ``http://x:443/a`` keeps its port, and ``HTTP://x`` has
    no twin."""
    for prefix in _TWIN_PREFIXES:
        if value.startswith(prefix):
            rest = value[len(prefix) :]
            for scheme, other in _SCHEMES.items():
                if rest.startswith(scheme) and len(rest) > len(scheme):
                    return prefix + other + rest[len(scheme) :]
    return None
