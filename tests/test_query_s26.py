"""The query side of the CLI (`stories`, `show`, `topics`, `status`) as a demanding user
meets it on SQLite and on PostgreSQL, found in session 26: the real CLI in-process
against real stores (a PostgreSQL database with a collation other than C where the
database's ordering of text shows)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbfixtures import PG_ADMIN, _admin_engine
from httpserver import LocalServer
from test_learning_cli import run

_names = itertools.count()


@contextlib.contextmanager
def collated_pg_url() -> Iterator[str]:
    """A new PostgreSQL database sorting text by the ICU locale en-US (as a cluster set up
    with ``initdb --locale=en_US.UTF-8`` does: ``alpha`` before ``Zeta``), unlike the C
    collation of the test server's template; dropped afterwards."""
    from sqlalchemy import text

    name = f"aggregator_test_icu_{os.getpid()}_{next(_names)}"
    engine = _admin_engine()
    try:
        with engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            c.execute(
                text(
                    f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
                    "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                )
            )
        try:
            yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
        finally:
            with engine.connect() as c:
                c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        engine.dispose()


def use(home: Path, url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's environment on ``url`` (None: the SQLite default in ``home``)."""
    (home / "data").mkdir(parents=True, exist_ok=True)
    (home / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(home / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_MODELS_DIR", raising=False)
    if url is None:
        monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("AGGREGATOR_DATABASE_URL", url)


# --- status: reading lists in the same order on both -----------------------------------------


@pytest.mark.postgres
def test_status_lists_reading_lists_in_the_same_order_on_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` listed the reading lists as the database sorted their names: by code
    point on SQLite, by the database's collation on PostgreSQL (en_US: ``alpha``,
    ``Beta``, ``Zeta``, where SQLite gives ``Beta``, ``Zeta``, ``alpha``), so the
    table and the JSON's ``reading_lists`` came in another order on each."""
    names = ["alpha", "Zeta", "_x", "Beta", "émile"]
    seen: dict[str, tuple[list[str], list[str], str]] = {}
    with collated_pg_url() as pg:
        for backend, url in (("sqlite", None), ("postgresql", pg)):
            use(tmp_path / backend, url, monkeypatch)
            for name in names:
                code, _, err = run(capsys, "stories", "--new", "--cursor", name, "--format", "json")
                assert code == 0, err
            code, out, err = run(capsys, "status", "--format", "json")
            assert code == 0, err
            st = json.loads(out)
            monkeypatch.setenv("COLUMNS", "400")
            code, table, err = run(capsys, "status")
            monkeypatch.delenv("COLUMNS")
            assert code == 0, err
            (line,) = [ln for ln in table.splitlines() if ln.startswith("reading")]
            order = [w for w in line.split() if w in names]
            seen[backend] = (
                list(st["reading_lists"]),
                list(st["reading_list_filters"]),
                " ".join(order),
            )
    assert seen["sqlite"] == seen["postgresql"]
    assert seen["sqlite"][0] == sorted(names)


# --- CSV: the topics column guarded as the titles are ----------------------------------------


def test_stories_csv_guards_a_topic_a_spreadsheet_would_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """taxonomy.yaml may name a topic ``@Risk`` or ``+Plus`` (a name needs a letter or
    digit, nothing more), and `topics --format csv` guards such a name as a title is
    guarded; but `stories --format csv` wrote the story's topics as they were
    (``@Risk:0.950;DNS:0.900``), a cell a spreadsheet runs as a formula."""
    import csv
    import io
    from datetime import UTC, datetime, timedelta

    import yaml
    from test_cli_read_audit import story
    from test_store import check

    from aggregator.app import make_app
    from aggregator.config import Settings
    from aggregator.types import FeedSource

    use(tmp_path, None, monkeypatch)
    models = tmp_path / "models"
    models.mkdir()
    topics = [
        {"id": "risk", "name": "@Risk", "description": "=1+1 risk"},
        {"id": "plus", "name": "+Plus"},
        {"id": "dns", "name": "DNS"},
    ]
    (models / "taxonomy.yaml").write_text(yaml.safe_dump({"version": 1, "topics": topics}))
    monkeypatch.setenv("AGGREGATOR_MODELS_DIR", str(models))
    now = datetime.now(UTC).replace(microsecond=0)
    with make_app(Settings.from_env()) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://a.example/feed"), now)
        records = [
            story("k1", "Risky", topics=(("@Risk", 0.95), ("DNS", 0.9))),
            story("k2", "Plus", topics=(("+Plus", 0.8),), published=now - timedelta(hours=2)),
        ]
        app.store.save_update(check(feed.id, at=now), records)
    code, out, err = run(capsys, "stories", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["topics"] for r in rows] == ["'@Risk:0.950;DNS:0.900", "'+Plus:0.800"]
    code, out, err = run(capsys, "topics", "--format", "csv")  # as topics guards them
    assert code == 0, err
    assert [r["topic"] for r in csv.DictReader(io.StringIO(out))] == ["'@Risk", "'+Plus", "DNS"]


# --- topics: a description is shown without what a terminal acts on -------------------------


def test_topics_table_drops_escape_sequences_from_descriptions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """taxonomy.yaml checks a topic's name for control characters, not its description,
    and the `topics` table printed the description as written: a shared taxonomy's
    ``"\\e]0;…\\a"`` retitled the terminal window, ``"\\e[31m"`` recoloured it and
    U+202E reversed the rest of the line. The table now shows descriptions as it shows
    titles (README: control characters and escape sequences dropped); JSON and CSV keep
    them as written."""
    import yaml

    use(tmp_path, None, monkeypatch)
    models = tmp_path / "models"
    models.mkdir()
    evil = "Evil \x1b]0;pwned\x07 \x1b[31mred\x1b[0m \u202eesrever\x9b2J"
    topic = {"id": "dns", "name": "DNS", "description": evil}
    (models / "taxonomy.yaml").write_text(yaml.safe_dump({"version": 1, "topics": [topic]}))
    monkeypatch.setenv("AGGREGATOR_MODELS_DIR", str(models))
    monkeypatch.setenv("COLUMNS", "120")
    code, out, err = run(capsys, "topics")
    assert code == 0, err
    assert not any(c in out for c in "\x1b\x07\x9b\u202e"), repr(out)
    assert "Evil  red esrever" in out  # the sequences gone, the text kept
    code, out, err = run(capsys, "topics", "--format", "json")
    assert code == 0, err
    assert json.loads(out)[0]["description"] == evil


# --- a story dated in the year 1 (Go's and .NET's zero time, as Hugo writes it) ---------------


def test_a_story_dated_year_one_shows_its_whole_year(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    server: LocalServer,
) -> None:
    """Hugo dates a page without a date ``Mon, 01 Jan 0001 00:00:00 +0000`` (Go's zero
    time), which is read as it is. The table and `show` wrote the year with strftime,
    which does not pad it: "1-01-01 00:00", a date of no known form, where the JSON said
    0001-01-01T00:00:00Z."""
    from datetime import UTC, datetime

    from aggregator.app import make_app
    from aggregator.config import Settings

    rss = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Hugo site</title>'
        b"<link>https://hugo.example/</link><item><title>A page without a date</title>"
        b"<link>https://hugo.example/page/</link>"
        b"<pubDate>Mon, 01 Jan 0001 00:00:00 +0000</pubDate></item></channel></rss>"
    )
    url = server.route("/index.xml", body=rss, content_type="application/rss+xml")
    use(tmp_path, None, monkeypatch)
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    (tmp_path / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n", encoding="utf-8")
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with make_app(Settings.from_env(), now=lambda: at) as app:
        app.sync_feeds()
        (result,) = list(app.update_due(all_feeds=True, extract=False))
    assert (result.status, result.new) == ("ok", 1)
    code, out, err = run(capsys, "stories", "--format", "json")
    assert code == 0, err
    (listed,) = json.loads(out)
    assert listed["published"] == "0001-01-01T00:00:00Z"
    for columns, shown in (("120", "0001-01-01 00:00"), ("80", "0001-01-01")):
        monkeypatch.setenv("COLUMNS", columns)
        code, out, err = run(capsys, "stories")
        assert code == 0, err
        assert f"│ {shown} │" in out, out
    code, out, err = run(capsys, "show", str(listed["id"]))
    assert code == 0, err
    assert "· 0001-01-01 00:00 UTC" in out, out


# --- an output encoding that cannot hold the text ---------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["stories", "--format", "json"],
        ["stories", "--format", "csv"],
        ["stories"],
        ["show", "1"],
        ["stories", "--new"],
    ],
    ids=["json", "csv", "table", "show", "new"],
)
def test_an_output_encoding_without_the_characters_is_one_error_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    """Under a locale whose encoding lacks a title's characters (ISO-8859-1, ASCII; a
    file on a system set so), Python's stdout cannot encode them: every command that
    printed such a story ended in a UnicodeEncodeError traceback. It is now one
    ``error: cannot write the output`` line naming the way out (a UTF-8 locale or
    PYTHONIOENCODING=utf-8), exit 1, and `stories --new` leaves the stories new. (The
    command under the locale is a process, its stdout a real pipe; the read afterwards
    runs the CLI's main in this process, tests/clirun.py.)"""
    import subprocess
    import sys
    from datetime import UTC, datetime

    from clirun import in_process
    from test_cli_read_audit import story
    from test_store import check

    from aggregator.app import make_app
    from aggregator.config import Settings
    from aggregator.types import FeedSource

    use(tmp_path, None, monkeypatch)
    now = datetime.now(UTC).replace(microsecond=0)
    with make_app(Settings.from_env()) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://a.example/feed"), now)
        app.store.save_update(check(feed.id, at=now), [story("k1", "東京 DNS outage")])
    env = {**os.environ, "PYTHONIOENCODING": "latin-1", "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", *argv],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    err = done.stderr.decode("latin-1")
    assert done.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: cannot write the output:") and "PYTHONIOENCODING" in err
    if argv[-1] == "--new":  # left new: read whole by an output that holds them
        env["PYTHONIOENCODING"] = "utf-8"
        read = in_process(monkeypatch, capfd)
        again = read(env, "stories", "--new", "--format", "json", cwd=tmp_path, timeout=60)
        assert [s["title"] for s in json.loads(again.stdout)] == ["東京 DNS outage"]


# --- stories --new: two reads of one list at once ----------------------------------------------


def test_a_read_that_ends_last_does_not_move_the_list_back(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two reads of one reading list at once (cron's `stories --new --cursor digest` and
    the user's own): the one that began first, and so saw less, ended last and saved its
    older place over the other's, so the stories only the other had listed were listed
    again at the next read. The place only moves forward now."""
    from datetime import UTC, datetime

    from test_cli_read_audit import story
    from test_store import check

    from aggregator.app import make_app
    from aggregator.config import Settings
    from aggregator.types import FeedSource, StoryQuery

    use(tmp_path, None if db_url.startswith("sqlite") else db_url, monkeypatch)
    now = datetime.now(UTC).replace(microsecond=0)
    with make_app(Settings.from_env()) as a:
        feed, _ = a.store.add_feed(FeedSource(url="https://a.example/feed"), now)

        def save(*keys: str) -> None:
            a.store.save_update(check(feed.id, at=now), [story(k, k) for k in keys])

        def titles(ids: list[int]) -> list[str]:
            return sorted(s.title for s in a.store.get_stories(ids))

        everything = StoryQuery(limit=None)
        save("one")
        first = a.unread(everything, "digest")
        a.mark_read("digest", first)
        save("two")
        slow = a.unread(everything, "digest")  # begins, sees "two"
        save("three")
        quick = a.unread(everything, "digest")  # begins later, sees "two" and "three"
        assert titles(quick.ids) == ["three", "two"]
        a.mark_read("digest", quick)  # ends first
        a.mark_read("digest", slow)  # ends last, with the older place
        save("four")
        assert titles(a.unread(everything, "digest").ids) == ["four"]
