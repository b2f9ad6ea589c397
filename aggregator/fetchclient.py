"""The httpx client :class:`aggregator.fetch.Fetcher` sends through, and keeping its
connections reusable: a client whose cookie jar keeps nothing (:class:`_Client`), and
:func:`_drain`, which reads a body nobody needs (a 304's, a redirect's) to its end so that
its connection goes back to the pool.

Must not: send requests, decide what a response means, apply limits (all fetch.py's), or
import :mod:`aggregator.fetch`, which imports it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

#: Longest a body nobody needs is waited for (a redirect's comes with its head).
_DRAIN_S = 1.0


async def _drain(
    response: httpx.Response, limit: int = 64 * 1024, within: float = _DRAIN_S
) -> None:
    """Read a body we do not need (304, redirect) to its end, so that the connection goes
    back to the pool for the host's next feed; closing a response mid-message drops the
    connection, and an all-304 poll would then reconnect for every feed. Never raises
    for the body: at most ``limit`` bytes for at most ``within`` seconds, and a body that
    ends badly, or not in time, only costs the connection.

    A body with neither Content-Length nor Transfer-Encoding (a 304 has none) runs to
    the close (RFC 9112 section 6.3): its connection cannot be kept, so it is not read.
    Read, it held the fetch until the server closed, which a keep-alive server that
    sends a redirect without a length never does: the fetch timed out."""
    headers = response.headers
    if (
        response.status_code not in (204, 304)
        and "content-length" not in headers
        and "transfer-encoding" not in headers
    ):
        return
    seen = 0
    # Best effort: the answer is the status and headers, already in hand. A body cut
    # short or badly framed failed the whole fetch, and one declared and never sent
    # held it for the read timeout; now the connection is dropped with the response.
    try:
        async with asyncio.timeout(within):
            async for chunk in response.aiter_raw():
                seen += len(chunk)
                if seen > limit:  # not worth reading: let the connection go
                    return
    except (httpx.HTTPError, TimeoutError):  # (the fetch's own deadline cancels instead)
        return


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing. Across thousands of feeds a jar only grows and
    leaks one site's state into the next request; and httpx hands every response to
    the jar, which even with a refusing policy built urllib request/response adapters
    for each one (~7 % of an all-304 poll's CPU)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _Client(httpx.AsyncClient):
    """httpx's client with :class:`_NoCookies` as its (fixed) jar."""

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        pass
