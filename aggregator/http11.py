"""HTTP/1.1 for the fetcher: an httpx transport that speaks the protocol itself.

httpx's default transport is httpcore, which frames messages with h11; on a poll of
1,000 feeds that all answer 304, httpcore, h11 and their locks cost about half of the
fetch loop's CPU (cProfile: ~0.7 ms per request), and the loop was CPU-bound. What a
feed fetcher sends is always the same: a GET with a few headers and no body. So this
transport writes that request in one piece and reads the response off the connection's
buffer (:mod:`aggregator.netstream`), with the framing of RFC 9112 section 6:

* no body for HEAD, 1xx, 204 and 304; interim 1xx responses are skipped;
* ``Transfer-Encoding`` (chunked, the only transfer coding read) wins over
  ``Content-Length`` (``identity`` is none, and leaves it the framing); conflicting
  lengths are an error; without either, the body runs to the end of the connection;
* a connection is kept for the next request to the same origin only when the response
  was HTTP/1.1, did not say ``Connection: close`` and its body was read to the end;
* a kept-alive connection the server closed meanwhile is not reused, and a request that
  finds it closed before any byte of the answer, answered 408 (the server's notice
  that it is closing the idle connection) or answered with bytes that cannot start a
  response (what a broken server sent after a 304's head), is retried once on a new
  connection.

It is lenient where servers commonly are sloppy (bare LF line ends, folded header
lines, no reason phrase) and strict where a mistake would corrupt the next response on
the connection (lengths, chunk sizes, oversized heads). Headers we send are checked for
CR, LF and NUL, so a stored ETag cannot inject a header. Errors are httpx's exceptions.

Proxies are not handled here: with a proxy configured the fetcher uses httpx's own
transports.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpcore
import httpx

from aggregator.netstream import AsyncioBackend, AsyncioStream, finish_closing

__all__ = ["Http11Transport"]

#: Largest response head (status line and headers) accepted.
MAX_HEAD = 64 * 1024
#: Largest chunk-size line or trailer line accepted in a chunked body.
MAX_LINE = 4 * 1024
#: Largest piece a body read hands out at once.
_PIECE = 64 * 1024

_NO_BODY_STATUSES = frozenset({204, 304})

# RFC 9112 section 2.2: a line may end in a bare LF, any CR before it ignored. A head ends
# at its first empty line, whatever each line's ending: "HTTP/1.1 200 OK\n\r\n" is a
# whole head (a script's bare LF under a server's CRLF), and what follows it is the body.
_STATUS_START = b"HTTP/1."
_BLANKS = b" \t\r\x0b\x0c"  # what bytes.split() drops before a status line
_EOL = re.compile(rb"\r?\n")
_HEAD_END = re.compile(rb"\r?\n\r?\n")

_CORE_TO_HTTPX: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
)


def _as_httpx(e: Exception) -> Exception:
    for source, target in _CORE_TO_HTTPX:
        if isinstance(e, source):
            error = target(str(e))
            error.__cause__ = e
            return error
    return e


class _Stale(Exception):
    """A reused connection turned out closed before any byte of the answer arrived, its
    server's notice of closing it (a 408) came instead of the answer, or what came
    cannot start one (the last answer's leftovers, :meth:`Http11Transport._read_head`)."""


class _Connection:
    __slots__ = ("closing", "idle_since", "protocol", "reused", "stream", "transport")

    def __init__(self, stream: AsyncioStream, closing: set[AsyncioStream]) -> None:
        self.stream = stream
        self.closing = closing  # the transport's TLS connections still shutting down
        self.protocol = stream.protocol
        self.transport = stream.transport
        self.reused = False
        self.idle_since = 0.0

    def reusable(self) -> bool:
        """Idle and still open: nothing unasked arrived, the server did not close it."""
        p = self.protocol
        return not (p.buffer or p.eof or self.transport.is_closing())

    def close(self) -> None:
        self.transport.close()
        stream = self.stream
        if stream.closing_tls and stream not in self.closing:
            self.closing.add(stream)
            self.protocol.on_lost = functools.partial(self.closing.discard, stream)

    # -- reading off the protocol's buffer

    async def wait(self, timeout: float | None) -> None:
        """Wait for more bytes (or the end of the connection)."""
        try:
            await self.protocol.wait_readable(timeout)
        except httpcore.ReadTimeout as e:
            raise httpx.ReadTimeout("timed out waiting for the server") from e

    def take(self, n: int) -> bytes:
        return self.protocol.take(n)

    def closed_error(self, what: str) -> Exception:
        error = self.protocol.error
        if error is not None:
            return httpx.ReadError(f"{what}: {error or type(error).__name__}")
        return httpx.RemoteProtocolError(what)

    async def line(self, timeout: float | None) -> bytes:
        """One line of a chunked body (size line or trailer), without its line end."""
        buf = self.protocol.buffer
        while True:
            end = buf.find(b"\n", 0, MAX_LINE + 2)
            if end >= 0:
                return self.take(end + 1).rstrip(b"\r\n")
            if len(buf) > MAX_LINE + 1:  # no line end within the limit, however it arrived
                raise httpx.RemoteProtocolError("chunked body: line too long")
            if self.protocol.eof:
                raise self.closed_error("server closed the connection inside a chunked body")
            await self.wait(timeout)


# A chunk-size line in its plain form: 1-16 hex digits, no extension, CRLF or LF.
_PLAIN_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})\r?\n")


