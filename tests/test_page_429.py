"""An article page answering 429 (or 503 with a Retry-After) holds its host as a feed's
does. Before, the page fetcher held the host's pages for five minutes whatever the
Retry-After said, in its own process only, and never held the host's feeds: another
process (``aggregator extract``, a daemon) fetched the host's pages at once, and every
poll asked the host for its feeds before the time the server gave."""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from httpserver import LocalServer
from test_extract_pipeline import TITLE, article_page
from test_host_wait import Clock, _app, _feed, _hits

from aggregator.types import Story, StoryQuery


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _site(server: LocalServer, n: int = 3, **page: Any) -> tuple[str, list[str]]:
    """A feed of host "127.0.0.1" whose ``n`` stories link to article pages of host
    "localhost", each served with ``page``'s options."""
    pages = []
    for i in range(n):
        server.route(f"/page{i}", **({"content_type": "text/html"} | page))
        pages.append(server.url(f"/page{i}", host="localhost"))
    items = "".join(
        f"<item><title>s{i} {TITLE}</title><link>{p}</link><guid>g{i}</guid>"
        "<description>Teaser.</description></item>"
        for i, p in enumerate(pages)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>{items}'
    return _feed(server, "site", "127.0.0.1", body=f"{body}</channel></rss>".encode()), pages


def _serve_pages(server: LocalServer, n: int = 3) -> None:
    for i in range(n):
        server.route(f"/page{i}", content_type="text/html", body=article_page().encode())


def _page_hits(server: LocalServer) -> int:
    return sum(r.path.startswith("/page") for r in server.requests)


def _by_status(stories: list[Story]) -> dict[str, int]:
    out: dict[str, int] = {}
    for st in stories:
        out[st.extraction_status] = out.get(st.extraction_status, 0) + 1
    return out


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        pytest.param(429, "3600", timedelta(hours=1), id="429-seconds"),
        pytest.param(429, "DATE+3600", timedelta(hours=1), id="429-http-date"),
        pytest.param(429, None, timedelta(minutes=5), id="429-without-retry-after"),
        pytest.param(503, "7200", timedelta(hours=2), id="503-retry-after"),
        pytest.param(429, "99999999999", timedelta(days=7), id="capped"),
    ],
)
def test_a_page_asking_to_be_left_alone_holds_its_host_for_every_process(
    tmp_path: Path,
    server: LocalServer,
    clock: Clock,
    db_url: str,
    status: int,
    retry_after: str | None,
    wait: timedelta,
) -> None:
    if retry_after == "DATE+3600":
        retry_after = formatdate(time.time() + 3600, usegmt=True)
    headers = {"Retry-After": retry_after} if retry_after else {}
    site, _ = _site(server, status=status, headers=headers, body=b"slow down")
    own = _feed(server, "own", "localhost")  # the page host's own feed
    until = clock.t + wait
    with _app(tmp_path, clock, db_url, extract=True) as app:
        site_id = app.add_feed(site, discover=False).feed.id
        app.add_feed(own, discover=False)
        (r,) = app.update_due(feed_ids=[site_id])
        # one page asked (per_host 1), answered 429: it and the other two wait for the
        # host (the host asked, not the page: one later try)
        assert (r.status, r.new, r.deferred) == ("ok", 3, 3)
        assert _page_hits(server) == 1
        # the host's feed is held until the time the page's answer gave
        f = app.store.get_feed(own)
        assert f.not_before is not None
        assert abs((f.not_before - until).total_seconds()) <= 10, (f.not_before, until)
        assert f.next_check == f.not_before
        # and this App asks the host for no page before then either
        left = app.stalled_hosts["localhost"].until - time.monotonic()
        assert wait.total_seconds() - 10 <= left <= wait.total_seconds() + 1

    # Another process, before the time given: neither `aggregator extract` nor a poll
    # (`poll --all`) asks the host for anything.
    _serve_pages(server)
    server.route("/own.xml", body=b"")
    server.reset()
    clock.t += wait - timedelta(minutes=1)
    with _app(tmp_path, clock, db_url, extract=True) as app:
        tally = app.extract_waiting()
        assert (tally.tried, tally.left) == (0, 3)
        assert [x.url for x in app.update_due(all_feeds=True)] == [site]
        assert _hits(server, "localhost") == 0
        assert _by_status(app.stories(StoryQuery(limit=None))) == {"pending": 3}

    # The time is over: the pages waiting are fetched, the one that got the 429 too.
    clock.t += timedelta(minutes=2)
    with _app(tmp_path, clock, db_url, extract=True) as app:
        assert app.extract_waiting().extracted == 3
        assert _page_hits(server) == 3


