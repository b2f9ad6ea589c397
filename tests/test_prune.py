"""Story retention: `prune` (store, CLI) and the daemon's daily prune, on SQLite and
PostgreSQL. Each feed's newest stories and every labelled story stay."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_learning_cli import env, run  # noqa: F401  (fixtures and helpers)
from test_store import check, draft, pred, store  # noqa: F401  (store: fixture)

from aggregator.app import make_app
from aggregator.config import Settings, parse_span
from aggregator.daemon import Stopper, run_daemon
from aggregator.errors import ConfigError
from aggregator.types import StoryQuery, StoryRecord

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)


def _save(
    st,
    feed_id: int,
    key: str,
    *,
    at: datetime,
    published: datetime | None = None,
    link: str | None = None,
    title: str | None = None,
) -> int:
    rec = StoryRecord(
        draft=draft(
            key,
            title or f"Story {key} about resolvers",
            link=link,
            published=published or at,
            summary=f"body of {key}",
        ),
        prediction=pred(("DNS", 0.9)),
    )
    (sid,) = st.save_update(check(feed_id, at=at), [rec]).new
    return int(sid)


def test_old_stories_go_except_each_feeds_newest_and_labelled_ones(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    old_a = [_save(store, a.id, f"a{i}", at=OLD + timedelta(days=i)) for i in range(5)]
    new_a = _save(store, a.id, "a-new", at=NOW - timedelta(days=3))
    old_b = [_save(store, b.id, f"b{i}", at=OLD + timedelta(days=i)) for i in range(2)]
    store.add_labels(old_a[0], ["DNS"], [], NOW)
    before = NOW - timedelta(days=180)

    # Feed A keeps its newest two (a-new, a4) and the labelled a0; feed B keeps both.
    assert store.prune_stories(before, 2, dry_run=True) == 3
    assert store.story_count() == 8
    assert store.prune_stories(before, 2) == 3
    left = {s.id for s in store.stories(StoryQuery(limit=None))}
    assert left == {new_a, old_a[4], old_a[0], *old_b}
    assert store.prune_stories(before, 2) == 0  # idempotent
    # the search index and topic counts follow
    assert {s.id for s in store.stories(StoryQuery(text="a2", limit=None))} == set()
    assert {s.id for s in store.stories(StoryQuery(text="a4", limit=None))} == {old_a[4]}
    (dns,) = [t for t in store.topics() if t.name == "DNS"]
    assert dns.stories == 5

    # keep 0: only the labelled story and what is younger than the cut-off stay
    assert store.prune_stories(before, 0) == 3
    assert {s.id for s in store.stories(StoryQuery(limit=None))} == {new_a, old_a[0]}
    assert store.story_labels(old_a[0]) == (("DNS",), ())


def test_a_story_first_seen_recently_stays_however_old_its_date(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """A feed added today with years of archive: its stories were stored today, so they
    are not pruned until they have been kept for the retention period themselves."""
    a = store.get_feed("https://a.example/feed")
    archived = _save(store, a.id, "arch", at=NOW - timedelta(days=1), published=OLD)
    old_seen = _save(store, a.id, "seen", at=OLD, published=OLD)
    assert store.prune_stories(NOW - timedelta(days=180), 0) == 1
    assert [s.id for s in store.stories(StoryQuery(limit=None))] == [archived]
    assert old_seen != archived


def test_pruning_a_clusters_first_story_rehomes_the_cluster(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    link = "https://news.example/same-article"
    first = _save(store, a.id, "x", at=OLD, link=link)
    copy = _save(store, b.id, "y", at=NOW - timedelta(days=2), link=link)
    assert store.get_story(copy).cluster_id == first
    assert store.prune_stories(NOW - timedelta(days=180), 0) == 1
    (shown,) = store.stories(StoryQuery(limit=None))
    assert (shown.id, shown.cluster_id) == (copy, copy)


def test_a_story_labelled_while_pruning_runs_is_kept(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The label check is repeated inside each batch's transaction."""
    a = store.get_feed("https://a.example/feed")
    ids = [_save(store, a.id, f"k{i}", at=OLD) for i in range(4)]
    store.add_labels(ids[3], [], ["DNS"], NOW)  # a removal is a label too
    assert store.prune_stories(NOW - timedelta(days=1), 0, batch=2) == 3
    assert [s.id for s in store.stories(StoryQuery(limit=None))] == [ids[3]]