def _whole_chunks(conn: _Connection) -> bytes:
    """The data of the whole chunks at the start of the buffer, joined, removed from it.

    A body of many small chunks (a server writing a feed one byte per chunk) costs a
    pass of :meth:`_Body._chunked` and a piece through httpx for each; this takes every
    chunk the buffer already holds whole in one pass instead, up to ``_PIECE`` bytes of
    data. Only chunks in the plain form are taken (size line of hex digits, data, CRLF
    or LF), each of which the careful reader would read the same; at anything else (an
    extension, the last chunk, a partial or malformed chunk) it stops, and that chunk is
    left to the careful reader, which raises on bad framing as before.
    """
    buf = conn.protocol.buffer
    match = _PLAIN_SIZE.match
    pieces: list[bytearray] = []
    total = 0
    pos = 0
    end = len(buf)
    while (m := match(buf, pos)) is not None:
        size = int(m[1], 16)
        start = m.end()
        stop = start + size
        if size == 0 or total + size > _PIECE or stop >= end:
            break
        if buf[stop] == 10:  # b"\n"
            after = stop + 1
        elif buf[stop] == 13 and stop + 1 < end and buf[stop + 1] == 10:  # b"\r\n"
            after = stop + 2
        else:
            break
        pieces.append(buf[start:stop])
        total += size
        pos = after
    if not pos:
        return b""
    data = b"".join(pieces)
    conn.protocol.skip(pos)
    return data


def _framing_error(message: str) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"malformed response: {message}")


