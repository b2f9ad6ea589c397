"""Audit of the fetch scheduling rules on what real feeds and servers send: Retry-After
and caching headers at their extremes, publisher hints, odd post dates, backoff, 410,
the 30-day rule and permanent redirects. Through the real App, a real local server, a
real SQLite file and a fixed clock."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpserver import LocalServer

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.types import UpdateResult

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = T0

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
        {},
        data_dir=tmp_path,
        allow_private_addresses=True,
        extract=False,
        timeout_s=3,
        workers=1,  # one small feed at a time: a second worker process only cost its start
    )
    with make_app(s, now=clock) as a:
        yield a


def poll(app: App, *, all_feeds: bool = False) -> dict[str, UpdateResult]:
    return {r.url: r for r in app.update_due(all_feeds=all_feeds)}


def rss(*items: tuple[str, str | None], extra: str = "") -> bytes:
    """An RSS document; each item is (guid, pubDate or None)."""
    body = "".join(
        f"<item><title>{g}</title><guid>{g}</guid>"
        + (f"<pubDate>{d}</pubDate>" if d else "")
        + f"<description>Story {g} about resolvers.</description></item>"
        for g, d in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel><title>T</title>'
        f"<link>http://example.org/</link>{extra}{body}</channel></rss>"
    ).encode()


def http_date(t: datetime) -> str:
    return email.utils.format_datetime(t.astimezone(UTC), usegmt=True)


def raw(status: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A whole HTTP/1.1 response, so that tests control every header (Date included:
    the test server otherwise adds its own, from the wall clock)."""
    lines = [f"HTTP/1.1 {status}".encode()]
    lines += [f"{k}: {v}".encode("latin-1") for k, v in headers]
    lines += [f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def waited(r: UpdateResult, clock: Clock) -> timedelta:
    assert r.next_check is not None
    return r.next_check - clock()


# --- Retry-After --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "9" * 30,  # beyond what a timedelta holds
        "99999999999999",  # fits a timedelta, not now + it
        "9" * 400,  # beyond a float
        "1" * 5000,  # beyond int()'s digit limit
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Tue, 31 Dec 2120 00:00:00 GMT",  # a century
    ],
    ids=["30-digits", "14-digits", "400-digits", "5000-digits", "year-9999", "year-2120"],
)
def test_huge_retry_after_is_capped_and_does_not_end_the_poll(
    app: App, server: LocalServer, clock: Clock, value: str
) -> None:
    bad = server.route("/bad", status=503, headers={"Retry-After": value})
    # on a host of its own (the server by another name): a 503 with a Retry-After holds
    # its whole host, the good feed's too were it there (test_host_wait)
    server.route("/good", body=rss(("a", None)))
    good = server.url("/good", host="localhost")
    app.add_feed(bad, discover=False)
    app.add_feed(good, discover=False)
    got = poll(app)
    assert got[good].status == "ok"  # the other feed of the poll is stored
    r = got[bad]
    assert r.status == "error" and (r.error or "").startswith("HTTP 503")
    # honoured up to a week (its jitter may add 10 %), then the feed is tried again
    assert timedelta(days=7) <= waited(r, clock) <= timedelta(days=7.7)
    clock.advance(days=6)
    assert list(poll(app, all_feeds=True)) == [good]  # not before it, even with --all
    clock.advance(days=1.8)
    server.route("/bad", body=rss(("b", None)))
    assert poll(app)[bad].status == "ok"


@pytest.mark.parametrize(
    "value",
    ["soon", "-5", "1.5", "\u00b2", "Thu, 01 Jan 1970 00:00:00 GMT"],
    ids=["word", "negative", "fraction", "superscript-two", "date-in-the-past"],
)
def test_retry_after_garbage_or_past_leaves_the_backoff(
    app: App, server: LocalServer, clock: Clock, value: str
) -> None:
    # raw, so that a byte such as 0xB2 ('²' in Latin-1, a digit to str.isdigit) goes
    # out as it is
    url = server.route(
        "/feed", raw=raw("503 Service Unavailable", [("Retry-After", value)], b"down")
    )
    app.add_feed(url, discover=False)
    (r,) = poll(app).values()
    assert r.status == "error"
    assert (r.error or "").startswith("HTTP 503"), r.error  # not "internal error"
    assert timedelta(minutes=54) <= waited(r, clock) <= timedelta(minutes=66)  # the backoff


# --- Cache-Control / Expires --------------------------------------------------------

DATE = T0 - timedelta(days=2)  # the server's clock, two days behind ours


