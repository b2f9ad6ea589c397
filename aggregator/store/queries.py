"""Reading stories back: the filtered, one-per-cluster lists of ``stories``, ``export``
and ``serve`` (topic, feed, dates, search, pages), single stories and their copies,
topics with their counts, the summary ``status`` shows, and reading lists
(``stories --new``: what each has read). Nothing here writes but ``sync_topics`` (which
also carries a renamed topic's labels and tags over) and ``save_read_mark``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
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
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col
from sqlmodel import select as mselect

from ..credentials import without_credentials
from ..errors import NotFoundError
from ..feedlist import feed_key
from ..types import ReadingList, ReadMark, Story, StoryQuery
from . import search, tables
from .base import _COPY, _STORY, _STORY_READ, FC, LC, SC, STC, TC, StoreBase
from .rows import FEED, chunks
from .summary import StoreSummary, summarize
from .tables import (
    LabelArchiveRow,
    LabelRow,
    StoredText,
    StoryTopicRow,
    TopicRow,
    UTCDateTime,
)

RC = tables.columns(tables.ReadCursorRow)
#: Whether the place being saved is at or past the list's (``excluded`` against
#: ``read_cursor``): two reads of one list at once (cron's and the user's) ended in either
#: order, and the one that began first, ending last, moved the list back to its place,
#: so the stories only the other had listed were listed again. SQLite: by story id;
#: PostgreSQL: by snapshot (a later one's xmax, then xmin, is never smaller); a place
#: kept as an id before store migration 21 is always passed.
_MARK_ADVANCES = {
    "sqlite": "excluded.story_id >= read_cursor.story_id",
    "postgresql": "read_cursor.snapshot IS NULL OR excluded.snapshot IS NULL OR"
    " (pg_snapshot_xmax(CAST(excluded.snapshot AS pg_snapshot)),"
    " pg_snapshot_xmin(CAST(excluded.snapshot AS pg_snapshot))) >="
    " (pg_snapshot_xmax(CAST(read_cursor.snapshot AS pg_snapshot)),"
    " pg_snapshot_xmin(CAST(read_cursor.snapshot AS pg_snapshot)))",
}


def _save_read_mark(dialect: str) -> Any:
    """INSERT ... ON CONFLICT on both databases (SQLite 3.24, PostgreSQL 9.5): the place
    only moves forward (``_MARK_ADVANCES``); when it read and its options (filters: None
    keeps the list's own) are the latest read's. The texts bound as their columns'
    StoredText: a textual statement applies no column type, and a lone surrogate in a
    list's options (argv's bytes that are not UTF-8) failed the write on both databases."""
    ahead = _MARK_ADVANCES[dialect]
    return text(
        "INSERT INTO read_cursor (name, story_id, snapshot, updated, filters)"
        " VALUES (:name, :story_id, :snapshot, :at, :filters) ON CONFLICT (name) DO UPDATE SET"
        f" story_id = CASE WHEN {ahead} THEN excluded.story_id ELSE read_cursor.story_id END,"
        f" snapshot = CASE WHEN {ahead} THEN excluded.snapshot ELSE read_cursor.snapshot END,"
        " updated = excluded.updated, filters = COALESCE(excluded.filters, read_cursor.filters)"
    ).bindparams(
        bindparam("at", type_=UTCDateTime()),
        bindparam("name", type_=StoredText()),
        bindparam("filters", type_=StoredText()),
    )


# SQLite: how many of the newest stories a filtered page is first looked for among,
# and at most (SqlStore._recent_page)
_RECENT_WINDOW = 2000
_RECENT_MAX = 50_000
#: ``--sort relevance``: a word matched in the title weighs this many times one in the text
_TITLE_RANK = 5.0


@dataclass(frozen=True, slots=True)
class _FeedNames:
    """What ``_feeds_named`` matches a value against, of one feed: its id, its URLs (as
    stored) and the texts a part of a name matches, casefolded."""

    id: int
    urls: tuple[str, ...]
    texts: tuple[str, ...]


def _feed_names(s: Session) -> list[_FeedNames]:
    """Every feed's ``_FeedNames``, read and folded once per query: once per value, a
    query naming 6,000 read the table 6,000 times and took 4 s of CPU with 300 feeds."""
    return [
        _FeedNames(
            id=int(r.id),
            urls=tuple(u for u in (r.url, r.source_url) if u),
            texts=tuple(
                t.casefold() for t in (r.name, r.title, without_credentials(r.url)) if t is not None
            ),
        )
        for r in s.execute(select(FC.id, FC.url, FC.source_url, FC.name, FC.title))
    ]


def _feeds_named(feeds: Sequence[_FeedNames], ref: str) -> list[int]:
    """The ids of the feeds ``--feed ref`` (and ``serve``'s ``?feed=``) names, in the
    first of these ways that names any:

    1. digits: the feed with that id, as `feeds list` shows it and `feeds remove` takes
       it (a number was a substring of names, so ``--feed 1`` found "Top 1", never feed
       1);
    2. a URL: the feeds whose URL, or the URL they were subscribed under before a
       redirect was adopted, is the same subscription (``feedlist.feed_key``: http or
       https, the host's case, a trailing slash, a default port), credentials or none
       (so none can be guessed through it), and not the feeds under it
       (``…/feed/comments``);
    3. a case-insensitive part of the name, the title or the URL without credentials
       (``example.org``).

    Matched here rather than with LIKE: ``%`` and ``_`` are text, not wildcards, and
    ``str.casefold`` folds every letter the same on both databases (SQLite's lower()
    folds ASCII only). A password is never matched, so ``?feed=`` tells none. A few
    ms for 1,000 feeds. ``feeds``: ``_feed_names``."""
    if ref.isascii() and ref.isdigit():
        # past 19 digits no id (and past 4,300 int() refuses: a ValueError)
        wanted = int(ref) if len(ref.lstrip("0")) <= 19 else None
        return [f.id for f in feeds if f.id == wanted]
    key = feed_key(without_credentials(ref))  # not remembered: any client's text
    if key.startswith("//"):  # it has a host: a URL, which may name a subscription
        same = [f.id for f in feeds if any(_subscription(u) == key for u in f.urls)]
        if same:
            return same
    needle = ref.casefold()
    return [f.id for f in feeds if any(needle in text for text in f.texts)]


@lru_cache(maxsize=8192)
def _subscription(url: str) -> str:
    """``feed_key`` of ``url`` without its credentials, remembered: computed for every
    feed's URL at each ``--feed`` it took 10 ms at 1,000 feeds, and feeds change
    rarely (``serve`` answers many ``?feed=`` requests)."""
    return feed_key(without_credentials(url))


def _merge_topic(s: Session, old: int, new: int) -> None:
    """Move topic ``old``'s labels and tags onto topic ``new``: on a story that has a
    label of each, the one of ``new`` stays; a labelled story's tag is its label's (a
    user's tag, or none for "-Topic"); on the others, a tag of ``new`` stays."""
    labelled_new = select(LC.story_id).where(LC.topic_id == new)
    s.execute(delete(LabelRow).where(LC.topic_id == old, col(LC.story_id).in_(labelled_new)))
    s.execute(update(LabelRow).where(LC.topic_id == old).values(topic_id=new))
    s.execute(
        delete(StoryTopicRow).where(
            col(STC.topic_id).in_([old, new]), col(STC.story_id).in_(labelled_new)
        )
    )
    s.execute(
        insert(StoryTopicRow).from_select(
            ["story_id", "topic_id", "score", "source"],
            select(LC.story_id, LC.topic_id, literal(1.0), literal("user")).where(
                LC.topic_id == new, LC.value == true()
            ),
        )
    )
    tagged_new = select(STC.story_id).where(STC.topic_id == new)
    s.execute(delete(StoryTopicRow).where(STC.topic_id == old, col(STC.story_id).in_(tagged_new)))
    s.execute(update(StoryTopicRow).where(STC.topic_id == old).values(topic_id=new))


def _rename_archived(s: Session, old: str, new: str) -> None:
    """Move the archived labels of topic ``old`` (removed feeds' stories, topics by name)
    to ``new``, as :func:`_merge_topic` moves the stored ones; a label of ``new`` on the
    same story wins. Left under the old name they matched no topic when their feed came
    back: they stayed in the archive, and the story returned without them."""
    archive = tables.table(LabelArchiveRow)
    for arch_id, positive, negative in s.execute(
        select(archive.c.id, archive.c.positive, archive.c.negative)
    ).all():
        pos, neg = list(positive or ()), list(negative or ())
        if old not in pos and old not in neg:
            continue
        given = new in pos or new in neg  # the story's label under the new name wins

        def moved(names: list[str], given: bool = given) -> list[str]:
            return [new if n == old else n for n in names if n != old or not given]

        s.execute(
            update(archive)
            .where(archive.c.id == arch_id)
            .values(positive=moved(pos), negative=moved(neg))
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicInfo:
    name: str
    description: str | None
    stories: int


class StoryQueries(StoreBase):
    """Topics and the story lists."""

    def sync_topics(
        self,
        topics: Sequence[tuple[str, str | None]],
        renamed: Callable[[str], str | None] | None = None,
    ) -> None:
        """Add the taxonomy's new topics and update descriptions; a read when nothing
        changed (every command syncs, and a query must not wait for a write lock).

        ``renamed`` gives, for a stored topic the taxonomy no longer names, the topic it
        was renamed to (``Taxonomy.resolve``: the old name kept among the aliases), or
        None. Such a row takes the new name, with its labels and tags: the store keyed
        topics by name, so a rename made a new row and `stories -t NewName` missed every
        story labelled under the old one. Where the new name has a row already (renamed
        before this was done) the two are merged: a label under the new name wins over
        one under the old, a user's tag over the model's, and the old row goes."""
        names = {name for name, _ in topics}
        with self._read() as s:
            rows = s.exec(mselect(TopicRow)).all()
        stored = {(r.name, r.description) for r in rows}
        moves = {
            r.name: new
            for r in rows
            if r.name not in names and renamed is not None
            if (new := renamed(r.name)) is not None and new in names
        }
        if set(topics) <= stored and not moves:
            return
        with self._write() as s:
            self._one_at_a_time(s)
            existing = {r.name: r for r in s.exec(mselect(TopicRow))}
            for old, new in moves.items():
                row = existing.pop(old, None)
                if row is None or row.id is None:
                    continue  # another process moved it first
                into = existing.get(new)
                if into is None or into.id is None:
                    row.name = new
                    existing[new] = row
                    s.flush()
                else:
                    _merge_topic(s, row.id, into.id)
                    s.delete(row)
                _rename_archived(s, old, new)
            for name, description in topics:
                found = existing.get(name)
                if found is None:
                    s.add(TopicRow(name=name, description=description))
                elif found.description != description:
                    found.description = description
        self._topic_ids.clear()

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
            if query.order != "date":
                sub = self._ranked_ids(query, where).subquery("page")
                q = select(*_STORY_READ).select_from(with_feed.join(sub, sub.c.id == _STORY.c.id))
                rows = s.execute(q.order_by(sub.c.rank, *newest_first)).all()
                return self._to_stories(s, rows)
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

    def feed_refs_naming_none(self, refs: Sequence[str]) -> list[str]:
        """Those of ``refs`` (``--feed`` values) that name no feed now (``_feeds_named``;
        an empty one filters nothing, and names none by design)."""
        with self._read() as s:
            feeds = _feed_names(s)
            return [ref for ref in refs if ref and not _feeds_named(feeds, ref)]

    def first_clusters_at(self, urls: Sequence[str]) -> dict[str, int]:
        """For each of ``urls`` stored as a story's canonical URL, the cluster (its first
        story's id) of the first story stored at it, or 0 (no cluster's) once that story
        is gone (pruned, its feed removed) and only later ones are left. Exports give
        that cluster the URL as its entry id and every later story at it (a "today"
        page's next day's item) another (``export._entry_id``): taken by the earliest
        left, the next day's story took the id a reader had for the first day's."""
        found: dict[str, tuple[int, int]] = {}
        for part in chunks(sorted(set(urls)), 500):
            with self._read() as s:
                rows = s.execute(
                    select(SC.canonical_url, SC.id, SC.cluster_id, SC.later_at_url).where(
                        col(SC.canonical_url).in_(part)
                    )
                ).all()
            for url, story_id, cluster_id, later in rows:
                first = (story_id, story_id if cluster_id is None else cluster_id)
                if later:
                    found.setdefault(url, (2**63, 0))
                elif url not in found or story_id < found[url][0]:
                    found[url] = first
        return {url: cluster for url, (_, cluster) in found.items()}

    def matching_ids(self, query: StoryQuery) -> list[int]:
        """The ids of the stories ``stories(query)`` returns, in the same order: the
        same conditions, sorted and cut with nothing but (sort_date, id) in hand."""
        with self._read() as s:
            return self._matching_ids(s, query)

    def _matching_ids(self, s: Session, query: StoryQuery) -> list[int]:
        where = self._where(s, query)
        if query.order != "date":
            return [int(i) for i in s.execute(self._ranked_ids(query, where)).scalars()]
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

    def _ranked_ids(self, query: StoryQuery, where: Callable[..., list[Any]]) -> Select[Any]:
        """The ids of ``query``'s page in its ``order`` other than by date, with their
        ``rank`` (ascending: the first shown first; ties newest first, then by id).

        ``sources``: the feeds of the story's cluster, counted as ``Story.sources`` is.
        ``relevance``: SQLite's FTS5 ``bm25`` (a title match weighing ``_TITLE_RANK``
        times a body match), PostgreSQL's ``ts_rank_cd`` (title words weigh A, the body's
        B), each database's own measure: equally good matches may come in another order
        on the other. Every match is ranked before the page is cut, so a filter that
        matches much of the store costs its every match (``benchmarks/store.py``)."""
        c = _STORY.c
        froms: Any = _STORY
        if query.order == "sources":
            # Counted only where another copy exists (on the cluster index alone): most
            # stories have none, and a count of distinct feeds per story read every
            # match's copies and sorted their feeds, 4x the time on SQLite.
            other = _STORY.alias("other")
            shared = select(other.c.id).where(
                other.c.cluster_id == c.cluster_id, other.c.id != c.id
            )
            feeds = (
                select(func.count(func.distinct(_COPY.c.feed_id)))
                .where(_COPY.c.cluster_id == c.cluster_id)
                .scalar_subquery()
            )
            rank: Any = case((shared.exists(), -feeds), else_=-1)  # alone: its own feed
        elif query.text is None:
            raise ValueError("relevance orders the matches of a full-text search")
        elif self.dialect == "sqlite":
            found = search.fts5_ranked(query.text, _TITLE_RANK).subquery("found")
            froms = _STORY.join(found, found.c.id == c.id)
            rank = found.c.rank
        else:
            rank = -search.pg_rank(query.text, _STORY, _TITLE_RANK)
        q = (
            select(c.id, rank.label("rank"))
            .select_from(froms)
            .where(*where(_STORY))
            .order_by(rank, c.sort_date.desc(), c.id.desc())
        )
        if query.offset:
            q = q.offset(query.offset)
        if query.limit is not None:
            q = q.limit(query.limit)
        return q

    # --- reading lists (stories --new) --------------------------------------------------

    def _stored_after(self, story: Any, mark: ReadMark) -> Any:
        """The condition that ``story`` was stored after ``mark``."""
        if mark.since is not None:
            return story.c.first_seen >= mark.since
        if mark.snapshot is None:
            return story.c.id > mark.story_id
        # Not visible in the mark's snapshot: committed after it, whatever its id. The
        # lower bound (anything older is visible in it) is what the index can find.
        t = story.name
        return text(
            f"{t}.stored_by >= pg_snapshot_xmin(CAST(:read_mark AS pg_snapshot)) AND NOT"
            f" pg_visible_in_snapshot({t}.stored_by, CAST(:read_mark AS pg_snapshot))"
        ).bindparams(read_mark=mark.snapshot)

    def new_story_ids(self, query: StoryQuery) -> tuple[list[int], ReadMark]:
        """``matching_ids(query)`` and the mark of what this read saw (``ReadMark``), in
        one snapshot: what a later read after that mark lists is exactly what this one
        could not see."""
        with self._read(one_snapshot=True) as s:
            if self.dialect == "sqlite":
                last = s.execute(select(func.coalesce(func.max(SC.id), 0))).scalar()
                mark = ReadMark(story_id=int(last or 0))
            else:
                snap = s.execute(text("SELECT CAST(pg_current_snapshot() AS text)")).scalar()
                mark = ReadMark(snapshot=str(snap))
            return self._matching_ids(s, query), mark

    def reading_list(self, name: str) -> ReadingList | None:
        """How far reading list ``name`` has read, when, and what it reads by; None when
        it has not read yet."""
        with self._read() as s:
            row = s.execute(
                select(RC.story_id, RC.snapshot, RC.updated, RC.filters).where(RC.name == name)
            ).first()
        if row is None:
            return None
        return ReadingList(
            name=name,
            mark=ReadMark(story_id=int(row.story_id or 0), snapshot=row.snapshot),
            last_read=row.updated,
            filters=row.filters,
        )

    def save_read_mark(
        self, name: str, mark: ReadMark, now: datetime, filters: str | None = None
    ) -> None:
        """Reading list ``name`` has read up to ``mark``; ``filters``, when given, are what
        it reads by from now on (None keeps its own)."""
        with self._write() as s:
            s.execute(
                _save_read_mark(self.dialect),
                {
                    "name": name,
                    "story_id": mark.story_id,
                    "snapshot": mark.snapshot,
                    "at": now,
                    "filters": filters,
                },
            )

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
        named = (*query.topics, *query.any_topics, *query.not_topics)
        ids_by_name: dict[str, int] = {}
        if named:
            # Compared in Python: SQLite's lower() folds ASCII only, so "Безопасность"
            # was an unknown topic there (the topic table is the taxonomy: a few dozen rows)
            wanted = {t.casefold() for t in named}
            ids_by_name = {
                r.name.casefold(): int(r.id)
                for r in s.exec(mselect(TopicRow)).all()
                if r.name.casefold() in wanted and r.id is not None
            }
            missing = list(dict.fromkeys(t for t in named if t.casefold() not in ids_by_name))
            if missing:
                raise NotFoundError(f"unknown topic(s): {', '.join(missing)}")
        topic_ids = sorted({ids_by_name[t.casefold()] for t in query.topics})
        any_ids = sorted({ids_by_name[t.casefold()] for t in query.any_topics})
        not_ids = sorted({ids_by_name[t.casefold()] for t in query.not_topics})
        # Resolved here on the feed table: as a condition on each story's feed it could
        # use no index, and a small feed's list read every story of the store
        feeds = _feed_names(s) if query.feeds else []
        feed_ids = sorted({i for ref in set(query.feeds) for i in _feeds_named(feeds, ref)})

        def matches(story: Any, *, earlier: bool = False, min_id: int | None = None) -> list[Any]:
            """The filters on ``story``; a topic's or a search's stories as a list of
            ids, only from ``min_id`` on when given (``_recent_page``)."""
            conds: list[Any] = []

            def tagged(*topics: int) -> tuple[Any, Any]:
                """(the story's id, the ids of the stories tagged with any of ``topics``)."""
                ids = select(STC.story_id).where(
                    STC.topic_id == topics[0] if len(topics) == 1 else STC.topic_id.in_(topics)
                )
                if min_id is None:
                    return story.c.id, ids
                # "+ 0": a filter on the date index's walk (_recent_page)
                return story.c.id + 0, ids.where(STC.story_id >= min_id)

            for tid in topic_ids:
                sid, ids = tagged(tid)
                conds.append(sid.in_(ids))
            if any_ids:
                sid, ids = tagged(*any_ids)
                conds.append(sid.in_(ids))
            if not_ids:
                sid, ids = tagged(*not_ids)
                conds.append(sid.not_in(ids))
            if query.feeds:
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
                conds.append(search.search_filter(self.dialect, query.text, story, min_id=min_id))
            return conds

        def where(story: Any, min_id: int | None = None) -> list[Any]:
            """``matches`` on ``story``, and its cluster shows it: no earlier copy
            matches as well. ``min_id``: neither the stories looked at nor their
            clusters' other copies have a smaller id (``_recent_page``)."""
            # FIRST_OF_CLUSTER as an expression: alone, ix_story_first_sort serves it
            first = or_(story.c.cluster_id.is_(None), story.c.cluster_id == story.c.id)
            conds = matches(story, min_id=min_id)
            if query.stored_after is not None:
                # on the copy shown only: a new copy of a story read before is not new
                conds.append(self._stored_after(story, query.stored_after))
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
        if not (query.topics or query.any_topics or query.not_topics or query.feeds or query.text):
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

    def get_story(self, story_id: int) -> Story:
        with self._read() as s:
            found = self._select_stories(s, SC.id == story_id)
            if not found:
                raise NotFoundError(f"no story {story_id}")
            return found[0]

    def cluster_members(self, story: Story) -> list[Story]:
        if story.cluster_id is None:
            return []
        with self._read() as s:
            return self._select_stories(s, SC.cluster_id == story.cluster_id, SC.id != story.id)

    def summary(self, now: datetime) -> StoreSummary:
        """Counts of feeds, stories, extractions, labels and leases, the schema version
        and the database's size, for ``aggregator status``: of one snapshot (on
        PostgreSQL a poll committing between two counts made the total and the counts by
        extraction state or model disagree)."""
        with self._read(one_snapshot=True) as s:
            path = self.engine.url.database if self.dialect == "sqlite" else None
            return summarize(s, self.dialect, now, path if path != ":memory:" else None)

    def story_count(self) -> int:
        with self._read() as s:
            return int(s.execute(select(func.count()).select_from(_STORY)).scalar_one())

    def story_ids(self, *, after: int = 0, not_version: str | None = None) -> list[int]:
        """Every story's id above ``after``, ascending (ids are never given twice, so
        ``after`` = the largest id seen means "stored since"); with ``not_version``, only
        the stories another model version (or none) tagged."""
        with self._read() as s:
            query = select(SC.id).where(col(SC.id) > after).order_by(SC.id)
            if not_version is not None:
                query = query.where(
                    or_(col(SC.model_version).is_(None), col(SC.model_version) != not_version)
                )
            return [int(i) for i in s.execute(query).scalars()]
