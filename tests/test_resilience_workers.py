"""The daemon outlives its worker processes dying: killed (kill -9, as the OOM killer
does) while idle, even as fast as they are replaced, the next cycle parses with live
workers."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from httpserver import LocalServer, Request
from test_resilience_postgres import wait_for
from test_update import Clock

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.daemon import Stopper, run_daemon


def changing_feed(name: str) -> Callable[[Request], bytes]:
    """A feed with a new story at every request, so that every poll parses it."""
    n = [0]

    def body(_: Request) -> bytes:
        n[0] += 1
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
            f"<item><title>Story {n[0]} of {name}</title><guid>{name}-{n[0]}</guid>"
            f"<link>http://example.org/{name}/{n[0]}</link>"
            f"<description>Resolver operators met, round {n[0]}.</description></item>"
            "</channel></rss>"
        ).encode()

    return body


def workers() -> set[int]:
    """This process's worker processes, as /proc shows them."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"aggregator.workers" in cmdline and " Z " not in stat:
            found.add(int(entry))
    return found


def kill_all(pids: set[int], then: int) -> set[int]:
    """Kill ``pids``; wait until they are gone and ``then`` workers run; return those."""
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not workers() & pids and len(workers()) == then)
    return workers()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_daemon_replaces_workers_killed_as_fast_as_they_start(
    tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    urls = [server.route(f"/f{i}.xml", body=changing_feed(f"f{i}")) for i in range(3)]
    s = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, extract=False, workers=2
    )
    clock = Clock()
    stopper = Stopper()
    caplog.set_level(logging.WARNING, logger="aggregator")
    with make_app(s, now=clock) as app:
        for u in urls:
            app.add_feed(u, discover=False)
        daemon = threading.Thread(
            target=run_daemon,
            args=(app,),
            kwargs={"stopper": stopper, "max_sleep": 0.2, "idle_sleep": 0.1, "extract": False},
        )
        daemon.start()
        try:
            wait_for(lambda: sum(f.stories for f in app.feeds()) == 3)
            # Killed once they had served (the OOM killer), then their replacements as
            # they came up, three in a row: the pool gives up on them ("exit as they
            # start") rather than respawn forever...
            # both up (on a loaded machine the second may still be starting)
            wait_for(lambda: len(workers()) == 2)
            pids = workers()
            assert len(pids) == 2
            fresh = kill_all(pids, then=2)
            fresh = kill_all(fresh, then=2)
            kill_all({min(fresh)}, then=0)
            wait_for(lambda: "exit as they start" in caplog.text)
            # ... and the daemon's next cycle starts new workers: every feed parsed again
            clock.t += app.settings.max_interval * 2
            wait_for(lambda: sum(f.stories for f in app.feeds()) == 6)
            feeds = app.feeds()
            assert [(f.status, f.error_count) for f in feeds] == [("active", 0)] * 3
            assert daemon.is_alive() and len(workers()) == 2
        finally:
            stopper.event.set()
            daemon.join(timeout=10)
    assert workers() == set()
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # one line where the pool gave up, one where new workers started; no traceback
    assert [r.getMessage().split(":")[0] for r in warned] == [
        "worker pool failed",
        "starting new worker processes",
    ], [r.getMessage() for r in warned]
    assert all(r.exc_info is None for r in warned)
