"""The store's common ground: the column handles and statements every part uses, the
sessions (a read, or one write transaction with driver errors as ``StoreError``), the
topic map, and reading stories, labels and topics back as ``aggregator.types``
objects. It decides nothing and owns no table's writes but the topic rows of one story
(``_write_topics``) and the clusters a deletion leaves (``_rehome_clusters``), which
several parts share.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, insert, select, text, update
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

from ..errors import StoreError, StoreUnavailableError
from ..lockwait import lock_waits_end_when
from ..types import Prediction, Story, TopicScore
from . import dialect, migrations, tables
from .rows import FEED, brief, chunks, story_from_row
from .tables import (
    FeedRow,
    FetchLogRow,
    LabelArchiveRow,
    LabelRow,
    StoryRow,
    StoryTopicRow,
    TopicRow,
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

# What a Story is built from (rows.story_from_row), as Core rows
_COPY = _STORY.alias("copy")
_STORY_READ = (
    *_STORY.c,
    FC.url.label("feed_url"),
    FC.title.label("feed_title"),
    FC.name.label("feed_name"),
    # the feeds of its cluster, on the cluster index for each story read (no cluster:
    # none, so the story's own)
    select(func.count(func.distinct(_COPY.c.feed_id)))
    .where(_COPY.c.cluster_id == _STORY.c.cluster_id)
    .correlate(_STORY)
    .scalar_subquery()
    .label("sources"),
)
_TOPICS_OF = select(STC.story_id, STC.topic_id, STC.score, STC.source).where(
    col(STC.story_id).in_(bindparam("ids", expanding=True))
)

# SQLite result codes (the low byte) that mean "not now" rather than "not so":
# BUSY, LOCKED, IOERR, CANTOPEN, PROTOCOL.
_SQLITE_UNAVAILABLE = {5, 6, 10, 14, 15}
# PostgreSQL SQLSTATEs that mean the same (Appendix A of its manual): connection
# exceptions (08), insufficient resources (53: disk full, out of memory, too many
# connections), operator intervention (57: shutdown, statement timeout, cannot connect
# now), system errors (58), a lock not available (55P03, lock_timeout) and the
# transaction rollbacks a retry cures (40001 serialization failure, 40P01 deadlock).
# Anything else the server says is about what was asked: class 54 (program limit
# exceeded, e.g. an index row too large for one item's long guid) counted as
# unavailable, so that one item ended every poll, for every feed, as database trouble.
_PG_UNAVAILABLE_CLASSES = {"08", "53", "57", "58"}
_PG_UNAVAILABLE = {"55P03", "40001", "40P01"}


def _store_error(e: SQLAlchemyError) -> StoreError:
    """``e`` as a StoreError: a StoreUnavailableError when the database could not answer
    (PostgreSQL unreachable or restarting, a lost connection, the pool exhausted, SQLite
    locked, a PostgreSQL statement or lock timeout), which ``serve`` answers with 503
    instead of blaming the request, and a poll with handing its feeds back instead of
    recording errors on them; otherwise a plain StoreError, which a poll records on the
    one feed whose write failed."""
    unavailable = isinstance(e, DisconnectionError | PoolTimeoutError) or (
        isinstance(e, DBAPIError) and e.connection_invalidated
    )
    if isinstance(e, OperationalError | InterfaceError):
        code = getattr(e.orig, "sqlite_errorcode", None)
        state = getattr(e.orig, "sqlstate", None)  # psycopg's; None when raised client-side
        if isinstance(state, str) and len(state) == 5:
            unavailable = (
                unavailable or state[:2] in _PG_UNAVAILABLE_CLASSES or state in _PG_UNAVAILABLE
            )
        else:
            unavailable = unavailable or code is None or code & 0xFF in _SQLITE_UNAVAILABLE
    return (StoreUnavailableError if unavailable else StoreError)(brief(e))


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelledStory:
    story: Story
    positive: tuple[str, ...]
    negative: tuple[str, ...]


class StoreBase:
    """Sessions and the shared readers and writers the store's parts (``sql.SqlStore``)
    are built on."""

    def __init__(self, url: str, *, connect_timeout: int = dialect.PG_CONNECT_TIMEOUT_S) -> None:
        try:
            self.engine: Engine = dialect.make_engine(url, connect_timeout=connect_timeout)
            try:
                migrations.migrate(self.engine)
            except BaseException:
                # no store to close: the connection the pool kept is closed here (a
                # database from a newer aggregator left PostgreSQL's open)
                self.engine.dispose()
                raise
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

    @contextmanager
    def lock_waits_end_when(self, stop: threading.Event) -> Iterator[None]:
        """SQLite: inside the block, a write waiting for another process's write lock
        gives up once ``stop`` is set (see :mod:`aggregator.lockwait`). PostgreSQL's
        waits are the server's, bounded by the sessions' ``lock_timeout``."""
        if self.dialect != "sqlite":
            yield
            return
        with lock_waits_end_when(stop):
            yield

    @contextmanager
    def _read(self, *, one_snapshot: bool = False) -> Iterator[Session]:
        """A read session. ``one_snapshot``: every statement in it reads the same
        snapshot of the database. SQLite's read transactions do anyway; PostgreSQL's
        READ COMMITTED takes one per statement, so there it is REPEATABLE READ."""
        engine = self.engine
        if one_snapshot and self.dialect != "sqlite":
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        try:
            with Session(engine) as s:
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

    def _topic_map(self, s: Session, names: Iterable[str] = ()) -> dict[str, int]:
        """Topic ids by name, read once per store and again when one of ``names`` is
        missing: a topic added to the taxonomy since a daemon or `serve` started (by
        another process's sync) was dropped from the stories it stored, and shown as
        "?" on those another process stored."""
        if not self._topic_ids or any(n not in self._topic_ids for n in names):
            self._topic_ids = {r.name: r.id for r in s.exec(mselect(TopicRow)) if r.id}
        return self._topic_ids

    def _topic_names(self, s: Session, ids: Iterable[int]) -> dict[int, str]:
        """Topic names by id, for ``ids`` (read again when one is missing)."""
        names = {v: k for k, v in self._topic_map(s).items()}
        if any(i not in names for i in ids):
            self._topic_ids = {}
            names = {v: k for k, v in self._topic_map(s).items()}
        return names

    def _to_stories(self, s: Session, rows: Sequence[Any]) -> list[Story]:
        """Stories from rows of ``_STORY_READ`` (Core rows: building ORM objects cost
        more than the query for a long list)."""
        ids = [r.id for r in rows]
        topics: dict[int, list[TopicScore]] = defaultdict(list)
        found = [row for chunk in chunks(ids, 500) for row in s.execute(_TOPICS_OF, {"ids": chunk})]
        names = self._topic_names(s, {topic_id for _, topic_id, _, _ in found})
        for story_id, topic_id, score, source in found:
            topics[story_id].append(
                TopicScore(topic=names.get(topic_id, "?"), score=score, source=source)
            )
        out = []
        for row in rows:
            ts = tuple(sorted(topics.get(row.id, ()), key=lambda t: (-t.score, t.topic)))
            # the name you gave the feed before its own title, as `feeds list` shows it
            feed = row.feed_name or row.feed_title
            out.append(story_from_row(row, row.feed_url, feed, ts, max(1, row.sources or 0)))
        return out

    def _select_stories(self, s: Session, *conds: Any) -> list[Story]:
        q = (
            select(*_STORY_READ)
            .select_from(_STORY.join(FEED, FEED.c.id == _STORY.c.feed_id))
            .where(*conds)
            .order_by(_STORY.c.id)
        )
        return self._to_stories(s, s.execute(q).all())

    def _labels_of(self, s: Session, *conds: Any) -> list[LabelledStory]:
        by_story: dict[int, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
        q = mselect(LabelRow).order_by(LC.id)
        if conds:
            q = q.join(StoryRow, col(SC.id) == LC.story_id).where(*conds)
        labels = s.exec(q).all()
        names = self._topic_names(s, {r.topic_id for r in labels})
        for r in labels:
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

    def _write_topics(
        self, s: Session, story_id: int, pred: Prediction, topic_ids: dict[str, int]
    ) -> None:
        labels = {
            int(tid): bool(value)
            for tid, value in s.execute(
                select(LC.topic_id, LC.value).where(LC.story_id == story_id)
            ).all()
        }
        s.execute(delete(StoryTopicRow).where(col(STC.story_id) == story_id))
        rows = topic_rows(story_id, pred, topic_ids, labels)
        if rows:
            s.execute(insert(tables.table(StoryTopicRow)), rows)

    @staticmethod
    def _rehome_clusters(conn: Any, deleted_roots: Mapping[int, str | None]) -> None:
        """After stories are deleted: a cluster whose id was one of theirs (its first
        story) moves to its smallest remaining member id. Queries show a story only when
        ``cluster_id = id``, so otherwise other feeds' copies of a removed feed's story
        vanished from every list and export; and new stories join a cluster by its
        ``cluster_id``, which stays the first (smallest) member's id this way.

        ``deleted_roots`` maps each deleted first story to the link its cluster was
        exported under (:func:`root_link`), which the new first story keeps as its
        ``entry_link``: exported under its own link (a copy's, tracking parameters and
        all), the story was shown again as new by every reader of the export."""
        moves: list[dict[str, Any]] = []
        for chunk in chunks(sorted(deleted_roots), 500):
            for old, new in conn.execute(
                select(_STORY.c.cluster_id, func.min(_STORY.c.id))
                .where(_STORY.c.cluster_id.in_(chunk))
                .group_by(_STORY.c.cluster_id)
            ).all():
                moves.append({"old": int(old), "new": int(new), "link": deleted_roots[int(old)]})
        if moves:
            conn.execute(
                update(_STORY)
                .where(_STORY.c.cluster_id == bindparam("old"))
                .values(cluster_id=bindparam("new")),
                [{"old": m["old"], "new": m["new"]} for m in moves],
            )
            conn.execute(
                update(_STORY)
                .where(_STORY.c.id == bindparam("new"))
                .values(entry_link=bindparam("root_link")),
                [{"new": m["new"], "root_link": m["link"]} for m in moves],
            )

    def get_stories(self, ids: Sequence[int]) -> list[Story]:
        out: list[Story] = []
        with self._read() as s:
            for chunk in chunks(list(ids), 500):
                out.extend(self._select_stories(s, col(SC.id).in_(chunk)))
        return out


def root_link(link: str | None, entry_link: str | None) -> str | None:
    """The link a cluster's first story, with these ``link`` and ``entry_link``, is
    exported under (``export._claim``), for ``StoreBase._rehome_clusters``."""
    return entry_link or link


def topic_rows(
    story_id: int, pred: Prediction | None, topic_ids: dict[str, int], labels: dict[int, bool]
) -> list[dict[str, Any]]:
    """The story_topic rows of a story given ``pred`` (None: no model's topics) and the
    user's ``labels`` (topic id: given or taken): the model's topics the user did not
    decide, then the user's given ones (a poll's new stories, ``StoreBase._write_topics``
    for one story, ``Labels.set_predictions`` for a batch)."""
    rows: list[dict[str, Any]] = []
    seen = set(labels)  # the user's word, either way, wins
    for ts in pred.topics if pred is not None else ():
        tid = topic_ids.get(ts.topic)
        if tid is None or tid in seen:
            continue
        seen.add(tid)
        rows.append(
            {
                "story_id": story_id,
                "topic_id": tid,
                "score": float(ts.score),
                "source": ts.source,
                "model_version": pred.model_version if pred is not None else None,
            }
        )
    rows.extend(
        {
            "story_id": story_id,
            "topic_id": tid,
            "score": 1.0,
            "source": "user",
            "model_version": None,
        }
        for tid, value in labels.items()
        if value
    )
    return rows
