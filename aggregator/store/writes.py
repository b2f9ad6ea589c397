"""What a poll writes, and the look-ups it makes first: one feed's stories (new ones
inserted whole, in one statement), their clusters of duplicates, topics, search index
and restored labels, the feed's new state and its fetch-log row, all in one
transaction (``save_update``); story-less outcomes in batches (``save_checks``). This
is the poll's hot path, so it works in Core statements built once (see
docs/design-notes.md, "The store's hot path is Core, not the ORM").
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    MetaData,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col
from sqlmodel import select as mselect

from ..credentials import without_credentials
from ..dedupe import KEY_VERSION, listing_digest, scheme_twin, title_date_key
from ..errors import NotFoundError
from ..neardup import hamming, series_apart, title_hash, title_key
from ..types import FeedCheck, SaveResult, StoryRecord, StoryVersion
from . import dialect, search, tables
from .base import _ARCHIVE, _STORY, FC, SC, StoreBase, topic_rows
from .rows import (
    CHECK_UPDATE,
    FEED,
    NewStory,
    band,
    check_params,
    chunks,
    fill_row,
    keep_user_intervals,
    login_moved,
    prune_fetch_log,
    search_body,
    search_text,
    utc,
)
from .tables import FetchLogRow, LabelRow, StoryRow, StoryTopicRow, storable_text

NEAR_DUP_WINDOW = timedelta(days=14)
NEAR_DUP_MAX_DISTANCE = 3  # SimHash bits; 3 of 64 is the usual near-duplicate cut-off
# SimHash bits between copies under the same title (neardup.title_hash) that are one
# story: a dateline or an editor's note added to a press release moves it 4-12 bits,
# while two texts that merely share a title are ~32 apart (12 is 5 standard deviations
# below that)
NEAR_DUP_TITLE_MAX_DISTANCE = 12
# Publication dates this far apart make two near-identical texts in different feeds two
# stories, not one story's copies: a recurring post (a forum's weekly thread, a
# newsletter's "this week's issue is out") repeats its title and boilerplate text word
# for word, and a match hid this week's issue under last week's. Copies of one article
# (mobile, AMP, a wire story) come within hours, but a syndicated one (a blog post
# republished by an industry site) can take a day or two: three days keeps those one
# story while a weekly post, seven days on, is two. (A daily series differs in the
# numbers of its title: dedupe.series_apart.)
NEAR_DUP_DATES_APART = timedelta(days=3)
# One feed's stories at one URL published this far apart are two stories: a feed that
# links each day's item to one page ("https://site/today"). A changing guid of one item
# keeps its date.
SAME_PAGE_DATES_APART = timedelta(days=1)


# Statements run for every feed of a poll, built once (with expanding IN parameters):
# building them per call cost more Python time than SQLite spent running them.
# (key, content hash, canonical URL): a story's version (StoryDraft.version)
_KNOWN = select(SC.key, SC.content_hash, SC.canonical_url).where(
    SC.feed_id == bindparam("feed_id"), col(SC.key).in_(bindparam("keys", expanding=True))
)
# PostgreSQL: a poll's write of a feed and `feeds remove` of it take turns on the feed's
# row (SQLite's writers take turns anyway). Otherwise the removal, which reads the labels
# to archive and then deletes the stories, could miss labels a concurrent poll had just
# restored from the archive onto returning stories, and delete them with the stories.
# FOR NO KEY UPDATE: the poll updates the row later in its transaction. The rows of a
# group's feeds are locked in one statement, in id order.
_FEED_URLS_LOCKED = (
    select(FC.id, FC.url)
    .where(col(FC.id).in_(bindparam("fids", expanding=True)))
    .order_by(FC.id)  # rows locked in one order by every writer
    .with_for_update(key_share=True)
)
_ARCHIVED_FEED_URLS = (
    select(_ARCHIVE.c.feed_url)
    .where(_ARCHIVE.c.feed_url.in_(bindparam("urls", expanding=True)))
    .distinct()
)
_FEED_ID_BY_URL = select(FC.id).where(FC.url == bindparam("url"))
# PostgreSQL: a feed's stored stories under these keys, with their URL and cluster, and
# what the stories of those clusters are clustered by (PollWrites._clusters_left)
_LEAVING = select(SC.key, SC.canonical_url, func.coalesce(SC.cluster_id, SC.id)).where(
    SC.feed_id == bindparam("feed_id"), col(SC.key).in_(bindparam("keys", expanding=True))
)
_CLUSTER_KEYS = select(SC.canonical_url, SC.fingerprint, SC.title).where(
    col(SC.cluster_id).in_(bindparam("clusters", expanding=True))
    | col(SC.id).in_(bindparam("clusters", expanding=True))
)


_RECENT_VERSIONS = (
    select(SC.key, SC.content_hash, SC.canonical_url)
    .where(SC.feed_id == bindparam("feed_id"))
    .order_by(col(SC.id).desc())
    .limit(bindparam("limit"))
)
# A feed's newest stories, for the new ones without a link that may be one of them under
# a new key (PollWrites._unlisted_versions)
_NEWEST_OF_FEED = (
    select(SC.id, SC.key, SC.canonical_url, SC.title, SC.published, SC.content_hash, SC.fingerprint)
    .where(SC.feed_id == bindparam("feed_id"))
    .order_by(col(SC.id).desc())
    .limit(bindparam("limit"))
)
UNLISTED_VERSIONS_LOOKED_AT = 200
_LISTED_CHARS = select(func.length(FC.listed)).where(FC.id == bindparam("fid"))
RECENT_HASHES_MIN = 500  # stories whose hashes a parse worker gets, at least
# one digest and its separating space in feed.listed (what check.listed is joined into)
LISTED_DIGEST_CHARS = len(listing_digest("")) + 1
# Each cluster's stories at a URL, by feed and text, with the range of their dates: one
# row for the copies a feed that changes an item's guid at every poll gives one URL
_URL_CLUSTERS = (
    select(
        SC.canonical_url,
        SC.cluster_id,
        SC.feed_id,
        SC.content_hash,
        func.min(SC.published),
        func.max(SC.published),
    )
    .where(
        col(SC.canonical_url).in_(bindparam("urls", expanding=True)),
        col(SC.cluster_id).is_not(None),
    )
    .group_by(SC.canonical_url, SC.cluster_id, SC.feed_id, SC.content_hash)
)
# The four bands in one statement: a query per band through SQLAlchemy cost more than
# SQLite's work on it.
_BAND_MATCHES = union_all(
    *(
        select(
            literal(i), SC.cluster_id, SC.fingerprint, SC[f"fp_band{i}"], SC.title, SC.published
        ).where(
            SC[f"fp_band{i}"].in_(bindparam(f"values{i}", expanding=True)),
            SC.feed_id != bindparam("feed_id"),
            col(SC.cluster_id).is_not(None),
            col(SC.first_seen) >= bindparam("since"),
        )
        for i in range(4)
    )
)
# PostgreSQL: the first stories of the stored clusters a poll's new rows join, locked
# against deletion until it commits (PollWrites._assign_clusters)
_LOCK_CLUSTERS = (
    select(SC.id)
    .where(col(SC.id).in_(bindparam("ids", expanding=True)))
    .order_by(SC.id)  # rows locked in one order by every writer
    .with_for_update(read=True, key_share=True)
)
_CLUSTER_TRIES = 3
# PostgreSQL: what a poll's transaction looks its stories' clusters up by (article URLs,
# SimHash bands, title hashes), locked until it commits (the two-key advisory locks of
# class 7261004), each once and in one order by every writer. Two daemons storing
# copies of one new article at once each looked for its cluster without seeing the
# other's uncommitted row, and each started one: the story was listed twice for good.
# Now the second waits, then finds the first's row. The keys fall into
# ``CLUSTER_LOCKS`` locks: each lock lives in the server's shared lock table
# (max_locks_per_transaction x max_connections, 6,400 by default), which one lock per
# key ran out of ("out of shared memory") on a first poll of archives. Keys sharing a
# lock only make two writers take turns.
CLUSTER_LOCKS = 64
_LOCK_CLUSTER_KEYS = text(
    "SELECT count(pg_advisory_xact_lock(7261004, k))"
    " FROM (SELECT DISTINCT unnest(CAST(:keys AS integer[])) AS k ORDER BY k) AS u"
)
# Copies under the same title among recent stories of other feeds (_match_by_title)
_TITLE_MATCHES = select(SC.title_hash, SC.cluster_id, SC.fingerprint, SC.title, SC.published).where(
    col(SC.title_hash).in_(bindparam("hashes", expanding=True)),
    SC.feed_id != bindparam("feed_id"),
    col(SC.cluster_id).is_not(None),
    col(SC.fingerprint).is_not(None),
    col(SC.first_seen) >= bindparam("since"),
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
    search=search.pg_search_vector(
        bindparam("search_title", type_=Text), bindparam("search_body", type_=Text)
    )
)


#: A near-duplicate candidate: (its cluster, its fingerprint, its title, its date)
_Candidate = tuple[int, int, str, datetime | None]


def _dated_apart(
    a: datetime | None, b: datetime | None, apart: timedelta = NEAR_DUP_DATES_APART
) -> bool:
    """Whether two stories' publication dates make them two stories whatever their text
    (``apart``: by default ``NEAR_DUP_DATES_APART``); an undated one is judged by its
    text alone."""
    return a is not None and b is not None and abs(a - b) >= apart


_WORDS = re.compile(r"\w+")
#: The share of their words (:func:`_shared_words`) under which a story at a link and the
#: next item at it, dated a day or more apart under another title, are two items
#: (PollWrites._another_days_item): an edited teaser keeps most of its words (~0.75 for a
#: sentence of three rewritten), another day's quote shares only the title's boilerplate.
ANOTHER_ITEM_MAX_SHARED_WORDS = 0.5


def _shared_words(a: str, b: str) -> float:
    """The Jaccard index of the two texts' sets of words (case-folded)."""
    x, y = set(_WORDS.findall(a.casefold())), set(_WORDS.findall(b.casefold()))
    return len(x & y) / len(x | y) if x | y else 1.0


