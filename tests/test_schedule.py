"""Scheduling rules with a fixed clock: adaptive interval, hints, backoff, Retry-After,
410 Gone, disabling after 30 days of errors, and the permanent-redirect rule."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import schedule
from aggregator.errors import FetchError, ParseError
from aggregator.types import Feed, FetchResult

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
P = schedule.Policy()
P0 = replace(P, jitter=0)


def feed(**kw: object) -> Feed:
    base: dict[str, object] = {
        "id": 7,
        "url": "https://example.org/feed",
        "name": None,
        "title": None,
        "site": None,
        "topics": (),
        "status": "active",
        "enabled": True,
        "etag": None,
        "last_modified": None,
        "body_hash": None,
        "interval": None,
        "next_check": None,
        "last_check": None,
        "last_success": None,
        "error_count": 0,
        "first_error_at": None,
        "last_error": None,
        "redirect_url": None,
        "redirect_count": 0,
        "redirect_first_seen": None,
    }
    base.update(kw)
    return Feed(**base)  # type: ignore[arg-type]


def ok(**kw: object) -> FetchResult:
    base: dict[str, object] = {
        "url": "https://example.org/feed",
        "final_url": "https://example.org/feed",
        "status": "ok",
        "http_status": 200,
    }
    base.update(kw)
    return FetchResult(**base)  # type: ignore[arg-type]


def posts(n: int, span: timedelta) -> list[datetime]:
    return [NOW - span * i / max(1, n) for i in range(n)]


@pytest.mark.parametrize(
    ("dates", "low", "high"),
    [
        ([], timedelta(hours=1), timedelta(hours=1)),  # nothing known: the default
        # 28 posts over the last 13.5 days: a post every ~11.6 h -> poll every ~5.8 h
        (posts(28, timedelta(days=14)), timedelta(hours=5.5), timedelta(hours=6)),
        # 10 posts in the last 12 h (a feed holding only its newest entries): ~36 min
        (posts(10, timedelta(hours=13.3)), timedelta(minutes=30), timedelta(minutes=40)),
        (posts(5000, timedelta(days=14)), timedelta(minutes=5), timedelta(minutes=5)),  # clamped
        (posts(1, timedelta(days=1)), timedelta(hours=1), timedelta(hours=1)),  # one post
        ([NOW - timedelta(days=40)], timedelta(hours=24), timedelta(hours=24)),  # quiet: max
    ],
    ids=["no-history", "twice-a-day", "busy-short-feed", "busy-clamped", "single-post", "quiet"],
)
def test_adaptive_interval(dates: list[datetime], low: timedelta, high: timedelta) -> None:
    got = schedule.adaptive_interval(dates, NOW, P)
    assert low <= got <= high


def test_one_post_in_the_window_long_ago_is_a_slow_feed() -> None:
    # A blog posting every ~10 days has one post in the two weeks most of the time: it was
    # polled hourly then (the default), and daily whenever it had two posts there, or none.
    slow = [NOW - timedelta(days=d) for d in (10, 20, 30, 40)]
    assert schedule.adaptive_interval(slow, NOW, P) == P.max_interval
    assert schedule.adaptive_interval(slow[:2], NOW, P) == P.max_interval
    # one post 4 hours ago: at most one post in 4 hours, so every 2 hours at most
    assert schedule.adaptive_interval([NOW - timedelta(hours=4)], NOW, P) == timedelta(hours=2)
    # one just now says nothing of the rate yet: the default, never sooner
    assert schedule.adaptive_interval([NOW - timedelta(minutes=10)], NOW, P) == timedelta(hours=1)


def test_a_busy_feed_gone_quiet_slows_down_within_days() -> None:
    """A feed that posted every ~30 minutes for two weeks and then stopped kept its ~30
    minute interval until its posts left the two-week window, being asked ~50 times a day
    for a week and more with nothing new; the README promises hours after a few quiet
    days. The quiet since the newest post bounds the rate as it does for one post, more
    loosely (a steady feed's quiet night must not slow it)."""

    def stopped(quiet: timedelta) -> list[datetime]:
        return [NOW - quiet - timedelta(days=14) * i / 700 for i in range(700)]

    assert schedule.adaptive_interval(stopped(timedelta(0)), NOW, P) < timedelta(minutes=30)
    # a quiet night: still polled at its rate
    assert schedule.adaptive_interval(stopped(timedelta(hours=2)), NOW, P) <= timedelta(minutes=30)
    assert schedule.adaptive_interval(stopped(timedelta(days=3)), NOW, P) >= timedelta(hours=3.5)
    assert schedule.adaptive_interval(stopped(timedelta(days=7)), NOW, P) >= timedelta(hours=8)


def test_publisher_hints_are_a_floor_and_override_wins() -> None:
    busy = posts(5000, timedelta(days=14))
    assert schedule.adaptive_interval(busy, NOW, P, hints=(timedelta(hours=2), None)) == timedelta(
        hours=2
    )
    assert schedule.adaptive_interval(busy, NOW, P, hints=(timedelta(days=9),)) == P.max_interval
    assert schedule.adaptive_interval(busy, NOW, P, override=timedelta(minutes=45)) == timedelta(
        minutes=45
    )
    assert schedule.adaptive_interval([], NOW, P, override=timedelta(seconds=10)) == P.min_interval


def test_jitter_spreads_feeds_added_together_and_is_repeatable() -> None:
    base = timedelta(hours=1)
    values = {schedule.jittered(i, base, NOW, P) for i in range(50)}
    assert len(values) > 40
    assert all(timedelta(minutes=54) <= v <= timedelta(minutes=66) for v in values)
    assert schedule.jittered(3, base, NOW, P) == schedule.jittered(3, base, NOW, P)


def test_success_uses_max_age_and_ttl() -> None:
    c = schedule.after_success(
        feed(),
        ok(max_age=timedelta(hours=3)),
        outcome="ok",
        now=NOW,
        policy=P0,
        post_dates=[],
        ttl=timedelta(minutes=90),
    )
    assert c.next_check == NOW + timedelta(hours=3)
    assert (c.status, c.error_count, c.success) == ("active", 0, True)


def test_backoff_grows_exponentially_and_is_capped() -> None:
    f = feed()
    waits = []
    for _ in range(8):
        c = schedule.after_error(
            f, FetchError(f.url, "HTTP 500", http_status=500), now=NOW, policy=P0
        )
        waits.append(c.next_check - NOW)
        f = replace(f, error_count=c.error_count, first_error_at=c.first_error_at)
    assert waits[:4] == [
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=4),
        timedelta(hours=8),
    ]
    assert waits[-1] == timedelta(hours=24)
    assert all(a <= b for a, b in itertools.pairwise(waits))


