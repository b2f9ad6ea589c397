"""The classifier commands' input and output, fixed in session 27 (second pass): what a
script feeding `classify` and `evaluate` met (each test names what went wrong before its
fix), through the real CLI with the shipped model."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest
from test_evaluate import env
from test_learning_cli import run

from aggregator.cli.jsonlines import MAX_LINE_BYTES
from aggregator.evaluation import HISTORY_FILE

__all__ = ["env"]  # the fixture, shared with test_evaluate


def _huge_input() -> bytes:
    """Three lines, the second one byte over the cap (its line feed not counted)."""
    head, tail = b'{"id": 2, "title": "', b'"}'
    huge = head + b"a" * (MAX_LINE_BYTES + 1 - len(head) - len(tail)) + tail + b"\n"
    assert len(huge) == MAX_LINE_BYTES + 2
    return b'{"id": 1, "title": "DNS outage"}\n' + huge + b'{"id": 3, "title": "DNS outage"}\n'


def test_a_line_over_the_cap_is_one_bad_line_and_the_rest_is_classified(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A line was read whole before anything looked at it: `head -c 2G /dev/zero | tr
    # '\0' a | aggregator classify -` grew without bound until the machine swapped or
    # the command was killed, the lines after it never answered.
    data = _huge_input()
    src = env / "in.jsonl"
    src.write_bytes(data)
    code, out, err = run(capsys, "classify", str(src))
    assert code == 1
    assert [json.loads(line)["id"] for line in out.splitlines()] == [1, 3]
    said = " ".join(err.split())
    assert "in.jsonl line 2: longer than 16 MiB; skipped" in said, said
    # and from a pipe, the line arriving in pieces
    read_end, write_end = os.pipe()

    def write() -> None:
        with open(write_end, "wb") as w:
            w.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    with open(read_end, encoding="utf-8") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        code, out, err = run(capsys, "classify", "-")
    writer.join()
    assert code == 1
    assert [json.loads(line)["id"] for line in out.splitlines()] == [1, 3]
    assert "stdin line 2: longer than 16 MiB; skipped" in " ".join(err.split()), err


def test_evaluate_json_says_whether_the_run_was_recorded(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `evaluate --format json` whose history could not be written (a read-only data
    # directory, a full disk) gave the same JSON as one recorded: a script comparing
    # models run after run could not tell that the next one would have nothing to
    # compare with.
    gold = env / "gold.jsonl"
    gold.write_text(
        '{"title": "Ransomware gang exploits vpn vulnerability", "topics": ["Security"]}\n'
        '{"title": "Home team wins the cup final", "topics": []}\n'
    )
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["recorded"] is True
    history = env / "data" / "models" / HISTORY_FILE
    history.unlink()
    history.mkdir()  # a file that cannot be replaced
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["recorded"] is False


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


def test_null_negative_is_none_in_a_gold_file(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `"negative": null`, as a script exporting labels from a table with an empty column
    # writes it, refused the whole gold file ("line 1: 'negative' must be a list of
    # strings"); `"topics": null` is still an error there, a story left unlabelled.
    gold = env / "gold.jsonl"
    gold.write_text(
        '{"title": "Ransomware gang exploits vpn vulnerability", "topics": ["Security"], '
        '"negative": null}\n{"title": "Home team wins the cup final", "topics": []}\n'
    )
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["examples"] == 2
    gold.write_text('{"title": "Home team wins the cup final", "topics": null}\n')
    code, out, err = run(capsys, "evaluate", str(gold))
    assert code == 2 and "gold.jsonl:1: 'topics' must be a list of strings" in err, err
