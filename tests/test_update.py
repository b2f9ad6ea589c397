"""The update pipeline's politeness rules through the real App, a real local server and
a fixed clock: Retry-After, backoff, 410 Gone, the permanent-redirect rule, unchanged
bodies, a bad Location, refused private addresses and feed discovery."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpserver import LocalServer

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.errors import ConfigError
from aggregator.jobs import parse_job
from aggregator.types import StoryQuery, UpdateResult


def rss(*titles: str, ttl: int | None = None) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>http://example.org/{i}</link><guid>g{i}</guid>"
        f"<pubDate>Sat, 28 Nov 2026 0{i % 10}:00:00 GMT</pubDate>"
        f"<description>Story {i} about resolvers and registries.</description></item>"
        for i, t in enumerate(titles)
    )
    ttl_el = f"<ttl>{ttl}</ttl>" if ttl else ""
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>http://example.org/</link>{ttl_el}{items}</channel></rss>"
    ).encode()


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[App]:
    s = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, extract=False, timeout_s=3
    )
    with make_app(s, now=clock) as a:
        yield a


def poll(app: App) -> list[UpdateResult]:
    return list(app.update_due())


def test_retry_after_is_respected(app: App, server: LocalServer, clock: Clock) -> None:
    url = server.route("/feed", status=429, headers={"Retry-After": "3600"})
    app.add_feed(url, discover=False)
    (r,) = poll(app)
    assert r.status == "error" and "429" in (r.error or "")
    clock.advance(minutes=59)
    assert poll(app) == []  # not due: no request to that feed before Retry-After
    assert len(server.requests_for("/feed")) == 1
    clock.advance(minutes=8)  # jitter may push the retry up to 10 % past Retry-After
    server.route("/feed", body=rss("a"))
    (r,) = poll(app)
    assert r.status == "ok" and r.new == 1


def test_retry_after_binds_poll_all_too(app: App, server: LocalServer, clock: Clock) -> None:
    url = server.route("/feed", status=503, headers={"Retry-After": "86400"})
    app.add_feed(url, discover=False)
    (r,) = poll(app)
    assert r.status == "error"
    clock.advance(minutes=1)
    # `poll --all` polls feeds that are not due, but not before the server's Retry-After
    assert list(app.update_due(all_feeds=True)) == []
    app.enable_feed(url)  # nor does turning the feed back on by hand
    assert list(app.update_due(all_feeds=True)) == []
    assert len(server.requests_for("/feed")) == 1
    clock.advance(days=1)
    server.route("/feed", body=rss("a"))
    (r,) = list(app.update_due(all_feeds=True))
    assert r.status == "ok"
    clock.advance(minutes=1)  # a success clears it: --all may poll at once again
    assert [r.status for r in app.update_due(all_feeds=True)] == ["unchanged"]


def test_feeds_enable_cli_turns_a_gone_feed_back_on(
    tmp_path: Path,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from aggregator.cli import main

    url = server.route("/feed", status=410)
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, extract=False)
    with make_app(s) as app:
        app.add_feed(url, discover=False)
        list(app.update_due())
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "none.yaml"))
    (tmp_path / "none.yaml").write_text("feeds: []\n")

    def cli(*argv: str) -> tuple[int, str]:
        try:
            main(list(argv))
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        return code, capsys.readouterr().out

    assert json.loads(cli("feeds", "list", "--format", "json")[1])[0]["status"] == "gone"
    assert cli("feeds", "enable", url) == (0, f"enabled: {url}\n")
    (feed,) = json.loads(cli("feeds", "list", "--format", "json")[1])
    assert (feed["status"], feed["error_count"]) == ("active", 0)
    assert cli("feeds", "enable", "https://nowhere.example/feed")[0] != 0


def test_backoff_grows_and_success_resets(app: App, server: LocalServer, clock: Clock) -> None:
    url = server.route("/feed", status=500)
    app.add_feed(url, discover=False)
    gaps = []
    for _ in range(4):
        (r,) = poll(app)
        assert r.status == "error" and r.next_check is not None
        gaps.append(r.next_check - clock())
        clock.t = r.next_check
    assert all(b > a for a, b in itertools.pairwise(gaps)), gaps
    feed = app.feeds()[0]
    assert (feed.status, feed.error_count) == ("error", 4)
    assert "500" in (feed.last_error or "")
    server.route("/feed", body=rss("a"))
    poll(app)
    feed = app.feeds()[0]
    assert (feed.status, feed.error_count, feed.last_error) == ("active", 0, None)


def test_gone_feed_is_never_polled_again(app: App, server: LocalServer, clock: Clock) -> None:
    url = server.route("/feed", status=410)
    app.add_feed(url, discover=False)
    poll(app)
    assert app.feeds()[0].status == "gone"
    clock.advance(days=3)
    assert poll(app) == []
    assert list(app.update_due(all_feeds=True)) == []
    assert len(server.requests_for("/feed")) == 1


def test_permanent_redirect_adopted_after_consistent_polls(
    app: App, server: LocalServer, clock: Clock
) -> None:
    new = server.route("/new", body=rss("a"))
    old = server.redirect("/old", new, status=301)
    app.add_feed(old, discover=False)
    urls = []
    for _ in range(4):
        list(app.update_due(all_feeds=True))
        urls.append(app.feeds()[0].url)
        clock.advance(hours=10)
    # polls at 0 h, 10 h, 20 h see it (3 polls, but < a day); the 4th, at 30 h, adopts it
    assert urls == [old, old, old, new]


def _yaml_app(tmp_path: Path, clock: Clock, url: str) -> App:
    (tmp_path / "feeds.yaml").write_text(f"feeds:\n  - name: X\n    url: {url}\n")
    s = Settings.from_env(
        {},
        data_dir=tmp_path / "data",
        feeds_path=tmp_path / "feeds.yaml",
        allow_private_addresses=True,
        extract=False,
        timeout_s=3,
    )
    return make_app(s, now=clock)


def test_adopted_redirect_survives_feeds_yaml_sync(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    new = server.route("/new", body=rss("a"))
    old = server.redirect("/old", new, status=301)
    with _yaml_app(tmp_path, clock, old) as app:
        for _ in range(4):
            app.sync_feeds()  # as every `aggregator poll` does first
            list(app.update_due(all_feeds=True))
            clock.advance(hours=10)
        assert [f.url for f in app.feeds()] == [new]
        # feeds.yaml still lists the old URL: the sync finds the adopted feed by it
        assert app.sync_feeds() == (0, 0)
        assert [f.url for f in app.feeds()] == [new]
        # and a change to its entry there reaches it
        (tmp_path / "feeds.yaml").write_text(f"feeds:\n  - name: Renamed\n    url: {old}\n")
        assert app.sync_feeds() == (0, 1)
        assert [(f.url, f.name) for f in app.feeds()] == [(new, "Renamed")]
        assert app.add_feed(old, discover=False).created is False
        app.remove_feed(old)  # the URL the user knows still names it
        assert app.feeds() == []


def test_feed_disabled_after_30_days_stays_disabled_across_syncs(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    url = server.route("/feed", status=500)
    with _yaml_app(tmp_path, clock, url) as app:
        app.sync_feeds()
        while app.feeds()[0].status != "disabled":
            (r,) = list(app.update_due())
            assert r.next_check is not None
            clock.t = r.next_check
        assert clock() - datetime(2026, 11, 28, 12, tzinfo=UTC) >= timedelta(days=30)
        requests = len(server.requests_for("/feed"))
        for _ in range(3):
            clock.advance(days=2)
            assert app.sync_feeds() == (0, 0)  # feeds.yaml's enabled: true is not news
            assert list(app.update_due()) == []
            assert list(app.update_due(all_feeds=True)) == []
        feed = app.feeds()[0]
        assert (feed.status, feed.enabled) == ("disabled", True)
        assert len(server.requests_for("/feed")) == requests
        # turned back on by hand: due at once, errors forgotten
        server.route("/feed", body=rss("a"))
        feed = app.enable_feed(url)
        assert (feed.status, feed.error_count) == ("active", 0)
        (r,) = list(app.update_due())
        assert (r.status, r.new) == ("ok", 1)


def test_feeds_yaml_enabled_false_then_true_reactivates(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    url = server.route("/feed", status=410)
    with _yaml_app(tmp_path, clock, url) as app:
        app.sync_feeds()
        list(app.update_due())
        assert app.feeds()[0].status == "gone"
        (tmp_path / "feeds.yaml").write_text(
            f"feeds:\n  - name: X\n    url: {url}\n    enabled: false\n"
        )
        assert app.sync_feeds() == (0, 1)
        assert (app.feeds()[0].enabled, app.feeds()[0].status) == (False, "gone")
        (tmp_path / "feeds.yaml").write_text(f"feeds:\n  - name: X\n    url: {url}\n")
        server.route("/feed", body=rss("a"))
        assert app.sync_feeds() == (0, 1)
        assert [r.status for r in app.update_due()] == ["ok"]


def test_feeds_of_a_hanging_host_do_not_hold_back_other_hosts(
    tmp_path: Path, server: LocalServer
) -> None:
    # 7 feeds on a host that never answers, listed first, then 3 on another host; at
    # most 4 connections, 2 per host, one worker: 6 places ahead of the store in all.
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        allow_private_addresses=True,
        extract=False,
        timeout_s=1,
        max_connections=4,
        per_host=2,
        workers=1,
    )
    server.route("/hang", hang=True)
    server.route("/fast", body=rss("a"))
    with make_app(s) as app:
        # the worker started and its model loaded first (a poll of a feed of its own, not
        # due again): under load that took longer than the 1 s the hanging requests wait
        app.add_feed(server.url("/fast?warm"), discover=False)
        assert [r.status for r in app.update_due()] == ["ok"]
        for i in range(7):
            app.add_feed(server.url(f"/hang?{i}", host="localhost"), discover=False)
        for i in range(3):
            app.add_feed(server.url(f"/fast?{i}"), discover=False)
        order = [r.url for r in app.update_due()]
    # the other host's feeds finish while the first two hanging requests still wait
    assert ["fast" in u for u in order[:3]] == [True, True, True], order
    assert len(order) == 10


def test_a_poll_does_not_wait_for_outcomes_that_cannot_come(
    app: App, server: LocalServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store thread gathers the outcomes arriving within ``BATCH_WAIT`` of each
    other into one batch (a transaction for several feeds), but waited the whole of it
    once every feed of the poll had given its outcome: 20 ms more at every poll of one
    feed (`poll FEED`, a daemon's cycle with one feed due), for nothing that could come."""
    from aggregator import polling

    monkeypatch.setattr(polling, "BATCH_WAIT", 10.0)  # a wait no poll here would hide
    new = server.route("/new.xml", body=rss("a", "b"), etag='"v1"')
    gone = server.route("/gone.xml", status=404)
    app.add_feed(new, discover=False)
    app.add_feed(gone, discover=False)
    started = time.monotonic()
    assert {r.url: r.status for r in poll(app)} == {new: "ok", gone: "error"}
    clock.advance(hours=1)
    (again,) = app.update_due(feed_ids=[app.store.get_feed(new).id])
    assert again.status == "not_modified"
    assert time.monotonic() - started < 5.0  # two batch waits were 20 s


