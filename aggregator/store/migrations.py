"""The schema's numbered migrations, append only: each runs once, in its own
transaction, recorded in ``schema_version``; ``migrate`` runs those not done yet, safely
from several processes at once, and refuses a database a newer aggregator migrated.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    Engine,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SAWarning
from sqlmodel import SQLModel

from ..errors import StoreError
from ..feedlist import url_host
from . import tables
from .dialect import keep_story_ids, simhash_bands
from .rekey import _m20_canonical_urls, _m25_cache_busters
from .repairs import _m6_repair_session7_rows
from .rows import utc
from .search import (
    COMPAT_FORMS,
    SEARCH_CONFIG,
    SEARCH_DICT,
    STEMMED_TOKENS,
    write_search_index,
)

log = logging.getLogger(__name__)


def _m1_initial(conn: Connection) -> None:
    # create_all builds the tables as the models stand today; later migrations therefore
    # add their columns only when missing, so old and new databases end up the same.
    SQLModel.metadata.create_all(conn, tables=[tables.table(t) for t in _TABLES])
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS story_fts USING fts5("
            "title, body, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
    else:
        conn.exec_driver_sql("ALTER TABLE story ADD COLUMN IF NOT EXISTS search tsvector")
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_story_search ON story USING GIN (search)"
        )


def _columns(conn: Connection, table: str) -> set[str]:
    with warnings.catch_warnings():
        # story.stored_by (migration 21) is an xid8, a type SQLAlchemy does not know;
        # only the names are wanted here
        warnings.filterwarnings("ignore", "Did not recognize type", SAWarning)
        return {c["name"] for c in inspect(conn).get_columns(table)}


def _m2_simhash_bands(conn: Connection) -> None:
    have = _columns(conn, "story")
    for i in range(4):
        if f"fp_band{i}" not in have:
            conn.exec_driver_sql(f"ALTER TABLE story ADD COLUMN fp_band{i} INTEGER")
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS ix_story_fp_band{i} ON story (fp_band{i})"
        )
    rows = conn.execute(text("SELECT id, fingerprint FROM story WHERE fingerprint IS NOT NULL"))
    for story_id, fp in rows.all():
        conn.execute(
            text(
                "UPDATE story SET fp_band0=:b0, fp_band1=:b1, fp_band2=:b2, fp_band3=:b3 "
                "WHERE id=:id"
            ),
            {"id": story_id, **simhash_bands(fp)},
        )


def _m3_poll_interval(conn: Connection) -> None:
    if "poll_interval_s" not in _columns(conn, "feed"):
        conn.exec_driver_sql("ALTER TABLE feed ADD COLUMN poll_interval_s INTEGER")


def _m4_simhash_v2(conn: Connection) -> None:
    """Fingerprints move from SimHash scheme 1 to 2 (``neardup.SIMHASH_VERSION``). Only
    stories of the last ``NEAR_DUP_WINDOW`` are ever compared, counted back from the
    newest story stored (no clock is read): their fingerprints are recomputed from the
    text stored with them, the extracted article where there is one, else the feed's
    text, as the parse and extraction jobs compute them. Older fingerprints, never
    compared again, are cleared rather than left in a scheme nothing else speaks."""
    story = tables.table(tables.StoryRow)
    c = story.c
    has_fp = c.fingerprint.is_not(None)
    newest = conn.execute(select(func.max(c.first_seen)).where(has_fp)).scalar()
    if newest is None:
        return
    # Imported only with fingerprints to recompute: numpy would add ~15 MB to every
    # process that opens a new store (the poll's main process never needs it).
    from ..neardup import simhash
    from ..textutil import html_to_text
    from .writes import NEAR_DUP_WINDOW

    since = newest - NEAR_DUP_WINDOW
    ids = conn.execute(select(c.id).where(has_fp, c.first_seen >= since)).scalars().all()
    cols = (c.id, c.title, c.summary, c.content, c.full_text, c.extraction_status)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        values = []
        for sid, title, summary, content, full_text, status in conn.execute(
            select(*cols).where(c.id.in_(chunk))
        ):
            fp: int | None = None
            if status == "ok" and full_text:
                fp = simhash(f"{title}\n{full_text}") or None
            if fp is None:
                body = (html_to_text(content) if content else "") or html_to_text(summary or "")
                fp = simhash(f"{title}\n{body}") if body else None
            if fp is None:
                values.append(
                    {"id": sid, "fp": None, "b0": None, "b1": None, "b2": None, "b3": None}
                )
            else:
                signed = fp - (1 << 64) if fp >= 1 << 63 else fp
                values.append({"id": sid, "fp": signed, **simhash_bands(fp)})
        conn.execute(
            text(
                "UPDATE story SET fingerprint=:fp, fp_band0=:b0, fp_band1=:b1, fp_band2=:b2, "
                "fp_band3=:b3 WHERE id=:id"
            ),
            values,
        )
    conn.execute(
        story.update()
        .where(has_fp, c.first_seen < since)
        .values(fingerprint=None, fp_band0=None, fp_band1=None, fp_band2=None, fp_band3=None)
    )


_TABLES = (
    tables.SchemaVersionRow,
    tables.FeedRow,
    tables.StoryRow,
    tables.TopicRow,
    tables.StoryTopicRow,
    tables.LabelRow,
    tables.FetchLogRow,
    tables.LabelArchiveRow,
    tables.ReadCursorRow,
    tables.HostHoldRow,
)


def _m5_feeds_and_label_archive(conn: Connection) -> None:
    """``feed.source_url`` remembers the subscribed URL across an adopted redirect,
    ``feed.not_before`` a server's Retry-After (which ``poll --all`` must honour too),
    ``label_archive`` the labels of removed feeds' stories; and the 30-day rule now
    only sets the status: ``enabled`` is the user's setting alone
    (clearing it made every feeds.yaml sync take the file's ``enabled: true`` for the
    user turning the feed back on)."""
    have = _columns(conn, "feed")
    if "source_url" not in have:
        conn.exec_driver_sql("ALTER TABLE feed ADD COLUMN source_url TEXT")
    if "not_before" not in have:
        kind = "TIMESTAMP" if conn.dialect.name == "postgresql" else "DATETIME"  # naive UTC
        conn.exec_driver_sql(f"ALTER TABLE feed ADD COLUMN not_before {kind}")
    conn.execute(text("UPDATE feed SET enabled = :t WHERE status = 'disabled'"), {"t": True})
    tables.table(tables.LabelArchiveRow).create(conn, checkfirst=True)


def _m7_listed_keys(conn: Connection) -> None:
    """``feed.listed``: which keys the latest document lists, which prune spares."""
    if "listed" not in _columns(conn, "feed"):
        conn.exec_driver_sql("ALTER TABLE feed ADD COLUMN listed TEXT")


def _m8_list_indexes(conn: Connection) -> None:
    """``ix_story_first_sort``: each cluster's first story by (sort_date, id), what an
    unfiltered list walks (see ``tables.FIRST_OF_CLUSTER``). ``create_all`` in migration 1
    gives new databases the same index."""
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_story_first_sort ON story (sort_date, id, cluster_id) "
        f"WHERE {tables.FIRST_OF_CLUSTER}"
    )


def _m9_band_date_indexes(conn: Connection) -> None:
    """``ix_story_fp_band{i}_seen`` on (band, first_seen) in place of migration 2's
    indexes on the band alone: a poll's near-duplicate look-up reads only the stories of
    the window it compares (``tables.StoryRow``). The old indexes serve nothing the new
    ones do not (their leading column), and each cost every insert an entry."""
    for i in range(4):
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS ix_story_fp_band{i}_seen ON story (fp_band{i}, first_seen)"
        )
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS ix_story_fp_band{i}")


def _m10_label_archive_index(conn: Connection) -> None:
    """``ix_label_archive_feed_url``: a poll that stores new stories of a feed looks in
    the label archive for their labels (a removed feed added again), by feed URL. A hash
    index on PostgreSQL, where a B-tree entry is limited to ~2.7 kB and a feed URL,
    adopted from a server's redirect, is not."""
    using = "USING hash " if conn.dialect.name == "postgresql" else ""
    conn.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS ix_label_archive_feed_url ON label_archive {using}(feed_url)"
    )


