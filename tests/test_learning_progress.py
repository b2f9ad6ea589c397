"""Progress of the classifier's long commands: the stages `train` and `evaluate` report
through the library's callback, in order and each run to its end, and what the CLI shows
of them: a display on stderr when it is a terminal (a pty), nothing extra on stdout, and
nothing at all through a pipe, with --quiet or with --format json; Ctrl-C still stops
`train` cleanly while the display is up."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_evaluate import GOLD, LABELLED_TOPICS, small_models_dir, write_gold
from test_learning_cli import STORIES, env, run, seed_stories

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.evaluation import evaluate, read_gold
from aggregator.progress import Step

__all__ = ["env"]  # the fixture, shared with test_learning_cli

REPO = Path(__file__).resolve().parents[1]


def stages(steps: Sequence[Step]) -> list[str]:
    """The stages in the order they began."""
    return list(dict.fromkeys(s.stage for s in steps))


def of(steps: Sequence[Step], stage: str) -> list[Step]:
    return [s for s in steps if s.stage == stage]


def assert_runs_to_its_end(steps: Sequence[Step], stage: str) -> None:
    """The stage's units never go back, never pass its total, and reach it."""
    mine = of(steps, stage)
    assert mine, stage
    done = [s.done for s in mine]
    assert done == sorted(done), (stage, done)
    assert all(s.total is None or s.done <= s.total for s in mine), stage
    assert mine[-1].total is not None and mine[-1].done == mine[-1].total, (stage, mine[-1])


def labelled_store(env: Path, capsys: pytest.CaptureFixture[str], labels: int = 1) -> list[int]:
    ids = seed_stories(env / "data", classify=False)
    for story_id in ids[:labels]:
        code, _, err = run(capsys, "label", str(story_id), "+Networks")
        assert code == 0, err
    return ids


