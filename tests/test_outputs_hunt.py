"""The read-only commands as a user sees them in a narrow terminal: every column of
`feeds list` and `topics` whole within the terminal's width, nothing cropped at the
right edge and no number cut to "1…". The real CLI (``python -m aggregator``, where the
terminal's width matters) against a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.cells import cell_len
from test_cli_read_audit import Aggregator, aggregator, story  # noqa: F401  (aggregator: fixture)
from test_store import check

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import FeedSource

NOW = datetime.now(UTC).replace(microsecond=0)


def _seed_feeds(data_dir: Path) -> None:
    """A quiet feed with a long CJK name and a failing one, its error count and error
    text long, both with stories."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with make_app(Settings.from_env({}, data_dir=data_dir)) as app:
        quiet, _ = app.store.add_feed(
            FeedSource(url="https://a.example/feed", name="漢字" * 12), NOW
        )
        app.store.save_update(
            check(quiet.id, at=NOW, next_check=NOW + timedelta(hours=3)),
            [story(f"a{i}", f"Story {i}") for i in range(12)],
        )
        failing, _ = app.store.add_feed(FeedSource(url="https://b.example/feed"), NOW)
        app.store.save_update(
            check(
                failing.id,
                at=NOW,
                outcome="error",
                status="error",
                error_count=123456,
                last_error="HTTP 503 Service Unavailable",
                success=False,
                next_check=NOW + timedelta(hours=5),
            ),
            [],
        )


@pytest.mark.parametrize("columns", [40, 50, 60, 74])
def test_feeds_list_fits_a_narrow_terminal_whole(
    aggregator: Aggregator,  # noqa: F811
    tmp_path: Path,
    columns: int,
) -> None:
    """Under ~76 columns the compact table (the id and last error under the name) was
    still wider than the terminal: rich cropped it at the right edge, so at 74 columns
    "next check" lost its values and the table its right border, at 50 "errors" and
    "next check" were gone and the story count showed as "s…"."""
    _seed_feeds(tmp_path / "data")
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    done = aggregator(tmp_path, "feeds", "list", columns=columns)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= columns, done.stdout
    assert lines[0].rstrip().endswith(("┓", "┐")), done.stdout
    words = " ".join(done.stdout.replace("│", " ").split())
    for whole in ("#1", "#2", "active", "error", "12", "123456", "in 2h", "in 4h", "HTTP 503"):
        assert whole in words, (whole, done.stdout)
    assert "…" not in done.stdout  # no number, state or name cut short


@pytest.mark.parametrize("columns", [40, 60])
def test_topics_shows_each_count_whole_in_a_narrow_terminal(
    aggregator: Aggregator,  # noqa: F811
    tmp_path: Path,
    columns: int,
) -> None:
    """At 40 columns the count column kept 3 cells beside the whole names: 1,234 DNS
    stories showed as "1…" under a header "st…". A count cut short is a wrong count."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with make_app(Settings.from_env({}, data_dir=data_dir)) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://a.example/feed", name="A"), NOW)
        records = [story(f"k{i}", f"Resolver note {i}") for i in range(1234)]
        app.store.save_update(check(feed.id, at=NOW), records)
    done = aggregator(tmp_path, "topics", columns=columns)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= columns, done.stdout
    rows = {
        cells[1].strip(): cells[2].strip()
        for line in lines
        if len(cells := line.split("│")) > 3 and cells[1].strip()
    }
    assert rows["DNS"] == "1234", done.stdout
    assert rows["Artificial Intelligence"] == "0", done.stdout
    assert "stories" in lines[1] + lines[2] + lines[3], done.stdout  # the header whole


@pytest.mark.parametrize("columns", [40, 60, 80])
def test_feeds_show_gives_each_fetch_whole_in_a_narrow_terminal(
    aggregator: Aggregator,  # noqa: F811
    tmp_path: Path,
    columns: int,
) -> None:
    """`feeds show` is for finding out why a feed fails, but at 80 columns its list of
    fetches gave the error column one cell: "HTTP 503 Service Unavailable" showed as
    "…"; at 60 the numbers were "HT…" and "…" too."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with make_app(Settings.from_env({}, data_dir=data_dir)) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://b.example/feed", name="B"), NOW)
        earlier = NOW - timedelta(hours=2)
        app.store.save_update(
            check(feed.id, at=earlier, outcome="not_modified", http_status=304, ms=12345), []
        )
        failed = check(
            feed.id,
            at=NOW - timedelta(hours=1),
            outcome="error",
            status="error",
            error_count=1,
            first_error_at=NOW - timedelta(hours=1),
            last_error="HTTP 503 Service Unavailable",
            http_status=503,
            ms=20001,
            success=False,
        )
        app.store.save_update(failed, [])
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    done = aggregator(tmp_path, "feeds", "show", "1", columns=columns)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= columns, done.stdout
    log = done.stdout[done.stdout.index("latest fetches") :]
    words = " ".join(log.replace("│", " ").split())
    for whole in ("not_modified", "304", "12345", "503", "20001", "Service Unavailable"):
        assert whole in words, (whole, done.stdout)
    assert "…" not in log, done.stdout


