"""The App facade: the one service layer under the CLI, the daemon and the HTTP server.

``make_app(settings, now=...)`` is the only constructor. ``App`` owns the store, the HTTP
fetcher (on an event-loop thread), the worker pool and the classifier, and is a context
manager. ``App.update_due`` is the entry point of the per-feed update pipeline (its
docstring lists the stages), which lives in :mod:`aggregator.polling` and borrows these
resources for one poll; queries, retention and ``extract_waiting`` are thin calls into
the store and the other stages.

``App`` is put together here from this module's class and one mixin per group of calls
that belong together and to nothing else, each over the attributes it declares:

- ``subscriptions.Subscriptions``: feeds.yaml / OPML synced and imported, feeds added,
  removed, enabled and listed (``AddedFeed``);
- ``exporting.Exporting``: a query's stories as one Atom, RSS or JSON Feed document
  (``EXPORT_FORMATS``);
- ``labelling.Labelling``: labels, the ``Document`` the model reads, re-tagging.

It must not grow the pipeline back: no fetch / parse / extract orchestration here, only
the resources it needs (``_ensure_fetcher``, ``_ensure_pool``, ``_model_ref``) and the
state that outlives a poll (``last_poll_stats``, the remembered model error, the leases a
failed poll could not hand back).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from . import schedule
from .articles import Articles, Stall
from .config import Settings
from .errors import (
    AggregatorError,
    ConfigError,
    ModelError,
    NotFoundError,
    UnknownTopicError,
)
from .exporting import EXPORT_FORMATS, Exporting
from .labelling import Labelling
from .loopthread import LoopThread
from .polling import Poller, PollStats
from .predictor import load_predictor
from .store import Store, TopicInfo, open_store
from .store.feeds import process_stamp
from .subscriptions import AddedFeed, Subscriptions
from .taxonomy import Taxonomy
from .textutil import counted
from .types import (
    ReadingList,
    ReadMark,
    Story,
    StoryQuery,
    UpdateResult,
    utc_now,
)

if TYPE_CHECKING:
    from .classify import Classifier
    from .fetch import Fetcher
    from .jobs import ModelRef
    from .learning import Learning
    from .scoring import Scorer
    from .status import Status
    from .workers import WorkerPool

log = logging.getLogger(__name__)


class App(Subscriptions, Exporting, Labelling):
    """The service layer: see the module's docstring for its parts."""

    def __init__(self, settings: Settings, store: Store, *, now: Callable[[], datetime]) -> None:
        self.settings = settings
        self.store = store
        self.now = now
        self.policy = schedule.Policy(
            default_interval=settings.default_interval,
            min_interval=settings.min_interval,
            max_interval=settings.max_interval,
            disable_after=settings.disable_after,
        )
        # ``host:pid:tag@stamp``: the stamp tells this process from a later one given its
        # pid (``Store.release_dead_leases``)
        stamp = process_stamp(os.getpid())
        tag = uuid.uuid4().hex[:8] + (f"@{stamp}" if stamp else "")
        self.owner = f"{lease_host()}:{os.getpid()}:{tag}"
        self._taxonomy: Taxonomy | None = None
        self._taxonomy_stamp: tuple[int, int] | None = None  # taxonomy.yaml when read
        self._taxonomy_lock = threading.Lock()
        self._classifier: Classifier | None = None
        self._predictor: Classifier | Scorer | None = None
        self._model_error: ModelError | None = None
        self._model_error_stamp: tuple[tuple[int, int] | None, ...] = ()
        self._loop: LoopThread | None = None
        self._fetcher: Fetcher | None = None
        self._fetcher_future: Future[Fetcher] | None = None
        self.last_poll_stats = PollStats()
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()
        # Feeds a poll could not hand back (the database was gone when it ended): the
        # next poll releases them first, rather than waiting out the 15-minute leases.
        self._kept_leases: set[int] = set()
        # Article hosts that left a page unanswered or asked to be left alone: host ->
        # (until when, by time.monotonic(); why). The polls and extractions of this App
        # send them no article requests until then (``Articles.extract``).
        self.stalled_hosts: dict[str, Stall] = {}

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fetcher is None and self._fetcher_future is not None:
            with contextlib.suppress(Exception):  # started but never used
                self._fetcher = self._fetcher_future.result()
        self._fetcher_future = None
        if self._loop is not None:  # before the fetcher they use goes
            self._loop.cancel_all()
        if self._fetcher is not None and self._loop is not None:
            try:
                self._loop.run(self._fetcher.__aexit__(None, None, None))
            except Exception:  # closing must not mask the original error
                log.debug("fetcher close failed", exc_info=True)
            self._fetcher = None
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        if self._pool is not None:
            # Nothing takes up a result once the App closes: the bodies a stopped poll
            # left queued are not parsed, nor those being parsed waited for.
            self._pool.close(kill_running=True)
            self._pool = None
        if self._kept_leases:  # the database may be back; else they expire (15 min)
            with contextlib.suppress(AggregatorError):
                self._hand_back_kept_leases()
        self.store.close()

    @property
    def taxonomy(self) -> Taxonomy:
        if self._taxonomy is None:
            stamp = _file_stamp(self.settings.taxonomy_path)  # before: a change then is seen
            self._taxonomy = Taxonomy.load(self.settings.taxonomy_path)
            self._taxonomy_stamp = stamp
        return self._taxonomy

    def refresh_taxonomy(self) -> bool:
        """For a long-running process (the daemon at each cycle, `serve` at each
        request): read taxonomy.yaml again if it changed since it was read, sync its
        topics to the store (a renamed one's labels and tags carried over) and forget the
        model (the next use loads one, or gives feed categories only if it no longer
        fits). They read it once, so a topic added was "unknown" to `serve` until it was
        restarted. A file that no longer loads is logged once and the taxonomy in use
        kept; the store unavailable is raised, and the next call tries again. A stat
        when nothing changed. Returns whether the taxonomy changed."""
        if self._taxonomy is None:
            return False  # not read yet: its first use reads the file as it is
        stamp = _file_stamp(self.settings.taxonomy_path)
        with self._taxonomy_lock:
            if stamp == self._taxonomy_stamp:
                return False
            try:
                taxonomy = Taxonomy.load(self.settings.taxonomy_path)
            except ConfigError as e:
                self._taxonomy_stamp = stamp  # said once per edit
                log.warning("taxonomy.yaml changed but does not load; its topics stay: %s", e)
                return False
            self._sync_topics(taxonomy)
            self._taxonomy, self._taxonomy_stamp = taxonomy, stamp
            self.reload_classifier()
        log.info("taxonomy.yaml read again: %s", counted(len(taxonomy), "topic"))
        return True

    @property
    def classifier(self) -> Classifier:
        """Loaded on first use (scikit-learn is not imported by query commands)."""
        if self._classifier is None:
            from .classify import Classifier

            self._classifier = Classifier.load(
                self.settings.active_models_dir, taxonomy=self.taxonomy
            )
        return self._classifier

    @property
    def predictor(self) -> Classifier | Scorer:
        """What tags stories: the artifact's numpy scorer (the same predictions, ~2x the
        pipeline's speed, no scikit-learn import) when it checks out, else the pipeline.
        Explanations, evaluation and label suggestions use :attr:`classifier`."""
        if self._predictor is None:
            self._predictor = load_predictor(
                self.settings, self.taxonomy, pipeline=lambda: self.classifier
            )
        return self._predictor

    def reload_classifier(self) -> None:
        """Forget the loaded model (after training) so the next use loads the new one."""
        self._classifier = None
        self._predictor = None
        self._model_error = None

    @property
    def learning(self) -> Learning:
        """Training, evaluation, explanation and label suggestions."""
        from .learning import Learning

        return Learning(self)

    def prepare_poll(self) -> None:
        """Start building the fetcher (importing the HTTP stack: ~0.1 s of a fresh
        process) on the loop thread, so that it overlaps whatever the caller does before
        polling, such as syncing feeds.yaml. ``update_due`` starts it anyway; the front
        ends that are about to poll call this first. Errors surface in ``update_due``.

        It also releases the leases of this host's crashed polls (kill -9 leaves them
        for 15 minutes), so that their feeds are due again at once."""
        self._start_fetcher()
        self._release_dead_leases()

    def _release_dead_leases(self) -> None:
        """Release the leases of this host's ended polls (``Store.release_dead_leases``):
        at a start, and before each poll claims, since a ``poll`` killed beside a running
        daemon left its feeds to that daemon only once the leases expired (15 min)."""
        if n := self.store.release_dead_leases(lease_host(), self.now()):
            log.info("released %d feed leases of ended processes on this host", n)

    def _start_fetcher(self) -> Future[Fetcher]:
        """Build the fetcher on the loop thread (importing httpx and friends there); a
        poll starts this before it claims its feeds, so the two overlap."""
        with self._lock:
            if self._loop is None:
                self._loop = LoopThread()
            if self._fetcher_future is None:
                self._fetcher_future = self._loop.submit(self._new_fetcher())
            return self._fetcher_future

    async def _new_fetcher(self) -> Fetcher:
        from .fetch import DEFAULT_USER_AGENT, Fetcher, FetchOptions

        opts = FetchOptions(
            timeout=self.settings.timeout_s,
            max_body=self.settings.max_body_bytes,
            per_host=self.settings.per_host,
            max_connections=self.settings.max_connections,
            allow_private=self.settings.allow_private_addresses,
            user_agent=self.settings.user_agent or DEFAULT_USER_AGENT,
        )
        fetcher = Fetcher(opts)
        await fetcher.__aenter__()
        return fetcher

    def _ensure_fetcher(self) -> tuple[LoopThread, Fetcher]:
        started = self._start_fetcher()
        try:
            fetcher = started.result()
        except BaseException:
            with self._lock:  # e.g. bad options: the next poll tries again
                if self._fetcher_future is started:
                    self._fetcher_future = None
            raise
        with self._lock:
            self._fetcher = fetcher
            assert self._loop is not None
            return self._loop, fetcher

    def _workers(self) -> int:
        return self.settings.workers

    def _ensure_pool(self) -> WorkerPool:
        with self._lock:
            if self._pool is None:
                from .workers import WorkerPool

                self._pool = WorkerPool(self.settings.workers)
            return self._pool

    def _replace_failed_pool(self) -> None:
        """Drop a worker pool that failed for good (its workers exited as they started,
        e.g. killed as fast as they came up) so that the next body starts a new one. Once
        per poll, not per task: a cause that persists costs one poll's parses, never a
        loop of spawning workers."""
        with self._lock:
            pool = self._pool
            if pool is None or pool.failure is None:
                return
            self._pool = None
        log.warning("starting new worker processes: the last ones failed (%s)", pool.failure)
        pool.close(cancel_pending=True)

    def _hand_back(self, feed_ids: Sequence[int], *, quiet: bool = False) -> None:
        """Release this App's leases on ``feed_ids`` (a poll that ended before storing
        them). Should the database refuse, the ids are kept for the next poll to hand back
        and this is logged (at info level when ``quiet``: the error that ended the poll is
        being reported anyway); another daemon can take them once the leases expire."""
        try:
            self.store.release(feed_ids, self.owner)
        except AggregatorError as e:
            self._kept_leases.update(feed_ids)
            log.log(
                logging.INFO if quiet else logging.WARNING,
                "could not hand back %s (the next poll tries again): %s",
                counted(len(feed_ids), "feed"),
                e,
            )

    def _hand_back_kept_leases(self) -> None:
        """Release the leases a poll could not hand back; raises ``StoreError`` while the
        database still refuses (the poll then fails before claiming anything)."""
        if self._kept_leases:
            kept = sorted(self._kept_leases)
            self.store.release(kept, self.owner)
            self._kept_leases.difference_update(kept)
            log.info("handed back %s an earlier poll could not", counted(len(kept), "feed"))

    # --- the update pipeline ------------------------------------------------------------

    def update_due(
        self,
        *,
        all_feeds: bool = False,
        extract: bool | None = None,
        limit: int | None = None,
        stop: threading.Event | None = None,
        feed_ids: Collection[int] | None = None,
    ) -> Generator[UpdateResult, None, None]:
        """Poll the due feeds (every enabled feed with ``all_feeds``; with ``feed_ids``,
        those of them that are enabled, due or not) once and yield one ``UpdateResult``
        per feed as it finishes. Stages, per feed:

        1. claim: lease the feed so that no other daemon polls it meanwhile (a chunk of
           feeds at a time, as the poll makes room);
        2. fetch: conditional GET on the event-loop thread (global and per-host limits);
           a 304, or a 200 whose body hash is unchanged, stops here;
        3. parse, identify, classify: feedparser / JSON Feed -> entries -> StoryDrafts
           with plain text, SimHash and topics from the feed's own text, in a worker
           process (the fetched body is dropped once handed over);
        4. diff: drop drafts the store already holds with the same content hash;
        5. extract: fetch the pages of new stories whose feed text is short, run
           trafilatura on them in worker processes (time-limited per page) and classify
           those stories again with their full text;
        6. store: stories, topics, search index, clusters and the feed's next state in
           one transaction, shared by the feeds parsed meanwhile (up to
           ``outcomes.GROUP_MAX``), so a crash loses at most those feeds, none half
           written. Outcomes without stories (304s, errors) are written several at a time.

        This thread only talks to the database; everything CPU-heavy runs in the pool.
        A ``FeedError`` is recorded on its feed (error count, backoff, last error) and the
        cycle goes on. Any other exception while taking up one feed's outcome (a bug, or
        data the store cannot write) rolls that feed back and is recorded the same way
        ("could not store: ...", "internal error: ..."), logged as an error with its
        traceback at debug level; only a failure to record it propagates. A feed removed
        meanwhile (``feeds remove``) is dropped from the poll.

        Once ``stop`` is set (the daemon's SIGTERM), the poll ends as soon as the feeds
        being stored are, without waiting for the fetches in flight: they are cancelled
        and the feeds not stored are handed back (their leases released), as they are
        when the consumer closes the generator early.
        """
        yield from Poller(self).run(
            all_feeds=all_feeds, extract=extract, limit=limit, stop=stop, feed_ids=feed_ids
        )

    def _stall_held_hosts(self, holds: Mapping[str, datetime] | None = None) -> None:
        """Send no article request to a host the store holds (it answered a poll, of any
        process, 429 or 503 with a Retry-After: ``Store.held_hosts``) before then: this
        App's ``stalled_hosts`` knew only the holds its own polls saw, and ``aggregator
        extract`` or another process's poll fetched the pages of a host that had asked
        to be left alone. ``holds``: ``Store.held_hosts`` as the caller read it now."""
        now = self.now()
        clock = time.monotonic()
        for host, until in (self.store.held_hosts(now) if holds is None else holds).items():
            self.hold_pages(
                host,
                clock + (until - now).total_seconds(),
                f"not fetched: {host} asked to be left alone until"
                f" {until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
            )

    def hold_pages(self, host: str, ends: float, why: str) -> None:
        """No article request to ``host``, which asked to be left alone, from this App
        until ``ends`` (by ``time.monotonic()``), saying ``why``; a later hold already
        known stands, an earlier one gives way."""
        if (seen := self.stalled_hosts.get(host)) is None or seen.until < ends:
            self.stalled_hosts[host] = Stall(ends, why, held=True)

    def _model_ref(self) -> ModelRef:
        """The model for worker jobs; once it failed to load this run, the feed
        categories alone (the App owns that memory: ``reload_classifier`` forgets it)."""
        from .jobs import ModelRef

        failed = self._model_error is not None
        if failed and self._model_stamp() != self._model_error_stamp:
            # `aggregator train` wrote a model, or taxonomy.yaml was edited, since the
            # model failed: a daemon tries again instead of giving every story its feed
            # categories alone until it is restarted
            self.reload_classifier()
            failed = False
        return ModelRef(
            models_dir=str(self.settings.active_models_dir.resolve()),
            taxonomy_path=str(self.settings.taxonomy_path.resolve()),
            categories_only=failed,
        )

    def _note_model_error(self, message: str | None) -> None:
        if message and self._model_error is None:
            # Said once per run; stories get only the topics their feed categories name
            # (none when taxonomy.yaml is unreadable too), and `aggregator train` (or a
            # fixed model) re-tags them later.
            self._model_error = ModelError(message)
            self._model_error_stamp = self._model_stamp()
            log.warning("no model: stories get only their feed categories' topics: %s", message)

    def _model_stamp(self) -> tuple[tuple[int, int] | None, ...]:
        """When and how big the model in use and the taxonomy were last written (None:
        missing)."""
        from .manifest import MANIFEST_FILE, artifact_paths

        manifest = artifact_paths(self.settings.active_models_dir) / MANIFEST_FILE
        return (_file_stamp(manifest), _file_stamp(self.settings.taxonomy_path))

    def next_due(self) -> datetime | None:
        """When the next feed can be claimed (``Store.next_due``): the leases of this
        host's ended processes do not count, as the next poll releases them first."""
        return self.store.next_due(host=lease_host())

    def due_count(self, *, all_feeds: bool = False, feed_ids: Collection[int] | None = None) -> int:
        """How many feeds a poll would take now (not leased to another daemon)."""
        return len(self.due_ids(all_feeds=all_feeds, feed_ids=feed_ids))

    def due_ids(
        self, *, all_feeds: bool = False, feed_ids: Collection[int] | None = None
    ) -> list[int]:
        """The ids of the feeds a poll would take now, most overdue first: the due ones
        (every enabled one with ``all_feeds``), or those of ``feed_ids`` that are
        enabled, due or not; none leased to another daemon or held back by a server's
        Retry-After."""
        ids = self.store.due_feed_ids(self.now(), include_not_due=all_feeds or feed_ids is not None)
        if feed_ids is None:
            return ids
        wanted = set(feed_ids)
        return [i for i in ids if i in wanted]

    def extract_waiting(
        self, limit: int = 500, *, failed: bool = False, stop: threading.Event | None = None
    ) -> ExtractionTally:
        """Fetch and extract the article pages of stored stories still waiting for them
        (``pending``: stored by ``poll --no-extract``; with ``failed``, those whose page
        failed before too), newest first, at most ``limit``, as a poll extracts a new
        story's: the same fetcher and limits, the extractor in the worker processes, the
        topics and fingerprint recomputed over the full text (your labels stay), the
        search index updated. A page whose text is shorter than the feed's leaves the
        feed's text standing (``skipped``); one that fails is ``failed`` with why. Once
        ``stop`` is set (a daemon told to stop, Ctrl-C on `extract`) no page is waited
        for: those extracted by then are written, the others stay waiting, untouched."""
        self._stall_held_hosts()
        clock = time.monotonic()
        stalled = {host for host, stall in self.stalled_hosts.items() if stall.until > clock}
        # A held host's stories are passed over, not taken up to be left alone: newer
        # than the rest, they kept every other story waiting for as long as the hold.
        # held for this run: another daemon's (or `extract`'s) takes the next ones
        with self.store.claim_extractions(limit, failed=failed, passing_over=stalled) as (
            stories,
            passed,
        ):
            if not stories:
                return ExtractionTally(left=passed)
            self._replace_failed_pool()  # as a poll does: a daemon's backlog comes after one
            updates = Articles(self).extract_stored(stories, stop=stop)
            self.store.save_extractions(updates)
        tried = [u for u in updates if u.status != "pending"]  # pending: deferred again
        return ExtractionTally(
            tried=len(tried),
            extracted=sum(u.status == "ok" for u in tried),
            failed=sum(u.status == "failed" for u in tried),
            left=len(stories) - len(tried) + passed,
        )

    # --- queries ------------------------------------------------------------------------

    def story_count(self) -> int:
        return self.store.story_count()

    def status(self) -> Status:
        """The install at a glance (``aggregator status``): the store's counts of feeds,
        stories, extractions, labels and leases, and the model in use (from its
        manifest: nothing is loaded)."""
        from sqlalchemy.engine import make_url

        from .status import Status, model_summary

        models = self.settings.active_models_dir
        yours = models == self.settings.trained_models_dir
        history = self.settings.evaluations_path
        return Status(
            store=self.store.summary(self.now()),
            model=model_summary(models, yours=yours, history=history),
            database=make_url(self.settings.url).render_as_string(hide_password=True),
        )

    def stories(self, query: StoryQuery) -> list[Story]:
        return self.store.stories(self._named(query))

    def iter_stories(self, query: StoryQuery, *, chunk: int = 500) -> Iterator[Story]:
        """``stories(query)`` in bounded memory: the matching ids now, the stories
        ``chunk`` at a time as they are consumed (``Store.iter_stories``)."""
        return self.store.iter_stories(self._named(query), chunk=chunk)

    def unread(self, query: StoryQuery, name: str) -> Unread:
        """The stories matching ``query`` (every one: no limit or offset) first stored
        since reading list ``name`` last read, newest first; the first time, those of
        the last ``UNREAD_FIRST``. A story is new once: a copy of it another feed carries
        later is not (the cluster's first matching copy is what is new or not). Nothing
        is marked read here: ``mark_read`` with the result's mark, once they are shown."""
        last = self.store.reading_list(name)
        after = last.mark if last is not None else ReadMark(since=self.now() - UNREAD_FIRST)
        wanted = replace(self._named(query), stored_after=after, limit=None, offset=0)
        ids, mark = self.store.new_story_ids(wanted)
        return Unread(ids=ids, mark=mark, last_read=last.last_read if last is not None else None)

    def feed_refs_naming_none(self, refs: Sequence[str]) -> list[str]:
        """Those of ``refs`` (``--feed`` values) that name no feed now."""
        return self.store.feed_refs_naming_none(refs)

    def reading_list(self, name: str) -> ReadingList | None:
        """Reading list ``name``: how far it has read, when, and what it reads by."""
        return self.store.reading_list(name)

    def unread_stories(self, unread: Unread, *, chunk: int = 500) -> Iterator[Story]:
        """The stories of ``unread``, read ``chunk`` at a time as they are consumed."""
        return self.store.stories_by_ids(unread.ids, chunk=chunk)

    def mark_read(self, name: str, unread: Unread, filters: str | None = None) -> None:
        """Reading list ``name`` has read what ``unread`` listed (and every story stored
        by then that did not match its filters); ``filters``, when given, are what it
        reads by from now on (``ReadingList.filters``)."""
        self.store.save_read_mark(name, unread.mark, self.now(), filters)

    def _named(self, query: StoryQuery) -> StoryQuery:
        """``query`` with its topics as the taxonomy names them; every unknown one named
        in one ConfigError (naming the first alone cost a run per typo). A query by
        relevance without a search is one too: there is nothing to rank by."""
        if query.order == "relevance" and not query.text:
            raise ConfigError(
                "sort by relevance orders the matches of a full-text search: give one"
                " (-q TEXT; q= on serve)"
            )
        if not (query.topics or query.any_topics or query.not_topics):
            return query
        every, any_, none = (
            tuple(self._topic_names(names))
            for names in (query.topics, query.any_topics, query.not_topics)
        )
        # Wanted and left out: an empty list, as if there were no such stories.
        clash = sorted(set(every) & set(none))
        if not clash and any_ and set(any_) <= set(none):
            clash = sorted(any_)
        if clash:
            raise ConfigError(
                f"{', '.join(map(repr, clash))}: both wanted and left out, no story can match"
            )
        return replace(query, topics=every, any_topics=any_, not_topics=none)

    def story(self, story_id: int) -> Story:
        return self.store.get_story(story_id)

    def also_covered(self, story: Story) -> list[Story]:
        return self.store.cluster_members(story)

    def topics(self) -> list[TopicInfo]:
        """The taxonomy's topics in its order, with their stories counted as the topic's
        listing shows them. The store keeps the row of a topic taken out of the taxonomy:
        `topics` and serve's index listed it, while `-t` and its links answered
        "unknown topic"."""
        stored = {t.name: t for t in self.store.topics()}
        return [stored[t.name] for t in self.taxonomy.topics if t.name in stored]

    def sync_topics(self) -> None:
        """The store's topics as the taxonomy has them; a topic renamed (its old name kept
        among its aliases) keeps its stories, labels and tags under the new name."""
        self._sync_topics(self.taxonomy)

    def _sync_topics(self, taxonomy: Taxonomy) -> None:
        def renamed(name: str) -> str | None:
            topic = taxonomy.resolve(name)
            return None if topic is None else topic.name

        self.store.sync_topics([(t.name, t.description) for t in taxonomy.topics], renamed)

    def _topic_names(self, names: Sequence[str]) -> list[str]:
        """The taxonomy's spelling of each of ``names``: a topic's name or id, or an alias
        only one topic claims (a renamed topic keeps its old name among its aliases, so
        ``label +OldName`` and ``-t OldName`` still work); every unknown one named in one
        ConfigError (naming the first alone cost a run per typo), an alias several
        topics claim with those topics."""
        taxonomy = self.taxonomy
        found = {t: taxonomy.resolve(t) for t in names}
        missing = [name for name, topic in found.items() if topic is None]
        unknown = [name for name in missing if not taxonomy.claimants(name)]
        problems = []
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            problems.append(
                f"unknown topic{plural} {', '.join(map(repr, unknown))} (see `aggregator topics`)"
                + taxonomy.did_you_mean(unknown)
            )
        problems += [
            f"{name!r} is an alias of several topics ({', '.join(claimants)}): name one"
            for name in missing
            if (claimants := taxonomy.claimants(name))
        ]
        if problems:
            # a topic no spelling names is not there (serve: 404); an alias several
            # topics claim names too many (400)
            raise (UnknownTopicError if unknown else ConfigError)("; ".join(problems))
        return [topic.name for t in names if (topic := found[t]) is not None]

    # --- retention ----------------------------------------------------------------------

    def prune(
        self,
        older_than: timedelta,
        *,
        keep_per_feed: int | None = None,
        dry_run: bool = False,
        stop: threading.Event | None = None,
    ) -> int:
        """Delete stories first seen and dated more than ``older_than`` ago, except each
        feed's newest ``keep_per_feed`` (default: the setting), what each feed's latest
        document lists and every labelled story; returns how many were (or would be)
        deleted. Once ``stop`` is set (a daemon told to stop) it ends after the batch
        being deleted (see ``Store.prune_stories``)."""
        keep = self.settings.keep_per_feed if keep_per_feed is None else keep_per_feed
        if keep < 0:
            raise ConfigError("--keep must be 0 or more")
        try:
            before = self.now() - older_than
        except OverflowError as e:
            raise ConfigError("that span reaches before year 1") from e
        return self.store.prune_stories(before, keep, dry_run=dry_run, stop=stop)

    def compact(self) -> None:
        self.store.compact()


