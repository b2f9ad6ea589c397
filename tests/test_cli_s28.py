"""The CLI, evaluation and OPML import as a demanding user meets them, found in session
28: the real CLI in-process against real files and a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_evaluate import GOLD_A, rec

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
