"""Article pages: fetching and extracting the pages of a poll's new stories
(``Articles.extract``, which the poll pipeline runs on the App's event loop) and of
stored stories still waiting for theirs (``Articles.extract_stored``, for
``App.extract_waiting``).

It owns the rules that keep a slow or dead host from holding a feed (stalled hosts, the
per-feed budget), the reuse of an article already extracted for another feed's story,
and :func:`outcome`, the one rule for what a page gives a story, shared by a poll and a
later extraction. Like :mod:`aggregator.polling` it borrows the App's fetcher, worker
pool and store, and imports nothing heavy at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import schedule
from .credentials import display_url
from .errors import AggregatorError, ExtractError, FetchError
from .feedlist import host_key, url_host
from .textutil import counted
from .types import (
    Article,
    ExtractionStatus,
    ExtractionUpdate,
    FetchResult,
    Prediction,
    Story,
    StoryDraft,
)
from .workers import PoolFailedError, WorkerDiedError

if TYPE_CHECKING:
    from .app import App
    from .fetch import Fetcher
    from .jobs import ModelRef, Prepared

log = logging.getLogger(__name__)

#: How often extracting stored stories looks at a stop event while pages are fetched
#: (seconds), as a poll does (``polling.STOP_CHECK``).
STOP_CHECK = 0.1

#: How long a host that left an article page unanswered, or answered it 503 without a
#: Retry-After, gets no more article requests from the App (seconds). One that asked to
#: be left alone (a 429, or a 503 with a Retry-After) gets none for the time it gave
#: (``schedule.host_wait``).
STALLED_FOR = 300.0

#: The statuses by which a server asks to be left alone for a while.
_BACK_OFF_STATUSES = frozenset({429, 503})


def hold_in_store(app: App, host: str, until: datetime, error: FetchError, asked_by: str) -> None:
    """Hold ``host``'s feeds in the store until ``until`` (``Store.hold_host``): how a
    later poll or extraction, of this process or another daemon's, knows the host asked,
    through ``asked_by`` (a feed's or a page's URL), to be left alone. Failing to is
    logged, not the feed's or page's error: its own outcome is written next, and the
    store's trouble surfaces there."""
    try:
        n = app.store.hold_host(host, until, now=app.now())
    except AggregatorError as e:
        log.warning("could not hold the feeds of %s: %s", host, e)
        return
    log.info(
        "host %s asked to be left alone (HTTP %s for %s): %d feeds held until %s",
        host,
        error.http_status,
        asked_by,
        n,
        f"{until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
    )


@dataclass(frozen=True, slots=True)
class Stall:
    """Why a host gets no article requests from the App (``App.stalled_hosts``), and
    until when, by ``time.monotonic()``. ``held``: the host asked to be left alone (a 429
    or a 503 with a Retry-After, for a page or a feed, or the store holds it:
    ``schedule.host_wait``); a page it defers was not tried, so a stored story's later
    try is not spent on it (``Articles.extract_stored``)."""

    until: float
    why: str
    held: bool = False


class _HostHeld(Exception):
    """Raised before a page's request to a host that asked to be left alone: the page
    is deferred, not requested."""

    def __init__(self, stall: Stall) -> None:
        super().__init__(stall.why)
        self.stall = stall


@dataclass(frozen=True, slots=True, kw_only=True)
class Extracted:
    """What extraction gave one story: the article (or why not), and the fingerprint and
    topics recomputed over its full text. ``deferred``: the page was not fetched (its
    host was not answering, or the feed's article budget ran out); ``article`` then
    says why. ``untried``: deferred before its request was even sent, or before a
    worker took up the page (the budget ran out while it waited for its host's turn,
    or for a worker), or because its host asked to be left alone (``Stall.held``):
    nothing was learnt of the page."""

    article: Article | ExtractError
    fingerprint: int | None = None
    prediction: Prediction | None = None
    deferred: bool = False
    untried: bool = False


