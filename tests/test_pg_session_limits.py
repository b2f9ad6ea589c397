"""PostgreSQL sessions of ours have a lock_timeout (60 s) and an
idle_in_transaction_session_timeout (5 min) where the server, the role or the URL sets
none. Before, a lock held by a stuck session (a `psql` left mid-transaction, a frozen
process) held the daemon's write, hence the daemon, for as long as it lasted."""

from __future__ import annotations

import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from httpserver import LocalServer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from test_label_archive import T1
from test_store import check, draft

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.errors import StoreError, StoreUnavailableError
from aggregator.store import open_store
from aggregator.types import FeedSource, StoryRecord

pytestmark = pytest.mark.postgres


def _with_options(url: str, options: str) -> str:
    return make_url(url).update_query_dict({"options": options}).render_as_string(False)


def _setting(store: object, name: str) -> str:
    with store.engine.connect() as c:  # type: ignore[attr-defined]
        return str(c.execute(text(f"SHOW {name}")).scalar())


def test_our_sessions_bound_lock_waits_and_idle_transactions(pg_url: str) -> None:
    with closing(open_store(pg_url)) as st:
        assert _setting(st, "lock_timeout") == "1min"
        assert _setting(st, "idle_in_transaction_session_timeout") == "5min"
    # what the URL (or the server, or the role) sets is kept
    with closing(open_store(_with_options(pg_url, "-c lock_timeout=1500"))) as st:
        assert _setting(st, "lock_timeout") == "1500ms"
        assert _setting(st, "idle_in_transaction_session_timeout") == "5min"


def test_a_write_behind_a_stuck_lock_fails_instead_of_waiting_for_ever(pg_url: str) -> None:
    url = _with_options(pg_url, "-c lock_timeout=1000")
    other = create_engine(pg_url)
    try:
        with closing(open_store(url)) as st:
            feed, _ = st.add_feed(FeedSource(url="https://a.example/feed"), T1)
            with other.begin() as c:  # a session stuck mid-transaction on the feed's row
                c.execute(text("SELECT id FROM feed WHERE id = :i FOR UPDATE"), {"i": feed.id})
                t0 = time.monotonic()
                with pytest.raises(StoreError, match="lock timeout"):
                    st.save_update(check(feed.id), [StoryRecord(draft=draft("k", "A story"))])
                assert time.monotonic() - t0 < 30
            # the lock gone, the same write goes through
            assert (
                len(st.save_update(check(feed.id), [StoryRecord(draft=draft("k", "A"))]).new) == 1
            )
    finally:
        other.dispose()


def test_waiting_for_another_processs_migration_is_not_limited(empty_pg_url: str) -> None:
    url = _with_options(empty_pg_url, "-c lock_timeout=500")
    other = create_engine(empty_pg_url)
    opened: list[object] = []
    failed: list[BaseException] = []

    def open_it() -> None:
        try:
            opened.append(open_store(url))
        except BaseException as e:
            failed.append(e)

    try:
        with other.begin() as c:  # another process migrating this (empty) database
            c.execute(text("SELECT pg_advisory_xact_lock(7261001)"))
            opener = threading.Thread(target=open_it)
            opener.start()
            opener.join(2.0)  # four lock_timeouts
            assert opener.is_alive() and not failed
        opener.join(60)
        assert not failed and len(opened) == 1
        st = opened[0]
        assert _setting(st, "lock_timeout") == "500ms"  # the session's own limit again
        st.close()  # type: ignore[attr-defined]
    finally:
        other.dispose()


def test_a_database_that_cannot_answer_is_not_blamed_on_the_feed_being_written(
    pg_url: str, tmp_path: Path, server: LocalServer
) -> None:
    """The story table locked by another session past our lock_timeout: the feed whose
    stories were being written used to get the error ("could not store", an error
    count, a backoff, a "failing" warning) although nothing was wrong with it. The poll
    now ends as database trouble, and the feed is polled again as it was."""
    url = server.route(
        "/f.xml",
        body=b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><title>One</title><guid>g1</guid></item></channel></rss>",
    )
    settings = Settings.from_env(
        {},
        data_dir=tmp_path,
        database_url=_with_options(pg_url, "-c lock_timeout=1000"),
        allow_private_addresses=True,
        workers=1,
        extract=False,
    )
    other = create_engine(pg_url)
    try:
        with make_app(settings) as app:
            app.add_feed(url, discover=False)
            with other.begin() as c:  # another session holds the story table
                c.execute(text("LOCK TABLE story IN EXCLUSIVE MODE"))
                with pytest.raises(StoreUnavailableError, match="lock timeout"):
                    list(app.update_due(all_feeds=True))
            (feed,) = app.feeds()
            assert (feed.status, feed.error_count, feed.last_error) == ("active", 0, None)
            (res,) = app.update_due(all_feeds=True)  # the lock gone: stored as usual
            assert (res.status, res.new) == ("ok", 1)
    finally:
        other.dispose()
