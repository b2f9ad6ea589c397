"""SQLModel table definitions. Private to the store package: nothing outside ``store/``
imports these; the store converts rows to ``aggregator.types`` before returning.

Datetimes are stored as naive UTC and come back timezone-aware through ``UTCDateTime``,
so SQLite (which has no time zones) and PostgreSQL behave the same; text goes in through
``StoredText``, which both can store.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.schema import Column
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # defensive: raw SQLite text
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: What one of the databases cannot store in text: U+0000, which PostgreSQL refuses ("text
#: fields cannot contain NUL") while SQLite keeps it, and lone surrogates, which UTF-8
#: cannot encode (both drivers raise UnicodeEncodeError, not even a database error).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """``value`` as both databases store it: U+0000 dropped (nothing a reader could see,
    as ``textutil.xml_chars`` drops it from feeds), a lone surrogate as U+FFFD (a
    character was there, mangled). One scan and no copy when there is neither."""
    if value.isascii():  # O(1) in CPython; then only a NUL can be there (a memchr)
        return value.replace("\x00", "") if "\x00" in value else value
    if _UNSTORABLE.search(value) is None:
        return value
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


class StoredText(TypeDecorator[str]):
    """Text that both databases store alike (:func:`storable_text`). The parser cleans
    what feeds bring; this covers everything else that reaches a text column: a
    feeds.yaml name written ``"\\0"``, a server's reason phrase or ETag quoted in an
    error or kept as a validator, a name given on the command line in bytes that are
    not UTF-8. On PostgreSQL each of those failed the write, and an error that could
    not be recorded ended the whole poll, where SQLite stored it."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return storable_text(value) if isinstance(value, str) else value


def _dt(**kw: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, **kw)


class FeedRow(SQLModel, table=True):
    __tablename__ = "feed"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_type=StoredText, unique=True)
    # The URL the user subscribed to (feeds.yaml, OPML, `feeds add`) once a permanent
    # redirect has moved ``url`` away from it: syncing feeds.yaml still finds the feed.
    source_url: str | None = Field(default=None, sa_type=StoredText)
    name: str | None = Field(default=None, sa_type=StoredText)
    title: str | None = Field(default=None, sa_type=StoredText)
    site: str | None = Field(default=None, sa_type=StoredText)
    topics: list[str] = Field(default_factory=list, sa_type=JSON)
    status: str = Field(default="active")
    enabled: bool = Field(default=True)
    etag: str | None = Field(default=None, sa_type=StoredText)
    last_modified: str | None = Field(default=None, sa_type=StoredText)
    body_hash: str | None = None
    # dedupe.listing_digest of each key the latest parsed document lists, space-separated
    # (None until a document is parsed): prune spares these stories, which the document
    # would otherwise bring back as new at its next change
    listed: str | None = Field(default=None, sa_type=StoredText)
    interval_s: int | None = None  # user override
    poll_interval_s: int | None = None  # the base interval last chosen (before jitter)
    next_check: datetime | None = _dt(index=True)
    # A server's Retry-After: no request before it, not even from `poll --all`.
    not_before: datetime | None = _dt()
    last_check: datetime | None = _dt()
    last_success: datetime | None = _dt()
    error_count: int = 0
    first_error_at: datetime | None = _dt()
    last_error: str | None = Field(default=None, sa_type=StoredText)
    # The warnings of the document last parsed (``last_error`` of the success that parsed
    # it, None when it parsed cleanly): a 304 or the same body again shows them again in
    # ``last_error``, also after a failed poll replaced them there (migration 25).
    warnings: str | None = Field(default=None, sa_type=StoredText)
    redirect_url: str | None = Field(default=None, sa_type=StoredText)
    redirect_count: int = 0
    redirect_first_seen: datetime | None = _dt()
    lease_owner: str | None = None
    lease_until: datetime | None = _dt()
    created: datetime | None = _dt()