def _m11_search_config(conn: Connection) -> None:
    """PostgreSQL: the search configuration :data:`SEARCH_CONFIG` (``english`` without
    stop words), and every story's search vector rebuilt with it from text folded by
    :func:`fold_diacritics`, so that a search finds what SQLite's index finds (``who``,
    ``Goran`` for ``Göran``). A one-time pass over the stories, a page at a time (~1 s
    per 2,000 stories)."""
    if conn.dialect.name != "postgresql":
        return
    if conn.execute(text("SELECT to_regclass('pg_catalog.pg_ts_dict')")).scalar() is None:
        return  # pragma: no cover - every PostgreSQL has it
    if not conn.execute(
        text("SELECT 1 FROM pg_ts_dict WHERE dictname = :d"), {"d": SEARCH_DICT}
    ).first():
        conn.exec_driver_sql(
            f"CREATE TEXT SEARCH DICTIONARY {SEARCH_DICT} "
            "(TEMPLATE = pg_catalog.snowball, Language = english)"
        )
    if not conn.execute(
        text("SELECT 1 FROM pg_ts_config WHERE cfgname = :c"), {"c": SEARCH_CONFIG}
    ).first():
        conn.exec_driver_sql(
            f"CREATE TEXT SEARCH CONFIGURATION {SEARCH_CONFIG} (COPY = pg_catalog.english)"
        )
        conn.exec_driver_sql(
            f"ALTER TEXT SEARCH CONFIGURATION {SEARCH_CONFIG} "
            f"ALTER MAPPING FOR {STEMMED_TOKENS} WITH {SEARCH_DICT}"
        )
    _rebuild_search(conn)


