"""Review: a label given (by another process) while `prune` deletes its story's batch on
PostgreSQL is kept, and so is its story: labels are kept forever."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text
from test_prune import NOW, OLD, _save
from test_store import T0

from aggregator.store import open_store
from aggregator.types import FeedSource, StoryQuery


@pytest.mark.postgres
def test_a_label_committed_while_a_prune_batch_waits_is_not_deleted(pg_url: str) -> None:
    store = open_store(pg_url)
    other = create_engine(pg_url)
    try:
        store.sync_topics([("DNS", None)])
        store.upsert_feeds([FeedSource(url="https://a.example/feed")], T0)
        a = store.get_feed("https://a.example/feed")
        sid = _save(store, a.id, "k1", at=OLD)
        with other.connect() as conn:
            tx = conn.begin()
            # another process labels the story; its transaction is still open when the
            # prune looks for labels, and commits while the prune waits for the row
            conn.execute(
                text(
                    "INSERT INTO label (story_id, topic_id, value, created) "
                    "SELECT :sid, id, true, now() FROM topic WHERE name = 'DNS'"
                ),
                {"sid": sid},
            )
            result: list[int] = []
            pruning = threading.Thread(
                target=lambda: result.append(store.prune_stories(NOW - timedelta(days=1), 0))
            )
            pruning.start()
            time.sleep(1.5)
            tx.commit()
            pruning.join(timeout=30)
        assert not pruning.is_alive()
        assert result == [0]
        assert [s.id for s in store.stories(StoryQuery(limit=None))] == [sid]
        assert store.story_labels(sid) == (("DNS",), ())
    finally:
        other.dispose()
        store.close()