@pytest.mark.parametrize(
    ("headers", "hours"),
    [
        ([("Cache-Control", "max-age=10800")], 3),
        ([("Cache-Control", "max-age=0")], 1),
        ([("Cache-Control", "no-cache, max-age=10800")], 1),
        ([("Cache-Control", "no-store")], 1),
        ([("Cache-Control", "s-maxage=14400, max-age=10800")], 4),
        ([("Cache-Control", "private, max-age=10800")], 3),
        ([("Cache-Control", "public, must-revalidate, MAX-AGE=10800, stale-if-error=60")], 3),
        ([("Cache-Control", 'max-age="10800"')], 3),
        ([("Cache-Control", "max-age=" + "9" * 30)], 24),
        ([("Cache-Control", "max-age=10800"), ("Cache-Control", "max-age=60")], 3),
        ([("Cache-Control", "max-age=" + "9" * 5000)], 24),
        ([("Cache-Control", "max-age=10800"), ("Age", "3600")], 2),
        ([("Cache-Control", "max-age=10800"), ("Age", "9" * 400)], 1),
        ([("Cache-Control", "max-age=10800"), ("Age", "1" * 5000)], 1),
        ([("Cache-Control", "max-age=\u00b2")], 1),
        ([("Expires", "0")], 1),
        ([("Expires", "next week")], 1),
        ([("Date", http_date(DATE)), ("Expires", http_date(DATE - timedelta(hours=1)))], 1),
        ([("Date", http_date(DATE)), ("Expires", http_date(DATE + timedelta(hours=3)))], 3),
        ([("Date", http_date(DATE)), ("Expires", "Fri, 31 Dec 9999 23:59:59 GMT")], 24),
        (
            [
                ("Date", http_date(DATE)),
                ("Cache-Control", "max-age=7200"),
                ("Expires", http_date(DATE + timedelta(hours=5))),
            ],
            2,
        ),
    ],
    ids=[
        "max-age",
        "max-age-0",
        "no-cache",
        "no-store",
        "s-maxage-wins",
        "private",
        "several-directives",
        "quoted",
        "huge-max-age",
        "duplicated-header-first-wins",
        "5000-digit-max-age",
        "age-subtracted",
        "400-digit-age",
        "5000-digit-age",
        "superscript-max-age",
        "expires-0",
        "expires-invalid",
        "expires-before-date",
        "expires-from-skewed-date",
        "expires-year-9999",
        "max-age-beats-expires",
    ],
)
def test_caching_headers_set_the_floor_of_the_next_check(
    app: App, server: LocalServer, clock: Clock, headers: list[tuple[str, str]], hours: float
) -> None:
    # one undated item: the adaptive interval is the default hour, which a hint may raise
    url = server.route("/feed", raw=raw("200 OK", headers, rss(("a", None))))
    app.add_feed(url, discover=False)
    (r,) = poll(app).values()
    assert r.status == "ok", r.error
    base = timedelta(hours=hours)
    assert (
        min(base * 0.9, timedelta(hours=24))
        <= waited(r, clock)
        <= min(base * 1.1, timedelta(hours=24))
    )


# --- Publisher hints in the document ------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "hours"),
    [
        ("<ttl>0</ttl>", 1),
        ("<ttl>-30</ttl>", 1),
        ("<ttl>soon</ttl>", 1),
        ("<ttl>180</ttl>", 3),
        ("<ttl>" + "9" * 30 + "</ttl>", 24),
        ("<sy:updatePeriod>hourly</sy:updatePeriod>", 1),
        ("<sy:updatePeriod>Daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>", 6),
        ("<sy:updatePeriod> weekly </sy:updatePeriod>", 24),
        (
            "<sy:updatePeriod>monthly</sy:updatePeriod><sy:updateFrequency>0</sy:updateFrequency>",
            24,
        ),
        (
            "<sy:updatePeriod>yearly</sy:updatePeriod><sy:updateFrequency>-2</sy:updateFrequency>",
            24,
        ),
        ("<sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>x</sy:updateFrequency>", 24),
        ("<sy:updatePeriod>fortnightly</sy:updatePeriod>", 1),
        (
            "<sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>"
            + "9" * 30
            + "</sy:updateFrequency>",
            1,
        ),
    ],
    ids=[
        "ttl-0",
        "ttl-negative",
        "ttl-word",
        "ttl-3h",
        "ttl-enormous",
        "sy-hourly",
        "sy-daily-4",
        "sy-weekly-spaces",
        "sy-monthly-freq-0",
        "sy-yearly-freq-negative",
        "sy-daily-freq-word",
        "sy-unknown-period",
        "sy-huge-frequency",
    ],
)
def test_document_hints_set_the_floor_of_the_next_check(
    app: App,
    server: LocalServer,
    clock: Clock,
    extra: str,
    hours: float,
) -> None:
    url = server.route("/feed", body=rss(("a", None), extra=extra))
    app.add_feed(url, discover=False)
    (r,) = poll(app).values()
    assert r.status == "ok", r.error
    base = timedelta(hours=hours)
    assert (
        min(base * 0.9, timedelta(hours=24))
        <= waited(r, clock)
        <= min(base * 1.1, timedelta(hours=24))
    )


