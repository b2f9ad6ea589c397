"""Scheduling rules with a fixed clock: adaptive interval, hints, backoff, Retry-After,
410 Gone, disabling after 30 days of errors, and the permanent-redirect rule."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

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
