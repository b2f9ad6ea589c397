"""Crash safety and several processes on one store (session 26): real local servers, a
real SQLite file or PostgreSQL database, nothing of the project mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from httpserver import LocalServer, Request, Route, closed_port
from proclines import Output
from sqlalchemy import create_engine, text

from aggregator.app import App, ExtractionTally, make_app
from aggregator.config import Settings


def rows(url: str, statement: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.begin() as c:
            return [tuple(r) for r in c.execute(text(statement)).all()]
    finally:
        engine.dispose()


def settings(tmp_path: Path, url: str) -> Settings:
    return Settings.from_env(
        {},
        data_dir=tmp_path / "data",
        database_url=url,
        allow_private_addresses=True,
        extract=False,
        timeout_s=10,
        workers=1,
    )


def article(request: Request) -> bytes:
    words = " ".join(
        f"Operators of recursive resolvers met to discuss DNSSEC validation failures ({i})."
        for i in range(30)
    )
    return (
        f"<html><head><title>{request.path}</title></head><body><article>"
        f"<h1>{request.path}</h1><p>{words}</p><p>{words}</p></article></body></html>"
    ).encode()


def serve_pages(server: LocalServer, delay: float) -> None:
    """Every ``/page/…`` path of ``server`` is an article, answered after ``delay``."""
    files = server._file_route

    def route(path: str) -> Route:
        if path.startswith("/page/"):
            return Route(body=article, content_type="text/html", delay=delay)
        return files(path)

    server._file_route = route  # type: ignore[method-assign]


def _rss(title: str, items: str) -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"{items}</channel></rss>"
    ).encode()


def _poll_together(first: App, second: App, ids: list[int]) -> list[BaseException]:
    """Two daemons' polls started at the same moment, each of every other feed of
    ``ids``; what either raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def poll(app_: App, mine: list[int]) -> None:
        barrier.wait()
        try:
            list(app_.update_due(feed_ids=mine))
        except BaseException as e:
            errors.append(e)

    threads = [
        threading.Thread(target=poll, args=(first, ids[0::2])),
        threading.Thread(target=poll, args=(second, ids[1::2])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def linking_feed(server: LocalServer, name: str, n: int) -> str:
    items = "".join(
        f"<item><title>Resolver operators meet, part {i}</title><guid>{name}-{i}</guid>"
        f"<link>{server.url(f'/page/{name}/{i}.html')}</link>"
        f"<description>DNS ({i}).</description></item>"
        for i in range(n)
    )
    return server.route(f"/{name}.xml", body=_rss(name, items))


@pytest.mark.postgres
def test_daemons_extracting_the_backlog_together_fetch_each_page_once(
    tmp_path: Path, pg_url: str, server: LocalServer
) -> None:
    # Every daemon sharing a PostgreSQL store extracts up to 50 stories stored without
    # their article after each cycle. Each took the same newest 50: every page was
    # fetched once per daemon (the publishers asked N times, the backlog drained no
    # faster than with one daemon), and their writes overwrote each other's.
    serve_pages(server, delay=0.3)
    feed = linking_feed(server, "backlog", 12)
    s = settings(tmp_path, pg_url)
    with make_app(s) as first, make_app(s) as second:
        first.add_feed(feed, discover=False)
        assert [r.new for r in first.update_due(extract=False)] == [12]
        tallies: list[ExtractionTally] = []
        barrier = threading.Barrier(2)

        def extract(app_: object) -> None:
            barrier.wait()
            tallies.append(app_.extract_waiting(50))  # type: ignore[attr-defined]

        threads = [threading.Thread(target=extract, args=(a,)) for a in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    pages = Counter(r.path for r in server.requests if r.path.startswith("/page/"))
    assert len(pages) == 12
    assert max(pages.values()) == 1, pages
    assert sum(t.tried for t in tallies) == 12
    assert rows(pg_url, "SELECT extraction_status, count(*) FROM story GROUP BY 1") == [("ok", 12)]


def test_a_poll_that_cannot_start_fetching_hands_its_leases_back(
    tmp_path: Path, sqlite_url: str, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The feeds are leased before the HTTP client is built; building it failed (here on
    # a proxy variable httpx refuses) and the poll ended with every feed it had leased
    # still held: 15 minutes in which no other daemon, and no poll on another host,
    # could take them.
    feeds = [linking_feed(server, f"f{i}", 1) for i in range(3)]
    monkeypatch.setenv("HTTP_PROXY", "ftp://proxy.invalid:21")
    with make_app(settings(tmp_path, sqlite_url)) as app:
        for url in feeds:
            app.add_feed(url, discover=False)
        with pytest.raises(Exception, match="proxy"):
            list(app.update_due())
        assert rows(sqlite_url, "SELECT count(*) FROM feed WHERE lease_owner IS NOT NULL") == [(0,)]
    assert server.requests == []


def test_a_daemon_given_a_proxy_it_cannot_use_says_so_and_keeps_running(
    tmp_path: Path, server: LocalServer
) -> None:
    # ALL_PROXY=socks5://… without httpx's SOCKS extra, or a scheme httpx has no
    # transport for: building the HTTP client raised ImportError / ValueError, and the
    # daemon died at its first cycle with a traceback (`poll` printed one too).
    feed = linking_feed(server, "proxied", 1)
    (tmp_path / "feeds.yaml").write_text(f"feeds:\n  - url: {feed}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env.update(
        AGGREGATOR_DATA_DIR=str(tmp_path / "data"),
        AGGREGATOR_FEEDS=str(tmp_path / "feeds.yaml"),
        AGGREGATOR_ALLOW_PRIVATE_ADDRESSES="1",
        HTTP_PROXY="ftp://user:secret@proxy.invalid:21",
    )
    poll = subprocess.run(
        [sys.executable, "-m", "aggregator", "poll", "--no-extract"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert poll.returncode == 2, poll.stderr
    assert "Traceback" not in poll.stderr
    assert poll.stderr.count("\n") == 1 and "HTTP_PROXY" in poll.stderr, poll.stderr
    assert "secret" not in poll.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "daemon", "--no-extract"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output = Output(proc)
    try:
        assert output.wait_for_err("poll cycle failed", timeout=30), output.err
        assert proc.poll() is None, output.err
        proc.send_signal(signal.SIGTERM)
        _out, err = output.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert server.requests == []


def shared_feed(server: LocalServer, name: str, n: int) -> str:
    """A feed whose ``n`` stories are the same articles every such feed lists (one link
    each, a guid of its own)."""
    items = "".join(
        f"<item><title>Shared story {j}: resolver operators meet</title>"
        f"<guid>{name}-{j}</guid><link>http://example.org/shared/{j}</link>"
        f"<description>Operators met to discuss DNSSEC ({j}), in {name}.</description></item>"
        for j in range(n)
    )
    return server.route(f"/{name}.xml", body=_rss(name, items))


@pytest.mark.postgres
def test_daemons_storing_copies_of_one_article_at_once_make_one_cluster(
    tmp_path: Path, pg_url: str, server: LocalServer
) -> None:
    # Two daemons each storing a feed's copy of the same new article: neither saw the
    # other's uncommitted row, and each started a cluster of its own, so the story was
    # listed (and exported) twice for good. On SQLite the writers take turns.
    urls = [shared_feed(server, f"f{i}", 20) for i in range(8)]
    s = settings(tmp_path, pg_url)
    with make_app(s) as first, make_app(s) as second:
        ids = [first.add_feed(u, discover=False).feed.id for u in urls]
        assert _poll_together(first, second, ids) == []
    assert rows(
        pg_url,
        "SELECT count(*), count(DISTINCT canonical_url), count(DISTINCT cluster_id) FROM story",
    ) == [(160, 20, 20)]


def copied_feed(server: LocalServer, name: str, n: int) -> str:
    """A feed carrying ``n`` articles every such feed carries word for word, each at a
    link of its own (a syndicated text: no URL in common)."""
    items = "".join(
        f"<item><title>Registry {j} rotates its signing keys</title>"
        f"<guid>{name}-{j}</guid><link>http://{name}.example.org/news/{j}</link>"
        "<pubDate>Mon, 30 Nov 2026 12:00:00 GMT</pubDate>"
        f"<description>The registry of zone {j} rotated its key signing key on Monday, "
        f"the {j}th rollover since it signed the zone, and asked resolver operators "
        "to check that their trust anchors follow RFC 5011 before the old key is "
        f"revoked; operators of zone {j} reported no validation failures.</description></item>"
        for j in range(n)
    )
    return server.route(f"/{name}.xml", body=_rss(name, items))


@pytest.mark.postgres
def test_daemons_storing_copies_of_one_text_at_once_make_one_cluster(
    tmp_path: Path, pg_url: str, server: LocalServer
) -> None:
    # As above, for copies that share no URL but their text (near-duplicates found by
    # SimHash bands and by title).
    urls = [copied_feed(server, f"f{i}", 12) for i in range(8)]
    s = settings(tmp_path, pg_url)
    with make_app(s) as first, make_app(s) as second:
        ids = [first.add_feed(u, discover=False).feed.id for u in urls]
        assert _poll_together(first, second, ids) == []
    assert rows(pg_url, "SELECT count(*), count(DISTINCT cluster_id) FROM story") == [(96, 12)]


@pytest.mark.postgres
def test_a_poll_storing_thousands_of_stories_at_once_stays_within_the_lock_table(
    tmp_path: Path, pg_url: str, server: LocalServer
) -> None:
    # The locks a poll's transaction takes on what it clusters by live in the server's
    # shared lock table (max_locks_per_transaction × max_connections: 6,400 slots by
    # default): one per URL, band and title ran out of it ("out of shared memory") on a
    # first poll of feeds listing their archives.
    urls = [copied_feed(server, f"big{i}", 8000) for i in range(1)]
    with make_app(settings(tmp_path, pg_url)) as app:
        for url in urls:
            app.add_feed(url, discover=False)
        results = list(app.update_due())
    assert sorted((r.status, r.new) for r in results) == [("ok", 8000)]


@pytest.mark.postgres
def test_extracting_a_large_backlog_stays_within_the_lock_table(
    tmp_path: Path, pg_url: str, server: LocalServer
) -> None:
    # `aggregator extract --limit 20000`: one claim lock per story held ran out of the
    # server's shared lock table ("out of shared memory") before a page was fetched.
    port = closed_port()
    items = "".join(
        f"<item><title>Story {i}</title><guid>g{i}</guid>"
        f"<link>http://127.0.0.1:{port}/page/{i}</link></item>"
        for i in range(14000)
    )
    feed = server.route(
        "/many.xml",
        body=_rss("m", items),
    )
    stop = threading.Event()
    stop.set()  # claimed, then stopped at once: nothing fetched, nothing written
    with make_app(settings(tmp_path, pg_url)) as app:
        app.add_feed(feed, discover=False)
        assert [r.new for r in app.update_due(extract=False)] == [14000]
        tally = app.extract_waiting(20000, stop=stop)
    assert tally.tried == 0
    assert rows(pg_url, "SELECT extraction_status, count(*) FROM story GROUP BY 1") == [
        ("pending", 14000)
    ]
