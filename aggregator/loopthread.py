"""An asyncio event loop on a thread of its own, for the App's fetcher: the rest of the
App (the CLI, the daemon, ``serve``) stays synchronous and hands it coroutines. Owns
starting the loop and closing it cleanly (tasks a poll left behind cancelled and let
unwind there first); nothing about fetching.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger("aggregator.app")  # its messages were the App's, and stay so
T = TypeVar("T")


class LoopThread:
    """An asyncio event loop on its own thread, running the fetcher; the rest of the app
    stays synchronous and hands it coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fetch-loop", daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def cancel_all(self, timeout: float = 1.0) -> None:
        """Cancel every task still on the loop (a poll whose consumer walked away) and
        wait up to ``timeout`` for them to unwind there. A task still pending when the
        loop closes is destroyed half-way: "Task was destroyed but it is pending!", and
        its finally blocks fail with "Event loop is closed", one of each per feed."""

        async def cancel() -> None:
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)

        self._run_briefly(cancel(), timeout + 1)

    def _run_briefly(self, coro: Coroutine[Any, Any, None], timeout: float) -> None:
        """Run ``coro`` on the loop for at most ``timeout`` seconds, on the way out."""
        if self.loop.is_closed() or not self.thread.is_alive():
            coro.close()
            return
        try:
            self.submit(coro).result(timeout=timeout)
        except Exception:  # closing must not mask the original error
            log.debug("finishing the loop's work failed", exc_info=True)

    def close(self) -> None:
        self.cancel_all()
        self._run_briefly(self.loop.shutdown_asyncgens(), 1.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()
