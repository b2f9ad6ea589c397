"""The App facade: the one service layer under the CLI, the daemon and the HTTP server.

``make_app(settings, now=...)`` is the only constructor. ``App`` owns the store, the HTTP
fetcher (on an event-loop thread), the worker pool and the classifier, and is a context
manager. The per-feed update pipeline is ``App.update_due`` (see its docstring); queries,
export and labelling are thin calls into the store and the other stages.
"""

from __future__ import annotations

import asyncio
import functools
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
from .store import LabelledStory, SqlStore, TopicInfo, open_store
from .taxonomy import Taxonomy
from .textutil import html_to_text
from .types import (
    Article,
    Document,
    Feed,
    FeedCheck,
    FeedSource,
    FetchResult,
    ParsedFeed,
    Prediction,
    Story,
    StoryDraft,
    StoryQuery,
    StoryRecord,
    UpdateResult,
    UpdateStatus,
    utc_now,
)

if TYPE_CHECKING:
    from .classify import Classifier
    from .fetch import Fetcher
    from .learning import Learning
    from .workers import WorkerPool

log = logging.getLogger(__name__)
T = TypeVar("T")

LEASE = timedelta(minutes=15)
EXPORT_FORMATS = ("atom", "rss", "json")
ExportFormat = Literal["atom", "rss", "json"]


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