def test_temporary_redirect_never_rewrites(app: App, server: LocalServer, clock: Clock) -> None:
    new = server.route("/new", body=rss("a"))
    old = server.redirect("/old", new, status=302)
    app.add_feed(old, discover=False)
    for _ in range(4):
        list(app.update_due(all_feeds=True))
        clock.advance(days=1)
    assert app.feeds()[0].url == old


def test_unchanged_body_skips_parsing(app: App, server: LocalServer) -> None:
    url = server.route("/feed", body=rss("a", "b"))  # no ETag / Last-Modified
    app.add_feed(url, discover=False)
    (r1,) = list(app.update_due(all_feeds=True))
    (r2,) = list(app.update_due(all_feeds=True))
    assert (r1.status, r1.new) == ("ok", 2)
    assert (r2.status, r2.new) == ("unchanged", 0)


def test_changed_feed_stores_only_new_and_changed_entries(app: App, server: LocalServer) -> None:
    url = server.route("/feed", body=rss("a", "b", "c"))
    feed = app.add_feed(url, discover=False).feed
    (r1,) = list(app.update_due(all_feeds=True))
    assert (r1.new, r1.updated) == (3, 0)
    known = app.store.recent_story_hashes(feed.id)
    assert len(known) == 3
    # "b" gets a new title (same guid: an update), "d" is new, "a" and "c" are unchanged
    server.route("/feed", body=rss("a", "b, corrected", "c", "d"))
    (r2,) = list(app.update_due(all_feeds=True))
    assert (r2.status, r2.new, r2.updated) == ("ok", 1, 1)
    titles = sorted(s.title for s in app.stories(StoryQuery(limit=100)))
    assert titles == ["a", "b, corrected", "c", "d"]


