"""Session 28 hunt (2): story identity and clusters with several daemons on one
PostgreSQL database, and entry ids that outlive the story that gave them. Real
databases, real concurrent connections; nothing of ours is mocked."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime

import pytest
from clockedapp import Clock, any_app, clock
from httpserver import LocalServer
from sqlalchemy import create_engine, text
from test_dedupe_audit import _poll
from test_dedupe_s27 import _item, _rss
from test_pg_daemons_audit import sql
from test_store import check, draft

from aggregator.app import App
from aggregator.store import open_store
from aggregator.store.sql import SqlStore
from aggregator.types import FeedSource, StoryQuery, StoryRecord

__all__ = ["any_app", "clock"]  # the fixtures (clockedapp)


def _waiting(url: str) -> int:
    """Backends of this database waiting for a lock."""
    return int(
        sql(
            url,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )[0][0]
    )


def _until(what: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if what():
            return True
        time.sleep(0.02)
    return what()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[SqlStore]:
    st = open_store(pg_url)
    st.upsert_feeds(
        [FeedSource(url=f"https://{n}.example/feed", name=n) for n in ("a", "b", "c")],
        check(1).at,
    )
    yield st
    st.close()


# --- a story leaving the cluster of the URL it had, while another daemon stores there ----

PAGE = "https://news.example/2026/11/registry-signs-every-zone"
MOVED = "https://news.example/2026/11/resolver-outage-in-europe"


def test_a_copy_stored_at_a_url_a_story_is_leaving_meanwhile_joins_the_right_cluster(
    pg_store: SqlStore, pg_url: str
) -> None:
    """Feed A's story was linked by mistake to feed B's story's page, and stored first:
    B's story is in its cluster. A's link is corrected, and while that update splits the
    cluster (B's story starts its own), a second daemon stores feed C's copy of B's
    story at the page. The update locked only the URL it moves to, so the copy looked
    the page up without waiting: it joined the old cluster, A's, and was hidden under a
    story about something else for good. Now the update locks the URL it leaves too: the
    copy waits, then joins B's story."""
    st = pg_store
    a, b, c = (st.get_feed(f"https://{n}.example/feed") for n in ("a", "b", "c"))
    assert a is not None and b is not None and c is not None
    outage = "Resolver outage hits Europe for two hours"
    zone = "Registry signs every zone it runs"
    st.save_update(check(a.id), [StoryRecord(draft=draft("a1", outage, link=PAGE, h="ha"))])
    st.save_update(check(b.id), [StoryRecord(draft=draft("b1", zone, link=PAGE, h="hb"))])
    ((zone_id, first),) = sql(pg_url, "SELECT id, cluster_id FROM story WHERE key = 'b1'")
    assert first != zone_id  # in A's story's cluster, by the URL

    engine = create_engine(pg_url)
    errors: list[BaseException] = []

    def run(work: Callable[[], object]) -> threading.Thread:
        def target() -> None:
            try:
                work()
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=target)
        t.start()
        return t

    with closing(open_store(pg_url)) as other, engine.connect() as holder:
        # B's story's row held, so that A's update stops in the middle of its split
        holder.execute(text(f"SELECT id FROM story WHERE id = {zone_id} FOR UPDATE"))
        moved = StoryRecord(draft=draft("a1", outage, link=MOVED, h="ha"))
        update = run(lambda: st.save_update(check(a.id), [moved]))
        assert _until(lambda: _waiting(pg_url) >= 1)
        copy = StoryRecord(draft=draft("c1", zone, link=PAGE, h="hb"))
        store_copy = run(lambda: other.save_update(check(c.id), [copy]))
        _until(lambda: not store_copy.is_alive() or _waiting(pg_url) >= 2)
        holder.rollback()
        update.join(10)
        store_copy.join(10)
    engine.dispose()
    assert not errors
    assert sql(pg_url, "SELECT cluster_id FROM story WHERE key = 'c1'") == [(zone_id,)]
    assert sql(pg_url, "SELECT cluster_id FROM story WHERE key = 'b1'") == [(zone_id,)]


# --- a cluster's entry id once its first story is gone --------------------------------------


def _ids(app: App) -> list[str]:
    doc = json.loads(app.export(StoryQuery(limit=None), "json"))
    return [item["id"] for item in doc["items"]]


def _one_feed(server: LocalServer, path: str, link: str) -> str:
    item = _item(ZONE, text=" ".join(f"alpha{i}" for i in range(40)), link=link, guid=path)
    return server.route(path, body=_rss(item, f"https://{path.strip('/')}.example/"))


