"""Fetching and scheduling, session 27 (second pass): a 304 to a request sent without
validators, a Retry-After past the cap, a repeated Date header, the lease a "could not
store" fallback writes. A real HTTP server on 127.0.0.1, real SQLite and PostgreSQL;
nothing of the project is mocked."""

from __future__ import annotations

import pytest
from httpserver import LocalServer
from test_fetch_s27 import RSS, _fetch

from aggregator.errors import FetchError
from aggregator.types import CacheState

NOT_MODIFIED = b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 0\r\n\r\n'


def test_a_304_to_a_request_sent_without_validators_is_no_unchanged_feed(
    server: LocalServer,
) -> None:
    """A stored ETag that cannot be sent (a CR in it) and no Last-Modified: the GET goes
    out unconditional, yet a 304 to it was taken for "unchanged" because validators were
    stored, and the feed, whatever it now held, was never read again. A 304 to a request
    without If-None-Match or If-Modified-Since is an error, as with none stored."""
    url = server.route("/feed.xml", raw=NOT_MODIFIED)
    with pytest.raises(FetchError) as info:
        _fetch(url, CacheState(etag='"a\rb"', body_hash="h"))
    assert info.value.message == "HTTP 304 to an unconditional request"
    seen = server.requests[-1].headers
    assert "if-none-match" not in seen and "if-modified-since" not in seen
    # sent conditionally, the same 304 is the feed unchanged
    server.route("/feed.xml", body=RSS, etag='"v1"')
    assert _fetch(url, CacheState(etag='"v1"')).status == "not_modified"