def test_a_long_feeds_worker_hears_of_every_entry_it_lists(app: App, server: LocalServer) -> None:
    """The parse worker skips the entries stored unchanged, but heard only of the feed's
    500 newest stories: a feed listing 1,200 re-parsed and re-classified 700 unchanged
    ones at every change. It now hears of as many as the latest document listed."""
    titles = [f"s{i}" for i in range(1200)]
    url = server.route("/feed", body=rss(*titles))
    feed = app.add_feed(url, discover=False).feed
    (r1,) = list(app.update_due(all_feeds=True))
    assert (r1.status, r1.new) == ("ok", 1200)
    known = app.store.recent_story_hashes(feed.id)  # what the poll gives the worker
    assert len(known) == 1200
    titles[700] = "s700, corrected"
    body = rss(*titles)
    redone = parse_job(body, url, "application/rss+xml", known=known)
    assert [p.draft.title for p in redone.stories] == ["s700, corrected"]
    assert len(app.store.recent_story_hashes(feed.id, limit=10)) == 10
    server.route("/feed", body=body)
    (r2,) = list(app.update_due(all_feeds=True))
    assert (r2.status, r2.new, r2.updated) == ("ok", 0, 1)


def test_parse_job_skips_entries_stored_unchanged() -> None:
    body = rss("a", "b", "c")
    every = parse_job(body, "http://example.org/feed", "application/rss+xml")
    assert [p.draft.title for p in every.stories] == ["a", "b", "c"]
    known = {p.draft.key: p.draft.content_hash for p in every.stories}
    known[every.stories[1].draft.key] = "an older hash"  # "b" changed since
    fewer = parse_job(body, "http://example.org/feed", "application/rss+xml", known=known)
    assert [p.draft.title for p in fewer.stories] == ["b"]
    assert fewer.post_dates == every.post_dates  # the schedule still sees every entry