def _rebuild_search(
    conn: Connection,
    *,
    non_ascii_only: bool = False,
    only: Callable[[str], bool] | None = None,
) -> None:
    """Every story's search index entry written again by the current
    ``write_search_index``, a page at a time (PostgreSQL: ~1 s per 2,000 stories); with
    ``non_ascii_only``, only those whose text is not all ASCII; with ``only``, only
    those with a stored text (title, summary, content, full text) it is true of (the
    others are written as they were)."""
    from .rows import search_text  # rows imports this module: only at run time

    c = tables.table(tables.StoryRow).c
    stories = int(
        conn.execute(select(func.count()).select_from(tables.table(tables.StoryRow))).scalar() or 0
    )
    if stories > 20_000:
        log.warning(
            "store: rebuilding the search index of %d stories for the new search rules "
            "(once; about %d s)",
            stories,
            stories // 2000,
        )
    last = 0
    while True:  # keyset pages: every story is read once, never all at once
        page = conn.execute(
            select(c.id, c.title, c.summary, c.content, c.full_text)
            .where(c.id > last)
            .order_by(c.id)
            .limit(1000)
        ).all()
        if not page:
            break
        last = page[-1][0]
        items = [
            (sid, title, search_text(summary, content, full))
            for sid, title, summary, content, full in page
            if only is None or any(only(t) for t in (title, summary, content, full) if t)
        ]
        if non_ascii_only:
            items = [(sid, t, b) for sid, t, b in items if not (t.isascii() and b.isascii())]
        if items:
            write_search_index(conn, items)


