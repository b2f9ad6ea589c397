"""When to poll a feed next, and what its state becomes after a poll. Pure functions of
(feed, outcome, clock): no I/O, so every rule is tested with a fixed clock.

Rules (DESIGN.md "Limits a user can rely on"):
- interval: the user's override, else adaptive to the posting rate over the last two
  weeks (n posts since the oldest of them: aim to see each within half the mean gap),
  never below the publisher's own hints (RSS <ttl>, sy:updatePeriod, Cache-Control
  max-age / Expires), clamped to [min, max] (5 min .. 24 h); the wait is that interval
  with up to ±10 % jitter so feeds added together spread out, clamped again after the
  jitter so it never leaves [min, max];
- errors: exponential backoff from the interval (the last one chosen, hints included,
  when longer than the posting rate's), capped at max, with the same jitter and
  clamp so feeds failing together do not retry together (never before 90 % of the
  backoff); Retry-After (429/503) is a floor that jitter only pushes later (by up to
  10 %), honoured up to a week (Policy.max_retry_after); 410 Gone marks the feed gone;
  a feed failing for 30 days is disabled (kept);
- a host that answers 429 (its Retry-After, else 5 minutes) or 503 with a Retry-After
  is asked for none of its feeds before then: they are skipped, not failed
  (``host_wait``, ``after_host_wait``);
- permanent redirects (301/308) are adopted only after the same target was seen on 3 polls
  spanning at least a day, so a maintenance redirect does not lose the feed; 302/307
  never rewrite the URL (RFC 9110 §15.4).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import FeedError, FetchError
from .types import MAX_FEED_URL_BYTES, Feed, FeedCheck, FetchResult, UpdateStatus

RATE_WINDOW = timedelta(days=14)
#: The share of the quiet since a feed's newest post that its interval is at least, when
#: two or more posts give it a rate: the quiet read as if ten posts had come in it, polled
#: twice a gap (one post bounds it by half the quiet), so a burst of ten and then nothing
#: is bounded no more than by its own rate.
QUIET_SHARE = 1 / 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    default_interval: timedelta = timedelta(minutes=60)
    min_interval: timedelta = timedelta(minutes=5)
    max_interval: timedelta = timedelta(hours=24)
    disable_after: timedelta = timedelta(days=30)
    jitter: float = 0.1
    #: The longest Retry-After honoured: a server's "come back in 2120" (or a typo of
    #: 20 digits) must not lock a feed out for good, nor overflow the clock arithmetic.
    max_retry_after: timedelta = timedelta(days=7)
    redirect_polls: int = 3
    redirect_span: timedelta = timedelta(days=1)
    #: How long a host that answered 429 without a Retry-After is left alone.
    host_wait: timedelta = timedelta(minutes=5)


def _clamp(v: timedelta, policy: Policy) -> timedelta:
    return max(policy.min_interval, min(policy.max_interval, v))


def adaptive_interval(
    post_dates: Sequence[datetime],
    now: datetime,
    policy: Policy,
    *,
    hints: Sequence[timedelta | None] = (),
    override: timedelta | None = None,
) -> timedelta:
    """The base interval before jitter."""
    if override is not None:
        return _clamp(override, policy)
    # Distinct instants: a feed stamping every entry with its build time, or the backlog
    # first seen by one poll (the stored date of an undated entry), is one instant, not
    # n posts within the hour (which polled such feeds every 5 minutes).
    recent = {d for d in post_dates if now - RATE_WINDOW <= d <= now + timedelta(hours=1)}
    if len(recent) >= 2:
        # n posts since the oldest recent one: a mean gap of span / n; poll twice per gap.
        # The span, not the whole window, because a feed only holds its newest entries.
        span = max(now - min(recent), timedelta(hours=1))
        interval = span / (2 * len(recent))
        # The quiet since the newest post bounds it too, more loosely than one post's
        # (QUIET_SHARE): a feed that posted every half hour for two weeks and then stopped
        # kept its half hour until its posts left the window, ~50 requests a day for
        # nothing; now 3.6 h after three quiet days and 8.4 h after a week, a quiet
        # night's 2 h changing nothing.
        interval = max(interval, (now - max(recent)) * QUIET_SHARE)
    elif len(recent) == 1:
        # One post says too little of a rate to poll sooner than the default, but the quiet
        # since it is a bound, as for two or more: a post 10 days ago is at most one post in
        # 10 days. The default alone polled a blog posting every ~10 days hourly whenever
        # it had one post in the window, and daily when it had two or none.
        interval = max(policy.default_interval, (now - min(recent)) / 2)
    elif post_dates and max(post_dates) < now - RATE_WINDOW:
        interval = policy.max_interval  # a feed that has been quiet for two weeks
    else:
        # nothing known, or dates only ahead of the clock (local time labelled GMT):
        # those say nothing of the rate and are no sign of a quiet feed
        interval = policy.default_interval
    for hint in hints:
        if hint is not None and hint > interval:
            interval = hint  # the publisher asked us not to come back sooner
    return _clamp(interval, policy)


def _jitter_factor(feed_id: int, now: datetime, policy: Policy) -> float:
    """In [1 - jitter, 1 + jitter]; deterministic for (feed, time), so tests with a fixed
    clock are repeatable."""
    if policy.jitter <= 0:
        return 1.0
    rng = random.Random(f"{feed_id}:{now.isoformat()}")
    factor: float = 1 + rng.uniform(-policy.jitter, policy.jitter)
    return factor


def jittered(feed_id: int, base: timedelta, now: datetime, policy: Policy) -> timedelta:
    """``base`` times up to ±jitter, unclamped; deterministic for (feed, time)."""
    if policy.jitter <= 0:
        return base
    return base * _jitter_factor(feed_id, now, policy)


def error_wait(
    feed_id: int,
    wait: timedelta,
    retry_after: timedelta | None,
    now: datetime,
    policy: Policy,
) -> timedelta:
    """The wait before retrying a failed feed: the backoff ``wait`` with the success
    path's ±jitter, clamped to [min, max] afterwards, so it lies in
    [max(min, (1 - jitter) * wait), min(max, (1 + jitter) * wait)]: never before 90 % of
    the backoff by default. A server's ``retry_after`` is a floor, never undercut: the same
    draw, mapped onto [1, 1 + jitter], may only push it later, so feeds a host told to come
    back at one instant do not all come back at that instant."""
    factor = _jitter_factor(feed_id, now, policy)
    out = _clamp(wait * factor, policy)
    if retry_after is not None:
        out = max(out, retry_after * _later(factor, policy))
    return out


def _later(factor: float, policy: Policy) -> float:
    """A jitter draw ``factor`` in [1 - jitter, 1 + jitter] mapped onto [1, 1 + jitter]:
    what pushes a server's "not before" later, never sooner."""
    return 1 + (factor - 1 + policy.jitter) / 2 if policy.jitter > 0 else 1.0


