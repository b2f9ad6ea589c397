"""The store's leases, clock and status (session 27): a poll's late write, a clock
stepped back, what `status` counts as due. SQLite and PostgreSQL, real servers; nothing
of the project is mocked."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from httpserver import LocalServer, Request
from sqlalchemy import create_engine, text
from test_learning_cli import env, run  # noqa: F401  (env: fixture)
from test_pg_daemons_audit import rss, wait_until
from test_store import T0, check, store  # noqa: F401  (store: fixture)
from test_update import Clock

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.store import open_store
from aggregator.store.sql import SqlStore
from aggregator.types import FeedSource

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


# --- `status`: what is due now -------------------------------------------------------------


def test_status_due_now_is_what_a_poll_would_claim(store: SqlStore) -> None:  # noqa: F811
    # "due now" counted the feeds a poll in progress holds, which `status` shows beside
    # it as "polling now": 2 due and 2 polled read as 4 waiting, and no poll could claim
    # any of them. It is now what a poll would take: due, not leased (a lapsed lease is
    # no lease), enabled and neither gone nor disabled.
    store.upsert_feeds([FeedSource(url=f"https://{h}.example/feed") for h in "cdef"], T0)
    a, b, c, d, e, f = store.due_feed_ids(T0)
    assert store.claim_due(T0, owner="h:1:x", lease=LEASE, ids=[a, b])
    lapsed = T0 - LEASE - timedelta(minutes=1)
    assert store.claim_due(lapsed, owner="h:2:y", lease=LEASE, ids=[c], include_not_due=True)
    store.save_checks([check(d, outcome="error", status="gone", next_check=T0)])
    store.save_checks([check(e, outcome="error", status="disabled", next_check=T0)])
    s = store.summary(T0 + timedelta(minutes=1))
    assert s.leases == {"h:1:x": 2}
    assert store.due_feed_ids(T0 + timedelta(minutes=1)) == [c, f]
    assert s.due_now == 2


# --- the clock stepped back ------------------------------------------------------------------


def test_a_clock_stepped_back_moves_when_a_feed_began_failing(store: SqlStore) -> None:  # noqa: F811
    # A feed failing since a day before its last check, the clock then stepped back 3
    # days: its first error stayed where the old clock put it, 2 days ahead of the
    # clock, so the 30-day rule (now - first_error_at) counted 3 days short and `feeds
    # show` said "failing since" a time to come. It moves with the last check; as does
    # when a permanent redirect was first seen (adopted after a span of polls).
    fid = store.due_feed_ids(T0)[0]
    failing = check(
        fid,
        outcome="error",
        status="error",
        error_count=4,
        first_error_at=T0 - timedelta(days=1),
        last_error="HTTP 503",
        success=False,
        redirect_url="https://a.example/moved",
        redirect_count=2,
        redirect_first_seen=T0 - timedelta(hours=5),
    )
    store.save_checks([failing])
    now = T0 - timedelta(days=3)
    assert store.rebase_clock(now) == 2  # and the feed never checked
    feed = store.get_feed(fid)
    assert feed.last_check == now
    assert feed.first_error_at == now - timedelta(days=1)
    assert feed.redirect_first_seen == now - timedelta(hours=5)
    assert store.rebase_clock(now) == 0


def test_a_clock_stepped_back_moves_the_leases_the_old_clock_gave(store: SqlStore) -> None:  # noqa: F811
    # A lease the old clock gave ends, by the clock stepped back 3 days, 3 days and 15
    # minutes from now: a poll that died holding it (on another host, whose pid this one
    # cannot ask about) kept the feed from every poll for 3 days. It moves back by the
    # step; a lease given since, by the clock as it is, stays.
    store.upsert_feeds([FeedSource(url="https://c.example/feed")], T0)
    checked, dead, fresh = store.due_feed_ids(T0)
    store.save_checks([check(checked, at=T0)])
    assert store.claim_due(T0, owner="elsewhere:9:dead", lease=LEASE, ids=[dead])
    now = T0 - timedelta(days=3)
    assert store.claim_due(now, owner="here:1:new", lease=LEASE, ids=[fresh], include_not_due=True)
    assert store.rebase_clock(now) == 3  # and the two never checked
    held = {f.id: (f.lease_owner, f.lease_until) for f in store.feeds()}
    assert held[dead] == ("elsewhere:9:dead", now + LEASE)
    assert held[fresh] == ("here:1:new", now + LEASE)
    assert held[checked] == (None, None)
    assert dead in store.due_feed_ids(now + LEASE + timedelta(seconds=1), include_not_due=True)


def test_a_poll_renews_its_leases_at_once_when_the_clock_steps_back(
    tmp_path: Path, db_url: str, server: LocalServer
) -> None:
    # The poll renewed its leases when RENEW_EVERY had passed since the last renewal,
    # by the clock: stepped back 3 days, not for 3 days, and a lease moved back by the
    # step (rebase_clock, another process's poll) lapsed while the poll still held it.
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
            assert app.store.get_feed(feed.id).lease_until == clock.t + LEASE
            clock.t -= timedelta(days=3)
            assert wait_until(
                lambda: app.store.get_feed(feed.id).lease_until == clock.t + LEASE, timeout=3
            )
        finally:
            answer.set()
            poller.join(timeout=10)
        assert [r.new for r in out] == [1]


@pytest.mark.postgres
def test_two_polls_rebasing_the_clock_at_once_move_the_host_holds_once(pg_url: str) -> None:
    # Two daemons starting a poll after the clock stepped back both read the feeds to
    # move; the second's moves found them moved (each is guarded by its last check)
    # but it moved the host holds back by the step again: a day back, a host's 2-hour
    # hold ended at once, and the host was asked again. Holds move by the feeds a call
    # itself moved.
    first, second = open_store(pg_url), open_store(pg_url)
    engine = create_engine(pg_url)
    try:
        first.upsert_feeds([FeedSource(url="https://a.example/feed")], T0)
        (fid,) = first.due_feed_ids(T0)
        first.save_checks([check(fid, at=T0)])
        first.hold_host("b.example", T0 + timedelta(hours=2), now=T0)
        now = T0 - timedelta(days=1)
        moved: list[int] = []
        with engine.connect() as c:
            c.execute(text("SELECT id FROM feed FOR UPDATE"))  # both wait to write
            threads = [
                threading.Thread(target=lambda st=st: moved.append(st.rebase_clock(now)))
                for st in (first, second)
            ]
            for t in threads:
                t.start()
            assert wait_until(
                lambda: (
                    c.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        )
                    ).scalar()
                    == 2
                )
            )
            c.rollback()
        for t in threads:
            t.join(timeout=10)
        assert sorted(moved) == [0, 1]
        assert first.held_hosts(now) == {"b.example": now + timedelta(hours=2)}
    finally:
        first.close()
        second.close()
        engine.dispose()


def test_a_clock_stepped_back_leaves_no_feed_added_before_it_waiting(store: SqlStore) -> None:  # noqa: F811
    # A feed added (due at once) just before the clock stepped back 3 days had never
    # been checked, so rebase_clock passed it over: its first poll waited the 3 days.
    # It moves back by the step the checked feeds show, as the host holds do.
    checked, added = store.due_feed_ids(T0)
    store.save_checks([check(checked, at=T0)])
    now = T0 - timedelta(days=3)
    assert added not in store.due_feed_ids(now)
    assert store.rebase_clock(now) == 2
    assert store.due_feed_ids(now) == [added]
    assert store.rebase_clock(now) == 0


# --- `feeds show --format json`: the lease --------------------------------------------------


def test_feeds_show_json_gives_no_lease_once_it_has_lapsed(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The table said nothing of a lease that had run out (its poller died an hour ago),
    # but the JSON gave it as the poller holding the feed: a script waiting for the
    # feed to be free waited for a lease no one holds. It is null, as in the table.
    with make_app(Settings.from_env({}, data_dir=env / "data")) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://news.example/feed"), app.now())
        lapsed = app.now() - timedelta(hours=1)
        owner = "elsewhere.example:41:daemon"
        assert app.store.claim_due(
            lapsed, owner=owner, lease=LEASE, include_not_due=True, ids=[feed.id]
        )
    code, out, err = run(capsys, "feeds", "show", str(feed.id), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["lease"] is None
    with make_app(Settings.from_env({}, data_dir=env / "data")) as app:
        now = app.now()
        assert app.store.claim_due(now, owner=owner, lease=LEASE, ids=[feed.id])
    code, out, err = run(capsys, "feeds", "show", str(feed.id), "--format", "json")
    assert json.loads(out)["lease"]["owner"] == owner