ZONE = "Registry signs every zone it runs"


@pytest.mark.parametrize("how", ["remove", "prune"])
def test_a_clusters_entry_id_outlives_its_first_story(
    any_app: App, server: LocalServer, clock: Clock, how: str
) -> None:
    """Feed A's story and feed B's copy of it (its link with tracking parameters) are one
    story, exported under A's link as id. A's feed is removed (or its story pruned): the
    cluster moved to B's copy, exported under B's link as written, so every reader
    showed the story again as new. It keeps the id the cluster had."""
    app = any_app
    url_a = _one_feed(server, "/a", PAGE)
    app.add_feed(url_a, discover=False)
    _poll(app, clock)
    app.add_feed(_one_feed(server, "/b", PAGE + "?utm_source=rss&utm_medium=feed"),
                 discover=False)  # fmt: skip
    _poll(app, clock)
    assert _ids(app) == [PAGE]
    if how == "remove":
        app.remove_feed(url_a)
    else:
        (first,) = [s for s in app.store.get_stories(app.store.story_ids()) if s.link == PAGE]
        server.route("/a", body=_rss("", "https://a.example/"))  # no longer listed
        _poll(app, clock)
        assert app.store.prune_stories(datetime(2030, 1, 1, tzinfo=UTC), 0) == 1
        assert app.store.get_stories([first.id]) == []
    assert _ids(app) == [PAGE]
    buf: list[str] = []
    app.export_to(buf.append, StoryQuery(limit=None), "json")
    assert [i["id"] for i in json.loads("".join(buf))["items"]] == [PAGE]


def test_a_copy_of_a_leaving_clusters_other_story_stored_meanwhile_joins_the_right_cluster(
    pg_store: SqlStore, pg_url: str
) -> None:
    """As above, but the second daemon's copy matches, by its text, a story that joined
    the cluster by its text (feed C's copy of B's story, at another URL): it is in the
    cluster only through B's story, which the update moves out. The update locked
    nothing of that story's, so the copy joined the old cluster meanwhile and was
    hidden under A's story. Now the update locks what every story of the cluster it
    splits is clustered by."""
    st = pg_store
    st.upsert_feeds([FeedSource(url="https://d.example/feed", name="d")], check(1).at)
    a, b, c, d = (st.get_feed(f"https://{n}.example/feed") for n in ("a", "b", "c", "d"))
    assert a is not None and b is not None and c is not None and d is not None
    outage = "Resolver outage hits Europe for two hours"
    zone = "Registry signs every zone it runs"
    fp = 0x5A5A_1234_F0F0_0F0F
    other = "https://mirror.example/registry-signs-every-zone"
    st.save_update(check(a.id), [StoryRecord(draft=draft("a1", outage, link=PAGE, h="ha"))])
    st.save_update(
        check(b.id), [StoryRecord(draft=draft("b1", zone, link=PAGE, h="hb"), fingerprint=fp)]
    )
    st.save_update(
        check(c.id),
        [StoryRecord(draft=draft("c1", zone, link=other, h="hc"), fingerprint=fp ^ 1)],
    )
    ((zone_id, first),) = sql(pg_url, "SELECT id, cluster_id FROM story WHERE key = 'b1'")
    assert sql(pg_url, "SELECT cluster_id FROM story WHERE key = 'c1'") == [(first,)]

    engine = create_engine(pg_url)
    errors: list[BaseException] = []

    def run(work: Callable[[], object]) -> threading.Thread:
        def target() -> None:
            try:
                work()
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=target)
        t.start()
        return t

    with closing(open_store(pg_url)) as second, engine.connect() as holder:
        holder.execute(text(f"SELECT id FROM story WHERE id = {zone_id} FOR UPDATE"))
        moved = StoryRecord(draft=draft("a1", outage, link=MOVED, h="ha"))
        update = run(lambda: st.save_update(check(a.id), [moved]))
        assert _until(lambda: _waiting(pg_url) >= 1)
        copy = StoryRecord(
            draft=draft("d1", zone, link="https://wire.example/zones", h="hd"),
            fingerprint=fp ^ 0x20,
        )
        store_copy = run(lambda: second.save_update(check(d.id), [copy]))
        _until(lambda: not store_copy.is_alive() or _waiting(pg_url) >= 2)
        holder.rollback()
        update.join(10)
        store_copy.join(10)
    engine.dispose()
    assert not errors
    assert sql(pg_url, "SELECT key, cluster_id FROM story WHERE key <> 'a1' ORDER BY key") == [
        ("b1", zone_id),
        ("c1", zone_id),
        ("d1", zone_id),
    ]
