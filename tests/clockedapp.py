"""The App the dedupe and export tests poll through: a fixed clock the test moves
(2026-11-20 12:00 UTC), no extraction, one worker process, a 3 s timeout, loopback
feeds allowed. A test module uses the fixtures by importing them and naming them in
its ``__all__`` (``from clockedapp import any_app, clock``), as it would a helper.

Tests that start on another date take ``Clock(start)``; other test files keep Apps of
their own where theirs differ (another timeout, extraction on)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.app import App, make_app
from aggregator.config import Settings


class Clock:
    """Now is ``clock.t``, which the test moves; it starts at ``start``."""

    def __init__(self, start: datetime = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)) -> None:
        self.t = start

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _make_app(tmp_path: Path, clock: Clock, database_url: str) -> Iterator[App]:
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        database_url=database_url,
        allow_private_addresses=True,
        extract=False,
        timeout_s=3,
        workers=1,  # a few small feeds: a second worker process only cost its start
    )
    with make_app(s, now=clock) as a:
        yield a


@pytest.fixture
def app(tmp_path: Path, clock: Clock, sqlite_url: str) -> Iterator[App]:
    """The App on SQLite."""
    yield from _make_app(tmp_path, clock, sqlite_url)


@pytest.fixture
def any_app(tmp_path: Path, clock: Clock, db_url: str) -> Iterator[App]:
    """The App on SQLite, then on PostgreSQL."""
    yield from _make_app(tmp_path, clock, db_url)