def _m12_story_id_floor(conn: Connection) -> None:
    """SQLite: ``store_meta``, where the store keeps the largest story id it has given
    (see :func:`keep_story_ids`), so that ids are never given twice."""
    if conn.dialect.name != "sqlite":
        return
    conn.exec_driver_sql(
        "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    )
    keep_story_ids(conn)


def _m13_pending_index(conn: Connection) -> None:
    """``ix_story_pending``: the stories still waiting for their article's text, which
    the daemon looks for after every cycle (``SqlStore.waiting_extractions``)."""
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_story_pending ON story (id) "
        "WHERE extraction_status = 'pending'"
    )


def _m14_search_words(conn: Connection) -> None:
    """PostgreSQL: the search index made of the words FTS5 cuts text into
    (``search.pg_index_text``: ``example.com`` is ``example`` and ``com``, ``CVE-2024-1234``
    three words) and stemmed with Porter's stemmer, as FTS5 stems; every vector rebuilt.
    ``example`` or ``2024`` found stories on SQLite only, ``sky`` found "skies" on
    PostgreSQL only."""
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql(f"ALTER TEXT SEARCH DICTIONARY {SEARCH_DICT} (Language = porter)")
    _rebuild_search(conn)


def _m15_story_url_hash_index(conn: Connection) -> None:
    """PostgreSQL: ``ix_story_canonical_url`` a hash index. A poll looks stories up by
    canonical URL (equality only: the same link in another feed, an article already
    extracted); a B-tree entry is limited to ~2.7 kB, so a story whose link carried a few
    kilobytes of token could not be stored, and its feed's update failed on every poll
    (the label archive's feed URL index is a hash index for the same reason, migration
    10)."""
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_story_canonical_url")
    conn.exec_driver_sql("CREATE INDEX ix_story_canonical_url ON story USING hash (canonical_url)")


def _m16_story_key_digest_index(conn: Connection) -> None:
    """PostgreSQL: a story's key unique within its feed by its digest, ``(feed_id,
    md5(key))``, and looked up through a hash index. A B-tree entry is limited to ~2.7 kB,
    so an item with a guid (or, without one, a link) of a few kilobytes failed its feed's
    whole update on every poll; SQLite took it. A unique index cannot be a hash index;
    an expression index on the digest can be unique, and it changes no stored key."""
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql("ALTER TABLE story DROP CONSTRAINT IF EXISTS uq_story_feed_key")
    conn.exec_driver_sql(
        "CREATE UNIQUE INDEX IF NOT EXISTS uq_story_feed_key_md5 ON story (feed_id, md5(key))"
    )
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_story_key ON story USING hash (key)")


def _m17_sqlite_search_words(conn: Connection) -> None:
    """SQLite: the search index entries of stories with text beyond ASCII written again,
    as ``search.fts5_index_text`` cuts them: FTS5 knows Unicode 6.1 only, so ``🧵Thread``
    or ``100₽`` was one word, and ``thread`` found the story on PostgreSQL only."""
    if conn.dialect.name == "sqlite":
        _rebuild_search(conn, non_ascii_only=True)


def _m27_search_compat_forms(conn: Connection) -> None:
    """Both databases: the search index entries of stories with full-width letters or
    digits or half-width katakana written again, folded as ``search.fold_forms`` folds
    them (``ＤＮＳ`` is ``DNS``): ``dns`` did not find them, and now ``ＤＮＳ`` is
    searched as ``dns``."""
    _rebuild_search(conn, only=lambda t: not t.isascii() and COMPAT_FORMS.search(t) is not None)


