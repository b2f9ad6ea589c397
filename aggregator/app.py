"""The App facade: the one service layer under the CLI, the daemon and the HTTP server.

``make_app(settings, now=...)`` is the only constructor. ``App`` owns the store, the HTTP
fetcher (on an event-loop thread), the worker pool and the classifier, and is a context
manager. The per-feed update pipeline is ``App.update_due`` (see its docstring); queries,
export and labelling are thin calls into the store and the other stages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Generator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import schedule
from .config import Settings, load_feeds
from .errors import (
    AggregatorError,
    ConfigError,
    ExtractError,
    FeedError,
    FetchError,
    ModelError,
    NotFoundError,
    ParseError,
)
from .store import LabelledStory, Store, TopicInfo, open_store
from .taxonomy import Taxonomy
from .textutil import html_to_text
from .types import (
    Article,
    Document,
    ExtractionStatus,
    Feed,
    FeedCheck,
    FeedSource,
    FetchResult,
    Prediction,
    Story,
    StoryQuery,
    StoryRecord,
    UpdateResult,
    utc_now,
)
from .workers import WorkerDiedError

if TYPE_CHECKING:
    from .classify import Classifier
    from .fetch import Fetcher
    from .jobs import ModelRef, ParseOutcome, Prepared
    from .learning import Learning
    from .scoring import Scorer
    from .workers import WorkerPool

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long the store thread gathers finished feeds into one batch (seconds).
BATCH_WAIT = 0.02

LEASE = timedelta(minutes=15)
EXPORT_FORMATS = ("atom", "rss", "json")
ExportFormat = Literal["atom", "rss", "json"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Extracted:
    """What extraction gave one story: the article (or why not), and the fingerprint and
    topics recomputed over its full text."""

    article: Article | ExtractError
    fingerprint: int | None = None
    prediction: Prediction | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddedFeed:
    feed: Feed
    created: bool
    discovered_from: str | None = None


class _Loop:
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

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@dataclass(slots=True)
class PollStats:
    """The most one poll held at once: feeds between the start of their fetch and their
    stored outcome (``ahead_peak``), and bodies handed to the workers whose outcomes the
    store thread had not taken up yet (``parsing_peak``). The two memory bounds of
    ``update_due``."""

    ahead_peak: int = 0
    parsing_peak: int = 0


class App:
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
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._taxonomy: Taxonomy | None = None
        self._classifier: Classifier | None = None
        self._predictor: Classifier | Scorer | None = None
        self._model_error: ModelError | None = None
        self._loop: _Loop | None = None
        self._fetcher: Fetcher | None = None
        self._fetcher_future: Future[Fetcher] | None = None
        self.last_poll_stats = PollStats()
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()

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
            self._pool.close()
            self._pool = None
        self.store.close()

    @property
    def taxonomy(self) -> Taxonomy:
        if self._taxonomy is None:
            self._taxonomy = Taxonomy.load(self.settings.taxonomy_path)
        return self._taxonomy

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
            from .scoring import load_scorer

            scorer = load_scorer(self.settings.active_models_dir, self.taxonomy)
            self._predictor = scorer if scorer is not None else self.classifier
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

    def _start_fetcher(self) -> Future[Fetcher]:
        """Build the fetcher on the loop thread (importing httpx and friends there); a
        poll starts this before it claims its feeds, so the two overlap."""
        with self._lock:
            if self._loop is None:
                self._loop = _Loop()
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

    def _ensure_fetcher(self) -> tuple[_Loop, Fetcher]:
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

    def _ensure_pool(self) -> WorkerPool:
        with self._lock:
            if self._pool is None:
                from .workers import WorkerPool

                self._pool = WorkerPool(self.settings.workers)
            return self._pool

    # --- feeds --------------------------------------------------------------------------

    def sync_feeds(self, path: Path | None = None) -> tuple[int, int]:
        """Add or update the feeds of feeds.yaml / OPML in the store (never deletes)."""
        path = path or self.settings.feeds_path
        sources = load_feeds(path)
        return self.store.upsert_feeds(sources, self.now())

    def sync_topics(self) -> None:
        self.store.sync_topics([(t.name, t.description) for t in self.taxonomy.topics])

    def feeds(self) -> list[Feed]:
        return self.store.feeds()

    def add_feed(self, url: str, *, name: str | None = None, discover: bool = True) -> AddedFeed:
        """Add a feed; when ``url`` is an HTML page, find its feed through
        ``<link rel="alternate">`` first."""
        if not url.lower().startswith(("http://", "https://")):
            raise ConfigError(f"only http(s) URLs can be added, got {url!r}")
        feed_url, found_from = url, None
        if discover:
            from .discover import discover_feeds, looks_like_html

            loop, fetcher = self._ensure_fetcher()
            try:
                result = loop.run(fetcher.fetch_page(url))
            except FetchError as e:
                raise ConfigError(f"cannot add {url}: {e.message}") from e
            if looks_like_html(result.body, result.content_type):
                found = discover_feeds(result.body, result.final_url)
                if not found:
                    raise ConfigError(f"{url} is an HTML page that links to no feed")
                feed_url, found_from = found[0], url
        feed, created = self.store.add_feed(FeedSource(url=feed_url, name=name), self.now())
        return AddedFeed(feed=feed, created=created, discovered_from=found_from)

    def remove_feed(self, url: str) -> None:
        self.store.remove_feed(url)

    # --- the update pipeline ------------------------------------------------------------

    def update_due(
        self, *, all_feeds: bool = False, extract: bool | None = None, limit: int | None = None
    ) -> Generator[UpdateResult, None, None]:
        """Poll the due feeds (every enabled feed with ``all_feeds``) once and yield one
        ``UpdateResult`` per feed as it finishes. Stages, per feed:

        1. claim: lease the feed so that no other daemon polls it meanwhile;
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
           one transaction, so a crash loses at most the feed in flight. Outcomes without
           stories (304s, errors) are written several at a time.

        This thread only talks to the database; everything CPU-heavy runs in the pool.
        A ``FeedError`` is recorded on its feed (error count, backoff, last error) and the
        cycle goes on; any other exception is a bug and propagates.
        """
        extract = self.settings.extract if extract is None else extract
        now = self.now()
        self._start_fetcher()  # built on the loop thread while this one claims
        feeds = self.store.claim_due(
            now, owner=self.owner, lease=LEASE, limit=limit, include_not_due=all_feeds
        )
        if not feeds:
            return
        loop, fetcher = self._ensure_fetcher()
        events: queue.Queue[tuple[str, Feed, Any]] = queue.Queue()
        started = {f.id: time.monotonic() for f in feeds}
        pending = {f.id for f in feeds}
        min_chars = self.settings.extract_min_chars
        # Backpressure: a feed holds a place from the start of its fetch until its outcome
        # is stored, so fetching never runs far ahead of the parsers and the store and
        # piles bodies up in memory (the first poll of 1,000 feeds held ~130 MB of XML
        # waiting for a worker). Two places per worker beyond the fetches keep a body
        # queued for each; a larger margin only held more parsed feeds waiting for the
        # store thread, which is the first poll's bottleneck (8 per worker: ~6 MB more
        # at the main process's peak, no faster).
        ahead = asyncio.Semaphore(self.settings.max_connections + 2 * self.settings.workers)

        # A parsed feed waiting for this thread is ~3x its XML in memory, and this thread
        # (the store) is the first poll's bottleneck: at most this many bodies go to the
        # workers before this thread takes up their outcomes; the rest wait as bytes (at
        # 8 per worker, parsed feeds queued here were ~30 MB of the app's peak). A feed
        # whose pages are then extracted gives its place back on being taken up, so page
        # fetching and extraction keep their concurrency.
        parsing = asyncio.Semaphore(4 * self.settings.workers)
        parsing_held: set[int] = set()
        stats = self.last_poll_stats = PollStats()

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

        async def fetch(feed: Feed) -> None:
            await ahead.acquire()
            held.add(feed.id)
            stats.ahead_peak = max(stats.ahead_peak, len(held))
            try:
                result = await fetcher.fetch(feed.url, feed.cache)
                known = None
                if not unchanged(feed, result):
                    await parsing.acquire()
                    parsing_held.add(feed.id)
                    stats.parsing_peak = max(stats.parsing_peak, len(parsing_held))
                    if feed.last_success is not None:
                        # what the feed's stories were, so the worker skips the entries it
                        # would only find unchanged (read off the loop, in its executor)
                        known = await asyncio.get_running_loop().run_in_executor(
                            None, self.store.recent_story_hashes, feed.id
                        )
                on_fetched(feed, result, known)
            except BaseException as e:  # delivered to the consuming thread as an outcome
                held.discard(feed.id)
                ahead.release()
                if feed.id in parsing_held:
                    parsing_held.discard(feed.id)
                    parsing.release()
                events.put(("error", feed, e))

        async def fetch_all() -> None:
            # One hand-over to the loop thread for the whole batch, not one per feed.
            await asyncio.gather(*(fetch(feed) for feed in feeds))

        def unchanged(feed: Feed, result: FetchResult) -> bool:
            return result.status == "not_modified" or (
                result.body_hash is not None and result.body_hash == feed.body_hash
            )

        def on_fetched(feed: Feed, result: FetchResult, known: dict[str, str] | None) -> None:
            if unchanged(feed, result):
                held.discard(feed.id)
                ahead.release()
                events.put(("unchanged", feed, result))
                return
            from .jobs import parse_job

            # The pool starts on the first body to parse (an all-304 poll never needs it);
            # the model reference is read per job, so a missing model is tried only once.
            pf = self._ensure_pool().submit(
                parse_job,
                result.body,
                result.final_url,
                result.content_type,
                self._model_ref(),
                min_chars,
                known,
                timeout=self.settings.parse_timeout_s,
            )
            light = replace(result, body=b"")  # the worker has the bytes now

            def parsed(p: Future[ParseOutcome]) -> None:
                events.put(("parsed", feed, (light, p)))

            pf.add_done_callback(parsed)

        loop.submit(fetch_all())

        try:
            while pending:
                batch = [events.get()]
                # Take what else arrives within a few milliseconds: story-less outcomes
                # (304s, errors) are written in one transaction per batch, and 64 fetches
                # in flight finish in a trickle, not all at once.
                until = time.monotonic() + BATCH_WAIT
                while len(batch) < 256:
                    try:
                        batch.append(events.get(timeout=max(until - time.monotonic(), 0)))
                    except queue.Empty:
                        break
                quick: list[tuple[Feed, FeedCheck]] = []
                done: list[UpdateResult] = []
                for kind, feed, payload in batch:
                    t0 = started[feed.id]
                    if kind == "parsed":
                        release_parsing(feed.id)
                    try:
                        outcome = self._handle(kind, feed, payload, events, extract, t0)
                    except FeedError as e:
                        outcome = self._error_check(feed, e, t0)
                    if isinstance(outcome, FeedCheck):
                        quick.append((feed, outcome))
                    elif outcome is not None:
                        done.append(outcome)
                if quick:
                    self.store.save_checks([c for _, c in quick])
                    done.extend(self._result(f, c, 0, 0, 0) for f, c in quick)
                for res in done:
                    pending.discard(res.feed_id)
                    if res.feed_id in held:
                        held.discard(res.feed_id)
                        release(res.feed_id)
                    log.info(
                        "feed update feed=%s status=%s new=%d updated=%d ms=%d%s",
                        res.url,
                        res.status,
                        res.new,
                        res.updated,
                        res.ms,
                        f" error={res.error!r}" if res.error else "",
                    )
                    yield res
        finally:
            if pending:  # the consumer stopped early (SIGTERM): hand the rest back
                self.store.release(sorted(pending), self.owner)

    def _model_ref(self) -> ModelRef | None:
        from .jobs import ModelRef

        if self._model_error is not None:
            return None
        return ModelRef(
            models_dir=str(self.settings.active_models_dir.resolve()),
            taxonomy_path=str(self.settings.taxonomy_path.resolve()),
        )

    def _note_model_error(self, message: str | None) -> None:
        if message and self._model_error is None:
            # Said once per run; stories are stored untagged and `aggregator train` (or a
            # fixed model) re-tags them later.
            self._model_error = ModelError(message)
            log.warning("stories stored untagged: %s", message)

    def _handle(
        self,
        kind: str,
        feed: Feed,
        payload: Any,
        events: queue.Queue[tuple[str, Feed, Any]],
        extract: bool,
        t0: float,
    ) -> UpdateResult | FeedCheck | None:
        """One event of one feed: a FeedCheck to write in a batch, an UpdateResult already
        written, or None while the feed is still in flight."""
        if kind == "error":
            raise payload  # a FeedError is recorded by the caller; anything else is a bug
        if kind == "unchanged":
            result: FetchResult = payload
            last = feed.poll_interval if feed.error_count == 0 else None
            return schedule.after_success(
                feed,
                result,
                outcome="not_modified" if result.status == "not_modified" else "unchanged",
                now=self.now(),
                policy=self.policy,
                post_dates=[] if last else self._post_dates(feed),
                base=last,
                ms=_ms(t0),
            )
        if kind == "parsed":
            result, pf = payload
            try:
                parsed: ParseOutcome = pf.result()
            except TimeoutError as e:
                limit = self.settings.parse_timeout_s
                raise ParseError(feed.url, f"parsing took over {limit:g} s") from e
            except WorkerDiedError as e:  # e.g. a parser crash on a hostile document
                raise ParseError(feed.url, f"the parser crashed on this feed ({e})") from e
            self._note_model_error(parsed.model_error)
            known = self.store.known_stories(feed.id, [p.draft.key for p in parsed.stories])
            fresh = [p for p in parsed.stories if known.get(p.draft.key) != p.draft.content_hash]
            to_extract = [p for p in fresh if extract and p.needs_extraction]
            if not to_extract:
                return self._finish(feed, result, parsed, fresh, {}, extract, t0)
            loop, fetcher = self._ensure_fetcher()
            fut = loop.submit(self._extract_many(fetcher, to_extract, self._model_ref()))
            fut.add_done_callback(
                lambda f: events.put(("extracted", feed, (result, parsed, fresh, f)))
            )
            return None
        if kind == "extracted":
            result, parsed, fresh, f = payload
            return self._finish(feed, result, parsed, fresh, f.result(), extract, t0)
        raise AssertionError(kind)

    async def _extract_many(
        self, fetcher: Fetcher, stories: Sequence[Prepared], model: ModelRef | None
    ) -> dict[str, Extracted]:
        from .jobs import classify_job, document, extract_job

        pool = self._ensure_pool()
        timeout = self.settings.extract_timeout_s

        async def one(p: Prepared) -> tuple[str, Article | ExtractError, int | None]:
            link = p.draft.link
            assert link is not None
            try:
                page = await fetcher.fetch_page(link)
                art, fp = await asyncio.wrap_future(
                    pool.submit(
                        extract_job,
                        page.body,
                        page.final_url,
                        p.draft.title,
                        page.content_type,
                        timeout=timeout,
                    )
                )
            except FetchError as e:
                return p.draft.key, ExtractError(link, f"page fetch failed: {e.message}"), None
            except TimeoutError:
                return p.draft.key, ExtractError(link, f"extraction took over {timeout:g} s"), None
            except WorkerDiedError as e:
                return p.draft.key, ExtractError(link, f"the extractor crashed ({e})"), None
            except ExtractError as e:
                return p.draft.key, e, None
            if art is None:
                return p.draft.key, ExtractError(link, "no article text found on the page"), None
            return p.draft.key, art, fp

        got = await asyncio.gather(*(one(p) for p in stories))
        by_key = {p.draft.key: p for p in stories}
        texts = [(k, a) for k, a, _ in got if isinstance(a, Article)]
        preds: list[Prediction] | None = None
        if texts and model is not None:
            docs = [document(by_key[k].draft, by_key[k].summary_text, a.text) for k, a in texts]
            preds, error = await asyncio.wrap_future(pool.submit(classify_job, docs, model))
            self._note_model_error(error)
        new_pred = dict(zip([k for k, _ in texts], preds, strict=True)) if preds else {}
        return {
            k: Extracted(article=a, fingerprint=fp, prediction=new_pred.get(k)) for k, a, fp in got
        }

    def _finish(
        self,
        feed: Feed,
        result: FetchResult,
        parsed: ParseOutcome,
        fresh: Sequence[Prepared],
        extracted: dict[str, Extracted],
        extract: bool,
        t0: float,
    ) -> UpdateResult:
        records: list[StoryRecord] = []
        n_extracted = 0
        for p in fresh:
            ex = extracted.get(p.draft.key)
            full_text = error = None
            prediction, fingerprint = p.prediction, p.fingerprint
            status: ExtractionStatus = "skipped"
            if ex is not None and isinstance(ex.article, Article):
                full_text, status = ex.article.text, "ok"
                prediction = ex.prediction or prediction
                fingerprint = ex.fingerprint or fingerprint
                n_extracted += 1
            elif ex is not None and isinstance(ex.article, ExtractError):
                status, error = "failed", ex.article.message
            elif p.needs_extraction and not extract:
                status = "pending"
            text = "\n".join(t for t in (p.summary_text, p.body_text, full_text) if t)
            records.append(
                StoryRecord(
                    draft=p.draft,
                    full_text=full_text,
                    extraction_status=status,
                    extraction_error=error,
                    prediction=prediction,
                    fingerprint=fingerprint,
                    text=text,
                )
            )
        now = self.now()
        # The document's own dates show the posting rate best; stored dates stand in for
        # feeds that carry none.
        post_dates = list(parsed.post_dates)
        if len(post_dates) < 2:
            post_dates = sorted({*post_dates, *self._post_dates(feed)})
        check = schedule.after_success(
            feed,
            result,
            outcome="ok",
            now=now,
            policy=self.policy,
            post_dates=post_dates,
            ttl=parsed.feed.ttl,
            title=parsed.feed.title,
            site=parsed.feed.link,
            ms=_ms(t0),
        )
        if parsed.feed.warnings:  # stored, but the user should know the feed is not well-formed
            check = replace(check, last_error="; ".join(parsed.feed.warnings)[:1000])
        saved = self.store.save_update(check, records)
        return self._result(
            feed,
            check,
            len(saved.new),
            len(saved.updated),
            n_extracted,
            warnings=parsed.feed.warnings,
        )

    def _post_dates(self, feed: Feed) -> list[datetime]:
        return self.store.post_dates(feed.id, self.now() - schedule.RATE_WINDOW)

    def _error_check(self, feed: Feed, error: FeedError, t0: float) -> FeedCheck:
        return schedule.after_error(
            feed,
            error,
            now=self.now(),
            policy=self.policy,
            post_dates=self._post_dates(feed),
            ms=_ms(t0),
        )

    def _result(
        self,
        feed: Feed,
        check: FeedCheck,
        new: int,
        updated: int,
        extracted: int,
        warnings: tuple[str, ...] = (),
    ) -> UpdateResult:
        return UpdateResult(
            feed_id=feed.id,
            url=check.url or feed.url,
            title=check.title or feed.title or feed.name,
            status=check.outcome,
            new=new,
            updated=updated,
            extracted=extracted,
            error=check.last_error if check.outcome == "error" else None,
            ms=check.ms,
            next_check=check.next_check,
            warnings=warnings,
        )

    def next_due(self) -> datetime | None:
        return self.store.next_due()

    # --- queries ------------------------------------------------------------------------

    def stories(self, query: StoryQuery) -> list[Story]:
        if query.topics:
            query = replace(query, topics=tuple(self._topic_name(t) for t in query.topics))
        return self.store.stories(query)

    def story(self, story_id: int) -> Story:
        return self.store.get_story(story_id)

    def also_covered(self, story: Story) -> list[Story]:
        return self.store.cluster_members(story)

    def topics(self) -> list[TopicInfo]:
        return self.store.topics()

    def _topic_name(self, name: str) -> str:
        topic = self.taxonomy.get(name)
        if topic is None:
            raise ConfigError(f"unknown topic {name!r} (see `aggregator topics`)")
        return topic.name

    # --- labels and the model -------------------------------------------------------------

    def label(self, story_id: int, positive: Sequence[str], negative: Sequence[str]) -> Story:
        pos = [self._topic_name(t) for t in positive]
        neg = [self._topic_name(t) for t in negative]
        if set(pos) & set(neg):
            raise ConfigError("a topic cannot be both added and removed")
        self.store.add_labels(story_id, pos, neg, self.now())
        return self.store.get_story(story_id)

    def labelled(self) -> list[LabelledStory]:
        return self.store.labelled_stories()

    def document(self, story: Story) -> Document:
        summary = html_to_text(story.summary or "")
        body = story.full_text or html_to_text(story.content or "")
        return Document(
            id=str(story.id),
            title=story.title,
            summary=summary,
            text=body if body != summary else "",
            categories=story.categories,
        )

    def retag(self, batch: int = 500) -> tuple[int, int]:
        """Re-classify every stored story with the current model; returns (seen, changed)."""
        ids = self.store.story_ids()
        changed = 0
        for i in range(0, len(ids), batch):
            stories = self.store.get_stories(ids[i : i + batch])
            preds = self.predictor.predict([self.document(s) for s in stories])
            changed += self.store.set_predictions(
                [(s.id, p) for s, p in zip(stories, preds, strict=True)]
            )
        return len(ids), changed

    # --- export -------------------------------------------------------------------------

    def export(
        self,
        query: StoryQuery,
        fmt: ExportFormat,
        *,
        title: str | None = None,
        self_url: str | None = None,
    ) -> str:
        from .export import render

        if fmt not in EXPORT_FORMATS:
            raise ConfigError(
                f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}"
            )
        stories = self.stories(query)
        name = title or _export_title(query)
        return render(stories, fmt, title=name, self_url=self_url, updated=self.now())


def _export_title(query: StoryQuery) -> str:
    parts = ["aggregator"]
    if query.topics:
        parts.append(" + ".join(query.topics))
    if query.feed:
        parts.append(f"feed {query.feed}")
    if query.text:
        parts.append(f"“{query.text}”")
    return " — ".join(parts)


def _ms(t0: float) -> int:
    return int((time.monotonic() - t0) * 1000)


def make_app(settings: Settings | None = None, *, now: Callable[[], datetime] = utc_now) -> App:
    """The only constructor: opens (and migrates) the store, syncs the taxonomy's topics."""
    settings = settings or Settings.from_env()
    store = open_store(settings.url)
    app = App(settings, store, now=now)
    try:
        app.sync_topics()
    except AggregatorError:
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
