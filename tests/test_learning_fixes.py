"""The classifier commands, fixed in session 24: what a demanding user of train and
evaluate met (each test names what went wrong before its fix). A tiny taxonomy and
model (tests/test_taxonomy_changes.py's), trained through the real code path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_taxonomy_changes import (  # noqa: F401  (env, shipped: fixtures)
    SEC,
    env,
    open_app,
    run,
    shipped,
    store,
)

from aggregator.errors import ConfigError
from aggregator.progress import Step


def test_train_to_a_place_it_cannot_write_fails_before_fitting(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `train` with DATA_DIR/models not a directory it can write (here a file in the
    # way: root may write anywhere else) fitted the whole model, minutes of work, and
    # only then failed ("error: File exists", exit 1) when it came to write it.
    store([SEC])
    (env / "data" / "models").write_text("not a directory\n")
    seen: list[str] = []

    def heard(step: Step) -> None:
        seen.append(step.stage)

    with open_app() as app, pytest.raises(ConfigError, match="cannot write the model"):
        app.learning.train(progress=heard, force=True)
    assert not {"heldout", "features", "folds", "heads"} & set(seen), seen
    code, out, err = run(capsys, "train", "--quiet")
    assert code == 2, (out, err)
    assert f"error: cannot write the model to {env / 'data' / 'models' / 'classifier'}" in (
        err.replace("\n", "")
    ), err
    assert (env / "data" / "models").read_text() == "not a directory\n"


def test_python_m_train_to_a_place_it_cannot_write_fails_at_once(
    env: Path,  # noqa: F811
) -> None:
    # `python -m aggregator.train --out DIR` (the shipped model's rebuild): the same
    # check, before the seeds are fitted.
    (env / "file").write_text("")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aggregator.train",
            "--models-dir",
            str(env / "models"),
            "--out",
            str(env / "file" / "classifier"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert f"error: cannot write the model to {env / 'file' / 'classifier'}" in done.stderr
    assert "model " not in done.stdout


def test_a_gold_file_may_name_topics_by_their_aliases(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `evaluate GOLD` refused a topic named by its alias ("infosec", "regulation": as
    # `label ID +infosec` and `stories -t infosec` take it) as an unknown topic, though
    # everywhere else an alias only one topic claims names that topic.
    stories = [
        ("Ransomware gang exploits vpn vulnerability", "Attackers deliver malware."),
        ("Regulator proposes rules for platforms", "Lawmakers debate the directive."),
        ("Registrar raises renewal prices", "Domain investors expect domain name sales."),
        ("Home team wins the cup final", "Fans celebrated downtown."),
    ]

    def gold(name: str, topics: list[list[str]], negative: list[list[str]]) -> Path:
        path = env / name
        path.write_text(
            "".join(
                json.dumps({"title": t, "text": x, "topics": p, "negative": n}) + "\n"
                for (t, x), p, n in zip(stories, topics, negative, strict=True)
            )
        )
        return path

    named = gold(
        "named.jsonl",
        [["Security"], ["Policy & Regulation"], ["Domains"], []],
        [[], [], [], []],
    )
    aliased = gold(
        "aliased.jsonl",
        [["infosec"], ["regulation", "POLICY & REGULATION"], ["domain names"], []],
        [[], [], [], []],
    )
    reports = []
    for path in (named, aliased):
        code, out, err = run(capsys, "evaluate", str(path), "--format", "json")
        assert code == 0, err
        reports.append({k: v for k, v in json.loads(out).items() if k not in ("data", "label")})
    assert reports[0] == reports[1]
    # a topic in both, however each names it, is still refused, naming the line
    both = gold("both.jsonl", [["infosec"], [], [], []], [["Security"], [], [], []])
    code, _, err = run(capsys, "evaluate", str(both))
    assert code == 2 and f"{both}:1" in err and "Security" in err, err
    # and an unknown name is still an error naming its line
    typo = gold("typo.jsonl", [["Security"], [], ["infosek"], []], [[], [], [], []])
    code, _, err = run(capsys, "evaluate", str(typo))
    assert code == 2 and f"{typo}:3: unknown topic 'infosek'" in err.replace("\n", ""), err
