"""Real-world feed quirks through the whole poll: a local server, the real App, the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from httpserver import LocalServer
from test_update import Clock, app, clock  # noqa: F401  (app, clock: fixtures)

from aggregator.app import App
from aggregator.parse import parse_feed
from aggregator.types import StoryQuery


def _rss(items: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>http://example.org/</link>{items}</channel></rss>"
    ).encode()


def test_an_rfc822_date_with_a_day_name_and_no_zone_is_read_as_utc(
    app: App,  # noqa: F811
    server: LocalServer,
    clock: Clock,  # noqa: F811
) -> None:
    """``Fri, 27 Nov 2026 10:00:00`` (no zone) lost its date in RSS and Atom: feedparser
    took the day name for the missing zone. Without the day name, and in JSON Feed, the
    same date was read as UTC."""
    dates = {
        "a": "Fri, 27 Nov 2026 10:00:00",
        "b": "Friday, 27 Nov 2026 10:00",
        "c": "27 Nov 2026 10:00:00",  # read so before
        "d": "Fri, 27 Nov 2026 10:00:00 +0200",  # zoned dates are unchanged
        "e": "Fri, 27 Nov 2026 10:00:00 CEST",
    }
    items = "".join(
        f"<item><title>{k}</title><link>http://example.org/{k}</link><pubDate>{v}</pubDate></item>"
        for k, v in dates.items()
    )
    expected = {
        "a": datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
        "b": datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
        "c": datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
        "d": datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
        "e": datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
    }
    app.add_feed(server.route("/rss", body=_rss(items)), discover=False)
    (result,) = list(app.update_due(all_feeds=True))
    assert result.status == "ok" and result.new == len(dates)
    stored = {s.title: s.published for s in app.stories(StoryQuery(limit=None))}
    assert stored == expected

    # the fast path, feedparser (a document it cannot take) and JSON Feed agree
    now = clock()
    fast = parse_feed(_rss(items), "http://example.org/feed", now=now)
    slow = parse_feed(_rss(items), "http://example.org/feed", fast=False, now=now)
    broken = parse_feed(_rss(items.replace("<title>a", "<title>a &")), "http://x/", now=now)
    assert fast == slow
    assert [e.published for e in fast.entries] == list(expected.values())
    assert [e.published for e in broken.entries] == list(expected.values())
    json_body = json.dumps({"items": [{"id": "1", "date_published": dates["a"]}]}).encode()
    (entry,) = parse_feed(json_body, "http://example.org/feed.json", now=now).entries
    assert entry.published == expected["a"]
