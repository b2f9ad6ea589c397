"""aggregator.http11: the fetcher's HTTP/1.1 transport against a raw local server that
answers each request with scripted bytes, so framing edge cases (chunked bodies,
close-delimited bodies, interim responses, sloppy heads) and connection reuse are
exercised on a real socket."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from aggregator.http11 import MAX_HEAD, MAX_LINE, Http11Transport
from aggregator.netstream import AsyncioBackend


class Scripted:
    """Serves ``answers`` in order, one per request (across connections); after an
    answer ending in ``CLOSE`` the server closes that connection."""

    CLOSE = b"<close>"

    def __init__(self, answers: Sequence[bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Scripted:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(head)
                answer = self.answers.pop(0)
                close = answer.endswith(self.CLOSE)
                writer.write(answer.removesuffix(self.CLOSE))
                await writer.drain()
                if close:
                    return
        finally:
            writer.close()


def _client() -> httpx.AsyncClient:
    transport = Http11Transport(AsyncioBackend(), ssl.create_default_context)
    return httpx.AsyncClient(transport=transport, timeout=5.0)


Got = list[Any]  # (status, body, headers) per request, or the httpx error raised


def _run(answers: Sequence[bytes], paths: Sequence[str] = ("/",)) -> tuple[Got, Scripted]:
    async def go() -> tuple[Got, Scripted]:
        async with Scripted(answers) as server, _client() as client:
            out: Got = []
            for path in paths:
                try:
                    r = await client.get(server.url + path)
                    out.append((r.status_code, r.content, r.headers))
                except httpx.HTTPError as e:
                    out.append(e)
            return out, server

    return asyncio.run(go())


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def test_keep_alive_reuses_one_connection() -> None:
    got, server = _run([OK, OK, OK], ["/a", "/b", "/c"])
    assert [g[1] for g in got] == [b"hello"] * 3
    assert server.connections == 1
    assert server.requests[1].startswith(b"GET /b HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in server.requests[0].lower()


def test_connection_close_and_http10_are_not_reused() -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi" + Scripted.CLOSE
    old = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi" + Scripted.CLOSE
    got, server = _run([close, old, OK], ["/", "/", "/"])
    assert [g[1] for g in got] == [b"hi", b"hi", b"hello"]
    assert server.connections == 3


def test_chunked_body_with_extensions_and_trailers() -> None:
    body = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n1\r\n \r\n"
        b"5\r\nworld\r\n0\r\nExpires: never\r\n\r\n"
    )
    got, server = _run([body, OK], ["/", "/"])
    assert got[0][1] == b"hello world"
    assert got[1][1] == b"hello"
    assert server.connections == 1  # the trailers were consumed: the connection is clean


def test_many_small_chunks_are_read_in_pieces_of_at_most_64k() -> None:
    # A body of 1-byte chunks is read a buffer's worth at a time, not a piece per chunk;
    # chunks in other forms (an extension, LF line ends, one larger than a piece) and the
    # trailers after them are read as before, and the connection stays clean.
    tiny = b"".join(b"1\r\n%c\r\n" % (i % 26 + 97) for i in range(100_000))
    data = bytes(i % 26 + 97 for i in range(100_000))
    large = b"L" * 70_000
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + tiny
        + b"%x\r\n%s\r\n" % (len(large), large)
        + b"3;ext=1\r\nxyz\r\n003\n123\n"
        + tiny
        + b"0\r\nX-Trailer: t\r\n\r\n"
    )

    async def go() -> tuple[list[bytes], int, int]:
        async with Scripted([answer, OK]) as server, _client() as client:
            async with client.stream("GET", server.url) as r:
                pieces = [piece async for piece in r.aiter_raw()]
            again = await client.get(server.url)
            return pieces, again.status_code, server.connections

    pieces, status, connections = asyncio.run(go())
    assert b"".join(pieces) == data + large + b"xyz123" + data
    assert max(len(p) for p in pieces) <= 64 * 1024
    assert len(pieces) < 1_000  # not one per chunk
    assert (status, connections) == (200, 1)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b"1\r\na\r\n3\nbcd\n2;x=y\r\nef\r\n01\r\ng\r\n1\r\nh\r\n1\r\ni\r\n0\r\nT: t\r\n\r\n",
            b"abcdefghi",
        ),
        (b"1\r\na\r\n1\r\nb\r\n1\r\ncX\r\n1\r\nd\r\n0\r\n\r\n", "chunk longer"),
        (b"1\r\na\r\n1\r\nb\r\n-1\r\nc\r\n0\r\n\r\n", "chunk size"),
        (b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n", "inside a chunked body"),
    ],
)
def test_chunked_body_split_at_every_byte(body: bytes, expected: bytes | str) -> None:
    # Each answer arrives in two writes, split at every byte of the body in turn: what
    # the buffer holds whole at a time must not change what is read or refused.
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    splits = list(range(len(head), len(head) + len(body)))
    todo = list(splits)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        at = todo.pop(0)
        answer = head + body
        writer.write(answer[:at])
        await writer.drain()
        await asyncio.sleep(0.002)  # let the first part be read on its own
        writer.write(answer[at:])
        await writer.drain()
        writer.close()

    async def go() -> list[Any]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        out: list[Any] = []
        try:
            async with _client() as client:
                for _ in splits:
                    try:
                        out.append((await client.get(url, headers={"Connection": "close"})).content)
                    except httpx.HTTPError as e:
                        out.append(e)
        finally:
            server.close()
        return out

    for at, got in zip(splits, asyncio.run(go()), strict=True):
        if isinstance(expected, bytes):
            assert got == expected, at
        else:
            assert isinstance(got, httpx.RemoteProtocolError), (at, got)
            assert expected in str(got), (at, got)


def test_transfer_encoding_wins_over_content_length() -> None:
    body = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nwiki\r\n0\r\n\r\n"
    )
    got, _ = _run([body])
    assert got[0][1] == b"wiki"


def test_body_without_length_runs_to_the_end_of_the_connection() -> None:
    got, server = _run([b"HTTP/1.1 200 OK\r\n\r\nuntil close" + Scripted.CLOSE, OK], ["/", "/"])
    assert got[0][1] == b"until close"
    assert got[1][1] == b"hello"
    assert server.connections == 2


def test_no_body_for_304_204_and_interim_responses_are_skipped() -> None:
    answers = [
        b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n',
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK,
    ]
    got, server = _run(answers, ["/", "/", "/"])
    assert [(g[0], g[1]) for g in got] == [(304, b""), (204, b""), (200, b"hello")]
    assert got[0][2]["etag"] == '"x"'
    assert server.connections == 1


def test_sloppy_but_unambiguous_heads_are_read() -> None:
    answers = [
        b"HTTP/1.1 200\nContent-Length: 2\nX-Folded: one\n two\n\nok",  # bare LF, no reason
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",  # RFC 9110 8.6
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Empty:\r\n folded\r\n \r\n\r\nok",
    ]
    got, _ = _run(answers, ["/", "/", "/", "/"])
    assert got[0][1] == b"ok"
    assert got[0][2]["x-folded"] == "one two"
    assert got[1][1] == b"ok"
    assert got[2][1] == b"ok"
    assert got[3][1] == b"ok" and got[3][2]["x-empty"] == "folded"  # no space added


def test_a_folded_framing_header_frames_the_body() -> None:
    # The framing is read after folded lines are joined: "Transfer-Encoding:" with
    # "chunked" on the next line is a chunked body, not one running to the close.
    answers = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\t3\r\n\r\nyes",
        OK,
    ]
    got, server = _run(answers, ["/", "/", "/"])
    assert [(g[0], g[1]) for g in got] == [(200, b"ok"), (200, b"yes"), (200, b"hello")]
    assert server.connections == 1  # each body was framed exactly: the connection was kept


def test_a_head_ends_at_its_first_empty_line_whatever_the_line_ends() -> None:
    # A script's bare LF under a server's CRLF: the head is "HTTP/1.1 200 OK\n\r\n" and
    # the body starts after it (it was read from the first CRLF CRLF, two bytes late, so
    # the rest of the body was left on the connection to be read as the next response).
    answers = [
        b"HTTP/1.1 200 OK\n\r\n\r\nhello" + Scripted.CLOSE,
        b'HTTP/1.1 200 OK\nContent-Length: 4\r\nETag: "e"\r\n\r\nbody',
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\n\nok",
    ]
    got, _ = _run(answers, ["/", "/", "/"])
    assert got[0][1] == b"\r\nhello"
    assert got[1][1] == b"body" and got[1][2]["etag"] == '"e"'
    assert got[2][1] == b"ok"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "conflicting"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", "conflicting"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokay\r\n", "chunk longer"),
        # transfer codings other than chunked, never asked for (no TE header): the body
        # was handed on still gzipped, or chunked once more
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "transfer coding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok" + Scripted.CLOSE,
            "transfer coding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nok\r\n0\r\n\r\n",
            "transfer coding",
        ),
        (b"HTTP/2 200\r\n\r\n", "status line"),
        (b"ICY 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "status code"),
        # below 100: was taken for an interim answer, and the request waited for another
        (b"HTTP/1.1 000 Unknown\r\nContent-Length: 2\r\n\r\nok", "status code"),
        (b"HTTP/1.1 099 Odd\r\n\r\n", "status code"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header line"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "protocol switch"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort" + Scripted.CLOSE, "5 of 10"),
        (b"HTTP/1.1 200 OK\r\n" + Scripted.CLOSE, "inside the response head"),
        (Scripted.CLOSE, "without sending a response"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n", "longer than"),
        # a chunk-size or trailer line past the limit, its line end in the same read
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2;x=" + b"a" * MAX_LINE + b"\r\nok\r\n0\r\n\r\n",
            "line too long",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nok\r\n0\r\nX: " + b"a" * MAX_LINE + b"\r\n\r\n",
            "line too long",
        ),
    ],
)
def test_malformed_responses_are_protocol_errors(answer: bytes, message: str) -> None:
    got, _ = _run([answer])
    assert isinstance(got[0], httpx.RemoteProtocolError), got[0]
    assert message in str(got[0])


def test_another_protocols_greeting_is_refused_at_once() -> None:
    # An SSH or SMTP server greets first, then waits for the client's line: the head
    # never ends, and the fetch waited out the read timeout, told as a server that
    # "stopped sending". What can never become a status line is refused as it comes.
    for greeting in (b"SSH-2.0-OpenSSH_9.6\r\n", b"220 mail.example.com ESMTP"):
        started = time.monotonic()
        got, _ = _run([greeting, OK])  # (the second answer keeps the connection open)
        assert isinstance(got[0], httpx.RemoteProtocolError), got[0]
        assert "status line" in str(got[0])
        assert time.monotonic() - started < 2


def test_a_kept_alive_connection_closed_by_the_server_is_replaced() -> None:
    # The server closes after the first answer without saying so: the second request
    # finds the connection closed and goes out again on a new one.
    got, server = _run([OK + Scripted.CLOSE, OK], ["/", "/"])
    assert [g[1] for g in got] == [b"hello", b"hello"]
    assert server.connections == 2


def test_header_injection_is_refused_before_sending() -> None:
    async def go() -> None:
        async with Scripted([OK]) as server, _client() as client:
            with pytest.raises(httpx.LocalProtocolError):
                await client.get(server.url, headers={"If-None-Match": '"a"\r\nX-Evil: 1'})
            assert server.requests == []

    asyncio.run(go())


def test_early_close_drops_the_connection_and_streams_are_bounded() -> None:
    big = gzip.compress(b"x" * 200_000)
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    )

    async def go() -> tuple[int, int]:
        async with Scripted([answer, OK]) as server, _client() as client:
            async with client.stream("GET", server.url) as r:
                async for chunk in r.aiter_raw():
                    assert len(chunk) <= 64 * 1024
                    break  # stop reading mid-body: the connection cannot be reused
            again = await client.get(server.url)
            return again.status_code, server.connections

    assert asyncio.run(go()) == (200, 2)


def test_read_timeout_while_waiting_for_the_head() -> None:
    async def go() -> None:
        accepted: list[asyncio.StreamWriter] = []  # never answered, closed at the end
        server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = Http11Transport(AsyncioBackend(), ssl.create_default_context)
        async with httpx.AsyncClient(transport=transport, timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://127.0.0.1:{port}/")
        server.close()
        for writer in accepted:
            writer.close()

    asyncio.run(go())


def test_refused_connection_is_connect_error() -> None:
    async def go() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        async with _client() as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")

    asyncio.run(go())
