"""How a failed fetch is told, for :mod:`aggregator.fetch`: which exceptions network input
can raise (:data:`_NETWORK_ERRORS`; anything else escaping a fetch is a bug and
propagates), each as one line for its ``FetchError`` (:func:`_describe`), whether the server
gave no answer at all (:func:`_unanswered`: down or hanging, not answering badly), and a
server's Retry-After in people's units (:func:`_wait`).

Must not: raise, catch or retry anything, do I/O, or import :mod:`aggregator.fetch`, which
imports it.
"""

from __future__ import annotations

import httpcore
import httpx

from aggregator.codings import DecodeError


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _wait(seconds: float) -> str:
    """A server's Retry-After as people read it: ``30 s``, ``5 min``, ``1.5 h``, ``3 days``
    (``2.14748e+09 s`` said nothing)."""
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:,.0f} days"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, httpx.ReadTimeout):
        return "read timed out (server stopped sending)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return _one_line(f"cannot connect: {exc}")
    if isinstance(exc, httpx.ProtocolError):
        return _one_line(f"bad HTTP response: {exc}")
    if isinstance(exc, httpx.InvalidURL):
        return _one_line(f"invalid URL: {exc}")
    if isinstance(exc, DecodeError):
        return _one_line(str(exc))
    return _one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def _unanswered(exc: BaseException) -> bool:
    """Whether ``exc`` means the server gave no answer: it could not be reached, or it
    stopped sending (not a malformed answer, which is an answer)."""
    return isinstance(
        exc,
        httpx.TimeoutException
        | httpx.ConnectError
        | httpcore.TimeoutException
        | httpcore.ConnectError
        | ConnectionError
        | TimeoutError,
    )


# Everything network input can make httpx, httpcore or the OS raise. Anything else
# escaping fetch() is a bug in aggregator.fetch and should propagate.
_NETWORK_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.StreamError,
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
    OSError,
    UnicodeError,
    DecodeError,
)
