"""The store, against a real SQLite file and a real PostgreSQL database (one suite, both)."""

from __future__ import annotations

import gc
import threading
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.errors import ConfigError, NotFoundError, StoreError
from aggregator.store import open_store
from aggregator.store.search import fts5_query
from aggregator.types import (
    FeedCheck,
    FeedSource,
    Prediction,
    StoryDraft,
    StoryQuery,
    StoryRecord,
    TopicScore,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def draft(
    key: str,
    title: str,
    *,
    link: str | None = None,
    summary: str = "",
    h: str = "h1",
    published: datetime | None = None,
    categories: tuple[str, ...] = (),
) -> StoryDraft:
    return StoryDraft(
        key=key,
        guid=key,
        link=link,
        canonical_url=link,
        title=title,
        author="Ana",
        published=published,
        updated=None,
        summary=summary,
        content=None,
        categories=categories,
        content_hash=h,
    )


def check(feed_id: int, at: datetime = T0, **kw: object) -> FeedCheck:
    base = {
        "feed_id": feed_id,
        "at": at,
        "outcome": "ok",
        "next_check": at + timedelta(hours=1),
        "status": "active",
        "error_count": 0,
        "first_error_at": None,
        "last_error": None,
        "success": True,
    }
    base.update(kw)
    return FeedCheck(**base)  # type: ignore[arg-type]


def pred(*topics: tuple[str, float], version: str = "m1") -> Prediction:
    return Prediction(
        topics=tuple(TopicScore(topic=t, score=s) for t, s in topics), model_version=version
    )


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    s = open_store(db_url)
    s.sync_topics([("DNS", "Domain Name System"), ("Cybersecurity", None), ("IPv4 Markets", None)])
    s.upsert_feeds(
        [
            FeedSource(url="https://a.example/feed", name="Alpha"),
            FeedSource(url="https://b.example/feed", name="Beta"),
        ],
        T0,
    )
    yield s
    s.close()


def test_migrations_are_idempotent(db_url: str) -> None:
    open_store(db_url).close()
    s = open_store(db_url)  # second open: nothing to migrate, nothing breaks
    assert s.feeds() == []
    s.close()


def test_upsert_feeds_adds_then_updates(store) -> None:  # type: ignore[no-untyped-def]
    added, changed = store.upsert_feeds(
        [FeedSource(url="https://a.example/feed", name="Alpha 2", interval=timedelta(minutes=30))],
        T0,
    )
    assert (added, changed) == (0, 1)
    f = store.get_feed("https://a.example/feed")
    assert f.name == "Alpha 2"
    assert f.interval == timedelta(minutes=30)
    assert f.next_check == T0  # a new feed is due at once


def test_new_stories_get_their_own_ids_topics_and_search_rows(db_url: str) -> None:
    """Each new story's id carries its own topics and search text, also when the newest
    stories were deleted before (SQLite: ids come from last_insert_rowid, not RETURNING)."""
    s = open_store(db_url)
    s.sync_topics([("DNS", None), ("Cybersecurity", None), ("IPv4 Markets", None)])
    s.upsert_feeds(
        [FeedSource(url="https://a.example/f"), FeedSource(url="https://b.example/f")], T0
    )
    a, b = (f.id for f in s.feeds())
    topics = ["DNS", "Cybersecurity", "IPv4 Markets"]

    def records(prefix: str) -> list[StoryRecord]:
        return [
            StoryRecord(
                draft=draft(f"{prefix}{i}", f"{prefix} story {i}", link=f"https://n/{prefix}{i}"),
                prediction=pred((topic, 0.9)),
                text=f"body{prefix}{i} words",
            )
            for i, topic in enumerate(topics)
        ]

    s.save_update(check(a), records("a"))
    s.remove_feed("https://a.example/f", T0)  # the highest ids are free again
    s.upsert_feeds([FeedSource(url="https://a.example/f")], T0)
    first = s.save_update(check(b), records("b"))
    second = s.save_update(check(b, T0 + timedelta(hours=1)), records("c"))
    assert len(set(first.new + second.new)) == 6
    for story_id in first.new + second.new:
        story = s.get_story(story_id)
        i = int(story.title[-1])
        assert [t.topic for t in story.topics] == [topics[i]]
        word = f"body{story.title[0]}{i}"
        assert [x.id for x in s.stories(StoryQuery(text=word))] == [story_id]
    s.close()


def test_save_update_is_idempotent_by_key(store) -> None:  # type: ignore[no-untyped-def]
    feed = store.get_feed("https://a.example/feed")
    recs = [
        StoryRecord(
            draft=draft("g1", "Resolver news", link="https://n.example/1"),
            prediction=pred(("DNS", 0.9)),
        )
    ]
    r1 = store.save_update(check(feed.id), recs)
    assert len(r1.new) == 1
    assert store.known_stories(feed.id, ["g1", "nope"]) == {"g1": "h1"}
    assert store.recent_story_hashes(feed.id) == {"g1": "h1"}
    assert store.recent_story_hashes(feed.id, limit=0) == {}
    r2 = store.save_update(
        check(feed.id, T0 + timedelta(hours=1)),
        [
            replace(
                recs[0],
                draft=replace(recs[0].draft, title="Resolver news, updated", content_hash="h2"),
            )
        ],
    )
    assert r2.new == () and len(r2.updated) == 1
    stories = store.stories(StoryQuery())
    assert [s.title for s in stories] == ["Resolver news, updated"]
    assert stories[0].first_seen == T0  # first_seen never moves
    # the edited story's search row follows its new text (PostgreSQL: an UPDATE of the
    # search vector; new stories get theirs in the INSERT)
    assert [s.id for s in store.stories(StoryQuery(text="updated"))] == [stories[0].id]
    assert store.get_feed(feed.id).stories == 1


def test_feed_state_and_fetch_log(store) -> None:  # type: ignore[no-untyped-def]
    feed = store.get_feed("https://a.example/feed")
    store.save_update(
        check(
            feed.id,
            etag='"v1"',
            last_modified="Sun, 01 Nov 2026 10:00:00 GMT",
            body_hash="bh",
            title="Alpha Feed",
        ),
        [],
    )
    f = store.get_feed(feed.id)
    assert (f.etag, f.last_modified, f.body_hash, f.title) == (
        '"v1"',
        "Sun, 01 Nov 2026 10:00:00 GMT",
        "bh",
        "Alpha Feed",
    )
    assert f.last_success == T0
    # an error keeps caching fields and last success, records the error
    store.save_update(
        check(
            feed.id,
            T0 + timedelta(hours=1),
            outcome="error",
            success=False,
            status="error",
            error_count=1,
            first_error_at=T0 + timedelta(hours=1),
            last_error="HTTP 500",
            http_status=500,
        ),
        [],
    )
    f = store.get_feed(feed.id)
    assert (f.status, f.error_count, f.last_error, f.etag, f.last_success) == (
        "error",
        1,
        "HTTP 500",
        '"v1"',
        T0,
    )
    log = store.fetch_log(feed.id)
    assert [e.outcome for e in log] == ["error", "ok"]
    assert log[0].http_status == 500


def test_fetch_log_is_bounded(store) -> None:  # type: ignore[no-untyped-def]
    from aggregator.store.rows import FETCH_LOG_KEEP

    feed = store.get_feed("https://a.example/feed")
    for i in range(FETCH_LOG_KEEP + 7):
        store.save_update(check(feed.id, T0 + timedelta(minutes=i), outcome="not_modified"), [])
    assert len(store.fetch_log(feed.id, limit=1000)) == FETCH_LOG_KEEP


def test_claim_due_leases_feeds(store) -> None:  # type: ignore[no-untyped-def]
    lease = timedelta(minutes=10)
    a = store.claim_due(T0, owner="d1", lease=lease)
    assert {f.url for f in a} == {"https://a.example/feed", "https://b.example/feed"}
    assert store.claim_due(T0, owner="d2", lease=lease) == []  # leased to d1
    store.release([a[0].id], "d2")  # not d2's lease: no effect
    assert store.claim_due(T0, owner="d2", lease=lease) == []
    store.release([a[0].id], "d1")
    assert [f.id for f in store.claim_due(T0, owner="d2", lease=lease)] == [a[0].id]
    # a dead daemon's lease expires
    assert len(store.claim_due(T0 + lease + timedelta(seconds=1), owner="d3", lease=lease)) == 2


def test_due_ids_are_claimed_by_chunk(store) -> None:  # type: ignore[no-untyped-def]
    lease = timedelta(minutes=10)
    ids = store.due_feed_ids(T0)
    assert len(ids) == 2 and store.due_feed_ids(T0, limit=1) == ids[:1]
    assert store.due_feed_ids(T0) == ids  # reading leases nothing
    (first,) = store.claim_due(T0, owner="d1", lease=lease, ids=ids[:1])
    assert first.id == ids[0]
    assert store.due_feed_ids(T0) == ids[1:]  # leased to d1 now
    # a chunk whose feeds another daemon took meanwhile gives only the rest
    assert [f.id for f in store.claim_due(T0, owner="d2", lease=lease, ids=ids)] == ids[1:]
    assert store.claim_due(T0, owner="d3", lease=lease, ids=ids) == []
    assert store.claim_due(T0, owner="d3", lease=lease, ids=[]) == []


def test_claim_due_respects_next_check_and_status(store) -> None:  # type: ignore[no-untyped-def]
    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    store.save_update(check(a.id, next_check=T0 + timedelta(hours=2)), [])
    store.save_update(
        check(
            b.id,
            outcome="error",
            success=False,
            status="gone",
            error_count=1,
            first_error_at=T0,
            last_error="HTTP 410 Gone",
        ),
        [],
    )
    assert store.claim_due(T0 + timedelta(hours=1), owner="x", lease=timedelta(minutes=1)) == []
    assert [
        f.id
        for f in store.claim_due(
            T0 + timedelta(hours=1), owner="x", lease=timedelta(minutes=1), include_not_due=True
        )
    ] == [a.id]
    assert store.next_due() == T0 + timedelta(hours=2)


def test_concurrent_claims_never_share_a_feed(db_url: str) -> None:
    s = open_store(db_url)
    s.upsert_feeds([FeedSource(url=f"https://h{i}.example/feed") for i in range(40)], T0)
    claimed: list[list[int]] = []

    def worker(n: int) -> None:
        st = open_store(db_url)
        got: list[int] = []
        while batch := st.claim_due(T0, owner=f"d{n}", lease=timedelta(minutes=5), limit=3):
            got += [f.id for f in batch]
        claimed.append(got)
        st.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for c in claimed for i in c]
    assert sorted(ids) == sorted({*ids}) and len(ids) == 40
    s.close()


