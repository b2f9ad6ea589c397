"""Several daemons (and the user's commands) sharing one PostgreSQL store: what an
operator running them meets. Real servers and real concurrent connections; nothing of
the project is mocked."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpserver import LocalServer, Request
from sqlalchemy import create_engine, text
from test_update import Clock

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.store import open_store
from aggregator.store.sql import SqlStore
from aggregator.types import FeedSource, Prediction, StoryDraft, StoryRecord, TopicScore

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.begin() as c:
            result = c.execute(text(statement))
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        engine.dispose()


def rss(channel: str, *titles: str) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>http://example.org/{channel}/{i}</link>"
        f"<guid>{channel}-{i}</guid><description>Story {i} of {channel}.</description></item>"
        for i, t in enumerate(titles)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{channel}</title>'
        f"<link>http://example.org/{channel}/</link>{items}</channel></rss>"
    ).encode()


def wait_until(what: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def in_threads(n: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` on ``n`` threads released at once; returns what they raised."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return errors


# --- daemons starting together --------------------------------------------------------


def test_daemons_started_together_on_a_new_database_all_start(pg_url: str) -> None:
    # Every daemon starts by syncing the taxonomy's topics and feeds.yaml into the store.
    # Several started at once (a deploy restarting them all, a new feed in the file)
    # each read "not there yet" and inserted it: all but one died at start with
    # "constraint violated: duplicate key value violates unique constraint
    # topic_name_key" (or feed_url_key); `feeds add` racing a daemon's sync likewise.
    open_store(pg_url).close()  # migrated (migrations take a lock of their own)
    stores = [open_store(pg_url) for _ in range(4)]
    topics = [(f"Topic {i}", f"about {i}") for i in range(30)]
    sources = [FeedSource(url=f"http://feeds{i}.example/rss") for i in range(40)]
    try:
        for _ in range(3):
            sql(pg_url, "DELETE FROM feed")
            sql(pg_url, "DELETE FROM topic")
            for s in stores:
                s._topic_ids.clear()

            def start(i: int) -> None:
                stores[i].sync_topics(topics)
                if i == 0:  # the user's `feeds add` of one of the file's feeds
                    stores[i].add_feed(sources[7], T0)
                stores[i].upsert_feeds(sources, T0)

            errors = in_threads(len(stores), start)
            assert errors == [], [str(e) for e in errors]
            assert sql(pg_url, "SELECT count(*) FROM topic") == [(30,)]
            assert sql(pg_url, "SELECT count(*) FROM feed") == [(40,)]
    finally:
        for s in stores:
            s.close()


# --- a lease outliving the wait for a slow host ------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


def settings(tmp_path: Path, url: str) -> Settings:
    return Settings.from_env(
        {},
        data_dir=tmp_path / "data",
        database_url=url,
        allow_private_addresses=True,
        extract=False,
        timeout_s=10,
        per_host=1,
    )


def test_a_feed_waiting_behind_a_slow_host_is_not_polled_by_a_second_daemon(
    tmp_path: Path, pg_url: str, server: LocalServer, clock: Clock
) -> None:
    # A poll leases its feeds (15 minutes) and then queues them behind their host (2
    # requests at a time): a daemon with a few hundred feeds on one slow host kept them
    # queued longer than their leases, and a second daemon took the ones still waiting
    # and polled them at the same time as the first. The poll now renews the leases of
    # the feeds it still holds.
    answer = threading.Event()

    def slow(_: Request) -> bytes:
        answer.wait(20)
        return rss("slow", "Slow story")

    first = server.route("/slow.xml", body=slow)
    queued = server.route("/queued.xml", body=rss("queued", "Queued story"))
    s = settings(tmp_path, pg_url)
    with make_app(s, now=clock) as a, make_app(s, now=clock) as b:
        a.add_feed(first, discover=False)
        a.add_feed(queued, discover=False)
        out: list[Any] = []

        def poll() -> None:
            try:
                out.extend(a.update_due())
            except BaseException as e:
                out.append(e)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            assert wait_until(lambda: server.requests_for("/slow.xml"))
            # the other feed waits for the host; time passes (the poll's own loop runs)
            for _ in range(3):
                clock.advance(minutes=7)
                time.sleep(0.5)
            assert clock.t - T0 > timedelta(minutes=15)
            stolen = list(b.update_due())
        finally:
            answer.set()
            poller.join(timeout=30)
        assert not poller.is_alive()
        assert stolen == []
        assert not [r for r in out if isinstance(r, BaseException)], out
        assert sorted(r.url for r in out) == sorted([first, queued])
        assert len(server.requests_for("/queued.xml")) == 1
        assert len(server.requests_for("/slow.xml")) == 1
        assert sql(pg_url, "SELECT count(*) FROM feed WHERE lease_owner IS NOT NULL") == [(0,)]


# --- train re-tagging while a feed is removed or stories pruned ----------------------------


def draft(key: str, title: str) -> StoryDraft:
    return StoryDraft(
        key=key,
        guid=key,
        link=f"http://example.org/{key}",
        canonical_url=f"http://example.org/{key}",
        title=title,
        author=None,
        published=T0,
        updated=None,
        summary=f"{title} in detail.",
        content=None,
        categories=(),
        content_hash=key,
    )


@pytest.fixture
def store(pg_url: str) -> Iterator[SqlStore]:
    st = open_store(pg_url)
    assert isinstance(st, SqlStore)
    st.sync_topics([("DNS", None), ("Security", None)])
    try:
        yield st
    finally:
        st.close()


def test_retagging_a_story_deleted_meanwhile_skips_it(store: SqlStore, pg_url: str) -> None:
    # `train` re-tags every stored story: it reads a batch, classifies it (seconds), then
    # writes the new topics. A `feeds remove` (or the daemon's daily prune) deleting one
    # of those stories in between made the write fail on the story's foreign key, and
    # `train` ended with "constraint violated" after minutes of fitting.
    from test_store import check

    kept_feed, _ = store.add_feed(FeedSource(url="http://kept.example/rss"), T0)
    gone_feed, _ = store.add_feed(FeedSource(url="http://gone.example/rss"), T0)
    for feed, name in ((kept_feed, "kept"), (gone_feed, "gone")):
        store.save_update(
            check(feed.id),
            [StoryRecord(draft=draft(f"{name}-{i}", f"{name} {i}")) for i in range(3)],
        )
    ids = store.story_ids()
    stories = store.get_stories(ids)  # what retag read
    with closing(open_store(pg_url)) as other:
        other.remove_feed(gone_feed.url, T0)  # another process, meanwhile
    prediction = Prediction(topics=(TopicScore(topic="DNS", score=0.9),), model_version="retrained")
    changed = store.set_predictions([(st.id, prediction) for st in stories])
    assert changed == 3
    assert sql(pg_url, "SELECT count(*) FROM story_topic") == [(3,)]
    assert sql(pg_url, "SELECT DISTINCT model_version FROM story") == [("retrained",)]
