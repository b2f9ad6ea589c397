"""The query and feed-management CLI as a demanding user meets it, found in session 27:
the real CLI in-process against a real SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_cli_read_audit import story
from test_learning_cli import run
from test_query_s26 import use
from test_store import check

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import FeedSource


def _two_stories(home: Path, monkeypatch: pytest.MonkeyPatch) -> datetime:
    """A SQLite store with stories "old" (two days back) and "new" (an hour back); the
    time the new one was published."""
    use(home, None, monkeypatch)
    now = datetime.now(UTC).replace(microsecond=0, second=0)
    with make_app(Settings.from_env()) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://a.example/feed"), now)
        records = [
            story("k1", "old", published=now - timedelta(days=2)),
            story("k2", "new", published=now - timedelta(hours=1)),
        ]
        app.store.save_update(check(feed.id, at=now), records)
    return now - timedelta(hours=1)


# --- --since / --until: RFC 3339's lower-case "z" -------------------------------------------


def test_since_and_until_read_a_lower_case_z_as_utc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """RFC 3339 (section 5.6) lets "T" and "Z" be written in lower case, and a lower-case
    "t" was read, but ``--since 2026-12-02T10:00z`` was bad input (exit 2) where
    ``…T10:00Z`` worked."""
    new = _two_stories(tmp_path, monkeypatch)
    at = (new - timedelta(hours=1)).strftime("%Y-%m-%dt%H:%M")
    for option, titles in (("--since", ["new"]), ("--until", ["old"])):
        code, out, err = run(capsys, "stories", option, f"{at}z", "--format", "json")
        assert code == 0, err
        assert [s["title"] for s in json.loads(out)] == titles


# --- feeds add: --name with several URLs ----------------------------------------------------


def test_feeds_add_refuses_a_name_given_with_several_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``feeds add --name X URL1 URL2`` added both feeds unnamed and exited 0: the name
    the user gave was dropped without a word. It names one feed, so it is bad input
    (exit 2) before anything is added."""
    use(tmp_path, None, monkeypatch)
    urls = ("https://p.example/a", "https://p.example/b")
    code, _, err = run(capsys, "feeds", "add", "--no-discover", "--name", "Mine", *urls)
    assert code == 2
    assert "--name" in err and "one URL" in err
    code, out, err = run(capsys, "feeds", "list", "--format", "json")
    assert code == 0, err
    assert json.loads(out) == []


# --- feeds show: the formats its help offers ------------------------------------------------


def test_feeds_show_help_offers_only_the_formats_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`feeds show --help` listed ``<table|json|csv>`` and `--format csv` then refused
    with "--format is table or json": the help offered a format the command has not
    (the refusal stays)."""
    use(tmp_path, None, monkeypatch)
    code, out, err = run(capsys, "feeds", "show", "--help")
    assert code == 0, err
    assert "table|json" in out and "csv" not in out
    code, _, err = run(capsys, "feeds", "show", "1", "--format", "csv")
    assert code == 2 and "table or json" in err


# --- feeds add: a percent-encoded spelling of the same URL ----------------------------------


def test_feeds_add_knows_a_percent_encoded_spelling_of_a_subscribed_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``https://x.example/%7Euser/feed`` is ``https://x.example/~user/feed`` (RFC 3986
    6.2.2: percent-encoded unreserved characters, and the case of the hex digits, make
    no difference), but `feeds add` subscribed to both, and the feed was polled twice."""
    use(tmp_path, None, monkeypatch)
    code, out, err = run(capsys, "feeds", "add", "--no-discover", "https://x.example/~user/feed")
    assert code == 0 and out.startswith("added:"), err
    for spelling in ("https://x.example/%7Euser/feed", "https://x.example/%7euser/%66eed"):
        code, out, err = run(capsys, "feeds", "add", "--no-discover", spelling)
        assert code == 0, err
        assert out.startswith("already present: https://x.example/~user/feed"), out
    # what is not unreserved stays encoded: %2F is no "/"
    code, out, err = run(capsys, "feeds", "add", "--no-discover", "https://x.example/~user%2Ffeed")
    assert code == 0 and out.startswith("added:"), err