class App:
    def __init__(self, settings: Settings, store: SqlStore, *, now: Callable[[], datetime]) -> None:
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
        self._model_error: ModelError | None = None
        self._loop: _Loop | None = None
        self._fetcher: Fetcher | None = None
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
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

    def reload_classifier(self) -> None:
        """Forget the loaded model (after training) so the next use loads the new one."""
        self._classifier = None
        self._model_error = None

    @property
    def learning(self) -> Learning:
        """Training, evaluation, explanation and label suggestions."""
        from .learning import Learning

        return Learning(self)

    def _ensure_fetcher(self) -> tuple[_Loop, Fetcher]:
        with self._lock:
            if self._loop is None:
                self._loop = _Loop()
            if self._fetcher is None:
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
                self._loop.run(fetcher.__aenter__())
                self._fetcher = fetcher
            return self._loop, self._fetcher

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
            from .fetch import discover_feeds, looks_like_html

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
        3. parse + identify: feedparser / JSON Feed -> entries -> StoryDrafts, in a
           worker process;
        4. diff: drop drafts the store already holds with the same content hash;
        5. extract: fetch the pages of new stories whose feed text is short and run
           trafilatura on them in worker processes (time-limited per page);
        6. classify: topics with scores from the model and the feed's categories;
        7. store: stories, topics, search index, clusters and the feed's next state in
           one transaction, so a crash loses at most the feed in flight.

        A ``FeedError`` is recorded on its feed (error count, backoff, last error) and the
        cycle goes on; any other exception is a bug and propagates.
        """
        extract = self.settings.extract if extract is None else extract
        now = self.now()
        feeds = self.store.claim_due(
            now, owner=self.owner, lease=LEASE, limit=limit, include_not_due=all_feeds
        )
        if not feeds:
            return
        loop, fetcher = self._ensure_fetcher()
        pool = self._ensure_pool()
        events: queue.Queue[tuple[str, Feed, Any]] = queue.Queue()
        started = {f.id: time.monotonic() for f in feeds}
        pending = {f.id for f in feeds}

        def on_fetched(feed: Feed, fut: Future[FetchResult]) -> None:
            try:
                result = fut.result()
            except BaseException as e:  # delivered to the main thread as an outcome
                events.put(("error", feed, e))
                return
            if result.status == "not_modified" or (
                result.body_hash is not None and result.body_hash == feed.body_hash
            ):
                events.put(("unchanged", feed, result))
                return
            from .jobs import parse_job

            pf = pool.submit(
                parse_job, result.body, result.final_url, result.content_type, timeout=60.0
            )

            def parsed(p: Future[tuple[ParsedFeed, list[StoryDraft]]]) -> None:
                events.put(("parsed", feed, (result, p)))

            pf.add_done_callback(parsed)

        for feed in feeds:
            fut = loop.submit(fetcher.fetch(feed.url, feed.cache))
            fut.add_done_callback(functools.partial(on_fetched, feed))

        try:
            while pending:
                kind, feed, payload = events.get()
                try:
                    res = self._handle(kind, feed, payload, events, extract, started[feed.id])
                except FeedError as e:
                    res = self._record_error(feed, e, started[feed.id])
                if res is not None:
                    pending.discard(feed.id)
                    log.info(
                        "feed update feed=%s status=%s new=%d updated=%d ms=%d%s",
                        feed.url,
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

    def _handle(
        self,
        kind: str,
        feed: Feed,
        payload: Any,
        events: queue.Queue[tuple[str, Feed, Any]],
        extract: bool,
        t0: float,
    ) -> UpdateResult | None:
        if kind == "error":
            if isinstance(payload, FeedError):
                raise payload
            raise payload  # a bug: propagate
        if kind == "unchanged":
            result: FetchResult = payload
            outcome: UpdateStatus = (
                "not_modified" if result.status == "not_modified" else "unchanged"
            )
            check = schedule.after_success(
                feed,
                result,
                outcome=outcome,
                now=self.now(),
                policy=self.policy,
                post_dates=self.store.post_dates(feed.id, self.now() - schedule.RATE_WINDOW),
                ms=_ms(t0),
            )
            self.store.save_update(check, [])
            return self._result(feed, check, 0, 0, 0)
        if kind == "parsed":
            result, pf = payload
            try:
                parsed, drafts = pf.result()
            except ParseError:
                raise
            except TimeoutError as e:
                raise ParseError(feed.url, "parsing took too long") from e
            known = self.store.known_stories(feed.id, [d.key for d in drafts])
            fresh = [d for d in drafts if known.get(d.key) != d.content_hash]
            to_extract = [d for d in fresh if extract and _needs_extraction(d, self.settings)]
            if not to_extract:
                return self._finish(feed, result, parsed, fresh, {}, extract, known, t0)
            loop, fetcher = self._ensure_fetcher()
            fut = loop.submit(self._extract_many(fetcher, to_extract))
            fut.add_done_callback(
                lambda f: events.put(("extracted", feed, (result, parsed, fresh, known, f)))
            )
            return None
        if kind == "extracted":
            result, parsed, fresh, known, f = payload
            articles: dict[str, Article | ExtractError] = f.result()
            return self._finish(feed, result, parsed, fresh, articles, extract, known, t0)
        raise AssertionError(kind)

    async def _extract_many(
        self, fetcher: Fetcher, drafts: Sequence[StoryDraft]
    ) -> dict[str, Article | ExtractError]:
        from .jobs import extract_job

        pool = self._ensure_pool()
        timeout = self.settings.extract_timeout_s

        async def one(d: StoryDraft) -> tuple[str, Article | ExtractError]:
            assert d.link is not None
            try:
                page = await fetcher.fetch_page(d.link)
                art = await asyncio.wrap_future(
                    pool.submit(extract_job, page.body, page.final_url, timeout=timeout)
                )
            except FetchError as e:
                return d.key, ExtractError(d.link, f"page fetch failed: {e.message}")
            except TimeoutError:
                return d.key, ExtractError(d.link, f"extraction took over {timeout:g} s")
            except ExtractError as e:
                return d.key, e
            if art is None:
                return d.key, ExtractError(d.link, "no article text found on the page")
            return d.key, art

        pairs = await asyncio.gather(*(one(d) for d in drafts))
        return dict(pairs)

    def _finish(
        self,
        feed: Feed,
        result: FetchResult,
        parsed: ParsedFeed,
        fresh: Sequence[StoryDraft],
        articles: dict[str, Article | ExtractError],
        extract: bool,
        known: dict[str, str],
        t0: float,
    ) -> UpdateResult:
        from .dedupe import simhash

        records: list[StoryRecord] = []
        docs: list[Document] = []
        extracted = 0
        for d in fresh:
            art = articles.get(d.key)
            full_text = None
            error = None
            if isinstance(art, Article):
                full_text, status = art.text, "ok"
                extracted += 1
            elif isinstance(art, ExtractError):
                status, error = "failed", art.message
            elif _needs_extraction(d, self.settings):
                status = "pending" if not extract else "skipped"
            else:
                status = "skipped"
            summary = html_to_text(d.summary or "")
            body = full_text or html_to_text(d.content or "") or summary
            docs.append(
                Document(
                    id=d.key,
                    title=d.title,
                    summary=summary,
                    text=body if body != summary else "",
                    categories=d.categories,
                )
            )
            records.append(
                StoryRecord(
                    draft=d,
                    full_text=full_text,
                    extraction_status=status,  # type: ignore[arg-type]
                    extraction_error=error,
                    fingerprint=simhash(f"{d.title}\n{body}") if body else None,
                )
            )
        predictions = self._predict(docs)
        if predictions is not None:
            records = [replace(r, prediction=p) for r, p in zip(records, predictions, strict=True)]
        now = self.now()
        # The document's own dates show the posting rate best; stored dates stand in for
        # feeds that carry none.
        post_dates = [e.published for e in parsed.entries if e.published]
        if len(post_dates) < 2:
            post_dates = sorted(
                {*post_dates, *self.store.post_dates(feed.id, now - schedule.RATE_WINDOW)}
            )
        check = schedule.after_success(
            feed,
            result,
            outcome="ok",
            now=now,
            policy=self.policy,
            post_dates=post_dates,
            ttl=parsed.ttl,
            title=parsed.title,
            site=parsed.link,
            ms=_ms(t0),
        )
        if parsed.warnings:  # stored, but the user should know the feed is not well-formed
            check = replace(check, last_error="; ".join(parsed.warnings)[:1000])
        saved = self.store.save_update(check, records)
        return self._result(
            feed,
            check,
            len(saved.new),
            len(saved.updated),
            extracted,
            warnings=parsed.warnings,
        )

    def _predict(self, docs: Sequence[Document]) -> list[Prediction] | None:
        if not docs:
            return []
        if self._model_error is not None:
            return None
        try:
            return self.classifier.predict(docs)
        except ModelError as e:
            # Said once per run; stories are stored untagged and `aggregator train` (or a
            # fixed model) re-tags them later.
            self._model_error = e
            log.warning("stories stored untagged: %s", e)
            return None

    def _record_error(self, feed: Feed, error: FeedError, t0: float) -> UpdateResult:
        now = self.now()
        check = schedule.after_error(
            feed,
            error,
            now=now,
            policy=self.policy,
            post_dates=self.store.post_dates(feed.id, now - schedule.RATE_WINDOW),
            ms=_ms(t0),
        )
        self.store.save_update(check, [])
        return self._result(feed, check, 0, 0, 0)

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
            preds = self.classifier.predict([self.document(s) for s in stories])
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


def _needs_extraction(d: StoryDraft, settings: Settings) -> bool:
    if not d.link:
        return False
    text = html_to_text(d.content or d.summary or "")
    return len(text) < settings.extract_min_chars


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
