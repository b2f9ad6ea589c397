"""What ``aggregator status`` shows of the store: counts of feeds by state, of stories,
extractions and labels, the leases held, the schema version and the database's size.

Read in one read-only session with plain aggregate queries: a few hundred ms at 300,000
stories (the extraction counts and the day's new stories scan the story table), which a
status command can afford and a poll never pays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from . import tables
from .tables import FeedRow, LabelArchiveRow, LabelRow, SchemaVersionRow, StoryRow

_FEED = tables.table(FeedRow)
_STORY = tables.table(StoryRow)
_LABEL = tables.table(LabelRow)
_ARCHIVE = tables.table(LabelArchiveRow)
_SCHEMA = tables.table(SchemaVersionRow)
_READ = tables.table(tables.ReadCursorRow)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSummary:
    """The store at one moment (``now``)."""

    backend: str  # "sqlite" | "postgresql"
    schema_version: int
    size_bytes: int | None  # the database file (and its WAL), or PostgreSQL's database
    #: Enabled feeds by status ("active", "error", "gone", "disabled"), and "off" for the
    #: feeds turned off in feeds.yaml (``enabled: false``).
    feeds: dict[str, int] = field(default_factory=dict)
    due_now: int = 0
    last_check: datetime | None = None
    #: Leases held now, by owner ("host:pid:…"): the polls at work, this one's or others'.
    leases: dict[str, int] = field(default_factory=dict)
    stories: int = 0
    new_last_day: int = 0  # first seen in the 24 hours before ``now``
    #: Stories by extraction status ("ok", "skipped", "pending", "failed").
    extraction: dict[str, int] = field(default_factory=dict)
    #: Stories by the version of the model that tagged them ("feed-categories": stored
    #: with no model in use; "" for none at all).
    tagged_by: dict[str, int] = field(default_factory=dict)
    labelled_stories: int = 0
    archived_stories: int = 0  # removed feeds' labelled stories, kept for training
    #: Reading lists (``stories --new --cursor NAME``) by name, with when each last read.
    reading_lists: dict[str, datetime | None] = field(default_factory=dict)
    #: what each named reading list reads by (the CLI's JSON), where it keeps that
    reading_list_filters: dict[str, str] = field(default_factory=dict)


def summarize(
    session: Session, backend: str, now: datetime, sqlite_path: str | None
) -> StoreSummary:
    """The :class:`StoreSummary` read through ``session`` (``sqlite_path``: the SQLite
    database file, whose size and WAL's it gives)."""
    f, st = _FEED.c, _STORY.c

    def scalar(query: object) -> int:
        return int(session.execute(query).scalar() or 0)  # type: ignore[call-overload]

    # Sorted here, by code point: ORDER BY name followed the database's collation on
    # PostgreSQL (en_US: alpha, Beta, Zeta), SQLite's is by code point (Beta, Zeta, alpha)
    lists = sorted(
        session.execute(select(_READ.c.name, _READ.c.updated, _READ.c.filters)).all(),
        key=lambda r: str(r.name),
    )
    feeds: dict[str, int] = {}
    for enabled, status, n in session.execute(
        select(f.enabled, f.status, func.count()).group_by(f.enabled, f.status)
    ):
        key = status if enabled else "off"
        feeds[key] = feeds.get(key, 0) + int(n)
    # what a poll would claim now (``FeedStore._due``): a feed a poll holds is shown
    # under ``leases``, and counted here too it read as waiting twice over
    due_now = scalar(
        select(func.count())
        .select_from(_FEED)
        .where(
            f.enabled.is_(True),
            f.status.in_(["active", "error"]),
            or_(f.lease_until.is_(None), f.lease_until < now),
            or_(f.next_check.is_(None), f.next_check <= now),
            or_(f.not_before.is_(None), f.not_before <= now),
        )
    )
    leases = {
        str(owner): int(n)
        for owner, n in session.execute(
            select(f.lease_owner, func.count())
            .where(and_(f.lease_owner.is_not(None), f.lease_until > now))
            .group_by(f.lease_owner)
        )
    }
    return StoreSummary(
        backend=backend,
        schema_version=scalar(select(func.max(_SCHEMA.c.version))),
        size_bytes=_size(session, backend, sqlite_path),
        feeds=feeds,
        due_now=due_now,
        last_check=session.execute(select(func.max(f.last_check))).scalar(),
        leases=leases,
        stories=scalar(select(func.count()).select_from(_STORY)),
        new_last_day=scalar(
            select(func.count()).select_from(_STORY).where(st.first_seen >= now - timedelta(days=1))
        ),
        extraction={
            str(status): int(n)
            for status, n in session.execute(
                select(st.extraction_status, func.count()).group_by(st.extraction_status)
            )
        },
        tagged_by={
            str(version or ""): int(n)
            for version, n in session.execute(
                select(st.model_version, func.count()).group_by(st.model_version)
            )
        },
        labelled_stories=scalar(select(func.count(func.distinct(_LABEL.c.story_id)))),
        archived_stories=scalar(select(func.count()).select_from(_ARCHIVE)),
        reading_lists={str(name): updated for name, updated, _ in lists},
        reading_list_filters={str(name): kept for name, _, kept in lists if kept is not None},
    )


def _size(session: Session, backend: str, sqlite_path: str | None) -> int | None:
    if backend == "postgresql":
        size = session.execute(text("SELECT pg_database_size(current_database())")).scalar()
        return int(size) if size is not None else None
    if not sqlite_path:  # an in-memory database
        return None
    return sum(os.path.getsize(p) for p in (sqlite_path, sqlite_path + "-wal") if os.path.exists(p))
