"""A user's change to a feed while a poll has it in flight is not undone by the poll's
outcome. The feed's answer is held by the local server until the test has made the
change through a second App (as another `aggregator` command would, on the same SQLite
file or PostgreSQL database); then the poll stores its outcome and the change must still
hold: a shorter feeds.yaml ``interval`` brings the next check forward as the sync does
when no poll is running, `feeds enable` of a failing feed keeps it cleared and due, and a
new password written into feeds.yaml goes with the feed when the poll adopts a redirect."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clockedapp import Clock
from httpserver import LocalServer, Request

from aggregator.app import App, make_app
from aggregator.config import Settings

RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
    b"<item><title>one</title><guid>g1</guid></item></channel></rss>"
)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))


def _app(tmp_path: Path, clock: Clock, database_url: str) -> App:
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        database_url=database_url,
        feeds_path=tmp_path / "feeds.yaml",
        allow_private_addresses=True,
        timeout_s=10,
        extract=False,
        workers=1,
    )
    return make_app(s, now=clock)


class Meanwhile:
    """A route body that, once armed, runs ``change`` (the user's command) before the
    answer is sent: the poll has claimed and is fetching the feed all along."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.change: Callable[[], Any] | None = None
        self.errors: list[BaseException] = []
        self.ran = 0

    def __call__(self, request: Request) -> bytes:
        change, self.change = self.change, None
        if change is not None:
            try:
                change()
                self.ran += 1
            except BaseException as e:  # reported by the test, not lost in the server
                self.errors.append(e)
        return self.body


def test_an_interval_shortened_during_the_poll_brings_the_next_check_forward(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    meanwhile = Meanwhile(RSS)
    url = server.route("/f.xml", body=meanwhile)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {url}\n    interval: 24h\n")
    with _app(tmp_path, clock, db_url) as app, _app(tmp_path, clock, db_url) as user:
        app.sync_feeds()

        def shorten() -> None:
            feeds.write_text(f"feeds:\n  - url: {url}\n    interval: 30m\n")
            user.sync_feeds()

        meanwhile.change = shorten
        (result,) = list(app.update_due())
        assert meanwhile.errors == [] and meanwhile.ran == 1
        assert result.status == "ok"
        feed = app.store.get_feed(url)
        assert feed.interval == timedelta(minutes=30)
        # the 24 h the poll read at its claim gave ~a day; the user's 30 min apply
        assert feed.next_check == clock.t + timedelta(minutes=30)
        # and so they do when the sync comes after the poll (the rule matched)
        feeds.write_text(f"feeds:\n  - url: {url}\n    interval: 10m\n")
        user.sync_feeds()
        assert app.store.get_feed(url).next_check == clock.t + timedelta(minutes=10)


def test_an_interval_lengthened_during_the_poll_changes_nothing_the_poll_wrote(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """As when the sync comes after the poll: a longer interval applies from the next
    poll on; the next check the poll computed stands."""
    meanwhile = Meanwhile(RSS)
    url = server.route("/f.xml", body=meanwhile)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {url}\n    interval: 30m\n")
    with _app(tmp_path, clock, db_url) as app, _app(tmp_path, clock, db_url) as user:
        app.sync_feeds()

        def lengthen() -> None:
            feeds.write_text(f"feeds:\n  - url: {url}\n    interval: 24h\n")
            user.sync_feeds()

        meanwhile.change = lengthen
        (result,) = list(app.update_due())
        assert meanwhile.errors == [] and meanwhile.ran == 1
        feed = app.store.get_feed(url)
        assert feed.interval == timedelta(hours=24)
        assert result.next_check == feed.next_check
        assert clock.t + timedelta(minutes=27) <= feed.next_check <= clock.t + timedelta(minutes=33)


def test_feeds_enable_during_the_poll_is_not_undone_by_its_error(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    meanwhile = Meanwhile(b"broken")
    url = server.route("/f.xml", status=500, body=meanwhile)
    with _app(tmp_path, clock, db_url) as app, _app(tmp_path, clock, db_url) as user:
        app.add_feed(url, discover=False)
        for _ in range(3):  # failing: three errors, backing off
            list(app.update_due(all_feeds=True))
            clock.t += timedelta(hours=1)
        failing = app.store.get_feed(url)
        assert failing.status == "error" and failing.error_count == 3
        assert failing.first_error_at is not None

        def enable() -> None:
            user.enable_feed(url)

        meanwhile.change = enable
        clock.t += timedelta(days=30)  # and this error would have disabled it
        (result,) = list(app.update_due(all_feeds=True))
        assert meanwhile.errors == [] and meanwhile.ran == 1
        assert result.status == "error"  # the poll's own outcome, as it was fetched
        feed = app.store.get_feed(url)
        # as `feeds enable` left it: on, its error count cleared, due at once
        assert feed.status == "active" and feed.enabled
        assert feed.error_count == 0 and feed.first_error_at is None
        assert feed.next_check is not None and feed.next_check <= clock.t
        assert feed.lease_owner is None  # released all the same
        assert feed.last_check == clock.t  # and checked (its fetch log says how)
        assert [e.outcome for e in app.store.fetch_log(feed.id, limit=1)] == ["error"]
        # the next poll counts from there: one error, not the fourth
        (again,) = list(app.update_due())
        assert again.status == "error"
        after = app.store.get_feed(url)
        assert after.error_count == 1 and after.first_error_at == clock.t


def test_a_new_password_written_during_the_poll_that_adopts_a_redirect_is_kept(
    tmp_path: Path, server: LocalServer, clock: Clock, db_url: str
) -> None:
    """The poll that adopts a permanent redirect moves the feed to the target with the
    login it fetched it with; a new password written into feeds.yaml meanwhile (the same
    subscription, respelled by the sync) was lost, the feed polled with the old one."""
    meanwhile = Meanwhile(RSS)
    server.route("/new.xml", body=meanwhile)
    server.redirect("/old.xml", "/new.xml", status=301)
    host = f"127.0.0.1:{server.port}"
    old, new = f"http://me:old@{host}/old.xml", f"http://me:new@{host}/old.xml"
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {old}\n")
    with _app(tmp_path, clock, db_url) as app, _app(tmp_path, clock, db_url) as user:
        app.sync_feeds()
        for _ in range(2):  # the redirect seen twice, over more than a day
            list(app.update_due(all_feeds=True))
            clock.t += timedelta(hours=13)
        assert app.store.get_feed(old).redirect_count == 2

        def new_password() -> None:
            feeds.write_text(f"feeds:\n  - url: {new}\n")
            assert user.sync_feeds() == (0, 1)

        meanwhile.change = new_password
        list(app.update_due(all_feeds=True))  # the third: adopted
        assert meanwhile.errors == [] and meanwhile.ran == 1
        feed = app.store.get_feed(new)
        assert feed.url == f"http://me:new@{host}/new.xml"
        assert feed.source_url == new
        # and the next sync finds it as it is, by the URL it was subscribed under
        assert user.sync_feeds() == (0, 0)
        # and the next poll asks the new URL with the new password
        list(app.update_due(all_feeds=True))
        sent = server.requests_for("/new.xml")[-1].headers["authorization"]
        assert sent == "Basic " + base64.b64encode(b"me:new").decode()