def _m18_title_hash(conn: Connection) -> None:
    """``story.title_hash`` (``neardup.title_hash``) and its index by date, for the look-up
    of copies under the same title (``PollWrites._match_by_title``), given to the stories
    of the last ``NEAR_DUP_WINDOW`` before the newest (the only ones ever compared; no
    clock is read) that have a fingerprint."""
    if "title_hash" not in _columns(conn, "story"):
        conn.exec_driver_sql("ALTER TABLE story ADD COLUMN title_hash BIGINT")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_story_title_hash_seen ON story (title_hash, first_seen)"
    )
    from ..neardup import title_hash
    from .writes import NEAR_DUP_WINDOW

    c = tables.table(tables.StoryRow).c
    has_fp = c.fingerprint.is_not(None)
    newest = conn.execute(select(func.max(c.first_seen)).where(has_fp)).scalar()
    if newest is None:
        return
    rows = conn.execute(
        select(c.id, c.title).where(has_fp, c.first_seen >= newest - NEAR_DUP_WINDOW)
    ).all()
    values = [{"i": i, "h": h} for i, title in rows if (h := title_hash(title)) is not None]
    for start in range(0, len(values), 500):
        conn.execute(
            text("UPDATE story SET title_hash = :h WHERE id = :i"), values[start : start + 500]
        )


#: SQLite: the search index's tokenizer since migration 19. Combining marks (``M*``) are
#: word characters, as in ``search.pg_index_text``'s words: a Hindi word keeps its vowel
#: signs. With FTS5's default categories (``L* N* Co``) they cut it, so ``नीति`` (the
#: pieces ``न त``) found ``नीतियाँ``, and ``स`` every word beginning with that letter.
#: Diacritics of decomposed Latin text are still removed (``remove_diacritics 2``).
SQLITE_TOKENIZE = "porter unicode61 remove_diacritics 2 categories 'L* N* Co M*'"


