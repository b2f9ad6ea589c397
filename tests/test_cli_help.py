"""`aggregator --help` lists each command with its docstring's first paragraph as one
line that the table wraps (typer kept the docstring's line breaks, so the list read as
ragged fragments), for the commands of `feeds` too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_errors import Aggregator, aggregator  # noqa: F401  (aggregator: fixture)


def _rows(help_text: str) -> dict[str, str]:
    """The Commands panel as {command: its summary}, at 200 columns (one line each)."""
    panel = help_text.split("Commands", 1)[1]
    rows = {}
    for line in panel.splitlines():
        cells = line.strip("│ ╰─╯").split(None, 1)
        if len(cells) == 2:
            rows[cells[0]] = cells[1].rstrip(" │")
    return rows


def test_each_command_is_listed_with_one_summary_line(
    aggregator: Aggregator,  # noqa: F811
    tmp_path: Path,
) -> None:
    shown = aggregator(tmp_path, "--help")
    assert shown.returncode == 0, shown.stderr
    rows = _rows(shown.stdout)
    assert rows["demo"] == (
        "Offline demo: serve bundled sample feeds on 127.0.0.1, run the whole pipeline into"
        " a temporary database, print the tagged stories and write a merged Atom feed."
    )
    assert rows["train"].startswith(
        "Retrain the classifier from your labels, feed categories and the seed examples, then"
    )
    assert {"poll", "stories", "label", "explain", "extract", "feeds"} <= set(rows)

    feeds = _rows(aggregator(tmp_path, "feeds", "--help").stdout)
    assert feeds["enable"].startswith("Turn feeds back on after the 30-day rule disabled them")
    assert "each is due at once, its error count cleared." in feeds["enable"]


def test_help_and_classify_start_without_the_store(tmp_path: Path) -> None:
    """The CLI imported the App (SQLAlchemy, SQLModel: most of a second) before any
    command ran, for `--help` and for `classify` too, which opens no store. Those run
    without importing it now; a command that reads the store imports it when it runs."""
    import subprocess
    import sys

    code = (
        "import sys; from aggregator.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = {'sqlalchemy', 'sqlmodel', 'aggregator.app', 'aggregator.store'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )

    def loaded(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code, *argv],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "AGGREGATOR_DATA_DIR": str(tmp_path / "data")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert loaded("--help") == "[]"
    assert loaded("classify", "--text", "Registrar suspends phishing domains") == "[]"
    assert not (tmp_path / "data").exists()  # nor a data directory made
    assert "sqlalchemy" in loaded("topics")


def test_a_process_calling_main_again_reuses_the_command_and_still_parses_each_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """typer made the click command again at each call of ``main`` (~40 ms: every
    command's signature read); made once, it still parses every call on its own."""
    from test_learning_cli import run

    from aggregator.cli import _click_command

    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    command = _click_command()
    code, out, _ = run(capsys, "topics", "--format", "json")
    assert code == 0 and json.loads(out)
    code, _, err = run(capsys, "topics", "--format", "yaml")
    assert code == 2 and "yaml" in err
    code, out, _ = run(capsys, "stories", "--format", "json")
    assert code == 0 and json.loads(out) == []
    assert _click_command() is command