def _kind(key: str) -> str:
    """The source of a story key (``v1:guid:…`` -> ``guid``; dedupe's key scheme)."""
    return key.split(":", 2)[1] if key.count(":") >= 2 else ""


def _index_text(row: StoryRow | NewStory, rec: StoryRecord) -> str:
    """The record's own text (built in the worker), unless it has none or the row kept an
    article text the record does not carry (fill_row): then the row's."""
    if rec.text is None or (rec.full_text is None and row.full_text):
        return search_body(row)
    return rec.text


def _mark_later_at_url(conn: Any, row: StoryRow) -> None:
    """``row``, a stored story moved to another canonical URL (its item's link changed),
    is later at it when another cluster's story is there (``later_at_url``): kept as it
    was, it took the URL as entry id from that story when its row id was the smaller."""
    cluster = row.id if row.cluster_id is None else row.cluster_id
    row.later_at_url = row.canonical_url is not None and (
        conn.execute(
            select(SC.id)
            .where(
                SC.canonical_url == row.canonical_url,
                SC.id != row.id,
                func.coalesce(SC.cluster_id, SC.id) != cluster,
            )
            .limit(1)
        ).first()
        is not None
    )


def _kin(row: StoryRow, other: Any) -> bool:
    """Whether ``other``, a story of ``row``'s cluster, is a copy of ``row`` by what
    clusters stories (``PollWrites._match_clusters``) other than a URL ``row`` no longer
    has: ``row``'s URL (or its http<->https twin), its text (the same content hash; from
    another feed, a SimHash within ``NEAR_DUP_MAX_DISTANCE`` bits, or within
    ``NEAR_DUP_TITLE_MAX_DISTANCE`` under the same title), and not dated apart."""
    url = row.canonical_url
    if url is not None and other.canonical_url in (url, scheme_twin(url)):
        return True
    if other.content_hash == row.content_hash:
        return True
    if other.feed_id == row.feed_id or row.fingerprint is None or other.fingerprint is None:
        return False  # one feed's stories never cluster by their text
    if _dated_apart(utc(row.published), utc(other.published)):
        return False
    mask = (1 << 64) - 1
    bits = hamming(int(row.fingerprint) & mask, int(other.fingerprint) & mask)
    if bits <= NEAR_DUP_MAX_DISTANCE and not series_apart(row.title, other.title):
        return True
    return (
        title_hash(row.title) is not None
        and title_key(row.title) == title_key(other.title)
        and bits <= NEAR_DUP_TITLE_MAX_DISTANCE
    )