# --- Post dates ---------------------------------------------------------------------


def test_entries_dated_ahead_of_the_clock_are_not_a_quiet_feed(
    app: App, server: LocalServer, clock: Clock
) -> None:
    # a busy feed writing local time (UTC+9) labelled GMT: its three newest entries all
    # look 2-8 hours ahead; it was polled once a day, as if it had been quiet for weeks
    dates = [http_date(T0 + timedelta(hours=h)) for h in (2, 5, 8)]
    url = server.route("/feed", body=rss(*((f"e{i}", d) for i, d in enumerate(dates))))
    app.add_feed(url, discover=False)
    (r,) = poll(app).values()
    assert r.status == "ok" and r.new == 3
    assert waited(r, clock) <= timedelta(hours=1.1)  # the default, not 24 h


def test_entries_stamped_with_the_build_time_are_one_post(
    app: App, server: LocalServer, clock: Clock
) -> None:
    # every entry carries the time the feed was generated: that is not 30 posts in the
    # last hour (which meant polling every 5 minutes, forever, as the stamp moves on)
    def body(t: datetime) -> bytes:
        return rss(*((f"e{i}", http_date(t)) for i in range(30)))

    url = server.route("/feed", body=body(T0 - timedelta(minutes=10)))
    app.add_feed(url, discover=False)
    (r,) = poll(app).values()
    assert waited(r, clock) >= timedelta(minutes=54)
    clock.t = r.next_check  # type: ignore[assignment]
    server.route("/feed", body=body(clock() - timedelta(minutes=1)))
    (r,) = poll(app).values()
    assert r.status == "ok"
    assert waited(r, clock) >= timedelta(minutes=54)


def test_undated_feed_backlog_is_not_a_burst_of_posts(
    app: App, server: LocalServer, clock: Clock
) -> None:
    # an undated feed's stories are dated by when they were first seen: the 20 seen by
    # the first poll share that instant, and one new entry an hour later is 2 posts in
    # an hour, not 21 (which polled it every 5 minutes)
    entries = [(f"e{i}", None) for i in range(20)]
    url = server.route("/feed", body=rss(*entries))
    app.add_feed(url, discover=False)
    (r,) = poll(app).values()
    assert r.new == 20 and waited(r, clock) >= timedelta(minutes=54)
    clock.t = r.next_check  # type: ignore[assignment]
    server.route("/feed", body=rss(("new", None), *entries))
    (r,) = poll(app).values()
    assert r.new == 1
    assert waited(r, clock) >= timedelta(minutes=27)


def test_one_entry_dated_1970_among_dated_entries_is_ignored(
    app: App, server: LocalServer, clock: Clock
) -> None:
    items = [("bogus", "Thu, 01 Jan 1970 00:00:00 GMT")]
    items += [(f"e{h}", http_date(T0 - timedelta(hours=h))) for h in (1, 7, 13, 19)]
    url = server.route("/feed", body=rss(*items))
    app.add_feed(url, discover=False)
    (r,) = poll(app).values()
    # 4 posts over 19 hours: about a post every 4.75 h, polled every ~2.4 h
    assert timedelta(hours=2) <= waited(r, clock) <= timedelta(hours=2.7)


# --- The user's interval against the publisher's hints -------------------------------


