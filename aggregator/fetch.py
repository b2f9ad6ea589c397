"""The HTTP layer: turns a URL into a :class:`~aggregator.types.FetchResult` or a
:class:`~aggregator.errors.FetchError`, and nothing else.

It owns conditional GET, the wall-clock deadline, the body cap (on the raw body and on
what every decoding step produces), manual redirects, Retry-After, caching hints, the
global and per-host concurrency limits, and the refusal of non-public addresses. It does
not parse feeds, touch the store or retry: a failure is one ``FetchError`` the caller
records.

Address safety: every hop's host is resolved once and vetted before connecting
(:mod:`aggregator.connect`). The concurrency slots are :mod:`aggregator.hostslots`', the
words a failure is told in :mod:`aggregator.fetchfailures`', and the cookie-less client and
the draining of unneeded bodies :mod:`aggregator.fetchclient`'s; none of them imports this
module.

Credentials. A feed URL may carry HTTP Basic credentials (``https://user:pass@host/feed``,
as private feeds are often given). They are sent as an ``Authorization`` header, never in
the URL on the wire, and follow redirects only within the same origin (or its upgrade
from http to https, the rule browsers and httpx apply): another host never sees them.
The URL handed on for parsing (``final_url``, the base relative links resolve against)
has no credentials, so they cannot end up in story links; an adopted permanent redirect
within the origin keeps them, or the feed would lose its access when it moves.

asyncio only.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import hashlib
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import httpx

from aggregator import __version__
from aggregator.addresses import IPAddress, IPNetwork, address_refusal, parse_ip_host
from aggregator.codings import ACCEPT_ENCODING, decoder_for
from aggregator.connect import CheckingBackend, Refused, Resolver, check_all, proxy_mounts
from aggregator.credentials import display_url
from aggregator.errors import ConfigError, FetchError
from aggregator.fetchclient import _Client, _drain
from aggregator.fetchfailures import _NETWORK_ERRORS, _describe, _one_line, _unanswered, _wait
from aggregator.freshness import cache_lifetime, parse_retry_after
from aggregator.hostslots import _Slots
from aggregator.http11 import Http11Transport
from aggregator.textutil import PLAIN_TEXT, meta_refresh, page_media_type
from aggregator.types import CacheState, FetchResult, utc_now

__all__ = [
    "DEFAULT_USER_AGENT",
    "FetchOptions",
    "FetchStats",
    "Fetcher",
]

log = logging.getLogger(__name__)

# No contact URL: the project has no public home a site's operator could visit; an
# install that wants to be reachable sets AGGREGATOR_USER_AGENT (README).
DEFAULT_USER_AGENT = f"aggregator/{__version__} (feed fetcher)"
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
    "application/json;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
#: An article page's ``<meta http-equiv="refresh">`` within this many seconds is a
#: redirect (``Fetcher.fetch_article``); news sites reload their pages after minutes.
REFRESH_FOLLOWED_S = 10
#: How many such refreshes in a row an article fetch follows.
MAX_REFRESHES = 2


_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_PERMANENT_STATUSES = frozenset({301, 308})
#: Success answers that carry a part (206, to a Range) or a delta (226, to A-IM) of the
#: representation, never asked for here.
_PARTIAL_STATUSES = frozenset({206, 226})
#: Most content codings a response may stack, as in curl (CVE-2022-32206) and urllib3
#: (CVE-2025-66418): servers apply one, rarely two, and each is a decoding step per read.
_MAX_CODINGS = 5


# --------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchOptions:
    """Limits and policy for one :class:`Fetcher`; defaults are the documented ones.

    ``timeout`` is a wall-clock deadline for the whole exchange (connect, every
    redirect hop and the body) because httpx timeouts apply per read, so a server
    dribbling one byte a second never trips them (encode/httpx#1450). Time spent
    queued for a concurrency slot does not count. ``connect_timeout`` and
    ``read_timeout`` (gap between reads) give earlier, clearer errors inside it.

    Non-public addresses are refused unless ``allow_private``; ``allowed_networks``
    (CIDR strings) lets specific ones through, e.g. ``("127.0.0.1/32",)`` for tests.
    """

    timeout: float = 20.0
    connect_timeout: float = 10.0
    read_timeout: float = 10.0
    max_body: int = 10 * 1024 * 1024
    max_redirects: int = 5
    per_host: int = 2
    max_connections: int = 64
    user_agent: str = DEFAULT_USER_AGENT
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()
    trust_env: bool = True
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("timeout", "connect_timeout", "read_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"fetch option {name} must be positive")
        for name in ("max_body", "per_host", "max_connections"):
            if getattr(self, name) < 1:
                raise ConfigError(f"fetch option {name} must be at least 1")
        if self.max_redirects < 0:
            raise ConfigError("fetch option max_redirects must not be negative")
        try:
            networks = tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)
        except ValueError as e:
            raise ConfigError(f"fetch option allowed_networks: {e}") from e
        object.__setattr__(self, "_networks", networks)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be contacted under these options, or None if it may."""
        if self.allow_private:
            return None
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        if any(c in net for c in candidates for net in self._networks):
            return None
        return address_refusal(ip)


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchStats:
    """Counters over a Fetcher's life: requests sent (one per hop), requests in flight
    now, and the most ever in flight overall and to any single host."""

    requests: int
    in_flight: int
    peak_in_flight: int
    peak_host_in_flight: int


# --------------------------------------------------------------------------- transport

#: Origins whose idle connections a fetcher keeps.
_IDLE_ORIGINS = 256
#: How long an idle connection is kept for the host's next feed. A first poll of many
#: feeds waits for its parsers and its store (its fetches are held back), so the next
#: feed of a host came 10-20 s after the last one on the benchmark's 1,000 feeds, and at
#: httpx's 5 s nearly every request opened a connection: 963 for 1,000 requests, 100 at
#: 30 s, one per host (over TLS, each one saved is a handshake). Servers close idle
#: connections sooner or later (Apache after 5 s, nginx 75 s): one they closed is seen
#: and not reused, and a request that finds it closing is retried once on a new one.
#: Go's HTTP client keeps them 90 s; at most ``_IDLE_ORIGINS`` x per-host are kept.
KEEPALIVE_S = 30.0


# --------------------------------------------------------------------------- fetcher


@dataclass(frozen=True, slots=True)
class _Login:
    """HTTP Basic credentials from a URL's userinfo, for the origin they were given for."""

    header: str
    userinfo: bytes
    origin_url: httpx.URL  # the URL they came with, without them

    @classmethod
    def of(cls, url: httpx.URL) -> _Login | None:
        if not url.userinfo:
            return None
        user, _, password = url.userinfo.decode("ascii").partition(":")
        pair = f"{unquote(user)}:{unquote(password)}".encode()
        return cls(
            header="Basic " + base64.b64encode(pair).decode("ascii"),
            userinfo=url.userinfo,
            origin_url=url.copy_with(userinfo=b""),
        )

    def covers(self, url: httpx.URL) -> bool:
        """Same origin, or the same host moving from http to https on default ports."""
        mine = self.origin_url
        if url.host != mine.host:
            return False
        if url.scheme == mine.scheme:
            return url.port == mine.port
        return mine.scheme == "http" and url.scheme == "https" and not mine.port and not url.port

    def on(self, url: httpx.URL) -> httpx.URL:
        return url.copy_with(userinfo=self.userinfo)


@dataclass(frozen=True, slots=True)
class _Redirect:
    status: int
    target: httpx.URL


@dataclass(frozen=True, slots=True)
class _Final:
    status: int
    headers: httpx.Headers
    body: bytes


class Fetcher:
    """Fetches feeds and pages over one pooled httpx client; an async context manager.

    ``fetch(url, cache)`` sends If-None-Match / If-Modified-Since from ``cache`` and
    returns status "not_modified" for a 304; a 200 carries ``body_hash`` (sha256 of
    the decoded body) for the caller to compare with ``cache.body_hash``.
    ``fetch_page(url)`` is the same exchange, unconditional; ``fetch_article(url)`` too, for
    a story's page, refusing what is not a web page before its body. Every failure is a
    :class:`FetchError`. ``elapsed_ms`` counts network time, not time queued for a slot.
    """

    def __init__(
        self, options: FetchOptions | None = None, *, now: Callable[[], datetime] = utc_now
    ) -> None:
        self.options = options or FetchOptions()
        self._now = now
        opts = self.options
        self._slots = _Slots(opts.per_host, opts.max_connections)
        # Every caller awaiting a lookup holds a connection slot, so max_connections threads
        # serve them all; as many again leave room for lookups still stuck in getaddrinfo
        # after their feeds' deadlines have passed.
        self._resolver = Resolver(2 * opts.max_connections)
        limits = httpx.Limits(
            max_connections=opts.max_connections,
            max_keepalive_connections=opts.max_connections,
            keepalive_expiry=KEEPALIVE_S,
        )
        # Every request no proxy takes: our HTTP/1.1 transport (aggregator.http11) on
        # connections the checking backend opens. The others: httpx's proxy transports.
        self._direct = Http11Transport(
            CheckingBackend(opts, self._resolver),
            functools.partial(httpx.create_ssl_context, trust_env=opts.trust_env),
            keep_per_origin=opts.per_host,
            keepalive_expiry=KEEPALIVE_S,
            idle_origins=_IDLE_ORIGINS,
        )
        proxies = proxy_mounts(limits) if opts.trust_env else {}
        # With a proxy the proxy connects, so names are checked before each hop instead.
        self._preflight = any(transport is not None for transport in proxies.values())
        self._client = _Client(
            transport=self._direct,
            mounts=proxies,
            trust_env=opts.trust_env,
            follow_redirects=False,
            http2=False,
            limits=limits,
            timeout=httpx.Timeout(
                opts.timeout,
                connect=min(opts.connect_timeout, opts.timeout),
                read=min(opts.read_timeout, opts.timeout),
            ),
            headers={"User-Agent": opts.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
        )
        self._timeouts = {"timeout": self._client.timeout.as_dict()}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            await self._client.aclose()
        finally:
            self._resolver.close()

    @property
    def stats(self) -> FetchStats:
        s = self._slots
        return FetchStats(
            requests=s.requests,
            in_flight=s.in_flight,
            peak_in_flight=s.peak,
            peak_host_in_flight=s.peak_host,
        )

    async def fetch(
        self,
        url: str,
        cache: CacheState | None = None,
        *,
        admit: Callable[[str], None] | None = None,
    ) -> FetchResult:
        """Fetch a feed, conditionally when ``cache`` has validators. ``admit`` is called
        with the host of each request (a redirect's too) once its connection slot is
        held, just before it is sent: what it raises propagates, nothing sent (the poll
        sends no request to a host that asked, meanwhile, to be left alone)."""
        headers: dict[str, str | bytes] = {"Accept": FEED_ACCEPT}
        if cache is not None and (etag := _sendable(cache.etag)):
            headers["If-None-Match"] = etag
        if cache is not None and (last_modified := _sendable(cache.last_modified)):
            headers["If-Modified-Since"] = last_modified
        return await self._fetch(url, headers, cache, page=False, admit=admit)

    async def fetch_page(
        self, url: str, *, admit: Callable[[str], None] | None = None
    ) -> FetchResult:
        """Fetch a page, whatever it turns out to be (``feeds add`` looks at what a URL
        is: a feed, JSON Feed included, or a web page); same limits, never conditional.
        ``admit``, as for a feed, is called with each request's host, redirects
        included, before it is sent, and may raise to send none."""
        return await self._fetch(url, {"Accept": PAGE_ACCEPT}, None, page=False, admit=admit)

    async def fetch_article(
        self, url: str, *, admit: Callable[[str], None] | None = None
    ) -> FetchResult:
        """Fetch a story's article page (HTML) for extraction, as :meth:`fetch_page`; a
        response whose ``Content-Type`` is not a web page's (a PDF, an image, audio:
        see :func:`~aggregator.textutil.page_media_type`) is refused before its body is
        read. ``admit``, as for a feed, is called with each request's host, redirects
        included, before it is sent, and may raise to send none.

        A page that sends the browser on at once with ``<meta http-equiv="refresh">``
        (within ``REFRESH_FOLLOWED_S``: a tracker's or a consent interstitial, a site
        moved without HTTP redirects) is followed as a redirect, ``MAX_REFRESHES``
        times at most: its own text is a line or two ("Redirecting..."), and the story
        failed with no article found. A later refresh (an article page reloading to the
        front page after minutes idle) is not a redirect."""
        result = await self._fetch(url, {"Accept": PAGE_ACCEPT}, None, page=True, admit=admit)
        for _ in range(MAX_REFRESHES):
            target = _refresh_target(result)
            if target is None:
                break
            moved = await self._fetch(target, {"Accept": PAGE_ACCEPT}, None, page=True, admit=admit)
            result = dataclasses.replace(
                moved, url=url, elapsed_ms=result.elapsed_ms + moved.elapsed_ms
            )
        return result

    async def _fetch(
        self,
        url: str,
        headers: Mapping[str, str | bytes],
        cache: CacheState | None,
        *,
        page: bool,
        admit: Callable[[str], None] | None = None,
    ) -> FetchResult:
        try:
            return await self._follow(url, headers, cache, page, admit)
        except FetchError:
            raise
        except Refused as e:
            raise FetchError(url, str(e)) from e
        except _NETWORK_ERRORS as e:
            raise FetchError(url, _describe(e), unanswered=_unanswered(e)) from e

    async def _follow(
        self,
        url: str,
        headers: Mapping[str, str | bytes],
        cache: CacheState | None,
        page: bool,
        admit: Callable[[str], None] | None = None,
    ) -> FetchResult:
        opts = self.options
        loop = asyncio.get_running_loop()
        target = self._checked(url, url)
        login = _Login.of(target)
        if login is not None:
            target = login.origin_url
        permanent: str | None = None
        spent = 0.0
        for hop in range(opts.max_redirects + 1):
            sent = headers if login is None else {**headers, "Authorization": login.header}
            async with self._slots.hold(target.host):
                if admit is not None:
                    admit(target.host)  # may raise: this request is not sent
                started = loop.time()
                deadline = asyncio.timeout(opts.timeout - spent)
                try:
                    async with deadline:
                        outcome = await self._exchange(url, target, sent, cache, page)
                except TimeoutError as e:
                    if not deadline.expired():  # an OS-level timeout
                        raise FetchError(
                            url, _describe(e), unanswered=True, host=target.host
                        ) from e
                    raise FetchError(
                        url,
                        f"timed out after {opts.timeout:g} s",
                        unanswered=True,
                        host=target.host,
                    ) from None
                except FetchError as e:  # this hop's answer (an HTTP status, a cap)
                    e.host = e.host or target.host
                    raise
                except _NETWORK_ERRORS as e:
                    raise FetchError(
                        url, _describe(e), unanswered=_unanswered(e), host=target.host
                    ) from e
                finally:
                    spent += loop.time() - started
            if isinstance(outcome, _Final):
                return self._result(url, target, outcome, cache, permanent, spent)
            target = outcome.target
            if (given := _Login.of(target)) is not None:
                login, target = given, given.origin_url
            elif login is not None and not login.covers(target):
                login = None  # credentials never leave their origin
            if hop == 0 and outcome.status in _PERMANENT_STATUSES:
                permanent = str(target if login is None else login.on(target))
        raise FetchError(url, f"too many redirects (more than {opts.max_redirects})")

    def _checked(self, url: str, candidate: str | httpx.URL) -> httpx.URL:
        """Parse and vet a URL (the one asked for or a redirect target)."""
        hop = "" if candidate is url else " in redirect"
        try:
            target = httpx.URL(candidate)
        except (httpx.InvalidURL, TypeError) as e:
            raise FetchError(url, _one_line(f"invalid URL{hop}: {e}")) from e
        if target.scheme not in ("http", "https"):
            scheme = target.scheme or "(none)"
            raise FetchError(url, _one_line(f"unsupported URL scheme{hop}: {scheme}"))
        if not target.host:
            raise FetchError(url, f"URL without a host{hop}")
        # httpx takes any integer as a port: connect() then raised OverflowError (not a
        # FetchError) past 65535 or below 0, and port 0 became the scheme's default.
        if target.port is not None and not 0 < target.port < 65536:
            raise FetchError(url, f"invalid URL{hop}: port {target.port} out of range")
        ip = parse_ip_host(target.host)
        if ip is not None:
            check_all(self.options, target.host, [ip])
        return target

    async def _exchange(
        self,
        url: str,
        target: httpx.URL,
        headers: Mapping[str, str | bytes],
        cache: CacheState | None,
        page: bool,
    ) -> _Final | _Redirect:
        if self._preflight:
            addresses = await self._resolver.resolve(target.raw_host.decode("ascii"))
            check_all(self.options, target.host, addresses)
        if not self._preflight:
            # Straight to our transport: the client's send() wraps it in auth, redirect,
            # cookie and event-hook layers this fetcher does not use (~8 % of the fetch
            # loop's CPU on an all-304 poll). The request carries the client's default
            # headers and timeouts all the same.
            merged = self._client.headers.copy()
            merged.update(_raw(headers))
            request = httpx.Request("GET", target, headers=merged, extensions=self._timeouts)
            response = await self._direct.handle_async_request(request)
            response.request = request
        else:  # httpx routes it: to a proxy's transport, or (not proxied) to ours
            request = self._client.build_request("GET", target, headers=_raw(headers))
            try:
                response = await self._client.send(request, stream=True)
            except httpx.InvalidURL as e:
                # httpx parses Location even with follow_redirects=False and raises
                # InvalidURL (not an HTTPError) for e.g. javascript: or data: targets.
                raise FetchError(url, _one_line(f"invalid URL in redirect: {e}")) from e
        try:
            status = response.status_code
            if status in _REDIRECT_STATUSES:
                location = _location(url, status, response.headers)
                try:
                    joined = target.join(location)
                except httpx.InvalidURL as e:
                    raise FetchError(url, _one_line(f"invalid URL in redirect: {e}")) from e
                await _drain(response)
                return _Redirect(status, self._checked(url, joined))
            if status == 304:
                # What was sent decides, not what is stored: a stored validator that
                # cannot be sent (``_sendable``) left the request unconditional, and a 304
                # to it taken for "unchanged" kept that validator, and the feed unread, for
                # good (RFC 9110 §15.4.5: a 304 answers a conditional GET only).
                if cache is None or not _conditional(headers):
                    raise FetchError(url, "HTTP 304 to an unconditional request", http_status=304)
                await _drain(response)
                return _Final(status, response.headers, b"")
            if not 200 <= status < 300:
                raise self._status_error(url, response)
            if status in _PARTIAL_STATUSES:
                # No Range (nor A-IM) was sent: this is not the whole body, and taken for
                # it, its validators would have the server answer 304 to it from then on.
                reason = _one_line(f"HTTP {status} {response.reason_phrase}".strip())
                raise FetchError(
                    url, f"{reason} to a request for the whole body", http_status=status
                )
            if page and (media := page_media_type(response.headers.get("content-type"))):
                # (not read: a podcast's mp3 or a report's PDF is megabytes of no use)
                raise FetchError(url, _one_line(f"not an HTML page ({media})"))
            return _Final(status, response.headers, await self._read_body(url, response))
        finally:
            await response.aclose()

    def _status_error(self, url: str, response: httpx.Response) -> FetchError:
        # (the body of an error response is not read: the connection is dropped with it)
        status = response.status_code
        message = _one_line(f"HTTP {status} {response.reason_phrase}".strip())
        retry_after = None
        if status in (429, 503):
            # Each Retry-After on its own: sent twice (an application's and a CDN's), the
            # two joined by a comma were no delay at all. The longest is the polite one.
            date, now = response.headers.get("date"), self._now()
            waits = [
                wait
                for value in response.headers.get_list("retry-after")
                if (wait := parse_retry_after(value, date=date, now=now)) is not None
            ]
            retry_after = max(waits, default=None)
            if retry_after is not None:
                message += f" (retry after {_wait(retry_after)})"
        return FetchError(
            url, message, http_status=status, retry_after_s=retry_after, gone=status == 410
        )

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        """Stream the body, counting the raw bytes and the output of every decoding step
        against the cap as they come; decoding is ours (bounded per step) because httpx
        inflates a chunk in one go.

        Every step counts, not only the last: in ``gzip, br`` a gzip stream that ends at
        once (what follows it is ignored) or opens with a long header comment swallows
        whatever the brotli step expands to, and 13 KB of brotli inflated gigabytes for
        nothing, synchronously, so that the deadline could not stop it. At most
        ``_MAX_CODINGS`` steps, so the work per read stays bounded too."""
        limit = self.options.max_body
        declared = _declared_length(response.headers)
        if declared is not None and declared > limit:
            raise FetchError(url, f"body too large: Content-Length {declared} > {limit} bytes")
        codings = [c for c in response.headers.get_list("content-encoding", split_commas=True) if c]
        if len(codings) > _MAX_CODINGS:
            raise FetchError(
                url, f"too many content codings: {len(codings)} (at most {_MAX_CODINGS})"
            )
        # Content-Encoding lists the codings in the order applied: undone in reverse.
        steps = [decoder_for(coding) for coding in reversed(codings)]
        sizes = [0] * (len(steps) + 1)  # the raw body, then each step's output
        chunks: list[bytes] = []

        def take(level: int, pieces: Iterable[bytes]) -> None:
            for piece in pieces:
                sizes[level] += len(piece)
                if sizes[level] > limit:
                    decoded = " decoded" if level else ""
                    raise FetchError(url, f"body too large: more than {limit} bytes{decoded}")
                if level < len(steps):
                    take(level + 1, steps[level].feed(piece))
                else:
                    chunks.append(piece)

        async for chunk in response.aiter_raw():
            take(0, (chunk,))
        for level, step in enumerate(steps, 1):
            take(level, step.finish())
        return b"".join(chunks)

    def _result(
        self,
        url: str,
        final: httpx.URL,
        outcome: _Final,
        cache: CacheState | None,
        permanent: str | None,
        spent: float,
    ) -> FetchResult:
        headers = outcome.headers
        not_modified = outcome.status == 304
        etag = ", ".join(_validators(headers, b"etag")) or None
        last_modified = _one_date(_validators(headers, b"last-modified"))
        if not_modified and cache is not None:
            etag = etag or cache.etag
            last_modified = last_modified or cache.last_modified
        body_hash = (
            (cache.body_hash if cache is not None else None)
            if not_modified
            else hashlib.sha256(outcome.body).hexdigest()
        )
        result = FetchResult(
            url=url,
            final_url=str(final),
            status="not_modified" if not_modified else "ok",
            http_status=outcome.status,
            body=outcome.body,
            content_type=headers.get("content-type"),
            etag=etag,
            last_modified=last_modified,
            body_hash=body_hash,
            max_age=cache_lifetime(headers, self._now()),
            permanent_redirect=permanent,
            elapsed_ms=round(spent * 1000),
        )
        log.debug(
            "fetched url=%s status=%s ms=%d", display_url(url), outcome.status, result.elapsed_ms
        )
        return result


def _location(url: str, status: int, headers: httpx.Headers) -> str:
    """A redirect's target as its Location header gives it. The header sent twice with
    one value (an application and the proxy in front of it both setting it) is that
    value; read as one header, it was the two joined by a comma, and the fetch asked
    for that. Two that disagree name no target (Chrome refuses them too:
    ERR_RESPONSE_HEADERS_MULTIPLE_LOCATION)."""
    locations = {v.strip() for v in headers.get_list("location")} - {""}
    if not locations:
        raise FetchError(url, f"HTTP {status} redirect without a Location header")
    if len(locations) > 1:
        raise FetchError(
            url, f"HTTP {status} redirect with {len(locations)} different Location headers"
        )
    return locations.pop()


def _one_date(values: list[str]) -> str | None:
    """A Last-Modified as it can go back as If-Modified-Since: the header sent twice with
    one date (the application's and the web server's) is that date, not the two joined
    by a comma, which matched no server's and cost a whole download every poll. Two
    dates that disagree are none: either could have the server answer 304 to a change."""
    dates = {v.strip() for v in values} - {""}
    return dates.pop() if len(dates) == 1 else None


def _conditional(headers: Mapping[str, str | bytes]) -> bool:
    """Whether a request with ``headers`` was a conditional GET (a validator went out)."""
    return any(name.lower() in ("if-none-match", "if-modified-since") for name in headers)


def _raw(headers: Mapping[str, str | bytes]) -> list[tuple[bytes, bytes]]:
    """Request headers as bytes: a validator goes as the bytes it came as (``_sendable``)."""
    return [
        (name.encode("ascii"), value if isinstance(value, bytes) else value.encode("ascii"))
        for name, value in headers.items()
    ]


def _validators(headers: httpx.Headers, name: bytes) -> list[str]:
    """Each value of an ETag or Last-Modified header, its bytes one character each
    (ISO-8859-1), so that it goes back byte for byte (:func:`_sendable`). An entity tag
    may hold bytes past ASCII (RFC 9110 §8.8.3, obs-text; a server building it from a
    file name or a title sends them): as httpx decodes headers (UTF-8 when they all are,
    else ISO-8859-1) nothing told how to send it back, and sending it failed."""
    return [value.decode("latin-1") for key, value in headers.raw if key.lower() == name]


def _refresh_target(page: FetchResult) -> str | None:
    """Where an article page's ``<meta http-equiv="refresh">`` sends a browser within
    ``REFRESH_FOLLOWED_S`` (an absolute http(s) URL), or None: none, later, elsewhere
    than the web, or the page itself."""
    media_type = (page.content_type or "").partition(";")[0].strip().lower()
    if page_media_type(media_type) is not None or media_type == PLAIN_TEXT:
        return None
    refresh = meta_refresh(page.body)
    if refresh is None or refresh[0] > REFRESH_FOLLOWED_S:
        return None
    target = urldefrag(urljoin(page.final_url, refresh[1])).url
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        return None
    return None if target == urldefrag(page.final_url).url else target


def _sendable(validator: str | None) -> bytes | None:
    """A stored ETag or Last-Modified as it can go back to the server, or None. One a
    server sent with a bare CR or a NUL in it (an invalid field: RFC 9112 §2.2, RFC 9110
    §5.5) is kept as sent, and a request header with it is refused (a CR or LF would
    split it): sent, it failed the feed's every later fetch, for a failed fetch keeps the
    validators. Left out, the GET is unconditional, as with none, and the next 200
    brings the server's current one.

    Its bytes are its characters' (ISO-8859-1, as :func:`_validators` keeps them): as a
    str httpx sends only ASCII, and one past it raised UnicodeEncodeError, again on
    every later fetch. One stored before holding more than ISO-8859-1 can (decoded from
    UTF-8 by httpx) goes as UTF-8, its likeliest bytes."""
    if not validator or "\r" in validator or "\n" in validator or "\0" in validator:
        return None
    try:
        return validator.encode("latin-1")
    except UnicodeEncodeError:
        return validator.encode("utf-8", "backslashreplace")


def _declared_length(headers: httpx.Headers) -> int | None:
    """The body's Content-Length, for refusing a body too large before reading it: None
    where the response has none, or a Transfer-Encoding (which frames the body instead,
    RFC 9112 §6.3), or one that is not ASCII digits (``str.isdigit`` also takes '²',
    which ``int()`` refuses, or '٣'). Past 19 digits it is no size a body can have:
    ``int()`` refuses over 4,300 digits, and 2**63 bounds it."""
    if "transfer-encoding" in headers:
        return None
    value = headers.get("content-length", "").strip()
    if not value.isascii() or not value.isdigit():
        return None
    digits = value.lstrip("0") or "0"
    return 2**63 if len(digits) > 19 else int(digits)
