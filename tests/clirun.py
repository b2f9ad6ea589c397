"""``python -m aggregator`` in the test process: the ``main`` it runs, with the environment,
working directory and logging a fresh interpreter would give it, its exit status and what
it wrote. For tests of a command's output and exit status, not of the process: an
interpreter's start and the CLI's imports were ~0.9 s of each ~1 s command. Tests of
signals, a terminal, real pipes (``-``, a closed stdout, an output encoding), the
environment at interpreter start, imports or a crash keep a real process.

    @pytest.fixture
    def aggregator(monkeypatch, capfd):
        return in_process(monkeypatch, capfd)

    done = aggregator(environ, "stories", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""

The way tests/test_cli_poll.py's ``poll --feed`` test runs it, plus: the working
directory; a time limit (a command outliving it raises ``subprocess.TimeoutExpired``, as
``subprocess.run(timeout=...)`` did, instead of holding the test for ever); and logging
set up afresh by the CLI's own ``basicConfig`` (pytest's handlers on the root logger made
it a no-op, so a warning or a logged traceback went to pytest's log instead of stderr).
With ``capfd``, what reaches file descriptors 1 and 2 (a worker process's output, say) is
read too, as a subprocess's pipes read it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

import pytest

from aggregator.cli import main

Run = Callable[..., subprocess.CompletedProcess[str]]


def in_process(monkeypatch: pytest.MonkeyPatch, capture: pytest.CaptureFixture[str]) -> Run:
    """A runner: ``run(env, *argv, cwd=None)``, ``env`` being the whole environment the
    process would have had (variables not in it are removed for the call)."""

    def run(
        env: Mapping[str, str], *argv: str, cwd: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        capture.readouterr()
        root = logging.getLogger()
        level = root.level
        with monkeypatch.context() as m:
            for name in [n for n in os.environ if n not in env]:
                m.delenv(name)
            for name, value in env.items():
                m.setenv(name, value)
            if cwd is not None:
                m.chdir(cwd)
            m.setattr(root, "handlers", [])
            root.setLevel(logging.WARNING)
            previous = signal.signal(signal.SIGALRM, _timed_out(argv, timeout))
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                main(list(argv))
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                for handler in root.handlers:
                    handler.close()
                root.setLevel(level)
        got = capture.readouterr()
        return subprocess.CompletedProcess(["aggregator", *argv], code, got.out, got.err)

    return run


def _timed_out(argv: tuple[str, ...], timeout: float) -> Callable[[int, FrameType | None], None]:
    """A SIGALRM handler failing the command that outlived ``timeout`` (a subprocess's
    ``timeout=``): a command that should have ended at once, a daemon or a server, fails
    the test instead of holding it for ever."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise subprocess.TimeoutExpired(["aggregator", *argv], timeout)

    return handler
