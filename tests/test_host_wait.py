"""A host that asks, through one feed, to be left alone (429, or 503 with a Retry-After)
is asked for none of its feeds before then. Before, a 429 with ``Retry-After: 3600`` held
back only the feed that got it: the same poll went on to ask the host for each of its
other feeds (and got a 429 for each, all counted as errors), and so did every later
poll, which is how aggregators get banned. Now the host's feeds still queued in the poll
are ``skipped`` (not requested, their state untouched) and the store holds its other
feeds, so no later poll, of this process or another, asks before the time given."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpserver import LocalServer
from test_cli_poll import _aggregator, _env

from aggregator import schedule
from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.errors import ConfigError, FeedError, FetchError
from aggregator.types import StoryQuery

POLICY = schedule.Policy()


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


def rss(name: str) -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
        f"<item><title>{name} story</title><guid>{name}-1</guid></item></channel></rss>"
    ).encode()


def _feed(server: LocalServer, name: str, host: str, **route: Any) -> str:
    server.route(f"/{name}.xml", **({"body": rss(name)} | route))
    return server.url(f"/{name}.xml", host=host)


def _hits(server: LocalServer, host: str) -> int:
    return sum(r.host == host for r in server.requests)


def _busy_and_site(server: LocalServer, delay: float = 0.0) -> tuple[str, str]:
    """A feed of host "localhost" answering 429 for an hour, and a feed of another host
    whose three stories link to article pages on "localhost"."""
    from test_extract_pipeline import article_page

    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    pages = []
    for i in range(3):
        server.route(f"/page{i}", content_type="text/html", body=article_page().encode())
        pages.append(server.url(f"/page{i}", host="localhost"))
    items = "".join(
        f"<item><title>story {i}</title><link>{p}</link><guid>g{i}</guid>"
        "<description>Teaser.</description></item>"
        for i, p in enumerate(pages)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>{items}'
    site = _feed(server, "site", "127.0.0.1", body=f"{body}</channel></rss>".encode(), delay=delay)
    return busy, site


def _site_linking_a_page(server: LocalServer, delay: float = 0.0) -> str:
    """A feed of host "127.0.0.1" whose one story links to the article page "/page" on
    "localhost"; ``delay``: the seconds the feed takes to answer."""
    from test_extract_pipeline import article_page

    server.route("/page", content_type="text/html", body=article_page().encode())
    page = server.url("/page", host="localhost")
    item = f"<item><title>s</title><link>{page}</link><guid>g</guid></item>"
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>{item}'
    return _feed(server, "site", "127.0.0.1", body=f"{body}</channel></rss>".encode(), delay=delay)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _app(tmp_path: Path, clock: Clock, database_url: str | None = None, **kw: Any) -> App:
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        database_url=database_url,
        allow_private_addresses=True,
        timeout_s=5,
        # per_host 1: the host's feeds one after another, the 429 first; one worker
        # process (a handful of feeds and pages: a second one only cost its start, ~0.5 s
        # of CPU for each App, three Apps a test)
        **({"extract": False, "per_host": 1, "workers": 1} | kw),
    )
    return make_app(s, now=clock)


@pytest.fixture
def hosts(server: LocalServer) -> tuple[list[str], list[str]]:
    """Four feeds of host "localhost", the first answering 429 with a Retry-After of an
    hour, and one feed of another host (the same server by its address)."""
    held = [_feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})]
    held += [_feed(server, f"l{i}", "localhost") for i in range(3)]
    other = [_feed(server, "o1", "127.0.0.1")]
    return held, other


def test_a_429_skips_the_hosts_other_feeds_in_the_same_poll(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str, hosts: Any
) -> None:
    held, other = hosts
    with _app(tmp_path, clock, db_url) as app:
        for url in held + other:
            app.add_feed(url, discover=False)
        results = {r.url: r for r in app.update_due(all_feeds=True)}
        assert len(results) == 5
        busy = results[held[0]]
        assert busy.status == "error" and "429" in (busy.error or "")
        until = clock.t + timedelta(hours=1)
        for url in held[1:]:
            r = results[url]
            assert r.status == "skipped", r
            assert r.error is not None
            assert r.error.startswith("not requested: localhost asked for no request before")
            assert "2026-11-30 13:00:00 UTC" in r.error and "HTTP 429" in r.error
            assert r.next_check is not None and until <= r.next_check <= until + 0.1 * (
                until - clock.t
            )
            assert r.feed_status == "active" and r.new == 0
        assert results[other[0]].status == "ok" and results[other[0]].new == 1
        # one request to the host: the 429; none for its other feeds
        assert _hits(server, "localhost") == 1
        assert _hits(server, "127.0.0.1") == 1

        for url in held[1:]:
            f = app.store.get_feed(url)
            # nothing was learnt about the feed: not checked, no error, no backoff
            assert (f.status, f.error_count, f.last_error, f.last_check) == (
                "active",
                0,
                None,
                None,
            )
            assert f.not_before == until
            (entry,) = app.store.fetch_log(f.id)
            assert entry.outcome == "skipped"
            assert entry.error is not None and "asked for no request before" in entry.error


def test_the_host_stays_held_for_later_polls_and_other_processes(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str, hosts: Any
) -> None:
    held, other = hosts
    with _app(tmp_path, clock, db_url) as app:
        ids = [app.add_feed(url, discover=False).feed.id for url in held + other]
        # only the busy feed and the other host's are polled now
        polled = list(app.update_due(feed_ids=[ids[0], ids[-1]]))
        assert sorted(r.status for r in polled) == ["error", "ok"]
        until = clock.t + timedelta(hours=1)
        # the host's feeds this poll did not have are held in the store, and `feeds list`
        # shows them checked next then
        assert [app.store.get_feed(u).not_before for u in held] == [until] * 4
        for u in held[1:]:
            assert app.store.get_feed(u).next_check == until

    # Another process, half an hour later, polling everything (`poll --all`): the host
    # is not asked; the other host is.
    server.reset()
    clock.t += timedelta(minutes=30)
    with _app(tmp_path, clock, db_url) as app:
        results = list(app.update_due(all_feeds=True))
        assert [r.url for r in results] == other
        assert _hits(server, "localhost") == 0

    # The hour is over and the host answers again: its feeds are polled.
    for i in range(3):
        server.route(f"/l{i}.xml", body=rss(f"l{i}"))
    server.route("/busy.xml", body=rss("busy"))
    clock.t = until + timedelta(minutes=1)
    with _app(tmp_path, clock, db_url) as app:
        statuses = {r.url: r.status for r in app.update_due(all_feeds=True)}
        assert {u: statuses[u] for u in held} == dict.fromkeys(held, "ok")
        assert all(app.store.get_feed(u).not_before is None for u in held)


@pytest.mark.parametrize(
    ("status", "headers", "others"),
    [
        pytest.param(503, {}, "ok", id="503"),
        pytest.param(503, {"Retry-After": "600"}, "skipped", id="503-retry-after"),
        pytest.param(429, {}, "skipped", id="429"),
    ],
)
def test_which_answers_hold_the_host(
    tmp_path: Path,
    server: LocalServer,
    clock: Clock,
    status: int,
    headers: dict[str, str],
    others: str,
) -> None:
    """A 503 with no Retry-After may be one feed's broken backend: the host's other feeds
    are asked as usual. With a Retry-After it is the server's, and holds the host; a 429
    holds it even without one (for five minutes)."""
    broken = _feed(server, "broken", "localhost", status=status, body=b"no", headers=headers)
    fine = [_feed(server, f"f{i}", "localhost") for i in range(2)]
    with _app(tmp_path, clock) as app:
        for url in [broken, *fine]:
            app.add_feed(url, discover=False)
        statuses = {r.url: r.status for r in app.update_due(all_feeds=True)}
        assert statuses == {broken: "error", fine[0]: others, fine[1]: others}
        held = [app.store.get_feed(u).not_before for u in fine]
        wait = {"ok": None, "skipped": timedelta(seconds=600 if headers else 300)}[others]
        assert held == [None if wait is None else clock.t + wait] * 2


def _error(status: int, retry_after_s: float | None) -> FetchError:
    return FetchError("u", f"HTTP {status}", http_status=status, retry_after_s=retry_after_s)


@pytest.mark.parametrize(
    ("error", "wait"),
    [
        pytest.param(_error(429, 3600), timedelta(hours=1), id="429-retry-after"),
        pytest.param(_error(429, None), POLICY.host_wait, id="429-without-retry-after"),
        pytest.param(_error(503, 90), timedelta(seconds=90), id="503-retry-after"),
        pytest.param(_error(503, None), None, id="503-without-retry-after"),
        pytest.param(_error(500, 60), None, id="500"),
        pytest.param(_error(429, 0), None, id="429-retry-after-0"),
        pytest.param(_error(429, 1e12), POLICY.max_retry_after, id="capped"),
        pytest.param(_error(429, float("nan")), None, id="nan"),
        pytest.param(FeedError("u", "not a feed"), None, id="not-fetch"),
    ],
)
def test_host_wait(error: FeedError, wait: timedelta | None) -> None:
    assert schedule.host_wait(error, POLICY) == wait


def test_poll_shows_skipped_feeds_and_fails_when_nothing_else_was_tried(
    tmp_path: Path, server: LocalServer
) -> None:
    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    rest = [_feed(server, f"l{i}", "localhost") for i in range(2)]
    env = _env(tmp_path, busy, *rest) | {"AGGREGATOR_PER_HOST": "1", "COLUMNS": "160"}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return _aggregator(env, *argv)

    table = run("poll")
    # the one feed tried failed, the others were not tried: the poll failed
    assert table.returncode == 1, table.stderr
    assert "3 feeds, 0 new stories, 1 failed, 2 skipped" in table.stdout
    assert table.stdout.count("skipped") >= 3

    server.route("/l0.xml", body=rss("l0"))
    done = run("poll", "--all", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []  # every feed of the host is held
    assert _hits(server, "localhost") == 1


def test_article_pages_of_a_held_host_wait_too(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    """What asked to be left alone was the host: the same poll fetches none of its
    article pages either (another feed's stories linking there are stored ``pending``,
    for a later try)."""
    busy, site = _busy_and_site(server, delay=0.5)  # the site answered after the 429
    with _app(tmp_path, clock, extract=True) as app:
        for url in (busy, site):
            app.add_feed(url, discover=False)
        results = {r.url: r for r in app.update_due(all_feeds=True)}
        assert results[busy].status == "error"
        assert (results[site].status, results[site].new, results[site].deferred) == ("ok", 3, 3)
        assert not any(r.path.startswith("/page") for r in server.requests)
        for st in app.stories(StoryQuery(limit=None)):
            assert st.extraction_status == "pending"
            assert (st.extraction_error or "").startswith(
                "not fetched: localhost asked to be left alone (HTTP 429 for the feed"
            )


@pytest.fixture
def idn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names under ``.test`` (``bücher.test`` is ``xn--bcher-kva.test`` on the wire)
    resolve to the test server's address."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.rstrip(".").endswith(".test"):
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    ("busy_host", "other_hosts"),
    [
        pytest.param("xn--bcher-kva.test", ["xn--bcher-kva.test"] * 2, id="punycode"),
        pytest.param("bücher.test", ["xn--bcher-kva.test", "BÜCHER.test"], id="mixed-idn"),
        pytest.param("news.test", ["news.test.", "NEWS.test."], id="trailing-dot"),
    ],
)
def test_a_host_is_held_whatever_the_spelling_of_its_name(
    tmp_path: Path,
    server: LocalServer,
    clock: Clock,
    db_url: str,
    idn: None,
    busy_host: str,
    other_hosts: list[str],
) -> None:
    """One host, however its feeds' URLs spell it (an internationalised name in
    punycode or not, any case, a trailing dot): httpx named the host that answered 429
    ``bücher.test`` while the feed URLs said ``xn--bcher-kva.test``, so the poll went on
    to ask the host for its other feeds and the store held none of them."""
    busy = _feed(server, "busy", busy_host, status=429, headers={"Retry-After": "3600"})
    rest = [_feed(server, f"l{i}", h) for i, h in enumerate(other_hosts)]
    with _app(tmp_path, clock, db_url) as app:
        for url in [busy, *rest]:
            app.add_feed(url, discover=False)
        statuses = {r.url: r.status for r in app.update_due(all_feeds=True)}
        assert statuses == {busy: "error"} | dict.fromkeys(rest, "skipped")
        assert len(server.requests) == 1
        for url in rest:
            assert app.store.get_feed(url).not_before == clock.t + timedelta(hours=1)


def test_a_feed_added_or_turned_on_during_the_hold_waits_for_it(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """A feed of the held host that no poll had yet (added with ``feeds add`` or
    feeds.yaml, or turned back on with ``feeds enable``) is held as the host's other
    feeds are: it was due at once, and the next poll asked the host that had asked for
    no request before then."""
    from aggregator.types import FeedSource

    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    gone = _feed(server, "gone", "localhost")
    other = _feed(server, "o1", "127.0.0.1")
    until = clock.t + timedelta(hours=1)
    with _app(tmp_path, clock, db_url) as app:
        busy_id = app.add_feed(busy, discover=False).feed.id
        app.store.upsert_feeds([FeedSource(url=gone, enabled=False)], clock.t)
        assert [r.status for r in app.update_due(feed_ids=[busy_id])] == ["error"]

        clock.t += timedelta(minutes=10)
        added = _feed(server, "added", "LOCALHOST")
        app.add_feed(added, discover=False)
        synced = _feed(server, "synced", "localhost")
        app.store.upsert_feeds(
            [FeedSource(url=synced), FeedSource(url=gone), FeedSource(url=other)], clock.t
        )
        for url in (added, synced, gone):
            f = app.store.get_feed(url)
            assert (f.not_before, f.next_check) == (until, until), url
        assert [r.url for r in app.update_due()] == [other]
        assert _hits(server, "localhost") == 1

        # `feeds enable` of a feed turned off
        app.store.upsert_feeds([FeedSource(url=gone, enabled=False)], clock.t)
        f = app.store.enable_feed(gone, clock.t)
        assert (f.not_before, f.next_check) == (until, until)
        assert [r.url for r in app.update_due(all_feeds=True)] == [other]
        assert _hits(server, "localhost") == 1


def test_extract_in_another_process_leaves_a_held_hosts_pages_alone(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """The pages a poll did not fetch because their host was held wait for the hold in
    ``aggregator extract`` (another process: another App) too: it knew nothing of the
    hold and fetched every page of the host that had asked to be left alone."""
    busy, site = _busy_and_site(server)
    with _app(tmp_path, clock, db_url) as app:  # poll --no-extract
        for url in (busy, site):
            app.add_feed(url, discover=False)
        statuses = sorted(r.status for r in app.update_due(all_feeds=True))
        assert statuses == ["error", "ok"]

    clock.t += timedelta(minutes=10)
    with _app(tmp_path, clock, db_url, extract=True) as app:  # aggregator extract
        tally = app.extract_waiting()
        assert (tally.tried, tally.extracted) == (0, 0)
        assert not any(r.path.startswith("/page") for r in server.requests)
        assert {st.extraction_status for st in app.stories(StoryQuery(limit=None))} == {"pending"}

    clock.t += timedelta(hours=1)  # the hold is over
    with _app(tmp_path, clock, db_url, extract=True) as app:
        assert app.extract_waiting().tried == 3
        assert sum(r.path.startswith("/page") for r in server.requests) == 3


def test_a_later_poll_of_another_process_fetches_no_page_of_a_held_host(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """``poll`` run by cron is a new process each time: it knew of the hold only through
    the held feeds, and fetched the held host's pages that another host's feed links."""
    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    site = _site_linking_a_page(server)
    with _app(tmp_path, clock, db_url) as app:
        busy_id = app.add_feed(busy, discover=False).feed.id
        site_id = app.add_feed(site, discover=False).feed.id
        assert [r.status for r in app.update_due(feed_ids=[busy_id])] == ["error"]
    clock.t += timedelta(minutes=10)
    with _app(tmp_path, clock, db_url, extract=True) as app:
        (r,) = app.update_due(feed_ids=[site_id])
        assert (r.status, r.new, r.deferred) == ("ok", 1, 1)
        assert not any(q.path == "/page" for q in server.requests)
        (st,) = app.stories(StoryQuery(limit=None))
        assert (st.extraction_error or "").startswith(
            "not fetched: localhost asked to be left alone until 2026-11-30 13:00:00 UTC"
        )


def test_a_feed_in_flight_when_its_host_asked_to_be_left_alone_is_held_after_it(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """With ``per_host`` above 1 another feed of the host is being fetched when the 429
    comes. Its answer is stored as usual, but it is held with the host: it was stored
    with its usual next check (and no hold), so a poll before the host's time asked the
    host for it again."""
    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    slow = _feed(server, "slow", "localhost", delay=1.0)
    until = clock.t + timedelta(hours=1)
    with _app(tmp_path, clock, db_url, per_host=2) as app:
        for url in (busy, slow):
            app.add_feed(url, discover=False)
        results = {r.url: r for r in app.update_due(all_feeds=True)}
        assert (results[busy].status, results[slow].status) == ("error", "ok")
        assert results[slow].next_check is not None and results[slow].next_check >= until
        f = app.store.get_feed(slow)
        assert f.not_before == until and f.next_check is not None and f.next_check >= until
        assert f.last_check == clock.t and f.error_count == 0

        clock.t += timedelta(minutes=30)
        server.reset()
        assert list(app.update_due(all_feeds=True)) == []
        assert _hits(server, "localhost") == 0


def test_feeds_add_does_not_ask_a_held_host(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """``feeds add`` fetches the URL (and a few usual feed paths) to find the feed: of
    a held host, it asked the host that had asked for no request before then. It says
    so instead; ``--no-discover`` adds the feed, which waits for the hold."""
    from aggregator.errors import ConfigError

    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    page = server.route("/", content_type="text/html", body=b"<html><body>hi</body></html>")
    site = page.replace("127.0.0.1", "LOCALHOST")
    with _app(tmp_path, clock, db_url) as app:
        app.add_feed(busy, discover=False)
        assert [r.status for r in app.update_due()] == ["error"]
        server.reset()
        clock.t += timedelta(minutes=5)
        with pytest.raises(ConfigError) as e:
            app.add_feed(site)
        assert str(e.value) == (
            f"cannot add {site}: localhost asked for no request before"
            " 2026-11-30 13:00:00 UTC; try again then, or add the feed's own URL with"
            " --no-discover"
        )
        assert server.requests == []
        added = app.add_feed(site, discover=False)
        assert added.created and added.feed.not_before == datetime(2026, 11, 30, 13, tzinfo=UTC)

        clock.t += timedelta(hours=1)
        with pytest.raises(ConfigError, match="links to no feed"):
            app.add_feed(site)  # asked once the hold is over
        assert len(server.requests) >= 1


@pytest.mark.parametrize("how", ["redirected", "linked"])
def test_feeds_add_sends_no_request_to_a_held_host_the_site_leads_to(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str, how: str
) -> None:
    """Only the host of the URL given was looked at: a site whose page redirects to a
    held host (then probed there for /feed, /rss…), or links its feed as plain XML on
    one (fetched to see whether it is a feed), had discovery ask the host that asked for
    no request before then. It says so instead, naming the host and the time."""
    from aggregator.errors import ConfigError

    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    server.route("/site/", content_type="text/html", body=b"<html><body>hi</body></html>")
    if how == "redirected":
        site = server.redirect("/moved/", server.url("/site/", host="localhost"))
    else:
        link = server.url("/site/feed.xml", host="localhost")
        html = f'<html><head><link rel="alternate" type="text/xml" href="{link}"></head>'
        site = server.route("/page/", content_type="text/html", body=html.encode())
    with _app(tmp_path, clock, db_url) as app:
        app.add_feed(busy, discover=False)
        assert [r.status for r in app.update_due()] == ["error"]
        server.reset()
        clock.t += timedelta(minutes=5)
        with pytest.raises(ConfigError) as e:
            app.add_feed(site)
        assert str(e.value) == (
            f"cannot add {site}: localhost asked for no request before"
            " 2026-11-30 13:00:00 UTC; try again then, or add the feed's own URL with"
            " --no-discover"
        )
        assert [r.host for r in server.requests] == ["127.0.0.1"]


@pytest.mark.parametrize(
    "kw",
    [
        # per_host 2, one connection in all: the second feed of the host waits in the
        # fetcher for the connection the 429 holds, past the poll's check of its host
        pytest.param({"per_host": 2, "max_connections": 1}, id="queued-in-the-fetcher"),
        # a feed of another host redirected to the held one
        pytest.param({}, id="redirect"),
    ],
)
def test_no_request_reaches_a_held_host_once_it_asked(
    tmp_path: Path, server: LocalServer, clock: Clock, kw: dict[str, Any]
) -> None:
    """The poll looked at a feed's host before handing the feed to the fetcher, and only
    at the host its URL names: a feed queued in the fetcher when the 429 came, or one
    redirected to the held host, asked it all the same. The host is looked at before
    each request is sent, redirects included; such a feed is ``skipped``."""
    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    if kw:
        second = _feed(server, "second", "localhost")
    else:  # asked once the 429 came
        target = _feed(server, "target", "localhost")
        server.route("/moved.xml", status=302, headers={"Location": target}, delay=0.5)
        second = server.url("/moved.xml", host="127.0.0.1")
    with _app(tmp_path, clock, **kw) as app:
        for url in (busy, second):
            app.add_feed(url, discover=False)
        statuses = {r.url: r.status for r in app.update_due(all_feeds=True)}
        assert statuses == {busy: "error", second: "skipped"}
        assert _hits(server, "localhost") == 1
        f = app.store.get_feed(second)
        assert (f.error_count, f.last_check) == (0, None)


def test_a_redirected_feed_holds_the_host_that_answered_not_its_own(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """A feed of host A (127.0.0.1) redirected to host B (localhost), which answered 429
    with a Retry-After of an hour: the hold is B's. The feed's own wait was read as a
    hold of A: `feeds add` of A's site was refused ("127.0.0.1 asked…", which it never
    did) and A's new feeds waited an hour; and B, with no feed of its own, was held by
    nothing the store kept, so another process's poll asked it again at once."""
    target = server.route("/target.xml", status=429, headers={"Retry-After": "3600"})
    moved = server.redirect("/moved.xml", target.replace("127.0.0.1", "localhost"))
    server.route("/", content_type="text/html", body=b"<html><body>hi</body></html>")
    with _app(tmp_path, clock, db_url) as app:
        app.add_feed(moved, discover=False)
        assert [r.status for r in app.update_due()] == ["error"]
        clock.t += timedelta(minutes=5)
        until = datetime(2026, 11, 30, 13, tzinfo=UTC)
        assert app.store.held_hosts(clock.t) == {"localhost": until}
        with pytest.raises(ConfigError, match="links to no feed"):
            app.add_feed(server.url("/"))  # A is asked: it never asked not to be
        added = app.add_feed(_feed(server, "a", "127.0.0.1"), discover=False)
        assert added.feed.not_before is None
        added = app.add_feed(_feed(server, "b", "localhost"), discover=False)
        assert added.feed.not_before == until
        again = server.redirect("/again.xml", target.replace("127.0.0.1", "localhost"))
        app.add_feed(again, discover=False)
    server.reset()
    with _app(tmp_path, clock, db_url) as other:  # another process's poll
        statuses = {r.url: r.status for r in other.update_due()}
        assert statuses[again] == "skipped" and _hits(server, "localhost") == 0


