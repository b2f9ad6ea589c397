"""The learning commands, hunted: what a demanding user of classify, label, train,
evaluate and explain met (each test names what went wrong before its fix)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from test_taxonomy_changes import (  # noqa: F401  (env, shipped: fixtures)
    DOM,
    POL,
    SEC,
    TOPICS,
    _write_taxonomy,
    env,
    open_app,
    run,
    shipped,
    store,
)


def test_brackets_in_topic_names_and_paths_are_printed_as_they_are(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Printed as rich markup: "[beta]" was read as a style and dropped ("topics: Policy &
    # Regulation  1.00 (user)"), and so was a "[work]" in the data directory's path
    # ("model written to /home/me/ news/..."); a "[/...]" in it ended `train` in a
    # MarkupError traceback after the model was written.
    data = env / "[work] [/old]" / "data"
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(data))
    ids = store([POL, SEC, POL, SEC])
    _write_taxonomy(env / "models", [{**t, "name": f"{t['name']} [beta]"} for t in TOPICS])
    code, out, err = run(capsys, "train", "--quiet")
    assert code == 0, err
    assert f"model written to {data / 'models' / 'classifier'}" in out.replace("\n", "")
    code, out, err = run(capsys, "train", "--quiet")
    assert code == 0, err
    assert f"model in use: {data / 'models'}" in out.replace("\n", "")
    code, out, err = run(capsys, "label", str(ids[0]), "+Policy & Regulation [beta]")
    assert code == 0, err
    assert "Policy & Regulation [beta] 1.00 (user)" in out
    code, out, err = run(capsys, "label", "--suggest", "3")
    assert code == 0, err
    assert out.count(" [beta]") == 3, out


def test_an_evaluation_that_cannot_be_recorded_is_still_reported(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The history beside the model could not be written (a data directory the user may
    # read but not write, a full disk): the whole evaluation (minutes of cross-validation)
    # ran, then one "error: Is a directory" line and exit 1, the scores never shown.
    store([SEC])  # the data directory and its database, as any install has them
    history = env / "data" / "models" / "evaluations.json"
    history.mkdir(parents=True)  # neither read nor replaced: a file that cannot be written
    gold = env / "gold.jsonl"
    gold.write_text(
        '{"title": "Ransomware gang exploits vpn vulnerability", "topics": ["Security"]}\n'
        '{"title": "Home team wins the cup final", "topics": []}\n'
    )
    with caplog.at_level(logging.WARNING, logger="aggregator.learning"):
        code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
        assert code == 0, err
        assert json.loads(out)["examples"] == 2
        code, out, err = run(capsys, "evaluate", str(gold))
        assert code == 0, err
    assert "Security" in out and "micro" in out
    assert "recorded for the next" not in out
    said = [r.getMessage() for r in caplog.records if r.name == "aggregator.learning"]
    assert len(said) == 2 and all(f"not recorded in {history}" in m for m in said), said
    assert [p.name for p in history.parent.iterdir()] == ["evaluations.json"]  # no tmp left


def test_the_same_labels_are_the_same_training_data_whatever_their_history(
    env: Path,  # noqa: F811
) -> None:
    # Labels were read in the order their rows were written: withdrawing a label and
    # giving it again moved its story behind the others, so the very same labels made
    # another model version (`train` fitted again instead of keeping the model in use)
    # and other cross-validation data (`evaluate` found no earlier run to compare with).
    from aggregator.artifact import model_version
    from aggregator.evaluation import examples_sha256

    sec, dom, pol = store([SEC, DOM, POL])
    with open_app() as app:

        def data() -> tuple[str, str]:
            examples = app.learning.examples()
            user = [e for e in examples if e.source == "user"]
            return model_version(examples, app.taxonomy), examples_sha256(user)

        app.label(sec, ["Security"], [])
        app.label(dom, ["Domains"], ["Security"])
        app.label(pol, [], ["IPv6"])
        before = data()
        app.label(sec, [], [], ["Security"])
        app.label(sec, ["Security"], [])
        assert data() == before