def test_retry_after_is_honoured() -> None:
    e = FetchError("u", "HTTP 429 Too Many Requests", http_status=429, retry_after_s=7200)
    c = schedule.after_error(feed(), e, now=NOW, policy=P0)
    assert c.next_check == NOW + timedelta(hours=2)
    assert c.http_status == 429


def test_gone_and_disable_after_30_days() -> None:
    c = schedule.after_error(
        feed(), FetchError("u", "HTTP 410 Gone", http_status=410, gone=True), now=NOW, policy=P0
    )
    assert c.status == "gone"
    failing = feed(error_count=40, first_error_at=NOW - timedelta(days=30, minutes=1))
    c = schedule.after_error(failing, ParseError("u", "not a feed"), now=NOW, policy=P0)
    assert (c.status, c.error_count, c.last_error) == ("disabled", 41, "not a feed")
    recent = feed(error_count=3, first_error_at=NOW - timedelta(days=29))
    assert schedule.after_error(recent, ParseError("u", "x"), now=NOW, policy=P0).status == "error"


def test_success_resets_errors() -> None:
    f = feed(
        status="error", error_count=5, first_error_at=NOW - timedelta(days=2), last_error="boom"
    )
    c = schedule.after_success(f, ok(), outcome="ok", now=NOW, policy=P0, post_dates=[])
    assert (c.status, c.error_count, c.first_error_at, c.last_error) == ("active", 0, None, None)