def test_bad_location_is_one_feed_error(app: App, server: LocalServer) -> None:
    bad = server.route(
        "/bad", status=301, headers={"Location": "javascript:alert(1)"}, content_type=None
    )
    good = server.route("/good", body=rss("a"))
    app.add_feed(bad, discover=False)
    app.add_feed(good, discover=False)
    results = {r.url: r for r in app.update_due()}
    assert results[bad].status == "error"
    assert results[good].status == "ok"


def test_private_addresses_refused_by_default(tmp_path: Path, server: LocalServer) -> None:
    url = server.route("/feed", body=rss("a"))
    s = Settings.from_env({}, data_dir=tmp_path, extract=False)
    with make_app(s) as a:
        a.add_feed(url, discover=False)
        (r,) = list(a.update_due())
    assert r.status == "error"
    assert "loopback" in (r.error or "")
    assert server.requests_for("/feed") == []


def test_adaptive_interval_follows_posting_rate(
    app: App, server: LocalServer, clock: Clock
) -> None:
    busy = server.route("/busy", body=rss(*[f"t{i}" for i in range(10)]))
    slow = server.route("/slow", body=rss("only one"))
    hinted = server.route("/hinted", body=rss(*[f"t{i}" for i in range(10)], ttl=600))
    for u in (busy, slow, hinted):
        app.add_feed(u, discover=False)
    nxt = {r.url: r.next_check - clock() for r in app.update_due() if r.next_check}
    assert nxt[busy] < nxt[slow]
    assert nxt[hinted] >= timedelta(minutes=600 * 0.9)  # <ttl> is a floor (minus jitter)


