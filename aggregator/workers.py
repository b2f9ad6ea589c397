"""A small process pool for CPU-bound tasks (parse, extract, classify), each with its own
wall-clock limit.

Owns: worker processes, each a fresh interpreter (never a fork: the app also runs threads
and asyncio) that imports only this module until its first task, started when a task
waits and no worker is idle (up to the pool's size: none for a pool given no task, one
for a pool given one task at a time); handing queued tasks to idle workers; killing a
worker whose task overruns its limit (that task's future gets ``TimeoutError``) and
starting a replacement; clean shutdown.

Must not: know what the tasks are (they are top-level, picklable functions), or let one
task's overrun or crash reach any other task.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop one running task, and a
worker that dies marks the whole executor broken. Why not multiprocessing's processes:
"forkserver" keeps two more processes alive (the fork server and the resource tracker,
~28 MB of RSS together; "spawn" keeps the tracker), both re-run the main script in every
child unless told not to, and they bring nothing a pipe and ``subprocess`` do not.

Shape: one dispatcher thread owns the workers. Each worker has its own pipe and runs one
task at a time; the dispatcher waits on those pipes plus a wake-up socket (``submit``,
``close``) with a timeout set by the nearest deadline. A task's limit counts from when a
worker starts it, not from ``submit`` (nor from its worker's start: a worker says
``_READY`` once it has started, and one that dies before saying it is one that cannot
start, whose task goes to its replacement). Workers end with the parent even without ``close``:
an idle one reads end-of-file on its pipe, a busy one's watchdog thread sees it
re-parented (within a second) and exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, TypeVarTuple, Unpack

__all__ = ["PoolFailedError", "RemoteTraceback", "WorkerDiedError", "WorkerPool"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_STOP = b""  # an empty message tells a worker to exit
_READY = b"ready"  # a worker's first message: it started (a reply is a pickle, b"\x80...")
_STOP_GRACE_S = 5.0


class WorkerDiedError(RuntimeError):
    """The worker running a task exited without answering (crashed, killed from outside)."""


class PoolFailedError(RuntimeError):
    """The pool stopped for good (its workers exit as they start, or its dispatcher
    failed): raised by ``submit`` and by the futures it had not answered. Not the task's
    doing; the owner closes the pool and starts another (see :attr:`WorkerPool.failure`)."""


class RemoteTraceback(Exception):
    """Set as ``__cause__`` of an exception raised in a worker: the worker's traceback."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


