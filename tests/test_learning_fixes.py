"""The classifier commands, fixed in session 24: what a demanding user of train and
evaluate met (each test names what went wrong before its fix). A tiny taxonomy and
model (tests/test_taxonomy_changes.py's), trained through the real code path."""

from __future__ import annotations

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
