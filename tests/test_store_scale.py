"""What keeps story lists fast on a big store (benchmarks/store.py measures it): the index
of each cluster's first story (migration 8), pages read as ids first, and PostgreSQL
without JIT. Every page must be exactly the slice of the whole list it stands for."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dbfixtures import fresh_pg_url
from test_store import check, draft

from aggregator.store import SqlStore, open_store
from aggregator.store.migrations import MIGRATIONS
from aggregator.types import (
    FeedSource,
    Prediction,
    StoryQuery,
    StoryRecord,
    TopicScore,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
TOPICS = ("DNS", "Cybersecurity", "IPv4 Markets")
WORDS = ("registry", "registrar", "ransomware", "transfer", "phishing", "resolver", "zone")


def _record(n: int, feed: int, rng: random.Random, link: str | None) -> StoryRecord:
    # few distinct dates, so that many stories tie on sort_date and id decides; some
    # undated (sorted by first_seen, which ties too)
    published = T0 - timedelta(hours=rng.randrange(12)) if rng.random() > 0.15 else None
    text = " ".join(rng.choice(WORDS) for _ in range(6))
    topics = rng.sample(TOPICS, rng.randint(0, 2))
    return StoryRecord(
        draft=draft(
            f"v1:guid:{feed}-{n}",
            f"Story {n} {rng.choice(WORDS)}",
            link=link,
            summary=text,
            h=f"h{n}",
            published=published,
        ),
        prediction=Prediction(
            topics=tuple(TopicScore(topic=t, score=0.5 + 0.1 * i) for i, t in enumerate(topics)),
            model_version="m1",
        ),
        text=text,
    )


def _fill(s: SqlStore, rng: random.Random) -> None:
    """Three feeds, 60 stories each over four polls, a third of them copies of another
    feed's stories (shared links: clusters whose copies match different filters)."""
    s.sync_topics([(t, None) for t in TOPICS])
    s.upsert_feeds(
        [FeedSource(url=f"https://{c}.example/feed", name=f"Feed {c}") for c in "abc"], T0
    )
    feeds = [f.id for f in s.feeds()]
    links: list[str] = []
    n = 0
    for poll in range(4):
        for fid in feeds:
            records = []
            used: set[str] = set()
            for _ in range(15):
                n += 1
                link = f"https://news.example/{n}"
                if links and rng.random() < 0.35:
                    shared = rng.choice(links)
                    if shared not in used:
                        link = shared
                used.add(link)
                links.append(link)
                records.append(_record(n, fid, rng, link))
            s.save_update(check(fid, T0 + timedelta(minutes=poll)), records)


QUERIES = [
    StoryQuery(),
    StoryQuery(topics=("DNS",)),
    StoryQuery(topics=("DNS", "Cybersecurity")),
    StoryQuery(feeds=("Feed b",)),
    StoryQuery(feeds=("https://c.example/feed",), topics=("IPv4 Markets",)),
    StoryQuery(since=T0 - timedelta(hours=5)),
    StoryQuery(since=T0 - timedelta(hours=9), until=T0 - timedelta(hours=3)),
    StoryQuery(text="ransomware"),
    StoryQuery(text="regist*", topics=("DNS",)),
    StoryQuery(text='"registry registrar" OR phishing', feeds=("Feed a",)),
]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def filled_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database filled by ``_fill(Random(7))``, shared by the page tests of its backend:
    they only read it (and set the window, which only reads use), so each of the 20 gets
    the same store it would have filled itself."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("filled") / "data" / "aggregator.db"
        url = f"sqlite:///{path.as_posix()}"
    else:
        url = request.getfixturevalue("pg_url_module")
    s = open_store(url)
    try:
        _fill(s, random.Random(7))
    finally:
        s.close()
    return url


@pytest.fixture(scope="module")
def pg_url_module(_pg_databases: Any) -> Iterator[str]:
    """As ``pg_url``, for the tests of one module."""
    with fresh_pg_url(_pg_databases) as url:
        yield url


