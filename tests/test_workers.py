"""WorkerPool: real worker processes, real timeouts, real kills.

Tasks are stdlib or aggregator functions, so the workers can import them whatever
the current directory.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError, as_completed
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.parse import parse_feed
from aggregator.workers import PoolFailedError, RemoteTraceback, WorkerDiedError, WorkerPool

FEEDS = Path(__file__).parent / "data" / "feeds"


def _gone(pid: int, within: float = 5.0) -> bool:
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(2) as p:
        yield p


def test_results_come_back(pool: WorkerPool) -> None:
    futures = [pool.submit(pow, 2, n) for n in range(20)]
    assert [f.result(timeout=10) for f in futures] == [2**n for n in range(20)]
    assert sorted(f.result() for f in as_completed(pool.submit(abs, -n) for n in range(5))) == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_exceptions_propagate_with_the_remote_traceback(pool: WorkerPool) -> None:
    with pytest.raises(ValueError, match="invalid literal") as raised:
        pool.submit(int, "not a number").result(timeout=10)
    assert isinstance(raised.value.__cause__, RemoteTraceback)
    assert "Traceback" in str(raised.value.__cause__)


def test_aggregator_errors_keep_their_type_and_fields(pool: WorkerPool) -> None:
    # FeedError.__init__(url, message) does not survive a plain pickle round trip.
    with pytest.raises(ParseError) as raised:
        pool.submit(parse_feed, b"", "https://feeds.example.org/x").result(timeout=10)
    assert raised.value.url == "https://feeds.example.org/x"
    assert raised.value.message == "empty body"


def test_parse_feed_runs_in_a_worker(pool: WorkerPool) -> None:
    body = (FEEDS / "atom10.xml").read_bytes()
    url = "https://feeds.example.org/atom10.xml"
    assert pool.submit(parse_feed, body, url, timeout=30).result() == parse_feed(body, url)


def test_unpicklable_task_fails_only_its_future(pool: WorkerPool) -> None:
    lock = threading.Lock()
    with pytest.raises(TypeError):
        pool.submit(repr, lock).result(timeout=10)
    assert pool.submit(pow, 3, 2).result(timeout=10) == 9


def test_submit_from_another_thread(pool: WorkerPool) -> None:
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(pool.submit(len, "abc").result(10)))
    thread.start()
    thread.join(10)
    assert results == [3]


def test_overrun_times_out_kills_the_worker_and_spares_the_rest() -> None:
    with WorkerPool(2) as pool:
        warm = [pool.submit(time.sleep, 0.2) for _ in range(2)]  # two at once: two workers
        assert [f.result(timeout=10) for f in warm] == [None, None]
        before = set(pool.pids)
        assert len(before) == 2
        started = time.monotonic()
        hung = pool.submit(time.sleep, 30, timeout=0.5)
        fine = pool.submit(time.sleep, 1.0, timeout=5)  # runs beside it, longer than 0.5 s
        with pytest.raises(TimeoutError, match=r"sleep exceeded its 0\.5 s limit"):
            hung.result(timeout=10)
        assert time.monotonic() - started < 5
        assert fine.result(timeout=10) is None  # not affected by its neighbour's kill
        after = set(pool.pids)
        (killed,) = before - after
        assert len(after) == 2
        assert _gone(killed)
        assert pool.submit(pow, 2, 3, timeout=5).result(timeout=10) == 8  # still working


def test_timeout_counts_from_start_not_from_submit() -> None:
    with WorkerPool(1) as pool:
        first = pool.submit(time.sleep, 0.6, timeout=5)
        queued = pool.submit(time.sleep, 0.3, timeout=0.5)  # waits ~0.6 s for the worker
        assert first.result(timeout=10) is None
        assert queued.result(timeout=10) is None


def test_a_crashed_worker_is_replaced() -> None:
    with WorkerPool(1) as pool:
        pid = pool.submit(os.getpid).result(timeout=10)
        assert pool.pids == (pid,)
        with pytest.raises(WorkerDiedError, match="code 3"):
            pool.submit(os._exit, 3).result(timeout=10)
        assert _gone(pid)
        assert pool.submit(pow, 5, 2).result(timeout=10) == 25


def test_a_worker_killed_while_idle_is_replaced() -> None:
    with WorkerPool(1) as pool:
        pid = pool.submit(os.getpid).result(timeout=10)
        assert pool.pids == (pid,)
        os.kill(pid, 9)
        assert _gone(pid)
        assert pool.submit(pow, 4, 2).result(timeout=10) == 16


def test_workers_that_cannot_start_fail_the_tasks_instead_of_respawning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with WorkerPool(1) as pool:
        pid = pool.submit(os.getpid).result(timeout=10)  # one that started and served
        monkeypatch.setattr(sys, "executable", "/bin/false")  # every new worker exits at once
        os.kill(pid, 9)
        time.sleep(0.3)  # the dispatcher sees its replacements die while idle
        with pytest.raises(RuntimeError, match="exit as they start"):
            pool.submit(pow, 2, 2).result(timeout=10)
    # a task given at once: the workers started for it die before they can take it
    with WorkerPool(1) as pool, pytest.raises(RuntimeError, match="exit as they start"):
        pool.submit(pow, 2, 2).result(timeout=10)


def test_close_finishes_queued_tasks_and_leaves_no_children() -> None:
    pool = WorkerPool(2)
    futures = [pool.submit(time.sleep, 0.05) for _ in range(6)]
    pool.close()
    pids = pool.pids  # the workers started for them
    assert len(pids) == 2
    assert all(f.done() and f.result() is None for f in futures)
    assert all(_gone(pid) for pid in pids)
    assert not {c.pid for c in multiprocessing.active_children()} & set(pids)
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(pow, 1, 1)
    pool.close()  # idempotent


def test_leaving_the_block_with_an_error_cancels_queued_tasks() -> None:
    pool = WorkerPool(1)
    running = pool.submit(time.sleep, 0.3)
    queued = [pool.submit(pow, 2, 2) for _ in range(3)]
    time.sleep(0.1)
    pool.__exit__(KeyError, KeyError("boom"), None)  # what a with-block does on an error
    pids = pool.pids  # the worker started for the running task
    assert len(pids) == 1
    assert running.result(timeout=1) is None
    for future in queued:
        with pytest.raises(CancelledError):
            future.result(timeout=1)
    assert all(_gone(pid) for pid in pids)


def test_timeout_must_be_positive(pool: WorkerPool) -> None:
    with pytest.raises(ValueError, match="positive"):
        pool.submit(pow, 1, 1, timeout=0)


SCRIPT = """
import os, sys
sys.path.insert(0, {repo!r})
with open({marker!r}, "a") as f:  # top-level side effect: runs wherever this file runs
    f.write(f"{{os.getpid()}}\\n")
