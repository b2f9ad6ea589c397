"""The store's leases, clock and status (session 27): a poll's late write, a clock
stepped back, what `status` counts as due. SQLite and PostgreSQL, real servers; nothing
of the project is mocked."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from httpserver import LocalServer, Request
from test_pg_daemons_audit import rss, wait_until
from test_store import T0, check, store  # noqa: F401  (store: fixture)
from test_update import Clock

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.store import open_store
from aggregator.store.sql import SqlStore

LEASE = timedelta(minutes=15)


# --- a poll's write after its lease lapsed -------------------------------------------------


def test_a_late_write_leaves_the_lease_another_poll_took_over(store: SqlStore) -> None:  # noqa: F811
    # Poll "a" leased the feed; its lease lapsed (a hung fetch, a stopped VM) and poll
    # "b" took the feed over. "a"'s outcome, written late, cleared "b"'s lease: the
    # feed was free for a third poll while "b" still fetched it.
    fid = store.due_feed_ids(T0)[0]
    assert store.claim_due(T0, owner="h:1:a", lease=LEASE, ids=[fid])
    later = T0 + LEASE + timedelta(minutes=1)
    assert store.claim_due(later, owner="h:2:b", lease=LEASE, ids=[fid])
    store.save_checks([check(fid, at=later, claimed_at=T0, claimed_by="h:1:a")])
    assert store.get_feed(fid).lease_owner == "h:2:b"
    store.save_update(check(fid, at=later, claimed_at=T0, claimed_by="h:1:a"), [])
    feed = store.get_feed(fid)
    assert (feed.lease_owner, feed.lease_until) == ("h:2:b", later + LEASE)
    # "b"'s own write releases it
    store.save_checks([check(fid, at=later, claimed_at=later, claimed_by="h:2:b")])
    feed = store.get_feed(fid)
    assert (feed.lease_owner, feed.lease_until) == (None, None)


def test_a_poll_whose_lease_was_taken_over_leaves_the_new_lease(
    tmp_path: Path, db_url: str, server: LocalServer
) -> None:
    answer = threading.Event()

    def slow(_: Request) -> bytes:
        answer.wait(10)
        return rss("slow", "Slow story")

    url = server.route("/slow.xml", body=slow)
    clock = Clock()
    s = Settings.from_env(
        {},
        data_dir=tmp_path / "data",
        database_url=db_url,
        allow_private_addresses=True,
        extract=False,
        timeout_s=10,
    )
    with make_app(s, now=clock) as app:
        feed = app.add_feed(url, discover=False).feed
        out: list[Any] = []
        poller = threading.Thread(target=lambda: out.extend(app.update_due()))
        poller.start()
        try:
            assert wait_until(lambda: server.requests_for("/slow.xml"))
            # another daemon, finding the lease over, takes the feed
            other = open_store(db_url)
            try:
                later = clock.t + LEASE + timedelta(minutes=1)
                assert other.claim_due(later, owner="elsewhere:7:b", lease=LEASE, ids=[feed.id])
            finally:
                other.close()
        finally:
            answer.set()
            poller.join(timeout=10)
        assert not poller.is_alive() and [r.new for r in out] == [1]
        assert app.store.get_feed(feed.id).lease_owner == "elsewhere:7:b"
