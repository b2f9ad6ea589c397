"""Storage: the ``Store`` protocol and ``open_store(url)``.

One SQLModel implementation (``SqlStore``) serves SQLite and PostgreSQL; the few
dialect-specific parts live in ``dialect.py``. The store returns ``aggregator.types``
objects, never ORM rows, and makes no decisions: the app decides what a feed's next state
is, the store writes it atomically with that feed's stories.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from ..types import (
    Feed,
    FeedCheck,
    FeedSource,
    Prediction,
    SaveResult,
    Story,
    StoryQuery,
    StoryRecord,
)
from .sql import FetchLogEntry, LabelledStory, SqlStore, TopicInfo

__all__ = [
    "FetchLogEntry",
    "LabelledStory",
    "SqlStore",
    "Store",
    "TopicInfo",
    "open_store",
]


class Store(Protocol):
    def close(self) -> None: ...

    # topics
    def sync_topics(self, topics: Sequence[tuple[str, str | None]]) -> None: ...
    def topics(self) -> list[TopicInfo]: ...

    # feeds
    def upsert_feeds(self, sources: Sequence[FeedSource], now: datetime) -> tuple[int, int]: ...
    def add_feed(self, source: FeedSource, now: datetime) -> tuple[Feed, bool]: ...
    def enable_feed(self, ref: int | str, now: datetime) -> Feed: ...
    def remove_feed(self, url: str, now: datetime) -> int: ...
    def feeds(self) -> list[Feed]: ...
    def get_feed(self, ref: int | str) -> Feed: ...
    def due_feed_ids(
        self, now: datetime, *, limit: int | None = None, include_not_due: bool = False
    ) -> list[int]: ...
    def claim_due(
        self,
        now: datetime,
        *,
        owner: str,
        lease: timedelta,
        limit: int | None = None,
        include_not_due: bool = False,
        ids: Sequence[int] | None = None,
    ) -> list[Feed]: ...
    def release(self, feed_ids: Sequence[int], owner: str) -> None: ...
    def next_due(self) -> datetime | None: ...
    def fetch_log(self, feed_id: int, limit: int = 20) -> list[FetchLogEntry]: ...
    def post_dates(self, feed_id: int, since: datetime) -> list[datetime]: ...

    # stories
    def known_stories(self, feed_id: int, keys: Sequence[str]) -> dict[str, str]: ...
    def recent_story_hashes(self, feed_id: int, limit: int = 500) -> dict[str, str]: ...
    def save_update(self, check: FeedCheck, records: Sequence[StoryRecord]) -> SaveResult: ...
    def save_checks(self, checks: Sequence[FeedCheck]) -> None: ...
    def stories(self, query: StoryQuery) -> list[Story]: ...
    def get_story(self, story_id: int) -> Story: ...
    def cluster_members(self, story: Story) -> list[Story]: ...
    def story_ids(self) -> list[int]: ...
    def get_stories(self, ids: Sequence[int]) -> list[Story]: ...
    def set_predictions(self, items: Sequence[tuple[int, Prediction]]) -> int: ...

    # labels
    def add_labels(
        self, story_id: int, positive: Sequence[str], negative: Sequence[str], now: datetime
    ) -> None: ...
    def labelled_stories(self) -> list[LabelledStory]: ...


def open_store(url: str) -> SqlStore:
    """Connect, migrate the schema if needed, and return the store."""
    return SqlStore(url)