def backoff(error_count: int, base: timedelta, policy: Policy) -> timedelta:
    base = max(base, policy.min_interval)
    exp = min(error_count - 1, 16)
    factor: int = 1 << max(0, exp)
    return min(base * factor, max(policy.max_interval, base))


def after_success(
    feed: Feed,
    result: FetchResult,
    *,
    outcome: UpdateStatus,
    now: datetime,
    policy: Policy,
    post_dates: Sequence[datetime],
    ttl: timedelta | None = None,
    title: str | None = None,
    site: str | None = None,
    ms: int = 0,
    base: timedelta | None = None,
) -> FeedCheck:
    """``base``: the last interval, for a 304 or an unchanged body; else the interval is
    computed from ``post_dates``. Nothing new was posted then, so the rate can only have
    fallen: the interval ``post_dates`` (the feed's recent dates and its newest, from
    ``Store.quiet_post_dates``) give, when longer, else the last one, which may hold a hint
    only a body gives (``<ttl>``, ``sy:updatePeriod``) and a 304 does not repeat. Reused
    as it was, a burst's 5 minutes outlived the burst for as long as the feed answered
    304, where two quiet weeks mean 24 h. The wait is ``base`` ± jitter, clamped to [min,
    max] after the jitter (clamping before it let 4.5 min or 26.4 h through);
    ``interval`` records ``base`` before jitter. A 304 or an unchanged body keeps the last
    document's warnings as ``last_error`` (:func:`_document_warnings`)."""
    if base is None or feed.interval is not None:
        base = adaptive_interval(
            post_dates, now, policy, hints=(ttl, result.max_age), override=feed.interval
        )
    else:
        base = max(
            _clamp(base, policy),
            adaptive_interval(post_dates, now, policy, hints=(result.max_age,)),
        )
    url, r_url, r_count, r_first = _redirect_state(feed, result, now, policy)
    return FeedCheck(
        feed_id=feed.id,
        at=now,
        outcome=outcome,
        next_check=now + _clamp(jittered(feed.id, base, now, policy), policy),
        status="active",
        error_count=0,
        first_error_at=None,
        last_error=_document_warnings(feed) if outcome != "ok" else None,
        http_status=result.http_status,
        ms=ms,
        url=url,
        etag=result.etag,
        last_modified=result.last_modified,
        body_hash=result.body_hash,
        title=title,
        site=site,
        redirect_url=r_url,
        redirect_count=r_count,
        redirect_first_seen=r_first,
        success=True,
        interval=base,
    )


