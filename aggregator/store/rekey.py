"""Migrations 20 and 25: stored canonical URLs and the story keys made of them brought
to the canonical form of ``dedupe.canonicalize_url`` since each migration (20: more
tracking parameters dropped, hosts in IDNA 2008; 25: cache-busters dropped). Without it
a feed keyed by links (RSS 0.91, no guids) would give every stored story again under its
new key, and an article would no longer meet its stored copies by URL.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, or_, select, tuple_, update
from sqlalchemy.engine import Connection

from . import tables

_PAGE = 5000
_LINK = "v1:link:"
_ENCLOSURE = "v1:enclosure:"


def _m20_canonical_urls(conn: Connection) -> None:
    """Each story whose canonical URL the new rules change gets the new one, and its
    ``v1:link:`` or ``v1:enclosure:`` key with it; each feed's listing (``feed.listed``)
    follows its keys, so prune still spares them. A URL counts as changed by the new
    rules when canonicalising the stored canonical URL again drops a parameter, or when
    its link's host is not ASCII (IDNA 2003 and 2008 differ there, and only the link
    tells how). A key whose new form the feed already holds (a copy stored under it) is
    left as it is: that story is still listed by nobody and pruned in time. Only rows
    that may have changed are canonicalised (``maybe_changed``): a pass over a million
    stories reads their URLs once, a page at a time."""
    from ..dedupe import TRACKING_PARAMS_SINCE_M20, TRACKING_PREFIXES_SINCE_M20

    _recanonicalise(conn, TRACKING_PARAMS_SINCE_M20, TRACKING_PREFIXES_SINCE_M20, idn=True)


def _m25_cache_busters(conn: Connection) -> None:
    """Migration 20's pass for the cache-busters dropped since migration 25 (``_=``,
    ``cachebuster=``, ...): a feed keyed by links that stamps them with one finds its
    stored stories under the keys it gives now, instead of storing each again."""
    from ..dedupe import CACHE_BUSTERS_SINCE_M25

    _recanonicalise(conn, CACHE_BUSTERS_SINCE_M25, (), idn=False)


def _recanonicalise(
    conn: Connection, params: tuple[str, ...], prefixes: tuple[str, ...], *, idn: bool
) -> None:
    """The stories whose canonical URL (or enclosure key) holds one of ``params`` (or a
    parameter starting with one of ``prefixes``), or with ``idn`` whose link's host is
    not ASCII, canonicalised again, as ``_m20_canonical_urls`` says."""
    from ..dedupe import canonicalize_url

    def maybe_changed(url: str, link: str | None) -> bool:
        """Whether the new rules may change ``url`` (a canonical URL or a key holding
        one): a parameter they drop is in it, or (``idn``) its link's host is not ASCII."""
        if idn and link is not None and not link.isascii():
            return True
        query = url.partition("?")[2].lower()
        return bool(query) and any(
            n in params or n.startswith(prefixes)
            for n in {pair.partition("=")[0] for pair in query.split("&")}
        )

    c = tables.table(tables.StoryRow).c
    urls: list[dict[str, Any]] = []
    keys: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)  # feed -> new -> (id, old)
    last = 0
    while True:
        page = conn.execute(
            select(c.id, c.feed_id, c.key, c.link, c.canonical_url)
            .where(c.id > last, or_(c.canonical_url.is_not(None), c.key.startswith(_ENCLOSURE)))
            .order_by(c.id)
            .limit(_PAGE)
        ).all()
        if not page:
            break
        last = page[-1][0]
        for sid, fid, key, link, url in page:
            new_url = url
            if url is not None and maybe_changed(url, link):
                from_link = idn and link is not None and not link.isascii()
                new_url = canonicalize_url(link if from_link else url)
            new_key = key
            if new_url != url:
                urls.append({"sid": sid, "u": new_url})
                if key == _LINK + url:
                    new_key = _LINK + str(new_url)
            if key.startswith(_ENCLOSURE) and maybe_changed(key, None):
                new_key = _ENCLOSURE + canonicalize_url(key[len(_ENCLOSURE) :])
            if new_key != key and new_key not in keys[int(fid)]:
                keys[int(fid)][new_key] = (sid, key)
    for start in range(0, len(urls), 500):
        conn.execute(
            update(tables.table(tables.StoryRow))
            .where(c.id == bindparam("sid"))
            .values(canonical_url=bindparam("u")),
            urls[start : start + 500],
        )
    for fid, moves in keys.items():
        _move_keys(conn, fid, moves)


def _move_keys(conn: Connection, feed_id: int, moves: dict[str, tuple[int, str]]) -> None:
    """Give one feed's stories their new keys (``new -> (story id, old key)``), except
    where the feed holds the new key already, and rewrite the feed's listing to match."""
    from ..dedupe import listing_digest

    c = tables.table(tables.StoryRow).c
    new_keys = list(moves)
    taken: set[str] = set()
    for start in range(0, len(new_keys), 500):
        chunk = new_keys[start : start + 500]
        taken.update(
            conn.execute(
                select(c.key).where(tuple_(c.feed_id, c.key).in_([(feed_id, k) for k in chunk]))
            ).scalars()
        )
    done = [(new, sid, old) for new, (sid, old) in moves.items() if new not in taken]
    if not done:
        return
    for start in range(0, len(done), 500):
        conn.execute(
            update(tables.table(tables.StoryRow))
            .where(c.id == bindparam("sid"))
            .values(key=bindparam("k")),
            [{"sid": sid, "k": new} for new, sid, _ in done[start : start + 500]],
        )
    feed = tables.table(tables.FeedRow)
    listed = conn.execute(select(feed.c.listed).where(feed.c.id == feed_id)).scalar()
    if not listed:
        return
    renamed = {listing_digest(old): listing_digest(new) for new, _, old in done}
    conn.execute(
        update(feed)
        .where(feed.c.id == feed_id)
        .values(listed=" ".join(renamed.get(d, d) for d in listed.split()))
    )