def test_query_filters(store) -> None:  # type: ignore[no-untyped-def]
    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    store.save_update(
        check(a.id),
        [
            StoryRecord(
                draft=draft(
                    "1",
                    "DNSSEC rollover planned",
                    link="https://n/1",
                    summary="<p>The root <b>KSK</b> rolls</p>",
                    published=T0 - timedelta(days=10),
                ),
                prediction=pred(("DNS", 0.9), ("Cybersecurity", 0.6)),
            ),
            StoryRecord(
                draft=draft(
                    "2",
                    "IPv4 prices climb",
                    link="https://n/2",
                    summary="Brokers report /24 blocks",
                    published=T0 - timedelta(days=1),
                ),
                prediction=pred(("IPv4 Markets", 0.8)),
            ),
        ],
    )
    store.save_update(
        check(b.id),
        [
            StoryRecord(
                draft=draft("3", "Ransomware hits registrar", link="https://n/3", published=T0),
                prediction=pred(("Cybersecurity", 0.95)),
            ),
        ],
    )
    titles = lambda q: [s.title for s in store.stories(q)]  # noqa: E731
    assert titles(StoryQuery()) == [
        "Ransomware hits registrar",
        "IPv4 prices climb",
        "DNSSEC rollover planned",
    ]
    assert titles(StoryQuery(topics=("Cybersecurity",))) == [
        "Ransomware hits registrar",
        "DNSSEC rollover planned",
    ]
    assert titles(StoryQuery(topics=("cybersecurity", "dns"))) == ["DNSSEC rollover planned"]
    assert titles(StoryQuery(feeds=("beta",))) == ["Ransomware hits registrar"]
    assert titles(StoryQuery(feeds=("https://a.example/feed",))) == [
        "IPv4 prices climb",
        "DNSSEC rollover planned",
    ]
    assert titles(StoryQuery(since=T0 - timedelta(days=2))) == [
        "Ransomware hits registrar",
        "IPv4 prices climb",
    ]
    assert titles(StoryQuery(until=T0 - timedelta(days=2))) == ["DNSSEC rollover planned"]
    assert titles(StoryQuery(text="ksk")) == ["DNSSEC rollover planned"]
    assert titles(StoryQuery(text="brokers blocks")) == ["IPv4 prices climb"]
    assert titles(StoryQuery(text="ipv4-prices")) in (
        [],
        ["IPv4 prices climb"],
    )  # punctuation is not syntax
    assert titles(StoryQuery(limit=1, offset=1)) == ["IPv4 prices climb"]
    s = store.stories(StoryQuery(topics=("DNS",)))[0]
    assert [(t.topic, t.score) for t in s.topics] == [("DNS", 0.9), ("Cybersecurity", 0.6)]
    with pytest.raises(NotFoundError, match="unknown topic"):
        store.stories(StoryQuery(topics=("Gardening",)))