#: The stories that lists show when nothing filters them: each cluster's first (the
#: predicate ``SqlStore.stories`` writes, word for word, so that both planners see the
#: index applies). PostgreSQL estimates ``cluster_id = id`` at 0.5 % of the rows and, on
#: the plain date index, sorted the whole table for the newest 50; this index holds
#: only those rows, newest first by (sort_date, id) as lists order them, and their
#: cluster_id, so that a page is read from the index alone (SQLite re-checks the
#: predicate).
FIRST_OF_CLUSTER = "cluster_id IS NULL OR cluster_id = id"


class StoryRow(SQLModel, table=True):
    __tablename__ = "story"
    __table_args__ = (
        UniqueConstraint("feed_id", "key", name="uq_story_feed_key"),
        Index("ix_story_sort", "sort_date"),
        # migration 8 (migrations._m8_list_indexes) adds it to older databases
        Index(
            "ix_story_first_sort",
            "sort_date",
            "id",
            "cluster_id",
            sqlite_where=text(FIRST_OF_CLUSTER),
            postgresql_where=text(FIRST_OF_CLUSTER),
        ),
        # The near-duplicate look-up (SqlStore._assign_clusters): a SimHash band's value
        # among the stories first seen in the last NEAR_DUP_WINDOW, the index seeking to
        # the window. On the band alone (migration 2's indexes) every story of the store
        # with the value was read to test its date: a 16-bit band matches N / 65,536
        # stories, so the look-up grew with the store (6 ms of a 35-story save at
        # 300,000 on SQLite, 0.8 ms at 30,000). Migration 9
        # (migrations._m9_band_date_indexes) puts them in older databases.
        *(Index(f"ix_story_fp_band{i}_seen", f"fp_band{i}", "first_seen") for i in range(4)),
        # The look-up of copies under the same title (SqlStore._match_by_title); migration
        # 18 (migrations._m18_title_hash) adds it to older databases
        Index("ix_story_title_hash_seen", "title_hash", "first_seen"),
    )

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feed.id", index=True, ondelete="CASCADE")
    key: str = Field(sa_type=StoredText)
    guid: str | None = Field(default=None, sa_type=StoredText)
    link: str | None = Field(default=None, sa_type=StoredText)
    canonical_url: str | None = Field(default=None, sa_type=StoredText, index=True)
    title: str = Field(sa_type=StoredText)
    author: str | None = Field(default=None, sa_type=StoredText)
    published: datetime | None = _dt()
    updated: datetime | None = _dt()
    first_seen: datetime | None = _dt()
    sort_date: datetime | None = _dt()  # published, else first_seen
    summary: str | None = Field(default=None, sa_type=StoredText)
    content: str | None = Field(default=None, sa_type=StoredText)
    full_text: str | None = Field(default=None, sa_type=StoredText)
    extraction_status: str = "pending"
    extraction_error: str | None = Field(default=None, sa_type=StoredText)
    categories: list[str] = Field(default_factory=list, sa_type=JSON)
    content_hash: str = ""
    fingerprint: int | None = Field(default=None, sa_type=BigInteger)
    # The fingerprint's four 16-bit bands: two SimHashes at most 3 bits apart agree
    # exactly on at least one band (pigeonhole), so candidates come from an index.
    fp_band0: int | None = None
    fp_band1: int | None = None
    fp_band2: int | None = None
    fp_band3: int | None = None
    # neardup.title_hash of the title: copies of a story under its title, whose text is
    # too far for the bands (a dateline or an editor's note added), are found by it
    title_hash: int | None = Field(default=None, sa_type=BigInteger)
    cluster_id: int | None = Field(default=None, index=True)
    model_version: str | None = None
    # Stored at (or moved to) a canonical URL where another cluster's story was first
    # (a "today" page's next day's item): exports give the URL as entry id to the first story
    # only (Store.first_clusters_at), also once that one is pruned or its feed removed
    later_at_url: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # The link a cluster's first story took over as its entry id (export._claim) from the
    # first story before it, deleted (pruned, its feed removed): readers know the story
    # by that id, and a copy's own link (tracking parameters and all) showed it again
    entry_link: str | None = None


class TopicRow(SQLModel, table=True):
    __tablename__ = "topic"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    description: str | None = Field(default=None, sa_type=StoredText)


