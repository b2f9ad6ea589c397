"""The fetch stage and its stored outcomes, session 28 (second pass): the HTTP/1.1
transport against a raw local server on 127.0.0.1 that answers with scripted bytes,
and polls end to end with real SQLite files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpserver import LocalServer
from test_fetch_s28 import Clock, _app
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


@pytest.mark.parametrize("changing", [False, True], ids=["same-body", "new-body"])
def test_a_redirect_to_another_subscription_is_said_on_the_feed_every_poll(
    tmp_path: Path, server: LocalServer, changing: bool
) -> None:
    """A feed moved permanently to the URL of another subscription cannot take that URL
    (the store keeps a URL to one feed): the poll that would have adopted it said so,
    once, and stored nothing of it: the pending redirect was dropped, so `feeds list`
    and `feeds show` never told, and the warning came back only after three more polls
    over a day. It is now the feed's last error (its warning: the feed still works) and
    the redirect stays pending, so every poll says it until one of the two is removed;
    then the next poll adopts the URL and the warning goes."""
    polls = [0]

    def body(_: Any) -> bytes:
        n = polls[0] if changing else 0
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>N</title>'
            f"<item><title>s{n}</title><guid>g{n}</guid></item></channel></rss>"
        ).encode()

    new = server.route("/new.xml", body=body)
    old = server.redirect("/old.xml", new, status=301)
    clock = Clock()
    with _app(tmp_path, clock) as app:
        app.add_feed(new, discover=False)
        app.add_feed(old, discover=False)
        feed = app.store.get_feed(old)
        other = app.store.get_feed(new)
        for i in range(4):
            polls[0] = i
            results = {r.feed_id: r for r in app.update_due(all_feeds=True)}
            stored = app.store.get_feed(feed.id)
            assert stored.url == old
            assert stored.status == "active"
            if i < 2:  # seen, not yet to be adopted
                assert not results[feed.id].warnings
                assert stored.last_error is None
            else:
                said = f"which is feed {other.id} already"
                assert any(said in w for w in results[feed.id].warnings), results[feed.id]
                assert stored.last_error is not None and said in stored.last_error
                assert stored.redirect_url == new
            clock.t += timedelta(hours=13)
        app.remove_feed(new)  # (its count of labelled stories: none)
        assert [f.id for f in app.feeds()] == [feed.id]
        polls[0] = 9
        (result,) = app.update_due(all_feeds=True)
        moved = app.store.get_feed(feed.id)
        assert (moved.url, moved.redirect_url) == (new, None)
        assert not result.warnings and moved.last_error is None
        assert moved.warnings is None
