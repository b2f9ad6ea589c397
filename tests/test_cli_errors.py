"""Bad input and configuration give one clear line on stderr and exit status 2, never a
traceback: a data directory that cannot be made, a database URL the store could not open,
a --since / --until span too large for a date.

The CLI's ``main`` as ``python -m aggregator`` runs it, in the test process (tests/clirun.py:
what reaches file descriptors 1 and 2, and the log, is what the test reads, so a traceback
printed or logged fails it, and one raised fails the test at once); a closed stdin is a
real process's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from clirun import in_process

Aggregator = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def aggregator(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Aggregator:
    """``aggregator(cwd, *argv, env=None)``: the CLI on the data directory and feeds file
    in ``cwd``, run from there, with ``env`` added to the environment."""
    run = in_process(monkeypatch, capfd)

    def aggregator(
        cwd: Path, *argv: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
        environ.update(
            AGGREGATOR_DATA_DIR=str(cwd / "data"),
            AGGREGATOR_FEEDS=str(cwd / "feeds.yaml"),
            COLUMNS="200",
            **(env or {}),
        )
        return run(environ, *argv, cwd=cwd, timeout=60)

    return aggregator


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0]
    assert result.returncode == 2
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("data_dir", "expected"),
    [
        ("a-file", ["cannot use a-file as the data directory: it is not a directory"]),
        ("a-file/data", ["cannot create the data directory a-file/data", "Not a directory"]),
        ("/proc/x/y", ["cannot create the data directory /proc/x/y", "No such file"]),
    ],
    ids=["is-a-file", "under-a-file", "proc"],
)
def test_a_data_directory_that_cannot_be_made(
    aggregator: Aggregator, tmp_path: Path, data_dir: str, expected: list[str]
) -> None:
    (tmp_path / "a-file").write_text("not a directory\n")
    assert_one_clear_line(aggregator(tmp_path, "--data-dir", data_dir, "stories"), *expected)


@pytest.mark.parametrize("kind", ["directory", "text-file"])
def test_a_database_path_that_is_no_database(
    aggregator: Aggregator, tmp_path: Path, kind: str
) -> None:
    """A directory, or a file of something else, where the SQLite file goes: one line
    naming it, exit 2 (the store said "unable to open database file", exit 1)."""
    db = tmp_path / "data" / "aggregator.db"
    if kind == "directory":
        db.mkdir(parents=True)
        expected = f"cannot use {db} as the database: it is a directory"
    else:
        db.parent.mkdir()
        db.write_text("feeds:\n")
        expected = f"cannot use {db} as the database: it is not a SQLite file"
    for argv in (["stories"], ["daemon"]):
        assert_one_clear_line(aggregator(tmp_path, *argv), expected)
    assert db.exists() and (kind == "directory" or db.read_text() == "feeds:\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_data_directory_under_a_read_only_one(aggregator: Aggregator, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = aggregator(tmp_path, "--data-dir", str(locked / "data"), "stories")
    finally:
        locked.chmod(0o755)
    assert_one_clear_line(result, "cannot create the data directory", "Permission denied")


def test_the_demo_keep_directory_is_checked_too(aggregator: Aggregator, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x\n")
    result = aggregator(tmp_path, "demo", "--keep", "a-file/db", "-o", str(tmp_path / "o.atom"))
    assert_one_clear_line(result, "cannot create the data directory a-file/db")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg2://u:secret@127.0.0.1/db",
            ["'psycopg2'", "is not available", "use postgresql+psycopg://"],
        ),
        ("postgresql://u:secret@127.0.0.1:notaport/db", ["port 'notaport' is not a number"]),
        ("postgresql://u:secret@127.0.0.1:99999/db", ["port 99999 is out of range"]),
        ("mysql://u:secret@127.0.0.1/db", ["unsupported database URL", "postgresql+psycopg://"]),
    ],
    ids=["psycopg2", "port-not-a-number", "port-out-of-range", "mysql"],
)
@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_database_url_the_store_cannot_open(
    aggregator: Aggregator, tmp_path: Path, url: str, expected: list[str], how: str
) -> None:
    if how == "flag":
        result = aggregator(tmp_path, "--database-url", url, "stories")
    else:
        result = aggregator(tmp_path, "stories", env={"AGGREGATOR_DATABASE_URL": url})
    assert_one_clear_line(result, *expected)
    assert "secret" not in result.stderr  # the password is never echoed


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["stories", "--since", "999999999d"], "--since 999999999d is too far back"),
        (["export", "--since", "99999999999d"], "--since 99999999999d is too far back"),
        (["stories", "--until", "999999999w"], "--until 999999999w is too far back"),
        (
            ["stories", "--since", "0001-01-01T00:00:00+01:00"],
            "--since 0001-01-01T00:00:00+01:00 is out of range",
        ),
    ],
    ids=["stories-since", "export-since", "until-weeks", "iso-before-year-1"],
)
def test_a_span_too_large_for_a_date(
    aggregator: Aggregator, tmp_path: Path, argv: list[str], expected: str
) -> None:
    assert_one_clear_line(aggregator(tmp_path, *argv), expected)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--show", "5", "--format", "json"], "--show lists stories after the poll's table"),
        (["--show", "5", "--quiet"], "--quiet has none"),
        (["--show", "-1"], "--show takes a number of stories, 0 or more"),
    ],
    ids=["json", "quiet", "negative"],
)
def test_poll_show_that_would_print_nothing_is_bad_input(
    aggregator: Aggregator, tmp_path: Path, argv: list[str], expected: str
) -> None:
    """`--show N` with `--format json` or `--quiet` was silently ignored."""
    assert_one_clear_line(aggregator(tmp_path, "poll", *argv), expected)


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5"])
def test_a_daemon_max_sleep_that_cannot_work_is_bad_input(
    aggregator: Aggregator, tmp_path: Path, value: str
) -> None:
    """`--max-sleep nan` ran the cycle in a loop that never slept (a core at 100%, the
    database read without pause); 0 or a negative number polled again at once after
    every cycle that stored something. Each started the daemon without a word."""
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    result = aggregator(tmp_path, "daemon", f"--max-sleep={value}")
    assert_one_clear_line(result, "--max-sleep must be a positive number of seconds")


def test_an_error_line_is_printed_as_written_not_as_emoji(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    """rich read ``:-1:`` and ``:100:`` in an error line as emoji codes: `serve --port -1`
    said "cannot listen on 127.0.0.1👎 bind()…", and an entry on line 100 of the feeds
    file was "feeds.yaml💯 feed #1: …"."""
    result = aggregator(tmp_path, "serve", "--port", "-1")
    assert_one_clear_line(result, "cannot listen on 127.0.0.1:-1: ")
    lines = ["feeds:", *["  # a comment"] * 98, "  - name: no URL"]
    (tmp_path / "feeds.yaml").write_text("\n".join(lines) + "\n")
    assert_one_clear_line(aggregator(tmp_path, "feeds", "list"), "feeds.yaml:100: feed #1: ")


def test_classify_from_a_closed_stdin_is_one_clear_line(tmp_path: Path) -> None:
    """`aggregator classify - <&-` (a cron job or a service with no input): Python then
    has no sys.stdin at all, and reading it was an AttributeError traceback."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "classify", "-"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(0),
    )
    assert result.returncode == 2 and not result.stdout
    assert_one_clear_line(result, "standard input is closed")