class StoryTopicRow(SQLModel, table=True):
    __tablename__ = "story_topic"
    __table_args__ = (Index("ix_story_topic_topic", "topic_id", "story_id"),)

    story_id: int = Field(foreign_key="story.id", primary_key=True, ondelete="CASCADE")
    topic_id: int = Field(foreign_key="topic.id", primary_key=True, ondelete="CASCADE")
    score: float
    source: str = "model"
    model_version: str | None = None


class LabelRow(SQLModel, table=True):
    """A user's judgement: kept until withdrawn (``label --forget``), never pruned,
    survives retraining."""

    __tablename__ = "label"
    __table_args__ = (UniqueConstraint("story_id", "topic_id", name="uq_label_story_topic"),)

    id: int | None = Field(default=None, primary_key=True)
    story_id: int = Field(foreign_key="story.id", index=True, ondelete="CASCADE")
    topic_id: int = Field(foreign_key="topic.id", ondelete="CASCADE")
    value: bool
    created: datetime | None = _dt()


class LabelArchiveRow(SQLModel, table=True):
    """The labels of a story whose feed was removed, with what training reads of the
    story: user labels are kept forever, and ``aggregator train`` still learns from
    them. Topics by name, so that a later taxonomy change cannot re-point them."""

    __tablename__ = "label_archive"

    id: int | None = Field(default=None, primary_key=True)
    feed_url: str = Field(sa_type=StoredText)
    link: str | None = Field(default=None, sa_type=StoredText)
    title: str = Field(sa_type=StoredText)
    summary: str | None = Field(default=None, sa_type=StoredText)
    content: str | None = Field(default=None, sa_type=StoredText)
    full_text: str | None = Field(default=None, sa_type=StoredText)
    categories: list[str] = Field(default_factory=list, sa_type=JSON)
    positive: list[str] = Field(default_factory=list, sa_type=JSON)
    negative: list[str] = Field(default_factory=list, sa_type=JSON)
    published: datetime | None = _dt()
    first_seen: datetime | None = _dt()
    archived: datetime | None = _dt()


class FetchLogRow(SQLModel, table=True):
    """Bounded history per feed (the newest ``FETCH_LOG_KEEP`` rows)."""

    __tablename__ = "fetch_log"
    __table_args__ = (Index("ix_fetch_log_feed_at", "feed_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feed.id", ondelete="CASCADE")
    at: datetime | None = _dt()
    outcome: str
    http_status: int | None = None
    ms: int = 0
    new: int = 0
    updated: int = 0
    error: str | None = Field(default=None, sa_type=StoredText)


class ReadCursorRow(SQLModel, table=True):
    """How far each reading list (``stories --new --cursor NAME``) has read
    (``types.ReadMark``): the largest story id it saw (SQLite), or the snapshot it read
    in (PostgreSQL, ``pg_current_snapshot()`` as text); and what it reads by."""

    __tablename__ = "read_cursor"

    name: str = Field(primary_key=True, sa_type=StoredText)
    story_id: int = Field(default=0, sa_type=BigInteger)
    snapshot: str | None = Field(default=None, sa_type=Text)
    updated: datetime | None = _dt()
    #: the options a named list reads by (the CLI's JSON; store migration 22)
    filters: str | None = Field(default=None, sa_type=StoredText)


class HostHoldRow(SQLModel, table=True):
    """A host that asked to be left alone (a 429, or a 503 with a Retry-After) and until
    when (``Store.hold_host``), by ``feedlist.host_key``: the host that answered, which
    after a redirect is not the feed URL's, and may have no feed of its own (store
    migration 23; the hold was read off its feeds' ``not_before`` before)."""

    __tablename__ = "host_hold"

    host: str = Field(primary_key=True, sa_type=StoredText)
    held_until: datetime | None = _dt()


class SchemaVersionRow(SQLModel, table=True):
    __tablename__ = "schema_version"

    version: int = Field(primary_key=True)
    applied: datetime | None = _dt()
    description: str = ""


def table(model: type[SQLModel]) -> Table:
    """The Core table behind a model (typed, for query building)."""
    t = model.__table__  # type: ignore[attr-defined]
    assert isinstance(t, Table)
    return t


def columns(model: type[SQLModel]) -> ReadOnlyColumnCollection[str, Column[Any]]:
    return table(model).c
