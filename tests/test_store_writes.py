"""What keeps a poll's writes from slowing down as the store grows (benchmarks/store.py
measures the write rate): the SimHash band indexes by date (migration 9), each new story
written once (its cluster and, on PostgreSQL, its search vector in its INSERT), and
PostgreSQL statistics gathered by the store when the server has none."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from test_store import check, draft

from aggregator.store import SqlStore, open_store
from aggregator.store.migrations import MIGRATIONS
from aggregator.types import FeedSource, StoryQuery, StoryRecord

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _record(key: str, title: str, *, link: str | None, fp: int | None, body: str) -> StoryRecord:
    return StoryRecord(
        draft=draft(key, title, link=link, summary=body, h=f"h-{key}"),
        fingerprint=fp,
        text=body,
    )


def _feeds(s: SqlStore, n: int) -> list[int]:
    s.sync_topics([])
    s.upsert_feeds([FeedSource(url=f"https://f{i}.example/rss") for i in range(n)], T0)
    return [f.id for f in s.feeds()]


def _index_names(s: SqlStore) -> set[str]:
    with s.engine.connect() as c:
        if s.dialect == "sqlite":
            q = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'story'"
        else:
            q = "SELECT indexname FROM pg_indexes WHERE tablename = 'story'"
        return {str(n) for (n,) in c.execute(text(q))}


BAND_INDEXES = {f"ix_story_fp_band{i}_seen" for i in range(4)}
OLD_BAND_INDEXES = {f"ix_story_fp_band{i}" for i in range(4)}


def test_new_databases_have_the_band_indexes_by_date(db_url: str) -> None:
    s = open_store(db_url)
    try:
        names = _index_names(s)
        assert names >= BAND_INDEXES
        assert not OLD_BAND_INDEXES & names  # replaced: each cost every insert an entry
    finally:
        s.close()


def _near_dup_world(s: SqlStore) -> tuple[int, int, int]:
    """Feed a's story, then feed b's near-identical one (1 bit apart), 3 days later."""
    a, b, c = _feeds(s, 3)
    fp = 0x0123_4567_89AB_CDEF
    s.save_update(check(a), [_record("a1", "Story", link=None, fp=fp, body="one two")])
    later = T0 + timedelta(days=3)
    s.save_update(check(b, later), [_record("b1", "Story", link=None, fp=fp ^ 4, body="x")])
    return a, b, c


def test_migration_9_replaces_the_band_indexes_of_an_old_database(db_url: str) -> None:
    """A version-8 database (bands indexed alone) gets the indexes by date, loses the old
    ones, and near-duplicates are found as before."""
    s = open_store(db_url)
    _, _, c = _near_dup_world(s)
    with s.engine.begin() as conn:  # turn it into a version-8 database
        conn.execute(text("DELETE FROM schema_version WHERE version = 9"))
        for i in range(4):
            conn.execute(text(f"DROP INDEX ix_story_fp_band{i}_seen"))
            conn.execute(text(f"CREATE INDEX ix_story_fp_band{i} ON story (fp_band{i})"))
    assert not BAND_INDEXES & _index_names(s)
    s.close()

    s = open_store(db_url)
    try:
        names = _index_names(s)
        assert names >= BAND_INDEXES and not OLD_BAND_INDEXES & names
        with s.engine.connect() as conn:
            versions = {v for (v,) in conn.execute(text("SELECT version FROM schema_version"))}
        assert 9 in versions and max(versions) == MIGRATIONS[-1][0]
        # feed c's copy, 13 days after a's (inside the window): a's cluster
        fp = 0x0123_4567_89AB_CDEF ^ (1 << 40)
        at = T0 + timedelta(days=13)
        new = s.save_update(check(c, at), [_record("c1", "S", link=None, fp=fp, body="y")])
        first = s.stories(StoryQuery(limit=None))[-1]
        assert s.get_story(new.new[0]).cluster_id == first.cluster_id == first.id
        # 15 days after the other feeds' copies: outside the window, a cluster of its own
        at = T0 + timedelta(days=18)
        new = s.save_update(check(c, at), [_record("c2", "S", link=None, fp=fp, body="z")])
        assert s.get_story(new.new[0]).cluster_id == new.new[0]
    finally:
        s.close()
    open_store(db_url).close()  # nothing left to migrate: idempotent


def test_the_band_lookup_seeks_to_the_window_on_sqlite(sqlite_url: str) -> None:
    """SQLite (no statistics) takes the band index by date for both of its columns: the
    look-up reads the window's stories, not every story with the band's value."""
    s = open_store(sqlite_url)
    try:
        _near_dup_world(s)
        seen: list[tuple[str, Any]] = []

        def capture(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
            if "fp_band0" in statement and statement.lstrip().upper().startswith("SELECT"):
                seen.append((statement, params))

        event.listen(s.engine, "before_cursor_execute", capture)
        feed = s.feeds()[2].id
        record = _record("c1", "S", link=None, fp=0x0123_4567_89AB_CDEF ^ 1, body="y")
        s.save_update(check(feed, T0 + timedelta(days=1)), [record])
        event.remove(s.engine, "before_cursor_execute", capture)
        assert len(seen) == 1
        with s.engine.connect() as c:
            plan = [
                str(r[3]) for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + seen[0][0], seen[0][1])
            ]
        searches = [p for p in plan if p.startswith("SEARCH")]
        assert len(searches) == 4, plan
        for i, p in enumerate(searches):
            assert f"ix_story_fp_band{i}_seen (fp_band{i}=? AND first_seen>?)" in p, plan
    finally:
        s.close()


def test_a_new_story_is_written_once(db_url: str) -> None:
    """No UPDATE of the story table when a poll brings only new stories: ids are taken
    first, so a story's cluster (its own, another feed's, an earlier row's of the same
    batch) and, on PostgreSQL, its search vector go in with its INSERT."""
    s = open_store(db_url)
    try:
        a, b, _ = _feeds(s, 3)
        fp = 0x0F0F_0000_FFFF_1234
        a1, a2 = s.save_update(
            check(a),
            [
                _record("a1", "Resolver outage", link="https://n.example/1", fp=None, body="dns"),
                _record("a2", "Registry fines", link=None, fp=fp, body="registry fined heavily"),
            ],
        ).new
        statements: list[str] = []

        def capture(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(s.engine, "before_cursor_execute", capture)
        got = s.save_update(
            check(b, T0 + timedelta(hours=1)),
            [
                # a's story by URL, a's by SimHash, a new one twice in the batch, one alone
                _record("b1", "Outage", link="https://n.example/1", fp=None, body="resolver"),
                _record("b2", "Fines", link=None, fp=fp ^ 2, body="registry"),
                _record("b3", "Transfer", link="https://n.example/3", fp=None, body="ipv4"),
                _record("b4", "Transfer again", link="https://n.example/3", fp=None, body="v4"),
                _record("b5", "Phishing kit", link=None, fp=None, body="sinkholed lure"),
            ],
        )
        event.remove(s.engine, "before_cursor_execute", capture)
        assert not [st for st in statements if st.lstrip().upper().startswith("UPDATE STORY")]
        b1, b2, b3, b4, b5 = (s.get_story(i) for i in got.new)
        assert got.new == tuple(sorted(got.new))
        assert b1.cluster_id == a1 and b2.cluster_id == a2
        assert b3.cluster_id == b3.id and b4.cluster_id == b3.id and b5.cluster_id == b5.id
        # the search index holds the new stories, title and body
        assert [st.id for st in s.stories(StoryQuery(text="sinkholed"))] == [b5.id]
        assert [st.id for st in s.stories(StoryQuery(text="phishing"))] == [b5.id]
        # and the next ids follow on
        more = s.save_update(
            check(b, T0 + timedelta(hours=2)),
            [_record("b6", "Later", link=None, fp=None, body="later")],
        )
        assert more.new[0] > b5.id
    finally:
        s.close()


def _analyzed(s: SqlStore) -> bool:
    with s.engine.connect() as c:
        return bool(
            c.execute(
                text("SELECT EXISTS (SELECT 1 FROM pg_stats WHERE tablename = 'story')")
            ).scalar()
        )


@pytest.mark.postgres
def test_postgresql_gathers_statistics_the_server_has_not(pg_url: str) -> None:
    """A server without autovacuum never gathers statistics, and without them the
    poll's look-ups scan the table: the store runs ANALYZE once the story table has
    grown past a thousand rows with none, and not on every write."""
    s = open_store(pg_url)
    try:
        feeds = _feeds(s, 4)
        analyzes: list[str] = []

        def capture(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
            if statement.startswith("ANALYZE"):
                analyzes.append(statement)

        event.listen(s.engine, "before_cursor_execute", capture)
        with s.engine.connect() as c:
            autovacuum = c.execute(text("SHOW autovacuum")).scalar()
        rng = random.Random(5)
        n = 0
        for poll in range(34):  # 1,190 stories
            records = []
            for _ in range(35):
                n += 1
                records.append(
                    _record(
                        f"k{n}",
                        f"Story {n}",
                        link=f"https://n.example/{n}",
                        fp=rng.getrandbits(64),
                        body=f"body {n}",
                    )
                )
            s.save_update(check(feeds[poll % 4], T0 + timedelta(minutes=poll)), records)
        event.remove(s.engine, "before_cursor_execute", capture)
        assert _analyzed(s)
        if autovacuum == "off":
            assert len(analyzes) == 1 and "story" in analyzes[0], analyzes
    finally:
        s.close()
