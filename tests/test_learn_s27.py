"""The classifier commands, fixed in session 27: what a demanding user of classify,
label, train, evaluate and explain met (each test names what went wrong before its fix),
through the real CLI on real stores, with tiny taxonomies and models trained through the
real code path."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import sys
from pathlib import Path

import pytest
from test_evaluate import GOLD_A, env, rec
from test_learning_cli import run, seed_stories

from aggregator.evaluation import HISTORY_FILE, EvalHistory

__all__ = ["env"]  # the fixture, shared with test_evaluate


def _add_many(path: str, prefix: str, n: int) -> None:
    h = EvalHistory(Path(path))
    for i in range(n):
        h.add(rec(f"{prefix}{i}", GOLD_A, i))


def test_two_evaluations_recorded_at_once_both_stay_in_the_history(tmp_path: Path) -> None:
    # `add` read the history, then replaced the file with what it read plus its record:
    # two `evaluate` runs finishing together (two terminals, a cron job) each wrote the
    # history it read, and one run's record was lost without a word.
    path = tmp_path / "models" / HISTORY_FILE
    n = 15
    ctx = multiprocessing.get_context("fork")
    others = [ctx.Process(target=_add_many, args=(str(path), p, n)) for p in ("a",)]
    for p in others:
        p.start()
    _add_many(str(path), "c", n)
    for p in others:
        p.join(10)
        assert p.exitcode == 0
    got = {r.model_version for r in EvalHistory(path).records()}
    assert got == {f"{p}{i}" for p in "ac" for i in range(n)}
    assert sorted(q.name for q in path.parent.iterdir()) == [HISTORY_FILE]  # no tmp left


def test_a_misspelt_topic_is_refused_naming_the_nearest_one(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `label ID +Secrity` said only "unknown topic 'Secrity' (see `aggregator topics`)":
    # a list of 30 topics and their aliases to read through for a one-letter slip.
    (story, *_) = seed_stories(env / "data", classify=False)
    code, _, err = run(capsys, "label", str(story), "+Secrity")
    assert code == 2
    assert err == (
        "error: unknown topic 'Secrity' (see `aggregator topics`): did you mean Cybersecurity?\n"
    )
    code, _, err = run(capsys, "label", str(story), "+Dnss", "-Nope", "-privcy")
    assert code == 2
    assert err == (
        "error: unknown topics 'Dnss', 'Nope', 'privcy' (see `aggregator topics`): "
        "did you mean DNS for 'Dnss', Privacy for 'privcy'?\n"
    )
    # a topic's own name is the nearest, though an alias several topics claim is nearer
    code, _, err = run(capsys, "stories", "-t", "Malwar")
    assert code == 2 and err.endswith("did you mean Malware?\n"), err
    code, _, err = run(capsys, "label", str(story), "+Nope")  # nothing near: as before
    assert err == "error: unknown topic 'Nope' (see `aggregator topics`)\n"
    code, out, err = run(capsys, "label", str(story), "+dns")  # any case, as before
    assert code == 0 and "DNS" in out, err
    gold = env / "gold.jsonl"  # and a gold file's topics, before the model loads
    gold.write_text(
        '{"title": "Cup final", "topics": []}\n{"title": "Leak", "topics": ["Privcy"]}\n'
    )
    code, _, err = run(capsys, "evaluate", str(gold))
    assert code == 2 and err.endswith(
        ":2: unknown topic 'Privcy' (see `aggregator topics`): did you mean Privacy?\n"
    ), err


def test_classify_refuses_a_field_of_the_wrong_type_as_evaluate_does(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A line whose categories were one string ("DNS": a feed category maps to its topic
    # with score 1.0), or whose title or text was a number, was classified as if the
    # field were missing: other topics than `evaluate` gives the same line (which
    # refuses it), and not a word said. Each is now one bad line, named.
    rows = [
        {"id": 1, "title": "Outage", "categories": "DNS"},
        {"id": 2, "title": "Outage", "categories": ["DNS", 7]},
        {"id": 3, "title": 2024, "text": "Resolvers failed."},
        {"id": 4, "title": "Outage", "text": ["Resolvers failed."]},
        {"id": 5, "title": "Outage", "full_text": {"p": "Resolvers failed."}},
        {"id": 6, "title": "Outage", "categories": ["DNS"]},  # good
        {"id": 7, "title": None, "text": "Resolvers failed.", "categories": None},  # good
    ]
    src = env / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run(capsys, "classify", str(src))
    assert code == 1
    assert [json.loads(line)["id"] for line in out.splitlines()] == [6, 7]
    said = " ".join(err.split())
    for n, what in [
        (1, "'categories' must be a list of strings"),
        (2, "'categories' must be a list of strings"),
        (3, "'title' must be a string"),
        (4, "'text' must be a string"),
        (5, "'full_text' must be a string"),
    ]:
        assert f"in.jsonl line {n}: {what}" in said, said


def test_files_joined_with_cat_keep_each_ones_byte_order_mark_readable(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `cat monday.jsonl tuesday.jsonl | aggregator classify -`, each file saved by
    # Notepad or PowerShell (UTF-8 with a BOM): the first file's BOM was skipped, the
    # second's began a line, which was "not valid JSON (Unexpected UTF-8 BOM (decode
    # using utf-8-sig) at column 1)"; a gold file joined so was refused whole.
    bom = b"\xef\xbb\xbf"
    part = bom + b'{"id": 1, "title": "DNS outage at the registry"}\r\n'
    src = env / "in.jsonl"
    src.write_bytes(part + part.replace(b'"id": 1', b'"id": 2'))
    code, out, err = run(capsys, "classify", str(src))
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == [1, 2]
    gold = env / "gold.jsonl"
    gold.write_bytes(
        bom
        + b'{"title": "DNS outage at the registry", "topics": ["DNS"]}\r\n'
        + bom
        + b'{"title": "Home team wins the cup final", "topics": []}\r\n'
    )
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["examples"] == 2


def test_evaluate_reads_a_gold_file_from_stdin_as_classify_does(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `zcat gold.jsonl.gz | aggregator evaluate -` said "cannot read -: No such file or
    # directory", though `classify -` reads stdin and the help gives no other way.
    gold = (
        b'{"title": "Ransomware gang exploits vpn vulnerability", "topics": ["Security"]}\n'
        b'{"title": "Home team wins the cup final", "topics": []}\n'
    )
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gold), encoding="utf-8"))
    code, out, err = run(capsys, "evaluate", "-", "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert got["examples"] == 2
    assert got["data"]["sha256"] == hashlib.sha256(gold).hexdigest()  # the bytes read
    assert got["data"]["what"] == "stdin (2 stories)"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"title": "x"}\n')))
    code, _, err = run(capsys, "evaluate", "-")
    assert code == 2 and 'stdin:1: no "topics"' in err, err