@pytest.mark.parametrize("window", [2000, 25], ids=["window-holds-all", "small-window"])
@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_every_page_is_its_slice_of_the_whole_list(
    filled_url: str, query: StoryQuery, window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a filtered page is first looked for among the newest stories: with a
    window smaller than the store, some pages are found there and the rest are not and
    are gathered from every match; either way each page is its slice of the list."""
    from aggregator.store import queries

    monkeypatch.setattr(queries, "_RECENT_WINDOW", window)
    s = open_store(filled_url)
    try:
        whole = [st.id for st in s.stories(replace(query, limit=None))]
        assert whole, "the query matches something"
        assert len(set(whole)) == len(whole)
        for limit in (1, 7, 50, 1000):
            for offset in (0, 1, 6, 13, len(whole) - 1, len(whole) + 5):
                page = s.stories(replace(query, limit=limit, offset=offset))
                assert [st.id for st in page] == whole[offset : offset + limit], (limit, offset)
        # an offset without a limit is the rest of the list
        rest = s.stories(replace(query, limit=None, offset=5))
        assert [st.id for st in rest] == whole[5:]
        # and the page carries the full stories: topics and feed as the whole list has them
        full = {st.id: st for st in s.stories(replace(query, limit=None))}
        for st in s.stories(replace(query, limit=10, offset=3)):
            assert st == full[st.id]
    finally:
        s.close()


def _index_sql(s: SqlStore) -> str:
    from sqlalchemy import text

    with s.engine.connect() as c:
        if s.dialect == "sqlite":
            sql = c.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_story_first_sort'")
            ).scalar()
        else:
            sql = c.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_story_first_sort'")
            ).scalar()
    return " ".join(str(sql or "").split())


def test_new_databases_have_the_list_index(db_url: str) -> None:
    s = open_store(db_url)
    try:
        sql = _index_sql(s)
        assert "sort_date" in sql and "cluster_id" in sql, sql
        assert "WHERE" in sql.upper(), sql  # partial: each cluster's first story only
    finally:
        s.close()


def test_migration_8_adds_the_list_index_to_an_old_database(db_url: str) -> None:
    """A version-7 database (stories stored, no list index) gets the index, the same as
    create_all gives a new one, and answers the same."""
    from sqlalchemy import text

    s = open_store(db_url)
    _fill(s, random.Random(11))
    new_sql = _index_sql(s)
    before = [st.id for st in s.stories(StoryQuery(limit=None))]
    with s.engine.begin() as c:  # turn it into a version-7 database
        c.execute(text("DELETE FROM schema_version WHERE version = 8"))
        c.execute(text("DROP INDEX ix_story_first_sort"))
    assert _index_sql(s) == ""
    s.close()

    s = open_store(db_url)
    try:
        assert _index_sql(s) == new_sql
        with s.engine.connect() as c:
            versions = [v for (v,) in c.execute(text("SELECT version FROM schema_version"))]
        assert 8 in versions and max(versions) == MIGRATIONS[-1][0]
        assert [st.id for st in s.stories(StoryQuery(limit=None))] == before
        assert [st.id for st in s.stories(StoryQuery(limit=20, offset=10))] == before[10:30]
    finally:
        s.close()
    open_store(db_url).close()  # nothing left to migrate: idempotent


def test_the_unfiltered_list_reads_the_index(sqlite_url: str) -> None:
    """The newest page of an unfiltered list comes from the partial index alone (SQLite's
    plan; PostgreSQL's depends on its statistics)."""
    from sqlalchemy import event

    s = open_store(sqlite_url)
    try:
        _fill(s, random.Random(3))
        seen: list[tuple[str, Any]] = []

        def capture(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
            if "story_topic" not in statement and "page" in statement:
                seen.append((statement, params))

        event.listen(s.engine, "before_cursor_execute", capture)
        s.stories(StoryQuery(limit=50, offset=20))
        event.remove(s.engine, "before_cursor_execute", capture)
        assert seen
        with s.engine.connect() as c:
            plan = " | ".join(
                str(r[3]) for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + seen[0][0], seen[0][1])
            )
        assert "COVERING INDEX ix_story_first_sort" in plan, plan
    finally:
        s.close()


@pytest.mark.postgres
def test_postgresql_connections_run_without_jit(pg_url: str) -> None:
    from sqlalchemy import text

    s = open_store(pg_url)
    try:
        with s.engine.connect() as c:
            assert c.execute(text("SHOW jit")).scalar() == "off"
    finally:
        s.close()


def test_sqlite_finds_a_page_among_the_newest_stories_when_they_hold_it(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator.store import queries

    monkeypatch.setattr(queries, "_RECENT_WINDOW", 25)
    found: list[list[int] | None] = []
    recent_page = SqlStore._recent_page

    def spy(self: SqlStore, *args: object) -> list[int] | None:
        ids = recent_page(self, *args)  # type: ignore[arg-type]
        found.append(ids)
        return ids

    monkeypatch.setattr(SqlStore, "_recent_page", spy)
    s = open_store(sqlite_url)
    try:
        _fill(s, random.Random(5))
        everything = [st.id for st in s.stories(StoryQuery(topics=("DNS",), limit=None))]
        page = s.stories(StoryQuery(topics=("DNS",), limit=3, offset=1))
        assert found[-1] is not None and [st.id for st in page] == everything[1:4]
        page = s.stories(StoryQuery(topics=("DNS",), limit=60))  # more than 25 can hold
        assert found[-1] is None and [st.id for st in page] == everything[:60]
        s.stories(StoryQuery())  # unfiltered: the list index, no window
        assert len(found) == 3 and found[-1] is None
    finally:
        s.close()