def test_another_daemons_fetch_of_a_feed_of_the_host_does_not_undo_the_hold(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """Two daemons on one database: one is fetching a feed of the host when the other's
    poll gets the 429 and holds the host's feeds. The first one's outcome (a 200, no
    Retry-After) was then written over the hold, and the feed was asked again before
    the host's time (by ``poll --all`` at once)."""
    import threading

    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "3600"})
    slow = _feed(server, "slow", "localhost", delay=1.5)
    until = clock.t + timedelta(hours=1)
    with _app(tmp_path, clock, db_url) as first, _app(tmp_path, clock, db_url) as second:
        busy_id = first.add_feed(busy, discover=False).feed.id
        slow_id = first.add_feed(slow, discover=False).feed.id
        got: list[Any] = []
        t = threading.Thread(target=lambda: got.extend(first.update_due(feed_ids=[slow_id])))
        t.start()
        try:
            import time

            # the first daemon's request is out
            deadline = time.monotonic() + 10
            while not any(r.path == "/slow.xml" for r in server.requests):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert [r.status for r in second.update_due(feed_ids=[busy_id])] == ["error"]
        finally:
            t.join(timeout=30)
        assert [r.status for r in got] == ["ok"]
        f = second.store.get_feed(slow)
        assert f.last_check == clock.t and f.error_count == 0
        assert f.not_before == until and f.next_check is not None and f.next_check >= until
        server.reset()
        assert list(second.update_due(all_feeds=True)) == []
        assert _hits(server, "localhost") == 0


