"""Feed discovery: the feeds an HTML page announces with <link rel="alternate">, whether a
fetched body is an HTML page rather than a feed, and ``find_feed``: what ``feeds add``
subscribes to for a URL the user gave (the page's feed, else a few usual feed paths).

Fetches only through the function it is handed (no HTTP client of its own) and never
touches the store: ``known_feed`` is given the feeds to look through.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

from .charsets import UTF16_MARKUP, utf16_codec
from .credentials import display_url, without_credentials
from .errors import ConfigError, FetchError
from .feedlist import check_feed_url, feed_key
from .types import Feed, FetchResult

__all__ = ["Discovery", "discover_feeds", "find_feed", "known_feed", "looks_like_html"]

_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
_GENERIC_JSON = "application/json"
# RSS 1.0 is RDF, and sites announce it as such; but the type also names other RDF
# (FOAF, DOAP): such a link is taken only once its document proves to be RSS 1.0.
_RDF = "application/rdf+xml"
_RSS1_NS = b"purl.org/rss/1.0/"
# Older sites announce RSS as plain XML (a CGI or PHP path no probe guesses); the types
# are every other XML document's too: such a link is taken once its document is a feed.
_XML = ("text/xml", "application/xml")
_CHECKED = (_RDF, *_XML)


class _Done(Exception):
    pass


class _LinkFinder(HTMLParser):
    """Collects <html lang>, <base href> and <link rel=alternate type=feed-type> (type,
    href, title, hreflang) until the head ends (rel=alternate is not allowed in the
    body, and the body is most of the bytes; its links are looked for only when the head
    has none, see ``_alternates``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.lang = ""
        self.links: list[tuple[str, str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            raise _Done
        values = {k: (v or "").strip() for k, v in attrs}
        if tag == "html":
            self.lang = values.get("lang") or values.get("xml:lang") or ""
        elif tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        elif tag == "link" and "alternate" in values.get("rel", "").lower().split():
            kind = values.get("type", "").split(";")[0].strip().lower()
            if values.get("href") and (kind in _FEED_TYPES or kind in (_GENERIC_JSON, *_CHECKED)):
                link = (kind, values["href"], values.get("title", ""), values.get("hreflang", ""))
                self.links.append(link)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            raise _Done


# WordPress announces "Site » Comments Feed" beside the main feed, and on a post or
# category page "Post » Comments Feed" too (…/comments/feed/, …/post/feed/?withcomments):
# a subscriber to the site wants its posts, not its comments.
_COMMENTS_TITLE = re.compile(r"\bcomments?\b|\bkommentare\b|\bcommentaires\b", re.I)
_COMMENTS_PATH = re.compile(r"/comments/(?:feed|rss|atom)|[?&]withcomments=", re.I)


def _is_comments_feed(url: str, title: str) -> bool:
    return bool(_COMMENTS_TITLE.search(title) or _COMMENTS_PATH.search(url))


def _translation(hreflang: str, lang: str) -> bool:
    """Whether a link's ``hreflang`` names another language than the page's ``lang``
    (by primary subtag: ``en-GB`` is ``en``); one without hreflang, or ``x-default``
    (the one for every language), is the page's own. Sites announce their translations'
    feeds beside their own (hreflang="de"), often first."""
    primary = hreflang.split("-")[0].strip().lower()
    if not primary or primary == "x":  # x-default
        return False
    return primary != lang.split("-")[0].strip().lower()


_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)


def _alternates(
    html: bytes, base_url: str, content_type: str | None = None
) -> list[tuple[str, bool, str | None]]:
    """(absolute URL, is a comments feed, the type to check its document against (RDF,
    plain XML) or None) for each feed link, unique, best first: the main feeds before
    the comment feeds, each in the page's language (or without ``hreflang``) before
    translations, each feed type before a type that needs checking, then in document
    order."""
    text = _page_text(html, content_type)
    finder = _LinkFinder()
    with contextlib.suppress(_Done):
        finder.feed(text)
        finder.close()
    if not finder.links:
        # None in the head: CMS plugins and themes write them into the body too, where
        # Miniflux and feedparser-based readers find them (the page "linked to no
        # feed"). Only the body's <link> tags are parsed: HTMLParser takes ~1 s a MB.
        in_body = _LinkFinder()
        with contextlib.suppress(_Done):
            in_body.feed("".join(_LINK_TAG.findall(text)))
            in_body.close()
        finder.links = in_body.links
    # A <base href> that is no URL is ignored, as browsers ignore it (HTML: the page's
    # own URL stays the base).
    base = (_joined(base_url, finder.base) if finder.base else None) or base_url
    ranked: list[tuple[tuple[bool, bool, bool], tuple[str, bool, str | None]]] = []
    for kind, href, title, hreflang in finder.links:
        absolute = _joined(base, href)
        if absolute is None:
            continue
        # A space as browsers request it (the WHATWG URL parser writes it as %20): kept,
        # it made a subscription under a URL that `feeds add` and `feeds import` refuse.
        absolute = absolute.replace(" ", "%20")
        try:
            # http(s), a host, a port in range, not too long; a feed: link as the
            # http(s) URL it stands for
            absolute = check_feed_url(absolute)
        except ConfigError:
            continue
        parts = urlsplit(absolute)
        if kind == _GENERIC_JSON and "/wp-json/" in parts.path:
            continue
        comments = _is_comments_feed(absolute, title)
        link = (absolute, comments, kind if kind in _CHECKED else None)
        generic = kind in _CHECKED or kind == _GENERIC_JSON
        ranked.append(((comments, _translation(hreflang, finder.lang), generic), link))
    ranked.sort(key=lambda x: x[0])  # stable: document order within a rank
    return list(dict.fromkeys(link for _, link in ranked))


def _page_text(html: bytes, content_type: str | None) -> str:
    """A page's text for its links: UTF-16 when its byte-order mark says so (whatever
    the Content-Type says, as browsers read it), or without one as
    :func:`~aggregator.charsets.utf16_codec` tells it (markup in UTF-16, or a UTF-16
    charset in the Content-Type and NULs in the bytes); UTF-8 otherwise (every feed link
    an ASCII-compatible page has reads so). A UTF-16 page read as UTF-8 had a NUL between
    every two characters, and "linked to no feed"."""
    if html.startswith(b"\xef\xbb\xbf"):
        return html[3:].decode("utf-8", "replace")
    if html.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16-le" if html.startswith(b"\xff\xfe") else "utf-16-be"
        return html[2:].decode(codec, "replace")
    return html.decode(utf16_codec(html, content_type) or "utf-8", "replace")


def _joined(base: str, href: str) -> str | None:
    """``href`` resolved against ``base``; None when either does not parse: an
    unrendered template (``https://[[site_url]]/feed``) or a stray ``[`` made urljoin
    raise ValueError, and `feeds add` ended in a traceback rather than taking the page's
    next link."""
    try:
        absolute = urljoin(base, href)
        urlsplit(absolute)
    except ValueError:
        return None
    return absolute


def discover_feeds(html: bytes, base_url: str, content_type: str | None = None) -> list[str]:
    """Feed URLs a page advertises with <link rel="alternate">, absolute and unique, each
    one ``check_feed_url`` takes (spaces written %20, as browsers request them).

    RSS, Atom and JSON Feed links come in document order, then plain
    ``application/json`` ones (older JSON Feeds), ``application/rdf+xml`` ones (RSS
    1.0, or other RDF: ``find_feed`` checks) and plain XML ones (``text/xml``,
    ``application/xml``: older sites' RSS, or a sitemap: checked too), minus WordPress
    REST API links (``/wp-json/``), which use the JSON type on nearly every WordPress
    page; links to a translation's feed (an ``hreflang`` other than the page's ``<html
    lang>``) after those to the page's own language's (or without one), and comment feeds
    (by title or ``/comments/feed``) last, whatever their place in the page.
    ``content_type`` (the HTTP header), when given, may name the page's charset (UTF-16).
    """
    return list(dict.fromkeys(url for url, _, _ in _alternates(html, base_url, content_type)))


# Where sites without a <link rel="alternate"> usually keep their feed: WordPress /feed,
# Ghost and many others /rss, Jekyll /feed.xml, Hugo /index.xml, /atom.xml and /rss.xml
# (Drupal, static generators). Tried in order, next to the page and at the site's root,
# one request at a time, at most _MAX_PROBES, stopping at the first feed. The page's RDF
# and plain XML links, fetched to see whether they are feeds, are as many at most.
_PROBE_PATHS = ("feed", "rss", "feed.xml", "atom.xml", "index.xml", "rss.xml")
_MAX_PROBES = 8
_NOT_THERE = frozenset({400, 401, 403, 404, 405, 406, 410})


def _probe_urls(page_url: str) -> list[str]:
    here = urljoin(page_url, ".")
    root = urljoin(page_url, "/")
    candidates = [urljoin(here, p) for p in _PROBE_PATHS]
    if here != root:
        candidates += [urljoin(root, p) for p in _PROBE_PATHS]
    return list(dict.fromkeys(candidates))[:_MAX_PROBES]


@dataclass(frozen=True, slots=True, kw_only=True)
class Discovery:
    """What ``feeds add URL`` subscribes to: ``url``, found on the page ``found_from``
    (None when the URL given is the feed), and every URL the feed was seen under (the
    one given, the end of its redirects), to look for among the feeds already there."""

    url: str
    found_from: str | None = None
    seen_as: tuple[str, ...] = ()


def find_feed(url: str, fetch_page: Callable[[str], FetchResult]) -> Discovery:
    """The feed behind ``url``: ``url`` itself when it answers with a feed (also one
    mislabelled text/html); else the best feed its HTML page links to (the site's main
    feed before its comment feeds, the page's language's before a translation's); else
    the first of a few usual feed paths (``/feed``, ``/rss``, ``/index.xml``…) that
    answers with a feed, stopping early when the site answers with anything but a
    404-like status (5xx, 429, a timeout: it is not asked again for a guess); else a
    comment feed, the page's only offer. Failures are ConfigErrors saying what was
    tried."""
    url = check_feed_url(url)
    try:
        page = fetch_page(url)
    except FetchError as e:
        raise ConfigError(f"cannot add {display_url(url)}: {e.message}") from e
    if not looks_like_html(page.body, page.content_type):
        if not _looks_like_feed(page.body, page.content_type, whole=True):
            # A JSON API, a PDF, an image: subscribed, it would fail at every poll.
            kind = (page.content_type or "no content type").split(";")[0].strip()
            raise ConfigError(
                f"{display_url(url)} answers with neither a feed nor a web page ({kind})"
            )
        return Discovery(url=url, seen_as=_seen(url, page))
    # A link to the page itself (a theme's placeholder ``href="#"``) is no feed: this
    # page is HTML, and subscribed to, it failed at every poll.
    here = {feed_key(without_credentials(u)) for u in (url, page.final_url)}
    links = [
        x
        for x in _alternates(page.body, page.final_url, page.content_type)
        if feed_key(x[0]) not in here
    ]
    checked = 0  # RDF / plain XML documents fetched: a request (up to a timeout) each
    for link, _, check in [x for x in links if not x[1]]:
        found = _logged_in(link, url)
        if check is None:
            return Discovery(url=found, found_from=url, seen_as=(found,))
        if checked == _MAX_PROBES:
            continue
        checked += 1
        try:
            result = fetch_page(found)
        except FetchError:
            continue
        rss1 = check != _RDF or _RSS1_NS in result.body[:4096]
        if rss1 and _looks_like_feed(result.body, None):
            return Discovery(url=found, found_from=url, seen_as=_seen(found, result))
    tried: list[str] = []
    for candidate in (_logged_in(u, url) for u in _probe_urls(page.final_url)):
        tried.append(urlsplit(candidate).path)
        try:
            result = fetch_page(candidate)
        except FetchError as e:
            if e.http_status in _NOT_THERE:
                continue
            break  # 5xx, 429, a timeout: the site is not asked again for a guess
        if _looks_like_feed(result.body, result.content_type):
            return Discovery(url=candidate, found_from=url, seen_as=_seen(candidate, result))
    if comments := [u for u, _, check in links if check is None]:
        found = _logged_in(comments[0], url)
        return Discovery(url=found, found_from=url, seen_as=(found,))
    raise ConfigError(
        f"{display_url(url)} is an HTML page that links to no feed "
        f"(and none of {', '.join(tried)} answered with one)"
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _logged_in(candidate: str, given: str) -> str:
    """``candidate`` (a URL found from the page ``given``, which the fetcher reports
    without credentials) with the credentials ``given`` carries, when it is where the
    fetcher sends them: the same origin, or its upgrade from http to https. A private
    site's feed needs the site's login; another host never gets it."""
    g, c = urlsplit(given), urlsplit(candidate)
    if "@" not in g.netloc or "@" in c.netloc:
        return candidate
    try:
        g_port = g.port or _DEFAULT_PORTS.get(g.scheme.lower())
        c_port = c.port or _DEFAULT_PORTS.get(c.scheme.lower())
    except ValueError:
        return candidate
    scheme = (g.scheme.lower(), c.scheme.lower())
    same = scheme[0] == scheme[1] and g_port == c_port
    upgrade = scheme == ("http", "https") and (g_port, c_port) == (80, 443)
    if c.hostname != g.hostname or not (same or upgrade):
        return candidate
    userinfo = g.netloc.rpartition("@")[0]
    return urlunsplit(c._replace(netloc=f"{userinfo}@{c.netloc}"))


def _seen(url: str, result: FetchResult) -> tuple[str, ...]:
    final = _logged_in(result.final_url, url)  # credentials make it another feed (feed_key)
    return tuple(dict.fromkeys(u for u in (url, result.permanent_redirect, final) if u))


def known_feed(urls: Iterable[str], feeds: Sequence[Feed]) -> Feed | None:
    """The feed among ``feeds`` that any of ``urls`` names, spelled as it may be
    (``feed_key``: http or https, host case, a trailing slash), by its URL, the
    permanent redirect it is about to adopt or the URL it was subscribed under before
    one moved it (as the feeds file's sync and `feeds import` find it: `feeds add
    --no-discover` of that URL added the feed a second time); None when it is new."""
    keys = {feed_key(u) for u in urls}
    for feed in feeds:
        spellings = (feed.url, feed.redirect_url, feed.source_url)
        if any(u and feed_key(u) in keys for u in spellings):
            return feed
    return None


_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
# A DOCTYPE declaration with its internal subset, if any: PHP feed generators declare
# HTML's entities there (<!DOCTYPE rss [<!ENTITY % HTMLlat1 PUBLIC ...> %HTMLlat1;]>).
_DOCTYPE = re.compile(rb"<!doctype(?:[^\[>]*\[.*?\])?[^>]*>", re.DOTALL)
# A JSON Feed's version URL, also as PHP's json_encode writes it by default
# ("https:\/\/jsonfeed.org\/version\/1": Bandcamp's feeds), which was refused as no feed.
_JSON_FEED_VERSION = re.compile(rb"jsonfeed\.org\\?/version")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
_FEED_STARTS = (b"<rss", b"<feed", b"<rdf:rdf", b"<rdf", b"{", b"[")
# A feed's root element with a namespace prefix: Atom as XSLT and some Java generators
# write it (<atom:feed xmlns:atom=…>), refused as "neither a feed nor a web page".
_PREFIXED_ROOT = re.compile(rb"<[a-z_][\w.-]*:(?:feed|rss)[\s/>]")


def _head(body: bytes) -> bytes:
    """The first 4 KiB of ``body`` without a UTF-8 byte-order mark, and UTF-16 (with a
    byte-order mark or without: XML 1.0 Appendix F, also after whitespace) as UTF-8, so
    that its markup is seen: a UTF-16 feed served as text/html was taken for a page."""
    head = body[:4096].removeprefix(b"\xef\xbb\xbf")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or UTF16_MARKUP.match(head):
        big = head.startswith(b"\xfe\xff") or (not head.startswith(b"\xff\xfe") and head[0] == 0)
        text = head.decode("utf-16-be" if big else "utf-16-le", "ignore").lstrip("\ufeff")
        head = text.encode("utf-8")
    return head


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    """True when a response is an HTML page rather than a feed: judged by the first
    markup after any BOM, XML declaration and comments (and a feed's DOCTYPE), and only
    when that is inconclusive by the media type (feeds are often mislabelled text/html)."""
    head = _head(body)
    match = _PROLOG.match(head)
    start = head[match.end() if match else 0 :].lower()
    if start.startswith(_HTML_STARTS):
        return True
    after = _after_doctype(start)
    if after.startswith(_FEED_STARTS) or _PREFIXED_ROOT.match(after):
        return False
    mime = (content_type or "").split(";")[0].strip().lower()
    return mime in ("text/html", "application/xhtml+xml")


def _after_doctype(start: bytes) -> bytes:
    """``start`` (lower-cased, the prolog skipped) past a feed's DOCTYPE and what follows
    it up to the root element. Its first ">" was taken for the DOCTYPE's end, which in an
    internal subset it is not: such a feed was refused as neither a feed nor a page, and
    one labelled text/html (RSS 0.91's DTD too) was taken for a page."""
    doctype = _DOCTYPE.match(start)
    if doctype is None:
        return start
    after = _PROLOG.match(start, doctype.end())
    return start[after.end() if after else doctype.end() :]


def _looks_like_feed(body: bytes, content_type: str | None, *, whole: bool = False) -> bool:
    """True for an RSS, Atom, RDF or JSON Feed document (a probe's answer is only taken
    when it is one: many sites answer /feed with their home page or a soft 404). A JSON
    Feed names its version in its first 4 KiB as publishers write it, or is served as
    ``application/feed+json``; ``whole`` looks through the whole body (the URL the user
    gave, not a guess)."""
    head = _head(body)
    match = _PROLOG.match(head)
    start = _after_doctype(head[match.end() if match else 0 :].lower())  # RSS 0.91's DTD
    if start.startswith((b"<rss", b"<feed", b"<rdf")) or _PREFIXED_ROOT.match(start):
        return True
    if not start.startswith(b"{"):
        return False
    # Labelled a JSON Feed, it is one even without the version it should name (the
    # parser reads it, with a warning); a plain JSON object is one only by its version.
    labelled = (content_type or "").partition(";")[0].strip().lower() == "application/feed+json"
    return labelled or _JSON_FEED_VERSION.search(body if whole else start) is not None
