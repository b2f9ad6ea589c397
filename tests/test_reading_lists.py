"""``stories --new``: reading lists that keep their place, on SQLite and PostgreSQL, run
through the CLI on a store seeded through the real write path. The place is kept as
each database can keep it exactly: SQLite gives story ids in commit order, PostgreSQL's
writers do not (``test_a_story_committed_late_is_still_new``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from test_cli_read_audit import story
from test_learning_cli import run
from test_query_filters import NOW, cli  # noqa: F401  (cli: fixture)
from test_store import check

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.store.base import _STORY
from aggregator.types import FeedSource, StoryRecord


@pytest.fixture
def app(cli: Path) -> Iterator[App]:  # noqa: F811
    with make_app(Settings.from_env()) as a:
        yield a


def save(a: App, url: str, records: list[StoryRecord], *, days_ago: float = 0) -> list[int]:
    """``records`` stored in feed ``url`` (added if new), first seen ``days_ago``."""
    at = NOW - timedelta(days=days_ago)
    feed, _ = a.store.add_feed(FeedSource(url=url), at)
    return [int(i) for i in a.store.save_update(check(feed.id, at=at), records).new]


def new(capsys: pytest.CaptureFixture[str], *options: str) -> list[str]:
    code, out, err = run(capsys, "stories", "--new", "--format", "json", *options)
    assert code == 0, err
    return sorted(s["title"] for s in json.loads(out))


def test_new_lists_what_was_stored_since_it_last_read(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    save(app, "https://a.example/feed", [story("old", "Old")], days_ago=3)
    save(app, "https://a.example/feed", [story("1", "One"), story("2", "Two")])
    assert new(capsys) == ["One", "Two"]  # the first time: the last day's
    assert new(capsys) == []
    save(app, "https://a.example/feed", [story("3", "Three")])
    save(app, "https://b.example/feed", [story("4", "Four", link="https://b.example/4")])
    assert new(capsys) == ["Four", "Three"]
    code, out, _ = run(capsys, "stories", "--new")
    assert code == 0 and "No new stories since" in out and "'default'" in out
    save(app, "https://a.example/feed", [story("5", "Five")])
    code, out, _ = run(capsys, "stories", "--new")
    assert "New since" in out and "Five" in out
    code, out, _ = run(capsys, "stories", "--new", "--format", "csv")
    assert out.splitlines()[1:] == []


def test_reading_lists_keep_their_own_places_and_filters(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    cyber = (("Cybersecurity", 0.9),)
    save(
        app, "https://a.example/feed", [story("1", "Dns one"), story("2", "Sec one", topics=cyber)]
    )
    assert new(capsys, "--cursor", "dns", "-t", "DNS") == ["Dns one"]
    assert new(capsys) == ["Dns one", "Sec one"]
    save(
        app, "https://a.example/feed", [story("3", "Dns two"), story("4", "Sec two", topics=cyber)]
    )
    assert new(capsys, "--cursor", "dns", "--topic", "dns") == ["Dns two"]
    assert new(capsys, "--cursor", "  dns ", "-t", "DNS") == []  # the name, spaces aside
    assert new(capsys, "-q", "two") == ["Dns two", "Sec two"]
    assert new(capsys) == []
    # a filter narrows what is listed, and the list reads past the rest as well
    save(
        app,
        "https://a.example/feed",
        [story("5", "Dns three"), story("6", "Sec three", topics=cyber)],
    )
    assert new(capsys, "--cursor", "dns", "-t", "DNS") == ["Dns three"]
    assert new(capsys, "--cursor", "dns") == []
    # status names the lists, with when each last read
    code, out, _ = run(capsys, "status", "--format", "json")
    lists = json.loads(out)["reading_lists"]
    assert sorted(lists) == ["default", "dns"] and all(v.endswith("Z") for v in lists.values())
    code, out, _ = run(capsys, "status")
    assert code == 0 and "default read" in out and "dns read" in out


def test_a_named_list_reads_by_the_options_it_was_last_given(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--cursor dns -t DNS` once, then `--cursor dns` alone each morning: the list keeps
    its options (a typo-prone alias did before); given others, it reads by those from
    then on and says so. The default list keeps none: its filters are those given."""
    cyber = (("Cybersecurity", 0.9),)
    save(
        app, "https://a.example/feed", [story("1", "Dns one"), story("2", "Sec one", topics=cyber)]
    )
    assert new(capsys, "--cursor", "dns", "-t", "DNS", "--since", "30d") == ["Dns one"]
    save(
        app, "https://a.example/feed", [story("3", "Dns two"), story("4", "Sec two", topics=cyber)]
    )
    code, out, err = run(capsys, "stories", "--new", "--cursor", "dns")
    assert code == 0 and "Dns two" in out and "Sec two" not in out and not err
    assert "reading list 'dns': -t DNS --since 30d" in " ".join(out.split())  # what it reads
    # a bad option replaces nothing: the list still reads by its own
    code, _, err = run(capsys, "stories", "--new", "--cursor", "dns", "-t", "Nope")
    assert code == 2 and "unknown topic" in err
    save(
        app,
        "https://a.example/feed",
        [story("5", "Dns three"), story("6", "Sec three", topics=cyber)],
    )
    assert new(capsys, "--cursor", "dns") == ["Dns three"]
    # other options: read by them, from now on, with a note
    save(
        app,
        "https://a.example/feed",
        [story("7", "Dns four"), story("8", "Sec four", topics=cyber)],
    )
    code, out, err = run(
        capsys, "stories", "--new", "--format", "json", "--cursor", "dns", "-t", "Cybersecurity"
    )
    assert code == 0 and [s["title"] for s in json.loads(out)] == ["Sec four"]
    assert "now reads -t Cybersecurity (it read -t DNS --since 30d)" in err
    save(
        app,
        "https://a.example/feed",
        [story("9", "Dns five"), story("10", "Sec five", topics=cyber)],
    )
    assert new(capsys, "--cursor", "dns") == ["Sec five"]
    # the default list keeps no options: read with none, it lists every story
    assert new(capsys) == sorted(
        f"{k} {n}" for k in ("Dns", "Sec") for n in ("one", "two", "three", "four", "five")
    )
    assert len(new(capsys, "--cursor", "every")) == 10  # a list read with no option...
    save(app, "https://a.example/feed", [story("11", "Dns six")])
    assert new(capsys, "--cursor", "every") == ["Dns six"]  # ...keeps reading every story
    code, out, _ = run(capsys, "status", "--format", "json")
    kept = json.loads(out)["reading_list_filters"]
    assert kept == {"dns": {"topic": ["Cybersecurity"]}, "every": {}}
    code, out, _ = run(capsys, "status")
    assert "dns read" in out and "(-t Cybersecurity)" in out and "(every story)" in out


