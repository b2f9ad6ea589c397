"""The events that end a wait for another process's SQLite write lock, in this process:
:func:`lock_waits_end_when` registers one for a block, and the store's wait (in slices,
``store/dialect.py``) gives up once one is set (:func:`stop_requested`).

A module of its own, with nothing but the standard library: the daemon's
:class:`~aggregator.daemon.Stopper` registers its event in commands whose ``--help``
must not import SQLAlchemy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["lock_waits_end_when", "stop_requested"]

_STOPS: list[threading.Event] = []


@contextmanager
def lock_waits_end_when(stop: threading.Event) -> Iterator[None]:
    """Inside the block, a write of this process waiting for another process's SQLite
    write lock gives up once ``stop`` is set. A command's or daemon's stop signal sets an
    event (the feeds being stored are finished first), and such a wait ran to the whole
    busy timeout (30 s). Ctrl-C where it raises KeyboardInterrupt needs none of this."""
    _STOPS.append(stop)
    try:
        yield
    finally:
        _STOPS.remove(stop)


def stop_requested() -> bool:
    return any(stop.is_set() for stop in _STOPS)
