"""Fetching and what a poll makes of its answers, session 27: end to end with a real HTTP
server on 127.0.0.1, a real SQLite file and the App's clock injected."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clockedapp import Clock
from httpserver import LocalServer
from test_fetch import tls_server  # noqa: F401  (a fixture: HTTPS for "localhost")

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.errors import FetchError
from aggregator.fetch import Fetcher, FetchOptions
from aggregator.types import CacheState, FetchResult


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[App]:
    s = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, extract=False, timeout_s=5
    )
    with make_app(s, now=clock) as a:
        yield a


RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
    b"<item><title>one</title><guid>g1</guid></item></channel></rss>"
)
#: Not well-formed (a bare "&"), its item recoverable: stored, with a warning.
RECOVERABLE = RSS.replace(b"<title>one</title>", b"<title>A & B</title>")


def _feed_error(app: App) -> str | None:
    [feed] = app.feeds()
    return feed.last_error


@pytest.mark.parametrize("validator", ["etag", "none"], ids=["304", "same-body"])
def test_a_recovered_feeds_warning_outlives_the_polls_that_find_it_unchanged(
    app: App, server: LocalServer, clock: Clock, validator: str
) -> None:
    """A feed that is not well-formed but recoverable is stored with the problem as its
    ``last_error`` (``feeds list`` shows it). The next poll that found the document
    unchanged (a 304, or the same body again) cleared it, though the document was the
    same broken one: the warning showed for an hour and was gone. It stays for as long
    as the document does, and goes with the first one that parses cleanly."""
    url = server.route(
        "/recoverable.xml", body=RECOVERABLE, etag='"v1"' if validator == "etag" else None
    )
    app.add_feed(url, discover=False)
    [first] = app.update_due()
    assert first.status == "ok"
    warning = _feed_error(app)
    assert warning is not None and "not well-formed" in warning
    clock.t += timedelta(days=1)
    [again] = app.update_due()
    assert again.status == ("not_modified" if validator == "etag" else "unchanged")
    assert _feed_error(app) == warning
    # the publisher fixes the feed: the warning goes
    server.route("/recoverable.xml", body=RSS, etag='"v2"' if validator == "etag" else None)
    clock.t += timedelta(days=1)
    [fixed] = app.update_due()
    assert fixed.status == "ok"
    assert _feed_error(app) is None


def test_a_304_after_a_failed_poll_still_clears_the_error(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """What a failed poll left as ``last_error`` (an HTTP 500) is no warning about the
    document: the next 304 clears it, as before."""
    url = server.route("/feed.xml", body=RSS, etag='"v1"')
    app.add_feed(url, discover=False)
    [first] = app.update_due()
    assert first.status == "ok" and _feed_error(app) is None
    server.route("/feed.xml", status=500, body=b"oops", content_type="text/plain")
    clock.t += timedelta(days=1)
    [failed] = app.update_due()
    assert failed.status == "error" and "500" in (_feed_error(app) or "")
    server.route("/feed.xml", body=RSS, etag='"v1"')
    clock.t += timedelta(days=1)
    [again] = app.update_due()
    assert again.status == "not_modified"
    assert _feed_error(app) is None


# --------------------------------------------------------------------------- the fetcher


def _fetch(url: str, cache: CacheState | None = None) -> FetchResult:
    async def main() -> FetchResult:
        options = FetchOptions(allowed_networks=("127.0.0.1/32",), timeout=5.0)
        async with Fetcher(options) as fetcher:
            return await fetcher.fetch(url, cache)

    return asyncio.run(main())


def test_a_redirect_repeating_its_location_is_followed(server: LocalServer) -> None:
    """A Location header sent twice with the same value (an application and the proxy in
    front of it both setting it; browsers follow it) was read as one value of the two
    joined by a comma: the fetch asked for "/feed.xml,%20/feed.xml" and failed with a
    404, and a 301 would have been adopted as the feed's new URL so."""
    target = server.route("/feed.xml", body=RSS)
    url = server.route(
        "/old.xml",
        raw=b"HTTP/1.1 301 Moved Permanently\r\nLocation: /feed.xml\r\n"
        b"Location: /feed.xml\r\nContent-Length: 0\r\n\r\n",
    )
    result = _fetch(url)
    assert (result.http_status, result.final_url, result.body) == (200, target, RSS)
    assert result.permanent_redirect == target
    assert [r.path for r in server.requests] == ["/old.xml", "/feed.xml"]


def test_a_redirect_with_two_different_locations_is_refused(server: LocalServer) -> None:
    """Two Location headers that disagree (Chrome refuses them:
    ERR_RESPONSE_HEADERS_MULTIPLE_LOCATION) name no target: the fetch fails saying so,
    not by asking for the two joined by a comma."""
    server.route("/feed.xml", body=RSS)
    url = server.route(
        "/old.xml",
        raw=b"HTTP/1.1 302 Found\r\nLocation: /feed.xml\r\n"
        b"Location: /other.xml\r\nContent-Length: 0\r\n\r\n",
    )
    with pytest.raises(FetchError) as info:
        _fetch(url)
    assert info.value.message == "HTTP 302 redirect with 2 different Location headers"
    assert [r.path for r in server.requests] == ["/old.xml"]


