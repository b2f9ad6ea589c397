"""A `train` killed between the two renames that put its model in place (SIGKILL, the
OOM killer, a power cut: nothing a signal handler can hold back) left no ``classifier/``
in the data directory, and every command silently used the shipped model. The next
command finishes the swap."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator import modeldir
from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import Document

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "classifier"


def _artifact(path: Path, version: str) -> Path:
    """A real model artifact (the shipped one) at ``path``, told apart by ``version``
    in its report."""
    shutil.copytree(SHIPPED, path)
    (path / "which").write_text(version)
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc.kill()
    proc.wait()
    return proc.pid


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, data_dir=tmp_path / "data")


def test_a_swap_killed_between_its_renames_is_finished_with_the_new_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The real swap, in a process SIGKILLed right after its first rename."""
    s = _settings(tmp_path)
    out = s.trained_models_dir / "classifier"
    _artifact(out, "old")
    code = textwrap.dedent(
        f"""
        import os, pathlib, signal
        from aggregator import modeldir
        out = pathlib.Path({str(out)!r})
        tmp = modeldir.tmp_dir(out)
        import shutil
        shutil.copytree({str(SHIPPED)!r}, tmp)
        (tmp / "which").write_text("new")
        rename = pathlib.Path.rename
        def rename_then_die(self, target):
            result = rename(self, target)
            os.kill(os.getpid(), signal.SIGKILL)
            return result
        pathlib.Path.rename = rename_then_die
        modeldir.swap_into_place(tmp, out)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # what every command found: the shipped model was used

    with caplog.at_level(logging.WARNING, logger="aggregator.modeldir"):
        assert s.active_models_dir == s.trained_models_dir
    assert (out / "which").read_text() == "new"
    assert "a swap cut short by a crash was finished: the new model is in place" in caplog.text
    assert sorted(p.name for p in s.trained_models_dir.iterdir()) == ["classifier"]
    with make_app(s) as app:  # and it loads
        (pred,) = app.classifier.predict(
            [Document(id="1", title="DNSSEC validation fails at resolvers", summary="")]
        )
        assert pred.model_version == app.classifier.version


def test_without_a_complete_new_model_the_previous_one_comes_back(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    pid = _dead_pid()
    _artifact(s.trained_models_dir / f".classifier.old-{pid}", "old")
    partial = s.trained_models_dir / f".classifier.tmp-{pid}"
    partial.mkdir()
    (partial / "model.joblib").write_bytes(b"half")  # no manifest: not finished
    assert s.active_models_dir == s.trained_models_dir
    assert (s.trained_models_dir / "classifier" / "which").read_text() == "old"
    assert sorted(p.name for p in s.trained_models_dir.iterdir()) == ["classifier"]


def test_a_train_under_way_is_left_alone(tmp_path: Path, sleeper: int) -> None:
    s = _settings(tmp_path)
    _artifact(s.trained_models_dir / f".classifier.tmp-{sleeper}", "new")
    assert s.active_models_dir == s.models_dir  # the shipped one, for now
    assert not (s.trained_models_dir / "classifier").exists()
    assert (s.trained_models_dir / f".classifier.tmp-{sleeper}" / "which").exists()


def test_a_name_that_only_looks_like_a_pid_is_left_alone(tmp_path: Path) -> None:
    """No process wrote ".classifier.tmp-²" ('²' passes ``str.isdigit``; ``int()``
    refuses it): a stranger's directory, not a crashed swap, and no traceback."""
    s = _settings(tmp_path)
    for name in (".classifier.tmp-²", ".classifier.old-٣"):
        _artifact(s.trained_models_dir / name, "stranger")
    assert s.active_models_dir == s.models_dir  # the shipped one
    assert len(os.listdir(s.trained_models_dir)) == 2


def test_nothing_to_recover(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert s.active_models_dir == s.models_dir
    assert not s.trained_models_dir.exists()
    assert modeldir.recover(s.trained_models_dir / "classifier") is None
    _artifact(s.trained_models_dir / "classifier", "mine")
    assert s.active_models_dir == s.trained_models_dir
    assert os.listdir(s.trained_models_dir) == ["classifier"]