#: What a reading list's first ``stories --new`` lists: the stories stored in the last day.
UNREAD_FIRST = timedelta(days=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unread:
    """What ``App.unread`` found: the new stories' ids (newest first), the mark to save
    once they are shown, and when the list last read (None: never)."""

    ids: list[int]
    mark: ReadMark
    last_read: datetime | None


@dataclass(frozen=True, slots=True)
class ExtractionTally:
    """What ``App.extract_waiting`` did: stories tried, given their article's text, and
    failed (the rest kept their feed's text, longer than the page's); ``left``: those
    taken up but not tried, still waiting (their host stalled, or the run's article
    budget ran out before their turn: see ``Articles.extract_stored``)."""

    tried: int = 0
    extracted: int = 0
    failed: int = 0
    left: int = 0


def lease_host() -> str:
    """This machine as lease owners name it (``App.owner`` is ``HOST:pid:tag``): the host
    name and, on Linux, the PID namespace. A pid means something only in its namespace,
    and containers may share a host name (Docker with ``--network host``): a daemon that
    released the leases of "its host's" ended pids released those of a live daemon in
    another container, whose feeds were then polled twice."""
    name = socket.gethostname()
    try:
        return f"{name}/pidns-{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:  # not Linux, or /proc not mounted
        return name


def make_app(settings: Settings | None = None, *, now: Callable[[], datetime] = utc_now) -> App:
    """The only constructor: opens (and migrates) the store, syncs the taxonomy's topics."""
    settings = settings or Settings.from_env()
    store = open_store(settings.url)
    app = App(settings, store, now=now)
    try:
        app.sync_topics()
    except BaseException:  # not only AggregatorError: a Ctrl-C here left the store open
        app.close()
        raise
    return app


__all__ = [
    "EXPORT_FORMATS",
    "AddedFeed",
    "App",
    "NotFoundError",
    "make_app",
]


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """When and how big ``path`` was last written; None when it cannot be read."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
