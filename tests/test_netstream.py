"""aggregator.netstream: the asyncio network backend under httpcore, against real local
servers (tests/httpserver.py and raw sockets): bodies larger than the read buffer's
high-water mark, a keep-alive connection the server closed while idle, timeouts and
connection errors mapped to httpcore's exceptions."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import httpcore
import pytest
from httpserver import LocalServer, closed_port

from aggregator.netstream import AsyncioBackend


def _pool() -> httpcore.AsyncConnectionPool:
    return httpcore.AsyncConnectionPool(network_backend=AsyncioBackend(), max_connections=1)


async def _get(pool: httpcore.AsyncConnectionPool, url: str, read: float = 5.0) -> bytes:
    response = await pool.request("GET", url, extensions={"timeout": {"read": read}})
    assert response.status == 200
    return response.content


def test_large_body_arrives_whole_through_the_paused_buffer() -> None:
    body = hashlib.sha256(b"x").digest() * (5 * 1024 * 1024 // 32)  # 5 MiB, > high water
    with LocalServer() as server:
        url = server.route("/big", body=body, content_type="application/octet-stream")

        async def run() -> bytes:
            async with _pool() as pool, pool.stream("GET", url) as response:
                chunks = []
                async for chunk in response.aiter_stream():
                    chunks.append(chunk)
                    await asyncio.sleep(0.001)  # a slow consumer: the socket must pause
                return b"".join(chunks)

        assert asyncio.run(run()) == body


def test_connection_is_reused_and_a_server_closed_one_is_not() -> None:
    with LocalServer() as server:
        url = server.route("/a", body=b"hello")

        async def run() -> list[bytes]:
            async with _pool() as pool:
                got = [await _get(pool, url), await _get(pool, url)]
                assert server.connections_opened == 1  # kept alive and reused
                for conn in list(server._connections):  # the server drops idle connections
                    conn.shutdown(socket.SHUT_RDWR)
                await asyncio.sleep(0.1)
                got.append(await _get(pool, url))  # seen as closed: a new connection
                assert server.connections_opened == 2
                return got

        assert asyncio.run(run()) == [b"hello"] * 3


def test_read_timeout_is_httpcore_read_timeout() -> None:
    with LocalServer() as server:
        url = server.route("/hang", hang=True)

        async def run() -> None:
            async with _pool() as pool:
                await _get(pool, url, read=0.3)

        started = time.monotonic()
        with pytest.raises(httpcore.ReadTimeout):
            asyncio.run(run())
        assert time.monotonic() - started < 3


def test_refused_connection_is_connect_error() -> None:
    async def run() -> None:
        async with _pool() as pool:
            await _get(pool, f"http://127.0.0.1:{closed_port()}/")

    with pytest.raises(httpcore.ConnectError):
        asyncio.run(run())


@pytest.fixture
def reset_after_headers() -> Iterator[str]:
    """A raw server that sends headers promising 1,000 bytes, 10 of them, then a reset."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
            time.sleep(0.1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # linger 0: RST

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    stop.set()
    thread.join()
    listener.close()


def test_connection_dropped_mid_body_is_an_error(reset_after_headers: str) -> None:
    async def run() -> None:
        async with _pool() as pool:
            await _get(pool, reset_after_headers)

    with pytest.raises((httpcore.ReadError, httpcore.RemoteProtocolError)):
        asyncio.run(run())
