"""An httpcore network backend on plain asyncio (a Protocol and a byte buffer).

httpcore talks to the network through a backend; on asyncio its own is anyio's, whose
cancel scopes, typed attributes and stream wrappers cost more CPU than the HTTP parsing
itself on a poll that is all 304s (measured with py-spy: ~26 % of the fetch loop's time,
``fail_after`` and ``get_extra_info`` alone ~10 %). This one does what httpcore needs and
no more: a read returns what the protocol has buffered, waiting (with the timeout)
only when there is nothing; a write hands the bytes to the transport and waits only
while the transport asks us to pause. Errors map to httpcore's exceptions exactly as
its anyio backend maps them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any

import httpcore

__all__ = ["AsyncioBackend", "AsyncioStream", "finish_closing"]

#: Stop reading from the socket while this much is buffered and unread (the rest waits
#: in the kernel, as it does with a plain socket read; 64 connections each buffering a
#: whole feed cost the poll ~20 MB).
_HIGH_WATER = 64 * 1024
#: How long closing waits for TLS shutdowns (the server's close_notify) before aborting.
TLS_CLOSE_S = 1.0


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        self.lost = False  # connection_lost was called: the socket is closed
        self.on_lost: Callable[[], None] | None = None
        self._lost_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close the transport: HTTP/1.1 never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.lost = True
        if self._lost_waiter is not None and not self._lost_waiter.done():
            self._lost_waiter.set_result(None)
        if self.on_lost is not None:
            self.on_lost()
        if exc is not None:
            self.error = exc
        self._wake_reader()
        self.writing_paused = False
        self._wake_writer()

    def take(self, n: int) -> bytes:
        """Up to ``n`` buffered bytes, removed from the buffer; reading resumes once the
        buffer has drained to a quarter of the high-water mark."""
        data = bytes(self.buffer[:n])
        self.skip(n)
        return data

    def skip(self, n: int) -> None:
        """Remove up to ``n`` buffered bytes unread (a caller that has copied them out
        itself); reading resumes as after :meth:`take`."""
        del self.buffer[:n]
        if self.reading_paused and len(self.buffer) <= _HIGH_WATER // 4:
            self.reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    def lost_future(self) -> asyncio.Future[None]:
        """Done once the transport has called connection_lost."""
        if self._lost_waiter is None:
            self._lost_waiter = asyncio.get_running_loop().create_future()
            if self.lost:
                self._lost_waiter.set_result(None)
        return self._lost_waiter

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writer()

    def _wake_reader(self) -> None:
        waiter, self._read_waiter = self._read_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_readable(self, timeout: float | None) -> None:
        waiter = self._read_waiter = asyncio.get_running_loop().create_future()
        await _wait(waiter, timeout, httpcore.ReadTimeout)

    async def wait_writable(self, timeout: float | None) -> None:
        waiter = self._write_waiter = asyncio.get_running_loop().create_future()
        await _wait(waiter, timeout, httpcore.WriteTimeout)


async def _wait(
    waiter: asyncio.Future[None], timeout: float | None, error: type[Exception]
) -> None:
    if timeout is None:
        await waiter
        return
    handle = asyncio.get_running_loop().call_later(timeout, _expire, waiter)
    try:
        await waiter
    finally:
        handle.cancel()
    if waiter.result() is _EXPIRED:
        raise error("timed out")


_EXPIRED: Any = object()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(_EXPIRED)


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    @property
    def transport(self) -> asyncio.Transport:
        return self._transport

    @property
    def protocol(self) -> _Protocol:
        """The protocol holding the bytes received and not yet read."""
        return self._protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self._protocol
        if not p.buffer and not p.eof:
            await p.wait_readable(timeout)
        if p.buffer:
            return p.take(max_bytes)
        if p.error is not None:
            raise httpcore.ReadError(str(p.error) or type(p.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        p = self._protocol
        if p.error is not None or self._transport.is_closing():
            raise httpcore.WriteError(str(p.error or "connection closed"))
        self._transport.write(buffer)
        if p.writing_paused:
            await p.wait_writable(timeout)
            if p.error is not None:
                raise httpcore.WriteError(str(p.error))

    @property
    def closing_tls(self) -> bool:
        """Closed while a TLS shutdown is still under way: closing a TLS transport only
        starts the close_notify exchange, and the socket stays open until the server
        answers (or asyncio's 30 s shutdown timeout); a loop that ends first leaves it
        to the garbage collector ("unclosed transport", "unclosed socket")."""
        t = self._transport
        return (
            t.is_closing()
            and not self._protocol.lost
            and t.get_extra_info("ssl_object") is not None
        )

    async def aclose(self) -> None:
        self._transport.close()
        if self.closing_tls:
            await finish_closing([self])

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport,
                    self._protocol,
                    ssl_context,
                    server_hostname=server_hostname,
                )
        except TimeoutError as e:
            self._transport.close()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from e
        except (OSError, ssl.SSLError, EOFError) as e:
            self._transport.close()
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        t = self._transport
        if info == "ssl_object":
            return t.get_extra_info("ssl_object")
        if info == "client_addr":
            return t.get_extra_info("sockname")
        if info == "server_addr":
            return t.get_extra_info("peername")
        if info == "socket":
            return t.get_extra_info("socket")
        if info == "is_readable":
            # httpcore asks before reusing an idle connection: readable means the
            # server closed it (or sent something unasked), so it must not be reused.
            p = self._protocol
            return bool(p.buffer) or p.eof or t.is_closing()
        return None


async def finish_closing(streams: Iterable[AsyncioStream], timeout: float = TLS_CLOSE_S) -> None:
    """Wait up to ``timeout`` for closed ``streams`` to finish closing (their TLS
    shutdowns, all at once), then abort the ones still open, and let the loop run the
    aborts' callbacks, which close the sockets."""
    streams = [s for s in streams if not s.protocol.lost]
    if not streams:
        return
    await asyncio.wait([s.protocol.lost_future() for s in streams], timeout=timeout)
    stragglers = [s for s in streams if not s.protocol.lost]
    for s in stragglers:
        s.transport.abort()
    if stragglers:
        await asyncio.sleep(0)  # abort() closes the socket in a callback: let it run


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        protocol = _Protocol()
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    lambda: protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(f"connecting to {host} timed out") from e
        except OSError as e:
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        sock: socket.socket | None = transport.get_extra_info("socket")
        if sock is not None:  # asyncio already sets TCP_NODELAY
            for option in socket_options or ():
                sock.setsockopt(*option)
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not supported")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
