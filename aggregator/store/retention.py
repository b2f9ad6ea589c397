"""Retention: ``prune`` deletes old stories a batch per transaction, keeping each feed's
newest, those its feed still lists and those a user labelled; ``compact`` gives the
space back on SQLite.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select

from ..dedupe import listing_digest
from ..errors import StoreError
from . import dialect, search
from .base import _STORY, LC, StoreBase, root_link
from .rows import FEED, brief, chunks, utc


class Retention(StoreBase):
    """Pruning and compacting."""

    def prune_stories(
        self,
        before: datetime,
        keep_per_feed: int,
        *,
        dry_run: bool = False,
        batch: int = 500,
        stop: threading.Event | None = None,
    ) -> int:
        """Delete the stories first seen and dated before ``before``, except each feed's
        ``keep_per_feed`` newest, every story its feed's latest document still lists
        (deleted, it would come back as new at the document's next change: a feed listing
        its whole archive would bring it all back once per retention period) and every
        story a user labelled (kept until withdrawn: training reads them). Returns how many were
        deleted (or, with ``dry_run``, would be). Deletes ``batch`` stories per
        transaction, so a poll writing meanwhile waits for one batch at most; the label
        and listing checks are repeated inside each one. Once ``stop`` is set (a daemon
        told to stop) no further batch begins: those deleted stay deleted, the rest wait
        for the next prune."""
        # No feed has 2⁶³ stories: a larger ``keep_per_feed`` keeps them all, as any
        # above a feed's count does (it overflowed: "bigint out of range" on PostgreSQL,
        # an OverflowError on SQLite)
        keep_per_feed = min(keep_per_feed, 2**63 - 1)
        dated = func.coalesce(_STORY.c.sort_date, _STORY.c.first_seen)
        rank = (
            func.row_number()
            .over(partition_by=_STORY.c.feed_id, order_by=(dated.desc(), _STORY.c.id.desc()))
            .label("rank")
        )
        story = (_STORY.c.id, _STORY.c.feed_id, _STORY.c.key, _STORY.c.first_seen)
        ranked = select(*story, dated.label("dated"), rank).subquery()
        with self._read() as s:
            rows = s.execute(
                select(ranked.c.id, ranked.c.feed_id, ranked.c.key)
                .where(
                    ranked.c.rank > keep_per_feed,
                    ranked.c.first_seen < utc(before),
                    ranked.c.dated < utc(before),
                    ~select(LC.story_id).where(LC.story_id == ranked.c.id).exists(),
                )
                .order_by(ranked.c.id)
            ).all()
            candidates = [int(r.id) for r in _unlisted(s, rows)]
        if dry_run:
            return len(candidates)
        deleted = 0
        for chunk in chunks(candidates, batch):
            if stop is not None and stop.is_set():
                break
            with self._write() as s:
                conn = s.connection()
                # PostgreSQL: lock the rows before looking for labels, in a statement of
                # its own. A label given meanwhile holds a key-share lock on its story
                # until it commits; the check below, a later statement, then sees it (a
                # check in the DELETE itself would not, and the cascade would delete the
                # label). A label given after this waits and then finds no story.
                # (SQLite: the write transaction excludes every other writer already.)
                conn.execute(
                    select(_STORY.c.id)
                    .where(_STORY.c.id.in_(chunk))
                    .order_by(_STORY.c.id)
                    .with_for_update()
                )
                # The listings again: a poll that committed since the read above may
                # have found one of these stories listed again in its feed's document.
                gone = _unlisted(
                    conn,
                    conn.execute(
                        select(
                            _STORY.c.id,
                            _STORY.c.cluster_id,
                            _STORY.c.feed_id,
                            _STORY.c.key,
                            _STORY.c.link,
                            _STORY.c.entry_link,
                        ).where(
                            _STORY.c.id.in_(chunk),
                            ~select(LC.story_id).where(LC.story_id == _STORY.c.id).exists(),
                        )
                    ).all(),
                )
                ids = [int(r.id) for r in gone]
                if not ids:
                    continue
                dialect.keep_story_ids(conn)
                search.delete_search_index(conn, ids)
                conn.execute(delete(_STORY).where(_STORY.c.id.in_(ids)))
                self._rehome_clusters(
                    conn,
                    {
                        int(r.id): root_link(r.link, r.entry_link)
                        for r in gone
                        if r.cluster_id == r.id
                    },
                )
                deleted += len(ids)
        return deleted

    def compact(self) -> None:
        """Give the space of deleted stories back to the file system (SQLite: merge the
        search index's segments, VACUUM, then copy the write-ahead log into the file and
        empty it; PostgreSQL's autovacuum does this itself)."""
        if self.dialect != "sqlite":
            return
        import sqlite3

        raw = self.engine.raw_connection()
        try:
            # The driver connection runs in autocommit (dialect.make_engine), which VACUUM
            # needs: SQLAlchemy's Connection would BEGIN first.
            conn = raw.driver_connection
            assert conn is not None
            conn.execute("INSERT INTO story_fts(story_fts) VALUES ('optimize')")
            conn.execute("VACUUM")
            # VACUUM wrote the compacted database into the write-ahead log. The last
            # connection to close copies it back and deletes the log, but beside a
            # running daemon none is the last: the file kept its old size and the log
            # the new one for as long as the daemon ran (SQLite reuses the log, never
            # shrinks it). Copied back and emptied now; a reader in the way (the busy
            # timeout over) leaves it to the daemon's next checkpoint, as before.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:
            raise StoreError(f"cannot compact the database: {brief(e)}") from e
        finally:
            raw.close()


def _unlisted(conn: Any, rows: Sequence[Any]) -> list[Any]:
    """Those of ``rows`` (stories with ``id``, ``feed_id`` and ``key``) that their feed's
    latest document does not list (a feed with no listing stored lists none)."""
    listed = {
        int(fid): frozenset(digests.split())
        for fid, digests in conn.execute(
            select(FEED.c.id, FEED.c.listed).where(
                FEED.c.id.in_({int(r.feed_id) for r in rows}), FEED.c.listed.is_not(None)
            )
        ).all()
    }
    return [r for r in rows if listing_digest(r.key) not in listed.get(int(r.feed_id), ())]
