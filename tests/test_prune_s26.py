"""Session 26: story retention and the install overview, on SQLite and PostgreSQL stores
filled through the real poll of feeds served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_learning_cli import env, run  # noqa: F401  (env: fixture)
from test_store import check, draft

from aggregator.app import App, make_app
from aggregator.config import Settings, parse_span
from aggregator.errors import ConfigError
from aggregator.types import StoryRecord


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


def _rss(*items: tuple[str, str, int]) -> bytes:
    """(guid, title, day of September 2025) per item."""
    body = "".join(
        f"<item><title>{title}</title><guid>{g}</guid>"
        f"<link>http://example.org/{g}</link><description>{title} body text</description>"
        f"<pubDate>Mon, {day:02d} Sep 2025 08:00:00 GMT</pubDate></item>"
        for g, title, day in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>'
        f"<link>http://example.org/</link>{body}</channel></rss>"
    ).encode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path: Path, clock: Clock, db_url: str) -> Iterator[App]:
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        database_url=db_url,
        allow_private_addresses=True,
        extract=False,
        timeout_s=3,
    )
    with make_app(s, now=clock) as a:
        yield a


@pytest.mark.parametrize("text", ["6m", "6M", "90m", " 1.5m "])
def test_a_retention_in_minutes_is_refused_not_read_as_months(text: str) -> None:
    """`m` is minutes where `--since` reads it (30m); as a retention, `6m` read as six
    minutes deleted every story older than that, where a user meant six months."""
    with pytest.raises(ConfigError, match=r"--older-than: .* minutes or months"):
        parse_span(text)
    with pytest.raises(ConfigError, match="AGGREGATOR_RETENTION"):
        Settings.from_env({"AGGREGATOR_RETENTION": text})


def test_prune_older_than_6m_deletes_nothing(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    with make_app(Settings.from_env({}, data_dir=env / "data")) as a:
        a.store.upsert_feeds([], now)
        feed = a.add_feed("https://a.example/feed", discover=False).feed
        for i in range(5):
            rec = StoryRecord(
                draft=draft(f"s{i}", f"Story {i}", published=now - timedelta(days=10))
            )
            a.store.save_update(check(feed.id, at=now - timedelta(days=10)), [rec])
    code, _, err = run(capsys, "prune", "--older-than", "6m", "--keep", "0")
    assert code == 2 and "minutes or months" in err and "Traceback" not in err
    with make_app(Settings.from_env({}, data_dir=env / "data")) as a:
        assert a.story_count() == 5
