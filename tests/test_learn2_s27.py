"""The classifier commands' input and output, fixed in session 27 (second pass): what a
script feeding `classify` and `evaluate` met (each test names what went wrong before its
fix), through the real CLI with the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_evaluate import env
from test_learning_cli import run

__all__ = ["env"]  # the fixture, shared with test_evaluate


def test_null_categories_are_missing_ones_in_evaluate_as_in_classify(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `"categories": null` (what a script writes for a story its feed gave no category)
    # was read as none by `classify`, but `evaluate` refused the whole gold file: "line
    # 1: 'categories' must be a list of strings".
    line = {"id": 1, "title": "DNS outage at the registry", "categories": None}
    src = env / "in.jsonl"
    src.write_text(json.dumps(line) + "\n")
    code, out, err = run(capsys, "classify", str(src))
    assert code == 0, err
    topics = {t["topic"] for t in json.loads(out)["topics"]}
    gold = env / "gold.jsonl"
    gold.write_text(json.dumps({**line, "topics": sorted(topics)}) + "\n")
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert got["examples"] == 1
    assert got["micro"]["f1"] in (1.0, None)  # scored as classify scored it
