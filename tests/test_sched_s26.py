"""Scheduling and fetch politeness, session 26: end to end with a real HTTP server on
127.0.0.1, real databases and the App's clock injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from httpserver import LocalServer

from aggregator.app import App, make_app
from aggregator.config import Settings


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


def _app(tmp_path: Path, clock: Clock, database_url: str | None = None, **kw: Any) -> App:
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        database_url=database_url,
        allow_private_addresses=True,
        timeout_s=5,
        **({"extract": False} | kw),
    )
    return make_app(s, now=clock)


RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
    b"<item><title>one</title><guid>g1</guid></item></channel></rss>"
)


def test_a_clock_stepped_back_leaves_no_feed_waiting_past_its_interval(
    tmp_path: Path, server: LocalServer, db_url: str
) -> None:
    """The clock stepping back (an NTP correction, a VM restored) left every feed's
    next check where the old clock put it: a feed polled daily waited the step on top
    of its day (3 days back: 4 days without a poll). A feed whose last check is ahead
    of the clock is due its wait after now, as measured when it was checked."""
    url = server.route("/daily.xml", body=RSS, headers={"Cache-Control": "max-age=86400"})
    clock = Clock()
    with _app(tmp_path, clock, db_url) as app:
        app.add_feed(url, discover=False)
        [r] = list(app.update_due())
        assert r.status == "ok" and r.next_check is not None
        assert r.next_check - clock.t >= timedelta(hours=21)
        clock.t -= timedelta(days=3)  # the clock steps back
        assert list(app.update_due()) == []  # just polled: not sooner than its wait
        clock.t += timedelta(hours=12)
        assert list(app.update_due()) == []
        clock.t += timedelta(hours=14, minutes=30)  # a day and more than 10 % since
        [again] = list(app.update_due())
        assert again.status == "unchanged"
        assert len([q for q in server.requests if q.path == "/daily.xml"]) == 2


def test_a_304_after_an_error_keeps_the_publishers_ttl(
    tmp_path: Path, server: LocalServer, db_url: str
) -> None:
    """A feed whose <ttl> asks for a day, answering 304 after one failed poll: the 304
    dropped the last interval (it held the <ttl>, which a 304 does not repeat) because
    the feed had an error, and the feed was then polled hourly, against the publisher's
    wish, for as long as it answered 304."""
    body = RSS.replace(b"<title>F</title>", b"<title>F</title><ttl>1440</ttl>")
    url = server.route("/ttl.xml", body=body, etag='"v1"')
    clock = Clock()
    with _app(tmp_path, clock, db_url) as app:
        app.add_feed(url, discover=False)
        [r] = list(app.update_due())
        assert r.status == "ok" and r.next_check is not None
        assert r.next_check - clock.t >= timedelta(hours=21)
        server.route("/ttl.xml", status=500, body=b"down")
        clock.t = r.next_check
        [r] = list(app.update_due())
        assert r.status == "error" and r.next_check is not None
        server.route("/ttl.xml", body=body, etag='"v1"')
        clock.t = r.next_check
        [r] = list(app.update_due())
        assert r.status == "not_modified" and r.next_check is not None
        assert r.next_check - clock.t >= timedelta(hours=21)


def _busy_rss(now: datetime, ttl: str = "") -> bytes:
    """Ten stories posted in the hours before ``now`` (an adaptive interval of half an
    hour), and ``ttl``, the channel's <ttl> element if any."""
    items = "".join(
        f"<item><title>s{i}</title><guid>s{i}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(hours=i + 1))}</pubDate></item>"
        for i in range(10)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>{ttl}'
        f"{items}</channel></rss>"
    ).encode()


def test_a_failing_feed_is_not_polled_sooner_than_a_healthy_one(
    tmp_path: Path, server: LocalServer, db_url: str
) -> None:
    """A feed whose publisher asks for a day (<ttl>1440</ttl>) but posts often: the
    first error backed off from the posting rate alone (half an hour), so a server in
    trouble was asked every 30 minutes, then 1 h, 2 h..., where a healthy poll waited a
    day. The backoff starts from the interval the feed last had."""
    clock = Clock()
    url = server.route("/busy.xml", body=_busy_rss(clock.t, "<ttl>1440</ttl>"))
    with _app(tmp_path, clock, db_url) as app:
        app.add_feed(url, discover=False)
        [r] = list(app.update_due())
        assert r.status == "ok" and r.next_check is not None
        assert r.next_check - clock.t >= timedelta(hours=21)
        server.route("/busy.xml", status=500, body=b"down")
        clock.t = r.next_check
        [r] = list(app.update_due())
        assert r.status == "error" and r.next_check is not None
        assert r.next_check - clock.t >= timedelta(hours=21)