def test_permanent_redirect_adopted_only_when_consistent() -> None:
    new = "https://new.example.org/feed"
    f = feed()
    t = NOW
    adopted = []
    for hours in (0, 6, 12, 30):  # 4 polls; the 3rd is under a day after the 1st
        t = NOW + timedelta(hours=hours)
        c = schedule.after_success(
            f, ok(permanent_redirect=new), outcome="ok", now=t, policy=P0, post_dates=[]
        )
        adopted.append(c.url)
        f = replace(
            f,
            redirect_url=c.redirect_url,
            redirect_count=c.redirect_count,
            redirect_first_seen=c.redirect_first_seen,
        )
    assert adopted == [None, None, None, new]


def test_redirect_interrupted_starts_over() -> None:
    new = "https://new.example.org/feed"
    f = feed(redirect_url=new, redirect_count=2, redirect_first_seen=NOW - timedelta(days=2))
    c = schedule.after_success(
        f, ok(), outcome="ok", now=NOW, policy=P0, post_dates=[]
    )  # no redirect this time
    assert (c.url, c.redirect_url, c.redirect_count) == (None, None, 0)
    c = schedule.after_success(
        f,
        ok(permanent_redirect="https://elsewhere/feed"),
        outcome="ok",
        now=NOW,
        policy=P0,
        post_dates=[],
    )
    assert (c.url, c.redirect_url, c.redirect_count) == (None, "https://elsewhere/feed", 1)


# Jitter is seeded by (feed id, now), so "many seeds" means many feeds and many clocks.
FEED_IDS = st.integers(min_value=1, max_value=10**9)
CLOCKS = st.integers(min_value=0, max_value=10**9).map(lambda s: NOW + timedelta(seconds=s))
NARROW = replace(P, min_interval=timedelta(minutes=10), max_interval=timedelta(hours=2))
HISTORIES = st.sampled_from(
    [
        (),  # the default interval
        tuple(posts(5000, timedelta(days=14))),  # busy: the base is min_interval
        (NOW - timedelta(days=40),),  # quiet: the base is max_interval
        tuple(posts(10, timedelta(hours=13.3))),  # in between
    ]
)


def _at(dates: tuple[datetime, ...], now: datetime) -> list[datetime]:
    return [d + (now - NOW) for d in dates]  # the same history relative to `now`


@settings(max_examples=400)
@given(
    feed_id=FEED_IDS,
    now=CLOCKS,
    dates=HISTORIES,
    override=st.sampled_from([None, timedelta(minutes=1), timedelta(minutes=45), P.max_interval]),
    policy=st.sampled_from([P, NARROW]),
)
def test_success_interval_with_jitter_stays_in_bounds(
    feed_id: int,
    now: datetime,
    dates: tuple[datetime, ...],
    override: timedelta | None,
    policy: schedule.Policy,
) -> None:
    f = feed(id=feed_id, interval=override)
    c = schedule.after_success(
        f, ok(), outcome="ok", now=now, policy=policy, post_dates=_at(dates, now)
    )
    assert c.interval is not None
    assert policy.min_interval <= c.interval <= policy.max_interval
    waited = c.next_check - now
    assert policy.min_interval <= waited <= policy.max_interval
    assert abs(waited - c.interval) <= c.interval * policy.jitter  # jitter, then the clamp


