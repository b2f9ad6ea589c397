"""The daemon: poll due feeds forever through ``App.update_due`` (the same code path as
``aggregator poll``), sleep until the next feed is due, and stop cleanly on SIGTERM or
SIGINT: the feeds being stored are finished, fetches in flight are cancelled, feeds not yet
stored are handed back (their leases released) for the next run or another daemon.
The stop is one WARNING line; a second SIGTERM/SIGINT during it exits at once (128 +
the signal's number), as ``kill -9`` would, which the database survives (each feed
whole in one transaction; the next start releases the leases left). The worker processes
ignore these signals (systemd's stop sends SIGTERM to every process of the service):
they end with the daemon.

With a retention setting (``AGGREGATOR_RETENTION``) it also prunes old stories after
its first cycle and then once every :data:`PRUNE_EVERY`; a failed prune is logged and
tried again at the next interval, the polling goes on.

It must never busy-loop: after a cycle that polled nothing it sleeps at least
``IDLE_SLEEP``, whatever the store's ``next_due`` says (a due time it cannot claim, such
as another daemon's lease ending this instant, or a clock that disagrees with the
database's).

It must outlive the database's bad hours: a cycle that fails with an ``AggregatorError``
(the database unreachable, locked past its busy timeout, a disk that refuses writes) is
one error line in the log (the traceback at debug level, ``-vv``), and the next cycle is
tried after ``RETRY_SLEEP``, doubling after each failure in a row up to ``max_sleep``.
The feeds that cycle held are handed back when the database lets it (see
``App.update_due``). Anything else is a bug and ends the daemon.

It follows the feeds file (feeds.yaml or OPML, given by ``feeds``): when the file
changes (its modification time, size or inode; looked at about once a second, a cheap
``stat``) or on SIGHUP, it is synced again, as the daemon's start synced it: feeds added,
changed feeds updated, none deleted (``feeds remove`` deletes). A file that does not
load (a YAML error half-way through an edit) is logged and changes nothing; the next
save is tried again.

What an operator must act on is logged at WARNING, the default level, so that a healthy
daemon is silent and a journal shows only news: a feed that starts failing (once, not
at every retry), one that recovers, one marked gone (410) or disabled by the 30-day
rule, a failed cycle, and the feeds file synced again or refused (its editor is
waiting to see that). Each cycle's totals and every feed's update are at INFO
(``-v``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from .app import App
from .config import describe_span
from .credentials import display_url
from .errors import AggregatorError, ConfigError
from .lockwait import lock_waits_end_when
from .textutil import counted
from .types import UpdateResult

log = logging.getLogger(__name__)

#: After each cycle (extraction on), at most this many stories stored without their
#: article's text (a ``poll --no-extract`` before) get it, newest first: a backlog drains
#: a batch at a time without holding up the polling.
EXTRACT_BACKLOG = 50

#: The least a daemon sleeps after a cycle that polled nothing (seconds).
IDLE_SLEEP = 1.0
#: The first wait after a failed cycle (seconds); it doubles with each failure in a row,
#: up to the daemon's ``max_sleep``.
RETRY_SLEEP = 5.0
#: How often a daemon with a retention setting prunes old stories.
PRUNE_EVERY = timedelta(days=1)
#: How often a sleeping daemon looks at the feeds file (seconds).
WATCH_EVERY = 1.0


class Stopper:
    """Turns SIGTERM/SIGINT into an event the loop checks between feeds and while asleep.

    With ``second_signal_exits`` (the daemon's), a second SIGTERM/SIGINT while stopping
    ends the process at once, exit status 128 + the signal's number, as ``kill -9``
    would: each feed is one transaction, so the database is whole, and the leases of
    the feeds it held are released by the next start on this host."""

    def __init__(self, *, second_signal_exits: bool = False) -> None:
        self.event = threading.Event()
        self.signal: int | None = None
        self.hangup = threading.Event()  # SIGHUP: sync the feeds file again
        self.second_signal_exits = second_signal_exits

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        self.install_hangup()

    def install_hangup(self) -> None:
        """SIGHUP sets :attr:`hangup`. The daemon installs this first thing: the
        signal's default action ends the process, and a reload (`systemctl reload`)
        while it started (a migration, the first sync waiting for a write lock) ended
        it without a word, an exit systemd counts as clean and does not restart. Off
        the main thread, where Python allows no handlers, it does nothing."""
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, lambda signum, frame: self.hangup.set())

    @contextmanager
    def installed(self) -> Iterator[Stopper]:
        """Handle SIGTERM/SIGINT inside the block, then put the previous handlers back (a
        command run in-process, as in tests, must not leave its handler behind). Off the
        main thread, where Python allows no handlers, the block runs without them.
        Inside the block, a write waiting for another process's SQLite write lock gives
        up at the signal."""
        with lock_waits_end_when(self.event):
            yield from self._installed()

    def _installed(self) -> Iterator[Stopper]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        handled = [signal.SIGTERM, signal.SIGINT]
        if hasattr(signal, "SIGHUP"):
            handled.append(signal.SIGHUP)
        previous = {sig: signal.getsignal(sig) for sig in handled}
        self.install()
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                if handler is not None:  # None: set outside Python, cannot be restored
                    signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.second_signal_exits:
            if self.event.is_set():
                log.warning("signal %d while stopping: exiting now", signum)
                os._exit(128 + signum)
            # The stop can take a few seconds (the feeds being stored, the work in the
            # worker processes): say so, and how not to wait.
            log.warning("stopping on signal %d (send it again to exit at once)", signum)
        self.signal = signum
        self.event.set()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()


def seconds_until(when: datetime | None, now: datetime, max_sleep: float) -> float:
    if when is None:
        return max_sleep
    return max(0.0, min(max_sleep, (when - now).total_seconds()))


def run_daemon(
    app: App,
    *,
    extract: bool = True,
    max_sleep: float = 300.0,
    stopper: Stopper | None = None,
    max_cycles: int | None = None,
    idle_sleep: float = IDLE_SLEEP,
    retry_sleep: float = RETRY_SLEEP,
    feeds: Path | None = None,
) -> int:
    """Run until stopped; returns the number of cycles run (failed ones included). Sleeps
    until the next feed is due, at most ``max_sleep`` and, after a cycle that polled
    nothing, at least ``idle_sleep``; after a failed cycle, ``retry_sleep`` doubled for
    each failure in a row before it (at most ``max_sleep``, at least ``idle_sleep``). A
    stop signal ends the sleep, and the poll, at once. ``feeds``: the feeds file to
    follow (synced already by the caller, as it was at the start); a change to it, or
    SIGHUP, ends the sleep and syncs it."""
    if stopper is None:  # the command's own: its handlers stay through the App's closing
        stopper = Stopper(second_signal_exits=True)
    if threading.current_thread() is threading.main_thread():
        stopper.install()
    watch = FeedsFile(feeds) if feeds is not None else None
    log.info("daemon started owner=%s", app.owner)
    health = FeedHealth(app.policy.disable_after)
    cycles = failures = 0
    last_prune: datetime | None = None
    # A write waiting for another process's SQLite write lock gives up at the stop
    # signal (it waited up to the 30 s busy timeout)
    with lock_waits_end_when(stopper.event):
        while not stopper.stopped:
            if watch is not None:
                watch.sync_if_changed(app, force=stopper.hangup.is_set())
                stopper.hangup.clear()
            try:  # taxonomy.yaml edited while running: its topics, without a restart
                app.refresh_taxonomy()
            except AggregatorError as e:  # the store, for the sync: the next cycle tries again
                log.error("taxonomy.yaml changed; its topics could not be synced yet: %s", e)
            try:
                polled = _cycle(app, extract, stopper, health)
            except AggregatorError as e:
                failures += 1
                polled = 0
                wait = max(idle_sleep, min(max_sleep, retry_sleep * 2 ** min(failures - 1, 20)))
                log.error("poll cycle failed (trying again in %.0fs): %s", wait, e)
                log.debug("traceback of the failed poll cycle", exc_info=e)
            else:
                if failures:
                    log.warning("poll cycle succeeded again after %d failed", failures)
                failures = 0
            cycles += 1
            retention = app.settings.retention
            due = last_prune is None or app.now() - last_prune >= PRUNE_EVERY
            if retention is not None and due and not failures and not stopper.stopped:
                last_prune = app.now()
                _prune(app, retention, stopper.event)
            if extract and app.settings.extract and not failures and not stopper.stopped:
                _extract_backlog(app, stopper.event)
            if stopper.stopped or (max_cycles is not None and cycles >= max_cycles):
                break
            if not failures:
                try:
                    wait = seconds_until(app.next_due(), app.now(), max_sleep)
                except AggregatorError as e:  # the database went away after the cycle
                    failures = 1
                    wait = max(idle_sleep, min(max_sleep, retry_sleep))
                    log.error(
                        "reading the next due time failed (trying again in %.0fs): %s", wait, e
                    )
                if not polled:
                    wait = max(wait, idle_sleep)
            if wait > 0:
                log.info(
                    "sleeping %.0fs until the next %s", wait, "try" if failures else "feed is due"
                )
                _sleep(wait, stopper, watch)
    log.info("daemon stopped%s", f" by signal {stopper.signal}" if stopper.signal else "")
    return cycles


def _sleep(wait: float, stopper: Stopper, watch: FeedsFile | None) -> None:
    """Sleep ``wait`` seconds, or until a stop signal; with a feeds file to follow, until
    it changes or SIGHUP too (looked at every ``WATCH_EVERY``), so that a feed added to
    it is polled at once."""
    if watch is None:
        stopper.event.wait(wait)
        return
    until = time.monotonic() + wait
    while (left := until - time.monotonic()) > 0:
        if stopper.event.wait(min(left, WATCH_EVERY)):
            return
        if stopper.hangup.is_set() or watch.changed():
            return


class FeedsFile:
    """The feeds file as the daemon last synced it, known by its modification time, size
    and inode (an editor saving by rename gives a new inode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = self._stamp()
        self.unsynced = False  # a sync the database refused, to try again

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def changed(self) -> bool:
        return self._stamp() != self.seen

    def sync_if_changed(self, app: App, *, force: bool = False) -> None:
        """Sync the file again if it changed since the last look (or ``force``). A file
        gone leaves the feeds as they are; one that does not load is logged, and so is
        what a sync added and updated."""
        stamp = self._stamp()
        if stamp == self.seen and not force and not self.unsynced:
            return
        self.seen, self.unsynced = stamp, False
        if stamp is None:
            log.warning("feeds file %s is gone: the feeds stay as they are", self.path)
            return
        try:
            added, updated = app.sync_feeds(self.path)
        except ConfigError as e:  # the file's fault: wait for the next save
            log.error(
                "feeds file %s not applied, the feeds stay as they were (fix it and save "
                "again, or send SIGHUP): %s",
                self.path,
                e,
            )
            return
        except AggregatorError as e:  # the database's: tried again before the next cycle
            self.unsynced = True
            log.error("feeds file %s could not be synced now (tried again): %s", self.path, e)
            return
        log.warning(
            "feeds file %s synced: %s added, %d updated", self.path, counted(added, "feed"), updated
        )


class FeedHealth:
    """Which feeds this daemon has seen failing, so that a failure is a warning once,
    when it starts (or when the daemon first meets it), not at every backed-off retry,
    and the recovery is one too."""

    def __init__(self, disable_after: timedelta) -> None:
        self.disable_after = disable_after
        self.failing: set[int] = set()

    def note(self, res: UpdateResult) -> None:
        shown = display_url(res.url)
        if res.status == "error":
            if res.feed_status == "gone":
                log.warning("feed %s is gone (HTTP 410): no longer polled; %s", shown, res.error)
            elif res.feed_status == "disabled":
                log.warning(
                    "feed %s disabled after failing for %s: no longer polled (`aggregator "
                    "feeds enable` turns it back on); %s",
                    shown,
                    describe_span(self.disable_after),
                    res.error,
                )
            elif res.feed_id not in self.failing:
                log.warning("feed %s failing: %s (retried with backoff)", shown, res.error)
            self.failing.add(res.feed_id)
        elif res.feed_id in self.failing and res.status != "skipped":
            self.failing.discard(res.feed_id)
            log.warning("feed %s recovered", shown)


def _cycle(app: App, extract: bool, stopper: Stopper, health: FeedHealth | None = None) -> int:
    """One poll of the due feeds; returns how many were polled."""
    started = time.monotonic()
    updates = app.update_due(extract=extract, stop=stopper.event)
    polled = new = errors = 0
    try:
        for res in updates:
            polled += 1
            new += res.new
            errors += res.status == "error"
            if health is not None:
                health.note(res)
            if stopper.stopped:
                break
    finally:
        updates.close()  # cancels the fetches, releases the leases of feeds not stored
    if polled:
        log.info(
            "poll cycle: %s, %s, %s in %.1fs",
            counted(polled, "feed"),
            counted(new, "new story", "new stories"),
            counted(errors, "error"),
            time.monotonic() - started,
        )
    return polled


def _extract_backlog(app: App, stop: threading.Event) -> None:
    try:
        done = app.extract_waiting(EXTRACT_BACKLOG, stop=stop)
    except AggregatorError as e:
        log.error("extracting stories stored without their article failed: %s", e)
        return
    if done.tried:
        log.info(
            "extracted %d of %s stored without %s article's text (%d failed)",
            done.extracted,
            counted(done.tried, "story", "stories"),
            "its" if done.tried == 1 else "their",
            done.failed,
        )


def _prune(app: App, retention: timedelta, stop: threading.Event) -> None:
    """A stop signal ends the prune after the batch being deleted (a store of years of
    news has tens of thousands of stories to delete at the first one, minutes of work);
    the rest go at the next start's."""
    try:
        deleted = app.prune(retention, stop=stop)
    except AggregatorError as e:
        log.error("pruning stories failed (tried again in %s): %s", PRUNE_EVERY, e)
        return
    log.info(
        "pruned %s older than %s", counted(deleted, "story", "stories"), describe_span(retention)
    )