def test_options_a_list_cannot_read_back_are_refused(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kept options another version or a hand wrote wrong are an error naming the list,
    never read as something else (``"DNS"`` for a topic list would be three topics)."""
    save(app, "https://a.example/feed", [story("1", "One")])
    assert new(capsys, "--cursor", "dns", "-t", "DNS") == ["One"]
    for bad in ('{"topic": "DNS"}', "not json", '{"sort": "size"}', '{"colour": "red"}'):
        with app.store.engine.begin() as c:
            c.execute(text("UPDATE read_cursor SET filters = :f WHERE name = 'dns'"), {"f": bad})
        code, out, err = run(capsys, "stories", "--new", "--cursor", "dns")
        assert code == 2 and "reading list 'dns': its options cannot be read" in err, bad
        code, out, _ = run(capsys, "status", "--format", "json")
        assert json.loads(out)["reading_list_filters"] == {"dns": None}
    # given again, they are kept again
    save(app, "https://a.example/feed", [story("2", "Two")])
    assert new(capsys, "--cursor", "dns", "-t", "DNS") == ["Two"]


def test_a_new_copy_of_a_story_read_is_not_new(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cluster's first copy that matches is what is new or not: another source's copy
    of a story already listed is not news; under `-f B` it is that list's first copy."""
    same = "https://news.example/registry-outage"
    save(app, "https://a.example/feed", [story("a", "Registry outage", canonical=same)])
    assert new(capsys) == ["Registry outage"]
    assert new(capsys, "--cursor", "b", "-f", "b.example") == []  # no story of B yet
    copy = story("b", "Registry outage (copy)", link="https://b.example/1", canonical=same)
    fresh = story("c", "Root zone change", link="https://b.example/2")
    save(app, "https://b.example/feed", [copy, fresh])
    assert new(capsys) == ["Root zone change"]
    assert new(capsys, "--cursor", "b", "-f", "b.example") == [
        "Registry outage (copy)",
        "Root zone change",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--new", "--limit", "5"], "leave out --limit and --offset"),
        (["--new", "-n", "0"], "leave out --limit and --offset"),
        (["--new", "--offset", "5"], "leave out --limit and --offset"),
        (["--cursor", "dns"], "give --new too"),
        (["--new", "--cursor", " "], "printable characters"),
        (["--new", "--cursor", "a\tb"], "printable characters"),
        (["--new", "--cursor", "x" * 101], "printable characters"),
        (["--new", "-t", "Nope"], "unknown topic"),
    ],
)
def test_bad_options_are_refused_and_read_nothing(
    app: App, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    save(app, "https://a.example/feed", [story("1", "One")])
    code, _, err = run(capsys, "stories", *options)
    assert code == 2 and message in err, err
    assert new(capsys) == ["One"]  # still new


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_an_output_that_cannot_be_written_leaves_them_new(
    app: App,
    cli: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    save(app, "https://a.example/feed", [story("1", "One")])
    for fmt in ("json", "table"):
        with open("/dev/full", "wb") as full:
            done = subprocess.run(
                [sys.executable, "-m", "aggregator", "stories", "--new", "--format", fmt],
                stdout=full,
                stderr=subprocess.PIPE,
                env=dict(os.environ),
                timeout=120,
                check=False,
                text=True,
            )
        assert done.returncode == 1, done.stderr
        assert "cannot write the output: No space left on device" in done.stderr
    assert new(capsys) == ["One"]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_story_committed_late_is_still_new(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    """Two daemons on PostgreSQL: one has inserted story N and not committed yet when the
    other's N+1 is committed and listed. N must be listed once it commits; a mark kept
    as the largest id listed (as on SQLite, where writers take turns) skipped it."""
    (first,) = save(app, "https://a.example/feed", [story("1", "One")])
    assert new(capsys) == ["One"]
    names = [c.name for c in _STORY.c if c.name != "id"]
    copied = ("'late'" if n == "key" else "NULL" if n == "cluster_id" else n for n in names)
    insert_late = text(
        f"INSERT INTO story ({', '.join(names)}) SELECT {', '.join(copied)}"
        " FROM story WHERE id = :id RETURNING id"
    )
    with app.store.engine.connect() as other:  # the other daemon's open transaction
        late = other.execute(insert_late, {"id": first}).scalar_one()
        (two,) = save(app, "https://a.example/feed", [story("2", "Two")])
        assert two > late
        assert new(capsys) == ["Two"]  # the late one is not committed yet
        other.commit()
    assert new(capsys) == ["One"]  # the late copy, titled as the story it was copied from
    assert new(capsys) == []


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_stories_stored_before_migration_21_count_as_read(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """Migration 21 adds ``story.stored_by`` with no value for the stories already there
    (a volatile default would have rewritten the whole table): a list that has read once
    never lists them; a list's first read finds them by when they were stored."""
    save(app, "https://a.example/feed", [story("1", "Before")])
    with app.store.engine.begin() as c:
        c.execute(text("UPDATE story SET stored_by = NULL"))  # as migration 21 leaves them
        default = c.execute(
            text(
                "SELECT column_default FROM information_schema.columns"
                " WHERE table_name = 'story' AND column_name = 'stored_by'"
            )
        ).scalar_one()
    assert default == "pg_current_xact_id()"
    assert new(capsys) == ["Before"]  # the first read: stored in the last day
    save(app, "https://a.example/feed", [story("2", "After")])
    assert new(capsys) == ["After"]
    assert new(capsys) == []


def test_a_list_kept_with_a_feed_that_names_none_now_says_so(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list kept with `-f b.example` after that feed was removed (or renamed, so the
    ref no longer matches) read nothing and counted the rest read, silently, at every
    run: a renamed feed's new stories were passed over for good. When no kept ref names a
    feed it is an error that names the list and the ref (nothing read); when some do, a
    note names the others."""
    save(app, "https://a.example/feed", [story("a1", "Alpha one")])
    save(app, "https://b.example/feed", [story("b1", "Bravo one")])
    assert new(capsys, "--cursor", "b", "-f", "b.example") == ["Bravo one"]
    assert new(capsys, "--cursor", "ab", "-f", "a.example", "-f", "b.example") == [
        "Alpha one",
        "Bravo one",
    ]
    app.store.remove_feed("https://b.example/feed", NOW)
    save(app, "https://a.example/feed", [story("a2", "Alpha two")])
    code, out, err = run(capsys, "stories", "--new", "--cursor", "b")
    assert code == 2 and not out
    assert "reading list 'b' reads -f b.example: -f b.example names no feed now" in err, err
    code, out, err = run(capsys, "stories", "--new", "--format", "json", "--cursor", "ab")
    assert code == 0, err
    assert [s["title"] for s in json.loads(out)] == ["Alpha two"]
    assert "note: reading list 'ab': -f b.example names no feed now" in err, err
    # given on the command line, a ref that names no feed adds none, as ever
    code, out, err = run(capsys, "stories", "--new", "--cursor", "b", "-f", "a.example")
    assert code == 0 and "names no feed" not in err, err