def test_a_page_hold_leaves_later_tries_waiting_not_failed(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """Stories on their later try (deferred once already) whose host asks, through
    another of their pages, to be left alone, were ``failed`` unasked; they wait for the
    hold, as those whose host was held when the run began do."""
    site, _ = _site(server, status=503, body=b"down")  # no Retry-After: this run only
    with _app(tmp_path, clock, db_url, extract=True) as app:
        app.add_feed(site, discover=False)
        (r,) = app.update_due(all_feeds=True)
        assert (r.new, r.deferred) == (3, 2)

    # `aggregator extract`: the host now answers 429 for an hour
    for i in range(3):
        server.route(f"/page{i}", status=429, headers={"Retry-After": "3600"})
    server.reset()
    with _app(tmp_path, clock, db_url, extract=True) as app:
        tally = app.extract_waiting()
        # one page asked: its later try, failed; the other waits for the hour
        assert (tally.tried, tally.failed, tally.left) == (1, 1, 1)
        assert _page_hits(server) == 1
        assert _by_status(app.stories(StoryQuery(limit=None))) == {"failed": 2, "pending": 1}

    _serve_pages(server)
    clock.t += timedelta(hours=1, minutes=1)
    with _app(tmp_path, clock, db_url, extract=True) as app:
        assert app.extract_waiting().extracted == 1


def test_a_page_hold_skips_the_hosts_feeds_still_queued_in_the_poll(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    """The poll that got the page's 429 went on to ask the host for its feeds queued
    behind another (``per_host`` 1): they are ``skipped`` as after a feed's 429."""
    site, _ = _site(server, n=1, status=429, headers={"Retry-After": "3600"})
    slow = _feed(server, "slow", "localhost", delay=4.0)
    queued = _feed(server, "queued", "localhost")
    with _app(tmp_path, clock, extract=True) as app:
        for url in (site, slow, queued):
            app.add_feed(url, discover=False)
        results = {r.url: r for r in app.update_due(all_feeds=True)}
        assert {u: r.status for u, r in results.items()} == {
            site: "ok",
            slow: "ok",
            queued: "skipped",
        }
        assert (results[queued].error or "").startswith(
            "not requested: localhost asked for no request before 2026-11-30 13:00:00 UTC"
        )
        assert not any(r.path == "/queued.xml" for r in server.requests)
        f = app.store.get_feed(queued)
        assert (f.error_count, f.last_check) == (0, None)
        assert f.not_before == clock.t + timedelta(hours=1)


@pytest.mark.parametrize(
    "redirect",
    [
        # per_host 1: the page waits in the fetcher for the connection the feed's 429
        # holds, past the page's look at its host
        pytest.param(False, id="queued-in-the-fetcher"),
        # the page's link on another host, redirected to the held one
        pytest.param(True, id="redirect"),
    ],
)
def test_no_page_request_reaches_a_host_once_it_asked(
    tmp_path: Path, server: LocalServer, clock: Clock, redirect: bool
) -> None:
    """A page looked at its host's hold before it was handed to the fetcher, and only
    at the host its link names: a page queued in the fetcher when the host's feed got
    the 429, or one redirected to the held host, asked it all the same. The host is
    looked at before each request is sent, redirects included, as for a feed; the
    story waits for the hold."""
    delay = 0.0 if redirect else 4.0  # the 429 comes once the page is queued
    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    server.route("/busy.xml", status=429, headers={"Retry-After": "3600"}, delay=delay)
    server.route("/page", content_type="text/html", body=article_page().encode())
    page = server.url("/page", host="localhost")
    if redirect:
        server.route("/r", status=302, headers={"Location": page}, delay=1.0)
        page = server.url("/r", host="127.0.0.1")
    item = f"<item><title>{TITLE}</title><link>{page}</link><guid>g</guid></item>"
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>{item}'
    site = _feed(server, "site", "127.0.0.1", body=f"{body}</channel></rss>".encode())
    with _app(tmp_path, clock, extract=True) as app:
        for url in (busy, site):
            app.add_feed(url, discover=False)
        results = {r.url: r for r in app.update_due(all_feeds=True)}
        assert results[busy].status == "error"
        assert (results[site].status, results[site].new, results[site].deferred) == ("ok", 1, 1)
        assert not any(r.path == "/page" for r in server.requests)
        assert _hits(server, "localhost") == 1
        (st,) = app.stories(StoryQuery(limit=None))
        assert st.extraction_status == "pending"
        assert (st.extraction_error or "").startswith(
            "not fetched: localhost asked to be left alone"
        )


def test_extract_is_not_stuck_behind_a_held_hosts_backlog(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """The newest stories waiting (the daemon takes 50 after each cycle, `extract` 500)
    were taken up whatever their host, then left alone when it was held: a held host's
    backlog newer than the rest kept every other story waiting for as long as the hold
    (up to a week). The held host's stories are passed over and the next ones taken."""
    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    server.route("/other-page", content_type="text/html", body=article_page().encode())
    link = server.url("/other-page", host="127.0.0.1")
    item = f"<item><title>{TITLE}</title><link>{link}</link><guid>o</guid></item>"
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>O</title>{item}'
    older = _feed(server, "older", "127.0.0.1", body=f"{body}</channel></rss>".encode())
    newer, _ = _site(server, body=article_page().encode())
    with _app(tmp_path, clock, db_url) as app:  # poll --no-extract
        ids = [app.add_feed(u, discover=False).feed.id for u in (busy, older, newer)]
        for i in ids:  # one after another: the held host's stories are the newest
            assert len(list(app.update_due(feed_ids=[i]))) == 1

    clock.t += timedelta(minutes=10)
    server.reset()
    with _app(tmp_path, clock, db_url, extract=True) as app:
        tally = app.extract_waiting(2)
        assert (tally.tried, tally.extracted, tally.left) == (1, 1, 3)
        assert _hits(server, "localhost") == 0
        assert _by_status(app.stories(StoryQuery(limit=None))) == {"ok": 1, "pending": 3}


def test_a_second_extract_process_leaves_the_host_alone(
    tmp_path: Path, server: LocalServer
) -> None:
    """Two `aggregator extract` runs, each a process of its own, then `poll --all`: the
    first one's page 429 holds the host for the others, its feed included."""
    import json

    from test_cli_poll import _aggregator, _env

    site, _ = _site(server, status=429, headers={"Retry-After": "3600"}, body=b"slow down")
    own = _feed(server, "own", "localhost")
    env = _env(tmp_path, site, own)  # poll --no-extract
    assert _aggregator(env, "poll").returncode == 0
    server.reset()
    first = _aggregator(env, "extract", "--format", "json")
    assert first.returncode == 0, first.stderr
    asked = _hits(server, "localhost")
    # the pages sent before the first 429 came back: per_host (2) at a time, and the
    # host's own feed's page, answered at once, may have made room for a third
    assert 1 <= asked <= 3, [r.path for r in server.requests]
    second = _aggregator(env, "extract", "--format", "json")
    assert second.returncode == 0, second.stderr
    # nothing tried, and the host's stories still wait: JSON says how many, as the table
    # does ("still wait"); without "left" it read as if nothing were waiting any more.
    # Four stories have a page on the host (the three and the own feed's, its guid's
    # link); the first run settled those it asked before the 429 came back (the own
    # feed's page, a 404, when it went first), and the rest wait.
    settled = json.loads(first.stdout)["tried"]
    assert settled <= 1
    assert json.loads(second.stdout) == {
        "tried": 0,
        "extracted": 0,
        "failed": 0,
        "left": 4 - settled,
    }
    polled = _aggregator(env, "poll", "--all", "--format", "json")
    assert polled.returncode == 0, polled.stderr
    assert [r["url"] for r in json.loads(polled.stdout)] == [site]
    assert _hits(server, "localhost") == asked
