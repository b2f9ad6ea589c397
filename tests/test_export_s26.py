"""``aggregator export`` round trips and its ``-o``: what the real CLI does with an output
path that names a directory or a place it cannot write, and what an exported feed gives
back when it is read (feedparser, the project's parser) or polled as a feed again."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_learning_cli import env, run  # noqa: F401  (env: fixture)

# --- -o FILE ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["", ".", "/", "..", "dir", "dir/"])
def test_export_to_a_directory_is_one_clear_error_and_writes_nothing(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """``-o`` naming a directory: ``-o .``, ``-o /`` and ``-o ""`` ended in a traceback
    (``ValueError: PosixPath('.') has an empty name``); ``-o dir`` rendered the whole
    document, then said ``Is a directory: dir.3f9c….tmp``, a file the user never named,
    and ``-o ..`` wrote a temporary file into the working directory before failing with
    ``Device or resource busy``. Each is one line naming the path given, exit 2, before
    any work, and nothing is left behind."""
    work = env / "work"
    (work / "dir").mkdir(parents=True)
    monkeypatch.chdir(work)
    assert run(capsys, "export")[0] == 0  # the database made
    before = sorted(p.name for p in work.rglob("*")), sorted(p.name for p in env.iterdir())
    code, out, err = run(capsys, "export", "--format", "rss", "-o", where)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "is a directory" in err and ".tmp" not in err
    assert (sorted(p.name for p in work.rglob("*")), sorted(p.name for p in env.iterdir())) == (
        before
    )
