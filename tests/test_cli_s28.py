"""The CLI, evaluation and OPML import as a demanding user meets them, found in session
28: the real CLI in-process against real files and a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_evaluate import GOLD_A, rec
from test_learning_cli import run
from test_query_s26 import use

from aggregator.evaluation import HISTORY_FILE, EvalHistory

# --- evaluate: a corrupt history is warned about once ---------------------------------------


def test_a_corrupt_evaluation_history_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One `evaluate` reads the history twice, as here (the previous run to compare
    with, then again under its lock to add its own), and each read logged "evaluation
    history … unreadable, starting afresh": the same warning twice in one run. A bad
    record was skipped with a warning twice likewise."""
    h = EvalHistory(tmp_path / HISTORY_FILE)
    h.path.write_text("{not json", encoding="utf-8")
    assert h.previous(GOLD_A, "v2") is None
    h.add(rec("v2", GOLD_A, 1))
    assert caplog.text.count("unreadable") == 1, caplog.text
    caplog.clear()
    # recorded afresh: the next run reads it without a word
    again = EvalHistory(h.path)
    assert again.previous(GOLD_A, "v3") == rec("v2", GOLD_A, 1)
    again.add(rec("v3", GOLD_A, 2))
    assert caplog.text == ""
    # a bad record among good ones: skipped, said once per run
    h.path.write_text(
        h.path.read_text(encoding="utf-8").replace('"evaluations": [', '"evaluations": [7, ', 1),
        encoding="utf-8",
    )
    third = EvalHistory(h.path)
    assert third.previous(GOLD_A, "v4") == rec("v3", GOLD_A, 2)
    third.add(rec("v4", GOLD_A, 3))
    assert caplog.text.count("skipping a bad record") == 1, caplog.text


# --- feeds add / feeds enable: a URL or id that fails among others --------------------------


def test_feeds_add_exits_2_when_any_url_is_not_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``feeds add URL1 URL2`` with one URL refused exited 0, as if both were added (only
    all of them failing exited 2): a script could not tell. The others are still added,
    and the status is the one that URL alone gives."""
    use(tmp_path, None, monkeypatch)
    good = ("https://p.example/a", "https://p.example/b")
    code, out, err = run(
        capsys, "feeds", "add", "--no-discover", good[0], "ftp://p.example/x", good[1]
    )
    assert code == 2
    assert "not added ftp://p.example/x" in " ".join(err.split())
    assert out.splitlines() == [f"added: {good[0]}", f"added: {good[1]}"]
    alone = run(capsys, "feeds", "add", "--no-discover", "ftp://p.example/x")[0]
    assert alone == 2
    # every URL added (or already there): 0
    code, out, err = run(capsys, "feeds", "add", "--no-discover", *good)
    assert code == 0, err
    code, out, _ = run(capsys, "feeds", "list", "--format", "json")
    assert sorted(f["url"] for f in json.loads(out)) == list(good)


def test_feeds_enable_enables_every_feed_named_and_exits_2_for_one_it_cannot_find(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``feeds enable A 999 B`` stopped at the id no feed has: A was enabled, B (named
    after it) not, and the one error line did not say so. Every feed found is enabled,
    each ref not found is one ``not found`` line, and the exit status is 2."""
    use(tmp_path, None, monkeypatch)
    urls = ("https://p.example/a", "https://p.example/b")
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n" + "".join(f"  - {{url: '{u}', enabled: false}}\n" for u in urls)
    )
    code, out, err = run(capsys, "feeds", "list", "--format", "json")  # syncs the file
    assert code == 0, err
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    code, out, err = run(capsys, "feeds", "enable", urls[0], "999", urls[1])
    assert code == 2
    assert out.splitlines() == [f"enabled: {urls[0]}", f"enabled: {urls[1]}"]
    assert "not found: no feed 999" in err
    code, out, _ = run(capsys, "feeds", "list", "--format", "json")
    assert [f["enabled"] for f in json.loads(out)] == [True, True]