def _leave_cluster_of_url(conn: Any, row: StoryRow, was: str) -> None:
    """``row``, a stored story whose item now links elsewhere (its link corrected from
    ``was``), and the stories of its cluster that were there only by the URL it left.
    A story clusters by its URL when it is stored, and an update never looked again: a
    story linked by mistake to another feed's story's page stayed in that story's
    cluster after the publisher corrected the link, hidden from every list and export
    (or, stored first, kept the other story hidden under it). Now a story that is no
    copy of any other of its cluster (:func:`_kin`) starts its own; when it started the
    cluster, the stories that are no copy of it start their own (the smallest id first,
    as a deletion re-homes a cluster). Joining the cluster of the new URL is left to the
    stories stored there later: a story that moved onto another's page keeps its own
    (see ``_mark_later_at_url``)."""
    assert row.id is not None
    cluster = row.id if row.cluster_id is None else row.cluster_id
    others = conn.execute(
        select(
            SC.id,
            SC.feed_id,
            SC.canonical_url,
            SC.content_hash,
            SC.fingerprint,
            SC.title,
            SC.published,
        ).where(SC.cluster_id == cluster, SC.id != row.id)
    ).all()
    if not others:
        return
    if cluster != row.id:
        if not any(_kin(row, other) for other in others):
            row.cluster_id = row.id
        return
    strays = sorted(int(other.id) for other in others if not _kin(row, other))
    for chunk in chunks(strays, 500):
        conn.execute(update(_STORY).where(col(SC.id).in_(chunk)).values(cluster_id=strays[0]))


