"""Migration 6: rows written before session 7's fixes brought to what the fixed code
writes (titles, dates from the future, links shared by unrelated stories, and the
clusters they made). Moved out of :mod:`aggregator.store.migrations` as it was written:
a migration keeps the meaning it shipped with.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, distinct, exists, func, literal, or_, select, update
from sqlalchemy.engine import Connection

from . import tables
from .search import write_search_index

# parse.FUTURE_SLACK when migration 6 was written: a migration keeps the meaning it
# shipped with, whatever the parser's value becomes later.
_M6_FUTURE_SLACK = timedelta(days=1)


def _m6_repair_session7_rows(conn: Connection) -> None:
    """Rows written before session 7's fixes, brought to what the fixed code writes. Each
    step selects only rows that are still wrong, so running it again changes nothing.

    1. Titles keep only the characters XML 1.0 allows (``textutil.xml_chars``, which
       the parser now applies): control characters are dropped. Their search rows are
       rewritten.
    2. A date more than a day after the story was read is treated as missing, as
       ``parse.FUTURE_SLACK`` now has it: ``published`` falls back to a trusted
       ``updated`` (the parser's fallback) or None, and ``sort_date`` to ``first_seen``.
       "Read" is the last time the story could have been written (its feed's last
       success), not ``first_seen``: a story re-saved after an edit carries the edit's
       date, which was not in the future then.
    3. A link refused as a story's identity is no cluster key (``dedupe``'s module
       docstring): ``canonical_url`` is cleared where the key says so (a ``v1:hash:``
       key: guid and link were both refused), where stories of one feed with different
       texts share the URL and the story's key is not that URL's link key, and where
       the URL is the feed's own (home page or feed URL). Same-feed stories with the
       same text keep a shared URL: a guid that changes on every poll while the link
       stays is one story. Then clusters are rebuilt, see :func:`_m6_recluster`.
    """
    story = tables.table(tables.StoryRow)
    if conn.execute(select(story.c.id).limit(1)).first() is None:
        return  # a new database: nothing to repair, nothing to import
    _m6_titles(conn)
    _m6_future_dates(conn)
    _m6_shared_links(conn)


def _m6_titles(conn: Connection) -> None:
    from ..textutil import xml_chars
    from .rows import search_text  # rows imports this module: only at run time

    c = tables.table(tables.StoryRow).c
    fixed: list[dict[str, Any]] = []
    last = 0
    while True:  # keyset pages: every title is read once, never all at once
        page = conn.execute(
            select(c.id, c.title).where(c.id > last).order_by(c.id).limit(5000)
        ).all()
        if not page:
            break
        last = page[-1][0]
        fixed.extend(
            {"sid": sid, "t": clean} for sid, title in page if (clean := xml_chars(title)) != title
        )
    for start in range(0, len(fixed), 500):
        chunk = fixed[start : start + 500]
        conn.execute(
            update(tables.table(tables.StoryRow))
            .where(c.id == bindparam("sid"))
            .values(title=bindparam("t")),
            chunk,
        )
        rows = conn.execute(
            select(c.id, c.title, c.summary, c.content, c.full_text).where(
                c.id.in_([v["sid"] for v in chunk])
            )
        )
        write_search_index(
            conn,
            [
                (sid, title, search_text(summary, content, full))
                for sid, title, summary, content, full in rows
            ],
            config="english",  # what vectors were before migration 11, which rebuilds them
        )


def _m6_future_dates(conn: Connection) -> None:
    story, feed = tables.table(tables.StoryRow), tables.table(tables.FeedRow)
    c = story.c
    # Only a date after first_seen can be ahead of when it was read; the exact test
    # needs the feed's last success as well and runs below.
    rows = conn.execute(
        select(c.id, c.published, c.updated, c.first_seen, feed.c.last_success)
        .join_from(story, feed, feed.c.id == c.feed_id)
        .where(or_(c.published > c.first_seen, c.updated > c.first_seen))
    ).all()
    values: list[dict[str, Any]] = []
    for sid, published, updated, first_seen, last_success in rows:
        if first_seen is None:
            continue
        latest = max(first_seen, last_success or first_seen) + _M6_FUTURE_SLACK
        trusted_updated = updated if updated is not None and updated <= latest else None
        trusted = published if published is not None and published <= latest else None
        new_published = trusted or trusted_updated
        if (new_published, trusted_updated) != (published, updated):
            values.append(
                {
                    "sid": sid,
                    "p": new_published,
                    "u": trusted_updated,
                    "d": new_published or first_seen,
                }
            )
    if values:
        conn.execute(
            update(story)
            .where(c.id == bindparam("sid"))
            .values(published=bindparam("p"), updated=bindparam("u"), sort_date=bindparam("d")),
            values,
        )


def _m6_shared_links(conn: Connection) -> None:
    story, feed = tables.table(tables.StoryRow), tables.table(tables.FeedRow)
    c = story.c
    has_url = c.canonical_url.is_not(None)
    affected: set[int] = set()
    if conn.execute(select(c.id).where(has_url).limit(1)).first() is not None:
        # Imported only with URLs to check: dedupe brings numpy (see _m4_simhash_v2).
        from ..dedupe import KEY_VERSION, canonicalize_url

        link_key = literal(f"{KEY_VERSION}:link:") + c.canonical_url
        affected.update(
            conn.execute(select(c.id).where(has_url, c.key.like(f"{KEY_VERSION}:hash:%"))).scalars()
        )
        shared = (
            select(c.feed_id, c.canonical_url)
            .where(has_url)
            .group_by(c.feed_id, c.canonical_url)
            .having(func.count() > 1, func.count(distinct(c.content_hash)) > 1)
            .subquery()
        )
        affected.update(
            conn.execute(
                select(c.id)
                .join_from(
                    story,
                    shared,
                    and_(shared.c.feed_id == c.feed_id, shared.c.canonical_url == c.canonical_url),
                )
                .where(c.key != link_key)
            ).scalars()
        )
        own: dict[int, set[str]] = {}
        for fid, *urls in conn.execute(
            select(feed.c.id, feed.c.url, feed.c.source_url, feed.c.redirect_url, feed.c.site)
        ):
            own[fid] = {canonicalize_url(u) for u in urls if u}
        candidates = sorted(set().union(*own.values()))
        for start in range(0, len(candidates), 500):
            for sid, fid, url in conn.execute(
                select(c.id, c.feed_id, c.canonical_url).where(
                    c.canonical_url.in_(candidates[start : start + 500])
                )
            ):
                if url in own.get(fid, ()):
                    affected.add(sid)
    _m6_recluster(conn, sorted(affected))


def _m6_recluster(conn: Connection, affected: list[int]) -> None:
    """The ``affected`` stories lose their canonical URL and each starts its own
    cluster (their URL was what put them in one; a SimHash match they may also have had
    is not looked for again: shown twice is better than hidden). A cluster whose named
    story is gone from it (one of these, or a story deleted by ``feeds remove`` before
    it re-homed clusters) moves to its smallest remaining member, as
    ``SqlStore._rehome_clusters`` does: queries show a story only when
    ``cluster_id = id``."""
    story = tables.table(tables.StoryRow)
    c = story.c
    for start in range(0, len(affected), 500):
        conn.execute(
            update(story)
            .where(c.id.in_(affected[start : start + 500]))
            .values(canonical_url=None, cluster_id=None)
        )
    root = story.alias("root")
    named = exists().where(root.c.id == c.cluster_id, root.c.cluster_id == root.c.id)
    moves = [
        {"old": int(old), "new": int(new)}
        for old, new in conn.execute(
            select(c.cluster_id, func.min(c.id))
            .where(c.cluster_id.is_not(None), ~named)
            .group_by(c.cluster_id)
        )
    ]
    if moves:
        conn.execute(
            update(story)
            .where(c.cluster_id == bindparam("old"))
            .values(cluster_id=bindparam("new")),
            moves,
        )
    for start in range(0, len(affected), 500):
        conn.execute(
            update(story).where(c.id.in_(affected[start : start + 500])).values(cluster_id=c.id)
        )