def test_feeds_yaml_interval_wins_over_max_age_and_ttl(
    tmp_path: Path, server: LocalServer, clock: Clock
) -> None:
    url = server.route(
        "/feed",
        body=rss(("a", None), extra="<ttl>600</ttl>"),
        headers={"Cache-Control": "max-age=43200"},
    )
    (tmp_path / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n    interval: 30m\n")
    s = Settings.from_env(
        {},
        data_dir=tmp_path / "data",
        feeds_path=tmp_path / "feeds.yaml",
        allow_private_addresses=True,
        extract=False,
        timeout_s=3,
    )
    with make_app(s, now=clock) as app:
        app.sync_feeds()
        (r,) = poll(app).values()
        assert r.status == "ok"
        # the user's own interval is the schedule: the hints are the adaptive one's floor
        assert timedelta(minutes=27) <= waited(r, clock) <= timedelta(minutes=33)


# --- Errors: backoff, the 30-day rule ------------------------------------------------


@pytest.mark.parametrize("recovery", ["304", "unchanged-body"])
def test_a_burst_then_quiet_slows_the_polls_though_the_feed_answers_304(
    app: App, server: LocalServer, clock: Clock, recovery: str
) -> None:
    """Ten posts in the last hour: polled every 5 minutes. Then nothing new, and the
    server answers 304 (or the same body): the interval used to stay at the burst's 5
    minutes for as long as that lasted; the quiet since the posts now lengthens it, as a
    body would have (three days: ~3.6 h; past two weeks: 24 h)."""
    burst = [(f"p{i}", http_date(T0 - timedelta(minutes=6 * i))) for i in range(10)]
    etag = '"v1"' if recovery == "304" else None
    url = server.route("/feed", body=rss(*burst), etag=etag)
    app.add_feed(url, discover=False)
    (r,) = poll(app).values()
    assert r.status == "ok" and r.new == 10
    assert waited(r, clock) <= timedelta(minutes=5.5)
    seen: dict[int, timedelta] = {}
    while clock() < T0 + timedelta(days=16):
        clock.t = r.next_check  # type: ignore[assignment]
        (r,) = poll(app).values()
        assert r.status == ("not_modified" if etag else "unchanged")
        seen.setdefault(int((clock() - T0) / timedelta(days=1)), waited(r, clock))
    assert timedelta(hours=3) < seen[3] < timedelta(hours=4.5)
    assert seen[15] >= timedelta(hours=24 * 0.9)
    # waits only grow: a 304 never says the feed got busier
    assert list(seen.values()) == sorted(seen.values()) or all(
        b >= a * 0.8 for a, b in zip(seen.values(), list(seen.values())[1:], strict=False)
    )


@pytest.mark.parametrize("recovery", ["304", "unchanged-body"])
def test_a_success_between_failures_restarts_the_30_days(
    app: App, server: LocalServer, clock: Clock, recovery: str
) -> None:
    body = rss(("a", None))
    etag = '"v1"' if recovery == "304" else None
    url = server.route("/feed", body=body, etag=etag)
    app.add_feed(url, discover=False)
    (r,) = poll(app).values()
    assert r.status == "ok"
    clock.t = r.next_check  # type: ignore[assignment]
    server.route("/feed", status=500)
    while clock() < T0 + timedelta(days=29):
        (r,) = poll(app).values()
        assert r.status == "error"
        assert waited(r, clock) <= timedelta(hours=24 * 1.1)  # the backoff's cap
        clock.t = r.next_check  # type: ignore[assignment]
    server.route("/feed", body=body, etag=etag)
    (r,) = poll(app).values()
    assert r.status == ("not_modified" if etag else "unchanged")
    assert (app.feeds()[0].status, app.feeds()[0].error_count) == ("active", 0)
    # failing again: the 30 days count from the new first failure
    server.route("/feed", status=500)
    clock.t = r.next_check  # type: ignore[assignment]
    while clock() < T0 + timedelta(days=40):
        (r,) = poll(app).values()
        clock.t = r.next_check  # type: ignore[assignment]
    assert app.feeds()[0].status == "error"
    while app.feeds()[0].status != "disabled":
        (r,) = poll(app).values()
        clock.t = r.next_check  # type: ignore[assignment]
    assert clock() >= T0 + timedelta(days=29 + 30)
    assert [f.url for f in app.feeds()] == [url]  # disabled, never deleted


# --- Permanent redirects -------------------------------------------------------------


def polls_over_a_day(app: App, clock: Clock, n: int = 4) -> list[dict[str, UpdateResult]]:
    out = []
    for _ in range(n):
        out.append(poll(app, all_feeds=True))
        clock.advance(hours=10)
    return out


def test_redirect_onto_another_subscription_keeps_both_feeds_and_their_stories(
    app: App, server: LocalServer, clock: Clock
) -> None:
    new = server.route("/new", body=rss(("a", None), ("b", None)))
    old = server.redirect("/old", new, status=301)
    app.add_feed(new, discover=False)
    app.add_feed(old, discover=False)
    polls = polls_over_a_day(app, clock)
    for got in polls:
        assert {r.status for r in got.values()} <= {"ok", "unchanged"}, got
    feeds = {f.url: f for f in app.feeds()}
    assert set(feeds) == {old, new}  # no unique-constraint crash, nothing merged away
    assert all(f.stories == 2 for f in feeds.values())
    # the poll that would adopt the URL says why it did not, and reports the URL kept
    told = [r for got in polls for r in got.values() if r.warnings]
    assert told, "the user is told the two subscriptions are one feed"
    assert all(r.url == old for r in told)
    assert all(f"feed {feeds[new].id} already" in r.warnings[-1] for r in told)
    assert all(r.url in (old, new) for got in polls for r in got.values())


def test_redirect_whose_target_keeps_changing_is_never_adopted(
    app: App, server: LocalServer, clock: Clock
) -> None:
    a = server.route("/a", body=rss(("x", None)))
    b = server.route("/b", body=rss(("x", None)))
    old = server.url("/old")
    app.add_feed(old, discover=False)
    for i in range(6):
        server.redirect("/old", (a, b)[i % 2], status=301)
        poll(app, all_feeds=True)
        clock.advance(hours=10)
    assert app.feeds()[0].url == old


def test_permanent_then_temporary_redirect_adopts_the_first_hop(
    app: App, server: LocalServer, clock: Clock
) -> None:
    final = server.route("/final", body=rss(("x", None)))
    mid = server.redirect("/mid", final, status=302)
    old = server.redirect("/old", mid, status=301)
    app.add_feed(old, discover=False)
    polls_over_a_day(app, clock)
    assert app.feeds()[0].url == mid  # moved to /mid for good; /mid's 302 is temporary


def test_temporary_then_permanent_redirect_is_never_adopted(
    app: App, server: LocalServer, clock: Clock
) -> None:
    final = server.route("/final", body=rss(("x", None)))
    mid = server.redirect("/mid", final, status=301)
    old = server.redirect("/old", mid, status=307)
    app.add_feed(old, discover=False)
    polls_over_a_day(app, clock)
    assert app.feeds()[0].url == old


def test_redirect_loop_back_to_the_feed_is_an_error_after_5_hops(
    app: App, server: LocalServer, clock: Clock
) -> None:
    old = server.url("/old")
    server.redirect("/loop", old, status=301)
    server.redirect("/old", server.url("/loop"), status=301)
    app.add_feed(old, discover=False)
    (r,) = poll(app).values()
    assert r.status == "error" and "too many redirects" in (r.error or "")
    assert len(server.requests_for("/old")) + len(server.requests_for("/loop")) == 6
    assert app.feeds()[0].url == old


def test_permanent_redirect_adopted_with_credentials_only_within_their_origin(
    app: App, server: LocalServer, clock: Clock
) -> None:
    server.route("/new", body=rss(("x", None)))
    server.redirect("/same", "/new", status=308)
    other = server.url("/new", host="localhost")
    server.redirect("/away", other, status=308)
    login = f"http://reader:s3cret@127.0.0.1:{server.port}"
    app.add_feed(f"{login}/same", discover=False)
    app.add_feed(f"{login}/away", discover=False)
    polls_over_a_day(app, clock)
    assert sorted(f.url for f in app.feeds()) == sorted([f"{login}/new", other])
    sent = {(r.host, "authorization" in r.headers) for r in server.requests_for("/new")}
    assert sent == {("127.0.0.1", True), ("localhost", False)}
    clock.advance(hours=10)
    server.reset()
    poll(app, all_feeds=True)  # polled at their new URLs, the login still only at home
    assert {r.path for r in server.requests} == {"/new"}
    sent = {(r.host, "authorization" in r.headers) for r in server.requests_for("/new")}
    assert sent == {("127.0.0.1", True), ("localhost", False)}


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("30", "(retry after 30 s)"),
        ("900", "(retry after 15 min)"),
        ("172800", "(retry after 2 days)"),
    ],
)
def test_the_error_says_how_long_the_server_asked_to_wait(
    app: App, server: LocalServer, value: str, said: str
) -> None:
    """In people's units: 2.14748e+09 s said nothing."""
    url = server.route("/busy", status=429, headers={"Retry-After": value})
    app.add_feed(url, discover=False)
    r = poll(app)[url]
    assert r.error == f"HTTP 429 Too Many Requests {said}"