def test_a_last_modified_sent_twice_still_makes_the_next_request_conditional(
    server: LocalServer,
) -> None:
    """A Last-Modified header sent twice with one date (the application's and the web
    server's) was kept as the two joined by a comma, which is no date: sent back as
    If-Modified-Since, no server could match it, and the feed was downloaded whole on
    every poll, never a 304. It is kept as the one date; two different dates are no
    validator (either could make the server answer 304 to a changed feed)."""
    date = "Tue, 01 Dec 2026 10:00:00 GMT"
    raw = (
        b"HTTP/1.1 200 OK\r\nLast-Modified: %s\r\nLast-Modified: %s\r\nContent-Length: %d\r\n\r\n%s"
    )
    url = server.route("/twice.xml", raw=raw % (date.encode(), date.encode(), len(RSS), RSS))
    first = _fetch(url)
    assert first.last_modified == date
    server.route("/twice.xml", body=RSS, last_modified=date)  # as a server compares it
    again = _fetch(url, CacheState(last_modified=first.last_modified))
    assert again.status == "not_modified"
    assert server.requests[-1].headers["if-modified-since"] == date
    other = "Mon, 30 Nov 2026 10:00:00 GMT"
    url = server.route("/two.xml", raw=raw % (date.encode(), other.encode(), len(RSS), RSS))
    assert _fetch(url).last_modified is None


@pytest.mark.parametrize(
    ("second", "expected"),
    [("3600", 3600.0), ("60", 3600.0), ("soon", 3600.0)],
    ids=["same", "shorter", "unreadable"],
)
def test_a_retry_after_sent_twice_is_honoured(
    server: LocalServer, second: str, expected: float
) -> None:
    """A 429 whose Retry-After came twice (the application's and a CDN's) was read as
    the two joined by a comma, which is no delay: the server's hour became the default
    five minutes of a 429 without one (a 503's, no hold at all), and the host was asked
    twelve times as often as it had said. The longest wait given is kept."""
    url = server.route(
        "/busy.xml",
        raw=b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3600\r\n"
        b"Retry-After: %s\r\nContent-Length: 0\r\n\r\n" % second.encode(),
    )
    with pytest.raises(FetchError) as info:
        _fetch(url)
    assert info.value.http_status == 429
    assert info.value.retry_after_s == expected
    assert info.value.message == "HTTP 429 Too Many Requests (retry after 60 min)"


@pytest.mark.parametrize(
    ("etag", "last_modified"),
    [
        ('"café"', None),  # sent as the byte E9 (ISO-8859-1)
        ('"cafÃ©"', None),  # sent as C3 A9: "café" in UTF-8, as most servers would
        (None, "Mär, 01 Dec 2026 10:00:00 GMT"),
    ],
    ids=["etag-latin-1", "etag-utf-8", "last-modified"],
)
def test_a_validator_with_a_byte_past_ascii_goes_back_as_it_came(
    server: LocalServer, etag: str | None, last_modified: str | None
) -> None:
    """An entity tag may hold bytes past ASCII (RFC 9110 §8.8.3: obs-text), and servers
    that build it from a file name or a title send them. It was stored as httpx decoded
    it, and sending it back as If-None-Match raised UnicodeEncodeError: every later
    fetch of the feed failed, for good (a failed fetch keeps the validators). It goes
    back as the bytes that came, and the server can answer 304."""
    url = server.route("/feed.xml", body=RSS, etag=etag, last_modified=last_modified)
    first = _fetch(url)
    assert first.status == "ok"
    again = _fetch(url, CacheState(etag=first.etag, last_modified=first.last_modified))
    # (the test server reads request headers as ISO-8859-1, byte for byte)
    seen = server.requests[-1].headers
    assert (seen.get("if-none-match"), seen.get("if-modified-since")) == (etag, last_modified)
    assert again.status == "not_modified"


def test_a_non_ascii_etag_stored_before_is_no_failure(server: LocalServer) -> None:
    """An ETag stored as httpx decoded it (UTF-8 bytes read as "é", before validators
    were kept byte for byte), as some databases hold one: the fetch goes on, answered
    200 (those are not the server's bytes), and brings the validator as it should be."""
    url = server.route("/feed.xml", body=RSS, etag='"cafÃ©"')
    result = _fetch(url, CacheState(etag='"café"'))
    assert (result.status, result.etag) == ("ok", '"cafÃ©"')
    stored_wide = _fetch(url, CacheState(etag='"日本"'))  # nothing ISO-8859-1 can hold
    assert stored_wide.status == "ok"


def test_an_https_host_written_with_its_trailing_dot_is_verified_without_it(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``https://example.com./feed`` (a fully qualified name, the root's dot written out)
    is the same host, and browsers and curl fetch it. The name went into the TLS
    handshake with its dot, which SNI does not allow (RFC 6066 §3) and which no
    certificate names: "Hostname mismatch", every poll. The dot stays in the URL and the
    Host header; the handshake gets the name without it."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:  # the OS resolver
        return real("localhost" if host == "localhost." else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    https: LocalServer = request.getfixturevalue("tls_server")  # test_fetch's
    https.route("/feed.xml", body=RSS)
    result = _fetch(https.url("/feed.xml", host="localhost."))
    assert (result.status, result.body) == ("ok", RSS)
