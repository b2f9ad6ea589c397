"""The classifier commands, fixed in session 26: what a demanding user of classify,
label, train, evaluate and explain met (each test names what went wrong before its fix),
through the real CLI on real stores, with tiny taxonomies and models trained through the
real code path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_evaluate import env, write_models_dir
from test_learning_cli import run, seed_stories

__all__ = ["env"]  # the fixture, shared with test_evaluate


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
