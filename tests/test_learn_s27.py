"""The classifier commands, fixed in session 27: what a demanding user of classify,
label, train, evaluate and explain met (each test names what went wrong before its fix),
through the real CLI on real stores, with tiny taxonomies and models trained through the
real code path."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from test_evaluate import GOLD_A, rec

from aggregator.evaluation import HISTORY_FILE, EvalHistory


def _add_many(path: str, prefix: str, n: int) -> None:
    h = EvalHistory(Path(path))
    for i in range(n):
        h.add(rec(f"{prefix}{i}", GOLD_A, i))


def test_two_evaluations_recorded_at_once_both_stay_in_the_history(tmp_path: Path) -> None:
    # `add` read the history, then replaced the file with what it read plus its record:
    # two `evaluate` runs finishing together (two terminals, a cron job) each wrote the
    # history it read, and one run's record was lost without a word.
    path = tmp_path / "models" / HISTORY_FILE
    n = 15
    ctx = multiprocessing.get_context("fork")
    others = [ctx.Process(target=_add_many, args=(str(path), p, n)) for p in ("a",)]
    for p in others:
        p.start()
    _add_many(str(path), "c", n)
    for p in others:
        p.join(10)
        assert p.exitcode == 0
    got = {r.model_version for r in EvalHistory(path).records()}
    assert got == {f"{p}{i}" for p in "ac" for i in range(n)}
    assert sorted(q.name for q in path.parent.iterdir()) == [HISTORY_FILE]  # no tmp left