class _Head:
    __slots__ = ("chunked", "close", "headers", "length", "reason", "status", "version")

    def __init__(self, raw: bytes) -> None:
        lines = _EOL.split(raw)
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise _framing_error(f"bad status line {lines[0][:80]!r}")
        status = parts[1]
        # 000-099 is no status (RFC 9110 section 15): read as an interim 1xx, it was
        # skipped and the request waited for another answer until it timed out.
        if len(status) != 3 or not status.isdigit() or status.startswith(b"0"):
            raise _framing_error(f"bad status code {status[:20]!r}")
        self.version = parts[0]
        self.status = int(status)
        self.reason = parts[2].strip() if len(parts) > 2 else b""
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):  # obsolete line folding: part of the last value
                if not headers:
                    raise _framing_error("folded line before any header")
                name, value = headers[-1]
                more = line.strip()
                headers[-1] = (name, value + b" " + more if value and more else value or more)
                continue
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                if not line.strip():
                    continue
                raise _framing_error(f"bad header line {line[:80]!r}")
            headers.append((name, value.strip(b" \t\r")))
        length: bytes | None = None
        coding = b""
        connection = b""
        # Read once folded lines are joined: a folded Transfer-Encoding is still one.
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length":
                # RFC 9110 8.6: a list of identical values (as some proxies send) is one
                values = {v.strip() for v in value.split(b",")} if b"," in value else {value}
                if len(values) > 1 and any(not v.isdigit() for v in values):
                    # "5," or "5, x": no list of lengths that disagree, but a member
                    # that is none (refused as h11 does; RFC 9112 6.3 item 5). A lone
                    # value is judged where it is used: beside Transfer-Encoding it is
                    # ignored, whatever it holds
                    raise _framing_error(f"bad Content-Length {value[:20]!r}")
                if length is not None:
                    values.add(length)
                if len(values) > 1:
                    raise _framing_error("conflicting Content-Length values")
                length = values.pop()
            elif lower == b"transfer-encoding":
                coding = coding + b"," + value if coding else value
            elif lower == b"connection":
                connection = connection + b"," + value if connection else value
        self.headers = headers
        self.chunked = False
        self.length: int | None = None
        if coding:
            # Only chunked, once: no other transfer coding is asked for (we send no TE),
            # and none is decoded here (it would be handed on still gzipped); a second
            # chunked is chunked data inside the chunks. "identity" (RFC 2616) is none.
            codings = [c.strip() for c in coding.lower().split(b",")]
            codings = [c for c in codings if c and c != b"identity"]
            if codings not in ([], [b"chunked"]):
                raise _framing_error(f"unsupported transfer coding {coding[:40]!r}")
            self.chunked = bool(codings)
        # "identity" alone is no transfer coding: the Content-Length frames the body
        # (RFC 2616 4.4). Set aside, the body ran to the close, which a kept-alive
        # connection never reaches: the fetch waited out its read timeout.
        if not self.chunked and length is not None:
            if len(length) > 18 or not length.isdigit():
                raise _framing_error(f"bad Content-Length {length[:20]!r}")
            self.length = int(length)
        tokens = {t.strip() for t in connection.lower().split(b",")}
        self.close = self.version != b"HTTP/1.1" or b"close" in tokens


class _Body(httpx.AsyncByteStream):
    """The response body, read as it arrives; the connection goes back to its origin's
    idle list when the body was read to the end and may be kept, and is closed
    otherwise (also when the caller closes the response early)."""

    def __init__(
        self,
        conn: _Connection,
        head: _Head,
        has_body: bool,
        timeout: float | None,
        release: Callable[[_Connection], None],
    ) -> None:
        self._conn: _Connection | None = conn
        self._head = head
        self._has_body = has_body
        self._timeout = timeout
        self._release = release
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            raise httpx.StreamClosed()
        head = self._head
        if not self._has_body:
            pass
        elif head.chunked:
            async for piece in self._chunked(conn):
                yield piece
        elif head.length is not None:
            async for piece in self._sized(conn, head.length):
                yield piece
        else:
            async for piece in self._to_close(conn):
                yield piece
        self._done = True
        await self.aclose()

    async def _sized(self, conn: _Connection, remaining: int) -> AsyncIterator[bytes]:
        buf = conn.protocol.buffer
        total = remaining
        while remaining:
            if not buf:
                if conn.protocol.eof:
                    raise conn.closed_error(
                        f"server closed the connection after {total - remaining} of "
                        f"{total} body bytes"
                    )
                await conn.wait(self._timeout)
                continue
            piece = conn.take(min(remaining, _PIECE))
            remaining -= len(piece)
            yield piece

    async def _chunked(self, conn: _Connection) -> AsyncIterator[bytes]:
        while True:
            batch = _whole_chunks(conn)
            if batch:
                yield batch
                continue
            # The buffer does not start with a whole chunk in the plain form: read one
            # chunk the careful way (waiting for its bytes, streaming a large one, and
            # raising on bad framing), then look at the buffer again.
            size_line = await conn.line(self._timeout)
            digits = size_line.split(b";", 1)[0].strip()
            try:
                # 1-16 hex digits only: int(_, 16) also reads "-5" (a negative size made
                # _sized yield empty pieces for ever, never awaiting, so no deadline
                # fired and no other feed ran), "+5", "0x5" and "5_0".
                if not digits or len(digits) > 16 or digits.strip(b"0123456789abcdefABCDEF"):
                    raise ValueError
                size = int(digits, 16)
            except ValueError:
                raise _framing_error(f"bad chunk size {size_line[:40]!r}") from None
            if size == 0:
                while await conn.line(self._timeout):  # trailers, up to an empty line
                    pass
                return
            async for piece in self._sized(conn, size):
                yield piece
            if await conn.line(self._timeout):
                raise _framing_error("chunk longer than its size")

    async def _to_close(self, conn: _Connection) -> AsyncIterator[bytes]:
        buf = conn.protocol.buffer
        while True:
            if buf:
                yield conn.take(_PIECE)
            elif conn.protocol.eof:
                if conn.protocol.error is not None:
                    raise conn.closed_error("connection lost inside the body")
                return
            else:
                await conn.wait(self._timeout)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # A body read to the close has left the connection closed: the release finds it
        # not reusable and closes it, so only Connection: close needs saying here.
        if self._done and not self._head.close:
            self._release(conn)
        else:
            conn.close()


