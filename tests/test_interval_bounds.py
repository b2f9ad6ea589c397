"""A feeds.yaml `interval` outside the schedule's bounds (5 minutes to 24 hours by
default) is polled at the bound, and the sync says so: it was clamped silently, so
`interval: 1m` quietly meant every 5 minutes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

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