def test_cross_feed_duplicates_form_one_cluster(store) -> None:  # type: ignore[no-untyped-def]
    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    store.save_update(
        check(a.id),
        [StoryRecord(draft=draft("x", "Same story", link="https://n/same"), fingerprint=0b1011)],
    )
    store.save_update(
        check(b.id), [StoryRecord(draft=draft("y", "Same story (copy)", link="https://n/same"))]
    )
    # near-duplicate text under another URL joins by SimHash (1 bit apart)
    store.save_update(
        check(b.id),
        [
            StoryRecord(
                draft=draft("z", "Same story again", link="https://other/z"), fingerprint=0b1010
            )
        ],
    )
    # a different story stays apart (many bits apart), also with the top bit set
    store.save_update(
        check(b.id),
        [
            StoryRecord(
                draft=draft("w", "Other story", link="https://other/w"),
                fingerprint=(1 << 63) | 0xFFFF,
            )
        ],
    )
    shown = store.stories(StoryQuery())
    assert sorted(s.title for s in shown) == ["Other story", "Same story"]
    first = next(s for s in shown if s.title == "Same story")
    assert sorted(o.title for o in store.cluster_members(first)) == [
        "Same story (copy)",
        "Same story again",
    ]


def test_clusters_within_one_batch(store) -> None:  # type: ignore[no-untyped-def]
    """Rows of one feed's batch: a later row with an earlier row's URL joins its cluster,
    also when that earlier row joined another feed's story by SimHash; the rest start
    their own cluster (cluster id = story id)."""
    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    store.save_update(
        check(a.id),
        [StoryRecord(draft=draft("x", "Original", link="https://n/orig"), fingerprint=0b1111)],
    )
    saved = store.save_update(
        check(b.id),
        [
            StoryRecord(draft=draft("p", "Near copy", link="https://b/p"), fingerprint=0b1110),
            StoryRecord(draft=draft("q", "Near copy, again", link="https://b/p")),
            StoryRecord(draft=draft("r", "Alone", link="https://b/r")),
            StoryRecord(draft=draft("s", "Alone, again", link="https://b/r")),
            StoryRecord(draft=draft("t", "Unrelated", link="https://b/t"), fingerprint=1 << 40),
        ],
    )
    shown = store.stories(StoryQuery())
    assert sorted(s.title for s in shown) == ["Alone", "Original", "Unrelated"]
    original = next(s for s in shown if s.title == "Original")
    assert sorted(o.title for o in store.cluster_members(original)) == [
        "Near copy",
        "Near copy, again",
    ]
    alone = next(s for s in shown if s.title == "Alone")
    assert [o.title for o in store.cluster_members(alone)] == ["Alone, again"]
    unrelated = next(s for s in shown if s.title == "Unrelated")
    assert store.cluster_members(unrelated) == [] and unrelated.id == saved.new[-1]


def test_labels_survive_retagging(store) -> None:  # type: ignore[no-untyped-def]
    a = store.get_feed("https://a.example/feed")
    r = store.save_update(
        check(a.id), [StoryRecord(draft=draft("1", "Story"), prediction=pred(("DNS", 0.7)))]
    )
    sid = r.new[0]
    store.add_labels(sid, ["Cybersecurity"], ["DNS"], T0)
    assert [(t.topic, t.source) for t in store.get_story(sid).topics] == [("Cybersecurity", "user")]
    changed = store.set_predictions(
        [(sid, pred(("DNS", 0.99), ("IPv4 Markets", 0.8), version="m2"))]
    )
    s = store.get_story(sid)
    assert sorted((t.topic, t.source) for t in s.topics) == [
        ("Cybersecurity", "user"),
        ("IPv4 Markets", "model"),
    ]
    assert changed == 1 and s.model_version == "m2"
    (ls,) = store.labelled_stories()
    assert (ls.positive, ls.negative) == (("Cybersecurity",), ("DNS",))
    with pytest.raises(ConfigError):
        store.add_labels(sid, ["Gardening"], [], T0)
    with pytest.raises(NotFoundError):
        store.add_labels(99999, ["DNS"], [], T0)


def test_remove_feed_removes_its_stories(store) -> None:  # type: ignore[no-untyped-def]
    a = store.get_feed("https://a.example/feed")
    store.save_update(check(a.id), [StoryRecord(draft=draft("1", "Findable words here"))])
    store.remove_feed(a.url, T0)
    assert store.stories(StoryQuery(text="findable")) == []
    with pytest.raises(NotFoundError):
        store.remove_feed(a.url, T0)


def test_naive_datetimes_are_refused(store) -> None:  # type: ignore[no-untyped-def]
    a = store.get_feed("https://a.example/feed")
    with pytest.raises((StoreError, ValueError)):
        store.save_update(check(a.id, at=datetime(2026, 1, 1)), [])
    # and the failed transaction left nothing behind
    assert store.fetch_log(a.id) == []


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("dns", '"dns"'),
        ("ipv4-market", '"ipv4-market"'),
        ("example.com OR icann", '"example.com" OR "icann"'),
        ('"new gTLD" round*', '"new gTLD" "round"*'),
        ('bad"quote', '"bad" "quote"'),
        ("NOT spam dns AND icann", '"dns" "icann" NOT "spam"'),
    ],
    ids=["word", "hyphen", "or", "phrase-prefix", "stray-quote", "not-and"],
)
def test_fts5_query_is_safe(typed: str, expected: str) -> None:
    assert fts5_query(typed) == expected