def _m19_sqlite_marks_in_words(conn: Connection) -> None:
    """SQLite: the search index made again with :data:`SQLITE_TOKENIZE`. FTS5 cannot
    change a table's tokenizer, so a new table is filled from the old one's own copy of
    the indexed text (one statement inside SQLite: 6.4 s for the 34,930 stories of
    ``benchmarks/fetch.py``'s 1,000 feeds, with migration 20; 20 s for as many texts of
    500 random words), the old one dropped and the new one renamed."""
    if conn.dialect.name != "sqlite":
        return
    made = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'story_fts'")).scalar()
    if made is not None and "categories" in made:
        return
    conn.exec_driver_sql("DROP TABLE IF EXISTS story_fts_new")
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE story_fts_new USING fts5(title, body, "
        f'tokenize = "{SQLITE_TOKENIZE}")'
    )
    if made is not None:
        stories = conn.execute(text("SELECT count(*) FROM story_fts")).scalar() or 0
        if stories > 20_000:
            log.warning(
                "store: rebuilding the search index of %d stories (once; about %d s)",
                stories,
                max(1, stories * 2 // 10_000),
            )
        conn.exec_driver_sql(
            "INSERT INTO story_fts_new (rowid, title, body) "
            "SELECT rowid, title, body FROM story_fts"
        )
        conn.exec_driver_sql("DROP TABLE story_fts")
    conn.exec_driver_sql("ALTER TABLE story_fts_new RENAME TO story_fts")


def _m21_read_cursors(conn: Connection) -> None:
    """``read_cursor`` (``stories --new``), and on PostgreSQL ``story.stored_by``: the
    transaction that inserted the story (``pg_current_xact_id()``, which a story's insert
    has anyway), tested against a reading list's snapshot. Stories stored before have
    none and count as read: the column is added without a value, and its default set
    afterwards, so no existing row is rewritten (a volatile default would rewrite the
    whole table)."""
    tables.table(tables.ReadCursorRow).create(conn, checkfirst=True)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE story ADD COLUMN IF NOT EXISTS stored_by xid8")
        conn.exec_driver_sql(
            "ALTER TABLE story ALTER COLUMN stored_by SET DEFAULT pg_current_xact_id()"
        )
        conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_story_stored_by ON story (stored_by)")


def _m22_reading_list_filters(conn: Connection) -> None:
    """``read_cursor.filters``: the options a named reading list reads by."""
    if "filters" not in _columns(conn, "read_cursor"):
        conn.exec_driver_sql("ALTER TABLE read_cursor ADD COLUMN filters TEXT")


def _m23_host_holds(conn: Connection) -> None:
    """``host_hold``: the hosts that asked to be left alone, by the host that answered.
    The holds standing are taken over from the feeds' ``not_before``, as they were read
    (each feed's URL's host; they end within a week)."""
    tables.table(tables.HostHoldRow).create(conn, checkfirst=True)
    now = datetime.now(UTC)
    holds: dict[str, datetime] = {}
    feed = tables.table(tables.FeedRow)
    rows = conn.execute(
        select(feed.c.url, feed.c.not_before).where(
            feed.c.enabled == True,  # noqa: E712
            feed.c.not_before > now,
        )
    )
    for url, value in rows:
        if (until := utc(value)) is not None and (host := url_host(url)):
            holds[host] = max(until, holds.get(host, until))
    hold = tables.table(tables.HostHoldRow)
    if holds and not conn.execute(select(hold.c.host).limit(1)).first():
        conn.execute(hold.insert(), [{"host": h, "held_until": u} for h, u in holds.items()])


def _m24_later_at_url(conn: Connection) -> None:
    """``story.later_at_url``: a story stored where another cluster's story was first
    (``Store.first_clusters_at``), given as the ids were chosen until now: every story
    at a URL that is not in the cluster of the URL's smallest story id."""
    if "later_at_url" not in _columns(conn, "story"):
        conn.exec_driver_sql(
            "ALTER TABLE story ADD COLUMN later_at_url BOOLEAN NOT NULL DEFAULT false"
        )
    # Only URLs holding more than one cluster, each looked up by the URL index
    conn.exec_driver_sql(
        "UPDATE story SET later_at_url = true WHERE canonical_url IN ("
        " SELECT canonical_url FROM story WHERE canonical_url IS NOT NULL"
        " GROUP BY canonical_url HAVING count(DISTINCT coalesce(cluster_id, id)) > 1)"
        " AND coalesce(cluster_id, id) <> (SELECT coalesce(f.cluster_id, f.id) FROM story f"
        " WHERE f.canonical_url = story.canonical_url ORDER BY f.id LIMIT 1)"
    )


def _m26_feed_warnings(conn: Connection) -> None:
    """``feed.warnings``: the warnings of each feed's last parsed document, taken from its
    ``last_error`` where that still holds them (the last check was a success, the error
    count is nought: what a 304 kept of them until now)."""
    if "warnings" not in _columns(conn, "feed"):
        conn.exec_driver_sql("ALTER TABLE feed ADD COLUMN warnings TEXT")
    conn.exec_driver_sql(
        "UPDATE feed SET warnings = last_error WHERE last_error IS NOT NULL"
        " AND error_count = 0 AND last_success IS NOT NULL AND last_success = last_check"
    )


def _m28_entry_link(conn: Connection) -> None:
    """``story.entry_link``: the link a cluster's first story exports as its entry id in
    place of its own, taken over from the first story before it when that one was
    deleted (``StoreBase._rehome_clusters``). Empty: the links of first stories deleted
    until now are gone with them."""
    if "entry_link" not in _columns(conn, "story"):
        conn.exec_driver_sql("ALTER TABLE story ADD COLUMN entry_link TEXT")


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "initial schema with full-text index", _m1_initial),
    (2, "SimHash bands for near-duplicate lookup", _m2_simhash_bands),
    (3, "remember each feed's base polling interval", _m3_poll_interval),
    (4, "SimHash scheme 2 fingerprints", _m4_simhash_v2),
    (5, "feed source URL and Retry-After, label archive", _m5_feeds_and_label_archive),
    (6, "repair rows written before session 7's fixes", _m6_repair_session7_rows),
    (7, "the story keys each feed's latest document lists", _m7_listed_keys),
    (8, "an index of each cluster's first story by date", _m8_list_indexes),
    (9, "SimHash band indexes by date", _m9_band_date_indexes),
    (10, "label archive index by feed URL", _m10_label_archive_index),
    (11, "PostgreSQL search without stop words, diacritics folded", _m11_search_config),
    (12, "SQLite: story ids never given twice", _m12_story_id_floor),
    (13, "an index of the stories waiting for their article", _m13_pending_index),
    (14, "PostgreSQL search by the words SQLite's index cuts, Porter stems", _m14_search_words),
    (
        15,
        "PostgreSQL: story URLs indexed by hash, whatever their length",
        _m15_story_url_hash_index,
    ),
    (
        16,
        "PostgreSQL: story keys unique by digest, whatever their length",
        _m16_story_key_digest_index,
    ),
    (17, "SQLite: search by the words PostgreSQL's index holds", _m17_sqlite_search_words),
    (18, "a hash of each story's title, for copies under the same title", _m18_title_hash),
    (19, "SQLite: a word's combining marks are in the word", _m19_sqlite_marks_in_words),
    (20, "canonical URLs and link keys: more trackers dropped, IDNA 2008", _m20_canonical_urls),
    (21, "reading lists: how far each has read, and who stored each story", _m21_read_cursors),
    (22, "reading lists: the options a named list reads by", _m22_reading_list_filters),
    (23, "the hosts that asked to be left alone, by the host that answered", _m23_host_holds),
    (24, "which stories came to a URL another story had first", _m24_later_at_url),
    (25, "canonical URLs and link keys: cache-busters dropped", _m25_cache_busters),
    (26, "the warnings of each feed's last parsed document", _m26_feed_warnings),
    (27, "search: full-width letters and half-width katakana folded", _m27_search_compat_forms),
    (28, "the link a cluster's entry id keeps once its first story is gone", _m28_entry_link),
]


