"""tests/readonly.py, which the shared read-only stores rely on: after ``refuse_writes``
every write fails on both databases, in the first transaction and in any later one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from readonly import refuse_writes

from aggregator.errors import StoreError
from aggregator.store import open_store
from aggregator.types import FeedSource, StoryQuery

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_a_store_refusing_writes_refuses_them_after_reads_too(db_url: str) -> None:
    s = open_store(db_url)
    try:
        s.add_feed(FeedSource(url="https://a.example/feed"), NOW)
        refuse_writes(s.engine)
        for _ in range(3):  # transactions begun and ended: the session stays read-only
            assert s.stories(StoryQuery(limit=None)) == []
            with pytest.raises(StoreError):
                s.add_feed(FeedSource(url="https://b.example/feed"), NOW)
        assert [f.url for f in s.feeds()] == ["https://a.example/feed"]
    finally:
        s.close()
