"""Fetching and scheduling, session 27 (second pass): a 304 to a request sent without
validators, a Retry-After past the cap, a repeated Date header, the lease a "could not
store" fallback writes. A real HTTP server on 127.0.0.1, real SQLite and PostgreSQL;
nothing of the project is mocked."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from httpserver import LocalServer, Request
from test_fetch_s27 import RSS, Clock, _fetch, app, clock  # noqa: F401  (app, clock: fixtures)
from test_pg_daemons_audit import wait_until
from test_poll_containment import poison

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.errors import FetchError
from aggregator.store import open_store
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


def test_a_could_not_store_error_leaves_the_lease_another_poll_took_over(
    tmp_path: Path, db_url: str, server: LocalServer
) -> None:
    """A poll whose lease lapsed and was taken over writes its outcome late; when that
    write fails and the failure is recorded instead ("could not store"), the fallback
    write was a new check without the poll's ``claimed_by`` and released the lease
    whoever held it: a third poll could take the feed the second still fetched."""
    answer, held = threading.Event(), threading.Event()

    def body(_: Request) -> bytes:
        if held.is_set():
            answer.wait(10)
        return RSS

    url = server.route("/feed.xml", body=body)
    ticks = Clock()
    s = Settings.from_env(
        {}, data_dir=tmp_path, database_url=db_url, allow_private_addresses=True, extract=False
    )
    with make_app(s, now=ticks) as poll:
        feed = poll.add_feed(url, discover=False).feed
        assert [r.status for r in poll.update_due()] == ["ok"]
        # the same body again is a story-less outcome, which the store now refuses
        poison(db_url, "poison_log", "INSERT", "fetch_log", "NEW.outcome <> 'error'")
        held.set()
        ticks.t += timedelta(days=1)
        out: list[Any] = []
        poller = threading.Thread(target=lambda: out.extend(poll.update_due()))
        poller.start()
        try:
            assert wait_until(lambda: len(server.requests_for("/feed.xml")) == 2)
            other = open_store(db_url)  # another daemon, finding the lease over
            try:
                later = ticks.t + timedelta(minutes=16)
                assert other.claim_due(
                    later, owner="elsewhere:7:b", lease=timedelta(minutes=15), ids=[feed.id]
                )
            finally:
                other.close()
        finally:
            answer.set()
            poller.join(timeout=10)
        assert not poller.is_alive()
        assert [(r.status, (r.error or "")[:16]) for r in out] == [("error", "could not store:")]
        assert poll.store.get_feed(feed.id).lease_owner == "elsewhere:7:b"


def test_a_retry_after_past_the_cap_is_reported_as_the_wait_honoured(
    app: App,  # noqa: F811
    server: LocalServer,
    clock: Clock,  # noqa: F811
) -> None:
    """A 503 asking for a retry in the year 9999 is honoured for 7 days at most, but
    the feed's error (``feeds list``, ``feeds show``, the poll's line) said "retry after
    24,855 days": the user read the feed as locked out for 68 years. It says the wait
    that applies, and what the server asked."""
    url = server.route(
        "/feed.xml",
        status=503,
        headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
        content_type="text/plain",
    )
    app.add_feed(url, discover=False)
    [result] = app.update_due()
    expected = (
        "HTTP 503 Service Unavailable (retry after 7 days, the most honoured; asked: 24,855 days)"
    )
    assert result.error == expected
    [feed] = app.feeds()
    assert feed.last_error == expected
    assert feed.not_before == clock.t + timedelta(days=7)
