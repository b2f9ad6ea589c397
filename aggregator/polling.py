"""The per-feed update pipeline behind ``App.update_due``: one poll of the due feeds.

Owns the stages of a poll (claim, fetch, parse / identify / classify, diff, extract,
store; the list is in :meth:`aggregator.app.App.update_due`'s docstring), the two memory
bounds that keep fetching from running ahead of the parsers and the store
(:class:`PollStats` records their peaks), and the batching of story-less outcomes into
one transaction; what each feed's outcome becomes (its records, ``FeedCheck`` and
``UpdateResult``, written) is the work of :mod:`aggregator.outcomes`, a mixin of the ``Poller``.

It must not own resources: the store, the fetcher and its event-loop thread, the worker
pool and the model are the App's, borrowed through the App for one poll and never closed
here. It must not import :mod:`aggregator.app` at run time (``app -> polling`` only; the
App type is for annotations), nor anything heavy at import time (the jobs run in worker
processes and are imported when the first one is submitted), nor do CPU-heavy work on the
calling thread, which only talks to the database. Front ends call ``App.update_due``, not
this module.

Errors: a ``FeedError`` is recorded on its feed. Any other ``Exception`` raised while
taking up one feed's outcome (building its records, writing its stories or state) is a
bug or bad data that got past the parser, but it is that feed's alone: its transaction
is rolled back, it is logged with its traceback and recorded as that feed's error (so it
backs off like any other), and the poll goes on with the other feeds, because one
broken feed must never stop the others. A feed deleted while the poll has it
(``aggregator feeds remove``) has nowhere to record anything: it is dropped from the poll
(logged at info), not stored and not yielded. What is not one feed's (recording that
error failing too, e.g. the database gone; ``BaseException`` such as KeyboardInterrupt,
SystemExit or a cancelled fetch) propagates.

A poll that ends before its feeds are stored (``stop`` set, an exception, a consumer
that closes the generator) cancels its tasks on the event loop and waits briefly for them
to unwind there, then releases the leases of the feeds it did not store. When the
database refuses that too (it is gone), the App keeps their ids and the next poll hands
them back before it claims anything.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Container, Coroutine, Generator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from . import schedule
from .articles import Articles, hold_in_store
from .credentials import display_url
from .errors import (
    AggregatorError,
    FeedError,
    FetchError,
    ParseError,
    StoreUnavailableError,
)
from .feedlist import host_key, url_host
from .outcomes import Outcomes, Ready, Removed, _ms
from .textutil import counted
from .types import (
    ClaimedSettings,
    Feed,
    FeedCheck,
    FetchResult,
    StoryVersion,
    UpdateResult,
)
from .workers import WorkerDiedError

if TYPE_CHECKING:
    from .app import App
    from .jobs import ParseOutcome
    from .loopthread import LoopThread

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long the store thread gathers finished feeds into one batch (seconds).
BATCH_WAIT = 0.02

#: While waiting for outcomes, how often a poll given a ``stop`` event looks at it
#: (seconds): a daemon told to stop mid-fetch must not wait for the next feed to finish,
#: which behind slow servers is a whole fetch timeout.
STOP_CHECK = 0.1

#: How long a poll that ends early waits for its cancelled tasks to unwind (seconds).
CANCEL_WAIT = 1.0

LEASE = timedelta(minutes=15)
#: How often a poll renews the leases of the feeds it still holds (by ``app.now()``).
RENEW_EVERY = LEASE / 3


@dataclass(slots=True)
class PollStats:
    """The most one poll held at once: feeds between the start of their fetch and their
    stored outcome (``ahead_peak``), and bodies handed to the workers whose outcomes the
    store thread had not taken up yet (``parsing_peak``), the two memory bounds of
    ``update_due``; and the feeds whose stories it stored (``stored``) in how many
    transactions (``transactions``: a group of feeds in one, see ``outcomes.GROUP_MAX``)."""

    ahead_peak: int = 0
    parsing_peak: int = 0
    stored: int = 0
    transactions: int = 0


class _HostHeld(Exception):
    """Raised before a request to a host that asked to be left alone (``waits``): the
    feed is skipped. ``wait`` is until when, and why."""

    def __init__(self, wait: tuple[datetime, str]) -> None:
        super().__init__(wait[1])
        self.wait = wait


class Poller(Outcomes):
    """The update pipeline of one App: :meth:`run` is the body of ``App.update_due``."""

    def __init__(self, app: App) -> None:
        self.app = app
        # This poll's tasks on the event loop (touched there only), so that a poll that
        # ends early can cancel them and let them unwind before the loop closes; left to
        # be destroyed with the loop, they printed "Task was destroyed but it is pending!"
        # and, from their finally blocks, "Event loop is closed", one per feed.
        self._tasks: set[asyncio.Task[Any]] = set()
        self.articles = Articles(app)

    def run(
        self,
        *,
        all_feeds: bool,
        extract: bool | None,
        limit: int | None,
        stop: threading.Event | None = None,
        feed_ids: Collection[int] | None = None,
    ) -> Generator[UpdateResult, None, None]:
        """Poll the due feeds (or ``feed_ids``, see ``App.update_due``) once, yielding one
        ``UpdateResult`` per feed as it finishes (the stages are listed in
        ``App.update_due``'s docstring); sets
        ``app.last_poll_stats``. Once ``stop`` is set the poll ends as soon as the feeds
        being stored are, even while waiting for fetches; the rest is handed back. A write
        waiting for another process's SQLite write lock when ``stop`` is set gives up
        (it waited up to the 30 s busy timeout), and the poll ends as stopped."""
        run = partial(
            self._run, all_feeds=all_feeds, extract=extract, limit=limit, feed_ids=feed_ids
        )
        if stop is None:
            yield from run(stop=None)
            return
        with self.app.store.lock_waits_end_when(stop):
            try:
                yield from run(stop=stop)
            except StoreUnavailableError as e:
                if not stop.is_set():
                    raise
                log.info("poll stopped: %s", e)

    def _run(
        self,
        *,
        all_feeds: bool,
        extract: bool | None,
        limit: int | None,
        stop: threading.Event | None,
        feed_ids: Collection[int] | None,
    ) -> Generator[UpdateResult, None, None]:
        app = self.app
        everything = all_feeds or feed_ids is not None  # due or not
        extract = app.settings.extract if extract is None else extract
        app._start_fetcher()  # built on the loop thread while this one claims
        # Before claiming anything: a pool that failed last time is replaced, and the
        # leases a poll could not hand back (the database was gone) are handed back now;
        # otherwise this process would keep those feeds from itself until they expire.
        app._replace_failed_pool()
        app._hand_back_kept_leases()
        app._release_dead_leases()  # and those of this host's polls that ended (kill -9)
        # the clock stepped back since feeds were checked: their waits from now, not
        # from where the old clock put them (Store.rebase_clock)
        if n := app.store.rebase_clock(app.now()):
            log.warning(
                "the clock went back: %s moved back with it",
                "1 feed's next check" if n == 1 else f"{n:,} feeds' next checks",
            )
        holds = app.store.held_hosts(app.now())  # read once, for pages and feeds
        if extract:
            app._stall_held_hosts(holds)  # the article pages of a host another poll saw held
        # and the feeds redirected to such a host (its own feeds are not due before then):
        # the fetcher's admission looked only at the holds this poll had seen
        for host, held_until in holds.items():
            self.articles.waits[host] = (
                held_until,
                f"not requested: {host} asked for no request before"
                f" {held_until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
            )
        # Feeds are leased a chunk at a time, as the poll makes room, not all at once:
        # fetching starts after the first chunk's claim (leasing 1,000 feeds took ~0.1 s,
        # a sixth of an all-304 poll); several daemons on one database share a large
        # backlog instead of the first one leasing all of it; and a lease never runs out
        # on a feed still queued behind a long poll.
        candidates = app.due_ids(all_feeds=all_feeds, feed_ids=feed_ids)[:limit]
        chunk = max(2 * app.settings.max_connections, 16)
        taken = 0

        claimed_at: dict[int, datetime] = {}  # FeedCheck.claimed_at

        def claim() -> list[Feed]:
            nonlocal taken
            got: list[Feed] = []
            while not got and taken < len(candidates):
                ids = candidates[taken : taken + chunk]
                taken += len(ids)
                # others may have leased or polled some meanwhile: those are skipped
                now = app.now()
                got = app.store.claim_due(
                    now, owner=app.owner, lease=LEASE, include_not_due=everything, ids=ids
                )
                claimed_at.update(dict.fromkeys((f.id for f in got), now))
            return got

        feeds = claim()
        if not feeds:
            return
        try:
            loop, fetcher = app._ensure_fetcher()
        except BaseException:
            # Nothing was fetched: the feeds go back now, not when their leases expire
            # (the error is the caller's to report).
            app._hand_back([f.id for f in feeds], quiet=True)
            raise
        events: queue.Queue[tuple[str, Feed, Any]] = queue.Queue()
        started: dict[int, float] = {}
        pending: set[int] = set()
        min_chars = app.settings.extract_min_chars
        # Backpressure: a feed holds a place from the start of its fetch until its outcome
        # is stored, so fetching never runs far ahead of the parsers and the store and
        # piles bodies up in memory (the first poll of 1,000 feeds held ~130 MB of XML
        # waiting for a worker). Two places per worker beyond the fetches keep a body
        # queued for each; a larger margin only held more parsed feeds waiting for the
        # store thread, which is the first poll's bottleneck (8 per worker: ~6 MB more
        # at the main process's peak, no faster).
        ahead = asyncio.Semaphore(app.settings.max_connections + 2 * app.settings.workers)

        # A parsed feed waiting for this thread is ~3x its XML in memory, and this thread
        # (the store) is the first poll's bottleneck: at most this many bodies go to the
        # workers before this thread takes up their outcomes; the rest wait as bytes (at
        # 8 per worker, parsed feeds queued here were ~30 MB of the app's peak). A feed
        # whose pages are then extracted gives its place back on being taken up, so page
        # fetching and extraction keep their concurrency.
        parsing = asyncio.Semaphore(4 * app.settings.workers)
        parsing_held: set[int] = set()
        stats = app.last_poll_stats = PollStats()

        def release_parsing(feed_id: int) -> None:
            if feed_id in parsing_held:
                parsing_held.discard(feed_id)
                loop.loop.call_soon_threadsafe(parsing.release)

        def release(feed_id: int) -> None:
            loop.loop.call_soon_threadsafe(ahead.release)
            release_parsing(feed_id)

        # Outcomes without a body (304s, unchanged bodies, errors) give their place back
        # at once, on the loop thread: only bodies need holding back.
        held: set[int] = set()

        # Feeds queue for their host BEFORE taking a place ahead: the fetcher lets only
        # ``per_host`` requests at a time to one host, and feeds waiting for a slow host
        # must not fill the places every other host's feeds need (80 feeds of one hanging
        # host held back all others for four rounds of timeouts). ``queued`` counts them,
        # so that claiming goes on while they wait.
        hosts: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}
        per_host = app.settings.per_host
        queued = [0]
        # The hosts that asked, through one feed or article page, to be left alone (a
        # 429, or a 503 with a Retry-After: ``schedule.host_wait``): until when, and why.
        # Their feeds still queued are skipped, not requested (touched on the loop thread
        # only); the store holds the host's other feeds for later polls
        # (``Store.hold_host``: written by the store thread for a feed, by
        # ``Articles._hold`` for a page).
        waits = self.articles.waits

        async def fetch(feed: Feed) -> None:
            host = url_host(feed.url)  # one host however the URL spells it (``host_key``)
            gate, users = hosts.setdefault(host, (asyncio.Semaphore(per_host), [0]))
            users[0] += 1
            queued[0] += 1
            left = False
            try:
                await gate.acquire()
            except BaseException:  # cancelled: the poll is being torn down
                left = True
                users[0] -= 1
                raise
            finally:
                queued[0] -= 1

            def leave_host() -> None:  # once the request is over, whatever came of it
                nonlocal left
                if not left:
                    left = True
                    gate.release()
                    users[0] -= 1
                    if not users[0]:
                        del hosts[host]

            try:
                if (wait := waits.get(host)) is not None and wait[0] > app.now():
                    events.put(("skipped", feed, wait))
                    return
                await fetch_admitted(feed, host, leave_host)
            finally:
                leave_host()

        def note_wait(feed: Feed, host: str, e: BaseException) -> None:
            """Remember a host that asked, through ``feed``, to be left alone."""
            if not isinstance(e, FetchError):
                return
            if (wait := schedule.host_wait(e, app.policy)) is None:
                return
            # after a redirect, the host that answered; httpx spells an internationalised
            # name in Unicode, which a feed URL may give in punycode
            asked = host_key(e.host) if e.host else host
            until = app.now() + wait
            if asked in waits and waits[asked][0] >= until:
                return
            why = (
                f"not requested: {asked} asked for no request before"
                f" {until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
                f" (HTTP {e.http_status} for {display_url(feed.url)})"
            )
            waits[asked] = (until, why)
            # nor for article pages (the same site's, often): what asked was the host.
            # An earlier, shorter wait of the host (one over already, in the daemon's
            # App, that no page has looked at yet) gives way: it kept the hour out.
            app.hold_pages(
                asked,
                time.monotonic() + wait.total_seconds(),
                f"not fetched: {asked} asked to be left alone"
                f" (HTTP {e.http_status} for the feed {display_url(feed.url)})",
            )

        def admit(host: str) -> None:
            """Looked at by the fetcher before each request of a feed is sent, redirects
            included: a feed that waited in the fetcher for a connection while its host
            answered 429, or one redirected to a held host, would ask it all the same."""
            if (wait := waits.get(host_key(host))) is not None and wait[0] > app.now():
                raise _HostHeld(wait)

        async def fetch_admitted(feed: Feed, host: str, leave_host: Callable[[], None]) -> None:
            await ahead.acquire()
            held.add(feed.id)
            stats.ahead_peak = max(stats.ahead_peak, len(held))
            try:
                try:
                    result = await fetcher.fetch(feed.url, feed.cache, admit=admit)
                finally:
                    leave_host()
                known = None
                if not unchanged(feed, result):
                    await parsing.acquire()
                    parsing_held.add(feed.id)
                    stats.parsing_peak = max(stats.parsing_peak, len(parsing_held))
                    if feed.last_success is not None:
                        # what the feed's stories were, so the worker skips the entries it
                        # would only find unchanged (read off the loop, in its executor)
                        known = await asyncio.get_running_loop().run_in_executor(
                            None, app.store.recent_story_versions, feed.id
                        )
                on_fetched(feed, result, known)
            except _HostHeld as e:  # not requested: skipped, as if it had not been admitted
                held.discard(feed.id)
                ahead.release()
                events.put(("skipped", feed, e.wait))
            except BaseException as e:  # delivered to the consuming thread as an outcome
                note_wait(feed, host, e)
                held.discard(feed.id)
                ahead.release()
                if feed.id in parsing_held:
                    parsing_held.discard(feed.id)
                    parsing.release()
                events.put(("error", feed, e))

        async def fetch_all(batch: list[Feed]) -> None:
            # One hand-over to the loop thread per claimed chunk, not one per feed.
            await asyncio.gather(*(fetch(feed) for feed in batch))

        def begin(batch: list[Feed]) -> None:
            t = time.monotonic()
            for feed in batch:
                started[feed.id] = t
                pending.add(feed.id)
            self._submit(loop, lambda: fetch_all(batch))

        renewed_at = app.now()

        def renew() -> None:
            """Extend the leases of the feeds this poll still holds, every RENEW_EVERY:
            feeds queued behind a slow host (``per_host`` requests at a time) can wait
            longer than a lease, and another daemon took the expired ones and polled
            them at the same time as this one. At once when the clock stepped back
            since: counted from the old clock's time, the next renewal waited for the
            step, while ``Store.rebase_clock`` moved the leases back by it."""
            nonlocal renewed_at
            now = app.now()
            if not pending or timedelta(0) <= now - renewed_at < RENEW_EVERY:
                return
            renewed_at = now
            try:
                held_still = app.store.renew_leases(sorted(pending), app.owner, now + LEASE)
            except AggregatorError as e:  # the store's trouble surfaces where it is written
                log.warning(
                    "could not renew the leases of %s: %s", counted(len(pending), "feed"), e
                )
                return
            if held_still < len(pending):
                log.warning(
                    "%d of this poll's %d feed leases had expired",
                    len(pending) - held_still,
                    len(pending),
                )

        def next_event() -> tuple[str, Feed, Any] | None:
            """The next outcome, or None once ``stop`` is set; renews the leases while
            it waits."""
            while stop is None or not stop.is_set():
                renew()
                try:
                    return events.get(timeout=STOP_CHECK)
                except queue.Empty:
                    pass
            return None

        def unchanged(feed: Feed, result: FetchResult) -> bool:
            return result.status == "not_modified" or (
                result.body_hash is not None and result.body_hash == feed.body_hash
            )

        def on_fetched(
            feed: Feed, result: FetchResult, known: dict[str, StoryVersion] | None
        ) -> None:
            if unchanged(feed, result):
                held.discard(feed.id)
                ahead.release()
                events.put(("unchanged", feed, result))
                return
            from .jobs import parse_job

            # The pool starts on the first body to parse (an all-304 poll never needs it);
            # the model reference is read per job, so a missing model is tried only once.
            pf = app._ensure_pool().submit(
                parse_job,
                result.body,
                result.final_url,
                result.content_type,
                app._model_ref(),
                min_chars,
                known,
                app.now(),
                timeout=app.settings.parse_timeout_s,
            )
            light = replace(result, body=b"")  # the worker has the bytes now

            def parsed(p: Future[ParseOutcome]) -> None:
                events.put(("parsed", feed, (light, p)))

            pf.add_done_callback(parsed)

        begin(feeds)

        failed = False
        hosts_held: dict[str, datetime] = {}  # by _hold_host: each written once
        try:
            while True:
                if stop is not None and stop.is_set():
                    break
                if len(pending) - queued[0] < chunk and taken < len(candidates):
                    begin(claim())  # room for another chunk
                if not pending:
                    break
                first = next_event()
                if first is None:
                    break  # stopped while waiting
                batch = [first]
                # Take what else arrives within a few milliseconds: story-less outcomes
                # (304s, errors) are written in one transaction per batch, and 64 fetches
                # in flight finish in a trickle, not all at once. Not once every feed
                # under way has its outcome here: a feed gives one at a time, so nothing
                # more can come (a poll of one feed waited BATCH_WAIT for nothing).
                until = time.monotonic() + BATCH_WAIT
                given = {first[1].id}
                while len(batch) < 256 and not pending <= given:
                    try:
                        batch.append(events.get(timeout=max(until - time.monotonic(), 0)))
                    except queue.Empty:
                        break
                    given.add(batch[-1][1].id)
                quick: list[tuple[Feed, FeedCheck]] = []
                done: list[UpdateResult | Removed] = []
                ready: list[Ready] = []
                quiet = self._quiet_post_dates(batch, pending)
                for kind, feed, payload in batch:
                    if feed.id not in pending:  # recorded already: never written twice
                        continue
                    t0 = started[feed.id]
                    if kind == "parsed":
                        release_parsing(feed.id)
                    elif kind == "error":
                        self._hold_host(feed, payload, hosts_held)
                    try:
                        outcome = self._handle(kind, feed, payload, events, extract, t0, quiet)
                    except FeedError as e:
                        outcome = self._error_check(feed, e, t0)
                    except StoreUnavailableError:
                        raise  # the database's, not this feed's (see _store_one)
                    except Exception as e:  # this feed's alone: recorded, the poll goes on
                        outcome = self._contained(feed, "internal error", e, t0)
                    # a hold put on the feed meanwhile is kept (``FeedCheck.claimed_at``),
                    # a lease another poll took over meanwhile (``claimed_by``), and the
                    # user's interval or `feeds enable` of meanwhile (``claimed``)
                    at, by = claimed_at.get(feed.id), app.owner
                    read = ClaimedSettings(
                        interval=feed.interval,
                        error_count=feed.error_count,
                        url=feed.url,
                        min_interval=app.policy.min_interval,
                    )
                    if isinstance(outcome, Ready):
                        outcome = replace(
                            outcome,
                            check=replace(
                                outcome.check, claimed_at=at, claimed_by=by, claimed=read
                            ),
                        )
                    elif isinstance(outcome, FeedCheck):
                        outcome = replace(outcome, claimed_at=at, claimed_by=by, claimed=read)
                    if isinstance(outcome, Ready):
                        ready.append(outcome)
                    elif isinstance(outcome, FeedCheck):
                        quick.append((feed, outcome))
                    elif outcome is not None:
                        done.append(outcome)
                # Feeds with stories, a few a transaction; one whose write failed comes
                # back as its error, written with the story-less outcomes. The database
                # failing part way (StoreUnavailableError) ends the poll, but only once
                # the feeds committed before it are yielded: the poll's output and the
                # daemon's counts missed feeds whose stories were stored.
                unavailable: StoreUnavailableError | None = None
                taken_up: list[UpdateResult | FeedCheck | Removed] = []
                try:
                    self._store(ready, stats, taken_up)
                except StoreUnavailableError as e:
                    unavailable = e
                for stored, r in zip(taken_up, ready, strict=False):  # those taken up
                    if isinstance(stored, FeedCheck):
                        stored = replace(
                            stored,
                            claimed_at=r.check.claimed_at,
                            claimed_by=app.owner,
                            claimed=r.check.claimed,
                        )
                        quick.append((r.feed, stored))
                    else:
                        done.append(stored)
                if quick and unavailable is None:
                    try:
                        self._save_checks(quick, started, done)
                    except StoreUnavailableError as e:
                        unavailable = e
                for res in done:
                    pending.discard(res.feed_id)
                    if res.feed_id in held:
                        held.discard(res.feed_id)
                        release(res.feed_id)
                    if isinstance(res, Removed):
                        continue
                    log.info(
                        "feed update feed=%s status=%s new=%d updated=%d ms=%d%s",
                        display_url(res.url),
                        res.status,
                        res.new,
                        res.updated,
                        res.ms,
                        f" error={res.error!r}" if res.error else "",
                    )
                    yield res
                if unavailable is not None:  # the feeds not written are handed back below
                    raise unavailable
        except Exception:
            failed = True  # the caller reports it: handing back failing is not news
            raise
        finally:
            if pending:  # stopped early (SIGTERM, an exception): hand the rest back
                log.info(
                    "poll stopped with %s not stored; handing %s back",
                    counted(len(pending), "feed"),
                    "it" if len(pending) == 1 else "them",
                )
                try:
                    self._cancel_tasks(loop)
                finally:
                    app._hand_back(sorted(pending), quiet=failed)

    def _submit(self, loop: LoopThread, make: Callable[[], Coroutine[Any, Any, T]]) -> Future[T]:
        """Run ``make()`` on the loop as one of this poll's tasks. The coroutine is made
        there, so that a task cancelled before its first step leaves none un-awaited."""

        async def tracked() -> T:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                return await make()
            finally:
                self._tasks.discard(task)

        return loop.submit(tracked())

    def _cancel_tasks(self, loop: LoopThread) -> None:
        """Cancel this poll's fetches and page extractions and wait (at most
        ``CANCEL_WAIT``) for them to unwind on the loop: their places and host slots are
        given back there, their connections closed, and none is left pending when the
        App closes the loop. Outcomes they still queue are never taken up."""

        async def cancel() -> None:
            live = [t for t in self._tasks if not t.done()]
            for t in live:
                t.cancel()
            if live:
                await asyncio.wait(live, timeout=CANCEL_WAIT)

        if loop.loop.is_closed():  # the App was closed first: nothing runs there any more
            return
        coro = cancel()
        try:
            loop.submit(coro).result(timeout=CANCEL_WAIT + 1)
        except RuntimeError:  # the loop closed meanwhile
            coro.close()
        except TimeoutError:  # the loop thread is stuck: the leases matter more
            log.warning("the poll's fetches did not stop within %g s", CANCEL_WAIT + 1)

    def _hold_host(self, feed: Feed, error: BaseException, done: dict[str, datetime]) -> None:
        """When ``error`` asks for ``feed``'s host to be left alone
        (``schedule.host_wait``), hold the host's other feeds in the store until then, so
        that no later poll, of this process or another daemon's, asks it for one; once a
        host and time (``done``). Failing to is logged, not the feed's error: the feed's
        own outcome is written next, and the store's trouble surfaces there."""
        if not isinstance(error, FetchError):
            return
        if (wait := schedule.host_wait(error, self.app.policy)) is None:
            return
        host = host_key(error.host) if error.host else url_host(feed.url)
        until = self.app.now() + wait
        if not host or (host in done and done[host] >= until - timedelta(seconds=1)):
            return  # held until then already, by another of its feeds
        done[host] = until
        hold_in_store(self.app, host, until, error, display_url(feed.url))

    def _quiet_post_dates(
        self, batch: Sequence[tuple[str, Feed, Any]], pending: Container[int]
    ) -> dict[int, list[datetime]]:
        """The post dates ``schedule.after_success`` weighs the last interval against, for
        the feeds of ``batch`` that are unchanged (a 304, the same body) and have one
        (adaptive) that quiet could still lengthen: one query for them
        all. (It cost 0.1 ms of CPU a 304, a tenth of an all-304 poll's.)"""
        longest = self.app.policy.max_interval
        ids = [
            feed.id
            for kind, feed, _ in batch
            if kind == "unchanged"
            and feed.id in pending
            and feed.poll_interval
            and feed.poll_interval < longest
            and feed.interval is None
        ]
        if not ids:
            return {}
        return self.app.store.quiet_post_dates(ids, self.app.now() - schedule.RATE_WINDOW)

    def _handle(
        self,
        kind: str,
        feed: Feed,
        payload: Any,
        events: queue.Queue[tuple[str, Feed, Any]],
        extract: bool,
        t0: float,
        quiet: Mapping[int, list[datetime]],
    ) -> Ready | FeedCheck | None:
        """One event of one feed: a FeedCheck to write in a batch, its stories Ready to
        be stored with the batch's others, or None while the feed is still in flight.
        ``quiet``: the post dates of the batch's unchanged feeds (``_quiet_post_dates``)."""
        if kind == "error":
            raise payload  # a FeedError is recorded by the caller; anything else is a bug
        if kind == "skipped":
            until, why = payload
            return schedule.after_host_wait(
                feed, until, why, now=self.app.now(), policy=self.app.policy
            )
        if kind == "unchanged":
            result: FetchResult = payload
            # the last success's interval, kept through errors (they do not write it): it
            # may hold a <ttl> only the body gave, and a failed poll did not change it
            last = feed.poll_interval
            if feed.interval is not None:
                dates: list[datetime] = []  # feeds.yaml's interval decides
            elif last:
                dates = quiet.get(feed.id, [])  # none: at the longest interval already
            else:
                dates = self._post_dates(feed)
            return schedule.after_success(
                feed,
                result,
                outcome="not_modified" if result.status == "not_modified" else "unchanged",
                now=self.app.now(),
                policy=self.app.policy,
                post_dates=dates,
                base=last,
                ms=_ms(t0),
            )
        if kind == "parsed":
            result, pf = payload
            try:
                parsed: ParseOutcome = pf.result()
            except TimeoutError as e:
                limit = self.app.settings.parse_timeout_s
                raise ParseError(feed.url, f"parsing took over {limit:g} s") from e
            except WorkerDiedError as e:  # e.g. a parser crash on a hostile document
                raise ParseError(feed.url, f"the parser crashed on this feed ({e})") from e
            self.app._note_model_error(parsed.model_error)
            # A feed never polled with success has no stories (they are written only with
            # a success, in one transaction): no query for the 1,000 feeds of a first poll.
            known = (
                self.app.store.known_versions(feed.id, [p.draft.key for p in parsed.stories])
                if feed.last_success is not None
                else {}
            )
            # an edited text or a corrected link (the same text at another article)
            fresh = [p for p in parsed.stories if known.get(p.draft.key) != p.draft.version]
            to_extract = [p for p in fresh if extract and p.needs_extraction]
            if not to_extract:
                return self._ready(feed, result, parsed, fresh, {}, extract, t0)
            loop, fetcher = self.app._ensure_fetcher()
            model = self.app._model_ref()
            # Another feed's text of the article stands in for a new story's page; not
            # for an edited story's (the article may have changed with its feed text),
            # and never the feed's own (its old text, or another day's on a "today"
            # page): its page was never fetched again.
            texts = self.articles.known(
                [p for p in to_extract if p.draft.key not in known], feed.id
            )
            pages = self.articles
            fut = self._submit(loop, lambda: pages.extract(fetcher, to_extract, model, texts))
            fut.add_done_callback(
                lambda f: events.put(("extracted", feed, (result, parsed, fresh, f)))
            )
            return None
        if kind == "extracted":
            result, parsed, fresh, f = payload
            return self._ready(feed, result, parsed, fresh, f.result(), extract, t0)
        raise AssertionError(kind)
