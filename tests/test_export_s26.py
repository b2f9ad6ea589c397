"""``aggregator export`` round trips and its ``-o``: what the real CLI does with an output
path that names a directory or a place it cannot write, and what an exported feed gives
back when it is read (feedparser, the project's parser) or polled as a feed again."""

from __future__ import annotations

import os
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


def test_export_to_a_place_it_cannot_write_names_the_file_given(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A directory that cannot be written (sysfs refuses new files, even to root) or a
    path through a regular file: the error named the temporary file beside the output
    (``No such file or directory: /sys/merged.atom.5c1f….tmp``) or the parent alone, as
    if it should not exist (``File exists: notes``). It names the output the user gave
    and why it cannot be written; exit 1, nothing left behind."""
    (env / "notes").write_text("a file, not a directory\n")
    targets = [env / "notes" / "merged.atom"]
    if os.path.isdir("/sys/kernel"):
        targets.append(Path("/sys/kernel/merged.atom"))
    for target in targets:
        code, out, err = run(capsys, "export", "-o", str(target))
        assert (code, out) == (1, "")
        assert err.startswith(f"error: cannot write {target}: "), err
        assert err.count("\n") == 1 and ".tmp" not in err, err
        assert not target.parent.is_dir() or not list(target.parent.glob("merged.atom*"))
    assert sorted(p.name for p in env.iterdir()) == ["data", "feeds.yaml", "notes"]
    assert (env / "notes").read_text() == "a file, not a directory\n"
