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


def test_a_gold_file_of_off_topic_stories_reports_what_means_something(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Every gold story off-topic ("topics": []): evaluate printed precision, recall and F1
    # of 0.000 (no positives: they are undefined, and 0 reads as "all wrong") and never
    # what such a file measures, the share of those stories the model gives a topic.
    gold = env / "off.jsonl"
    gold.write_text(
        "".join(
            json.dumps({"title": t, "text": x, "topics": []}) + "\n"
            for t, x in [
                ("Home team wins the cup final", "Fans celebrated downtown."),
                ("Chef opens a new restaurant", "Seasonal dishes on the menu."),
                ("Heavy rain expected this weekend", "Rivers may flood."),
                # the model's own words: it gives this one a topic
                ("Ransomware gang exploits vpn vulnerability", "Malware by phishing."),
            ]
        )
    )
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["positives"] == 0
    assert data["off_topic"] == {"stories": 4, "given_a_topic": 1, "share": 0.25}
    assert data["micro"] == {"precision": 0.0, "recall": None, "f1": None}
    assert data["macro"] == {"precision": None, "recall": None, "f1": None}
    code, out, err = run(capsys, "evaluate", str(gold))
    assert code == 0, err
    text = " ".join(out.split())
    assert "off-topic stories given a topic: 1 of 4 (25.0 %)" in text, out
    assert "undefined" in text and "no story in any topic" in text, out
    assert "micro" not in text, out
    # status shows that evaluation for what it was, not as F1 0
    code, out, err = run(capsys, "status")
    assert code == 0, err
    assert "on off.jsonl (4 stories): off-topic stories only" in " ".join(out.split()), out
    code, out, err = run(capsys, "status", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["model"]["evaluated"]["micro_f1"] is None
    # and the next model is compared with it on that share, not on F1 0 → 0
    store([SEC])
    code, out, err = run(capsys, "train", "--quiet")
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", str(gold))
    assert code == 0, err
    text = " ".join(out.split())
    assert "off-topic stories given a topic 25.0 % → " in text, out
    assert "F1" not in text.split("undefined")[1], out


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "Attackers deliver malware by phishing."},
        # both names of the text: evaluate read 'summary', classify 'text'
        {"summary": "Domain investors expect domain name sales.", "text": "Malware by phishing."},
        # an empty 'text' beside a 'summary': classify scored the title alone
        {"text": "", "summary": "Attackers deliver malware by phishing."},
        # the page's full text: evaluate read it, classify left it out
        {
            "text": "Attackers deliver malware by phishing.",
            "full_text": "Registrar raises renewal prices for domain names. " * 20,
        },
        {"text": "Lawmakers debate the directive.", "categories": ["infosec", "Domains"]},
        # no title: evaluate refused the line, classify scored its text
        {"title": None, "text": "Attackers deliver malware by phishing."},
    ],
    ids=["text", "summary-and-text", "empty-text", "full-text", "categories", "no-title"],
)
def test_classify_and_evaluate_read_a_line_alike(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, object],
) -> None:
    # The same story scored otherwise by `classify` and by `evaluate`: each built the
    # model's input from the line's fields its own way.
    from aggregator.evaluation import read_gold

    line = {"title": "Regulator proposes rules for platforms", **fields}
    src = env / "in.jsonl"
    src.write_text(json.dumps({"id": 1, **line}) + "\n")
    code, out, err = run(capsys, "classify", str(src))
    assert code == 0, err
    classified = {t["topic"]: t["score"] for t in json.loads(out)["topics"]}
    gold = env / "gold.jsonl"
    gold.write_text(json.dumps({**line, "topics": []}) + "\n")
    with open_app() as app:
        (example,), _ = read_gold(gold, app.taxonomy)
        (pred,) = app.predictor.predict([example.doc])
    assert {t.topic: round(t.score, 4) for t in pred.topics} == classified