class PollWrites(StoreBase):
    """A poll's writes and look-ups."""

    def recent_story_versions(
        self, feed_id: int, limit: int | None = None
    ) -> dict[str, StoryVersion]:
        """key -> version (content hash, canonical URL) of the feed's ``limit`` newest
        stories: what a parse worker needs to skip the entries it would only find
        unchanged. By default as many as the feed's latest document listed, and at least
        RECENT_HASHES_MIN (a fixed 500 left a feed of 10,000 entries re-parsing and
        re-classifying 9,500 unchanged ones at every change)."""
        with self._read() as s:
            if limit is None:
                chars = s.execute(_LISTED_CHARS, {"fid": feed_id}).scalar() or 0
                limit = max(RECENT_HASHES_MIN, (chars + 1) // LISTED_DIGEST_CHARS + 50)
            rows = s.execute(_RECENT_VERSIONS, {"feed_id": feed_id, "limit": limit}).all()
        return {key: (digest, url) for key, digest, url in rows}

    def recent_story_hashes(self, feed_id: int, limit: int | None = None) -> dict[str, str]:
        """key -> content hash of :meth:`recent_story_versions`."""
        return {k: v[0] for k, v in self.recent_story_versions(feed_id, limit).items()}

    def known_versions(self, feed_id: int, keys: Sequence[str]) -> dict[str, StoryVersion]:
        """key -> version (content hash, canonical URL) of the feed's stories stored under
        these keys."""
        if not keys:
            return {}
        out: dict[str, StoryVersion] = {}
        with self._read() as s:
            for chunk in chunks(list(keys), 500):
                rows = s.execute(_KNOWN, {"feed_id": feed_id, "keys": chunk}).all()
                out.update({key: (digest, url) for key, digest, url in rows})
        return out

    def known_stories(self, feed_id: int, keys: Sequence[str]) -> dict[str, str]:
        """key -> content hash of :meth:`known_versions`."""
        return {k: v[0] for k, v in self.known_versions(feed_id, keys).items()}

    def extracted_texts(self, urls: Sequence[str], not_feed: int | None = None) -> dict[str, str]:
        """The article text extracted already for each of these canonical URLs that has
        one (by any feed's story: the same article in a site's main feed and its topic
        feeds), the latest where several have; with ``not_feed``, by other feeds' stories
        only. A poll passes its feed: its own stories at the URL are the story it is
        updating (whose text edit is why the page is read again: taking the text it had
        left a corrected article uncorrected) or an earlier item at a page the feed
        links each item to (a "today" page, which shows another text every day)."""
        out: dict[str, str] = {}
        if not urls:
            return out
        other = [SC.feed_id != not_feed] if not_feed is not None else []
        with self._read() as s:
            for chunk in chunks(sorted(set(urls)), 500):
                rows = s.execute(
                    select(SC.canonical_url, SC.full_text)
                    .where(
                        col(SC.canonical_url).in_(chunk),
                        SC.extraction_status == "ok",
                        col(SC.full_text).is_not(None),
                        *other,
                    )
                    .order_by(SC.id)
                )
                out.update({url: text for url, text in rows if url and text})
        return out

    def save_update(self, check: FeedCheck, records: Sequence[StoryRecord]) -> SaveResult:
        """Write one feed's poll atomically: its stories (insert or update by key), their
        topics, the search index, clusters, the feed's new state and a fetch-log row."""
        (saved,) = self.save_updates([(check, records)])
        return saved

    def save_updates(
        self, updates: Sequence[tuple[FeedCheck, Sequence[StoryRecord]]]
    ) -> list[SaveResult]:
        """Several feeds' polls in one transaction, each written as :meth:`save_update`
        writes it, in order (a later feed's stories cluster with an earlier one's): all
        of them or, should one fail, none. The poll groups the feeds parsed meanwhile
        (``outcomes.GROUP_MAX``): a commit is where SQLite writes the search index's new
        segment and every page the transaction touched, so one commit for several feeds
        costs less than one each (the poll's commits were half of its store time)."""
        results: list[SaveResult] = []
        if not updates:
            return results
        with self._write() as s:
            conn = s.connection()
            # Once for the group: the feeds' rows (locked), which of their URLs have
            # archived labels, and after the stories, the feeds' new state and log rows.
            urls = dict(
                conn.execute(
                    _FEED_URLS_LOCKED, {"fids": sorted({c.feed_id for c, _ in updates})}
                ).all()
            )
            missing = [c.feed_id for c, _ in updates if c.feed_id not in urls]
            if missing:
                raise NotFoundError(f"no feed {missing[0]}")
            # and the URL a permanent redirect sends a feed to: a feed removed there and
            # added again under the URL it was subscribed under has its labels archived
            # under that one
            seen_as = {
                c.feed_id: list(
                    dict.fromkeys(
                        without_credentials(u)
                        for u in (urls[c.feed_id], c.url, c.redirect_url)
                        if u
                    )
                )
                for c, _ in updates
            }
            archived = self._archived_feed_urls(conn, [u for us in seen_as.values() for u in us])
            if self.dialect == "postgresql":
                _lock_story_keys(
                    conn,
                    [r for _, rs in updates for r in rs],
                    [m for c, rs in updates for m in self._clusters_left(conn, c.feed_id, rs)],
                )
            for check, records in updates:
                url = urls[check.feed_id]
                labelled = [u for u in seen_as[check.feed_id] if u in archived]
                results.append(self._save_one(s, check, records, url, labelled))
            self._apply_checks(
                conn,
                [
                    (check, urls[check.feed_id], len(r.new), len(r.updated))
                    for (check, _), r in zip(updates, results, strict=True)
                ],
            )
        self._keep_statistics(sum(len(r.new) + len(r.updated) for r in results))
        return results

    @staticmethod
    def _clusters_left(conn: Any, feed_id: int, records: Sequence[StoryRecord]) -> list[Any]:
        """The stories (canonical URL, fingerprint, title) of the clusters the feed's
        stored stories may leave in this poll (``_leave_cluster_of_url``: one stored
        under a record's key, or its http<->https twin, at a URL the record no longer
        gives), the leaving ones included, for ``_lock_story_keys``: the split moves
        them, and a copy of any of them stored meanwhile must wait for it."""
        now = {r.draft.key: r.draft.canonical_url for r in records}
        keys = {*now, *(t for k in now if (t := scheme_twin(k)) is not None)}
        clusters = sorted(
            {
                int(cluster)
                for chunk in chunks(sorted(keys), 500)
                for key, url, cluster in conn.execute(_LEAVING, {"feed_id": feed_id, "keys": chunk})
                if url is not None and url != now.get(key)
            }
        )
        return [
            row
            for chunk in chunks(clusters, 500)
            for row in conn.execute(_CLUSTER_KEYS, {"clusters": chunk}).all()
        ]

    @staticmethod
    def _archived_feed_urls(conn: Any, urls: Iterable[str]) -> set[str]:
        """Which of these feed URLs (without credentials, as the archive keeps them) have
        archived labels: nearly always none, and then no story of the group needs the
        archive looked up (:meth:`_restore_archived_labels`)."""
        wanted = sorted({without_credentials(u) for u in urls})
        return {
            url
            for chunk in chunks(wanted, 500)
            for (url,) in conn.execute(_ARCHIVED_FEED_URLS, {"urls": chunk})
        }

    def _save_one(
        self,
        s: Any,
        check: FeedCheck,
        records: Sequence[StoryRecord],
        feed_url: str,
        archived: Sequence[str],
    ) -> SaveResult:
        """One feed's stories, in :meth:`save_updates`'s transaction (``feed_url``: the
        feed's URL now, its row locked; ``archived``: the URLs it is known by, now or
        redirected to, that labels of stories are archived under). The feed's state is
        written after the group's stories."""
        conn = s.connection()
        topic_ids = self._topic_map(
            s, {t.topic for r in records if r.prediction for t in r.prediction.topics}
        )
        # Which keys are stored already, in Core; ORM rows only for those (a poll sends
        # mostly new stories: the parse job left out the unchanged ones). A key's
        # http<->https twin is looked up in the same query: a stored twin is this
        # story from before the site moved scheme (dedupe.scheme_twin), unless the
        # twin is itself one of this poll's keys.
        keys = [r.draft.key for r in records]
        sent = set(keys)
        twins = {
            key: twin for key in keys if (twin := scheme_twin(key)) is not None and twin not in sent
        }
        stored = [
            key
            for chunk in chunks([*keys, *twins.values()], 500)
            for key, *_ in conn.execute(_KNOWN, {"feed_id": check.feed_id, "keys": chunk})
        ]
        existing = {
            row.key: row
            for chunk in chunks(stored, 500)
            for row in s.exec(
                mselect(StoryRow).where(SC.feed_id == check.feed_id, col(SC.key).in_(chunk))
            )
        }
        self._reused_guids(s, check.feed_id, records, existing, twins)
        self._another_days_item(s, check.feed_id, records, existing)
        found = {
            rec.draft.key
            for rec in records
            if rec.draft.key in existing or twins.get(rec.draft.key) in existing
        }
        versions = self._unlisted_versions(
            s, check, [r for r in records if r.draft.key not in found], set(existing)
        )
        fresh: list[tuple[NewStory, StoryRecord]] = []
        changed: list[tuple[StoryRow, StoryRecord]] = []
        for rec in records:
            row = existing.get(rec.draft.key)
            if row is None and rec.draft.key in twins:
                row = existing.get(twins[rec.draft.key])
                if row is not None:
                    row.key = rec.draft.key  # later polls find it directly
            if row is None and rec.draft.key in versions:
                row = versions[rec.draft.key]
                row.key = rec.draft.key
            if row is None:
                new = NewStory(check.feed_id, rec.draft.key, rec.draft.title, check.at)
                fill_row(new, rec, is_new=True)
                fresh.append((new, rec))
            else:
                was = row.canonical_url
                fill_row(row, rec, is_new=False)
                if row.canonical_url != was:
                    if was is not None and row.canonical_url != scheme_twin(was):
                        _leave_cluster_of_url(conn, row, was)
                    _mark_later_at_url(conn, row)
                changed.append((row, rec))
        new_rows = [row for row, _ in fresh]
        followers = self._assign_clusters(conn, new_rows, check.feed_id, check.at)
        self._insert_stories(conn, fresh, followers)
        restored = (
            self._restore_archived_labels(conn, archived, fresh, topic_ids, check.at)
            if archived
            else {}
        )
        new_topics = [
            row
            for new_row, rec in fresh
            if new_row.id is not None
            for row in topic_rows(
                new_row.id, rec.prediction, topic_ids, restored.get(new_row.id, {})
            )
        ]
        if new_topics:
            conn.execute(insert(tables.table(StoryTopicRow)), new_topics)
        for row, rec in changed:  # rare: a story whose text changed
            assert row.id is not None
            if rec.prediction is not None:
                self._write_topics(s, row.id, rec.prediction, topic_ids)
                row.model_version = rec.prediction.model_version
        # PostgreSQL: the new rows got their search vector with the INSERT
        if self.dialect == "sqlite":
            search.write_search_index(
                conn,
                [(row.id, row.title, _index_text(row, rec)) for row, rec in fresh if row.id],
                new=True,
            )
        search.write_search_index(
            conn,
            [(row.id, row.title, _index_text(row, rec)) for row, rec in changed if row.id],
        )
        new_ids = [row.id for row, _ in fresh if row.id is not None]
        updated_ids = [row.id for row, _ in changed if row.id is not None]
        return SaveResult(new=tuple(new_ids), updated=tuple(updated_ids))

    @staticmethod
    def _another_days_item(
        s: Any, feed_id: int, records: Sequence[StoryRecord], existing: dict[str, StoryRow]
    ) -> None:
        """Records keyed by a link or a guid whose stored story is another item: the
        two dated ``SAME_PAGE_DATES_APART`` or more apart, under other titles
        (:func:`~aggregator.neardup.title_key`: not a live blog updated under its title)
        and sharing under ``ANOTHER_ITEM_MAX_SHARED_WORDS`` of their words (title and
        feed text: not an edit that fixed the title and some of the text, even re-dated;
        SimHash puts such an edit of a short teaser past 12 bits). A feed without guids
        that links each day's one item to one page ("/today") gives each day's item the
        key of the page, and the next day's overwrote the stored one as an edit: the
        feed's earlier items were lost; so did a feed whose one item keeps its guid
        ("quote-of-the-day") as well as its link (a guid given to another story while its
        stored one moved on in the list is :meth:`_reused_guids`'s, run first). The
        stored story moves to its own
        ``v1:title-date:`` key (out of ``existing``, so the record is stored as a new
        story under the page's or the guid's key)."""
        moved: list[StoryRow] = []
        for rec in records:
            d, row = rec.draft, existing.get(rec.draft.key)
            if row is None or row.content_hash == d.content_hash:
                continue
            if _kind(d.key) not in ("link", "guid"):
                continue
            published = utc(row.published)
            if published is None or not _dated_apart(published, d.published, SAME_PAGE_DATES_APART):
                continue
            if title_key(row.title) == title_key(d.title):
                continue  # a live blog's day, or an edit
            before = f"{row.title}\n{search_text(row.summary, row.content, None)}"
            after = f"{d.title}\n{search_text(d.summary, d.content, None)}"
            if _shared_words(before, after) >= ANOTHER_ITEM_MAX_SHARED_WORDS:
                continue  # an edit that also fixed the title (and maybe re-dated it)
            key = title_date_key(row.title, published)
            if (
                key in existing
                or s.connection().execute(_KNOWN, {"feed_id": feed_id, "keys": [key]}).first()
            ):
                key = f"{key}:{row.id}"
            del existing[d.key]
            row.key = key
            existing[key] = row
            moved.append(row)
        if moved:
            s.flush()  # the new stories go in under the keys these rows had, with Core

    @staticmethod
    def _reused_guids(
        s: Any,
        feed_id: int,
        records: Sequence[StoryRecord],
        existing: dict[str, StoryRow],
        twins: dict[str, str],
    ) -> None:
        """Records keyed by a guid whose stored story is another item: at another link
        (not its http<->https twin), under another title (:func:`~aggregator.neardup.
        title_key`: not a story moved to a fixed slug) and sharing under
        ``ANOTHER_ITEM_MAX_SHARED_WORDS`` of their words (not an edit of all three), and
        moved on: another record of this poll is at the stored story's link, or another
        stored story the poll found at the record's (a story rewritten under its guid
        with a new slug leaves nothing at either, and is updated). A
        feed that numbers its items by their place in the list gives each stored
        story's guid to the next story at the next poll: the new one overwrote the
        stored one as an edit (taking its id, first-seen time, labels and cluster), down
        the list, and the oldest, stored again at the URL its row had just left, joined
        that row's cluster and was hidden. The stored story moves out of ``existing`` to
        the key of a record of this poll at its link (the guid it has now), else to its
        ``v1:link:`` key (dedupe's key 4, with its id appended should that be taken); the
        record at the reused guid is stored as a new story. (``twins``: the records'
        keys' http<->https twins, under which a record finds its stored story.)"""
        # page -> the keys of this poll's records there, and of the stored stories they found
        listed: defaultdict[str, set[str]] = defaultdict(set)
        for r in records:
            if r.draft.canonical_url:
                listed[r.draft.canonical_url].add(r.draft.key)
        held: defaultdict[str, set[str]] = defaultdict(set)
        for key, found in existing.items():
            if found.canonical_url:
                held[found.canonical_url].add(key)
        moved: list[StoryRow] = []
        for rec in records:
            d, row = rec.draft, existing.get(rec.draft.key)
            if row is None or _kind(d.key) != "guid" or row.content_hash == d.content_hash:
                continue
            if not (row.canonical_url and d.canonical_url) or d.canonical_url in (
                row.canonical_url,
                scheme_twin(row.canonical_url),
            ):
                continue  # the same page, or no page to tell the items apart by
            if not (
                listed.get(row.canonical_url, set()) - {d.key}
                or held.get(d.canonical_url, set()) - {d.key}
            ):
                continue  # nothing else at either page: a story rewritten under its guid
            if title_key(row.title) == title_key(d.title):
                continue  # the story moved to another URL
            before = f"{row.title}\n{search_text(row.summary, row.content, None)}"
            after = f"{d.title}\n{search_text(d.summary, d.content, None)}"
            if _shared_words(before, after) >= ANOTHER_ITEM_MAX_SHARED_WORDS:
                continue  # an edit of its link, title and text
            del existing[d.key]
            moved.append(row)
        if not moved:
            return
        # Out of the guids first (each key is unique in its feed), then to the guids
        # that are theirs now.
        sent = {r.draft.key for r in records}
        taken: set[str] = set()
        conn = s.connection()
        for row in moved:
            key = f"{KEY_VERSION}:link:{row.canonical_url}"
            if (
                key in sent
                or key in existing
                or key in taken
                or conn.execute(_KNOWN, {"feed_id": feed_id, "keys": [key]}).first()
            ):
                key = f"{key}:{row.id}"
            row.key = key
            taken.add(key)
        s.flush()
        by_url = {row.canonical_url: row for row in reversed(moved)}
        for rec in records:
            d = rec.draft
            if d.key in existing or twins.get(d.key) in existing or not d.canonical_url:
                continue
            if (row := by_url.pop(d.canonical_url, None)) is not None:
                row.key = d.key
                existing[d.key] = row

    @staticmethod
    def _unlisted_versions(
        s: Any, check: FeedCheck, records: Sequence[StoryRecord], stored: set[str]
    ) -> dict[str, StoryRow]:
        """New records without a link that are a stored story of the feed under a new key
        (record key -> that story's row, to update and re-key): a story among the feed's
        newest that its document no longer lists (``check.listed``), also without a link,
        under the same title (:func:`~aggregator.neardup.title_key`) and publication date,
        with the same text or one near it (``NEAR_DUP_TITLE_MAX_DISTANCE`` SimHash bits
        when dated, ``NEAR_DUP_MAX_DISTANCE`` when not, and then only for an item keyed
        by its text: undated episodes of a podcast, each under its own guid, share title
        and text), both keyed by guid or text (not by the keys ``dedupe`` gives items
        that collide in one document). Such an item is keyed by its
        guid or its text: a guid that carries the time of each fetch, or a typo fixed in
        an item keyed by its text, gave it a new key at every such poll, and with no link
        to cluster the copies by (one feed's stories never cluster by their text), the
        item was listed once per key. ``stored``: keys of this poll's stories found
        stored already, which are not taken."""
        wanted = [
            r
            for r in records
            if r.draft.canonical_url is None
            and _kind(r.draft.key) in ("guid", "hash")
            # undated: only an edit of a text-keyed item (items under one guid each that
            # share title and text, such as podcast episodes, have nothing else to tell
            # an old one from a new one)
            and (r.draft.published is not None or _kind(r.draft.key) == "hash")
        ]
        if not wanted or check.listed is None:
            return {}
        listed = set(check.listed)
        sent = {r.draft.key for r in records}
        candidates = [
            c
            for c in s.connection().execute(
                _NEWEST_OF_FEED,
                {"feed_id": check.feed_id, "limit": UNLISTED_VERSIONS_LOOKED_AT},
            )
            if c.canonical_url is None
            and _kind(c.key) in ("guid", "hash")
            and c.key not in stored
            and c.key not in sent
            and listing_digest(c.key) not in listed
        ]
        if not candidates:
            return {}
        mask = (1 << 64) - 1
        taken: dict[str, int] = {}
        used: set[int] = set()
        for rec in wanted:
            d = rec.draft
            key = title_key(d.title)
            limit = NEAR_DUP_TITLE_MAX_DISTANCE if d.published else NEAR_DUP_MAX_DISTANCE
            best: tuple[int, int] | None = None  # (distance, -id): nearest, then newest
            for c in candidates:
                if c.id in used or utc(c.published) != d.published or title_key(c.title) != key:
                    continue
                if c.content_hash == d.content_hash:
                    distance = 0
                elif c.fingerprint is not None and rec.fingerprint is not None:
                    distance = hamming(int(c.fingerprint) & mask, rec.fingerprint & mask)
                else:
                    continue
                if distance <= limit and (best is None or (distance, -c.id) < best):
                    best = (distance, -int(c.id))
            if best is not None:
                taken[d.key] = -best[1]
                used.add(-best[1])
        if not taken:
            return {}
        rows = {
            row.id: row
            for row in s.exec(mselect(StoryRow).where(col(SC.id).in_(sorted(taken.values()))))
        }
        return {key: rows[story_id] for key, story_id in taken.items()}

    @staticmethod
    def _restore_archived_labels(
        conn: Any,
        feed_urls: Sequence[str],
        fresh: Sequence[tuple[NewStory, StoryRecord]],
        topic_ids: dict[str, int],
        now: datetime,
    ) -> dict[int, dict[int, bool]]:
        """Labels come back with their story: a new story whose feed URL (one of
        ``feed_urls``, as the archive keeps them: its URL, or where a permanent redirect
        sends it) and link match an archived labelled story (its feed was removed, and has
        been added again) gets the user's labels from the archive, which no longer holds
        them. Returns the restored labels by story id (topic id -> the label's value).

        Archived rows of one link apply oldest first, so the newest word on a topic wins;
        a topic no longer in the taxonomy stays archived (as ``train`` skips it).

        A link several stories share (a podcast or status feed linking every item to its
        home page) does not name one story: the archived row then goes to the story with
        its title too, and waits in the archive until that one returns. Matched by link
        alone, every label of the link went onto one story, the others' labels lost to
        it. The link alone still does when it named one labelled story and one returning
        story (a title edited meanwhile)."""
        by_link: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for row, _ in fresh:
            if row.link and row.id is not None:
                by_link[row.link].append((row.id, storable_text(row.title)))
        if not by_link:
            return {}
        found = [
            r
            for chunk in chunks(sorted(by_link), 500)
            for r in conn.execute(
                select(
                    _ARCHIVE.c.id,
                    _ARCHIVE.c.link,
                    _ARCHIVE.c.title,
                    _ARCHIVE.c.positive,
                    _ARCHIVE.c.negative,
                )
                .where(_ARCHIVE.c.feed_url.in_(feed_urls), _ARCHIVE.c.link.in_(chunk))
                .order_by(_ARCHIVE.c.id)
            )
        ]
        if not found:
            return {}
        archived_titles: dict[str, set[str]] = defaultdict(set)
        for _, link, title, _, _ in found:
            archived_titles[link].add(title)
        by_name = {k.lower(): v for k, v in topic_ids.items()}
        restored: dict[int, dict[int, bool]] = defaultdict(dict)
        emptied: list[int] = []
        for arch_id, link, title, positive, negative in found:
            stories = by_link[link]
            same = [sid for sid, t in stories if t == title]
            if same:
                story_id = same[0]
            elif len(stories) == 1 and len(archived_titles[link]) == 1:
                story_id = stories[0][0]
            else:
                continue  # its story has not returned (yet)
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
        PollWrites._own_clusters([row for row, _ in fresh], followers)
        values = []
        for row, rec in fresh:
            if rec.prediction is not None:
                row.model_version = rec.prediction.model_version
            v = {n: getattr(row, n) for n in _STORY_COLUMNS}
            if conn.dialect.name != "sqlite":
                v["search_title"], v["search_body"] = search.pg_index_texts(
                    row.title, _index_text(row, rec)
                )
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
            self._apply_checks(conn, [(c, urls[c.feed_id], 0, 0) for c in checks])

    def _assign_clusters(
        self, conn: Any, rows: Sequence[NewStory], feed_id: int, now: datetime
    ) -> list[tuple[NewStory, NewStory]]:
        """The rows' clusters (:meth:`_match_clusters`), on PostgreSQL with the first
        story of each stored cluster they join locked until the poll commits (FOR KEY
        SHARE). A ``feeds remove`` or ``prune`` committing meanwhile deleted that story
        and moved its cluster to the next one, without the rows still to be committed
        here: they went in under a cluster no story started, hidden from every list
        and export, and so did every later copy of the story (a URL joins its smallest
        cluster). The lock makes the deletion wait for this poll (its re-homing then
        sees these rows); a first story deleted before the lock is taken is missing
        from the answer, and its rows look for their cluster again. (SQLite: the write
        transaction excludes every other writer already.)"""
        followers = self._match_clusters(conn, rows, feed_id, now)
        if conn.dialect.name != "postgresql":
            return followers
        for attempt in range(_CLUSTER_TRIES):
            joined = sorted({r.cluster_id for r in rows if r.cluster_id is not None})
            if not joined:
                break
            alive = {
                int(i)
                for chunk in chunks(joined, 500)
                for i in conn.execute(_LOCK_CLUSTERS, {"ids": chunk}).scalars()
            }
            gone = [r for r in rows if r.cluster_id is not None and r.cluster_id not in alive]
            if not gone:
                break
            for row in gone:
                row.cluster_id = None  # its own cluster, unless a look-up finds another
            if attempt + 1 < _CLUSTER_TRIES:
                followers += self._match_clusters(conn, gone, feed_id, now)
        return followers

    def _match_clusters(
        self, conn: Any, rows: Sequence[NewStory], feed_id: int, now: datetime
    ) -> list[tuple[NewStory, NewStory]]:
        """Before the rows are inserted: a row with the canonical URL (or its http<->https
        twin) of a stored story (of any feed), else with a near-identical SimHash among
        recent stories of other feeds published within ``NEAR_DUP_DATES_APART`` of it
        (``_dated_apart``),
        gets that story's cluster. Returns (row, leader) for
        later rows of this batch that share a URL (or its http<->https twin) with an
        earlier, new-cluster row; rows left
        without a cluster start their own (:meth:`_own_clusters`, once ids exist). One query
        for the URLs and one for the four bands, on the connection: through the ORM session
        each cost ~0.4 ms more."""
        if not rows:
            return []
        # URL -> (cluster, feed, text, its earliest and latest publication dates there)
        by_url: dict[str, list[tuple[int, int, str, datetime | None, datetime | None]]]
        by_url = defaultdict(list)
        urls = {r.canonical_url for r in rows if r.canonical_url}
        # The http<->https twin of a URL is the same article (dedupe.scheme_twin).
        twins = {url: twin for url in urls if (twin := scheme_twin(url)) is not None}
        for chunk in chunks(sorted(urls | set(twins.values())), 500):
            for url, cluster, fid, digest, first, last in conn.execute(
                _URL_CLUSTERS, {"urls": chunk}
            ):
                by_url[url].append((int(cluster), int(fid), digest, first, last))

        def url_cluster(row: NewStory, url: str | None) -> int | None:
            """The cluster of the stored stories at ``url``, less this feed's whose
            stories there were published ``SAME_PAGE_DATES_APART`` or more before or
            after ``row`` (undated ones are not told apart by date): a feed that
            links each day's item to one page ("https://site/today", a single-item
            "latest" document, where no other item shows that the link is shared) gives
            a new story there, which was hidden under the first one. Another feed's
            story at the URL is the same article, whatever its date (an aggregator's
            item dated when it was posted there), and so is this feed's story there
            with ``row``'s text (content hash), whatever its date: a generator that
            stamps its item with a new guid and the time of each fetch, polled once a
            day, had the story listed once more each day. Where the URL's stories are
            in several clusters (such a page's days), the one published nearest
            ``row``, else the smallest."""

            def away(first: datetime | None, last: datetime | None) -> timedelta | None:
                """How far ``row`` was published from the dates ``first``-``last``
                (None: either undated)."""
                if row.published is None or first is None or last is None:
                    return None
                return max(first - row.published, row.published - last, timedelta(0))

            found: list[tuple[timedelta, int]] = []
            for cluster, fid, digest, first, last in by_url.get(url or "", ()):
                d = away(first, last)
                if (
                    fid == feed_id
                    and d is not None
                    and d >= SAME_PAGE_DATES_APART
                    and digest != row.content_hash
                ):
                    continue  # another item the feed links to the page, a day or more apart
                found.append((timedelta.max if d is None else d, cluster))
            return min(found)[1] if found else None

        leaders: dict[str, NewStory] = {}
        followers: list[tuple[NewStory, NewStory]] = []
        pending: list[NewStory] = []
        for row in rows:
            url = row.canonical_url
            twin = twins.get(url) if url else None
            if (cluster := url_cluster(row, url) or url_cluster(row, twin)) is not None:
                row.cluster_id = cluster
            elif url and url in leaders:
                followers.append((row, leaders[url]))
            elif twin and twin in leaders:  # a batch's copies at http:// and https://
                followers.append((row, leaders[twin]))
            else:
                if url:
                    leaders[url] = row
                if row.fingerprint is not None:
                    pending.append(row)
            # Another cluster's story is at the URL already (one that joins a cluster by
            # its text below is marked too: the stories at its URL are its feed's)
            at_url = {c for c, *_ in by_url.get(url or "", ())}
            row.later_at_url = bool(at_url - {row.cluster_id})
        if not pending:
            return followers
        cands: dict[tuple[int, int | None], list[_Candidate]] = defaultdict(list)
        since = now - NEAR_DUP_WINDOW
        for group in chunks(pending, 500):
            params: dict[str, Any] = {"feed_id": feed_id, "since": since}
            for i in range(4):
                params[f"values{i}"] = sorted({v for r in group if (v := band(r, i)) is not None})
            for i, cluster, fp, value, title, published in conn.execute(
                _BAND_MATCHES, params
            ).all():
                cands[(int(i), int(value))].append((int(cluster), int(fp), title, published))
        for row in pending:
            assert row.fingerprint is not None
            fp = row.fingerprint & ((1 << 64) - 1)
            match = next(
                (
                    cluster
                    for i in range(4)
                    for cluster, other, title, published in cands.get((i, band(row, i)), ())
                    if ((other & ((1 << 64) - 1)) ^ fp).bit_count() <= NEAR_DUP_MAX_DISTANCE
                    # one boilerplate paragraph under "Weekly Threat Report #41" and "#42":
                    # near-identical text, but two issues of a series, not one story
                    and not series_apart(row.title, title)
                    and not _dated_apart(row.published, published)
                ),
                None,
            )
            if match is not None:
                row.cluster_id = match
        alone = [r for r in pending if r.cluster_id is None and r.title_hash is not None]
        if alone:
            self._match_by_title(conn, alone, feed_id, since)
        return followers

    @staticmethod
    def _match_by_title(conn: Any, rows: Sequence[NewStory], feed_id: int, since: datetime) -> None:
        """Rows the bands left without a cluster, against the recent stories of other
        feeds under the same title (``neardup.title_hash``, its words compared again): the
        nearest within ``NEAR_DUP_TITLE_MAX_DISTANCE`` SimHash bits gives its cluster. A
        syndicated press release with a dateline added is one story with the original; a
        column that keeps its title from week to week has other text, far apart."""
        cands: dict[int, list[_Candidate]] = defaultdict(list)
        for group in chunks(list(rows), 500):
            hashes = sorted({r.title_hash for r in group if r.title_hash is not None})
            params = {"feed_id": feed_id, "since": since, "hashes": hashes}
            for h, cluster, fp, title, published in conn.execute(_TITLE_MATCHES, params).all():
                cands[int(h)].append((int(cluster), int(fp), title, published))
        mask = (1 << 64) - 1
        for row in rows:
            found = cands.get(row.title_hash) if row.title_hash is not None else None
            if not found or row.fingerprint is None:
                continue
            fp, key = row.fingerprint & mask, title_key(row.title)
            near = [
                (hamming(other & mask, fp), cluster)
                for cluster, other, title, published in found
                if title_key(title) == key and not _dated_apart(row.published, published)
            ]
            best = min(near, default=None)
            if best is not None and best[0] <= NEAR_DUP_TITLE_MAX_DISTANCE:
                row.cluster_id = best[1]

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

    @staticmethod
    def _apply_checks(conn: Any, checks: Sequence[tuple[FeedCheck, str, int, int]]) -> None:
        """Apply outcomes (each with its feed's current URL and its counts of new and
        updated stories, for the fetch log) with Core statements: one
        executemany UPDATE of the polling state, the rare URL adoption and learnt title or
        site, the fetch-log rows and one prune. (The ORM unit of work for one feed row
        and one log row was a tenth of a first poll's store time.)"""
        conn.execute(CHECK_UPDATE, [check_params(c) for c, _, _, _ in checks])
        claimed = {c.feed_id: c.claimed for c, _, _, _ in checks if c.claimed is not None}
        if claimed:
            keep_user_intervals(conn, claimed)
        for check, url, _, _ in checks:
            extra: dict[str, Any] = {}
            if check.url and check.url != url:
                moved = check.url
                if check.claimed is not None and check.claimed.url not in (None, url):
                    # respelled by the sync meanwhile: the new password goes along
                    moved = login_moved(moved, check.claimed.url, url)
                clash = conn.execute(_FEED_ID_BY_URL, {"url": moved}).first()
                if clash is None:
                    extra["url"] = moved
                    # SET sees the row as it was: the first URL subscribed stays known
                    extra["source_url"] = func.coalesce(FEED.c.source_url, FEED.c.url)
            if check.success and check.title:
                extra["title"] = check.title
            if check.success and check.site:
                extra["site"] = check.site
            if check.success and check.listed is not None:
                listed = check.listed
                if check.listed_cut:  # what the part read lists, and what was listed before
                    before = conn.execute(
                        select(FEED.c.listed).where(FEED.c.id == check.feed_id)
                    ).scalar()
                    listed = tuple(dict.fromkeys([*(before or "").split(), *listed]))
                extra["listed"] = " ".join(listed)
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
                    # an error's message, or why a feed was skipped
                    "error": c.last_error if c.outcome == "error" else c.reason,
                }
                for c, _, new, updated in checks
            ],
        )
        prune_fetch_log(conn, sorted({c.feed_id for c, _, _, _ in checks}))


