"""``SqlStore``: the one Store implementation, over SQLModel/SQLAlchemy, for SQLite and
PostgreSQL. Only this package talks SQL. Every write is one transaction; every method
wraps driver errors in ``StoreError``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlmodel import Session, col
from sqlmodel import select as mselect

from ..config import feed_key
from ..credentials import without_credentials
from ..dedupe import listing_digest, scheme_twin
from ..errors import ConfigError, NotFoundError, StoreError, StoreUnavailableError
from ..types import (
    ExtractionUpdate,
    Feed,
    FeedCheck,
    FeedSource,
    Prediction,
    SaveResult,
    Story,
    StoryQuery,
    StoryRecord,
    TopicScore,
)
from . import dialect, tables
from .rows import (
    CHECK_UPDATE,
    FEED,
    NewStory,
    aware,
    band,
    brief,
    check_params,
    chunks,
    feed_from_row,
    fill_row,
    new_feed_row,
    prune_fetch_log,
    search_body,
    search_text,
    signed64,
    story_from_row,
    utc,
)
from .summary import StoreSummary, summarize
from .tables import (
    FeedRow,
    FetchLogRow,
    LabelArchiveRow,
    LabelRow,
    StoryRow,
    StoryTopicRow,
    TopicRow,
    UTCDateTime,
    columns,
)

_STORY = tables.table(StoryRow)
_ARCHIVE = tables.table(LabelArchiveRow)
FC = columns(FeedRow)
SC = columns(StoryRow)
TC = columns(TopicRow)
STC = columns(StoryTopicRow)
LC = columns(LabelRow)
LGC = columns(FetchLogRow)

NEAR_DUP_WINDOW = timedelta(days=14)
# SQLite: how many of the newest stories a filtered page is first looked for among,
# and at most (SqlStore._recent_page)
_RECENT_WINDOW = 2000
_RECENT_MAX = 50_000
NEAR_DUP_MAX_DISTANCE = 3  # SimHash bits; 3 of 64 is the usual near-duplicate cut-off

# Statements run for every feed of a poll, built once (with expanding IN parameters):
# building them per call cost more Python time than SQLite spent running them.
_KNOWN = select(SC.key, SC.content_hash).where(
    SC.feed_id == bindparam("feed_id"), col(SC.key).in_(bindparam("keys", expanding=True))
)
# A feed's columns but its listed keys (only prune reads those; up to tens of KB a feed)
_FEED_POLL_COLS = [c for c in FEED.c if c.name != "listed"]
_FEED_URL = select(FC.url).where(FC.id == bindparam("fid"))
# PostgreSQL: a poll's write of a feed and `feeds remove` of it take turns on the feed's
# row (SQLite's writers take turns anyway). Otherwise the removal, which reads the labels
# to archive and then deletes the stories, could miss labels a concurrent poll had just
# restored from the archive onto returning stories, and delete them with the stories.
# FOR NO KEY UPDATE: the poll updates the row later in its transaction.
_FEED_URL_LOCKED = _FEED_URL.with_for_update(key_share=True)
_FEED_ID_BY_URL = select(FC.id).where(FC.url == bindparam("url"))
# PostgreSQL: a user's label and `feeds remove` take turns on the story's feed row too.
# Otherwise a label written after the removal archived the feed's labels was deleted
# with its story, unarchived. FOR KEY SHARE: polls of the feed (FOR NO KEY UPDATE) do
# not wait for labels, nor labels for them.
_STORY_FEED_SHARED = (
    select(FC.id)
    .join(_STORY, _STORY.c.feed_id == FC.id)
    .where(_STORY.c.id == bindparam("sid"))
    .with_for_update(read=True, key_share=True, of=FEED)
)

# What a Story is built from (rows.story_from_row), as Core rows
_STORY_READ = (
    *_STORY.c,
    FC.url.label("feed_url"),
    FC.title.label("feed_title"),
    FC.name.label("feed_name"),
)
_TOPICS_OF = select(STC.story_id, STC.topic_id, STC.score, STC.source).where(
    col(STC.story_id).in_(bindparam("ids", expanding=True))
)

_RECENT_HASHES = (
    select(SC.key, SC.content_hash)
    .where(SC.feed_id == bindparam("feed_id"))
    .order_by(col(SC.id).desc())
    .limit(bindparam("limit"))
)
_URL_CLUSTERS = (
    select(SC.canonical_url, func.min(SC.cluster_id))
    .where(
        col(SC.canonical_url).in_(bindparam("urls", expanding=True)),
        col(SC.cluster_id).is_not(None),
    )
    .group_by(SC.canonical_url)
)
# The four bands in one statement: a query per band through SQLAlchemy cost more than
# SQLite's work on it.
_BAND_MATCHES = union_all(
    *(
        select(literal(i), SC.cluster_id, SC.fingerprint, SC[f"fp_band{i}"]).where(
            SC[f"fp_band{i}"].in_(bindparam(f"values{i}", expanding=True)),
            SC.feed_id != bindparam("feed_id"),
            col(SC.cluster_id).is_not(None),
            col(SC.first_seen) >= bindparam("since"),
        )
        for i in range(4)
    )
)
# PostgreSQL's planner statistics (SqlStore._keep_statistics): for each table a poll
# writes, its row count at its last ANALYZE (-1: never; 0 also when none has run since it
# was created empty), its changes since then, and whether it has no statistics at all
# though it holds over _STATS_MIN_CHANGES rows (the change count restarts at 0 after a
# crash, pg_upgrade or a copy of the database, which may leave it without statistics)
_STATS_TABLES = ("story", "story_topic", "fetch_log", "feed")
_STATS_STATE = text(
    " UNION ALL ".join(
        f"SELECT '{t}', c.reltuples, s.n_mod_since_analyze, "
        "NOT EXISTS (SELECT 1 FROM pg_stats p "
        "WHERE p.schemaname = s.schemaname AND p.tablename = s.relname) "
        f"AND EXISTS (SELECT 1 FROM {t} OFFSET :min_rows) "
        "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        f"WHERE s.relid = to_regclass('{t}')"
        for t in _STATS_TABLES
    )
)
_STATS_MIN_CHANGES = 1000
_STATS_SCALE = 0.2

# A new story is inserted whole, with its id (SqlStore._insert_stories)
_STORY_COLUMNS = [c.name for c in _STORY.c]
_NEXT_STORY_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('story', 'id')) FROM generate_series(1, :n)"
)
# PostgreSQL: the story table with the search column migration 1 adds to it, so that a
# new row's search vector is computed in its INSERT
_PG_STORY = Table(
    "story",
    MetaData(),
    *(Column(c.name, c.type, primary_key=c.primary_key) for c in _STORY.c),
    Column("search", TSVECTOR),
)
_PG_INSERT_STORY = insert(_PG_STORY).values(
    search=dialect.pg_search_vector(
        bindparam("search_title", type_=Text), bindparam("search_body", type_=Text)
    )
)


def _feed_ref(ref: int | str) -> Any:
    """A feed by id, or by URL: its current one or the one it was subscribed under."""
    if isinstance(ref, int):
        return FC.id == ref
    return or_(FC.url == ref, FC.source_url == ref)


def _feeds_named(s: Session, ref: str) -> list[int]:
    """The ids of the feeds ``--feed ref`` (and ``serve``'s ``?feed=``) names, in the
    first of these ways that names any:

    1. digits: the feed with that id, as `feeds list` shows it and `feeds remove` takes
       it (a number was a substring of names, so ``--feed 1`` found "Top 1", never feed
       1);
    2. a URL: the feeds whose URL, or the URL they were subscribed under before a
       redirect was adopted, is the same subscription (``config.feed_key``: http or
       https, the host's case, a trailing slash, a default port), credentials or none
       (so none can be guessed through it), and not the feeds under it
       (``…/feed/comments``);
    3. a case-insensitive part of the name, the title or the URL without credentials
       (``example.org``).

    Matched here rather than with LIKE: ``%`` and ``_`` are text, not wildcards, and
    ``str.casefold`` folds every letter the same on both databases (SQLite's lower()
    folds ASCII only). A password is never matched, so ``?feed=`` tells none. A few
    ms for 1,000 feeds."""
    rows = s.execute(select(FC.id, FC.url, FC.source_url, FC.name, FC.title)).all()
    if ref.isascii() and ref.isdigit():
        # past 19 digits no id (and past 4,300 int() refuses: a ValueError)
        wanted = int(ref) if len(ref.lstrip("0")) <= 19 else None
        return [int(r.id) for r in rows if r.id == wanted]
    key = feed_key(without_credentials(ref))  # not remembered: any client's text
    if key.startswith("//"):  # it has a host: a URL, which may name a subscription
        same = [
            int(r.id)
            for r in rows
            if any(u and _subscription(u) == key for u in (r.url, r.source_url))
        ]
        if same:
            return same
    needle = ref.casefold()
    return [
        int(r.id)
        for r in rows
        if any(
            needle in text.casefold()
            for text in (r.name, r.title, without_credentials(r.url))
            if text is not None
        )
    ]


@lru_cache(maxsize=8192)
def _subscription(url: str) -> str:
    """``feed_key`` of ``url`` without its credentials, remembered: computed for every
    feed's URL at each ``--feed`` it took 10 ms at 1,000 feeds, and feeds change
    rarely (``serve`` answers many ``?feed=`` requests)."""
    return feed_key(without_credentials(url))


def _archived_story(r: LabelArchiveRow) -> Story:
    first_seen = r.first_seen or r.archived
    assert r.id is not None and first_seen is not None
    return Story(
        id=-r.id,
        feed_id=0,
        feed_url=without_credentials(r.feed_url),
        feed_title=None,
        key=f"archived:{r.id}",
        guid=None,
        link=r.link,
        canonical_url=None,
        title=r.title,
        author=None,
        published=r.published,
        first_seen=first_seen,
        summary=r.summary,
        content=r.content,
        full_text=r.full_text,
        extraction_status="skipped",
        extraction_error=None,
        categories=tuple(r.categories or ()),
    )


def _dead_owner_on(host: str, owner: str) -> bool:
    """Whether a lease owner ``host:pid:tag`` is a process of ``host`` that has ended."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return False
    name, pid_text, _ = parts
    if name != host or not pid_text.isdigit() or int(pid_text) <= 0:
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # PermissionError: it runs, as another user
        return False
    return False


def _lock_story_feed(s: Session, story_id: int) -> None:
    """Take the story's feed row (``_STORY_FEED_SHARED``) for a label write, or raise
    NotFoundError when the story is not there (any more: a removal that held the row
    has committed)."""
    if s.execute(_STORY_FEED_SHARED, {"sid": story_id}).first() is None:
        raise NotFoundError(f"no story {story_id}")


def _reactivate(row: FeedRow, now: datetime) -> None:
    if row.status in ("disabled", "gone", "error"):
        row.status = "active"
    row.error_count, row.first_error_at, row.next_check = 0, None, now


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicInfo:
    name: str
    description: str | None
    stories: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLogEntry:
    at: datetime
    outcome: str
    http_status: int | None
    ms: int
    new: int
    updated: int
    error: str | None


def _index_text(row: StoryRow | NewStory, rec: StoryRecord) -> str:
    """The record's own text (built in the worker), unless it has none or the row kept an
    article text the record does not carry (fill_row): then the row's."""
    if rec.text is None or (rec.full_text is None and row.full_text):
        return search_body(row)
    return rec.text


# SQLite result codes (the low byte) that mean "not now" rather than "not so":
# BUSY, LOCKED, IOERR, CANTOPEN, PROTOCOL.
_SQLITE_UNAVAILABLE = {5, 6, 10, 14, 15}


def _store_error(e: SQLAlchemyError) -> StoreError:
    """``e`` as a StoreError: a StoreUnavailableError when the database could not answer
    (PostgreSQL unreachable or restarting, a lost connection, the pool exhausted, SQLite
    locked), which ``serve`` answers with 503 instead of blaming the request."""
    unavailable = isinstance(e, DisconnectionError | PoolTimeoutError) or (
        isinstance(e, DBAPIError) and e.connection_invalidated
    )
    if isinstance(e, OperationalError | InterfaceError):
        code = getattr(e.orig, "sqlite_errorcode", None)
        unavailable = unavailable or code is None or code & 0xFF in _SQLITE_UNAVAILABLE
    return (StoreUnavailableError if unavailable else StoreError)(brief(e))


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelledStory:
    story: Story
    positive: tuple[str, ...]
    negative: tuple[str, ...]


class SqlStore:
    def __init__(self, url: str, *, connect_timeout: int = dialect.PG_CONNECT_TIMEOUT_S) -> None:
        try:
            self.engine: Engine = dialect.make_engine(url, connect_timeout=connect_timeout)
            dialect.migrate(self.engine)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot open database: {brief(e)}") from e
        self.dialect = self.engine.dialect.name
        self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._topic_ids: dict[str, int] = {}
        # PostgreSQL: stories written by this process since the planner's statistics were
        # last looked at, and how many more before the next look (_keep_statistics)
        self._written = 0
        self._next_stats_check = 1

    def close(self) -> None:
        self.engine.dispose()

    # --- sessions -----------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with Session(self.engine) as s:
                yield s
        except SQLAlchemyError as e:
            raise _store_error(e) from e

    @contextmanager
    def _write(self) -> Iterator[Session]:
        try:
            with Session(self._writer) as s, s.begin():
                yield s
        except IntegrityError as e:
            raise StoreError(f"constraint violated: {brief(e)}") from e
        except SQLAlchemyError as e:
            raise _store_error(e) from e

    def _one_at_a_time(self, s: Session) -> None:
        """PostgreSQL: wait until no other process is adding feeds or topics (a
        transaction-level advisory lock), so that what this transaction reads next is
        what it may insert into. Several daemons started at once each found the
        taxonomy's topics and feeds.yaml's new feeds missing and inserted them: all but
        one died with "duplicate key value violates unique constraint". (SQLite: the
        IMMEDIATE write lock excludes every other writer already.)"""
        if self.dialect == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(7261002)"))

    # --- topics -------------------------------------------------------------------------

    def sync_topics(self, topics: Sequence[tuple[str, str | None]]) -> None:
        """Add the taxonomy's new topics and update descriptions; a read when nothing
        changed (every command syncs, and a query must not wait for a write lock)."""
        with self._read() as s:
            stored = {(r.name, r.description) for r in s.exec(mselect(TopicRow))}
        if set(topics) <= stored:
            return
        with self._write() as s:
            self._one_at_a_time(s)
            existing = {r.name: r for r in s.exec(mselect(TopicRow))}
            for name, description in topics:
                row = existing.get(name)
                if row is None:
                    s.add(TopicRow(name=name, description=description))
                elif row.description != description:
                    row.description = description
        self._topic_ids.clear()

    def _topic_map(self, s: Session) -> dict[str, int]:
        if not self._topic_ids:
            self._topic_ids = {r.name: r.id for r in s.exec(mselect(TopicRow)) if r.id}
        return self._topic_ids

    def topics(self) -> list[TopicInfo]:
        """Every stored topic with its stories counted as ``stories`` lists them: one per
        cluster of duplicates that has the topic on any copy. Counting every tagged copy
        said DNS 11 where `stories -t DNS` listed 10.

        The tagged rows are counted (an index scan), less each cluster's extra tagged
        copies, looked for only in the clusters that have copies (~6 % of the stories):
        counting distinct clusters over every tagged row read every story's row, 1.8 s
        at 300,000 stories on SQLite. At 300,000 stories: ~115 ms on SQLite and ~350 ms
        on PostgreSQL, against ~40 and ~70 ms for the count of copies (see
        ``_in_clusters_with_copies``)."""
        with self._read() as s:
            counts = dict(
                s.execute(select(STC.topic_id, func.count()).group_by(STC.topic_id)).all()
            )
            extra = (
                select(STC.topic_id, func.count() - func.count(_STORY.c.cluster_id.distinct()))
                .select_from(_STORY.join(tables.table(StoryTopicRow), STC.story_id == _STORY.c.id))
                .where(self._in_clusters_with_copies(_STORY))
                .group_by(STC.topic_id)
            )
            for topic_id, n in s.execute(extra):
                counts[topic_id] -= n
            rows = s.exec(mselect(TopicRow).order_by(TC.id)).all()
            return [
                TopicInfo(name=r.name, description=r.description, stories=counts.get(r.id, 0))
                for r in rows
            ]

    def _in_clusters_with_copies(self, story: Any) -> Any:
        """Whether ``story`` belongs to a cluster of two or more, found from the cluster
        index alone. SQLite's holds each row's id: its copies (``cluster_id != id``) are
        one pass over it. PostgreSQL's does not, so the clusters counted twice or more
        there (an index-only scan), as an array: as ``IN (subquery)`` the planner
        guessed a third of all clusters and read the whole story table for their
        stories (530-890 ms at 300,000 stories, against 320-360 ms; the rest is
        fetching the ~35,000 rows of those clusters for their ids)."""
        other = _STORY.alias("other")
        if self.dialect == "sqlite":
            copies = select(other.c.cluster_id).where(other.c.cluster_id != other.c.id)
            return story.c.cluster_id.in_(copies)
        many = (
            select(other.c.cluster_id)
            .group_by(other.c.cluster_id)
            .having(func.count() > 1)
            .subquery("many")
        )
        ids = select(func.array_agg(many.c.cluster_id)).scalar_subquery()
        return story.c.cluster_id == func.any(cast(ids, ARRAY(Integer)))

    # --- feeds --------------------------------------------------------------------------

    def upsert_feeds(self, sources: Sequence[FeedSource], now: datetime) -> tuple[int, int]:
        """Add the sources' feeds and update the settings they carry (name, topics,
        interval, enabled). A feed is found by its URL or by the URL it was subscribed
        under before a permanent redirect was adopted, else as the same feed spelled
        differently (``config.feed_key``: http or https, host case, a trailing slash),
        which then takes the source's spelling, as the user has edited the URL (a feed a
        redirect moved keeps its URL: the spelling becomes the one it was subscribed
        under, which is matched by its key too, so it is not added again). Only the
        user's settings are compared: the 30-day rule's ``disabled`` status stays until
        the file turns the feed from ``enabled: false`` to true or ``feeds enable`` is
        run."""
        added = changed = 0
        with self._write() as s:
            self._one_at_a_time(s)
            rows: dict[str, FeedRow] = {}
            by_key: dict[str, FeedRow] = {}
            stored = list(s.exec(mselect(FeedRow)))
            for r in stored:
                rows[r.url] = r
                if r.source_url:
                    rows.setdefault(r.source_url, r)
                by_key.setdefault(feed_key(r.url), r)
            for r in stored:  # the subscribed URL respelled, after a redirect moved the feed
                if r.source_url:
                    by_key.setdefault(feed_key(r.source_url), r)
            for src in sources:
                row = rows.get(src.url)
                updated = False  # counted once, respelled or with new settings or both
                if row is None and (row := by_key.get(feed_key(src.url))) is not None:
                    rows[src.url] = row
                    if row.source_url:  # url is where a redirect moved it: it stays there
                        row.source_url = src.url
                    else:
                        row.url = src.url
                    updated = True
                interval_s = int(src.interval.total_seconds()) if src.interval else None
                if row is None:
                    rows[src.url] = row = new_feed_row(src, now)
                    s.add(row)
                    added += 1
                    continue
                new = (src.name, list(src.topics), interval_s, src.enabled)
                if (row.name, row.topics, row.interval_s, row.enabled) != new:
                    if src.enabled and not row.enabled:
                        _reactivate(row, now)
                    row.name, row.topics, row.interval_s, row.enabled = new
                    updated = True
                changed += updated
        return added, changed

    def enable_feed(self, ref: int | str, now: datetime) -> Feed:
        """Turn a feed back on, whatever stopped it (``enabled: false``, the 30-day rule,
        410 Gone): due at once, its error count cleared."""
        with self._write() as s:
            row = s.exec(mselect(FeedRow).where(_feed_ref(ref))).first()
            if row is None:
                raise NotFoundError(f"no feed {ref}")
            row.enabled = True
            _reactivate(row, now)
            s.flush()
            return feed_from_row(row, 0)

    def add_feed(self, source: FeedSource, now: datetime) -> tuple[Feed, bool]:
        with self._write() as s:
            self._one_at_a_time(s)
            row = s.exec(mselect(FeedRow).where(_feed_ref(source.url))).first()
            created = row is None
            if row is None:
                row = new_feed_row(source, now)
                s.add(row)
                s.flush()
            return feed_from_row(row, 0), created

    def remove_feed(self, url: str, now: datetime) -> int:
        """Delete a feed and its stories; the labels users gave any of them move to the
        label archive with the text training reads (returns how many stories had
        labels)."""
        with self._write() as s:
            # after a poll writing this feed (see _FEED_URL_LOCKED), whose stories and
            # restored labels are then read here
            row = s.exec(mselect(FeedRow).where(_feed_ref(url)).with_for_update()).first()
            if row is None:
                raise NotFoundError(f"no feed with URL {url}")
            kept = self._labels_of(s, SC.feed_id == row.id)
            for ls in kept:
                st = ls.story
                s.add(
                    LabelArchiveRow(
                        feed_url=without_credentials(row.url),  # kept forever: no password
                        link=st.link,
                        title=st.title,
                        summary=st.summary,
                        content=st.content,
                        full_text=st.full_text,
                        categories=list(st.categories),
                        positive=list(ls.positive),
                        negative=list(ls.negative),
                        published=st.published,
                        first_seen=st.first_seen,
                        archived=now,
                    )
                )
            conn = s.connection()
            gone = conn.execute(select(SC.id, SC.cluster_id).where(SC.feed_id == row.id)).all()
            dialect.keep_story_ids(conn)
            dialect.delete_search_index(conn, [int(i) for i, _ in gone])
            s.execute(delete(StoryRow).where(col(SC.feed_id) == row.id))
            self._rehome_clusters(conn, sorted(int(i) for i, c in gone if c == i))
            s.delete(row)
        return len(kept)

    @staticmethod
    def _rehome_clusters(conn: Any, deleted_roots: Sequence[int]) -> None:
        """After stories are deleted: a cluster whose id was one of theirs (its first
        story) moves to its smallest remaining member id. Queries show a story only when
        ``cluster_id = id``, so otherwise other feeds' copies of a removed feed's story
        vanished from every list and export; and new stories join a cluster by its
        ``cluster_id``, which stays the first (smallest) member's id this way."""
        moves: list[dict[str, int]] = []
        for chunk in chunks(list(deleted_roots), 500):
            for old, new in conn.execute(
                select(_STORY.c.cluster_id, func.min(_STORY.c.id))
                .where(_STORY.c.cluster_id.in_(chunk))
                .group_by(_STORY.c.cluster_id)
            ).all():
                moves.append({"old": int(old), "new": int(new)})
        if moves:
            conn.execute(
                update(_STORY)
                .where(_STORY.c.cluster_id == bindparam("old"))
                .values(cluster_id=bindparam("new")),
                moves,
            )

    def prune_stories(
        self, before: datetime, keep_per_feed: int, *, dry_run: bool = False, batch: int = 500
    ) -> int:
        """Delete the stories first seen and dated before ``before``, except each feed's
        ``keep_per_feed`` newest, every story its feed's latest document still lists
        (deleted, it would come back as new at the document's next change: a feed listing
        its whole archive would bring it all back once per retention period) and every
        story a user labelled (kept until withdrawn: training reads them). Returns how many were
        deleted (or, with ``dry_run``, would be). Deletes ``batch`` stories per
        transaction, so a poll writing meanwhile waits for one batch at most; the label
        check is repeated inside each one."""
        dated = func.coalesce(_STORY.c.sort_date, _STORY.c.first_seen)
        rank = (
            func.row_number()
            .over(partition_by=_STORY.c.feed_id, order_by=(dated.desc(), _STORY.c.id.desc()))
            .label("rank")
        )
        story = (_STORY.c.id, _STORY.c.feed_id, _STORY.c.key, _STORY.c.first_seen)
        ranked = select(*story, dated.label("dated"), rank).subquery()
        with self._read() as s:
            rows = s.execute(
                select(ranked.c.id, ranked.c.feed_id, ranked.c.key)
                .where(
                    ranked.c.rank > keep_per_feed,
                    ranked.c.first_seen < utc(before),
                    ranked.c.dated < utc(before),
                    ~select(LC.story_id).where(LC.story_id == ranked.c.id).exists(),
                )
                .order_by(ranked.c.id)
            ).all()
            feed_ids = {int(r.feed_id) for r in rows}
            listings = s.execute(
                select(FEED.c.id, FEED.c.listed).where(
                    FEED.c.id.in_(feed_ids), FEED.c.listed.is_not(None)
                )
            ).all()
        listed = {int(fid): frozenset(digests.split()) for fid, digests in listings}
        candidates = [
            int(r.id)
            for r in rows
            if listing_digest(r.key) not in listed.get(int(r.feed_id), frozenset())
        ]
        if dry_run:
            return len(candidates)
        deleted = 0
        for chunk in chunks(candidates, batch):
            with self._write() as s:
                conn = s.connection()
                # PostgreSQL: lock the rows before looking for labels, in a statement of
                # its own. A label given meanwhile holds a key-share lock on its story
                # until it commits; the check below, a later statement, then sees it (a
                # check in the DELETE itself would not, and the cascade would delete the
                # label). A label given after this waits and then finds no story.
                # (SQLite: the write transaction excludes every other writer already.)
                conn.execute(
                    select(_STORY.c.id)
                    .where(_STORY.c.id.in_(chunk))
                    .order_by(_STORY.c.id)
                    .with_for_update()
                )
                gone = conn.execute(
                    select(_STORY.c.id, _STORY.c.cluster_id).where(
                        _STORY.c.id.in_(chunk),
                        ~select(LC.story_id).where(LC.story_id == _STORY.c.id).exists(),
                    )
                ).all()
                ids = [int(i) for i, _ in gone]
                if not ids:
                    continue
                dialect.keep_story_ids(conn)
                dialect.delete_search_index(conn, ids)
                conn.execute(delete(_STORY).where(_STORY.c.id.in_(ids)))
                self._rehome_clusters(conn, [int(i) for i, c in gone if c == i])
                deleted += len(ids)
        return deleted

    def compact(self) -> None:
        """Give the space of deleted stories back to the file system (SQLite: merge the
        search index's segments, then VACUUM; PostgreSQL's autovacuum does this itself)."""
        if self.dialect != "sqlite":
            return
        import sqlite3

        raw = self.engine.raw_connection()
        try:
            # The driver connection runs in autocommit (dialect.make_engine), which VACUUM
            # needs: SQLAlchemy's Connection would BEGIN first.
            conn = raw.driver_connection
            assert conn is not None
            conn.execute("INSERT INTO story_fts(story_fts) VALUES ('optimize')")
            conn.execute("VACUUM")
        except sqlite3.Error as e:
            raise StoreError(f"cannot compact the database: {brief(e)}") from e
        finally:
            raw.close()

    def feeds(self) -> list[Feed]:
        with self._read() as s:
            counts = dict(s.execute(select(SC.feed_id, func.count()).group_by(SC.feed_id)).all())
            # Core rows, as claim_due reads them: ORM objects cost more than the count
            rows = s.execute(select(*_FEED_POLL_COLS).order_by(FEED.c.id)).all()
            return [feed_from_row(r, counts.get(r.id, 0)) for r in rows]

    def get_feed(self, ref: int | str) -> Feed:
        with self._read() as s:
            row = s.exec(mselect(FeedRow).where(_feed_ref(ref))).first()
            if row is None:
                raise NotFoundError(f"no feed {ref}")
            n = s.execute(
                select(func.count()).select_from(StoryRow).where(SC.feed_id == row.id)
            ).scalar_one()
            return feed_from_row(row, int(n))

    @staticmethod
    def _due(now: datetime, include_not_due: bool) -> Any:
        q = select(FC.id).where(
            FC.enabled == True,  # noqa: E712
            col(FC.status).in_(("active", "error")),
            or_(col(FC.lease_until).is_(None), col(FC.lease_until) < now),
        )
        if not include_not_due:
            q = q.where(or_(col(FC.next_check).is_(None), col(FC.next_check) <= now))
        # a server's Retry-After binds `poll --all` and `feeds enable` too
        q = q.where(or_(col(FC.not_before).is_(None), col(FC.not_before) <= now))
        return q.order_by(col(FC.next_check).asc().nulls_first(), FC.id)

    def due_feed_ids(
        self, now: datetime, *, limit: int | None = None, include_not_due: bool = False
    ) -> list[int]:
        """The ids ``claim_due`` would lease now, most overdue first, without leasing
        them: a poll claims them a chunk at a time as it makes room."""
        q = self._due(now, include_not_due)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as s:
            return list(s.execute(q).scalars())

    def claim_due(
        self,
        now: datetime,
        *,
        owner: str,
        lease: timedelta,
        limit: int | None = None,
        include_not_due: bool = False,
        ids: Sequence[int] | None = None,
    ) -> list[Feed]:
        """Lease due feeds to ``owner`` so that several daemons never poll one feed at once.
        PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the IMMEDIATE write lock. A lease
        that is not released (a daemon died) expires after ``lease``. With ``ids``, only
        those of them still due and not leased to anyone else."""
        with self._write() as s:
            q = self._due(now, include_not_due)
            if ids is not None:
                if not ids:
                    return []
                q = q.where(col(FC.id).in_(list(ids)))
            if limit is not None:
                q = q.limit(limit)
            if self.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(s.execute(q).scalars())
            if not ids:
                return []
            s.execute(
                update(FeedRow)
                .where(col(FC.id).in_(ids))
                .values(lease_owner=owner, lease_until=now + lease)
            )
            # Core rows, not ORM objects: the same attributes at a fraction of the cost
            # (a poll of 1,000 feeds claims them all)
            rows = s.execute(select(*_FEED_POLL_COLS).where(FEED.c.id.in_(ids))).all()
            by_id = {r.id: r for r in rows}
            return [feed_from_row(by_id[i], 0) for i in ids]

    def release(self, feed_ids: Sequence[int], owner: str) -> None:
        if not feed_ids:
            return
        with self._write() as s:
            s.execute(
                update(FeedRow)
                .where(col(FC.id).in_(list(feed_ids)), FC.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def renew_leases(self, feed_ids: Sequence[int], owner: str, until: datetime) -> int:
        """Extend ``owner``'s leases on ``feed_ids`` to ``until`` (a poll still holding
        them); returns how many it still held."""
        if not feed_ids:
            return 0
        renewed = 0
        with self._write() as s:
            for chunk in chunks(sorted(feed_ids), 500):
                done = s.execute(
                    update(FeedRow)
                    .where(col(FC.id).in_(chunk), FC.lease_owner == owner)
                    .values(lease_until=until)
                )
                renewed += int(done.rowcount or 0)  # type: ignore[attr-defined]
        return renewed

    def release_dead_leases(self, host: str, now: datetime) -> int:
        """Release the leases of crashed processes of this host: owners are
        ``host:pid:tag`` (``App.owner``); those named ``host`` whose pid no longer runs
        would otherwise keep their unstored feeds from every poll until the leases
        expire. Other hosts' leases are never touched (their pids mean nothing here).
        Returns how many feeds were released."""
        with self._read() as s:
            owners = s.execute(
                select(FC.lease_owner)
                .where(col(FC.lease_owner).is_not(None), col(FC.lease_until) > now)
                .distinct()
            ).scalars()
            dead = sorted(o for o in owners if o and _dead_owner_on(host, o))
        if not dead:
            return 0
        with self._write() as s:
            done = s.execute(
                update(FeedRow)
                .where(col(FC.lease_owner).in_(dead))
                .values(lease_owner=None, lease_until=None)
            )
            return int(done.rowcount or 0)  # type: ignore[attr-defined]

    def next_due(self) -> datetime | None:
        """When the next enabled feed can be claimed: the earliest over the active and
        error feeds of the latest of its ``next_check``, ``not_before`` (a server's
        Retry-After) and ``lease_until`` (another daemon's, or a dead one's, lease). A
        past time means something is due now. Ignoring leases and ``not_before`` made a
        daemon beside another one busy-loop: the feeds the other held stayed "due"."""
        nc, nb, lu = FC.next_check, FC.not_before, FC.lease_until
        # CASE, not greatest()/max(): SQLite's scalar max() is NULL if any argument is.
        checked = case((and_(nb.is_not(None), or_(nc.is_(None), nb > nc)), nb), else_=nc)
        claimable = case(
            (and_(lu.is_not(None), or_(checked.is_(None), lu > checked)), lu), else_=checked
        )
        with self._read() as s:
            v = s.execute(
                select(func.min(type_coerce(claimable, UTCDateTime))).where(
                    FC.enabled == True,  # noqa: E712
                    col(FC.status).in_(("active", "error")),
                )
            ).scalar_one_or_none()
            return utc(v)

    def fetch_log(self, feed_id: int, limit: int = 20) -> list[FetchLogEntry]:
        with self._read() as s:
            rows = s.exec(
                mselect(FetchLogRow)
                .where(LGC.feed_id == feed_id)
                .order_by(col(LGC.at).desc(), col(LGC.id).desc())
                .limit(limit)
            )
            return [
                FetchLogEntry(
                    at=aware(r.at),
                    outcome=r.outcome,
                    http_status=r.http_status,
                    ms=r.ms,
                    new=r.new,
                    updated=r.updated,
                    error=r.error,
                )
                for r in rows
            ]

    def post_dates(self, feed_id: int, since: datetime) -> list[datetime]:
        """Dates (published, else first seen) of the feed's stories since ``since``, for
        adaptive polling."""
        with self._read() as s:
            rows = s.execute(
                select(SC.sort_date).where(SC.feed_id == feed_id, col(SC.sort_date) >= since)
            ).scalars()
            return sorted(aware(r) for r in rows if r is not None)

    # --- stories ------------------------------------------------------------------------

    def recent_story_hashes(self, feed_id: int, limit: int = 500) -> dict[str, str]:
        """key -> content hash of the feed's ``limit`` newest stories: what a parse worker
        needs to skip the entries it would only find unchanged."""
        with self._read() as s:
            rows = s.execute(_RECENT_HASHES, {"feed_id": feed_id, "limit": limit}).all()
        return dict(rows)

    def known_stories(self, feed_id: int, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        out: dict[str, str] = {}
        with self._read() as s:
            for chunk in chunks(list(keys), 500):
                rows = s.execute(_KNOWN, {"feed_id": feed_id, "keys": chunk}).all()
                out.update(dict(rows))
        return out

    def extracted_texts(self, urls: Sequence[str]) -> dict[str, str]:
        """The article text extracted already for each of these canonical URLs that has
        one (by any feed's story: the same article in a site's main feed and its topic
        feeds), the latest where several have."""
        out: dict[str, str] = {}
        if not urls:
            return out
        with self._read() as s:
            for chunk in chunks(sorted(set(urls)), 500):
                rows = s.execute(
                    select(SC.canonical_url, SC.full_text)
                    .where(
                        col(SC.canonical_url).in_(chunk),
                        SC.extraction_status == "ok",
                        col(SC.full_text).is_not(None),
                    )
                    .order_by(SC.id)
                )
                out.update({url: text for url, text in rows if url and text})
        return out

    def save_update(self, check: FeedCheck, records: Sequence[StoryRecord]) -> SaveResult:
        """Write one feed's poll atomically: its stories (insert or update by key), their
        topics, the search index, clusters, the feed's new state and a fetch-log row."""
        with self._write() as s:
            conn = s.connection()
            feed_url = conn.execute(_FEED_URL_LOCKED, {"fid": check.feed_id}).scalar()
            if feed_url is None:
                raise NotFoundError(f"no feed {check.feed_id}")
            topic_ids = self._topic_map(s)
            # Which keys are stored already, in Core; ORM rows only for those (a poll sends
            # mostly new stories: the parse job left out the unchanged ones). A key's
            # http<->https twin is looked up in the same query: a stored twin is this
            # story from before the site moved scheme (dedupe.scheme_twin), unless the
            # twin is itself one of this poll's keys.
            keys = [r.draft.key for r in records]
            sent = set(keys)
            twins = {
                key: twin
                for key in keys
                if (twin := scheme_twin(key)) is not None and twin not in sent
            }
            stored = [
                key
                for chunk in chunks([*keys, *twins.values()], 500)
                for key, _ in conn.execute(_KNOWN, {"feed_id": check.feed_id, "keys": chunk})
            ]
            existing = {
                row.key: row
                for chunk in chunks(stored, 500)
                for row in s.exec(
                    mselect(StoryRow).where(SC.feed_id == check.feed_id, col(SC.key).in_(chunk))
                )
            }
            fresh: list[tuple[NewStory, StoryRecord]] = []
            changed: list[tuple[StoryRow, StoryRecord]] = []
            for rec in records:
                row = existing.get(rec.draft.key)
                if row is None and rec.draft.key in twins:
                    row = existing.get(twins[rec.draft.key])
                    if row is not None:
                        row.key = rec.draft.key  # later polls find it directly
                if row is None:
                    new = NewStory(check.feed_id, rec.draft.key, rec.draft.title, check.at)
                    fill_row(new, rec, is_new=True)
                    fresh.append((new, rec))
                else:
                    fill_row(row, rec, is_new=False)
                    changed.append((row, rec))
            new_rows = [row for row, _ in fresh]
            followers = self._assign_clusters(conn, new_rows, check.feed_id, check.at)
            self._insert_stories(conn, fresh, followers)
            restored = self._restore_archived_labels(conn, feed_url, fresh, topic_ids, check.at)
            topic_rows: list[dict[str, Any]] = []
            for new_row, rec in fresh:
                labels = restored.get(new_row.id or 0, {})
                topic_rows.extend(
                    {
                        "story_id": new_row.id,
                        "topic_id": tid,
                        "score": 1.0,
                        "source": "user",
                        "model_version": None,
                    }
                    for tid, value in labels.items()
                    if value
                )
                if rec.prediction is None:
                    continue
                seen: set[int] = set(labels)  # the user's word, either way, wins
                for ts in rec.prediction.topics:
                    tid = topic_ids.get(ts.topic)
                    if tid is not None and tid not in seen:
                        seen.add(tid)
                        topic_rows.append(
                            {
                                "story_id": new_row.id,
                                "topic_id": tid,
                                "score": float(ts.score),
                                "source": ts.source,
                                "model_version": rec.prediction.model_version,
                            }
                        )
            if topic_rows:
                conn.execute(insert(tables.table(StoryTopicRow)), topic_rows)
            # PostgreSQL: the new rows got their search vector with the INSERT
            indexed: list[tuple[StoryRow | NewStory, StoryRecord]] = [*changed]
            if self.dialect == "sqlite":
                indexed = [*fresh, *changed]
            for row, rec in changed:  # rare: a story whose text changed
                assert row.id is not None
                if rec.prediction is not None:
                    self._write_topics(s, row.id, rec.prediction, topic_ids)
                    row.model_version = rec.prediction.model_version
            dialect.write_search_index(
                conn,
                [
                    (row.id, row.title, _index_text(row, rec))
                    for row, rec in indexed
                    if row.id is not None
                ],
            )
            new_ids = [row.id for row, _ in fresh if row.id is not None]
            updated_ids = [row.id for row, _ in changed if row.id is not None]
            self._apply_checks(conn, [(check, feed_url)], len(new_ids), len(updated_ids))
        self._keep_statistics(len(new_ids) + len(updated_ids))
        return SaveResult(new=tuple(new_ids), updated=tuple(updated_ids))

    @staticmethod
    def _restore_archived_labels(
        conn: Any,
        feed_url: str,
        fresh: Sequence[tuple[NewStory, StoryRecord]],
        topic_ids: dict[str, int],
        now: datetime,
    ) -> dict[int, dict[int, bool]]:
        """Labels come back with their story: a new story whose feed URL and link match
        an archived labelled story (its feed was removed, and has been added again) gets
        the user's labels from the archive, which no longer holds them. Returns the
        restored labels by story id (topic id -> the label's value).

        Archived rows of one link apply oldest first, so the newest word on a topic wins;
        a topic no longer in the taxonomy stays archived (as ``train`` skips it)."""
        by_link = {row.link: row.id for row, _ in fresh if row.link and row.id is not None}
        if not by_link:
            return {}
        url = without_credentials(feed_url)
        found = [
            r
            for chunk in chunks(sorted(by_link), 500)
            for r in conn.execute(
                select(_ARCHIVE.c.id, _ARCHIVE.c.link, _ARCHIVE.c.positive, _ARCHIVE.c.negative)
                .where(_ARCHIVE.c.feed_url == url, _ARCHIVE.c.link.in_(chunk))
                .order_by(_ARCHIVE.c.id)
            )
        ]
        if not found:
            return {}
        by_name = {k.lower(): v for k, v in topic_ids.items()}
        restored: dict[int, dict[int, bool]] = defaultdict(dict)
        emptied: list[int] = []
        for arch_id, link, positive, negative in found:
            story_id = by_link[link]
            left: tuple[list[str], list[str]] = ([], [])
            for names, value, keep in ((positive, True, left[0]), (negative, False, left[1])):
                for name in names or ():
                    tid = by_name.get(str(name).lower())
                    if tid is None:
                        keep.append(name)
                    else:
                        restored[story_id][tid] = value
            if left[0] or left[1]:
                conn.execute(
                    update(_ARCHIVE)
                    .where(_ARCHIVE.c.id == arch_id)
                    .values(positive=left[0], negative=left[1])
                )
            else:
                emptied.append(int(arch_id))
        label_rows = [
            {"story_id": sid, "topic_id": tid, "value": value, "created": now}
            for sid, labels in restored.items()
            for tid, value in labels.items()
        ]
        if label_rows:
            conn.execute(insert(tables.table(LabelRow)), label_rows)
        for chunk in chunks(emptied, 500):
            conn.execute(delete(_ARCHIVE).where(_ARCHIVE.c.id.in_(chunk)))
        return dict(restored)

    def _keep_statistics(self, written: int) -> None:
        """PostgreSQL: ANALYZE the tables a poll writes when the server has no statistics
        for them or they are well out of date, as autovacuum would (a server may run with
        it off). Without statistics the planner takes an IN list of 35 URLs or SimHash
        bands for a sixth of the table (0.5 % a value): the poll's own look-ups went to
        (parallel) sequential scans, 100 ms a feed at 100,000 stories and growing with
        the store, ~3x the whole write with statistics.

        Cheap: looked at on a process's first write, then once this process has written
        a tenth of the stories there were (at least ``_STATS_MIN_CHANGES``); a table is
        analyzed when its changes since its last ANALYZE pass ``_STATS_MIN_CHANGES`` +
        ``_STATS_SCALE`` x its rows (laxer than autovacuum's 50 + 10 %, so that a server
        running it does the work), about 40 times on the way to 1,000,000 stories, ~1 s
        each. In its own transaction, after the poll's, with SKIP_LOCKED: another
        process analyzing the table meanwhile is not waited for. A failure is not the
        poll's: its stories are stored, and the next look tries again."""
        if self.dialect != "postgresql" or written <= 0:
            return
        self._written += written
        if self._written < self._next_stats_check:
            return
        self._written = 0
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                rows = c.execute(_STATS_STATE, {"min_rows": _STATS_MIN_CHANGES}).all()
                stale = [
                    str(name)
                    for name, reltuples, changes, unseen in rows
                    if unseen or changes > _STATS_MIN_CHANGES + _STATS_SCALE * max(reltuples, 0)
                ]
                stories = max((max(r, 0) for name, r, *_ in rows if name == "story"), default=0.0)
                self._next_stats_check = max(_STATS_MIN_CHANGES, int(stories / 10))
                if stale:
                    version = self.engine.dialect.server_version_info or (0,)
                    skip = "(SKIP_LOCKED) " if int(version[0]) >= 12 else ""
                    c.exec_driver_sql(f"ANALYZE {skip}{', '.join(sorted(stale))}")
        except SQLAlchemyError:
            self._next_stats_check = _STATS_MIN_CHANGES

    @staticmethod
    def _insert_stories(
        conn: Any,
        fresh: Sequence[tuple[NewStory, StoryRecord]],
        followers: Sequence[tuple[NewStory, NewStory]],
    ) -> None:
        """New stories in one executemany INSERT (Core, not the ORM unit of work: at 35
        stories per feed the flush machinery was the app thread's biggest cost), each
        written once, whole: its id is taken first, so its cluster (:meth:`_own_clusters`)
        goes in with it, and on PostgreSQL its search vector too. An UPDATE of the new
        rows after the insert (their own cluster, then the search vector, a statement
        per row) wrote every new story three times there, each version with an entry in
        each of the table's ten indexes, two of them dead rows that only VACUUM clears:
        a third of a poll's write time, and a table and indexes three times their size
        on a server without autovacuum. The rows stay plain data holders and get their
        ids."""
        if not fresh:
            return
        if conn.dialect.name == "sqlite":
            # The writer holds BEGIN IMMEDIATE, so nothing else inserts: the ids after
            # the largest ever given (deleted ones are not given again).
            last = dialect.last_story_id(conn)
            ids = list(range(last + 1, last + 1 + len(fresh)))
        else:
            ids = sorted(conn.execute(_NEXT_STORY_IDS, {"n": len(fresh)}).scalars())
        for (row, _), story_id in zip(fresh, ids, strict=True):
            row.id = int(story_id)
        SqlStore._own_clusters([row for row, _ in fresh], followers)
        values = []
        for row, rec in fresh:
            if rec.prediction is not None:
                row.model_version = rec.prediction.model_version
            v = {n: getattr(row, n) for n in _STORY_COLUMNS}
            if conn.dialect.name != "sqlite":
                v["search_title"] = dialect.fold_diacritics(row.title)
                body = _index_text(row, rec)[: dialect.PG_SEARCH_BODY_MAX]
                v["search_body"] = dialect.fold_diacritics(body)
            values.append(v)
        if conn.dialect.name == "sqlite":
            conn.execute(insert(_STORY), values)
        else:
            conn.execute(_PG_INSERT_STORY, values)

    def save_checks(self, checks: Sequence[FeedCheck]) -> None:
        """Apply several story-less outcomes (304s, errors) in one transaction: one
        executemany UPDATE, one executemany INSERT into the fetch log, one prune."""
        if not checks:
            return
        with self._write() as s:
            conn = s.connection()
            urls = dict(
                conn.execute(
                    select(FEED.c.id, FEED.c.url).where(
                        FEED.c.id.in_(sorted({c.feed_id for c in checks}))
                    )
                ).all()
            )
            missing = [c.feed_id for c in checks if c.feed_id not in urls]
            if missing:
                raise NotFoundError(f"no feed {missing[0]}")
            self._apply_checks(conn, [(c, urls[c.feed_id]) for c in checks], 0, 0)

    def _assign_clusters(
        self, conn: Any, rows: Sequence[NewStory], feed_id: int, now: datetime
    ) -> list[tuple[NewStory, NewStory]]:
        """Before the rows are inserted: a row with the canonical URL (or its http<->https
        twin) of a stored story (of any feed), else with a near-identical SimHash among
        recent stories of other feeds, gets that story's cluster. Returns (row, leader) for
        later rows of this batch that share a URL with an earlier, new-cluster row; rows left
        without a cluster start their own (:meth:`_own_clusters`, once ids exist). One query
        for the URLs and one for the four bands, on the connection: through the ORM session
        each cost ~0.4 ms more."""
        if not rows:
            return []
        by_url: dict[str, int] = {}
        urls = {r.canonical_url for r in rows if r.canonical_url}
        # The http<->https twin of a URL is the same article (dedupe.scheme_twin).
        twins = {url: twin for url in urls if (twin := scheme_twin(url)) is not None}
        for chunk in chunks(sorted(urls | set(twins.values())), 500):
            for url, cluster in conn.execute(_URL_CLUSTERS, {"urls": chunk}).all():
                by_url[url] = int(cluster)
        leaders: dict[str, NewStory] = {}
        followers: list[tuple[NewStory, NewStory]] = []
        pending: list[NewStory] = []
        for row in rows:
            url = row.canonical_url
            twin = twins.get(url) if url else None
            if url and url in by_url:
                row.cluster_id = by_url[url]
            elif twin and twin in by_url:
                row.cluster_id = by_url[twin]
            elif url and url in leaders:
                followers.append((row, leaders[url]))
            else:
                if url:
                    leaders[url] = row
                if row.fingerprint is not None:
                    pending.append(row)
        if not pending:
            return followers
        cands: dict[tuple[int, int | None], list[tuple[int, int]]] = defaultdict(list)
        since = now - NEAR_DUP_WINDOW
        for group in chunks(pending, 500):
            params: dict[str, Any] = {"feed_id": feed_id, "since": since}
            for i in range(4):
                params[f"values{i}"] = sorted({v for r in group if (v := band(r, i)) is not None})
            for i, cluster, fp, value in conn.execute(_BAND_MATCHES, params).all():
                cands[(int(i), int(value))].append((int(cluster), int(fp)))
        for row in pending:
            assert row.fingerprint is not None
            fp = row.fingerprint & ((1 << 64) - 1)
            match = next(
                (
                    cluster
                    for i in range(4)
                    for cluster, other in cands.get((i, band(row, i)), ())
                    if ((other & ((1 << 64) - 1)) ^ fp).bit_count() <= NEAR_DUP_MAX_DISTANCE
                ),
                None,
            )
            if match is not None:
                row.cluster_id = match
        return followers

    @staticmethod
    def _own_clusters(
        rows: Sequence[NewStory], followers: Sequence[tuple[NewStory, NewStory]]
    ) -> None:
        """Once the rows have ids, before they are inserted: rows without a cluster start
        their own (id = cluster id); batch followers join their leader's cluster."""
        following = {id(row) for row, _ in followers}
        for row in rows:
            if row.cluster_id is None and id(row) not in following:
                row.cluster_id = row.id
        for row, leader in followers:
            row.cluster_id = leader.cluster_id

    def _write_topics(
        self, s: Session, story_id: int, pred: Prediction, topic_ids: dict[str, int]
    ) -> None:
        labels = dict(s.execute(select(LC.topic_id, LC.value).where(LC.story_id == story_id)).all())
        s.execute(delete(StoryTopicRow).where(col(STC.story_id) == story_id))
        written: set[int] = set()
        for ts in pred.topics:
            tid = topic_ids.get(ts.topic)
            if tid is None or tid in written or labels.get(tid) is False:
                continue
            if labels.get(tid) is True:
                continue  # the user's label is written below
            written.add(tid)
            s.add(
                StoryTopicRow(
                    story_id=story_id,
                    topic_id=tid,
                    score=float(ts.score),
                    source=ts.source,
                    model_version=pred.model_version,
                )
            )
        for tid, value in labels.items():
            if value:
                s.add(StoryTopicRow(story_id=story_id, topic_id=tid, score=1.0, source="user"))

    @staticmethod
    def _apply_checks(
        conn: Any, checks: Sequence[tuple[FeedCheck, str]], new: int, updated: int
    ) -> None:
        """Apply outcomes (each with its feed's current URL) with Core statements: one
        executemany UPDATE of the polling state, the rare URL adoption and learnt title or
        site, the fetch-log rows and one prune. (The ORM unit of work for one feed row
        and one log row was a tenth of a first poll's store time.)"""
        conn.execute(CHECK_UPDATE, [check_params(c) for c, _ in checks])
        for check, url in checks:
            extra: dict[str, Any] = {}
            if check.url and check.url != url:
                clash = conn.execute(_FEED_ID_BY_URL, {"url": check.url}).first()
                if clash is None:
                    extra["url"] = check.url
                    # SET sees the row as it was: the first URL subscribed stays known
                    extra["source_url"] = func.coalesce(FEED.c.source_url, FEED.c.url)
            if check.success and check.title:
                extra["title"] = check.title
            if check.success and check.site:
                extra["site"] = check.site
            if check.success and check.listed is not None:
                extra["listed"] = " ".join(check.listed)
            if extra:
                conn.execute(update(FEED).where(FEED.c.id == check.feed_id).values(**extra))
        conn.execute(
            insert(tables.table(FetchLogRow)),
            [
                {
                    "feed_id": c.feed_id,
                    "at": c.at,
                    "outcome": c.outcome,
                    "http_status": c.http_status,
                    "ms": c.ms,
                    "new": new,
                    "updated": updated,
                    "error": c.last_error if c.outcome == "error" else None,
                }
                for c, _ in checks
            ],
        )
        prune_fetch_log(conn, sorted({c.feed_id for c, _ in checks}))

    def stories(self, query: StoryQuery) -> list[Story]:
        """The stories matching ``query``, newest first, one per cluster: its first
        (smallest id) story *among those matching* — the cluster's own first story when
        nothing filters; with ``--feed B``, feed B's copy of a story feed A had first; a
        topic, date or search filter finds a story through any of its copies.

        A copy is shown when no earlier copy of its cluster matches (a correlated NOT
        EXISTS on the cluster index, only for rows that are not their cluster's first), so
        the query still walks the date index and stops at ``limit``; a window function
        over every match cost seconds for a big topic.

        A page is found as ids, then read in full (see ``benchmarks/store.py`` for what
        each step saves on a store of 300,000 stories): the unfiltered list from
        ``ix_story_first_sort``; on SQLite a filtered page first among the newest
        stories (``_recent_page``); otherwise every match sorted by (sort_date, id)
        alone. A feed filter is resolved to feed ids first."""
        with self._read() as s:
            where = self._where(s, query)
            newest_first = (_STORY.c.sort_date.desc(), _STORY.c.id.desc())
            with_feed = _STORY.join(FEED, FEED.c.id == _STORY.c.feed_id)
            if query.limit is None and not query.offset:
                q = select(*_STORY_READ).select_from(with_feed).where(*where(_STORY))
            elif (ids := self._recent_page(s, query, where)) is not None:
                q = select(*_STORY_READ).select_from(with_feed).where(_STORY.c.id.in_(ids))
            else:
                # A page: its ids first, sorted and cut with nothing but (sort_date, id) in
                # hand, then those rows in full. Sorting the full rows of every match
                # (texts and all) to keep 50 was most of a topic or search query's time.
                page = select(_STORY.c.id).where(*where(_STORY)).order_by(*newest_first)
                if query.offset:
                    page = page.offset(query.offset)
                if query.limit is not None:
                    page = page.limit(query.limit)
                sub = page.subquery("page")
                q = select(*_STORY_READ).select_from(with_feed.join(sub, sub.c.id == _STORY.c.id))
            q = q.order_by(*newest_first)
            rows = s.execute(q).all()
            return self._to_stories(s, rows)

    def matching_ids(self, query: StoryQuery) -> list[int]:
        """The ids of the stories ``stories(query)`` returns, in the same order: the
        same conditions, sorted and cut with nothing but (sort_date, id) in hand."""
        with self._read() as s:
            where = self._where(s, query)
            with_feed = _STORY.join(FEED, FEED.c.id == _STORY.c.feed_id)
            q = (
                select(_STORY.c.id)
                .select_from(with_feed)
                .where(*where(_STORY))
                .order_by(_STORY.c.sort_date.desc(), _STORY.c.id.desc())
            )
            if query.offset:
                q = q.offset(query.offset)
            if query.limit is not None:
                q = q.limit(query.limit)
            return [int(i) for i in s.execute(q).scalars()]

    def stories_by_ids(self, ids: Sequence[int], *, chunk: int = 500) -> Iterator[Story]:
        """The stories of ``ids`` in that order, read ``chunk`` at a time, each chunk in
        a read session of its own (no transaction held open while the caller writes
        them out); a story deleted meanwhile is skipped."""
        for part in chunks(list(ids), chunk):
            with self._read() as s:
                found = {st.id: st for st in self._select_stories(s, col(SC.id).in_(part))}
            yield from (found[i] for i in part if i in found)

    def iter_stories(self, query: StoryQuery, *, chunk: int = 500) -> Iterator[Story]:
        """What ``stories(query)`` returns (``limit=None``: every match), in bounded
        memory: the matching ids first (read now, so an unknown topic raises here), then
        the stories ``chunk`` at a time as the iterator is consumed."""
        return self.stories_by_ids(self.matching_ids(query), chunk=chunk)

    def _where(self, s: Session, query: StoryQuery) -> Callable[..., list[Any]]:
        """``where(story, min_id=None)``: the conditions on ``story`` (the story table or
        an alias of it) of the rows ``query`` lists, one per cluster (see ``stories``).
        Unknown topics raise NotFoundError; a feed filter is resolved to feed ids here."""
        topic_ids: list[int] = []
        if query.topics:
            topic_rows = s.exec(
                mselect(TopicRow).where(func.lower(TC.name).in_([t.lower() for t in query.topics]))
            ).all()
            if len(topic_rows) != len({t.lower() for t in query.topics}):
                known = {r.name.lower() for r in topic_rows}
                missing = [t for t in query.topics if t.lower() not in known]
                raise NotFoundError(f"unknown topic(s): {', '.join(missing)}")
            topic_ids = [int(tr.id) for tr in topic_rows if tr.id is not None]
        # Resolved here on the feed table: as a condition on each story's feed it could
        # use no index, and a small feed's list read every story of the store
        feed_ids = _feeds_named(s, query.feed) if query.feed else []

        def matches(story: Any, *, earlier: bool = False, min_id: int | None = None) -> list[Any]:
            """The filters on ``story``; a topic's or a search's stories as a list of
            ids, only from ``min_id`` on when given (``_recent_page``)."""
            conds: list[Any] = []
            for tid in topic_ids:
                tagged = select(STC.story_id).where(STC.topic_id == tid)
                if min_id is None:
                    conds.append(story.c.id.in_(tagged))
                else:  # "+ 0": a filter on the date index's walk (_recent_page)
                    tagged = tagged.where(STC.story_id >= min_id)
                    conds.append((story.c.id + 0).in_(tagged))
            if query.feed:
                # An earlier copy is looked for on the cluster's index, a recent page
                # on the date index: "+ 0" keeps SQLite (no statistics) from walking
                # a big feed's stories instead
                off_index = earlier or min_id is not None
                feed_id = story.c.feed_id + 0 if off_index else story.c.feed_id
                conds.append(feed_id.in_(feed_ids))
            if query.since:
                conds.append(story.c.sort_date >= query.since)
            if query.until:
                conds.append(story.c.sort_date < query.until)
            if query.text:
                conds.append(dialect.search_filter(self.dialect, query.text, story, min_id=min_id))
            return conds

        def where(story: Any, min_id: int | None = None) -> list[Any]:
            """``matches`` on ``story``, and its cluster shows it: no earlier copy
            matches as well. ``min_id``: neither the stories looked at nor their
            clusters' other copies have a smaller id (``_recent_page``)."""
            # FIRST_OF_CLUSTER as an expression: alone, ix_story_first_sort serves it
            first = or_(story.c.cluster_id.is_(None), story.c.cluster_id == story.c.id)
            conds = matches(story, min_id=min_id)
            if not conds:
                return [first]
            other = _STORY.alias("earlier")
            earlier = select(other.c.id).where(
                other.c.cluster_id == story.c.cluster_id,
                other.c.id < story.c.id,
                *matches(other, earlier=True, min_id=min_id),
            )
            return [*conds, or_(first, ~earlier.exists())]

        return where

    def _recent_page(
        self, s: Session, query: StoryQuery, where: Callable[[Any, int | None], list[Any]]
    ) -> list[int] | None:
        """SQLite, a filtered page: its ids looked for among the newest stories of the
        date range, or None when too few match there to be worth it. A first window of
        ``_RECENT_WINDOW`` stories (20 per story the page needs, if more), then, when
        it held at least a quarter of the page, one sized by the share of it that
        matched, up to ``_RECENT_MAX``.

        SQLite has no statistics to choose by: given a topic or a search it gathered
        every story having it, read each one and sorted them all, whether the topic
        tags a fifth of the store (60,000 rows read to show 50) or a hundred stories.
        A rare filter fails the windows (a few ms each) and is gathered as before,
        which is cheap for it. PostgreSQL's planner has per-topic and per-word
        statistics and chooses well by itself."""
        if self.dialect != "sqlite" or query.limit is None:
            return None
        if not (query.topics or query.feed or query.text):
            return None  # unfiltered: ix_story_first_sort is the list itself
        need = query.offset + query.limit
        size = max(_RECENT_WINDOW, 20 * need)
        for _ in range(2):
            if size > _RECENT_MAX:
                return None
            ids = self._page_within(s, query, where, size, need)
            if ids is None:
                return None
            if len(ids) == need:
                return ids[query.offset :]
            if len(ids) * 4 < need:
                return None  # a rare filter: gathering its matches is cheap
            size = size * need // len(ids) * 3 // 2
        return None

    @staticmethod
    def _page_within(
        s: Session,
        query: StoryQuery,
        where: Callable[[Any, int | None], list[Any]],
        size: int,
        need: int,
    ) -> list[int] | None:
        """The first ``need`` ids of the list among the ``size`` newest stories of the
        date range (from the ``size``-th newest one's date on), walking the date index
        newest first; None when the range holds fewer (or undated ones within reach).
        Exact when ``need`` are found: every story before that date sorts after every
        story from it on."""
        c = _STORY.c
        newest_first = (c.sort_date.desc(), c.id.desc())
        dated = [c.sort_date >= query.since] if query.since else []
        dated += [c.sort_date < query.until] if query.until else []
        edge = s.execute(
            select(c.sort_date).where(*dated).order_by(*newest_first).offset(size - 1).limit(1)
        ).scalar()
        if edge is None:  # a small range, or undated stories (sorted last) within reach
            return None
        window = [*dated, c.sort_date >= edge]
        # The smallest id among them and the other copies of their clusters: the topic's
        # and the search's lists are read from there on, and "+ 0" keeps them (and the
        # feed's) off the plan's lead, so that the date index leads (on the id, min()
        # walked the table from its start).
        copies = _STORY.alias("copies")
        clusters = select(c.cluster_id).where(*window, c.cluster_id != c.id)
        lows = s.execute(
            select(
                select(func.min(c.id + 0)).where(*window).scalar_subquery(),
                select(func.min(copies.c.id + 0))
                .where(copies.c.cluster_id.in_(clusters))
                .scalar_subquery(),
            )
        ).one()
        if lows[0] is None:
            return None
        lowest = int(min(i for i in lows if i is not None))
        return list(
            s.execute(
                select(c.id)
                .where(*window, *where(_STORY, lowest))
                .order_by(*newest_first)
                .limit(need)
            ).scalars()
        )

    def _to_stories(self, s: Session, rows: Sequence[Any]) -> list[Story]:
        """Stories from rows of ``_STORY_READ`` (Core rows: building ORM objects cost
        more than the query for a long list)."""
        ids = [r.id for r in rows]
        topics: dict[int, list[TopicScore]] = defaultdict(list)
        names = {v: k for k, v in self._topic_map(s).items()}
        for chunk in chunks(ids, 500):
            for story_id, topic_id, score, source in s.execute(_TOPICS_OF, {"ids": chunk}):
                topics[story_id].append(
                    TopicScore(topic=names.get(topic_id, "?"), score=score, source=source)
                )
        out = []
        for row in rows:
            ts = tuple(sorted(topics.get(row.id, ()), key=lambda t: (-t.score, t.topic)))
            out.append(story_from_row(row, row.feed_url, row.feed_title or row.feed_name, ts))
        return out

    def _select_stories(self, s: Session, *conds: Any) -> list[Story]:
        q = (
            select(*_STORY_READ)
            .select_from(_STORY.join(FEED, FEED.c.id == _STORY.c.feed_id))
            .where(*conds)
            .order_by(_STORY.c.id)
        )
        return self._to_stories(s, s.execute(q).all())

    def get_story(self, story_id: int) -> Story:
        with self._read() as s:
            found = self._select_stories(s, SC.id == story_id)
            if not found:
                raise NotFoundError(f"no story {story_id}")
            return found[0]

    def get_stories(self, ids: Sequence[int]) -> list[Story]:
        out: list[Story] = []
        with self._read() as s:
            for chunk in chunks(list(ids), 500):
                out.extend(self._select_stories(s, col(SC.id).in_(chunk)))
        return out

    def cluster_members(self, story: Story) -> list[Story]:
        if story.cluster_id is None:
            return []
        with self._read() as s:
            return self._select_stories(s, SC.cluster_id == story.cluster_id, SC.id != story.id)

    def summary(self, now: datetime) -> StoreSummary:
        """Counts of feeds, stories, extractions, labels and leases, the schema version
        and the database's size, for ``aggregator status``."""
        with self._read() as s:
            path = self.engine.url.database if self.dialect == "sqlite" else None
            return summarize(s, self.dialect, now, path if path != ":memory:" else None)

    def story_count(self) -> int:
        with self._read() as s:
            return int(s.execute(select(func.count()).select_from(_STORY)).scalar_one())

    def story_ids(self, *, after: int = 0) -> list[int]:
        """Every story's id above ``after``, ascending (ids are never given twice, so
        ``after`` = the largest id seen means "stored since")."""
        with self._read() as s:
            query = select(SC.id).where(col(SC.id) > after).order_by(SC.id)
            return [int(i) for i in s.execute(query).scalars()]

    def waiting_extractions(self, limit: int, *, failed: bool = False) -> list[Story]:
        """Stories with a link whose article text is still to be fetched (stored by a poll
        without extraction: ``pending``), and with ``failed`` those whose page failed
        too; newest first, at most ``limit``."""
        status = _STORY.c.extraction_status
        # "= 'pending'" as the partial index ix_story_pending says it (store migration
        # 13): the daemon asks after every cycle
        waiting = status.in_(["pending", "failed"]) if failed else status == "pending"
        with self._read() as s:
            ids = list(
                s.execute(
                    select(_STORY.c.id)
                    .where(waiting, _STORY.c.link.is_not(None))
                    .order_by(_STORY.c.id.desc())
                    .limit(limit)
                ).scalars()
            )
        by_id = {st.id: st for st in self.get_stories(ids)}
        return [by_id[i] for i in ids if i in by_id]

    def save_extractions(self, items: Sequence[ExtractionUpdate]) -> int:
        """Write what extracting stored stories gave (``aggregator extract``): the article
        text or why there is none, the fingerprint and topics over the full text (the
        user's labels stay), and the search index. Stories deleted meanwhile are skipped;
        returns how many were written."""
        if not items:
            return 0
        written = 0
        with self._write() as s:
            conn = s.connection()
            topic_ids = self._topic_map(s)
            wanted = sorted({it.story_id for it in items})
            present: dict[int, tuple[str, str | None, str | None]] = {}
            for chunk in chunks(wanted, 500):
                for sid, title, summary, content in conn.execute(
                    select(_STORY.c.id, _STORY.c.title, _STORY.c.summary, _STORY.c.content)
                    .where(_STORY.c.id.in_(chunk))
                    .order_by(_STORY.c.id)
                    .with_for_update()
                ):
                    present[int(sid)] = (title, summary, content)
            indexed: list[tuple[int, str, str]] = []
            for it in items:
                if it.story_id not in present:
                    continue
                values: dict[str, Any] = {
                    "extraction_status": it.status,
                    "extraction_error": it.error,
                }
                if it.full_text is not None:
                    values["full_text"] = it.full_text
                if it.fingerprint is not None:
                    bands = dialect.simhash_bands(it.fingerprint)
                    values["fingerprint"] = signed64(it.fingerprint)
                    values.update({f"fp_band{i}": bands.get(f"b{i}") for i in range(4)})
                if it.prediction is not None:
                    self._write_topics(s, it.story_id, it.prediction, topic_ids)
                    values["model_version"] = it.prediction.model_version
                conn.execute(update(_STORY).where(_STORY.c.id == it.story_id).values(**values))
                if it.full_text is not None:
                    title, summary, content = present[it.story_id]
                    indexed.append(
                        (it.story_id, title, search_text(summary, content, it.full_text))
                    )
                written += 1
            dialect.write_search_index(conn, indexed)
        return written

    def set_predictions(self, items: Sequence[tuple[int, Prediction]]) -> int:
        """Replace model topics of the given stories (user labels stay); returns how many
        stories' topic sets changed."""
        changed = 0
        with self._write() as s:
            topic_ids = self._topic_map(s)
            names = {v: k for k, v in topic_ids.items()}
            # Stories deleted since the caller read them (`feeds remove`, a prune, while
            # `train` classified them) are skipped: their topics would violate the
            # foreign key, and the whole re-tag failed. PostgreSQL: the others are
            # locked against deletion until this commits (SQLite: the write lock).
            wanted = sorted({story_id for story_id, _ in items})
            present: set[int] = set()
            for chunk in chunks(wanted, 500):
                q = select(_STORY.c.id).where(_STORY.c.id.in_(chunk)).order_by(_STORY.c.id)
                if self.dialect == "postgresql":
                    q = q.with_for_update(key_share=True)
                present.update(int(i) for i in s.execute(q).scalars())
            for story_id, pred in items:
                if story_id not in present:
                    continue
                before = {
                    names.get(t)
                    for t in s.execute(
                        select(STC.topic_id).where(STC.story_id == story_id)
                    ).scalars()
                }
                self._write_topics(s, story_id, pred, topic_ids)
                s.execute(
                    update(StoryRow)
                    .where(col(SC.id) == story_id)
                    .values(model_version=pred.model_version)
                )
                s.flush()
                after = {
                    names.get(t)
                    for t in s.execute(
                        select(STC.topic_id).where(STC.story_id == story_id)
                    ).scalars()
                }
                changed += before != after
        return changed

    # --- labels -------------------------------------------------------------------------

    def add_labels(
        self, story_id: int, positive: Sequence[str], negative: Sequence[str], now: datetime
    ) -> None:
        with self._write() as s:
            _lock_story_feed(s, story_id)
            topic_ids = {k.lower(): v for k, v in self._topic_map(s).items()}
            for name, value in [(p, True) for p in positive] + [(n, False) for n in negative]:
                tid = topic_ids.get(name.lower())
                if tid is None:
                    raise ConfigError(f"unknown topic {name!r} (see `aggregator topics`)")
                row = s.exec(
                    mselect(LabelRow).where(LC.story_id == story_id, LC.topic_id == tid)
                ).first()
                if row is None:
                    s.add(LabelRow(story_id=story_id, topic_id=tid, value=value, created=now))
                else:
                    row.value, row.created = value, now
                s.execute(
                    delete(StoryTopicRow).where(and_(STC.story_id == story_id, STC.topic_id == tid))
                )
                if value:
                    s.add(StoryTopicRow(story_id=story_id, topic_id=tid, score=1.0, source="user"))

    def forget_labels(self, story_id: int, topics: Sequence[str]) -> int:
        """Withdraw the user's labels (either way) of ``topics`` on a story; its topics
        then come from the model again (the caller writes them). Returns how many labels
        there were."""
        with self._write() as s:
            _lock_story_feed(s, story_id)
            topic_ids = {k.lower(): v for k, v in self._topic_map(s).items()}
            tids = []
            for name in topics:
                tid = topic_ids.get(name.lower())
                if tid is None:
                    raise ConfigError(f"unknown topic {name!r} (see `aggregator topics`)")
                tids.append(tid)
            gone = s.execute(
                delete(LabelRow).where(and_(LC.story_id == story_id, col(LC.topic_id).in_(tids)))
            ).rowcount  # type: ignore[attr-defined]
            s.execute(
                delete(StoryTopicRow).where(
                    and_(
                        STC.story_id == story_id,
                        col(STC.topic_id).in_(tids),
                        STC.source == "user",
                    )
                )
            )
            return int(gone or 0)

    def labelled_stories(self) -> list[LabelledStory]:
        """Every story a user labelled, then the archived ones of removed feeds (their
        ``story.id`` is minus the archive row's id: no stored story has it)."""
        with self._read() as s:
            out = self._labels_of(s)
            for r in s.exec(mselect(LabelArchiveRow).order_by(col(LabelArchiveRow.id))):
                out.append(
                    LabelledStory(
                        story=_archived_story(r),
                        positive=tuple(r.positive),
                        negative=tuple(r.negative),
                    )
                )
        return out

    def story_labels(self, story_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The topics a user gave the story (+) and took from it (-)."""
        with self._read() as s:
            found = self._labels_of(s, SC.id == story_id)
        return (found[0].positive, found[0].negative) if found else ((), ())

    def _labels_of(self, s: Session, *conds: Any) -> list[LabelledStory]:
        names = {v: k for k, v in self._topic_map(s).items()}
        by_story: dict[int, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
        q = mselect(LabelRow).order_by(LC.id)
        if conds:
            q = q.join(StoryRow, col(SC.id) == LC.story_id).where(*conds)
        for r in s.exec(q):
            by_story[r.story_id][0 if r.value else 1].append(names[r.topic_id])
        stories = {
            st.id: st
            for chunk in chunks(list(by_story), 500)
            for st in self._select_stories(s, col(SC.id).in_(chunk))
        }
        return [
            LabelledStory(story=stories[i], positive=tuple(p), negative=tuple(n))
            for i, (p, n) in by_story.items()
            if i in stories
        ]