def test_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="unsupported database URL"):
        open_store("mysql://nope")


def test_migration_2_backfills_simhash_bands(db_url: str) -> None:
    """A database made before migration 2 (no band columns) is upgraded in place and its
    stored fingerprints take part in near-duplicate lookup."""
    from sqlalchemy import text

    s = open_store(db_url)
    s.sync_topics([])
    s.upsert_feeds(
        [FeedSource(url="https://a.example/f"), FeedSource(url="https://b.example/f")], T0
    )
    a, b = (f.id for f in s.feeds())
    s.save_update(
        check(a),
        [
            StoryRecord(
                draft=draft("x", "Old story", link="https://n/1"), fingerprint=0xABCD_0000_1234_5678
            )
        ],
    )
    with s.engine.begin() as c:  # turn it into a version-1 database
        for i in range(4):
            c.execute(text(f"DROP INDEX IF EXISTS ix_story_fp_band{i}"))
            c.execute(text(f"DROP INDEX IF EXISTS ix_story_fp_band{i}_seen"))  # migration 9
            c.execute(text(f"ALTER TABLE story DROP COLUMN fp_band{i}"))
        c.execute(text("DELETE FROM schema_version WHERE version IN (2, 9)"))
    s.close()
    s = open_store(db_url)
    s.save_update(
        check(b),
        [
            StoryRecord(
                draft=draft("y", "Old story, again", link="https://m/2"),
                fingerprint=0xABCD_0000_1234_5679,
            )
        ],
    )
    assert [st.title for st in s.stories(StoryQuery())] == ["Old story"]
    s.close()


def test_migration_4_moves_recent_fingerprints_to_simhash_scheme_2(db_url: str) -> None:
    """A version-3 database holds scheme-1 fingerprints: the last 14 days' (before its
    newest story) are recomputed from the stored text, as the jobs compute them, and
    still find their near duplicates; older ones are cleared."""
    from sqlalchemy import text

    from aggregator.neardup import simhash

    s = open_store(db_url)
    s.sync_topics([])
    s.upsert_feeds(
        [FeedSource(url="https://a.example/f"), FeedSource(url="https://b.example/f")], T0
    )
    a, b = (f.id for f in s.feeds())
    old_day = T0 - timedelta(days=20)
    body = "<p>The registry signed every zone with DNSSEC after a three-year pilot.</p>"
    s.save_update(
        check(a, old_day),
        [
            StoryRecord(
                draft=draft("o", "Old news", link="https://n/o", summary="<p>Last month</p>"),
                fingerprint=0x1234,
            )
        ],
    )
    s.save_update(
        check(a),
        [
            StoryRecord(
                draft=draft("x", "Zones signed", link="https://n/x", summary=body),
                fingerprint=0x31598C00C8080010,  # what scheme 1 gave; nothing speaks it now
            ),
            StoryRecord(draft=draft("e", "No text", link="https://n/e"), fingerprint=None),
        ],
    )
    with s.engine.begin() as c:  # turn it into a version-3 database
        c.execute(text("DELETE FROM schema_version WHERE version = 4"))
    s.close()

    s = open_store(db_url)
    with s.engine.connect() as c:
        got = dict(c.execute(text("SELECT title, fingerprint FROM story")).all())
        bands = c.execute(text("SELECT fp_band0 FROM story WHERE title = 'Old news'")).scalar()
    expected = simhash(
        "Zones signed\nThe registry signed every zone with DNSSEC after a three-year pilot."
    )
    assert got["Zones signed"] & ((1 << 64) - 1) == expected
    assert got["Old news"] is None and bands is None
    assert got["No text"] is None
    # the recomputed fingerprint meets the same story's scheme-2 fingerprint from elsewhere
    s.save_update(
        check(b, T0 + timedelta(hours=1)),
        [StoryRecord(draft=draft("y", "Zones signed!", link="https://m/y"), fingerprint=expected)],
    )
    # listed once: the copy is folded into the first story's cluster
    assert sorted(st.title for st in s.stories(StoryQuery())) == [
        "No text",
        "Old news",
        "Zones signed",
    ]
    s.close()


def test_migration_5_adds_feed_columns_and_label_archive(db_url: str) -> None:
    """A version-4 database: feed.source_url, feed.not_before and label_archive are
    added; a feed the 30-day rule had switched off (enabled cleared, as version 4 did)
    gets the user's enabled flag back and stays disabled."""
    from sqlalchemy import text

    s = open_store(db_url)
    s.upsert_feeds(
        [FeedSource(url="https://a.example/f"), FeedSource(url="https://b.example/f")], T0
    )
    a, b = (f.id for f in s.feeds())
    with s.engine.begin() as c:  # turn it into a version-4 database
        c.execute(text("DELETE FROM schema_version WHERE version = 5"))
        c.execute(text("DROP TABLE label_archive"))
        c.execute(text("ALTER TABLE feed DROP COLUMN source_url"))
        c.execute(text("ALTER TABLE feed DROP COLUMN not_before"))
        c.execute(
            text("UPDATE feed SET status = 'disabled', enabled = :f WHERE id = :b"),
            {"f": False, "b": b},
        )
    s.close()

    s = open_store(db_url)
    fa, fb = s.get_feed(a), s.get_feed(b)
    assert (fa.status, fa.enabled) == ("active", True)
    assert (fb.status, fb.enabled) == ("disabled", True)
    assert s.due_feed_ids(T0 + timedelta(days=1), include_not_due=True) == [a]
    assert s.upsert_feeds([FeedSource(url="https://b.example/f")], T0) == (0, 0)
    assert s.labelled_stories() == []  # the archive table is there, empty
    s.close()