def migrate(engine: Engine) -> int:
    """Bring the schema up to date; returns the version. Safe to run concurrently from
    several processes (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE). A schema
    already up to date is seen with a plain read first, so that opening the store for a
    query never waits for another process's write lock."""
    latest = MIGRATIONS[-1][0]
    # Only the read may fail for a new database: a connection that fails is the server's
    # (not answering, refusing the login), and trying a second one waited out the
    # connect timeout twice.
    with engine.connect() as conn:
        try:
            done = {row[0] for row in conn.execute(text("SELECT version FROM schema_version"))}
        except DBAPIError:  # no schema_version table yet: a new database
            done = set()
    _refuse_newer(done, latest)
    if done >= {version for version, _, _ in MIGRATIONS}:
        return latest
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            # Waiting for another process's migration (minutes on a big store) is not
            # a stuck lock: no lock_timeout for that wait, the session's for the rest.
            limit = conn.execute(text("SHOW lock_timeout")).scalar()
            conn.execute(text("SET LOCAL lock_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_xact_lock(7261001)"))
            conn.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": limit})
        tables.table(tables.SchemaVersionRow).create(conn, checkfirst=True)
        done = {row[0] for row in conn.execute(text("SELECT version FROM schema_version"))}
        _refuse_newer(done, latest)
        for version, description, fn in MIGRATIONS:
            if version in done:
                continue
            fn(conn)
            conn.execute(
                text(
                    "INSERT INTO schema_version (version, applied, description) "
                    "VALUES (:v, CURRENT_TIMESTAMP, :d)"
                ),
                {"v": version, "d": description},
            )
        return latest


def _refuse_newer(done: set[int], latest: int) -> None:
    if done and max(done) > latest:
        # A newer aggregator migrated it: writing with this one would mix schemes
        # (fingerprints, keys) that the newer code no longer reads.
        raise StoreError(
            f"the database is at schema version {max(done)}, newer than this "
            f"aggregator knows (up to {latest}): upgrade aggregator to use it"
        )