def test_listed_keys_survive_pruning_and_a_version_6_database_gets_them(store, db_url: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The store side on both backends: a check carrying the document's listing spares
    those stories; a poll that did not parse (None) keeps the last listing. Migration 7
    adds the column to a version-6 database, whose feeds have no listing yet (pruned as
    before)."""
    from sqlalchemy import text

    from aggregator.dedupe import listing_digest
    from aggregator.store import open_store

    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    ids = {k: _save(store, a.id, k, at=OLD) for k in ("x", "y", "z")}
    old_b = _save(store, b.id, "w", at=OLD)
    listing = tuple(listing_digest(k) for k in ("v1:guid:x", "y"))  # x's key is "x"
    store.save_update(check(a.id, at=NOW, listed=listing), [])
    store.save_checks([check(a.id, at=NOW, outcome="not_modified", listed=None)])
    before = NOW - timedelta(days=180)
    assert store.prune_stories(before, 0) == 3  # x is not listed under its own key
    assert {s.id for s in store.stories(StoryQuery(limit=None))} == {ids["y"]}
    assert old_b not in {s.id for s in store.stories(StoryQuery(limit=None))}

    with store.engine.begin() as c:  # turn it into a version-6 database
        c.execute(text("DELETE FROM schema_version WHERE version = 7"))
        c.execute(text("ALTER TABLE feed DROP COLUMN listed"))
    store.close()
    again = open_store(db_url)
    try:
        assert again.prune_stories(before, 0) == 1  # no listing: y goes too
        again.save_update(check(a.id, at=NOW, listed=(listing_digest("k"),)), [])
        assert again.prune_stories(before, 0) == 0
    finally:
        again.close()


def _archive(*guids: str) -> bytes:
    items = "".join(
        f"<item><title>Story {g} about resolvers</title><guid>{g}</guid>"
        f"<link>http://example.org/{g}</link>"
        f"<pubDate>Mon, 0{i + 1} Sep 2025 08:00:00 GMT</pubDate></item>"
        for i, g in enumerate(guids)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Archive</title>'
        f"<link>http://example.org/</link>{items}</channel></rss>"
    ).encode()


def test_stories_the_feeds_document_still_lists_are_kept(tmp_path: Path, server) -> None:  # type: ignore[no-untyped-def]
    """A feed listing its whole archive (more items than --keep): pruning what it still
    lists would bring those stories back as new at its next change, once per retention
    period. What the latest document lists stays; what it dropped goes."""
    from test_update import Clock

    clock = Clock()
    s = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, extract=False, timeout_s=3
    )
    with make_app(s, now=clock) as app:
        url = server.route("/archive", body=_archive("a", "b", "c", "d", "e"))
        app.add_feed(url, discover=False)
        assert [r.new for r in app.update_due(all_feeds=True)] == [5]
        clock.advance(days=400)
        assert app.prune(timedelta(days=180), keep_per_feed=0) == 0

        # the feed drops "a" and "b" and adds "f": only "a" and "b" may go
        server.route("/archive", body=_archive("f", "c", "d", "e"))
        assert [r.new for r in app.update_due(all_feeds=True)] == [1]
        assert app.prune(timedelta(days=180), keep_per_feed=0) == 2
        titles = sorted(s.title for s in app.stories(StoryQuery(limit=None)))
        assert titles == [f"Story {g} about resolvers" for g in "cdef"]

        # its next change brings nothing back
        server.route("/archive", body=_archive("g", "f", "c", "d", "e"))
        assert [r.new for r in app.update_due(all_feeds=True)] == [1]
        assert app.store.story_count() == 5


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("180d", timedelta(days=180)),
        ("26w", timedelta(weeks=26)),
        ("12h", timedelta(hours=12)),
        (" 1.5d ", timedelta(days=1.5)),
        ("off", None),
        ("0", None),
    ],
)
def test_parse_span(text: str, span: timedelta | None) -> None:
    assert parse_span(text) == span


@pytest.mark.parametrize(
    "text", ["soon", "-5d", "0d", "99999999999w", "2026-01-01", "999999999d", "300000w"]
)
def test_bad_spans_are_clear_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="--older-than"):
        parse_span(text)


def test_retention_settings_from_the_environment() -> None:
    s = Settings.from_env({"AGGREGATOR_RETENTION": "90d", "AGGREGATOR_KEEP_PER_FEED": "50"})
    assert (s.retention, s.keep_per_feed) == (timedelta(days=90), 50)
    assert Settings.from_env({}).retention is None
    with pytest.raises(ConfigError, match="AGGREGATOR_RETENTION"):
        Settings.from_env({"AGGREGATOR_RETENTION": "ninety days"})
    with pytest.raises(ConfigError, match="AGGREGATOR_KEEP_PER_FEED must be 0 or more"):
        Settings.from_env({"AGGREGATOR_KEEP_PER_FEED": "-1"})
    # A span reaching before year 1 was taken: then every prune failed ("that span
    # reaches before year 1"), the daemon's once a day in its log, naming no variable.
    with pytest.raises(ConfigError, match=r"^AGGREGATOR_RETENTION: 999999999d reaches before"):
        Settings.from_env({"AGGREGATOR_RETENTION": "999999999d"})


def _seed_old_stories(data_dir: Path, n: int) -> None:
    now = datetime.now(UTC)
    with make_app(Settings.from_env({}, data_dir=data_dir)) as app:
        app.store.upsert_feeds([], now)
        feed = app.add_feed("https://a.example/feed", discover=False).feed
        for i in range(n):
            _save(
                app.store,
                feed.id,
                f"s{i}",
                at=now - timedelta(days=400 - i),
                title=f"Old story {i} " + "resolver " * 200,
            )


def test_prune_command(env: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    _seed_old_stories(env / "data", 30)
    code, out, err = run(capsys, "prune")
    assert code == 2 and "--older-than 180d" in err and "Traceback" not in err

    code, out, _ = run(capsys, "prune", "--older-than", "180d", "--keep", "10", "--dry-run")
    assert code == 0 and out.startswith("would delete 20 stories") and "30 stories stored" in out
    db = env / "data" / "aggregator.db"
    size = db.stat().st_size
    code, out, _ = run(
        capsys, "prune", "--older-than", "180d", "--keep", "10", "--vacuum", "--format", "json"
    )
    assert code == 0
    assert json.loads(out) == {
        "deleted": 20,
        "would_delete": None,
        "remaining": 10,
        "older_than_days": 180,
        "kept_per_feed": 10,
        "vacuumed": True,
    }
    assert db.stat().st_size < size
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute("INSERT INTO story_fts(story_fts) VALUES ('integrity-check')")
        assert conn.execute("SELECT count(*) FROM story_fts").fetchone() == (10,)

    code, out, err = run(capsys, "prune", "--older-than", "a while")
    assert code == 2 and "cannot read 'a while'" in err


def test_the_daemon_prunes_after_its_first_cycle_then_daily(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _seed_old_stories(tmp_path, 5)
    clock = [datetime.now(UTC)]
    s = Settings.from_env({}, data_dir=tmp_path, retention=timedelta(days=180), keep_per_feed=2)
    caplog.set_level(logging.INFO, logger="aggregator.daemon")
    with make_app(s, now=lambda: clock[0]) as app:
        assert run_daemon(app, stopper=Stopper(), max_cycles=3, max_sleep=0.01, idle_sleep=0) == 3
        assert app.store.story_count() == 2
        pruned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pruned")]
        assert pruned == ["pruned 3 stories older than 180 days"]

        caplog.clear()

        def later() -> datetime:
            clock[0] += timedelta(hours=13)
            return clock[0]

        app.now = later  # type: ignore[method-assign]
        run_daemon(app, stopper=Stopper(), max_cycles=4, max_sleep=0.01, idle_sleep=0)
        assert sum(r.getMessage().startswith("pruned") for r in caplog.records) >= 2


@pytest.mark.postgres
def test_vacuum_on_postgresql_says_autovacuum_does_it(
    pg_url: str,
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", pg_url)
    code, out, err = run(capsys, "prune", "--older-than", "1d", "--vacuum", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["vacuumed"] is False
    code, out, err = run(capsys, "prune", "--older-than", "1d", "--vacuum")
    assert code == 0 and "autovacuum" in out, err