def test_feeds_add_discovers_feed_from_html(app: App, server: LocalServer) -> None:
    feed = server.route("/blog/feed/", body=rss("a"))
    page = server.route(
        "/blog/",
        body=b'<html><head><link rel="alternate" type="application/rss+xml" href="/blog/feed/">'
        b"</head><body>hi</body></html>",
        content_type="text/html",
    )
    added = app.add_feed(page)
    assert added.feed.url == feed
    assert added.discovered_from == page
    plain = server.route(
        "/plain/", body=b"<html><body>no feed</body></html>", content_type="text/html"
    )
    with pytest.raises(ConfigError, match="links to no feed"):
        app.add_feed(plain)


def test_a_slow_store_bounds_what_the_poll_holds(tmp_path: Path, server: LocalServer) -> None:
    # The consumer of update_due is the store's thread: made slow here, fetched bodies
    # and parsed feeds must not pile up beyond the poll's two bounds.
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        allow_private_addresses=True,
        extract=False,
        workers=1,
        max_connections=4,
        per_host=4,
    )
    with make_app(s) as app:
        for i in range(30):
            app.add_feed(
                server.route(f"/f{i}", body=rss(f"story {i}", f"other {i}")), discover=False
            )
        results = []
        for res in app.update_due(all_feeds=True):
            results.append(res)
            time.sleep(0.03)
        stats = app.last_poll_stats
    assert len(results) == 30 and all(r.status == "ok" for r in results)
    assert stats.parsing_peak == 4 * s.workers  # reached, never passed
    assert 4 < stats.ahead_peak <= s.max_connections + 2 * s.workers