def test_explain_packs_wide_terms_by_their_width_on_screen() -> None:
    """`explain` packs the terms as many to a line as fit the terminal, so that the
    console never wraps one in two; it counted characters, and a model trained on
    Chinese or Japanese stories has terms of CJK characters, each two columns wide: at
    40 columns a line of them ran past the edge and the console broke a term apart."""
    from rich.console import Console

    from aggregator.cli.learning import _term_lines

    terms = [
        ("域名注册", 1.32),
        ("根区", 0.91),
        ("解析器", 0.5),
        ("安全扩展", 0.44),
        ("dnssec", 0.3),
    ]
    rows = _term_lines("  up:   ", terms, 40)
    assert all(cell_len(row) <= 40 for row in rows), rows
    console = Console(width=40, record=True, color_system=None)
    for row in rows:
        console.print(row, highlight=False, markup=False)
    assert console.export_text().splitlines() == rows  # none wrapped by the console
    assert " ".join(" ".join(rows).split()).startswith("up: 域名注册 (+1.32), 根区 (+0.91),")


def test_feeds_list_csv_without_feeds_has_every_column(
    aggregator: Aggregator,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The README promises `feeds list`'s CSV the JSON's columns; with no feed to list
    (none subscribed, or none `--status gone`) the header was "url" alone, so a script
    that reads the columns by name failed on the day nothing was gone."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with make_app(Settings.from_env({}, data_dir=data_dir)) as app:
        app.store.add_feed(FeedSource(url="https://a.example/feed", name="A"), NOW)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    full = aggregator(tmp_path, "feeds", "list", "--format", "csv", columns=80)
    empty = aggregator(tmp_path, "feeds", "list", "--format", "csv", "--status", "gone", columns=80)
    assert (full.returncode, empty.returncode) == (0, 0), full.stderr + empty.stderr
    header = full.stdout.splitlines()[0]
    assert header.split(",")[:2] == ["url", "name"] and header.endswith("interval")
    assert empty.stdout.splitlines() == [header]


def test_feed_columns_are_the_keys_of_a_listed_feed(
    aggregator: Aggregator,  # noqa: F811
    tmp_path: Path,
) -> None:
    """FEED_COLUMNS, the header of an empty list, names what a listed feed has."""
    import json

    from aggregator.cli.feeds import FEED_COLUMNS

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with make_app(Settings.from_env({}, data_dir=data_dir)) as app:
        app.store.add_feed(FeedSource(url="https://a.example/feed", name="A"), NOW)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    done = aggregator(tmp_path, "feeds", "list", "--format", "json", columns=80)
    assert done.returncode == 0, done.stderr
    assert tuple(json.loads(done.stdout)[0]) == FEED_COLUMNS


@pytest.mark.parametrize("width", [40, 60, 70, 80, 99])
def test_stories_table_keeps_wide_topic_names_with_their_scores(width: int) -> None:
    """Under 100 columns the table packs a story's topics under its title, a name never
    split from its score; it measured in characters, so topics named in CJK (a
    taxonomy.yaml of one's own), two columns a character, overran the line and rich
    broke "隐私保护 0.60" in two at 99 columns, and a line began or ended with "·"."""
    from dataclasses import replace

    from rich.console import Console
    from test_learning_cli import _story_with_five_topics

    from aggregator.cli.common import stories_table
    from aggregator.types import TopicScore

    names = ["网络安全", "域名系统", "互联网治理", "隐私保护", "数据", "政策与监管"]
    topics = tuple(TopicScore(topic=n, score=0.9 - i / 10) for i, n in enumerate(names))
    s = replace(_story_with_five_topics(), title="Resolver news", topics=topics)
    console = Console(width=width, record=True, color_system=None)
    console.print(stories_table([s], width=width))
    lines = console.export_text().splitlines()
    assert max(cell_len(line) for line in lines) <= width
    for shown in ("网络安全 0.90", "域名系统 0.80", "互联网治理 0.70", "隐私保护 0.60", "+2 more"):
        assert sum(shown in line for line in lines) == 1, (shown, lines)
    cells = [line.split("│")[-2].strip() for line in lines if line.startswith("│")]
    assert not [c for c in cells if c.startswith("·") or c.endswith("·")], lines