@dataclass(eq=False, slots=True)
class _Task:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    timeout: float | None
    future: Future[Any]

    @property
    def name(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


@dataclass(eq=False, slots=True)
class _Worker:
    process: subprocess.Popen[bytes]
    conn: Connection
    pid: int
    task: _Task | None = None
    deadline: float | None = None
    served: int = 0  # tasks answered
    ready: bool = False  # its _READY came: it started, and reads its tasks


class WorkerPool:
    """Up to ``processes`` workers (default: CPU count) running tasks given to
    :meth:`submit`, each started when a task waits and no worker is idle.

    Use as a context manager, or call :meth:`close`. Thread-safe: submit from any thread.
    """

    def __init__(self, processes: int | None = None) -> None:
        self._size = processes or os.cpu_count() or 1
        # This process receives every result as one pickled block (a parsed feed is
        # ~240 KB): the same malloc tuning keeps those blocks out of its heap.
        _return_freed_memory()
        self._lock = threading.Lock()  # guards _queue and _closing
        self._queue: deque[_Task] = deque()
        self._closing = False
        self._kill_running = False  # close(kill_running=True): abandon the tasks running
        self._failure: BaseException | None = None  # what stopped the dispatcher
        self._stillborn = 0  # workers in a row that died before their first task
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # Started by the dispatcher as tasks wait for one, up to ``_size``: a pool that is
        # given one task at a time runs one process (an idle worker cost ~0.05 s of CPU
        # and 17 MB to start; a third of those the test suite started never had a task).
        self._workers: list[_Worker] = []
        self._thread = threading.Thread(target=self._run, name="worker-pool", daemon=True)
        self._thread.start()

    def submit(
        self, fn: Callable[[Unpack[Ts]], T], /, *args: *Ts, timeout: float | None = None
    ) -> Future[T]:
        """Run ``fn(*args)`` in a worker. ``timeout`` (seconds, from the moment a worker
        starts the task) kills the worker when exceeded; the future then raises
        ``TimeoutError``. An exception raised by ``fn`` is raised by ``future.result()``,
        with the worker's traceback as its ``__cause__``. Done-callbacks run on the pool's
        dispatcher thread: keep them short, and never call :meth:`close` from one."""
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive")
        future: Future[T] = Future()
        with self._lock:
            if self._failure is not None:
                raise PoolFailedError(f"worker pool failed: {self._failure}") from self._failure
            if self._closing:
                raise RuntimeError("cannot submit to a closed WorkerPool")
            self._queue.append(_Task(fn, args, timeout, future))
        self._wake()
        return future

    def close(self, *, cancel_pending: bool = False, kill_running: bool = False) -> None:
        """Stop accepting tasks, finish queued ones (or cancel them), stop the workers and
        wait for them to exit. Idempotent. ``kill_running`` (which cancels the queued
        ones too) does not wait for the tasks being run either: their workers are killed
        and their futures raise ``CancelledError``. For an owner that will not take up
        the results (a poll stopped by SIGTERM left up to four bodies per worker to
        parse, each up to its time limit, which delayed the exit for nothing)."""
        cancel_pending = cancel_pending or kill_running
        with self._lock:
            self._closing = True
            self._kill_running = self._kill_running or kill_running
            cancelled = list(self._queue) if cancel_pending else []
            if cancel_pending:
                self._queue.clear()
        for task in cancelled:
            task.future.cancel()
        self._wake()
        self._thread.join()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def failure(self) -> BaseException | None:
        """What stopped the pool for good (every submit then raises), or None. Such a
        pool is not repaired; its owner closes it and starts another."""
        with self._lock:
            return self._failure

    @property
    def pids(self) -> tuple[int, ...]:
        """Process ids of the current workers: none before the first task, at most one
        per task given at once (after ``close``: of the last ones)."""
        return tuple(w.pid for w in list(self._workers))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(cancel_pending=exc_type is not None)

    # --- dispatcher thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._dispatch()
                busy = [w for w in self._workers if w.task is not None]
                with self._lock:
                    abandon = self._kill_running
                if abandon:
                    for worker in busy:
                        self._abandon(worker)
                    busy = []
                with self._lock:
                    if self._closing and not self._queue and not busy:
                        break
                conns = [w.conn for w in self._workers]
                ready = wait([self._wake_r, *conns], self._wait_time(busy))
                for obj in ready:
                    if obj is self._wake_r:
                        self._drain_wake()
                        continue
                    index = conns.index(obj)  # type: ignore[arg-type]
                    if not self._workers[index].ready:
                        self._started(index)
                    elif self._workers[index].task is not None:
                        self._collect(self._workers[index])
                    else:  # an idle worker's pipe speaks only at its end: it died
                        self._workers[index] = self._replace_idle(self._workers[index])
                self._expire()
        except BaseException as e:  # a bug here must not leave callers waiting forever
            # one line; the traceback at debug level (the tasks' callers report it too)
            log.error("worker pool failed: %s", e)
            log.debug("traceback of the worker pool's failure", exc_info=e)
            self._fail_everything(e)
        finally:
            self._stop_workers()

    def _dispatch(self) -> None:
        index = 0
        while True:
            while index < len(self._workers) and self._workers[index].task is not None:
                index += 1
            if index == len(self._workers):  # no idle worker: start one if a task waits
                with self._lock:
                    waiting = bool(self._queue)
                if not waiting or len(self._workers) >= self._size:
                    return
                # one that cannot start (fork refused) fails the pool: see ``_run``
                self._workers.append(self._start_worker())
            task = self._next_task()
            if task is None:
                return
            try:
                payload = pickle.dumps((task.fn, task.args), pickle.HIGHEST_PROTOCOL)
            except Exception as e:  # unpicklable function or arguments: the caller's error
                task.future.set_exception(e)
                continue
            self._give(index, task, payload)

    def _give(self, index: int, task: _Task, payload: bytes) -> None:
        """Send ``task`` to the worker at ``index``, or to its replacement if it is dead.
        Its limit runs from now, and again from the worker's ``_READY`` if it has not
        started yet (so a start that hangs is still cut off)."""
        worker = self._workers[index]
        while True:
            try:
                worker.conn.send_bytes(payload)
                break
            except OSError:  # the worker died while idle: the task deserves a live one
                try:
                    worker = self._workers[index] = self._replace_idle(worker)
                except BaseException as e:
                    task.future.set_exception(PoolFailedError(f"worker pool failed: {e}"))
                    raise
        worker.task = task
        worker.deadline = _deadline(task)

    def _started(self, index: int) -> None:
        """The first message of the worker at ``index``: its ``_READY``, or its end. One
        that died before it could read a task (it cannot start) is replaced as one that
        died idle, and the task it was given goes to the replacement: the task did not
        run, so it is not the task's failure (``WorkerDiedError``)."""
        worker = self._workers[index]
        try:
            worker.conn.recv_bytes()
        except (EOFError, OSError):
            task = worker.task
            worker.task = worker.deadline = None
            try:
                self._workers[index] = self._replace_idle(worker)
            except BaseException as e:
                if task is not None:
                    task.future.set_exception(PoolFailedError(f"worker pool failed: {e}"))
                raise
            if task is not None:
                self._give(index, task, pickle.dumps((task.fn, task.args), pickle.HIGHEST_PROTOCOL))
            return
        worker.ready = True
        if worker.task is not None:
            worker.deadline = _deadline(worker.task)

    def _next_task(self) -> _Task | None:
        with self._lock:
            while self._queue:
                task = self._queue.popleft()
                if task.future.set_running_or_notify_cancel():
                    return task
        return None

    def _collect(self, worker: _Worker) -> None:
        task = worker.task
        assert task is not None
        worker.task = worker.deadline = None
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            code = _join(worker.process, _STOP_GRACE_S)  # it closed the pipe: it is exiting
            self._workers[self._workers.index(worker)] = self._replace(worker)
            message = f"worker exited (code {code}) while running {task.name}"
            task.future.set_exception(WorkerDiedError(message))
            return
        worker.served += 1
        try:
            ok, value, remote_tb = pickle.loads(data)
        except Exception as e:  # e.g. the result's class cannot be imported here
            task.future.set_exception(e)
            return
        if ok:
            task.future.set_result(value)
        else:
            value.__cause__ = RemoteTraceback(remote_tb)
            task.future.set_exception(value)

    def _expire(self) -> None:
        now = time.monotonic()
        for index, worker in enumerate(self._workers):
            task = worker.task
            if task is None or worker.deadline is None or worker.deadline > now:
                continue
            self._workers[index] = self._replace(worker)
            message = f"{task.name} exceeded its {task.timeout:g} s limit; its worker was killed"
            task.future.set_exception(TimeoutError(message))

    def _abandon(self, worker: _Worker) -> None:
        """Kill a worker in the middle of its task (the pool is closing, and nobody
        takes up the result); ``_stop_workers`` finds it dead."""
        task = worker.task
        assert task is not None
        worker.task = worker.deadline = None
        _terminate(worker)
        task.future.set_exception(CancelledError(f"{task.name}: the worker pool was closed"))

    def _wait_time(self, busy: list[_Worker]) -> float | None:
        deadlines = [w.deadline for w in busy if w.deadline is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _start_worker(self) -> _Worker:
        parent_end, child_end = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(child_end.fileno()), json.dumps(sys.path)],
                stdin=subprocess.DEVNULL,
                pass_fds=(child_end.fileno(),),
                env=_worker_env(),
            )
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()  # only the child holds it now, so its death reads as EOF here
        return _Worker(process=process, conn=Connection(parent_end.detach()), pid=process.pid)

    def _replace_idle(self, worker: _Worker) -> _Worker:
        """A new worker for one that died idle; an error once three in a row die before
        their first task (they cannot start: respawning them would only spin)."""
        if worker.served:
            self._stillborn = 0
        else:
            self._stillborn += 1
            if self._stillborn >= 3:
                code = _join(worker.process, _STOP_GRACE_S)
                raise RuntimeError(f"worker processes exit as they start (exit code {code})")
        return self._replace(worker)

    def _replace(self, worker: _Worker) -> _Worker:
        _terminate(worker)
        return self._start_worker()

    def _stop_workers(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError):  # already dead: joined below all the same
                worker.conn.send_bytes(_STOP)
        give_up = time.monotonic() + _STOP_GRACE_S
        for worker in self._workers:
            _join(worker.process, max(0.0, give_up - time.monotonic()))
            _terminate(worker)

    def _fail_everything(self, error: BaseException) -> None:
        with self._lock:
            self._closing = True
            self._failure = error
            queued = list(self._queue)
            self._queue.clear()
        failure = PoolFailedError(f"worker pool failed: {error}")
        for task in queued:
            if task.future.set_running_or_notify_cancel():
                task.future.set_exception(failure)
        for worker in self._workers:
            if worker.task is not None and not worker.task.future.done():
                worker.task.future.set_exception(failure)

    def _wake(self) -> None:
        # OSError: the buffer is full (a wake-up is pending anyway) or the pool is closed.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass


def _deadline(task: _Task) -> float | None:
    return None if task.timeout is None else time.monotonic() + task.timeout


def _join(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The process's exit code once it exits within ``timeout`` seconds, else None."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        return process.wait(timeout)
    return None


def _terminate(worker: _Worker) -> None:
    if worker.process.poll() is None:
        worker.process.kill()
    worker.process.wait()
    worker.conn.close()


# The directory holding the ``aggregator`` package, put first on a worker's sys.path so it
# finds this module whatever the current directory; the parent's sys.path follows (tasks'
# modules are found where the parent found them).
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def _worker_env() -> dict[str, str]:
    """The parent's environment, with this package importable and one BLAS thread per
    worker unless the user set otherwise: the pool is the parallelism, and BLAS threads
    in each worker would compete with the other workers for the same cores."""
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    return env


def _pythonpath() -> str:
    rest = os.environ.get("PYTHONPATH")
    return f"{_PACKAGE_ROOT}{os.pathsep}{rest}" if rest else _PACKAGE_ROOT


#: Signals a worker ignores: its parent's to act on (see ``_worker_main``).
_PARENTS_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

# The parent's signals are ignored first thing, so that a stop arriving while a worker
# starts (a pool starts on a poll's first body) does not kill it half-way either.
_CHILD = (
    "import signal; [signal.signal(getattr(signal, s), signal.SIG_IGN) for s in"
    " ('SIGINT', 'SIGTERM', 'SIGHUP') if hasattr(signal, s)]"
    "; from aggregator.workers import _worker_entry; _worker_entry()"
)


# --- worker process -----------------------------------------------------------------------


def _return_freed_memory() -> None:
    """Make glibc's malloc give large freed blocks back to the system. By default its
    mmap threshold grows with every large block freed (up to 32 MiB), so after a few
    big feeds each parse's buffers come from the heap, which fragments and never
    shrinks: a worker parsing 1,000 feeds grew from 65 to 90 MB, and holds 80 with
    blocks over 128 KiB mmapped and the heap trimmed past 256 KiB free. No-op where the
    C library is not glibc."""
    import ctypes  # here, not at import: the CLI imports this module on every start

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    mallopt(_M_TRIM_THRESHOLD, 256 * 1024)


_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3


def _worker_entry() -> None:
    """A worker's program: ``python -c _CHILD FD SYS_PATH_JSON``."""
    fd, path = int(sys.argv[1]), json.loads(sys.argv[2])
    sys.path[:] = path + [p for p in sys.path if p not in path]
    watch = threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True)
    watch.start()
    _worker_main(Connection(fd))


