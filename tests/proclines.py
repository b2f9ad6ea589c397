"""A subprocess's output read as it comes, so that a test can wait for a line (say, the
daemon's "sleeping ..." once its cycle is done) instead of sleeping a fixed time and
hoping, then take the whole output as ``communicate()`` gives it.

    proc = subprocess.Popen([...], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output = Output(proc)
    assert output.wait_for_err("sleeping "), output.err
    proc.send_signal(signal.SIGTERM)
    out, err = output.communicate(timeout=30)
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import IO


class Output:
    """Reads the process's stdout and stderr pipes (text mode) on threads of their own."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._changed = threading.Condition()
        self._out: list[str] = []
        self._err: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((proc.stdout, self._out), (proc.stderr, self._err))
            if stream is not None
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream: IO[str], into: list[str]) -> None:
        for line in stream:
            with self._changed:
                into.append(line)
                self._changed.notify_all()
        stream.close()
        with self._changed:
            self._changed.notify_all()

    @property
    def err(self) -> str:
        with self._changed:
            return "".join(self._err)

    def wait_for_err(self, text: str, count: int = 1, timeout: float = 60) -> bool:
        """Until ``count`` lines of stderr contain ``text`` (True), the process has ended
        or ``timeout`` seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(text in line for line in self._err) < count:
                left = deadline - time.monotonic()
                if left <= 0 or not any(t.is_alive() for t in self._threads):
                    return False
                self._changed.wait(min(left, 0.5))
            return True

    def communicate(self, timeout: float) -> tuple[str, str]:
        """As ``Popen.communicate(timeout=...)``: wait for the process to end (raising
        ``subprocess.TimeoutExpired`` as it does), then all of its output."""
        self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=timeout)
        with self._changed:
            return "".join(self._out), "".join(self._err)
