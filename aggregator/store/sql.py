"""``SqlStore``: the one Store implementation, over SQLModel/SQLAlchemy, for SQLite and
PostgreSQL. Only this package talks SQL. Every write is one transaction; every method
wraps driver errors in ``StoreError``.

The class is put together here from one part per concern, each a module of its own over
the sessions and shared statements of ``base.StoreBase``:

- ``feeds.FeedStore``: subscriptions, leases and what is due, the fetch log;
- ``writes.PollWrites``: what a poll writes (stories, clusters, topics, the feed's
  state) and the look-ups it makes first;
- ``queries.StoryQueries``: topics and the story lists the CLI, export and serve read;
- ``extractions.Extractions``: article texts fetched after the poll;
- ``labels.Labels``: the user's labels and the model's re-tags;
- ``retention.Retention``: pruning and compacting.
"""

from __future__ import annotations

from .base import LabelledStory, StoreBase
from .extractions import Extractions
from .feeds import FeedStore, FetchLogEntry
from .labels import Labels
from .queries import StoryQueries, TopicInfo
from .retention import Retention
from .writes import NEAR_DUP_WINDOW, PollWrites

__all__ = ["NEAR_DUP_WINDOW", "FetchLogEntry", "LabelledStory", "SqlStore", "TopicInfo"]


class SqlStore(FeedStore, PollWrites, StoryQueries, Extractions, Labels, Retention, StoreBase):
    """The store: see the module's docstring for its parts, ``store.Store`` for its
    contract."""