def _document_warnings(feed: Feed) -> str | None:
    """What a 304 or the same body again shows as the feed's ``last_error``: the warnings
    of the document last parsed (a not-well-formed feed recovered, recorded by the success
    that parsed it, and kept in ``Feed.warnings``), which the unchanged document still
    deserves. Read off ``last_error``, they showed until the next poll only, and after a
    failed poll (which replaces ``last_error`` with its error) not at all; an unchanged
    answer ends that error, not the document's warnings."""
    return feed.warnings


def after_error(
    feed: Feed,
    error: FeedError,
    *,
    now: datetime,
    policy: Policy,
    post_dates: Sequence[datetime] = (),
    ms: int = 0,
) -> FeedCheck:
    """``next_check`` is ``now`` plus :func:`error_wait`: the backoff with jitter, and no
    sooner than a Retry-After the server gave."""
    count = feed.error_count + 1
    first = feed.first_error_at or now
    base = adaptive_interval(post_dates, now, policy, override=feed.interval)
    if feed.interval is None and feed.poll_interval is not None:
        # backoff slows a feed down: from the interval it last had, which holds the
        # publisher's hints (<ttl>, max-age), not the posting rate alone, which asked a
        # server in trouble every 30 minutes where a healthy poll waited a day
        base = max(base, _clamp(feed.poll_interval, policy))
    retry_after = None
    http_status = None
    status: str = "error"
    message = error.message
    if isinstance(error, FetchError):
        http_status = error.http_status
        if error.retry_after_s is not None:
            # capped before it becomes a timedelta (which overflows past ~2.7 million
            # years, and now + it past the year 9999); max() first turns a NaN into 0
            cap = policy.max_retry_after.total_seconds()
            seconds = min(max(0.0, error.retry_after_s), cap)
            retry_after = timedelta(seconds=seconds)
            if error.retry_after_s > cap:
                message = _capped(message, policy.max_retry_after)
        if error.gone:
            status = "gone"
    if status != "gone" and now - first >= policy.disable_after:
        status = "disabled"
    wait = error_wait(feed.id, backoff(count, base, policy), retry_after, now, policy)
    return FeedCheck(
        feed_id=feed.id,
        at=now,
        outcome="error",
        next_check=now + wait,
        not_before=now + retry_after if retry_after is not None else None,
        status=status,  # type: ignore[arg-type]
        error_count=count,
        first_error_at=first,
        last_error=message,
        http_status=http_status,
        ms=ms,
        redirect_url=feed.redirect_url,
        redirect_count=feed.redirect_count,
        redirect_first_seen=feed.redirect_first_seen,
    )


