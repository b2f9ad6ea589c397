"""The fetch stage and its stored outcomes, session 28 (second pass): the HTTP/1.1
transport against a raw local server on 127.0.0.1 that answers with scripted bytes,
and polls end to end with real SQLite files."""

from __future__ import annotations

import httpx
import pytest
from test_http11 import _run


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