def test_success_jitter_still_spreads_feeds_at_the_bounds() -> None:
    busy, quiet = posts(5000, timedelta(days=14)), [NOW - timedelta(days=40)]
    for dates, edge in ((busy, P.min_interval), (quiet, P.max_interval)):
        waits = [
            schedule.after_success(
                feed(id=i), ok(), outcome="ok", now=NOW, policy=P, post_dates=dates
            ).next_check
            - NOW
            for i in range(200)
        ]
        assert all(P.min_interval <= w <= P.max_interval for w in waits)
        assert waits.count(edge) < 150  # the clamped half sits on the edge
        assert len(set(waits)) > 50  # the other half is still spread


def _error(retry_after_s: float | None) -> FetchError:
    status = 500 if retry_after_s is None else 503
    return FetchError("u", f"HTTP {status}", http_status=status, retry_after_s=retry_after_s)


@settings(max_examples=400)
@given(
    feed_id=FEED_IDS,
    now=CLOCKS,
    dates=HISTORIES,
    errors=st.integers(min_value=0, max_value=40),
    retry_after_s=st.one_of(st.none(), st.integers(min_value=0, max_value=3 * 86400)),
    policy=st.sampled_from([P, NARROW]),
)
def test_error_wait_is_jittered_backoff_floored_by_retry_after(
    feed_id: int,
    now: datetime,
    dates: tuple[datetime, ...],
    errors: int,
    retry_after_s: int | None,
    policy: schedule.Policy,
) -> None:
    f = feed(id=feed_id, error_count=errors, first_error_at=now - timedelta(hours=errors))
    history = _at(dates, now)
    c = schedule.after_error(f, _error(retry_after_s), now=now, policy=policy, post_dates=history)
    unjittered = schedule.after_error(
        f, _error(None), now=now, policy=replace(policy, jitter=0), post_dates=history
    )
    backoff = unjittered.next_check - now
    waited = c.next_check - now
    # The documented range: the backoff ± jitter, clamped to [min, max] ...
    low = max(policy.min_interval, backoff * (1 - policy.jitter))
    high = min(policy.max_interval, backoff * (1 + policy.jitter))
    if retry_after_s is None:
        assert low <= waited <= high
    else:
        # ... and never before Retry-After, which jitter only pushes later.
        retry_after = timedelta(seconds=retry_after_s)
        assert waited >= retry_after
        assert low <= waited <= max(high, retry_after * (1 + policy.jitter))
    assert c.error_count == errors + 1
    assert c == schedule.after_error(
        f, _error(retry_after_s), now=now, policy=policy, post_dates=history
    )  # repeatable for a fixed clock


@pytest.mark.parametrize(
    ("errors", "dates", "backoff"),
    [
        (0, [], timedelta(hours=1)),
        (3, [], timedelta(hours=8)),
        (9, [], timedelta(hours=24)),  # capped: the jitter may only go below
        (0, [NOW - timedelta(days=40)], timedelta(hours=24)),  # a quiet feed starts capped
    ],
    ids=["first-error", "fourth-error", "capped", "quiet-feed"],
)
def test_feeds_failing_together_do_not_retry_together(
    errors: int, dates: list[datetime], backoff: timedelta
) -> None:
    waits = [
        schedule.after_error(
            feed(id=i, error_count=errors), _error(None), now=NOW, policy=P, post_dates=dates
        ).next_check
        - NOW
        for i in range(200)
    ]
    assert len(set(waits)) > (150 if backoff < P.max_interval else 50)
    assert all(backoff * 0.9 <= w <= min(backoff * 1.1, P.max_interval) for w in waits)


def test_feeds_given_one_retry_after_spread_out_after_it() -> None:
    """A host answering 503 + Retry-After to all its feeds must not get them all back at
    the instant it named."""
    waits = [
        schedule.after_error(feed(id=i), _error(7200), now=NOW, policy=P).next_check - NOW
        for i in range(200)
    ]
    assert len(set(waits)) > 150
    assert min(waits) >= timedelta(hours=2)
    assert max(waits) <= timedelta(hours=2.2)