def outcome(
    p: Prepared, ex: Extracted, *, final: bool = False
) -> tuple[ExtractionStatus, str | None, str | None]:
    """What extracting a story's page gave it: ("ok", the article's text) when that is
    longer than the feed's own; ("skipped", None) when not (a teaser, a paywall: the
    feed's text stands); ("failed", None, why) when there is no article. A deferred page
    leaves the story ("pending", None, why) for a later try, or, when this was that
    later try (``final``), ("failed", None, why)."""
    if ex.deferred and not final:
        assert isinstance(ex.article, ExtractError)
        return "pending", None, ex.article.message
    if isinstance(ex.article, ExtractError):
        return "failed", None, ex.article.message
    if len(ex.article.text) <= p.own_chars:
        return "skipped", None, None
    return "ok", ex.article.text, None


class Articles:
    """The article pages of one poll, or of one run over stored stories. The stalls it
    finds are the App's (``App.stalled_hosts``), shared by its polls and extractions."""

    def __init__(self, app: App) -> None:
        self.app = app
        # The hosts that asked, through a feed or a page, to be left alone: until when
        # (by ``app.now()``), and why. A poll's (``Poller``) skips its feeds of such a
        # host still queued, not requesting them.
        self.waits: dict[str, tuple[datetime, str]] = {}
        # The holds written to the store (``Store.hold_host``), each once
        self._stored: dict[str, datetime] = {}
        # Per host, the article requests sent at once (the fetcher's per-host limit): a
        # page queued here sees that its host stalled before sending anything.
        self._gates: dict[str, asyncio.Semaphore] = {}
        # The pages being fetched, or fetched and not yet extracted: at most as many as
        # the fetcher has connections, so that fetching waits for the extractor. Pages
        # were fetched as fast as the network allowed and held, bodies and all, until a
        # worker took them up (150 pages of 1 MB, one worker: +250 MB within the budget;
        # thousands, gigabytes), most of them to be deferred unread at the budget.
        self._held = asyncio.Semaphore(app.settings.max_connections)

    def known(self, stories: Sequence[Prepared], feed_id: int) -> dict[str, str]:
        """The article texts stored already for these stories' canonical URLs by
        another feed's story of the same article, by story key: read in the store's
        thread. ``feed_id``: the stories' feed, whose own stored texts are not taken
        (``SqlStore.extracted_texts``): an earlier item at a page the feed links each
        item to (a "today" page, which shows another text every day), or the story's
        own text before its edit."""
        by_url = self.app.store.extracted_texts(
            [p.draft.canonical_url for p in stories if p.draft.canonical_url], feed_id
        )
        return {
            p.draft.key: text
            for p in stories
            if (text := by_url.get(p.draft.canonical_url or "")) is not None
        }

    async def extract(
        self,
        fetcher: Fetcher,
        stories: Sequence[Prepared],
        model: ModelRef | None,
        known: Mapping[str, str],
        *,
        stop: threading.Event | None = None,
    ) -> dict[str, Extracted]:
        """Fetch and extract the article pages of ``stories`` (one feed's, or stored
        ones), then classify the texts found, in the worker processes. A story whose
        article's text is ``known`` (by story key: another feed's story of the same
        article, as a site's main feed and its topic feeds carry it, :meth:`known`) has
        its page not fetched again; that text is used as extracted.

        Two rules keep a slow or dead host from holding the feed, and so its stories,
        for many deadlines in a row (50 articles behind a hanging host, two at a time,
        took the feed ~500 s):

        - a host that leaves a page unanswered (the connection fails, or the request
          outlasts its deadline) or asks to be left alone (429, 503) gets no more
          article requests for ``STALLED_FOR`` (``App.stalled_hosts``: shared by the
          App's polls, so a dead host costs one deadline, not one per feed): its
          remaining pages are *deferred*;
        - whatever is not fetched after ``extract_budget_s`` is deferred too, and so is
          a page fetched but still queued for a worker (a page being extracted already
          is let finish: the extractor has its own limit). Every page fetched by then
          was let finish: pages needing the extractor's whole limit, fetched at once,
          held their feed for one limit each, in a row, long past the budget.

        A deferred page was not fetched; :func:`outcome` decides what that makes its
        story.

        Once ``stop`` is set (looked at every ``STOP_CHECK`` s) no page is waited for,
        not even one being extracted: they are all ``untried``, and the pages finished by
        then are returned as they are (their texts classified)."""
        from . import neardup
        from .jobs import classify_job, document, extract_job

        pool = self.app._ensure_pool()
        settings = self.app.settings
        timeout = settings.extract_timeout_s
        gates = self._gates
        # Their page's extraction job in the pool: once a worker runs it, let finish.
        jobs: dict[asyncio.Task[Any], Future[tuple[Article | None, int | None]]] = {}
        # The page each story's link was redirected to, and the story's article (its
        # canonical URL), by story key
        landed: dict[str, tuple[str, str]] = {}
        # The story's article (its canonical URL) and what its title says (_title_words)
        # of each page fetched and extracted
        fetched: dict[str, tuple[str, frozenset[str]]] = {}
        asked: set[asyncio.Task[Any]] = set()  # their page's request was sent

        def admit(host: str) -> None:
            """Looked at by the fetcher before each request of a page is sent, redirects
            included: a page that waited in the fetcher for a connection while its host
            answered 429 (for a feed or another page), or one redirected to a held host,
            asked it all the same. (A host that only stalled is not looked at here: a
            redirector's links to a dead site would then wait for it too.)"""
            if (stall := self.stalled(host_key(host))) is not None and stall.held:
                raise _HostHeld(stall)

        async def fetch(link: str, held: contextlib.AsyncExitStack) -> Extracted | FetchResult:
            host = _host(link)
            async with gates.setdefault(host, asyncio.Semaphore(fetcher.options.per_host)):
                if (stall := self.stalled(host)) is not None:
                    return Extracted(
                        article=ExtractError(link, stall.why), deferred=True, untried=stall.held
                    )
                # Its place among the pages held (``_held``, given back by ``held``),
                # taken once its host's turn has come: pages waiting for a busy host
                # hold none, so the other hosts' pages are not held up behind them.
                await held.enter_async_context(self._held)
                task = asyncio.current_task()
                assert task is not None
                asked.add(task)
                try:
                    return await fetcher.fetch_article(link, admit=admit)
                except _HostHeld as e:  # not requested
                    return Extracted(
                        article=ExtractError(link, e.stall.why), deferred=True, untried=True
                    )
                except FetchError as e:
                    if e.unanswered or e.http_status in _BACK_OFF_STATUSES:
                        # The host that failed, which after a redirect (a link through
                        # a tracker) is not the link's: a redirector is not stalled for
                        # one dead site behind it.
                        failed = host_key(e.host) if e.host else host
                        if (wait := schedule.host_wait(e, self.app.policy)) is not None:
                            await self._hold(failed, wait, e)
                            # The host asked, not the page: it waits for the hold as the
                            # host's other pages do, for one later try (it was failed at
                            # once, and only `extract --failed` asked for it again).
                            why = f"not fetched: {failed} asked to be left alone ({e.message})"
                            return Extracted(article=ExtractError(link, why), deferred=True)
                        else:
                            what = "did not answer" if e.unanswered else "asked to be left alone"
                            why = f"not fetched: {failed} {what} for another page ({e.message})"
                            self.app.stalled_hosts.setdefault(
                                failed, Stall(time.monotonic() + STALLED_FOR, why)
                            )
                    return Extracted(article=ExtractError(link, f"page fetch failed: {e.message}"))

        async def one(p: Prepared) -> Extracted:
            link = p.draft.link
            assert link is not None
            if (text := known.get(p.draft.key)) is not None:
                # as extract_job's
                fingerprint = neardup.fingerprint(p.draft.title, text, p.boilerplate)
                return Extracted(article=Article(url=link, text=text), fingerprint=fingerprint)
            # The page is held from its fetch until a worker has extracted it: see _held.
            async with contextlib.AsyncExitStack() as held:
                page = await fetch(link, held)
                if isinstance(page, Extracted):
                    return page
                if _front_page(page.final_url) and not _front_page(link):
                    # An article taken down, a region or paywall redirect: the front page
                    # mentions every headline, and gave each story its text and topics.
                    why = f"redirected to the site's front page ({page.final_url})"
                    return Extracted(article=ExtractError(link, why))
                if page.final_url != link:
                    landed[p.draft.key] = (page.final_url, p.draft.canonical_url or link)
                task = asyncio.current_task()
                assert task is not None
                try:
                    job = jobs[task] = pool.submit(
                        extract_job,
                        page.body,
                        page.final_url,
                        p.draft.title,
                        page.content_type,
                        p.boilerplate,
                        timeout=timeout,
                    )
                    art, fp = await asyncio.wrap_future(job)
                except TimeoutError:
                    return Extracted(
                        article=ExtractError(link, f"extraction took over {timeout:g} s")
                    )
                except WorkerDiedError as e:
                    return Extracted(article=ExtractError(link, f"the extractor crashed ({e})"))
                except ExtractError as e:
                    return Extracted(article=e)
                except PoolFailedError as e:
                    # The pool failed for good (its workers exit as they start): not the
                    # page's doing, and nothing was learnt of it; the next poll or
                    # extraction starts new workers (``App._replace_failed_pool``).
                    return Extracted(
                        article=ExtractError(link, f"not extracted: {e}"),
                        deferred=True,
                        untried=True,
                    )
                if art is None:
                    return Extracted(
                        article=ExtractError(link, "no article text found on the page")
                    )
                fetched[p.draft.key] = (
                    p.draft.canonical_url or link,
                    _title_words(p.draft.title),
                )
                return Extracted(article=art, fingerprint=fp)

        tasks = {asyncio.ensure_future(one(p)): p for p in stories}
        stopped = False
        try:
            late = await _unfinished(tasks, settings.extract_budget_s, stop)
            stopped = stop is not None and stop.is_set()
            for task in late:
                job = jobs.get(task)
                if stopped or job is None or not (job.running() or job.done()):
                    task.cancel()  # a queued job with it: the pool skips a cancelled one
            if late:
                await asyncio.wait(late)
        finally:  # this call itself cancelled (the poll is ending): so are its pages
            for task in tasks:
                task.cancel()
        over = (
            "stopped"
            if stopped
            else f"the feed's article pages took over {settings.extract_budget_s:g} s"
        )
        got: list[tuple[str, Extracted]] = [
            (
                p.draft.key,
                Extracted(
                    article=ExtractError(
                        p.draft.link or "",
                        f"not extracted: {over}" if task in jobs else f"not fetched: {over}",
                    ),
                    deferred=True,
                    untried=stopped or task not in asked or task in jobs,
                )
                if task.cancelled()
                else task.result(),
            )
            for task, p in tasks.items()
        ]
        got = _one_page_for_many(got, landed, fetched)
        if deferred := sum(ex.deferred for _, ex in got):
            log.info("%d article pages left for a later try", deferred)
        by_key = {p.draft.key: p for p in stories}
        texts = [(k, ex.article) for k, ex in got if isinstance(ex.article, Article)]
        preds: list[Prediction] | None = None
        if texts and model is not None and not model.categories_only:
            docs = [document(by_key[k].draft, by_key[k].summary_text, a.text) for k, a in texts]
            limit = self.app.settings.parse_timeout_s
            try:
                preds, error = await asyncio.wrap_future(
                    pool.submit(classify_job, docs, model, timeout=limit)
                )
                self.app._note_model_error(error)
            except (TimeoutError, WorkerDiedError, PoolFailedError) as e:
                # The stories keep the topics their feed text was given in the parse job.
                what = f"took over {limit:g} s" if isinstance(e, TimeoutError) else f"crashed ({e})"
                log.warning(
                    "classifying %d extracted articles %s; they keep their feed text's topics",
                    len(docs),
                    what,
                )
        new_pred = dict(zip([k for k, _ in texts], preds, strict=True)) if preds else {}
        return {k: replace(ex, prediction=new_pred.get(k)) for k, ex in got}

    async def _hold(self, host: str, wait: timedelta, e: FetchError) -> None:
        """``host`` asked, through the page of ``e``, to be left alone for ``wait`` (a
        429 or a 503 with a Retry-After: ``schedule.host_wait``, as for a feed). What
        asked was the host: this App sends it no article request before then, the
        poll's feeds of it still queued are skipped (``waits``), and the store holds its
        feeds (``Store.hold_host``), which is how a later poll or extraction, of this
        process or another, knows (``App._stall_held_hosts``). The page got 5 minutes
        in this process alone, whatever the Retry-After said, and the host's feeds
        were asked all the same. Failing to write the hold is logged: the page's own
        outcome is written later, and the store's trouble surfaces there."""
        until = self.app.now() + wait
        stamp = f"{until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        self.app.hold_pages(
            host,
            time.monotonic() + wait.total_seconds(),
            f"not fetched: {host} asked to be left alone until {stamp}"
            f" (HTTP {e.http_status} for another page)",
        )
        if (queued := self.waits.get(host)) is None or queued[0] < until:
            self.waits[host] = (
                until,
                f"not requested: {host} asked for no request before {stamp}"
                f" (HTTP {e.http_status} for the page {display_url(e.url)})",
            )
        if host in self._stored and self._stored[host] >= until - timedelta(seconds=1):
            return  # held until then already, by another of its pages
        self._stored[host] = until
        asked_by = f"the page {display_url(e.url)}"
        await asyncio.get_running_loop().run_in_executor(
            None, hold_in_store, self.app, host, until, e, asked_by
        )

    def stalled(self, host: str) -> Stall | None:
        """Why ``host`` gets no article requests now, or None when it does."""
        entry = self.app.stalled_hosts.get(host)
        if entry is not None and entry.until <= time.monotonic():
            del self.app.stalled_hosts[host]
            return None
        return entry

    def extract_stored(
        self, stories: Sequence[Story], *, stop: threading.Event | None = None
    ) -> list[ExtractionUpdate]:
        """Extract the article pages of stored stories (``App.extract_waiting``) as a
        poll extracts a new story's: the same fetcher and limits, the extractor and the
        classifier in the workers, the same rule for a page shorter than the feed.

        This is a deferred page's later try: one deferred again is ``failed`` with why
        (so nothing waits for ever). A story stored by ``poll --no-extract`` (pending,
        with no error: never deferred) is on its first try, as in a poll: deferred, it
        stays ``pending`` with why, for one later try. (It was ``failed``: one page of a
        host timing out failed each of the host's other pages, never requested, and only
        ``--failed`` fetched them.) A story whose host this App saw stall is left
        out, untouched, until the host's ``STALLED_FOR`` is over (the daemon's
        extraction right after the poll that deferred it is not a later try), and so is
        one whose request the run's budget ran out before sending, or whose page was
        still queued for a worker then, or whose host asked, through another page, to be
        left alone meanwhile (``untried``): nothing was learnt of its page.
        (They were ``failed``: `aggregator extract` over a backlog of 500 stories failed
        every one it had not got to in 120 s, none of them tried, and a second run found
        nothing waiting.) Every run sends some requests, and each page a worker takes up
        is settled, so the stories left waiting are fewer each time."""
        from .jobs import Prepared
        from .neardup import BOILERPLATE_LOOKED_AT, boilerplate, without_boilerplate
        from .textutil import html_to_text

        texts = {
            st.id: (html_to_text(st.summary or ""), html_to_text(st.content) if st.content else "")
            for st in stories
            if st.link and self.stalled(_host(st.link)) is None
        }
        # What a feed's stories of this run repeat under their titles, as the poll's
        # document did (a poll --no-extract stores a feed's teasers above its footer
        # together): not their text, which the page's must be longer than. Read in a few
        # of the feed's other stored stories too, as the poll reads the document's other
        # entries: a story taken up alone (`extract --limit 1`, the last of its feed
        # still waiting) had the feed's footer counted as its own text, and its article,
        # longer than the teaser but not than teaser and footer, was skipped.
        read: dict[int, list[tuple[str, str]]] = {}
        for st in stories:
            if st.id in texts:
                summary_text, body_text = texts[st.id]
                read.setdefault(st.feed_id, []).append((st.title, body_text or summary_text))
        taken: dict[int, list[int]] = {}
        for st in stories:
            if st.feed_id in read:
                taken.setdefault(st.feed_id, []).append(st.id)
        for fid, others in self.app.store.feed_neighbours(taken, BOILERPLATE_LOOKED_AT).items():
            read[fid] += [
                (title, html_to_text(content) if content else html_to_text(summary or ""))
                for title, summary, content in others
            ]
        shared = {fid: boilerplate(pairs) for fid, pairs in read.items()}
        prepared: dict[str, Prepared] = {}
        for st in stories:
            if st.id not in texts:
                continue
            summary_text, body_text = texts[st.id]
            own = without_boilerplate(body_text or summary_text, shared[st.feed_id])
            prepared[str(st.id)] = Prepared(
                draft=StoryDraft(
                    key=str(st.id),  # unique here (feed keys are unique per feed only)
                    guid=st.guid,
                    link=st.link,
                    canonical_url=st.canonical_url,
                    title=st.title,
                    author=st.author,
                    published=st.published,
                    updated=None,
                    summary=st.summary,
                    content=st.content,
                    categories=st.categories,
                    content_hash="",
                ),
                summary_text=summary_text,
                body_text=body_text,
                own_chars=len(own),
                boilerplate=shared[st.feed_id],
                needs_extraction=True,
                fingerprint=None,
                prediction=None,
            )
        if not prepared:
            return []
        loop, fetcher = self.app._ensure_fetcher()
        model = self.app._model_ref()
        waiting = list(prepared.values())
        # Each story takes no text of its own feed's, as in a poll: a feed linking each
        # day's item to one page ("/today") gave a story stored without its page the
        # text an earlier day's story had got there, and the page was not fetched.
        by_feed: dict[int, list[Prepared]] = {}
        for st in stories:
            if (p := prepared.get(str(st.id))) is not None:
                by_feed.setdefault(st.feed_id, []).append(p)
        known = {k: t for fid, ps in by_feed.items() for k, t in self.known(ps, fid).items()}
        # Told to stop (the daemon's SIGTERM, Ctrl-C on `aggregator extract`), the run
        # waits for no page (up to the article budget, longer than systemd waits before
        # SIGKILL): the pages not finished stay waiting, untouched (``untried``), and
        # those finished are written. (Nothing was: their work was thrown away.)
        got = loop.submit(self.extract(fetcher, waiting, model, known, stop=stop)).result()
        first = {
            str(st.id)
            for st in stories
            if st.extraction_status == "pending" and st.extraction_error is None
        }
        updates = []
        for key, p in prepared.items():
            if got[key].untried:
                continue
            status, full_text, error = outcome(p, got[key], final=key not in first)
            ok = status == "ok"
            updates.append(
                ExtractionUpdate(
                    story_id=int(key),
                    status=status,
                    full_text=full_text,
                    error=error,
                    fingerprint=got[key].fingerprint if ok else None,
                    prediction=got[key].prediction if ok else None,
                )
            )
        return updates


