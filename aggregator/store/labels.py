"""The user's labels (kept forever: archived with their text when their feed is removed)
and the model's re-tags of stored stories (``train``), which never override a label.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlmodel import Session, col
from sqlmodel import select as mselect

from ..credentials import without_credentials
from ..errors import ConfigError, NotFoundError
from ..types import Prediction, Story
from . import tables
from .base import _STORY, FC, LC, SC, STC, LabelledStory, StoreBase, topic_rows
from .rows import FEED, chunks
from .tables import LabelArchiveRow, LabelRow, StoryTopicRow

# PostgreSQL: a user's label and `feeds remove` take turns on the story's feed row too.
# Otherwise a label written after the removal archived the feed's labels was deleted
# with its story, unarchived. FOR KEY SHARE: polls of the feed (FOR NO KEY UPDATE) do
# not wait for labels, nor labels for them.
_STORY_FEED_SHARED = (
    select(FC.id)
    .join(_STORY, _STORY.c.feed_id == FC.id)
    .where(_STORY.c.id == bindparam("sid"))
    .with_for_update(read=True, key_share=True, of=FEED)
)


def _archived_story(r: LabelArchiveRow) -> Story:
    first_seen = r.first_seen or r.archived
    assert r.id is not None and first_seen is not None
    return Story(
        id=-r.id,
        feed_id=0,
        feed_url=without_credentials(r.feed_url),
        feed_title=None,
        key=f"archived:{r.id}",
        guid=None,
        link=r.link,
        canonical_url=None,
        title=r.title,
        author=None,
        published=r.published,
        first_seen=first_seen,
        summary=r.summary,
        content=r.content,
        full_text=r.full_text,
        extraction_status="skipped",
        extraction_error=None,
        categories=tuple(r.categories or ()),
    )


def _lock_story_feed(s: Session, story_id: int) -> None:
    """Take the story's feed row (``_STORY_FEED_SHARED``) for a label write, or raise
    NotFoundError when the story is not there (any more: a removal that held the row
    has committed)."""
    if s.execute(_STORY_FEED_SHARED, {"sid": story_id}).first() is None:
        raise NotFoundError(f"no story {story_id}")


class Labels(StoreBase):
    """Labels and re-tags."""

    def add_labels(
        self, story_id: int, positive: Sequence[str], negative: Sequence[str], now: datetime
    ) -> None:
        with self._write() as s:
            _lock_story_feed(s, story_id)
            known = self._topic_map(s, [*positive, *negative])
            topic_ids = {k.lower(): v for k, v in known.items()}
            for name, value in [(p, True) for p in positive] + [(n, False) for n in negative]:
                tid = topic_ids.get(name.lower())
                if tid is None:
                    raise ConfigError(f"unknown topic {name!r} (see `aggregator topics`)")
                row = s.exec(
                    mselect(LabelRow).where(LC.story_id == story_id, LC.topic_id == tid)
                ).first()
                if row is None:
                    s.add(LabelRow(story_id=story_id, topic_id=tid, value=value, created=now))
                else:
                    row.value, row.created = value, now
                s.execute(
                    delete(StoryTopicRow).where(and_(STC.story_id == story_id, STC.topic_id == tid))
                )
                if value:
                    s.add(StoryTopicRow(story_id=story_id, topic_id=tid, score=1.0, source="user"))

    def forget_labels(self, story_id: int, topics: Sequence[str]) -> int:
        """Withdraw the user's labels (either way) of ``topics`` on a story; its topics
        then come from the model again (the caller writes them). Returns how many labels
        there were.

        The story is marked as tagged by no model until the caller writes its topics: a
        caller that cannot (the model in use does not load) leaves it for the next
        re-tag, which skipped it as tagged by the model in use, so a topic a "-Topic"
        label had kept off it never came back."""
        with self._write() as s:
            _lock_story_feed(s, story_id)
            topic_ids = {k.lower(): v for k, v in self._topic_map(s, topics).items()}
            tids = []
            for name in topics:
                tid = topic_ids.get(name.lower())
                if tid is None:
                    raise ConfigError(f"unknown topic {name!r} (see `aggregator topics`)")
                tids.append(tid)
            gone = s.execute(
                delete(LabelRow).where(and_(LC.story_id == story_id, col(LC.topic_id).in_(tids)))
            ).rowcount  # type: ignore[attr-defined]
            s.execute(
                delete(StoryTopicRow).where(
                    and_(
                        STC.story_id == story_id,
                        col(STC.topic_id).in_(tids),
                        STC.source == "user",
                    )
                )
            )
            if gone:
                s.execute(update(_STORY).where(_STORY.c.id == story_id).values(model_version=None))
            return int(gone or 0)

    def labelled_stories(self) -> list[LabelledStory]:
        """Every story a user labelled, then the archived ones of removed feeds (their
        ``story.id`` is minus the archive row's id: no stored story has it)."""
        with self._read() as s:
            out = self._labels_of(s)
            for r in s.exec(mselect(LabelArchiveRow).order_by(col(LabelArchiveRow.id))):
                out.append(
                    LabelledStory(
                        story=_archived_story(r),
                        positive=tuple(r.positive),
                        negative=tuple(r.negative),
                    )
                )
        return out

    def story_labels(self, story_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The topics a user gave the story (+) and took from it (-)."""
        with self._read() as s:
            found = self._labels_of(s, SC.id == story_id)
        return (found[0].positive, found[0].negative) if found else ((), ())

    def set_predictions(self, items: Sequence[tuple[int, Prediction]]) -> int:
        """Replace model topics of the given stories (user labels stay); returns how many
        stories' topic sets changed.

        One transaction for all of ``items`` (the caller's batch), written with a few
        set-wise statements per 500 stories: a story at a time through the ORM (its
        labels, its topics before and after, a delete, an insert per topic, a flush)
        held SQLite's write lock ~1 s per 500 stories, and ``train`` re-tagged 300,000
        stories in over 10 minutes, a daemon waiting for the lock at every batch."""
        changed = 0
        latest = dict(items)  # a story given twice: the last prediction, as before
        with self._write() as s:
            topic_ids = self._topic_map(s, {t.topic for p in latest.values() for t in p.topics})
            conn = s.connection()
            for chunk in chunks(sorted(latest), 500):
                # Stories deleted since the caller read them (`feeds remove`, a prune,
                # while `train` classified them) are skipped: their topics would violate
                # the foreign key, and the whole re-tag failed. PostgreSQL: the others
                # are locked against deletion until this commits (SQLite: the write
                # lock).
                q = select(_STORY.c.id).where(_STORY.c.id.in_(chunk)).order_by(_STORY.c.id)
                if self.dialect == "postgresql":
                    q = q.with_for_update(key_share=True)
                present = [int(i) for i in conn.execute(q).scalars()]
                if not present:
                    continue
                before: dict[int, set[int]] = {i: set() for i in present}
                for story_id, topic_id in conn.execute(
                    select(STC.story_id, STC.topic_id).where(col(STC.story_id).in_(present))
                ):
                    before[int(story_id)].add(int(topic_id))
                labels: dict[int, dict[int, bool]] = {i: {} for i in present}
                for story_id, topic_id, value in conn.execute(
                    select(LC.story_id, LC.topic_id, LC.value).where(col(LC.story_id).in_(present))
                ):
                    labels[int(story_id)][int(topic_id)] = bool(value)
                rows: list[dict[str, Any]] = []
                by_version: dict[str | None, list[int]] = {}
                for story_id in present:
                    pred = latest[story_id]
                    written = topic_rows(story_id, pred, topic_ids, labels[story_id])
                    changed += before[story_id] != {r["topic_id"] for r in written}
                    rows.extend(written)
                    by_version.setdefault(pred.model_version, []).append(story_id)
                conn.execute(delete(StoryTopicRow).where(col(STC.story_id).in_(present)))
                if rows:
                    conn.execute(insert(tables.table(StoryTopicRow)), rows)
                for version, ids in by_version.items():
                    conn.execute(
                        update(_STORY).where(_STORY.c.id.in_(ids)).values(model_version=version)
                    )
        return changed
