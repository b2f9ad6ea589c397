"""The learning commands, hunted: what a demanding user of classify, label, train,
evaluate and explain met (each test names what went wrong before its fix)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
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
    # and where a story's topics and the taxonomy are shown
    code, out, err = run(capsys, "show", str(ids[0]))
    assert code == 0, err
    assert "topics: Policy & Regulation [beta] 1.00 (user)" in out, out
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run(capsys, "topics")
    assert code == 0, err
    assert out.count(" [beta]") == len(TOPICS), out
    code, out, err = run(capsys, "stories", "--limit", "1")
    assert code == 0, err
    assert "[beta]" in out, out


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


def test_a_train_killed_before_its_swap_leaves_no_copy_behind_for_good(
    env: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    # A `train` killed outright while writing (the OOM killer, SIGKILL: nothing a signal
    # handler can clean up) left its `.classifier.tmp-PID` beside the model in use, and
    # one killed after its swap the old model as `.classifier.old-PID`: a whole model
    # each, kept for good (only a missing `classifier/` was ever looked at), so every
    # killed run cost the disk another copy. The next training removes those of dead
    # processes (but one just written), and leaves a running one's alone.
    from aggregator.examples import load_seed_examples
    from aggregator.taxonomy import Taxonomy
    from aggregator.train import train

    models = env / "data" / "models"
    out = models / "classifier"
    shutil.copytree(env / "models" / "classifier", out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        left = [models / f".classifier.tmp-{dead.pid}", models / f".classifier.old-{dead.pid}"]
        running = models / f".classifier.tmp-{alive.pid}"
        # just written, by a train that may live in another PID namespace (a container)
        fresh = models / f".classifier.tmp-{dead.pid + 1_000_000}"
        for p in [*left, running, fresh]:
            p.mkdir()
            (p / "model.joblib").write_bytes(b"\0" * 1000)
        hour_ago = time.time() - 3600
        for p in [*left, running]:
            os.utime(p, (hour_ago, hour_ago))
        train(
            load_seed_examples(env / "models"),
            Taxonomy.load(env / "models" / "taxonomy.yaml"),
            out,
            params={"cv_folds": 3, "holdout": 0},
        )
        assert sorted(p.name for p in models.iterdir()) == sorted(
            ["classifier", running.name, fresh.name]
        )
    finally:
        alive.kill()
        alive.wait()


def test_a_label_given_by_an_alias_is_withdrawn_by_it(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `label ID +infosec` labels Security (an alias only Security claims names it), but
    # `label ID --forget infosec` withdrew nothing, said nothing and exited 0: the
    # label stayed, and the user believed it gone.
    (story,) = store([SEC])
    code, _, err = run(capsys, "label", str(story), "+infosec")
    assert code == 0, err
    with open_app() as app:
        assert app.story_labels(story) == (("Security",), ())
    code, _, err = run(capsys, "label", str(story), "--forget", "infosec")
    assert code == 0, err
    assert "no label" not in err
    with open_app() as app:
        assert app.story_labels(story) == ((), ())
    # and said, as for a topic named, when there is nothing to withdraw
    code, _, err = run(capsys, "label", str(story), "--forget", "infosec")
    assert code == 0 and "story 1 had no label on Security to withdraw" in err, err


def test_a_model_directory_that_is_a_symlink_is_replaced_by_train(
    env: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    # DATA_DIR/models/classifier as a symbolic link to a model kept elsewhere: `train`
    # put its new model in place, then failed to delete the link it had set aside
    # ("Cannot call rmtree on a symbolic link", exit 1), so nothing was re-tagged and
    # the link stayed beside the model as `.classifier.old-PID`.
    from aggregator.examples import load_seed_examples
    from aggregator.taxonomy import Taxonomy
    from aggregator.train import train

    kept = tmp_path / "elsewhere" / "classifier"
    shutil.copytree(env / "models" / "classifier", kept)
    before = sorted(p.name for p in kept.iterdir())
    models = env / "data" / "models"
    models.mkdir(parents=True)
    (models / "classifier").symlink_to(kept, target_is_directory=True)
    report = train(
        load_seed_examples(env / "models"),
        Taxonomy.load(env / "models" / "taxonomy.yaml"),
        models / "classifier",
        params={"cv_folds": 3, "holdout": 0},
    )
    assert [p.name for p in models.iterdir()] == ["classifier"]
    assert not (models / "classifier").is_symlink()
    assert (models / "classifier" / "manifest.json").is_file()
    assert report.out_dir == models / "classifier"
    assert sorted(p.name for p in kept.iterdir()) == before  # what it pointed to, untouched


def test_text_with_no_title_line_is_read_as_json_lines_read_it(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `--text` reads its first line as the title: a text whose first line is empty (a
    # story without a title, as `printf '%s\n%s' "$TITLE" "$BODY"` gives one) had its
    # body read as the title, with the title's weight, and scored otherwise than the
    # same story in JSON Lines ({"title": "", "text": BODY}).
    body = "Ransomware gang exploits vpn vulnerability. Attackers deliver malware by phishing."
    src = env / "in.jsonl"
    for title in ("", "Registrar raises renewal prices"):
        src.write_text(json.dumps({"id": "text", "title": title, "text": body}) + "\n")
        code, as_jsonl, err = run(capsys, "classify", str(src))
        assert code == 0, err
        for newline in ("\n", "\r\n"):
            code, as_text, err = run(capsys, "classify", "--text", f"{title}{newline}{body}")
            assert code == 0, err
            assert as_text == as_jsonl, (title, newline)


def test_a_leftover_named_with_a_number_no_pid_can_be_is_left_alone(tmp_path: Path) -> None:
    # ".classifier.tmp-99999999999" beside no classifier/: asking whether that process
    # was alive raised OverflowError, a traceback from every command that looks for the
    # model (classify, poll, status …). No process wrote it: a stranger's, left alone.
    from aggregator.config import Settings

    s = Settings.from_env({}, data_dir=tmp_path / "data")
    stranger = s.trained_models_dir / ".classifier.tmp-99999999999"
    shutil.copytree(Path(__file__).resolve().parents[1] / "models" / "classifier", stranger)
    assert s.active_models_dir == s.models_dir  # the shipped one
    assert [p.name for p in s.trained_models_dir.iterdir()] == [stranger.name]