def test_train_reports_every_stage_in_order(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    small_models_dir(env, monkeypatch, shipped=False, every=30, topics=LABELLED_TOPICS)
    labelled_store(env, capsys)
    steps: list[Step] = []
    with make_app(Settings.from_env()) as app:
        outcome = app.learning.train(progress=steps.append)
        topics = len(app.taxonomy.names)
    assert stages(steps) == [
        "examples",
        "heldout",
        "features",
        "folds",
        "heads",
        "thresholds",
        "write",
        "retag",
    ]
    for stage in stages(steps):
        assert_runs_to_its_end(steps, stage)
    by_source = outcome.report.by_source
    assert of(steps, "examples")[-1].note == (
        f"1 label, {by_source['feed-category']} feed-category stories, {by_source['seed']:,} seeds"
    )
    # the final model: five folds of a head per topic and the gate, then each head once
    folds = of(steps, "folds")
    assert folds[-1].total == 5 * (topics + 1)
    assert [f"fold {i}/5" for i in range(1, 6)] == list(dict.fromkeys(s.note for s in folds))
    heads = [s.note for s in of(steps, "heads")]
    assert heads[0] == f"topic 1/{topics}" and f"topic {topics}/{topics}" in heads
    assert "relevance gate" in heads
    # the held-out check is the same fit on a share of the examples, then its scoring
    heldout = of(steps, "heldout")
    assert heldout[-1].total == 6 * (topics + 1) + 1
    assert heldout[-1].note.startswith("scoring ") and "held-out examples" in heldout[-1].note
    assert any(s.note == "fold 3/5, cross-validation" for s in heldout)
    assert of(steps, "write")[-1].note == f"{outcome.report.size_bytes / 1e6:.1f} MB"
    retag = of(steps, "retag")
    # a new model: every story was tagged by another one
    assert retag[1].total == len(STORIES) and retag[-1].done == outcome.retagged == len(STORIES)

    # watching changes nothing: the same examples, unwatched, give the same model
    with make_app(Settings.from_env()) as app:
        unwatched = app.learning.train(retag=False, force=True).report
    assert unwatched.model_version == outcome.report.model_version
    assert (unwatched.cv, unwatched.heldout) == (outcome.report.cv, outcome.report.heldout)

    # nothing new to learn: the model is kept, so there is nothing to fit or write
    steps.clear()
    with make_app(Settings.from_env()) as app:
        kept = app.learning.train(progress=steps.append)
    assert kept.unchanged
    assert stages(steps) == ["examples", "retag"]
    # ... and no story to re-tag: the model in use tagged them all
    assert kept.retagged == 0 and of(steps, "retag")[-1].done == 0
    steps.clear()
    with make_app(Settings.from_env()) as app:
        app.learning.train(retag=False, progress=steps.append)
    assert stages(steps) == ["examples"]


@pytest.mark.slow
def test_evaluate_by_cross_validation_reports_its_folds(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # every 400th seed (~24; ~70 at every 90th took twice as long): each fold of the
    # labels' cross-validation is a whole training, and what is checked is the stages
    # shown, not how well it scores (fewer seeds: fewer topics with a positive to fit)
    small_models_dir(env, monkeypatch, shipped=True, every=400)
    labelled_store(env, capsys, labels=5)
    steps: list[Step] = []
    with make_app(Settings.from_env()) as app:
        app.learning.evaluate(progress=steps.append)
    assert stages(steps) == ["examples", "cv"]
    assert of(steps, "examples")[-1].note.startswith("5 labels, ")
    assert_runs_to_its_end(steps, "cv")
    notes = [s.note.split(":")[0] for s in of(steps, "cv")]
    assert list(dict.fromkeys(notes)) == [f"fold {i}/5" for i in range(1, 6)]
    assert "fold 5/5: scoring 1 labelled story" in {s.note for s in of(steps, "cv")}


def test_evaluate_on_a_gold_file_reports_the_stories_scored(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_models_dir(env, monkeypatch, shipped=True)
    gold = write_gold(env / "gold.jsonl", GOLD)
    steps: list[Step] = []
    with make_app(Settings.from_env()) as app:
        app.learning.evaluate(gold, progress=steps.append)
    assert stages(steps) == ["score"]
    assert_runs_to_its_end(steps, "score")
    assert of(steps, "score")[-1].note == f"{len(GOLD)}/{len(GOLD)} stories"

    # scored in batches, told after each: the same report as in one go
    told: list[tuple[int, int]] = []
    with make_app(Settings.from_env()) as app:
        examples, _ = read_gold(gold, app.taxonomy)
        whole = evaluate(app.classifier, examples)
        assert (
            evaluate(app.classifier, examples, batch=3, scored=lambda *a: told.append(a)) == whole
        )
    assert told == [(3, 7), (6, 7), (7, 7)]


# --- the CLI ---------------------------------------------------------------------------


def cli_env(env: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environ.update(COLUMNS="120", TERM="xterm-256color")
    return environ


def on_a_terminal(
    environ: dict[str, str], *argv: str, stop_when: str | None = None
) -> tuple[int, str, bytes]:
    """`aggregator ARGV` with stderr on a pty and stdout on a pipe: (exit status, what
    the terminal showed, stdout). With ``stop_when``, Ctrl-C (SIGINT) once the terminal
    shows that text."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", *argv],
            env=environ,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
        )
        os.close(slave)
        shown = b""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
            if stop_when is not None and stop_when.encode() in shown:
                proc.send_signal(signal.SIGINT)
                stop_when = None
        stdout, _ = proc.communicate(timeout=120)
    finally:
        os.close(master)
    return proc.returncode, shown.decode("utf-8", "replace"), stdout


TRAIN_STAGES = [
    "collecting examples",
    "held-out check",
    "vectorising the texts",
    "cross-validation",
    "fitting the final model",
    "choosing thresholds",
    "writing the model",
    "re-tagging stored stories",
]


def assert_no_display(stderr: str) -> None:
    """Nothing of the stage display: log lines may be there (this small model's thin
    topics are warned about, on every `train`), the display is not."""
    assert "\x1b" not in stderr, stderr
    assert not [title for title in TRAIN_STAGES if title in stderr], stderr
    assert all(" WARNING " in line for line in stderr.splitlines()), stderr


@pytest.mark.slow
def test_train_and_evaluate_show_their_stages_on_a_terminal_and_nowhere_else(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # every 400th seed (~24): what is checked is the stages shown, not how well the
    # model scores (the held-out check still runs: ~32 examples)
    small_models_dir(env, monkeypatch, shipped=True, every=400)
    labelled_store(env, capsys, labels=5)
    environ = cli_env(env)

    code, shown, stdout = on_a_terminal(environ, "train")
    assert code == 0, shown
    for title in TRAIN_STAGES:
        assert title in shown, (title, shown)
    assert "5 labels, " in shown and "fold 5/5" in shown
    # stdout is the summary alone, as a script reads it: no display, no escapes
    lines = stdout.decode().splitlines()
    assert lines[0].startswith("trained clf-") and lines[-1].startswith("model written to ")
    assert "\x1b" not in stdout.decode() and "collecting examples" not in stdout.decode()

    # a pipe (scripts): no display (the model is kept: nothing new to learn)
    piped = subprocess.run(
        [sys.executable, "-m", "aggregator", "train"],
        env=environ,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert_no_display(piped.stderr)
    assert piped.stdout.startswith("nothing new to learn")

    # --quiet on a terminal: the summary, and not a character of display
    code, shown, stdout = on_a_terminal(environ, "train", "--quiet", "--no-retag")
    assert code == 0, shown
    assert_no_display(shown)
    assert stdout.decode().startswith("nothing new to learn")

    # --format json stays pure JSON on stdout, and shows nothing (as `poll` does)
    gold = write_gold(env / "gold.jsonl", GOLD)
    code, shown, stdout = on_a_terminal(environ, "evaluate", str(gold), "--format", "json")
    assert code == 0 and shown == "", shown
    assert json.loads(stdout)["examples"] == len(GOLD)
    code, shown, stdout = on_a_terminal(environ, "evaluate", str(gold))
    assert code == 0 and "scoring gold stories" in shown, shown
    assert f"{len(GOLD)}/{len(GOLD)} stories" in shown
    assert "Evaluation of clf-" in stdout.decode() and "\x1b" not in stdout.decode()


@pytest.mark.slow
def test_ctrl_c_stops_train_cleanly_while_the_display_is_up(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_models_dir(env, monkeypatch, shipped=True, every=4)  # a minute's training
    seed_stories(env / "data", STORIES, classify=False)
    code, shown, stdout = on_a_terminal(cli_env(env), "train", stop_when="cross-validation")
    assert code == 130, shown
    shipped = json.loads((REPO / "models" / "classifier" / "manifest.json").read_text())
    # the display is gone (transient) and the message follows on a line of its own
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown).splitlines()[-1]
    assert last == (
        f"train interrupted: nothing was written; the model in use is still "
        f"{shipped['model_version']}"
    )
    assert "Traceback" not in shown and stdout == b""
    models = env / "data" / "models"
    assert not models.exists() or list(models.iterdir()) == []