def _worker_main(conn: Connection) -> None:
    # Stopping is the parent's to handle: Ctrl-C (and a terminal's hang-up) reaches the
    # terminal's whole process group, and systemd's stop (KillMode=control-group, the
    # default) sends SIGTERM to every process of the service at once, as `kill -TERM
    # -PGID` does. A worker that died of it mid-task failed its task, so a daemon being
    # stopped recorded the feed it was parsing as "the parser crashed" (an error, a
    # backoff, a warning). A worker still ends with its parent: the pool stops it, or it
    # reads end-of-file, or its watchdog sees the parent gone; a hung one is killed
    # (SIGKILL) at its deadline. ``_CHILD`` ignores them before its first import too.
    for sig in _PARENTS_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    _return_freed_memory()
    try:
        conn.send_bytes(_READY)
    except OSError:  # the parent is gone
        return
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):  # the parent closed the pipe or is gone
            return
        if data == _STOP:
            return
        try:
            fn, args = pickle.loads(data)
            reply = _reply(True, fn(*args))
        except BaseException as e:  # report everything, SystemExit included
            reply = _reply(False, e)
        try:
            conn.send_bytes(reply)
        except OSError:  # nobody is waiting for the answer any more
            return


def _exit_with_parent(parent: int) -> None:
    """Watch for the parent's death (this process is then re-parented) and exit, even in
    the middle of a task: a parent killed outright never closes the pool."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _reply(ok: bool, value: Any) -> bytes:
    if ok:
        try:
            return pickle.dumps((True, value, ""), pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            return _reply(False, e)
    remote_tb = "".join(traceback.format_exception(value))
    # Exceptions whose __init__ takes other arguments than .args do not survive a plain
    # pickle round trip (e.g. FeedError(url, message)); rebuild those without __init__.
    for error in (value, _Rebuilt(value)):
        try:
            data = pickle.dumps((False, error, remote_tb), pickle.HIGHEST_PROTOCOL)
            pickle.loads(data)
        except Exception:
            continue
        return data
    fallback = RuntimeError(f"{type(value).__qualname__}: {value}")
    return pickle.dumps((False, fallback, remote_tb), pickle.HIGHEST_PROTOCOL)


class _Rebuilt:
    """Pickles as an exception of the same class, args and attributes, made without
    calling its ``__init__``."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __reduce__(self) -> tuple[Any, ...]:
        exc = self.exc
        return (_rebuild, (type(exc), exc.args, dict(getattr(exc, "__dict__", {}))))


def _rebuild(
    cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
) -> BaseException:
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc
