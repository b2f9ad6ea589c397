"""Article texts fetched after the poll (``aggregator extract``, the daemon's retries):
which stories still wait for theirs, and writing what extraction gave with the
fingerprint, topics and search index it changes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select, update

from ..feedlist import url_host
from ..types import ExtractionUpdate, Story
from . import dialect, search
from .base import _STORY, StoreBase
from .rows import chunks, search_text, signed64


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
        status = _STORY.c.extraction_status
        # "= 'pending'" as the partial index ix_story_pending says it (store migration
        # 13): the daemon asks after every cycle
        waiting = status.in_(["pending", "failed"]) if failed else status == "pending"
        query = (
            select(_STORY.c.id, _STORY.c.link)
            .where(waiting, _STORY.c.link.is_not(None))
            .order_by(_STORY.c.id.desc())
        )
        ids: list[int] = []
        passed = 0
        with self._read() as s:
            if not passing_over:
                ids = list(s.execute(query.with_only_columns(_STORY.c.id).limit(limit)).scalars())
            else:  # read a slice at a time, until ``limit`` are found
                rows = s.execute(query.execution_options(yield_per=500))
                for sid, link in rows:
                    if url_host(link) in passing_over:
                        passed += 1
                    elif len(ids) < limit:
                        ids.append(sid)
                    if len(ids) >= limit:
                        break
                rows.close()
        by_id = {st.id: st for st in self.get_stories(ids)}
        return [by_id[i] for i in ids if i in by_id], passed

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