def test_a_database_from_a_newer_aggregator_is_refused(db_url: str) -> None:
    from sqlalchemy import text

    s = open_store(db_url)
    with s.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO schema_version (version, applied, description) "
                "VALUES (99, CURRENT_TIMESTAMP, 'from the future')"
            )
        )
    s.close()
    # and the connection it opened to find out is closed: PostgreSQL's was left open
    # (psycopg: "ResourceWarning: <psycopg.Connection ...> was deleted while still open")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(StoreError, match="schema version 99, newer than this aggregator"):
            open_store(db_url)
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []


def test_save_checks_batches_story_less_outcomes(store) -> None:  # type: ignore[no-untyped-def]
    from aggregator.store.rows import FETCH_LOG_KEEP

    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    store.save_update(check(a.id, etag='"v1"', body_hash="h", interval=timedelta(hours=2)), [])
    for i in range(FETCH_LOG_KEEP + 3):
        store.save_checks(
            [
                check(a.id, T0 + timedelta(minutes=i), outcome="not_modified", etag=None),
                check(
                    b.id,
                    T0 + timedelta(minutes=i),
                    outcome="error",
                    success=False,
                    status="error",
                    error_count=i + 1,
                    first_error_at=T0,
                    last_error="HTTP 503",
                    http_status=503,
                ),
            ]
        )
    fa, fb = store.get_feed(a.id), store.get_feed(b.id)
    # a 304 keeps the validators and the base interval, stamps the success
    assert (fa.etag, fa.body_hash, fa.poll_interval) == ('"v1"', "h", timedelta(hours=2))
    assert fa.last_success == T0 + timedelta(minutes=FETCH_LOG_KEEP + 2)
    assert (fb.status, fb.error_count, fb.last_error, fb.last_success) == (
        "error",
        FETCH_LOG_KEEP + 3,
        "HTTP 503",
        None,
    )
    assert len(store.fetch_log(a.id, limit=1000)) == FETCH_LOG_KEEP
    assert len(store.fetch_log(b.id, limit=1000)) == FETCH_LOG_KEEP
    assert store.fetch_log(b.id)[0].http_status == 503
    # a feed disabled by the 30-day rule is never due again; ``enabled`` stays the
    # user's own setting (feeds.yaml), so syncing the file does not turn it back on
    store.save_checks(
        [
            check(
                b.id,
                status="disabled",
                outcome="error",
                success=False,
                error_count=99,
                first_error_at=T0,
                last_error="gone for a month",
            )
        ]
    )
    fb = store.get_feed(b.id)
    assert (fb.status, fb.enabled) == ("disabled", True)
    later = T0 + timedelta(days=60)
    assert b.id not in store.due_feed_ids(later, include_not_due=True)


