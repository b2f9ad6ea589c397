"""Living with a big store (session 13's scale audit, 300,000 stories built by
benchmarks/store.py): what the commands a user runs on it do to the database, asserted
on small stores (the figures are in the CHANGELOG)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from test_store import T0, check, draft, pred

from aggregator.store import SqlStore, open_store
from aggregator.types import FeedSource, StoryRecord


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = open_store(db_url)
    s.sync_topics([("DNS", None), ("Cybersecurity", None), ("IPv4 Markets", None)])
    s.upsert_feeds([FeedSource(url="https://a.example/feed", name="Alpha")], T0)
    try:
        yield s
    finally:
        s.close()


@contextmanager
def statements(s: SqlStore) -> Iterator[list[str]]:
    """The SQL statements ``s`` sends meanwhile (an executemany is one)."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(s.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(s.engine, "before_cursor_execute", note)


def test_a_retag_batch_is_written_set_wise_and_keeps_the_users_word(store: SqlStore) -> None:
    """`train` re-tags every story, 500 per transaction. Written a story at a time (its
    labels read, its topics read before and after, a delete, the inserts, an update, a
    flush: ~6 statements per story) a batch held SQLite's write lock ~1 s, 300,000
    stories took 10 min 42 s, and a daemon polling meanwhile waited ~0.8 s for the lock
    at every feed it stored. The statements are now per 500 stories, not per story."""
    feed = store.get_feed("https://a.example/feed")
    records = [
        StoryRecord(draft=draft(f"k{i}", f"Registry news {i}"), prediction=pred(("DNS", 0.7)))
        for i in range(120)
    ]
    ids = store.save_update(check(feed.id), records).new
    store.add_labels(ids[0], ["Cybersecurity"], ["DNS"], T0)  # the user's word, both ways
    store.add_labels(ids[1], ["DNS"], [], T0)
    # even stories: a new topic (changed); odd ones: DNS alone again, a new score
    new = {
        sid: pred(("DNS", 0.95), ("IPv4 Markets", 0.8), version="m2")
        if n % 2 == 0
        else pred(("DNS", 0.95), version="m2")
        for n, sid in enumerate(ids)
    }
    gone = max(ids) + 1000  # a story deleted since the re-tag read it: skipped
    with statements(store) as sent:
        changed = store.set_predictions([*new.items(), (gone, pred(("DNS", 0.9), version="m2"))])
    assert len(sent) <= 15, f"{len(sent)} statements for 120 stories"
    # 60 even stories gain IPv4 Markets; odd story 1 (+DNS by the user) keeps {DNS}
    assert changed == 60
    stories = {s.id: s for s in store.get_stories(ids)}
    assert {s.model_version for s in stories.values()} == {"m2"}
    topics = {
        sid: sorted((t.topic, t.source, t.score) for t in s.topics) for sid, s in stories.items()
    }
    assert topics[ids[0]] == [("Cybersecurity", "user", 1.0), ("IPv4 Markets", "model", 0.8)]
    assert topics[ids[1]] == [("DNS", "user", 1.0)]
    assert topics[ids[2]] == [("DNS", "model", 0.95), ("IPv4 Markets", "model", 0.8)]
    assert topics[ids[3]] == [("DNS", "model", 0.95)]
    (a, b) = sorted(store.labelled_stories(), key=lambda ls: ls.story.id)
    assert (a.positive, a.negative, b.positive, b.negative) == (
        ("Cybersecurity",),
        ("DNS",),
        ("DNS",),
        (),
    )
    # the same predictions again change nothing
    assert store.set_predictions(list(new.items())) == 0
