"""The read side of the CLI (`stories`, `show`, `topics`) as a demanding daily user meets
it: a date range given backwards, a limit or an id no store can hold, a terminal 40
columns wide, a link longer than a line, a story's text cut short, a topic the taxonomy
no longer has. The real CLI in-process (as ``python -m aggregator`` runs it, tests/clirun.py,
where the terminal's width matters) against a real store, on SQLite and PostgreSQL where the
store answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from clirun import in_process
from rich.cells import cell_len
from test_learning_cli import run
from test_store import check

from aggregator.app import make_app
from aggregator.config import REPO_MODELS_DIR, Settings
from aggregator.taxonomy import Taxonomy
from aggregator.types import FeedSource, Prediction, StoryDraft, StoryRecord, TopicScore

NOW = datetime.now(UTC).replace(microsecond=0)


def story(
    key: str,
    title: str,
    *,
    published: datetime | None = None,
    link: str | None = None,
    canonical: str | None = None,
    topics: Sequence[tuple[str, float]] = (("DNS", 0.9),),
    full_text: str | None = None,
) -> StoryRecord:
    return StoryRecord(
        draft=StoryDraft(
            key=key,
            guid=key,
            link=link if link is not None else f"https://a.example/{key}",
            canonical_url=canonical,
            title=title,
            author=None,
            published=published or NOW - timedelta(hours=1),
            updated=None,
            summary="<p>A summary.</p>",
            content=None,
            categories=(),
            content_hash=f"h-{key}",
        ),
        full_text=full_text,
        extraction_status="ok" if full_text else "skipped",
        prediction=Prediction(
            topics=tuple(TopicScore(topic=t, score=s) for t, s in topics), model_version="t"
        ),
        text=title,
    )


def seed(data_dir: Path, url: str | None, feeds: dict[str, Sequence[StoryRecord]]) -> list[int]:
    """Each feed (URL -> its stories, named after its host) stored through the real
    store, in the order given; the new stories' ids."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ids: list[int] = []
    with make_app(Settings.from_env({}, data_dir=data_dir, database_url=url)) as app:
        for feed_url, records in feeds.items():
            host = urlsplit(feed_url).hostname or ""
            name = host.split(".")[0].title() + " News"
            feed, _ = app.store.add_feed(FeedSource(url=feed_url, name=name), NOW)
            ids += app.store.save_update(check(feed.id, at=NOW), list(records)).new
    return ids


