"""The fetcher's global and per-host concurrency limits (:class:`_Slots`), and the counters
:class:`aggregator.fetch.FetchStats` reports from them.

Must not: do I/O, know about HTTP or URLs (a host is only a key here), or import
:mod:`aggregator.fetch`, which imports it. asyncio only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(slots=True)
class _Host:
    semaphore: asyncio.Semaphore
    users: int = 0
    active: int = 0


class _Slots:
    """Global and per-host concurrency limits.

    The per-host slot is taken FIRST: a burst to one slow host then waits without
    holding global slots, so it cannot starve other hosts. Hosts nobody uses are
    forgotten, so thousands of feeds do not leave thousands of semaphores behind.
    """

    def __init__(self, per_host: int, total: int) -> None:
        self._per_host = per_host
        self._total = asyncio.Semaphore(total)
        self._hosts: dict[str, _Host] = {}
        self.requests = 0
        self.in_flight = 0
        self.peak = 0
        self.peak_host = 0

    @contextlib.asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        entry = self._hosts.get(host)
        if entry is None:
            entry = self._hosts[host] = _Host(asyncio.Semaphore(self._per_host))
        entry.users += 1
        try:
            async with entry.semaphore, self._total:
                entry.active += 1
                self.in_flight += 1
                self.requests += 1
                self.peak = max(self.peak, self.in_flight)
                self.peak_host = max(self.peak_host, entry.active)
                try:
                    yield
                finally:
                    entry.active -= 1
                    self.in_flight -= 1
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._hosts[host]
