"""Row conversions and the batch statements of the store: ORM rows <-> ``aggregator.types``
and the executemany statements ``SqlStore`` uses for story-less outcomes. Private to the
store package.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import (
    Boolean,
    Integer,
    Row,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    or_,
    select,
    true,
    update,
)

from ..credentials import without_credentials
from ..dedupe import scheme_twin
from ..neardup import title_hash
from ..types import (
    FETCH_LOG_KEEP,
    ClaimedSettings,
    Feed,
    FeedCheck,
    FeedSource,
    FeedStatus,
    Story,
    StoryRecord,
    TopicScore,
)
from . import dialect, tables
from .tables import FeedRow, FetchLogRow, StoryRow, columns

LGC = columns(FetchLogRow)


def signed64(v: int | None) -> int | None:
    if v is None:
        return None
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _prune_statement() -> Any:
    ranked = (
        select(
            LGC.id,
            func.row_number()
            .over(partition_by=LGC.feed_id, order_by=(LGC.at.desc(), LGC.id.desc()))
            .label("rank"),
        )
        .where(LGC.feed_id.in_(bindparam("feed_ids", expanding=True)))
        .subquery()
    )
    old = select(ranked.c.id).where(ranked.c.rank > FETCH_LOG_KEEP)
    return delete(tables.table(FetchLogRow)).where(LGC.id.in_(old))


#: Built once: an all-304 poll prunes once per batch of outcomes, and building the
#: statement each time cost more than running it.
_PRUNE = _prune_statement()


def prune_fetch_log(conn: Any, feed_ids: Sequence[int]) -> None:
    """Keep the newest FETCH_LOG_KEEP rows of each feed (one statement for many feeds)."""
    for chunk in chunks(list(feed_ids), 500):
        conn.execute(_PRUNE, {"feed_ids": chunk})


FEED = tables.table(FeedRow)
_CLAIMED = bindparam("claimed_at", type_=FEED.c.not_before.type)
_NOT_BEFORE = bindparam("not_before", type_=FEED.c.not_before.type)
_NEXT_CHECK = bindparam("next_check", type_=FEED.c.next_check.type)
# A hold put on the feed while a poll fetched it (``hold_host``: another poll, of
# another process too, got its host's 429 meanwhile). A feed is claimed only with no
# not_before after the claim, so one after ``FeedCheck.claimed_at`` is such a hold: the
# check's own outcome (a 200 says nothing of the host's wish) must not undo it. A check
# without claimed_at (NULL: the comparison is not true) is written as it is.
_HELD_MEANWHILE = and_(FEED.c.not_before.is_not(None), FEED.c.not_before > _CLAIMED)
# The lease is released only when it is still the poll's own (``FeedCheck.claimed_by``;
# a check without one releases whoever holds it): a lapsed lease another poll took over
# stays that poll's.
_CLAIMED_BY = bindparam("claimed_by", type_=FEED.c.lease_owner.type)
_LEASE_KEPT = and_(
    _CLAIMED_BY.is_not(None),
    FEED.c.lease_owner.is_not(None),
    FEED.c.lease_owner != _CLAIMED_BY,
)
# A failing feed whose error count is no longer the one the poll read at its claim
# (``FeedCheck.claimed``): `feeds enable` cleared it meanwhile (or a poll that took over
# a lapsed lease wrote its own outcome). An error (or a skip) the poll fetched before that
# is not written over it: the feed stays as the enable left it, on and due at once, its
# fetch in the fetch log. A success is written as it is (the state enable asked for).
_CLAIMED_ERRORS = bindparam("claimed_error_count", type_=Integer)
_SETTLED_MEANWHILE = and_(
    bindparam("success", type_=Boolean) == false(),
    _CLAIMED_ERRORS.is_not(None),
    FEED.c.error_count != _CLAIMED_ERRORS,
)


def _unless_settled(value: Any, column: Any) -> Any:
    return case((_SETTLED_MEANWHILE, column), else_=value)


CHECK_UPDATE = (
    update(FEED)
    .where(FEED.c.id == bindparam("fid"))
    .values(
        # a feed skipped (its host asked to be left alone) was not checked
        last_check=func.coalesce(
            bindparam("checked", type_=FEED.c.last_check.type), FEED.c.last_check
        ),
        next_check=case(
            (and_(_HELD_MEANWHILE, FEED.c.not_before > _NEXT_CHECK), FEED.c.not_before),
            # settled meanwhile: due when enable made it, or at the server's Retry-After
            (
                and_(
                    _SETTLED_MEANWHILE,
                    _NOT_BEFORE.is_not(None),
                    or_(FEED.c.next_check.is_(None), FEED.c.next_check < _NOT_BEFORE),
                ),
                _NOT_BEFORE,
            ),
            (_SETTLED_MEANWHILE, FEED.c.next_check),
            else_=_NEXT_CHECK,
        ),
        not_before=case(
            (
                and_(_HELD_MEANWHILE, or_(_NOT_BEFORE.is_(None), FEED.c.not_before > _NOT_BEFORE)),
                FEED.c.not_before,
            ),
            else_=_NOT_BEFORE,
        ),
        status=_unless_settled(bindparam("status", type_=FEED.c.status.type), FEED.c.status),
        error_count=_unless_settled(bindparam("error_count", type_=Integer), FEED.c.error_count),
        first_error_at=_unless_settled(
            bindparam("first_error_at", type_=FEED.c.first_error_at.type), FEED.c.first_error_at
        ),
        last_error=_unless_settled(
            bindparam("last_error", type_=FEED.c.last_error.type), FEED.c.last_error
        ),
        # a parsed document's warnings (its success's last_error), kept until the next
        warnings=case(
            (
                bindparam("parsed", type_=Boolean) == true(),
                bindparam("last_error", type_=FEED.c.warnings.type),
            ),
            else_=FEED.c.warnings,
        ),
        redirect_url=bindparam("redirect_url"),
        redirect_count=bindparam("redirect_count"),
        redirect_first_seen=bindparam("redirect_first_seen"),
        lease_owner=case((_LEASE_KEPT, FEED.c.lease_owner), else_=None),
        lease_until=case((_LEASE_KEPT, FEED.c.lease_until), else_=None),
        poll_interval_s=func.coalesce(
            bindparam("poll_interval_s", type_=Integer), FEED.c.poll_interval_s
        ),
        last_success=func.coalesce(
            bindparam("last_success", type_=FEED.c.last_success.type), FEED.c.last_success
        ),
        etag=case(
            (
                bindparam("cache", type_=Boolean) == true(),
                bindparam("etag", type_=FEED.c.etag.type),
            ),
            else_=FEED.c.etag,
        ),
        last_modified=case(
            (
                bindparam("cache", type_=Boolean) == true(),
                bindparam("last_modified", type_=FEED.c.last_modified.type),
            ),
            else_=FEED.c.last_modified,
        ),
        body_hash=case(
            (
                bindparam("cache", type_=Boolean) == true(),
                bindparam("body_hash", type_=FEED.c.body_hash.type),
            ),
            else_=FEED.c.body_hash,
        ),
    )
)


def check_params(c: FeedCheck) -> dict[str, Any]:
    # A 304 keeps the validators we sent; a 200 (its body new or unchanged) brings its own.
    cache = c.success and c.outcome in ("ok", "unchanged")
    return {
        "fid": c.feed_id,
        "claimed_at": c.claimed_at,
        "claimed_by": c.claimed_by,
        "checked": None if c.outcome == "skipped" else c.at,
        "next_check": c.next_check,
        "not_before": c.not_before,
        "status": c.status,
        "error_count": c.error_count,
        "first_error_at": c.first_error_at,
        "last_error": c.last_error,
        "parsed": c.success and c.outcome == "ok",
        "redirect_url": c.redirect_url,
        "redirect_count": c.redirect_count,
        "redirect_first_seen": c.redirect_first_seen,
        "poll_interval_s": int(c.interval.total_seconds()) if c.interval is not None else None,
        "last_success": c.at if c.success else None,
        "cache": cache,
        "etag": c.etag,
        "last_modified": c.last_modified,
        "body_hash": c.body_hash,
        "success": c.success,
        "claimed_error_count": c.claimed.error_count if c.claimed is not None else None,
    }


_INTERVALS = select(
    FEED.c.id,
    FEED.c.interval_s,
    FEED.c.status,
    FEED.c.last_check,
    FEED.c.next_check,
    FEED.c.not_before,
).where(FEED.c.id.in_(bindparam("fids", expanding=True)), FEED.c.interval_s.is_not(None))


def shortened(
    status: str,
    checked: datetime | None,
    due: datetime | None,
    not_before: datetime | None,
    interval: timedelta,
) -> datetime | None:
    """The next check of a feed whose ``interval`` was made shorter, or None when it
    stands: at most that long after its last check (no sooner than its Retry-After).
    A failing feed keeps its backoff."""
    if checked is None or due is None or status != "active":
        return None
    if (sooner := checked + interval) < due:
        return max(sooner, not_before or sooner)
    return None


def keep_user_intervals(conn: Any, claimed: dict[int, ClaimedSettings]) -> None:
    """After the poll's outcomes are written: a feed whose ``interval`` the user changed
    while the poll had it (``claimed``, what the poll read at its claim, differs from the
    row) gets it applied as the feeds.yaml sync applies it when no poll has the feed
    (``shortened``, no sooner than the schedule's floor): the poll computed its next
    check from the interval it read, a day's wait after `24h` became `30m`. Run in the
    poll's transaction, on the rows its UPDATE holds."""
    for part in chunks(sorted(claimed), 500):
        for fid, interval_s, status, checked, due, not_before in conn.execute(
            _INTERVALS, {"fids": part}
        ).all():
            read = claimed[fid]
            if interval_s == interval_seconds(read.interval):
                continue
            interval = max(timedelta(seconds=interval_s), read.min_interval)
            sooner = shortened(status, utc(checked), utc(due), utc(not_before), interval)
            if sooner is not None:
                conn.execute(update(FEED).where(FEED.c.id == fid).values(next_check=sooner))


def _userinfo(url: str) -> str:
    """The ``user:password`` of ``url`` ("" when it has none)."""
    return urlsplit(url).netloc.rpartition("@")[0]


def login_moved(url: str, was: str, now: str) -> str:
    """``url``, where a permanent redirect moved a feed subscribed as ``was``, with the
    login of its respelled subscription ``now`` when it carries ``was``'s (an adopted
    redirect within the origin keeps the login; one to another origin has none): a new
    password written into feeds.yaml is the same subscription (``feed_key``), and kept
    only on ``was`` it never reached the URL polled, which went on failing with the old."""
    login = _userinfo(was)
    if not login or _userinfo(url) != login or _userinfo(now) == login:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{_userinfo(now)}@{host}"))


class NewStory:
    """A story about to be inserted: plain attributes named like ``StoryRow``'s columns.

    Not a ``StoryRow``: building a SQLModel instance runs pydantic's default handling,
    which calls ``inspect.signature`` on every ``default_factory`` (~0.15 ms a row, over
    a quarter of the app thread's time when a first poll stores 35,000 stories). New
    rows go in with one Core INSERT, so they only need to carry values.
    """

    def __init__(self, feed_id: int, key: str, title: str, first_seen: datetime) -> None:
        self.id: int | None = None
        self.feed_id, self.key, self.title, self.first_seen = feed_id, key, title, first_seen
        self.guid: str | None = None
        self.link: str | None = None
        self.canonical_url: str | None = None
        self.author: str | None = None
        self.published: datetime | None = None
        self.updated: datetime | None = None
        self.sort_date: datetime | None = None
        self.summary: str | None = None
        self.content: str | None = None
        self.full_text: str | None = None
        self.extraction_status = "pending"
        self.extraction_error: str | None = None
        self.categories: list[str] = []
        self.content_hash = ""
        self.fingerprint: int | None = None
        self.fp_band0: int | None = None
        self.fp_band1: int | None = None
        self.fp_band2: int | None = None
        self.fp_band3: int | None = None
        self.title_hash: int | None = None
        self.cluster_id: int | None = None
        self.model_version: str | None = None
        self.later_at_url = False
        self.entry_link: str | None = None


def fill_row(row: StoryRow | NewStory, rec: StoryRecord, *, is_new: bool) -> None:
    d = rec.draft
    # The feed corrected the story's link: the text its old page gave is another
    # article's (or none), so it is not kept as the story's below. The http<->https
    # twin of its URL is the same page (dedupe.scheme_twin).
    url = d.canonical_url
    moved = url is not None and row.canonical_url not in (url, scheme_twin(url))
    row.guid, row.link, row.canonical_url = d.guid, d.link, d.canonical_url
    row.title, row.author = d.title, d.author
    row.published, row.updated = d.published, d.updated
    row.sort_date = d.published or row.first_seen
    row.summary, row.content = d.summary, d.content
    row.categories = list(d.categories)
    row.content_hash = d.content_hash
    # An edited story whose page gave nothing this time (failed, or not fetched) keeps
    # the article text it had: a transient page error must not erase it. One without
    # an article text takes the edit's outcome, "skipped" too (the feed now gives its
    # whole text): a failed story kept its old error, counted among the failed pages,
    # its page fetched again by every `extract --failed`.
    keep = not is_new and not moved and rec.full_text is None and bool(row.full_text)
    if not keep:
        row.full_text = rec.full_text
        row.extraction_status = rec.extraction_status
        row.extraction_error = rec.extraction_error
    row.fingerprint = signed64(rec.fingerprint)
    bands = dialect.simhash_bands(rec.fingerprint) if rec.fingerprint is not None else {}
    row.fp_band0, row.fp_band1 = bands.get("b0"), bands.get("b1")
    row.fp_band2, row.fp_band3 = bands.get("b2"), bands.get("b3")
    row.title_hash = title_hash(d.title)


def band(row: StoryRow | NewStory, i: int) -> int | None:
    v = getattr(row, f"fp_band{i}")
    return v if isinstance(v, int) else None


#: The largest value of ``feed.interval_s``: PostgreSQL's INTEGER (SQLite's holds 64 bits).
INTERVAL_S_MAX = 2**31 - 1


def interval_seconds(interval: timedelta | None) -> int | None:
    """A user's ``interval`` as ``feed.interval_s`` holds it: whole seconds, at least 1
    and at most ``INTERVAL_S_MAX`` (68 years). The schedule clamps it to [5 min, 24 h]
    anyway, but ``interval: 100000d`` failed the whole sync on PostgreSQL ("integer out
    of range"), and a fraction of a second was stored as 0, which reads back as no
    interval: adaptive, where the sync's warning said every 5 min."""
    if interval is None:
        return None
    return min(max(1, int(interval.total_seconds())), INTERVAL_S_MAX)


def new_feed_row(src: FeedSource, now: datetime) -> FeedRow:
    return FeedRow(
        url=src.url,
        name=src.name,
        topics=list(src.topics),
        enabled=src.enabled,
        status="active",
        interval_s=interval_seconds(src.interval),
        site=src.site,
        next_check=now,
        created=now,
    )


def utc(v: Any) -> datetime | None:
    if v is None:
        return None
    assert isinstance(v, datetime)
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def aware(v: datetime | None) -> datetime:
    assert v is not None
    return v


def feed_from_row(r: FeedRow | Row[Any], stories: int) -> Feed:
    """A Feed from an ORM row or a Core row of the feed table (same attribute names)."""
    assert r.id is not None
    status: FeedStatus = r.status  # type: ignore[assignment]
    return Feed(
        id=r.id,
        url=r.url,
        name=r.name,
        title=r.title,
        site=r.site,
        topics=tuple(r.topics or ()),
        status=status,
        enabled=r.enabled,
        etag=r.etag,
        last_modified=r.last_modified,
        body_hash=r.body_hash,
        interval=timedelta(seconds=r.interval_s) if r.interval_s else None,
        poll_interval=timedelta(seconds=r.poll_interval_s) if r.poll_interval_s else None,
        next_check=r.next_check,
        last_check=r.last_check,
        last_success=r.last_success,
        error_count=r.error_count,
        first_error_at=r.first_error_at,
        last_error=r.last_error,
        redirect_url=r.redirect_url,
        redirect_count=r.redirect_count,
        redirect_first_seen=r.redirect_first_seen,
        stories=stories,
        not_before=r.not_before,
        source_url=r.source_url,
        lease_owner=r.lease_owner,
        lease_until=r.lease_until,
        warnings=r.warnings,
    )


def story_from_row(
    r: StoryRow | Row[Any],
    feed_url: str,
    feed_title: str | None,
    topics: tuple[TopicScore, ...],
    sources: int = 1,
) -> Story:
    """A Story from an ORM row or a Core row of the story table (same attribute names)."""
    assert r.id is not None
    assert r.first_seen is not None
    return Story(
        id=r.id,
        feed_id=r.feed_id,
        feed_url=without_credentials(feed_url),  # shown and exported: never a password
        feed_title=feed_title,
        key=r.key,
        guid=r.guid,
        link=r.link,
        canonical_url=r.canonical_url,
        title=r.title,
        author=r.author,
        published=r.published,
        first_seen=r.first_seen,
        summary=r.summary,
        content=r.content,
        full_text=r.full_text,
        extraction_status=r.extraction_status,  # type: ignore[arg-type]
        extraction_error=r.extraction_error,
        categories=tuple(r.categories or ()),
        topics=topics,
        cluster_id=r.cluster_id,
        model_version=r.model_version,
        sources=sources,
        entry_link=r.entry_link,
    )


def search_body(row: StoryRow | NewStory) -> str:
    return search_text(row.summary, row.content, row.full_text)


def search_text(summary: str | None, content: str | None, full_text: str | None) -> str:
    """The body the full-text index holds for a story: its summary and content as plain
    text, then the extracted article."""
    from ..textutil import html_to_text  # light; avoids a parse.py import in the store

    parts = [html_to_text(summary or ""), html_to_text(content or ""), full_text or ""]
    return "\n".join(p for p in parts if p)


def chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def brief(e: BaseException) -> str:
    msg = str(getattr(e, "orig", None) or e).strip().splitlines()
    return msg[0] if msg else type(e).__name__
