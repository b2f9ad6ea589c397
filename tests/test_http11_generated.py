"""aggregator.http11 on generated responses: heads and bodies put together from the pieces
servers send, well and badly (status lines, lengths, codings, chunk sizes, folded and
bare-LF lines, bytes outside ASCII), two requests on one connection. Whatever comes back,
each request ends as a response or as one of httpx's errors, never as another exception
or a hang; and where httpx's own transport (httpcore + h11, the strict reference) reads
the same bytes, ours reads the same status, headers and body for the first response.

Run with ``AGGREGATOR_FUZZ_EXAMPLES=20000`` for a longer search than CI's."""

from __future__ import annotations

import asyncio
import os
import ssl
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http11 import Scripted

from aggregator.http11 import Http11Transport
from aggregator.netstream import AsyncioBackend

EXAMPLES = int(os.environ.get("AGGREGATOR_FUZZ_EXAMPLES", "100"))
TIMEOUT = 0.25

STATUS = st.sampled_from(
    [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.0 200 OK",
        b"HTTP/1.1 200",
        b"HTTP/1.1 200 ",
        b"HTTP/1.1 304 Not Modified",
        b"HTTP/1.1 204 No Content",
        b"HTTP/1.1 404 Not Found",
        b"HTTP/1.1 301 Moved Permanently",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK",
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK",
        b"HTTP/1.1 200 \xc3\xa9t\xc3\xa9",
        b"HTTP/1.1 200 \xff",
        b"HTTP/1.1 999 Odd",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 +20 OK",
        b"HTTP/1.1 \xd9\xa5\xd9\xa0\xd9\xa0 OK",
        b"HTTP/1.2 200 OK",
        b"HTTP/1.1  200  OK",
        b"http/1.1 200 OK",
    ]
)
LENGTH = st.sampled_from(
    [
        *(b"0", b"5", b"4", b"6", b"005", b" 5", b"5 ", b"+5", b"-5", b"5_0", b"0x5"),
        *(b"5, 5", b"5, 6", b"99999999999999999999", b"\xd9\xa5", b"", b"5\x00"),
    ]
)
CODING = st.sampled_from(
    [b"chunked", b"Chunked", b"gzip, chunked", b"chunked, gzip", b"gzip", b"identity", b""]
)
HEADER = st.one_of(
    LENGTH.map(lambda v: b"Content-Length: " + v),
    CODING.map(lambda v: b"Transfer-Encoding: " + v),
    CODING.map(lambda v: b"Transfer-Encoding:\r\n " + v),
    LENGTH.map(lambda v: b"Content-Length:\n\t" + v),
    st.sampled_from([b"close", b"keep-alive", b"Close", b"upgrade", b""]).map(
        lambda v: b"Connection: " + v
    ),
    st.sampled_from(
        [
            b'ETag: "abc"',
            b"Last-Modified: Tue, 03 Jun 2025 09:05:00 GMT",
            b"Content-Type: application/rss+xml; charset=utf-8",
            b"X-Folded: one\r\n two",
            b"X-Folded-LF: one\n two",
            b" leading-space: x",
            b"No-Colon",
            b"Bad Name: x",
            b": empty name",
            b"X-Latin: caf\xe9",
            b"X-Utf8: caf\xc3\xa9",
            b"X-Nul: a\x00b",
            b"X-Tab:\tvalue\t",
            b"Location: /elsewhere",
            b"Retry-After: 120",
        ]
    ),
)
EOL = st.sampled_from([b"\r\n", b"\n"])
CHUNK_SIZE = st.sampled_from([b"5", b"05", b"5;ext=1", b"5 ", b"-5", b"+5", b"0x5", b"g", b""])


@st.composite
def body(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["raw", "chunked"]))
    if kind == "raw":
        return draw(st.sampled_from([b"", b"hello", b"hell", b"hello!", b"<rss/>"]))
    chunks = draw(st.lists(st.tuples(CHUNK_SIZE, st.sampled_from([b"hello", b"hell"])), max_size=3))
    out = b"".join(size + b"\r\n" + data + b"\r\n" for size, data in chunks)
    last = draw(st.sampled_from([b"0\r\n\r\n", b"0\r\nX-Trailer: t\r\n\r\n", b"0\r\n", b""]))
    return out + last


@st.composite
def response(draw: st.DrawFn) -> bytes:
    eol = draw(EOL)
    lines = [draw(STATUS), *draw(st.lists(HEADER, max_size=5))]
    head = eol.join(lines) + eol + draw(st.sampled_from([eol, b"\r\n", b"\n"]))
    end = draw(st.sampled_from([b"", Scripted.CLOSE]))
    return head + draw(body()) + end


_FRAMING = frozenset({"content-length", "transfer-encoding"})


def _ours() -> httpx.AsyncClient:
    transport = Http11Transport(AsyncioBackend(), ssl.create_default_context)
    return httpx.AsyncClient(transport=transport, timeout=TIMEOUT)


def _reference() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=TIMEOUT)


async def _two_requests(answers: list[bytes], client: httpx.AsyncClient) -> list[Any]:
    out: list[Any] = []
    async with Scripted(answers) as server, client:
        for _ in answers:
            try:
                r = await asyncio.wait_for(client.get(server.url + "/"), 4 * TIMEOUT)
            except httpx.HTTPError as e:
                out.append(e)
            else:
                # The framing headers are compared through the body they frame: h11 folds
                # repeated identical Content-Length headers into one and lower-cases
                # Transfer-Encoding.
                headers = [(k, v) for k, v in r.headers.multi_items() if k not in _FRAMING]
                out.append((r.status_code, headers, r.content))
    return out


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(first=response(), second=response())
def test_any_response_is_read_or_is_an_httpx_error(first: bytes, second: bytes) -> None:
    ours = asyncio.run(_two_requests([first, second], _ours()))
    assert len(ours) == 2
    for got in ours:  # wait_for's TimeoutError (a hang) or anything else fails the test
        assert isinstance(got, tuple | httpx.HTTPError), got
    reference = asyncio.run(_two_requests([first, second], _reference()))
    if isinstance(ours[0], tuple) and isinstance(reference[0], tuple):
        assert ours[0] == reference[0], (first, ours[0], reference[0])
