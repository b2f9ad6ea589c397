"""Article texts fetched after the poll (``aggregator extract``, the daemon's retries):
which stories still wait for theirs, and writing what extraction gave with the
fingerprint, topics and search index it changes.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import SQLAlchemyError

from ..feedlist import url_host
from ..types import ExtractionUpdate, Story
from . import dialect, search
from .base import _STORY, StoreBase, _store_error
from .rows import chunks, search_text, signed64

log = logging.getLogger(__name__)

# A story's claim (``claim_extractions``): the two-key form, a space of its own beside
# the one-key locks of migrations and subscriptions (7261001, 7261002). Stories share
# ``CLAIM_LOCKS`` locks by id: each lock held lives in the server's shared lock table
# (6,400 by default), which `extract --limit 20000` would run out of.
CLAIM_LOCKS = 1024
_TRY_CLAIM = text("SELECT pg_try_advisory_lock(7261003, CAST(:id AS integer))")


@contextmanager
def _sqlite_claims(database: str | None) -> Iterator[Callable[[int], bool] | None]:
    """SQLite: a claim's ``take`` (story id -> whether this claim now holds it), or None
    where stories cannot be claimed. A story is held by a write lock on its own byte of
    ``<database>-claims``, an open file description lock (Linux ``F_OFD_SETLK``): one
    claim's locks keep another's off, in this process or another (unlike POSIX record
    locks, which a process holds once for all its descriptors), and they go with the
    descriptor, closed at the block's end or by the kernel when the process dies."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield None
        return

    ofd = getattr(fcntl, "F_OFD_SETLK", None)
    if (
        ofd is None
        or struct.calcsize("P") != 8  # struct flock as packed below: 64-bit Linux
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        yield None
        return
    try:
        fd = os.open(f"{database}-claims", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:  # a read-only directory: no claim, as before
        log.debug("no extraction claims beside %s: %s", database, e)
        yield None
        return

    def take(story_id: int) -> bool:
        # struct flock: l_type, l_whence, l_start, l_len, l_pid (0, as OFD locks want)
        lock = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, story_id, 1, 0)
        try:
            fcntl.fcntl(fd, ofd, lock)
        except OSError as e:
            # held by another claim; else no such lock here (a kernel before 3.15): the
            # story is taken unclaimed, as before
            return e.errno not in (errno.EAGAIN, errno.EACCES)
        return True

    try:
        yield take
    finally:
        os.close(fd)  # every lock of the claim with it


class Extractions(StoreBase):
    """Stories waiting for their article text, and writing it."""

    def waiting_extractions(
        self, limit: int, *, failed: bool = False, passing_over: Collection[str] = ()
    ) -> tuple[list[Story], int]:
        """Stories with a link whose article text is still to be fetched (stored by a poll
        without extraction: ``pending``), and with ``failed`` those whose page failed
        too; newest first, at most ``limit``; and how many of those waiting were passed
        over because their link's host (``feedlist.url_host``) is one of
        ``passing_over`` (held or stalled: none of its pages is fetched now). Taken up
        and left alone, a held host's stories newer than the rest kept every other
        story waiting for as long as the hold."""
        return self._waiting(limit, failed, passing_over, None)

    @contextmanager
    def claim_extractions(
        self, limit: int, *, failed: bool = False, passing_over: Collection[str] = ()
    ) -> Iterator[tuple[list[Story], int]]:
        """``waiting_extractions``, the stories held for the block: on PostgreSQL no
        other process's claim gets them until it ends. Several daemons on one store each
        took the same newest stories after their cycle, and every page was fetched once
        per daemon. A story is held by a session-level advisory lock on a connection of
        the block's own (a process that dies lets go with its session); one another
        process holds, or finished while this one looked, is passed over for the next.
        Stories share ``CLAIM_LOCKS`` locks: one held elsewhere passes over the others of
        its lock too. SQLite: the same, by a lock on the story's own byte of a file beside
        the database (:func:`_sqlite_claims`): `aggregator extract` run while the daemon
        ran took the same stories; where no such lock can be had (an in-memory
        database, a system without open-file-description locks), no claim."""
        if self.dialect == "sqlite":
            with _sqlite_claims(self.engine.url.database) as take_one:
                if take_one is None:
                    yield self.waiting_extractions(limit, failed=failed, passing_over=passing_over)
                else:
                    try:
                        claimed = self._waiting(limit, failed, passing_over, take_one)
                    except SQLAlchemyError as e:
                        raise _store_error(e) from e
                    yield claimed
            return
        if self.dialect != "postgresql":
            yield self.waiting_extractions(limit, failed=failed, passing_over=passing_over)
            return
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as e:
            raise _store_error(e) from e
        try:
            tried: dict[int, bool] = {}  # a lock asked for once: at most CLAIM_LOCKS trips

            def take(story_id: int) -> bool:
                lock = story_id % CLAIM_LOCKS
                if lock not in tried:
                    tried[lock] = bool(conn.execute(_TRY_CLAIM, {"id": lock}).scalar())
                return tried[lock]

            try:
                stories, passed = self._waiting(limit, failed, passing_over, take)
            except SQLAlchemyError as e:
                raise _store_error(e) from e
            yield stories, passed
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock_all()"))
            except SQLAlchemyError:  # gone with its session, or never to be reused
                conn.invalidate()
            conn.close()

    def _waiting(
        self,
        limit: int,
        failed: bool,
        passing_over: Collection[str],
        take: Callable[[int], bool] | None,
    ) -> tuple[list[Story], int]:
        """``waiting_extractions``; with ``take``, only the stories it takes (and, read
        again once taken, still waiting)."""
        status = _STORY.c.extraction_status
        # "= 'pending'" as the partial index ix_story_pending says it (store migration
        # 13): the daemon asks after every cycle
        states = ["pending", "failed"] if failed else ["pending"]
        waiting = status.in_(states) if failed else status == "pending"
        query = (
            select(_STORY.c.id, _STORY.c.link)
            .where(waiting, _STORY.c.link.is_not(None))
            .order_by(_STORY.c.id.desc())
        )
        ids: list[int] = []
        passed = 0
        with self._read() as s:
            if not passing_over and take is None:
                ids = list(s.execute(query.with_only_columns(_STORY.c.id).limit(limit)).scalars())
            else:  # read a slice at a time, until ``limit`` are found
                rows = s.execute(query.execution_options(yield_per=500))
                for sid, link in rows:
                    if url_host(link) in passing_over:
                        passed += 1
                    elif len(ids) < limit and (take is None or take(int(sid))):
                        ids.append(sid)
                    if len(ids) >= limit:
                        break
                rows.close()
        by_id = {st.id: st for st in self.get_stories(ids)}
        return [
            st for i in ids if (st := by_id.get(i)) is not None and st.extraction_status in states
        ], passed

    def feed_neighbours(
        self, stories: Mapping[int, Collection[int]], per_feed: int
    ) -> dict[int, list[tuple[str, str | None, str | None]]]:
        """(title, summary, content) of each feed's ``per_feed`` newest stories but the
        given ones, by feed id (``stories``: the ids taken up, by their feed's): what
        tells a feed's footer from its stories' own text (``neardup.boilerplate``) when
        few of its stories are taken up together (``Articles.extract_stored``)."""
        out: dict[int, list[tuple[str, str | None, str | None]]] = {}
        if per_feed <= 0:
            return out
        with self._read() as s:
            for feed_id, ids in stories.items():
                query = (
                    select(_STORY.c.title, _STORY.c.summary, _STORY.c.content)
                    .where(_STORY.c.feed_id == feed_id)
                    .order_by(_STORY.c.id.desc())
                    .limit(per_feed)
                )
                if ids:
                    query = query.where(_STORY.c.id.not_in(sorted(ids)))
                out[feed_id] = [(t, sm, c) for t, sm, c in s.execute(query)]
        return out

    def save_extractions(self, items: Sequence[ExtractionUpdate]) -> int:
        """Write what extracting stored stories gave (``aggregator extract``): the article
        text or why there is none, the fingerprint and topics over the full text (the
        user's labels stay), and the search index. Stories deleted meanwhile are skipped;
        returns how many were written."""
        if not items:
            return 0
        written = 0
        with self._write() as s:
            conn = s.connection()
            topic_ids = self._topic_map(
                s, {t.topic for it in items if it.prediction for t in it.prediction.topics}
            )
            wanted = sorted({it.story_id for it in items})
            present: dict[int, tuple[str, str | None, str | None]] = {}
            for chunk in chunks(wanted, 500):
                for sid, title, summary, content in conn.execute(
                    select(_STORY.c.id, _STORY.c.title, _STORY.c.summary, _STORY.c.content)
                    .where(_STORY.c.id.in_(chunk))
                    .order_by(_STORY.c.id)
                    .with_for_update()
                ):
                    present[int(sid)] = (title, summary, content)
            indexed: list[tuple[int, str, str]] = []
            for it in items:
                if it.story_id not in present:
                    continue
                values: dict[str, Any] = {
                    "extraction_status": it.status,
                    "extraction_error": it.error,
                }
                if it.full_text is not None:
                    values["full_text"] = it.full_text
                if it.fingerprint is not None:
                    bands = dialect.simhash_bands(it.fingerprint)
                    values["fingerprint"] = signed64(it.fingerprint)
                    values.update({f"fp_band{i}": bands.get(f"b{i}") for i in range(4)})
                if it.prediction is not None:
                    self._write_topics(s, it.story_id, it.prediction, topic_ids)
                    values["model_version"] = it.prediction.model_version
                conn.execute(update(_STORY).where(_STORY.c.id == it.story_id).values(**values))
                if it.full_text is not None:
                    title, summary, content = present[it.story_id]
                    indexed.append(
                        (it.story_id, title, search_text(summary, content, it.full_text))
                    )
                written += 1
            search.write_search_index(conn, indexed)
        return written
