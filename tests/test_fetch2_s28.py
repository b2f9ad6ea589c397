"""The fetch stage and its stored outcomes, session 28 (second pass): the HTTP/1.1
transport against a raw local server on 127.0.0.1 that answers with scripted bytes,
and polls end to end with real SQLite files."""

from __future__ import annotations

import httpx
import pytest
from test_http11 import OK, Scripted, _run


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"5,", id="trailing-comma"),
        pytest.param(b",5", id="leading-comma"),
        pytest.param(b"5, x", id="not-a-number"),
    ],
)
def test_a_content_length_list_with_an_empty_or_bad_member_says_so(value: bytes) -> None:
    # Refused (RFC 9112 §6.3, as h11 does), but the two members are not two lengths
    # that disagree: "conflicting Content-Length values" sent the user looking for a
    # second header that is not there.
    got, _ = _run([b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nhello"])
    assert isinstance(got[0], httpx.RemoteProtocolError), got[0]
    assert "bad Content-Length" in str(got[0]), got[0]
    assert "conflicting" not in str(got[0])


def test_bytes_left_by_a_304_on_a_kept_connection_are_not_the_next_answer() -> None:
    # A broken server sends a body after its 304, in a later segment: it arrives once
    # the next request went out on the kept-alive connection, where it was read as that
    # request's answer ("bad status line b'<rss ...'"), failing a feed that is fine.
    # On a reused connection what cannot start a response is the connection's
    # leftovers: the request goes again on a new connection, once.
    late = b"<rss><channel><title>left over</title></channel></rss>"
    answers = [b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n', late + OK, OK]
    got, server = _run(answers, ["/a", "/b"])
    assert [(g[0], g[1]) for g in got] == [(304, b""), (200, b"hello")]
    assert server.connections == 2


def test_garbage_on_a_new_connection_is_still_refused() -> None:
    got, server = _run([b"<rss/>" + Scripted.CLOSE, OK])
    assert isinstance(got[0], httpx.RemoteProtocolError), got[0]
    assert "status line" in str(got[0])
    assert server.connections == 1