def _lock_story_keys(
    conn: Any,
    records: Iterable[StoryRecord],
    stored: Iterable[tuple[str | None, int | None, str]] = (),
) -> None:
    """Take ``_LOCK_CLUSTER_KEYS`` for what ``records`` are clustered by (``_match_clusters``):
    the canonical URL without its scheme (an ``http://`` and an ``https://`` copy are
    one article, ``dedupe.scheme_twin``), each SimHash band and the title's hash, in
    ``CLUSTER_LOCKS`` locks; and for what the ``stored`` stories (canonical URL,
    fingerprint, title) are clustered by: those of the clusters the poll may split
    (``PollWrites._clusters_left``). A story whose link is corrected leaves the cluster
    it joined by its old URL (``_leave_cluster_of_url``), and the stories there only by
    that URL move to a cluster of their own: a copy of one of them that another daemon
    stored meanwhile, without waiting, joined the cluster as it was and stayed hidden
    for good under the story that had left."""
    names: set[str] = set()
    items = [(r.draft.canonical_url, r.fingerprint, r.draft.title) for r in records]
    for url, fingerprint, title in [*items, *stored]:
        if url:
            names.add("u" + url.split("://", 1)[-1])
        if fingerprint is not None:
            names.update(f"{b}:{v}" for b, v in dialect.simhash_bands(fingerprint).items())
        if (h := title_hash(title)) is not None:
            names.add(f"t:{h}")
    keys = sorted(
        {
            int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")
            % CLUSTER_LOCKS
            for name in names
        }
    )
    if keys:
        conn.execute(_LOCK_CLUSTER_KEYS, {"keys": keys})