import aggregator.store  # SQLAlchemy, as the CLI's imports bring it
from aggregator.workers import WorkerPool

if __name__ == "__main__":
    with WorkerPool(2) as pool:
        pid = pool.submit(os.getpid).result()
        print(pid != os.getpid(), "sqlalchemy" in open(f"/proc/{{pid}}/maps").read())
"""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc")
def test_workers_do_not_rerun_the_main_script(tmp_path: Path) -> None:
    """A console script's top level (the whole CLI) must not run again in every worker
    (multiprocessing re-executes a main script by default; our workers never do)."""
    import subprocess
    import sys

    marker = tmp_path / "ran"
    script = tmp_path / "main_script.py"
    repo = str(Path(__file__).resolve().parent.parent)
    script.write_text(SCRIPT.format(repo=repo, marker=str(marker)))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["True", "False"], out.stderr
    assert len(marker.read_text().split()) == 1  # the main process only


def test_workers_run_one_blas_thread_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice is kept
    with WorkerPool(1) as pool:
        assert pool.submit(os.getenv, "OPENBLAS_NUM_THREADS").result(timeout=10) == "1"
        assert pool.submit(os.getenv, "OMP_NUM_THREADS").result(timeout=10) == "3"


PARENT = """
import sys, time
sys.path.insert(0, {repo!r})
from aggregator.workers import WorkerPool

pool = WorkerPool(2)
pool.submit(time.sleep, 60)  # one worker busy,
pool.submit(time.sleep, 0).result()  # one started beside it for this, idle after it
print(*pool.pids, flush=True)
time.sleep(60)
"""


def test_workers_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    """A parent killed outright (no close, no atexit): the idle worker sees its pipe end,
    the busy one's watchdog sees it re-parented; neither outlives it by long."""
    import signal
    import subprocess

    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(repo=str(Path(__file__).resolve().parent.parent)))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
        time.sleep(0.5)  # the task is running
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert all(_gone(pid, within=10) for pid in pids)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_workers_import_tasks_from_the_parents_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's module is found where the parent found it, even outside the current
    directory and PYTHONPATH (the parent's sys.path goes to each worker)."""
    (tmp_path / "elsewhere_tasks.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir("/")
    import elsewhere_tasks  # type: ignore[import-not-found]

    with WorkerPool(1) as pool:
        assert pool.submit(elsewhere_tasks.triple, 14).result(timeout=10) == 42


def test_a_pool_whose_workers_cannot_all_start_leaves_nothing_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second worker cannot be started (fork refused: the process limit reached): the
    error fails the pool and its tasks (it was the constructor's, when the constructor
    started every worker), and the worker it had started is stopped and waited for, and
    its sockets closed. They were left behind: a worker process (a zombie once it saw its
    socket close) and three sockets, which the garbage collector closed with
    "ResourceWarning: unclosed <socket.socket ...>"."""
    import errno
    import gc
    import subprocess
    import warnings

    real_popen, started = subprocess.Popen, []

    def popen(*args: object, **kwargs: object) -> object:
        if started:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        process = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(process.pid)
        return process

    monkeypatch.setattr(subprocess, "Popen", popen)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        pool = WorkerPool(2)
        futures = [pool.submit(time.sleep, 0.5) for _ in range(2)]  # two at once: two workers
        for future in futures:
            with pytest.raises(PoolFailedError, match="Resource temporarily unavailable"):
                future.result(timeout=10)
        assert isinstance(pool.failure, OSError)
        pool.close()
        gc.collect()
    monkeypatch.undo()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []
    assert len(started) == 1 and _gone(started[0])