def test_opening_a_new_store_stays_light(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Migrations on an empty database import nothing heavy: the poll's main process only
    talks to the database, and numpy there cost ~15 MB of the first poll's peak."""
    import subprocess
    import sys

    code = (
        "import sys; from aggregator.store import open_store; "
        f"open_store('sqlite:///{tmp_path / 'new.db'}').close(); "
        "heavy = [m for m in ('numpy', 'sklearn', 'scipy') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_removing_a_feed_rehomes_the_clusters_it_started(store) -> None:  # type: ignore[no-untyped-def]
    """Other feeds' copies of a removed feed's story stay listed: the cluster moves to
    its smallest remaining id, where later copies still join it."""
    store.upsert_feeds([FeedSource(url="https://c.example/feed", name="Gamma")], T0)
    a, b, c = (store.get_feed(f"https://{h}.example/feed") for h in "abc")
    link = "https://n/same"
    (first,) = store.save_update(check(a.id), [StoryRecord(draft=draft("x", "A", link=link))]).new
    (copy,) = store.save_update(check(b.id), [StoryRecord(draft=draft("y", "B", link=link))]).new
    (later,) = store.save_update(check(c.id), [StoryRecord(draft=draft("z", "C", link=link))]).new
    assert [s.id for s in store.stories(StoryQuery())] == [first]

    store.remove_feed(a.url, T0)
    (shown,) = store.stories(StoryQuery())
    assert (shown.id, shown.cluster_id) == (copy, copy)
    assert [s.id for s in store.cluster_members(shown)] == [later]
    store.upsert_feeds([FeedSource(url="https://d.example/feed")], T0)
    d = store.get_feed("https://d.example/feed")
    (newest,) = store.save_update(check(d.id), [StoryRecord(draft=draft("w", "D", link=link))]).new
    assert store.get_story(newest).cluster_id == copy
    # removing a feed whose story was not the cluster's first leaves the cluster alone
    store.remove_feed(c.url, T0)
    assert [(s.id, s.cluster_id) for s in store.stories(StoryQuery())] == [(copy, copy)]
    assert [s.id for s in store.cluster_members(store.get_story(copy))] == [newest]


def test_next_due_waits_for_leases_and_retry_after(store) -> None:  # type: ignore[no-untyped-def]
    """The earliest time a feed can be claimed, not merely its next_check: otherwise a
    daemon beside another one (or a dead one) that holds the due feeds busy-loops."""
    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    assert store.next_due() == T0  # both new feeds are due at once
    lease = timedelta(minutes=10)
    assert len(store.claim_due(T0, owner="other-host:1:x", lease=lease)) == 2
    assert store.next_due() == T0 + lease
    # Retry-After later than next_check binds; a lease shorter than both does not
    store.save_update(
        check(a.id, next_check=T0 + timedelta(hours=1), not_before=T0 + timedelta(hours=2)), []
    )
    store.save_update(check(b.id, next_check=T0 + timedelta(hours=3)), [])
    assert store.next_due() == T0 + timedelta(hours=2)
    later = T0 + timedelta(hours=2)
    assert store.claim_due(later, owner="d", lease=lease, include_not_due=True)[0].id == a.id
    assert store.next_due() == later + lease
    # an overdue feed under a lease: claimable when the lease ends
    store.release([a.id], "d")
    store.save_update(check(a.id, next_check=T0 - timedelta(hours=1)), [])
    store.claim_due(T0, owner="d", lease=timedelta(minutes=1), ids=[a.id])
    assert store.next_due() == T0 + timedelta(minutes=1)


def _ended_pid() -> int:
    import subprocess
    import sys

    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_leases_of_ended_processes_on_this_host_are_released(store) -> None:  # type: ignore[no-untyped-def]
    import os

    store.upsert_feeds([FeedSource(url=f"https://{h}.example/feed") for h in "cd"], T0)
    ids = store.due_feed_ids(T0)
    dead, me = _ended_pid(), os.getpid()
    owners = [f"here:{dead}:1", f"here:{me}:2", f"elsewhere:{dead}:3", "not-ours"]
    for fid, owner in zip(ids, owners, strict=True):
        store.claim_due(T0, owner=owner, lease=timedelta(minutes=15), ids=[fid])
    assert store.due_feed_ids(T0) == []
    assert store.release_dead_leases("here", T0) == 1
    assert store.due_feed_ids(T0) == ids[:1]
    assert store.release_dead_leases("here", T0) == 0


def test_a_poll_starts_by_releasing_this_hosts_dead_leases(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    import socket

    from aggregator.app import lease_host, make_app
    from aggregator.config import Settings

    s = Settings.from_env({}, data_dir=tmp_path, database_url=sqlite_url, extract=False)
    with make_app(s, now=lambda: T0) as app:
        assert app.owner.startswith(f"{lease_host()}:")
        app.store.upsert_feeds([FeedSource(url=f"https://{h}.example/feed") for h in "abc"], T0)
        ended = _ended_pid()
        # the same host name, pids of other PID namespaces (other containers): their
        # pids say nothing about processes here, so their leases stay
        for owner in (
            f"{lease_host()}:{ended}:gone",
            f"{socket.gethostname()}/pidns-1:{ended}:container",
            f"{socket.gethostname()}:{ended}:older-aggregator",
        ):
            assert app.store.claim_due(T0, owner=owner, lease=timedelta(minutes=15), limit=1)
        assert app.due_count() == 0
        app.prepare_poll()
        assert app.due_count() == 1


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
def test_a_sqlite_url_without_a_file_is_refused(url: str) -> None:
    """SQLite would open these as a private in-memory database: nothing kept."""
    with pytest.raises(StoreError, match=r"sqlite:////abs/path\.db"):
        open_store(url)


def test_a_postgresql_server_that_never_answers_times_out() -> None:
    """A port that accepts TCP but never speaks: one clear StoreError, not a hang, after
    one connect timeout (the first read's failure was taken for a new database's missing
    table, and a second connection waited out the timeout again: 20 s by default)."""
    import socket
    import time

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # the kernel completes the handshake; nobody ever answers
        port = server.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(StoreError, match="cannot open database"):
            open_store(f"postgresql://postgres@127.0.0.1:{port}/x", connect_timeout=2)
        assert time.monotonic() - started < 3.5  # 2 s (libpq's least), not twice that


def _story_state(s) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with s.engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                text(
                    "SELECT id, title, canonical_url, cluster_id, published, updated, sort_date "
                    "FROM story ORDER BY id"
                )
            )
        ]


def test_migration_6_repairs_rows_written_before_session_7(db_url: str) -> None:
    """A version-5 database holds what the code before session 7 wrote: links refused
    as identity kept as canonical URLs (one story shown per shared link), dates far
    ahead, control characters in titles, clusters named after a removed feed's story.
    Migration 6 repairs them as the fixed code would have written them, once."""
    from sqlalchemy import text

    s = open_store(db_url)
    s.upsert_feeds(
        [FeedSource(url=f"https://{h}.example/feed") for h in ("pod", "b", "c", "d")], T0
    )
    a, b, c, d = (f.id for f in s.feeds())

    def rec(key: str, title: str, link: str | None, h: str, **kw: object) -> StoryRecord:
        return StoryRecord(draft=replace(draft(key, title, link=link, h=h), **kw))  # type: ignore[arg-type]

    def save(feed_id: int, at: datetime, *records: StoryRecord) -> list[int]:
        return list(s.save_update(check(feed_id, at, site="https://POD.example"), records).new)

    # The old story_drafts: a link shared by items of one document, or the feed's home
    # page, was refused as the key but still stored as canonical_url.
    latest, home = "https://pod.example/latest", "https://pod.example/"
    (a0,) = save(a, T0 - timedelta(days=1), rec(f"v1:link:{latest}", "A0", latest, "h0"))
    a1, a2, a3, a4, a7 = save(
        a,
        T0,
        rec("v1:guid:a1", "A1", home, "h1"),
        rec("v1:guid:a2", "A2", home, "h2"),
        rec("v1:guid:a3", "A3", latest, "h3"),
        rec("v1:hash:h4", "A4", latest, "h4"),
        rec("v1:guid:r1", "A7", "https://pod.example/ep7", "h7"),
    )
    # a guid that changes on every poll while link and text stay: one story, kept so
    (a8,) = save(
        a, T0 + timedelta(hours=1), rec("v1:guid:r2", "A8", "https://pod.example/ep7", "h7")
    )
    s.save_update(check(b, T0), [])
    b1, b3, b4, b5, b6 = s.save_update(
        check(b, T0),
        [
            rec("v1:guid:b1", "B1", "https://news.example/x", "hb1"),
            rec("v1:guid:b3", "B3", None, "hb3", published=T0 + timedelta(days=30)),
            rec(
                "v1:guid:b4",
                "B4",
                None,
                "hb4",
                published=T0 + timedelta(days=30),
                updated=T0 - timedelta(hours=1),
            ),
            rec("v1:guid:b5", "B5", None, "hb5", published=T0 - timedelta(hours=2)),
            rec("v1:guid:b6", "Root\x07zone\x1b news", None, "hb6"),
        ],
    ).new
    # another feed's story linking to the podcast's home page joined A1's cluster
    (b2,) = s.save_update(
        check(b, T0 + timedelta(hours=1)), [rec("v1:guid:b2", "B2", home, "hb2")]
    ).new
    # edited three days later: the new date was not in the future when it was read
    edited = T0 + timedelta(days=3)
    s.save_update(check(b, edited), [rec("v1:guid:b5", "B5", None, "hb5'", published=edited)])
    # one article in two feeds, its URL unique in each: a legitimate cluster
    c1, c2 = s.save_update(
        check(c, T0),
        [
            rec("v1:link:https://news.example/x", "C1", "https://news.example/x", "hc1"),
            rec("v1:guid:c2", "C2", latest, "hc2"),
        ],
    ).new
    (d1,) = s.save_update(
        check(d, T0 - timedelta(days=2)), [rec("v1:guid:d1", "D1", "https://o.example/1", "hd")]
    ).new
    (c3,) = s.save_update(
        check(c, T0 + timedelta(hours=2)), [rec("v1:guid:c3", "C3", "https://o.example/1", "hc3")]
    ).new
    with s.engine.begin() as conn:  # `feeds remove` before it re-homed clusters
        conn.execute(text("DELETE FROM story WHERE feed_id = :d"), {"d": d})
        conn.execute(text("DELETE FROM feed WHERE id = :d"), {"d": d})
    shown = {st.title for st in s.stories(StoryQuery())}
    assert shown == {"A0", "A1", "A7", "B1", "B3", "B4", "B5", "Root\x07zone\x1b news"}
    with s.engine.begin() as conn:  # turn it into a version-5 database
        conn.execute(text("DELETE FROM schema_version WHERE version = 6"))
    s.close()

    s = open_store(db_url)
    by_id = {st.id: st for st in s.stories(StoryQuery())}
    assert sorted(by_id) == sorted([a0, a1, a2, a3, a4, a7, b1, b2, b3, b4, b5, b6, c3])
    for sid in (a1, a2, a3, a4):  # each shown alone, with no cross-feed key
        assert (by_id[sid].canonical_url, by_id[sid].cluster_id) == (None, sid)
        assert s.cluster_members(by_id[sid]) == []
    # a link that was the story's key stays its key, and the other feed's copy with it
    assert by_id[a0].canonical_url == latest
    assert [st.id for st in s.cluster_members(by_id[a0])] == [c2]
    assert [st.id for st in s.cluster_members(by_id[a7])] == [a8]
    assert [st.id for st in s.cluster_members(by_id[b1])] == [c1]
    assert (by_id[b2].canonical_url, by_id[b2].cluster_id) == (home, b2)
    assert by_id[c3].cluster_id == c3 and d1 not in s.story_ids()
    # dates: too far ahead is none (the parser's fallback to a trusted `updated` applies)
    assert by_id[b3].published is None
    assert by_id[b4].published == T0 - timedelta(hours=1)
    assert by_id[b5].published == edited
    since = [st.id for st in s.stories(StoryQuery(since=T0 + timedelta(days=1)))]
    assert since == [b5]
    with s.engine.connect() as conn:
        sort_date = conn.execute(text("SELECT sort_date FROM story WHERE id = :i"), {"i": b3})
        first_seen = conn.execute(text("SELECT first_seen FROM story WHERE id = :i"), {"i": b3})
        assert sort_date.scalar() == first_seen.scalar()
    assert by_id[b6].title == "Rootzone news"  # and searched as it reads now
    assert [st.id for st in s.stories(StoryQuery(text="rootzone"))] == [b6]

    before = _story_state(s)
    s.close()
    s = open_store(db_url)  # reopened: nothing left to migrate
    assert _story_state(s) == before
    with s.engine.begin() as conn:  # and migration 6 run again changes nothing
        conn.execute(text("DELETE FROM schema_version WHERE version = 6"))
    s.close()
    s = open_store(db_url)
    assert _story_state(s) == before
    s.close()


def test_a_feed_moving_to_https_updates_its_stories(store) -> None:  # type: ignore[no-untyped-def]
    """A stored story whose key's http<->https twin comes back is that story: updated, its
    key moved to the new form (found directly from then on); other keys stay new."""
    feed = store.get_feed("https://a.example/feed")
    old = [
        StoryRecord(draft=draft("v1:guid:http://a.example/?p=1", "One", link="http://a.example/1")),
        StoryRecord(draft=draft("v1:link:http://a.example/2", "Two", link="http://a.example/2")),
    ]
    first = store.save_update(check(feed.id), old)
    assert len(first.new) == 2

    def https(rec: StoryRecord) -> StoryRecord:
        d = rec.draft
        link = (d.link or "").replace("http://", "https://")
        key = d.key.replace("http://", "https://")
        return replace(rec, draft=replace(d, key=key, guid=key, link=link, canonical_url=link))

    moved = [https(r) for r in old]
    unrelated = StoryRecord(
        draft=draft("v1:guid:https://a.example/?p=3", "Three", link="https://a.example/3")
    )
    second = store.save_update(check(feed.id, T0 + timedelta(hours=1)), [*moved, unrelated])
    assert sorted(second.updated) == sorted(first.new)
    assert len(second.new) == 1 and second.new[0] not in first.new
    stories = {s.title: s for s in store.stories(StoryQuery(limit=None))}
    assert sorted(stories) == ["One", "Three", "Two"]
    assert stories["One"].key == "v1:guid:https://a.example/?p=1"
    assert stories["Two"].canonical_url == "https://a.example/2"
    assert store.get_feed(feed.id).stories == 3
    keys = [r.draft.key for r in moved]
    assert set(store.known_stories(feed.id, keys)) == set(keys)
    # the next poll finds the https keys directly
    third = store.save_update(check(feed.id, T0 + timedelta(hours=2)), moved)
    assert third.new == () and sorted(third.updated) == sorted(first.new)


def test_a_story_and_its_scheme_twin_in_one_poll_stay_two(store) -> None:  # type: ignore[no-untyped-def]
    """When a poll sends both a key and its twin, each is its own entry: no remapping."""
    feed = store.get_feed("https://a.example/feed")
    store.save_update(check(feed.id), [StoryRecord(draft=draft("v1:link:http://x/a", "Http"))])
    both = [
        StoryRecord(draft=draft("v1:link:http://x/a", "Http")),
        StoryRecord(draft=draft("v1:link:https://x/a", "Https")),
    ]
    saved = store.save_update(check(feed.id, T0 + timedelta(hours=1)), both)
    assert len(saved.new) == 1 and len(saved.updated) == 1
    assert store.get_feed(feed.id).stories == 2


def test_http_and_https_copies_of_one_article_cluster(store) -> None:  # type: ignore[no-untyped-def]
    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    store.save_update(
        check(a.id), [StoryRecord(draft=draft("a1", "Article", link="http://n.example/story"))]
    )
    store.save_update(
        check(b.id),
        [
            StoryRecord(draft=draft("b1", "Article (copy)", link="https://n.example/story")),
            StoryRecord(draft=draft("b2", "Other", link="https://n.example/other")),
        ],
    )
    shown = {s.title: s for s in store.stories(StoryQuery(limit=None))}
    assert sorted(shown) == ["Article", "Other"]
    assert [o.title for o in store.cluster_members(shown["Article"])] == ["Article (copy)"]
    assert store.cluster_members(shown["Other"]) == []


def test_filters_find_a_story_through_any_copy_and_show_it_once(store) -> None:  # type: ignore[no-untyped-def]
    """One story per cluster among the *matching* stories: `--feed B` lists B's copy of a
    story A had first, and a topic or date only B's copy has still finds the story."""
    a, b = (store.get_feed(f"https://{h}.example/feed") for h in "ab")
    link = "https://news.example/registry-outage"
    old = T0 - timedelta(days=3)
    first = store.save_update(
        check(a.id),
        [
            StoryRecord(
                draft=draft("x", "Registry outage", link=link, published=old),
                prediction=pred(("IPv4 Markets", 0.9)),
            )
        ],
    ).new[0]
    copy = store.save_update(
        check(b.id),
        [
            StoryRecord(
                draft=draft("y", "Registry outage, day two", link=link, published=T0),
                prediction=pred(("DNS", 0.9)),
            )
        ],
    ).new[0]
    assert store.get_story(copy).cluster_id == first

    def ids(**kw: object) -> list[int]:
        return [s.id for s in store.stories(StoryQuery(limit=None, **kw))]  # type: ignore[arg-type]

    assert ids() == [first]
    assert ids(feeds=("Beta",)) == [copy]
    assert ids(feeds=("Alpha",)) == [first]
    assert ids(topics=("DNS",)) == [copy]
    assert ids(topics=("IPv4 Markets",)) == [first]
    assert ids(since=T0 - timedelta(days=1)) == [copy]
    assert ids(text="outage") == [first]  # both match: the cluster's first, once
    assert ids(text="two") == [copy]
    assert [s.id for s in store.cluster_members(store.get_story(copy))] == [first]


def test_queries_do_not_wait_for_another_processs_write_lock(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Opening the app migrated and synced topics under a write lock, so `stories`,
    `export` or a new `serve` waited out the 30 s busy timeout behind a long write (a
    VACUUM, a retag) and failed with "database is locked"."""
    import sqlite3
    import time

    from aggregator.app import make_app
    from aggregator.config import Settings

    settings = Settings.from_env({}, data_dir=tmp_path)
    with make_app(settings) as app:
        app.store.upsert_feeds([FeedSource(url="https://a.example/feed")], T0)
        feed = app.store.get_feed("https://a.example/feed")
        app.store.save_update(check(feed.id), [StoryRecord(draft=draft("k", "Held story"))])
    writer = sqlite3.connect(tmp_path / "aggregator.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE feed SET name = 'busy'")
    try:
        started = time.monotonic()
        with make_app(settings) as app:
            assert [s.title for s in app.stories(StoryQuery())] == ["Held story"]
        assert time.monotonic() - started < 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_feed_respelled_in_the_file_is_the_same_feed(store) -> None:  # type: ignore[no-untyped-def]
    """http/https, host case or a trailing slash: the sync updates the stored feed (and
    takes the new spelling) instead of adding a second one that stores every story
    again."""
    a = store.get_feed("https://a.example/feed")
    store.save_update(check(a.id), [StoryRecord(draft=draft("k", "Kept"))])
    added, changed = store.upsert_feeds(
        [
            FeedSource(url="https://A.example/feed/", name="Alpha"),
            FeedSource(url="http://b.example/feed", name="Beta"),
        ],
        T0,
    )
    assert (added, changed) == (0, 2)
    urls = sorted(f.url for f in store.feeds())
    assert urls == ["http://b.example/feed", "https://A.example/feed/"]
    assert store.get_feed("https://A.example/feed/").id == a.id
    assert store.get_feed(a.id).stories == 1
    assert store.upsert_feeds([FeedSource(url="https://A.example/feed/", name="Alpha")], T0) == (
        0,
        0,
    )


def test_story_ids_are_never_given_twice(store, db_url: str) -> None:  # type: ignore[no-untyped-def]
    """SQLite gives max(rowid) + 1: `feeds remove` of the feed with the newest stories
    gave their ids to the next poll's, and `show 3` named another story than listed."""
    from sqlalchemy import text

    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    (first,) = store.save_update(check(a.id), [StoryRecord(draft=draft("1", "One"))]).new
    newest = store.save_update(
        check(b.id), [StoryRecord(draft=draft(k, f"Story {k}")) for k in ("2", "3")]
    ).new
    store.remove_feed(b.url, T0)
    (after,) = store.save_update(check(a.id), [StoryRecord(draft=draft("4", "Four"))]).new
    assert after > max(newest) > first

    # a store from before migration 12 starts from its largest id then
    if db_url.startswith("sqlite"):
        with store.engine.begin() as c:
            c.execute(text("DROP TABLE store_meta"))
            c.execute(text("DELETE FROM schema_version WHERE version = 12"))
        store.close()
        again = open_store(db_url)
        try:
            feed = again.get_feed("https://a.example/feed")
            again.remove_feed("https://a.example/feed", T0)
            feed, _ = again.add_feed(FeedSource(url=feed.url), T0)
            (last,) = again.save_update(check(feed.id), [StoryRecord(draft=draft("5", "5"))]).new
            assert last > after
        finally:
            again.close()


@pytest.mark.postgres
def test_postgresql_connections_detect_a_vanished_server(pg_url: str) -> None:
    """TCP keepalives on every connection (30 s idle, 3 probes 10 s apart): a server gone
    without closing the connection held a query for the OS default of two hours; a URL's
    own settings win."""
    import socket

    def keepalive_of(url: str) -> tuple[int, int, int, int]:
        st = open_store(url)
        try:
            with st.engine.connect() as c:
                fd = c.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
                sock = socket.socket(fileno=fd)
                try:
                    return (
                        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                    )
                finally:
                    sock.detach()  # the connection's socket stays open
        finally:
            st.close()

    assert keepalive_of(pg_url) == (1, 30, 10, 3)
    assert keepalive_of(f"{pg_url}?keepalives_idle=120")[1] == 120