Aggregator = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def aggregator(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Aggregator:
    """``aggregator(cwd, *argv, columns)``: the CLI on the data directory in ``cwd``, as
    ``python -m aggregator`` runs it (in this process, tests/clirun.py), its output a pipe
    to a terminal ``columns`` wide (what COLUMNS tells rich)."""
    run = in_process(monkeypatch, capfd)

    def aggregator(cwd: Path, *argv: str, columns: int) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
        environ.update(AGGREGATOR_DATA_DIR=str(cwd / "data"), COLUMNS=str(columns))
        environ.update(AGGREGATOR_FEEDS=str(cwd / "feeds.yaml"), TERM="dumb", NO_COLOR="1")
        return run(environ, *argv, cwd=cwd, timeout=60)

    return aggregator


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The CLI's environment for ``db_url``: the data directory in tmp_path, no feeds
    file, the database (None: SQLite in the data directory)."""
    url = None if db_url.startswith("sqlite") else db_url
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_MODELS_DIR", raising=False)
    if url is None:
        monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("AGGREGATOR_DATABASE_URL", url)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    return url


# --- stories: a date range given backwards ---------------------------------------------------


@pytest.mark.parametrize("command", ["stories", "export"])
@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("1d", "3d"),
        ("7d", "1w"),
        ("2026-11-02", "2026-11-01T23:00Z"),
        ("2026-11-01T12:00+02:00", "2026-11-01T10:00Z"),
    ],
    ids=["spans", "same-span", "dates", "same-instant"],
)
def test_since_not_before_until_is_bad_input(
    cli: str | None, capsys: pytest.CaptureFixture[str], command: str, since: str, until: str
) -> None:
    """--since 1d --until 3d (newer than a day ago and older than three days ago) can
    match nothing: it listed nothing and exited 0, as if there were no such stories."""
    code, out, err = run(capsys, command, "--since", since, "--until", until)
    assert (code, out) == (2, "")
    assert err == f"error: --since {since} is not before --until {until}: no story can match\n"


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--since", "last tuesday", "--until", "1d"], "--since"),
        (["--since", "7d", "--until", "last tuesday"], "--until"),
    ],
    ids=["since", "until"],
)
def test_a_time_that_cannot_be_read_names_its_option(
    cli: str | None, capsys: pytest.CaptureFixture[str], argv: list[str], option: str
) -> None:
    """Given both, the message told which value it could not read only by quoting it."""
    code, out, err = run(capsys, "stories", *argv)
    assert (code, out) == (2, "")
    assert err == (
        f"error: {option}: cannot read 'last tuesday' as a time: use 7d, 24h, 30m, 2w or"
        " 2026-11-01\n"
    )


# --- numbers no store can hold ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "fmt"), [("stories", "table"), ("stories", "json"), ("export", "atom")]
)
def test_a_limit_beyond_any_store_is_bad_input(
    cli: str | None, capsys: pytest.CaptureFixture[str], command: str, fmt: str
) -> None:
    """2**63 passed the "0 or more" check and reached the database: a traceback on
    SQLite (OverflowError), "error: bigint out of range" and exit 1 on PostgreSQL."""
    too_many = str(2**63)
    code, out, err = run(capsys, command, "--limit", too_many, "--format", fmt)
    assert (code, out) == (2, "")
    assert err == f"error: --limit {too_many} is too large: 0 means no limit\n"


@pytest.mark.parametrize("story_id", [2**31, 2**63, 10**20])
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_show_an_id_no_story_can_have(
    cli: str | None, capsys: pytest.CaptureFixture[str], story_id: int, fmt: str
) -> None:
    """An id past what the story table holds is a story that is not there: it was a
    traceback on SQLite (past 2**63) and "error: integer out of range", exit 1, on
    PostgreSQL (past 2**31, the INTEGER column)."""
    code, out, err = run(capsys, "show", str(story_id), "--format", fmt)
    assert (code, out, err) == (2, "", f"not found: no story {story_id}\n")


# --- the table at any width ------------------------------------------------------------------


@pytest.mark.parametrize("columns", [40, 50])
def test_a_narrow_terminal_keeps_each_title_readable(
    aggregator: Aggregator, tmp_path: Path, columns: int
) -> None:
    """At 40 columns the id, date and feed columns left the story one column: each title
    ran down the screen a letter per line. Below that the feed goes under the title."""
    seed(
        tmp_path / "data",
        None,
        {
            "https://operations.example/feed": [
                story("a", "Registrar fined over WHOIS accuracy", topics=[("Law", 0.8)]),
            ]
        },
    )
    done = aggregator(tmp_path, "stories", columns=columns)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= columns, done.stdout
    cells = [cell.strip() for line in lines for cell in line.split("│")]
    assert any(c.startswith("Registrar fined") for c in cells), done.stdout
    assert any("Operations News" in c for c in cells), done.stdout
    assert any("Law 0.80" in c for c in cells), done.stdout


def test_the_table_says_its_dates_are_utc(aggregator: Aggregator, tmp_path: Path) -> None:
    """`show` says UTC and JSON ends its dates with Z; the table's dates were bare, read
    as local time by anyone east or west of Greenwich."""
    published = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
    seed(
        tmp_path / "data",
        None,
        {"https://alpha.example/feed": [story("a", "Late news", published=published)]},
    )
    for columns, shown in [(80, "2026-11-01"), (120, "2026-11-01 23:30")]:
        done = aggregator(tmp_path, "stories", columns=columns)
        assert done.returncode == 0, done.stderr
        assert "date (UTC)" in done.stdout
        assert shown in done.stdout


# --- show ------------------------------------------------------------------------------------


def test_show_prints_each_link_on_one_line(aggregator: Aggregator, tmp_path: Path) -> None:
    """A link longer than the terminal (a pipe: 80 columns) was cut into lines, so it
    could be neither clicked nor copied, and `show 42 | grep https` found a fragment."""
    long = "https://alpha.example/2026/11/" + "a-long-slug-for-a-story" * 10 + "?utm_source=x"
    other = "https://bravo.example/news/" + "the-same-story-elsewhere" * 10
    first, copy = seed(
        tmp_path / "data",
        None,
        {
            "https://alpha.example/feed": [story("a", "Root zone KSK", link=long, canonical=long)],
            "https://bravo.example/feed": [story("b", "Root zone KSK", link=other, canonical=long)],
        },
    )
    done = aggregator(tmp_path, "show", str(first), columns=80)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert long in lines
    assert f"  #{copy} Bravo News {other}" in lines


def test_show_says_where_the_text_was_cut(
    cli: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`show` prints the first 1,200 characters of a story's text and ended with "…": not
    how much was left, nor where the rest is."""
    text = " ".join(f"word{i}" for i in range(5000))
    (sid,) = seed(
        tmp_path / "data",
        cli,
        {"https://alpha.example/feed": [story("a", "A long read", full_text=text)]},
    )
    code, out, err = run(capsys, "show", str(sid))
    assert (code, err) == (0, "")
    left = len(text) - len(text[:1199].rstrip())
    assert f"({left:,} more characters: `aggregator show {sid} --format json` has them all)" in out
    _, out, _ = run(capsys, "show", str(sid), "--format", "json")
    assert json.loads(out)["full_text"] == text
    short = seed(
        tmp_path / "data",
        cli,
        {"https://bravo.example/feed": [story("b", "Short", full_text="Brief.")]},
    )
    _, out, _ = run(capsys, "show", str(short[0]))
    assert "Brief." in out and "more characters" not in out


# --- topics ----------------------------------------------------------------------------------


def test_topics_lists_what_topic_filters_accept(
    cli: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A topic taken out of the taxonomy stays in the store's topic table: `topics` kept
    listing it (with its stories) while `stories -t` called it unknown and pointed at
    `aggregator topics`."""
    seed(
        tmp_path / "data",
        cli,
        {
            "https://alpha.example/feed": [
                story("a", "Remote work strains networks", topics=[("Coronavirus", 0.9)])
            ]
        },
    )
    taxonomy = (REPO_MODELS_DIR / "taxonomy.yaml").read_text(encoding="utf-8")
    models = tmp_path / "models"
    models.mkdir()
    (models / "taxonomy.yaml").write_text(
        taxonomy[: taxonomy.index("  - id: coronavirus")], encoding="utf-8"
    )
    monkeypatch.setenv("AGGREGATOR_MODELS_DIR", str(models))
    expected = [t.name for t in Taxonomy.load(models / "taxonomy.yaml").topics]
    assert "Coronavirus" not in expected
    for fmt in ("json", "csv", "table"):
        code, out, err = run(capsys, "topics", "--format", fmt)
        assert (code, err) == (0, "")
        assert "Coronavirus" not in out
    code, out, _ = run(capsys, "topics", "--format", "json")
    assert [t["topic"] for t in json.loads(out)] == expected
    code, _, err = run(capsys, "stories", "-t", "Coronavirus")
    assert code == 2 and "unknown topic 'Coronavirus'" in err


def test_topics_keeps_each_name_whole_in_a_narrow_terminal(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    """A name is what `stories -t` takes: at 40 columns "Cybersecurity" showed as
    "Cybersecur…", and "Artificial Intelligence" as "Artificial…", to make room for the
    descriptions."""
    done = aggregator(tmp_path, "topics", columns=40)
    assert done.returncode == 0, done.stderr
    names = [t.name for t in Taxonomy.load(REPO_MODELS_DIR / "taxonomy.yaml").topics]
    shown = [line.split("│")[1].strip() for line in done.stdout.splitlines() if "│" in line]
    assert [n for n in shown if n] == names
    assert max(cell_len(line) for line in done.stdout.splitlines()) <= 40


# --- what held: one story looks the same everywhere ------------------------------------------


def test_one_story_reads_the_same_in_each_format(
    cli: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`stories --format json`, `show --format json` and CSV give a story the same
    fields, dates in UTC with Z; the empty result is [] / a header / one line, exit 0."""
    published = datetime(2026, 11, 1, 9, 5, 7, tzinfo=UTC)
    (sid,) = seed(
        tmp_path / "data",
        cli,
        {
            "https://user:secret@alpha.example/feed": [
                story(
                    "a", "Policy & DNS", published=published, topics=[("Policy & Regulation", 0.8)]
                )
            ]
        },
    )
    _, out, _ = run(capsys, "stories", "--format", "json", "-t", "policy & regulation")
    (listed,) = json.loads(out)
    _, out, _ = run(capsys, "show", str(sid), "--format", "json")
    shown = json.loads(out)
    assert {k: shown[k] for k in listed} == listed
    assert list(listed) == [
        "id",
        "title",
        "link",
        "feed",
        "feed_title",
        "published",
        "first_seen",
        "topics",
        "feed_id",
        "sources",
    ]
    assert listed["sources"] == 1
    assert listed["published"] == "2026-11-01T09:05:07Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", listed["first_seen"])
    assert listed["feed"] == "https://alpha.example/feed"  # never the password
    assert listed["topics"] == [{"topic": "Policy & Regulation", "score": 0.8, "source": "model"}]
    _, out, _ = run(capsys, "stories", "--format", "csv")
    header, row = out.splitlines()
    assert row.startswith(f"{sid},2026-11-01T09:05:07Z,")
    for fmt, empty in [("json", "[]\n"), ("csv", header + "\n"), ("table", "No stories match.\n")]:
        assert run(capsys, "stories", "-q", "nothing-like-it", "--format", fmt) == (0, empty, "")