def test_parse_over_its_limit_kills_the_worker_and_fails_only_that_feed(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    """A parse job past its limit: the worker is killed and replaced, the feed records the
    error, the other feeds of the same poll are stored, and the next poll parses it."""
    urls = [server.route(f"/limit/{i}", body=rss(f"story {i}")) for i in range(3)]
    base = {"data_dir": tmp_path, "allow_private_addresses": True, "extract": False}
    strict = Settings.from_env({}, **base, parse_timeout_s=1e-6, workers=1)
    with make_app(strict, now=clock) as a:
        for url in urls:
            a.add_feed(url, discover=False)
        pid = a._ensure_pool().submit(os.getpid).result(timeout=30)  # its one worker
        assert a._ensure_pool().pids == (pid,)
        results = list(a.update_due(all_feeds=True))
        assert [r.status for r in results] == ["error"] * 3
        assert all("parsing took over 1e-06 s" in (r.error or "") for r in results)
        pids = a._ensure_pool().pids
        assert len(pids) == 1 and pid not in pids  # killed and replaced
        assert a.stories(StoryQuery(limit=10)) == []
    with make_app(Settings.from_env({}, **base), now=clock) as a:
        results = list(a.update_due(all_feeds=True))
        assert sorted((r.status, r.new) for r in results) == [("ok", 1)] * 3
        assert {f.status for f in a.feeds()} == {"active"}


def test_extraction_over_its_limit_keeps_the_story(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    page = b"<html><body><article><p>" + b"A long paragraph about registries. " * 60
    page += b"</p></article></body></html>"
    links = [server.route(f"/page/{i}", body=page, content_type="text/html") for i in range(2)]
    items = "".join(
        f"<item><title>t{i}</title><link>{link}</link><guid>g{i}</guid>"
        f"<description>short</description></item>"
        for i, link in enumerate(links)
    )
    url = server.route(
        "/feed",
        body=f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
        f"</channel></rss>".encode(),
    )
    s = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, extract_timeout_s=1e-6, workers=1
    )
    with make_app(s, now=clock) as a:
        a.add_feed(url, discover=False)
        (r,) = list(a.update_due(all_feeds=True))
        assert (r.status, r.new) == ("ok", 2)
        stories = a.stories(StoryQuery(limit=10))
        assert len(stories) == 2
        for story in stories:
            assert story.extraction_status == "failed"
            assert "extraction took over 1e-06 s" in (story.extraction_error or "")


def test_two_daemons_share_a_backlog_claimed_a_chunk_at_a_time(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    """Each poll leases due feeds a chunk at a time (2 x max_connections, at least 16) as
    it makes room, so a second daemon on the same database takes part of a backlog
    instead of finding it all leased to the first; no feed is polled twice."""
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        allow_private_addresses=True,
        extract=False,
        timeout_s=5,
        max_connections=2,
        per_host=2,
    )
    urls = [server.route(f"/f{i}", body=rss(f"story {i}"), delay=0.05) for i in range(40)]
    with make_app(s, now=clock) as a, make_app(s, now=clock) as b:
        for url in urls:
            a.add_feed(url, discover=False)
        got: dict[str, list[str]] = {"a": [], "b": []}

        def run(name: str, app: App) -> None:
            got[name] = [r.url for r in app.update_due() if r.status == "ok"]

        first = threading.Thread(target=run, args=("a", a))
        first.start()
        deadline = time.monotonic() + 10
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.005)
        run("b", b)  # starts while the first is at work
        first.join(30)
    assert got["a"] and got["b"], got
    assert sorted(got["a"] + got["b"]) == sorted(urls)
    assert all(len(server.requests_for(f"/f{i}")) == 1 for i in range(40))


def test_due_count_is_what_a_poll_would_take(app: App, server: LocalServer) -> None:
    # the CLI's progress bar total: due feeds, not every enabled one
    for i in range(3):
        app.add_feed(server.route(f"/d{i}", body=rss("a")), discover=False)
    assert app.due_count() == 3
    assert len(poll(app)) == 3
    assert app.due_count() == 0 and app.due_count(all_feeds=True) == 3


def test_prepare_poll_overlaps_start_up_and_is_harmless_unused(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, extract=False)
    with make_app(s, now=clock) as a:  # prepared, never polled: closes cleanly
        a.prepare_poll()
    with make_app(s, now=clock) as a:
        a.prepare_poll()
        a.add_feed(server.route("/p", body=rss("a")), discover=False)
        assert [r.status for r in poll(a)] == ["ok"]


def test_dates_too_far_ahead_of_the_apps_clock_are_not_trusted(
    app: App, server: LocalServer, clock: Clock
) -> None:
    # the app's clock is 2026-11-28 12:00: a day's slack, judged by it (not the wall clock)
    items = "".join(
        f"<item><title>{t}</title><guid>{t}</guid><pubDate>{d}</pubDate></item>"
        for t, d in (
            ("tonight", "Sat, 28 Nov 2026 23:00:00 GMT"),
            ("overmorrow", "Mon, 30 Nov 2026 09:00:00 GMT"),
        )
    )
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'
    )
    url = server.route("/feed", body=body.encode())
    app.add_feed(url, discover=False)
    (r,) = poll(app)
    assert r.status == "ok" and r.new == 2
    got = {s.title: s.published for s in app.stories(StoryQuery(limit=10))}
    assert got["tonight"] == datetime(2026, 11, 28, 23, tzinfo=UTC)
    assert got["overmorrow"] is None  # sorts by when it was first seen
