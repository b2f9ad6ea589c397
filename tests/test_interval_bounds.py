"""A feeds.yaml `interval` outside the schedule's bounds (5 minutes to 24 hours by
default) is polled at the bound, and the sync says so: it was clamped silently, so
`interval: 1m` quietly meant every 5 minutes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aggregator import schedule
from aggregator.app import make_app
from aggregator.config import Settings


def test_an_interval_outside_the_bounds_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        "feeds:\n"
        "  - url: https://a.example/feed\n    name: Often\n    interval: 1m\n"
        "  - url: https://b.example/feed\n    interval: 2d\n"
        "  - url: https://c.example/feed\n    interval: 30\n",
        encoding="utf-8",
    )
    with make_app(Settings.from_env({}, data_dir=tmp_path / "data")) as app:
        with caplog.at_level(logging.WARNING, logger="aggregator.app"):
            assert app.sync_feeds(feeds) == (3, 0)
        lines = [r.getMessage() for r in caplog.records]
        assert lines == [
            f"{feeds}: feed Often: interval 1 min is below the schedule's floor, so it is "
            "polled every 5 min",
            f"{feeds}: feed https://b.example/feed: interval 2 days is above the schedule's "
            "ceiling, so it is polled every 1 day",
        ]
        by_url = {f.url: f for f in app.feeds()}
        assert by_url["https://c.example/feed"].interval is not None


def test_an_interval_beyond_what_the_column_holds_is_kept_at_the_bound(
    tmp_path: Path, db_url: str
) -> None:
    # interval_s is PostgreSQL's 32-bit INTEGER: `interval: 100000d` (a typo of 1000d, or
    # 190 years of minutes) failed the whole sync there with "integer out of range"; and a
    # fraction of a second was stored as 0, read back as no interval: adaptive, where the
    # warning said every 5 min
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        "feeds:\n"
        "  - url: https://a.example/feed\n    interval: 100000d\n"
        "  - url: https://b.example/feed\n    interval: 99999999999\n"
        "  - url: https://c.example/feed\n    interval: 0.001\n",
        encoding="utf-8",
    )
    s = Settings.from_env({}, data_dir=tmp_path / "data", database_url=db_url)
    with make_app(s) as app:
        assert app.sync_feeds(feeds) == (3, 0)
        by_url = {f.url: f.interval for f in app.feeds()}
        assert all(i is not None for i in by_url.values()), by_url
        policy = app.policy
        for url, bound in [
            ("https://a.example/feed", policy.max_interval),
            ("https://b.example/feed", policy.max_interval),
            ("https://c.example/feed", policy.min_interval),
        ]:
            got = schedule.adaptive_interval([], app.now(), policy, override=by_url[url])
            assert got == bound, url
        assert app.sync_feeds(feeds) == (0, 0)  # stored as read: nothing changed