#: The wait a fetch error's message ends with (``aggregator.fetch``'s 429 and 503).
_RETRY_AFTER = re.compile(r" \(retry after ([^()]*)\)$")


def _capped(message: str, cap: timedelta) -> str:
    """A 429/503's message when its Retry-After is past ``cap``: the wait that applies,
    and what the server asked. "retry after 24,855 days" (a date in the year 9999) read
    as a feed locked out for 68 years, when it is retried after 7 days."""
    days = cap / timedelta(days=1)
    honoured = f"{days:g} days" if days >= 2 else f"{cap / timedelta(hours=1):g} h"
    found = _RETRY_AFTER.search(message)
    if found is None:
        return f"{message} (retry after {honoured}, the most honoured)"
    asked = found[1]
    return f"{message[: found.start()]} (retry after {honoured}, the most honoured; asked: {asked})"


def host_wait(error: FeedError, policy: Policy) -> timedelta | None:
    """How long the host that answered ``error`` gets no request for any of its feeds, or
    None when the error is this feed's alone. A 429 says the client sends too much, not
    that one feed is wrong: its Retry-After, else ``policy.host_wait``. A 503 with a
    Retry-After is the server's overload or maintenance; without one it may be one
    feed's broken backend. Capped as a feed's own Retry-After is."""
    if not isinstance(error, FetchError):
        return None
    seconds = error.retry_after_s
    if error.http_status == 429 and seconds is None:
        seconds = policy.host_wait.total_seconds()
    elif error.http_status not in (429, 503) or seconds is None:
        return None
    seconds = min(max(0.0, seconds), policy.max_retry_after.total_seconds())
    return timedelta(seconds=seconds) if seconds > 0 else None


def after_host_wait(
    feed: Feed, until: datetime, reason: str, *, now: datetime, policy: Policy
) -> FeedCheck:
    """A feed not requested because its host asked, for another of its feeds, for no
    request before ``until`` (:func:`host_wait`): ``skipped``. Nothing about the feed was
    learnt, so its state (status, errors, validators, interval) stays as it was; it is
    due again at ``until``, pushed later by up to the jitter as a Retry-After is, so the
    host's feeds do not all come back at that instant."""
    later = _later(_jitter_factor(feed.id, now, policy), policy)
    wait = max(until - now, timedelta(0))
    return FeedCheck(
        feed_id=feed.id,
        at=now,
        outcome="skipped",
        next_check=now + wait * later,
        not_before=until,
        status=feed.status,
        error_count=feed.error_count,
        first_error_at=feed.first_error_at,
        last_error=feed.last_error,
        redirect_url=feed.redirect_url,
        redirect_count=feed.redirect_count,
        redirect_first_seen=feed.redirect_first_seen,
        reason=reason,
    )


def _redirect_state(
    feed: Feed, result: FetchResult, now: datetime, policy: Policy
) -> tuple[str | None, str | None, int, datetime | None]:
    """(new feed URL or None, pending target, times seen, first seen)."""
    target = result.permanent_redirect
    if not target or target == feed.url:
        return None, None, 0, None
    if len(target.encode("utf-8", "surrogatepass")) > MAX_FEED_URL_BYTES:
        return None, None, 0, None  # followed on every poll, never a subscription's URL
    if target == feed.redirect_url and feed.redirect_first_seen is not None:
        count, first = feed.redirect_count + 1, feed.redirect_first_seen
    else:
        count, first = 1, now
    if count >= policy.redirect_polls and now - first >= policy.redirect_span:
        return target, None, 0, None
    return None, target, count, first