def test_a_hold_replaces_an_article_stall_that_is_over(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    """The daemon's App keeps the hosts whose article pages wait across its polls. A
    host's earlier, short wait (over now, but not yet looked at) kept its place, so a
    later 429 asking for an hour did not stop the poll from fetching the host's pages."""
    import time

    busy = _feed(server, "busy", "localhost", status=429, headers={"Retry-After": "1"})
    site = _site_linking_a_page(server, delay=0.5)  # answered after the 429
    with _app(tmp_path, clock, extract=True) as app:  # one App: the daemon's polls
        busy_id = app.add_feed(busy, discover=False).feed.id
        site_id = app.add_feed(site, discover=False).feed.id
        assert [r.status for r in app.update_due(feed_ids=[busy_id])] == ["error"]
        time.sleep(1.2)  # the one-second wait is over
        clock.t += timedelta(minutes=1)
        server.route("/busy.xml", status=429, headers={"Retry-After": "3600"})
        got = {r.url: r for r in app.update_due(feed_ids=[busy_id, site_id])}
        assert got[busy].status == "error"
        assert (got[site].status, got[site].deferred) == ("ok", 1)
        assert not any(q.path == "/page" for q in server.requests)


def test_migration_23_keeps_the_holds_standing(db_url: str) -> None:
    """A database from before ``host_hold``: the holds its feeds stand under (their
    ``not_before``, read as their host's) are kept, not dropped by the upgrade."""
    from sqlalchemy import text, update

    from aggregator.store import open_store
    from aggregator.store.tables import FeedRow, table
    from aggregator.types import FeedSource

    now = datetime.now(UTC).replace(microsecond=0)
    until = now + timedelta(hours=1)
    st = open_store(db_url)
    try:
        st.add_feed(FeedSource(url="https://Held.example/feed"), now)
        st.add_feed(FeedSource(url="https://free.example/feed"), now)
        feed = table(FeedRow)
        with st.engine.begin() as c:  # a version-22 database, one feed held
            c.execute(update(feed).where(feed.c.url.like("%Held%")).values(not_before=until))
            c.execute(text("DROP TABLE host_hold"))
            c.execute(text("DELETE FROM schema_version WHERE version = 23"))
    finally:
        st.close()
    st = open_store(db_url)
    try:
        assert st.held_hosts(now) == {"held.example": until}
    finally:
        st.close()


def test_holds_that_are_over_are_deleted_when_a_hold_is_written(db_url: str) -> None:
    """``host_hold`` kept every host that had ever asked to be left alone, its hold over
    long ago: a daemon's table grew for as long as it ran. Writing a hold deletes the
    ones over (the only place rows are added, so the table holds the live ones)."""
    from sqlalchemy import select

    from aggregator.store import open_store
    from aggregator.store.tables import HostHoldRow, table

    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    hold = table(HostHoldRow)
    st = open_store(db_url)
    try:
        for i in range(20):  # each over by the next hour
            st.hold_host(f"h{i}.example", now + timedelta(minutes=i + 1), now=now)
        st.hold_host("long.example", now + timedelta(hours=3), now=now)
        with st.engine.begin() as c:  # a row no hold reads
            c.execute(hold.insert().values(host="null.example", held_until=None))
        later = now + timedelta(hours=1)
        st.hold_host("new.example", later + timedelta(hours=1), now=later)
        with st.engine.connect() as c:
            assert sorted(c.execute(select(hold.c.host)).scalars()) == [
                "long.example",
                "new.example",
            ]
        assert st.held_hosts(later) == {
            "long.example": now + timedelta(hours=3),
            "new.example": later + timedelta(hours=1),
        }
        # a host whose hold is over and which asks again is held anew
        again = later + timedelta(minutes=90)
        st.hold_host("new.example", later + timedelta(hours=5), now=again)
        assert st.held_hosts(again) == {
            "long.example": now + timedelta(hours=3),
            "new.example": later + timedelta(hours=5),
        }
    finally:
        st.close()
