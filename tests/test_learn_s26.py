"""The classifier commands, fixed in session 26: what a demanding user of classify,
label, train, evaluate and explain met (each test names what went wrong before its fix),
through the real CLI on real stores, with tiny taxonomies and models trained through the
real code path."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_evaluate import env, write_models_dir
from test_learning_cli import STORIES, run, seed_stories
from test_taxonomy_changes import SEC, shipped, store

from aggregator import modeldir
from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import Document

REPO = Path(__file__).resolve().parents[1]

__all__ = ["env", "shipped"]  # the fixtures, shared with test_evaluate, test_taxonomy_changes


@pytest.fixture
def tiny(tmp_path: Path, shipped: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """test_taxonomy_changes' ``env``: its tiny models directory (taxonomy, seeds and a
    model trained on them) copied, a data directory, an empty feeds file."""
    shutil.copytree(shipped, tmp_path / "models")
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    return tmp_path


def models_without_seeds(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models directory of the real taxonomy's DNS topic and a seeds file with no
    seed in it: the user's own taxonomy, to be taught by labels alone."""
    models = env / "models"
    write_models_dir(models, every=8, topics=("DNS",))
    for f in (models / "seeds").glob("*.jsonl"):
        f.unlink()
    (models / "seeds" / "mine.jsonl").write_text("", encoding="utf-8")
    monkeypatch.setenv("AGGREGATOR_MODELS_DIR", str(models))
    return models


# stories that share no word (the vectoriser keeps only words found in two of them)
UNLIKE = [
    ("DNSSEC outage", "Resolvers failed.", ()),
    ("Football", "Cup.", ()),
    ("Registry", "Signing.", ()),
    ("Tennis", "Ball.", ()),
    ("Nameserver", "Zone.", ()),
]