class _Origin:
    __slots__ = ("idle",)

    def __init__(self) -> None:
        self.idle: list[_Connection] = []


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 (plain and TLS) with kept-alive connections per origin.

    ``backend`` opens the TCP connections (the fetcher's resolves and checks addresses
    first). At most ``keep_per_origin`` idle connections are kept per origin, for
    ``keepalive_expiry`` seconds; beyond ``idle_origins`` origins the least recently
    used one's idle connections are closed. Concurrency limits are the caller's.
    """

    def __init__(
        self,
        backend: AsyncioBackend,
        ssl_context: Callable[[], ssl.SSLContext],
        *,
        keep_per_origin: int = 2,
        keepalive_expiry: float = 5.0,
        idle_origins: int = 256,
    ) -> None:
        self._backend = backend
        self._make_ssl = ssl_context
        self._ssl: ssl.SSLContext | None = None  # made on the first https origin
        self._keep = keep_per_origin
        self._expiry = keepalive_expiry
        self._idle_origins = idle_origins
        self._origins: OrderedDict[tuple[bytes, bytes, int], _Origin] = OrderedDict()
        self._closed = False
        # Closed TLS connections whose shutdown is under way: aclose lets them finish.
        self._closing: set[AsyncioStream] = set()

    # -- connections

    def _take_idle(self, key: tuple[bytes, bytes, int]) -> _Connection | None:
        origin = self._origins.get(key)
        if origin is None:
            return None
        now = asyncio.get_running_loop().time()
        while origin.idle:
            conn = origin.idle.pop()
            if conn.reusable() and now - conn.idle_since < self._expiry:
                conn.reused = True
                return conn
            conn.close()
        return None

    def _release(self, key: tuple[bytes, bytes, int], conn: _Connection) -> None:
        if self._closed or not conn.reusable():
            conn.close()
            return
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin()
        else:
            self._origins.move_to_end(key)
        if len(origin.idle) >= self._keep:
            conn.close()
            return
        conn.idle_since = asyncio.get_running_loop().time()
        origin.idle.append(conn)
        while len(self._origins) > self._idle_origins:
            _, oldest = self._origins.popitem(last=False)
            for old in oldest.idle:
                old.close()

    async def _connect(self, url: httpx.URL, timeout: float | None) -> _Connection:
        host = url.raw_host.decode("ascii")
        https = url.raw_scheme == b"https"
        port = url.port or (443 if https else 80)
        try:
            stream = await self._backend.connect_tcp(host, port, timeout=timeout)
            if https:
                if self._ssl is None:
                    self._ssl = self._make_ssl()
                # A name written with the root's dot ("example.com.") is verified and
                # sent in SNI without it, which RFC 6066 §3 forbids there and no
                # certificate names; browsers and curl do the same.
                name = host.rstrip(".") or host
                stream = await stream.start_tls(self._ssl, server_hostname=name, timeout=timeout)
        except (httpcore.TimeoutException, httpcore.NetworkError) as e:
            raise _as_httpx(e) from e
        assert isinstance(stream, AsyncioStream)
        return _Connection(stream, self._closing)

    # -- one exchange

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.raw_scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        message = await _message(request)
        key = (url.raw_scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))
        conn = self._take_idle(key)
        while True:
            if conn is None:
                conn = await self._connect(url, timeouts.get("connect"))
            try:
                head = await self._exchange(conn, message, timeouts)
                break
            except _Stale:
                conn.close()
                conn = None  # once: a new connection is never stale
            except BaseException:
                conn.close()
                raise
        has_body = not (
            request.method == "HEAD" or head.status in _NO_BODY_STATUSES or head.status < 200
        )
        return httpx.Response(
            status_code=head.status,
            headers=head.headers,
            stream=_Body(
                conn,
                head,
                has_body,
                timeouts.get("read"),
                lambda c: self._release(key, c),
            ),
            extensions={"http_version": head.version, "reason_phrase": head.reason},
        )

    async def _exchange(
        self, conn: _Connection, message: bytes, timeouts: dict[str, float | None]
    ) -> _Head:
        try:
            await conn.stream.write(message, timeouts.get("write"))
        except httpcore.WriteError as e:
            if conn.reused:
                raise _Stale() from e
            raise _as_httpx(e) from e
        except httpcore.TimeoutException as e:
            raise _as_httpx(e) from e
        read_timeout = timeouts.get("read")
        while True:
            raw = await self._read_head(conn, read_timeout)
            head = _Head(raw)
            if head.status == 408 and conn.reused:
                # A server ending an idle kept-alive connection may say so with a 408
                # before closing it; our request crossed it on the wire and was never
                # read. Not an answer: the request goes again on a new connection, as
                # Chromium and Go retry it. (A 408 on a new connection is an answer.)
                raise _Stale()
            if head.status >= 200:
                return head
            if head.status == 101:
                raise httpx.RemoteProtocolError("unexpected protocol switch (HTTP 101)")
            conn.reused = False  # an interim answer arrived: the connection is live

    async def _read_head(self, conn: _Connection, timeout: float | None) -> bytes:
        buf = conn.protocol.buffer
        start = 0
        while True:
            # A head starts "HTTP/1." (after blanks _Head skips; it refuses anything
            # else): bytes that cannot begin one (another protocol's greeting,
            # "SSH-2.0-...", "220 ... ESMTP") are refused as they come, not once a head
            # that never ends has timed out.
            lead = bytes(buf[:80]).lstrip(_BLANKS)
            if lead[: len(_STATUS_START)] != _STATUS_START[: len(lead)]:
                if conn.reused:
                    # On a kept-alive connection these are the last answer's leftovers:
                    # a broken server's body after a 304 (or to a HEAD), sent in a later
                    # segment than its head, so that the connection looked clean when
                    # it was taken. Read as this answer, a feed that is fine failed
                    # with "bad status line b'<rss...'": the request goes again on a
                    # new connection, once, as for a connection the server closed.
                    raise _Stale()
                first = bytes(buf[:80]).split(b"\n", 1)[0].rstrip(b"\r")
                raise _framing_error(f"bad status line {first!r}")
            found = _HEAD_END.search(buf, start)
            end = found.start() if found else -1
            if end > MAX_HEAD or (end < 0 and len(buf) > MAX_HEAD):
                raise httpx.RemoteProtocolError(f"response head longer than {MAX_HEAD} bytes")
            if found:
                return conn.take(found.end())[:end]
            if conn.protocol.eof:
                if not buf and conn.reused:
                    raise _Stale()
                if not buf:
                    raise conn.closed_error("server disconnected without sending a response")
                raise conn.closed_error("server closed the connection inside the response head")
            start = max(0, len(buf) - 3)
            await conn.wait(timeout)

    async def aclose(self) -> None:
        self._closed = True
        origins, self._origins = self._origins, OrderedDict()
        for origin in origins.values():
            for conn in origin.idle:
                conn.close()
        # Closing a TLS connection only starts its shutdown; a loop that ends before it
        # finishes leaves the socket to the garbage collector.
        await finish_closing(list(self._closing))


async def _message(request: httpx.Request) -> bytes:
    """The request as bytes; refuses CR, LF or NUL anywhere they would split a line."""
    url = request.url
    target = url.raw_path or b"/"
    head = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    raw = request.headers.raw
    for name, value in raw:
        head += (name, b": ", value, b"\r\n")
    head.append(b"\r\n")
    message = b"".join(head)
    lines = len(raw) + 2
    if (
        message.count(b"\n") != lines
        or message.count(b"\r") != lines
        or b"\0" in message
        or target.count(b" ")
    ):
        raise httpx.LocalProtocolError("request line or header contains CR, LF, NUL or space")
    stream: Any = request.stream
    content = b"".join([part async for part in stream])
    return message + content if content else message