async def _unfinished(
    tasks: Collection[asyncio.Task[Any]], budget: float, stop: threading.Event | None
) -> set[asyncio.Task[Any]]:
    """Those of ``tasks`` not done after ``budget`` seconds, or once ``stop`` is set
    (looked at every ``STOP_CHECK`` s)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + budget
    late = set(tasks)
    while late and not (stop is not None and stop.is_set()):
        left = until - loop.time()
        if left <= 0:
            break
        _, late = await asyncio.wait(late, timeout=left if stop is None else min(left, STOP_CHECK))
    return late


def _one_page_for_many(
    got: list[tuple[str, Extracted]],
    landed: Mapping[str, tuple[str, str]],
    fetched: Mapping[str, tuple[str, frozenset[str]]],
) -> list[tuple[str, Extracted]]:
    """``got`` with no article for the stories of different articles whose links were
    redirected to one page together (``landed``: by story key, the page its link was
    redirected to and the story's canonical URL), or whose pages gave the same text to
    stories of different titles too (``fetched``: by story key, the canonical URL and
    title words of a story whose page was fetched and extracted). A site sending its
    article links to its home page or a section page ("/news/"), or serving one page at
    every link (a "not found" page answered 200 with the latest headlines, a
    script-built site's shell), gave each story that page's text, which mentions every
    headline, and the others' topics. Stories of one article (two feeds' copies) share
    its page rightly. (A deferred one is left for its later try.)"""
    by_page: dict[str, set[str]] = {}
    for page, article in landed.values():
        by_page.setdefault(page, set()).add(article)
    by_text: dict[str, tuple[set[str], set[frozenset[str]]]] = {}
    for key, ex in got:
        if key in fetched and isinstance(ex.article, Article):
            urls, titles = by_text.setdefault(ex.article.text, (set(), set()))
            urls.add(fetched[key][0])
            titles.add(fetched[key][1])
    out = []
    for key, ex in got:
        page = landed[key][0] if key in landed else ""
        if not ex.deferred and (others := len(by_page.get(page, ())) - 1) > 0:
            shared = counted(others, "other story", "other stories")
            why = f"redirected to the same page as {shared} ({page})"
            ex = Extracted(article=ExtractError(ex.article.url, why))
        elif (
            key in fetched
            and isinstance(ex.article, Article)
            and len(by_text[ex.article.text][1]) > 1
            and (others := len(by_text[ex.article.text][0]) - 1) > 0
        ):
            pages = "other story's page" if others == 1 else "other stories' pages"
            why = f"the page gave the same text as {others:,} {pages}"
            ex = Extracted(article=ExtractError(ex.article.url, why))
        out.append((key, ex))
    return out


def _title_words(title: str) -> frozenset[str]:
    """The words of four letters or more of a story's title, case-folded: two stories
    whose titles differ in them are about different things (copies of one story may
    differ in a prefix, a number or punctuation)."""
    return frozenset(w for w in re.findall(r"\w{4,}", title.casefold()) if not w.isdigit())


# A front page's path: an index file, under a language's home ("/en/", "/en-us/index.php")
_INDEX_FILE = re.compile(r"(?:index|default|home)(?:\.[a-z]{2,5})?", re.IGNORECASE)
_LANGUAGE = re.compile(r"[a-z]{2}(?:[-_][a-z]{2,4})?", re.IGNORECASE)


def _front_page(url: str) -> bool:
    """Whether ``url`` is a site's front page: its root, an index file or a language's
    home page ("/", "/index.html", "/en/", "/en-us/index.php"), without a query."""
    parts = urlsplit(url)
    if parts.query:
        return False
    segments = [s for s in parts.path.split("/") if s]
    if segments and _INDEX_FILE.fullmatch(segments[-1]):
        segments.pop()
    return not segments or (len(segments) == 1 and _LANGUAGE.fullmatch(segments[0]) is not None)


def _host(url: str) -> str:
    """The host of a page, as the poll names a host that asked to be left alone."""
    return url_host(url)