def test_train_and_evaluate_on_too_few_labels_say_so_without_a_traceback(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # With no seeds and a handful of labels whose stories share no word, `train` (and
    # `evaluate`'s cross-validation) died in scikit-learn with a 60-line traceback
    # ("ValueError: After pruning, no terms remain. Try a lower min_df"), exit 1.
    models_without_seeds(env, monkeypatch)
    alike = [("DNS outage at a registry", "Resolvers fail.", ())] * 2
    ids = seed_stories(env / "data", [*UNLIKE, *alike], classify=False)
    for story_id, sign in zip(ids[:5], "+-+-+", strict=True):
        assert run(capsys, "label", str(story_id), f"{sign}DNS")[0] == 0
    code, out, err = run(capsys, "train", "--quiet")
    assert code == 2, (out, err)
    assert "Traceback" not in err and "min_df" not in err, err
    assert "error: too few examples to learn from (5, no word found in two of them)" in err
    assert not (env / "data" / "models" / "classifier").exists()
    # two stories more that share words: a model; then cross-validation over the five
    for story_id in ids[5:]:
        assert run(capsys, "label", str(story_id), "+DNS")[0] == 0
    code, out, err = run(capsys, "train", "--quiet")
    assert code == 0, err
    version = json.loads((env / "data" / "models" / "classifier" / "manifest.json").read_text())
    for story_id in ids[5:]:
        assert run(capsys, "label", str(story_id), "--forget", "DNS")[0] == 0
    code, out, err = run(capsys, "evaluate", "--quiet")
    assert code == 2, (out, err)
    assert "Traceback" not in err and "min_df" not in err, err
    assert "error: too few examples to learn from" in err, err
    after = json.loads((env / "data" / "models" / "classifier" / "manifest.json").read_text())
    assert after == version


def test_a_classifier_link_to_a_model_gone_is_replaced_by_train(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # DATA_DIR/models/classifier a symbolic link to a model kept elsewhere, since
    # deleted (or on a disk not mounted): `train` fitted, then failed when it came to
    # put its model in place ("error: Not a directory: …/.classifier.tmp-PID", exit 1),
    # the new model thrown away. Such a link is replaced, as one to a model is.
    store([SEC])
    models = tiny / "data" / "models"
    models.mkdir(parents=True)
    (models / "classifier").symlink_to(tiny / "gone", target_is_directory=True)
    code, out, err = run(capsys, "train", "--quiet")
    assert code == 0, (out, err)
    assert [p.name for p in models.iterdir()] == ["classifier"]
    assert not (models / "classifier").is_symlink()
    assert (models / "classifier" / "manifest.json").is_file()
    assert not (tiny / "gone").exists()
    code, out, err = run(capsys, "status", "--format", "json")
    assert json.loads(out)["model"]["yours"] is True, out


def test_train_with_a_file_in_the_models_place_fails_before_fitting(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A regular file at DATA_DIR/models/classifier: `train` fitted the whole model,
    # swapped it in, then failed to delete the file it had set aside ("error: Not a
    # directory: …/.classifier.old-PID", exit 1, nothing re-tagged, the file left as a
    # hidden leftover for good). README: a file in the way is one "cannot write the
    # model" line at once, exit 2.
    store([SEC])
    models = tiny / "data" / "models"
    models.mkdir(parents=True)
    (models / "classifier").write_text("my notes\n")
    code, out, err = run(capsys, "train", "--quiet")
    assert code == 2, (out, err)
    assert f"error: cannot write the model to {models / 'classifier'}" in err.replace("\n", "")
    assert [p.name for p in models.iterdir()] == ["classifier"]
    assert (models / "classifier").read_text() == "my notes\n"


def test_classify_echoes_an_id_of_minus_zero_as_written(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # README: "`id` comes back exactly as given". -0.0 did, but the integer -0 came back
    # as 0 (in a nested id too): a script matching answers by id, as written, lost them.
    written = ["-0", "[-0, 0, -0.0]", '{"n": -0}', "-12"]
    src = env / "in.jsonl"
    src.write_text("".join(f'{{"id": {w}, "title": "DNS outage"}}\n' for w in written))
    code, out, err = run(capsys, "classify", str(src))
    assert (code, err) == (0, "")
    echoed = [line.split(', "topics"')[0].removeprefix('{"id": ') for line in out.splitlines()]
    assert echoed == written


def test_a_swap_cut_short_by_a_power_cut_keeps_the_previous_model_over_a_torn_new_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # README: a train stopped between its two renames ("SIGKILL, the OOM killer, a power
    # cut") is finished by the next command, "the new model if it was complete, else the
    # previous one". Complete meant a manifest there: after a power cut the new model's
    # files may be cut short (written, not yet on disk), and that torn model was put in
    # place and the previous one deleted, no model left that loads.
    from test_modeldir import _artifact, _dead_pid

    s = Settings.from_env({}, data_dir=tmp_path / "data")
    pid = _dead_pid()
    _artifact(s.trained_models_dir / f".classifier.old-{pid}", "old")
    torn = _artifact(s.trained_models_dir / f".classifier.tmp-{pid}", "new")
    model = torn / "model.joblib"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="aggregator.modeldir"):
        assert s.active_models_dir == s.trained_models_dir
    assert (s.trained_models_dir / "classifier" / "which").read_text() == "old"
    assert "the previous model is in place" in caplog.text
    assert sorted(p.name for p in s.trained_models_dir.iterdir()) == ["classifier"]
    with make_app(s) as app:  # and it loads
        (pred,) = app.classifier.predict([Document(id="1", title="DNSSEC fails", summary="")])
        assert pred.model_version == app.classifier.version


def test_a_first_train_elsewhere_writing_its_model_is_left_alone(tmp_path: Path) -> None:
    # README: a train in another container sharing the data directory looks gone from
    # here, so what looks left over is removed once 10 minutes old. That held beside a
    # model in use; before the first model, any command (a daemon's poll) deleted the
    # other container's model as it was being written, failing its `train` at the end.
    from test_modeldir import _artifact, _dead_pid

    s = Settings.from_env({}, data_dir=tmp_path / "data")
    writing = s.trained_models_dir / f".classifier.tmp-{_dead_pid()}"
    writing.mkdir(parents=True)
    (writing / "model.joblib").write_bytes(b"half")  # no manifest yet
    assert s.active_models_dir == s.models_dir  # the shipped one, for now
    assert (writing / "model.joblib").read_bytes() == b"half"
    # once it is 10 minutes old it is a crash's leftover, and goes
    old = time.time() - modeldir.LEFTOVER_AGE_S - 60
    os.utime(writing, (old, old))
    assert s.active_models_dir == s.models_dir
    assert not writing.exists()
    # the leftovers of the very swap that is finished go at once, whatever their age
    pid = _dead_pid()
    _artifact(s.trained_models_dir / f".classifier.old-{pid}", "old")
    (s.trained_models_dir / f".classifier.tmp-{pid}").mkdir()
    assert s.active_models_dir == s.trained_models_dir
    assert sorted(p.name for p in s.trained_models_dir.iterdir()) == ["classifier"]


def test_classify_reads_a_non_blocking_stdin_in_full(env: Path) -> None:
    # Standard input left non-blocking by the program that made it (an event loop's pipe,
    # a terminal a crashed program left so): `classify -` failed at once, before any
    # line came, with "error: Resource temporarily unavailable", exit 1.
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    environ = {**os.environ, "AGGREGATOR_DATA_DIR": str(env / "data")}
    environ["AGGREGATOR_FEEDS"] = str(env / "feeds.yaml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "classify", "-"],
        stdin=read_end,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
        cwd=REPO,
    )
    os.close(read_end)
    assert proc.stdout is not None
    try:
        # the second line is written once the first is answered: classify then reads a
        # pipe with nothing in it
        os.write(write_end, b'{"id": 0, "title": "DNS outage"}\n')
        first = proc.stdout.readline()
        time.sleep(0.5)
        if proc.poll() is None:
            os.write(write_end, b'{"id": 1, "title": "DNS outage"}\n')
        os.close(write_end)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, err) == (0, b"")
    assert [json.loads(line)["id"] for line in [first, *out.splitlines()]] == [0, 1]


def test_a_gold_file_read_from_a_pipe_is_known_by_its_bytes(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `aggregator evaluate <(zcat gold.jsonl.gz)`: the file was read for its stories,
    # then read again for the hash that tells one gold file from another, and a pipe
    # gives nothing the second time: every gold file from a pipe was "the same data" (the
    # empty file's hash), and a model was compared with one evaluated on other stories.
    import threading

    seen = []
    for topics in (["Security"], []):
        gold = json.dumps({"title": "Ransomware gang hits hospital", "topics": topics}) + "\n"
        fifo = tiny / f"gold-{len(seen)}.jsonl"
        os.mkfifo(fifo)
        writer = threading.Thread(target=lambda f=fifo, g=gold: f.write_text(g))
        writer.start()
        code, out, err = run(capsys, "evaluate", str(fifo), "--format", "json")
        writer.join(10)
        assert code == 0, err
        data = json.loads(out)["data"]
        assert data["sha256"] == hashlib.sha256(gold.encode()).hexdigest()
        seen.append(data["sha256"])
    assert seen[0] != seen[1]


@pytest.mark.parametrize("argv", [["--text", "DNS outage"], ["in.jsonl"]], ids=["text", "file"])
def test_classify_with_stdout_closed_says_so_in_one_line(env: Path, argv: list[str]) -> None:
    # `aggregator classify … >&-` (a service started without an output): an
    # AttributeError traceback ("'NoneType' object has no attribute 'write'").
    (env / "in.jsonl").write_text('{"id": 1, "title": "DNS outage"}\n')
    environ = {**os.environ, "AGGREGATOR_DATA_DIR": str(env / "data")}
    environ["AGGREGATOR_FEEDS"] = str(env / "feeds.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "classify", *argv],
        stderr=subprocess.PIPE,
        env=environ,
        cwd=env,
        preexec_fn=lambda: os.close(1),
        timeout=120,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr == "error: cannot write the output: standard output is closed\n"


@pytest.mark.parametrize(
    "argv",
    [["explain", "1"], ["label", "1", "+DNS"], ["label", "--suggest", "2"]],
    ids=["explain", "label", "suggest"],
)
def test_json_with_stdout_closed_says_so_in_one_line(env: Path, argv: list[str]) -> None:
    # `aggregator explain 1 --format json >&-`: every --format json answer died with an
    # AttributeError traceback ("'NoneType' object has no attribute 'write'"), exit 1.
    seed_stories(env / "data", STORIES[:2])
    environ = {**os.environ, "AGGREGATOR_DATA_DIR": str(env / "data")}
    environ["AGGREGATOR_FEEDS"] = str(env / "feeds.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", *argv, "--format", "json"],
        stderr=subprocess.PIPE,
        env=environ,
        cwd=env,
        preexec_fn=lambda: os.close(1),
        timeout=120,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr == "error: cannot write the output: standard output is closed\n"
