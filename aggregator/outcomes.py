"""What a poll makes of each feed's outcome: its stories as records and the feed's next
state (``schedule``), written a few feeds a transaction (``Store.save_updates``), or
story-less outcomes (304s, unchanged bodies, errors) in batches; an exception while taking
up one feed's outcome contained as that feed's error; and the ``UpdateResult`` shown for
it.

A mixin of :class:`aggregator.polling.Poller`, which owns the stages before (fetching,
parsing, extracting); like it, it borrows the App's store and never imports
:mod:`aggregator.app` at run time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from . import schedule
from .articles import Extracted, outcome
from .credentials import display_url
from .errors import (
    FeedError,
    NotFoundError,
    StoreUnavailableError,
)
from .types import (
    ExtractionStatus,
    Feed,
    FeedCheck,
    FetchResult,
    SaveResult,
    StoryRecord,
    UpdateResult,
)

if TYPE_CHECKING:
    from .app import App
    from .jobs import ParseOutcome, Prepared
    from .polling import PollStats

# The poll's own logger: what a feed's update did is logged under one name, as it was
# before this module was split from polling.py (operators filter on it).
log = logging.getLogger("aggregator.polling")

#: At most this many feeds' updates are stored in one transaction. A commit is most of
#: what storing a feed costs SQLite (the search index's new segment, every page touched);
#: a group shares it. Bounded, so that the writer's lock is held for well under a second
#: (a CLI ``label`` or ``feeds add`` waits for it) and a failing group is cheap to retry
#: one feed at a time.
GROUP_MAX = 16


@dataclass(frozen=True, slots=True)
class Removed:
    """A feed deleted while the poll had it: nothing of it was stored, nothing is yielded,
    but its places and its entry among the feeds in flight are given back like any
    other's."""

    feed_id: int


@dataclass(frozen=True, slots=True)
class Ready:
    """A feed's parsed (and extracted) outcome, to be stored with others (``_store``)."""

    feed: Feed
    check: FeedCheck
    records: list[StoryRecord]
    extracted: int
    deferred: int
    warnings: tuple[str, ...]
    t0: float


class Outcomes:
    """Outcome handling for :class:`~aggregator.polling.Poller`, over its ``app``."""

    app: App

    def _ready(
        self,
        feed: Feed,
        result: FetchResult,
        parsed: ParseOutcome,
        fresh: Sequence[Prepared],
        extracted: dict[str, Extracted],
        extract: bool,
        t0: float,
    ) -> Ready:
        """One feed's stories as records and its next state, ready to be stored
        (:meth:`_store`)."""
        records: list[StoryRecord] = []
        n_extracted = n_deferred = 0
        for p in fresh:
            ex = extracted.get(p.draft.key)
            full_text = error = None
            prediction, fingerprint = p.prediction, p.fingerprint
            status: ExtractionStatus = "skipped"
            if ex is not None:
                status, full_text, error = outcome(p, ex)
                if status == "ok":
                    prediction = ex.prediction or prediction
                    fingerprint = ex.fingerprint or fingerprint
                    n_extracted += 1
                n_deferred += ex.deferred
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
        now = self.app.now()
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
            policy=self.app.policy,
            post_dates=post_dates,
            ttl=parsed.feed.ttl,
            title=parsed.feed.title,
            site=parsed.feed.link,
            ms=_ms(t0),
        )
        check = replace(check, listed=parsed.listed, listed_cut=parsed.listed_cut)
        warnings = parsed.feed.warnings
        if warnings:  # stored, but the user should know the feed is not well-formed
            check = replace(check, last_error="; ".join(warnings)[:1000])
        check, taken = self._redirect_taken(feed, check)
        if taken is not None:
            warnings = (*warnings, taken)
        return Ready(feed, check, records, n_extracted, n_deferred, warnings, t0)

    def _store(
        self,
        ready: Sequence[Ready],
        stats: PollStats,
        out: list[UpdateResult | FeedCheck | Removed],
    ) -> None:
        """Store feeds' stories and state, up to ``GROUP_MAX`` feeds a transaction,
        appending to ``out``, in ``ready``'s order, for each its UpdateResult, or, should
        the store fail, the FeedCheck recording that as the feed's error (Removed if it
        failed because the feed was deleted meanwhile). A group that fails is written
        again one feed at a time, so that a feed whose stories cannot be stored costs only
        itself. When the database fails (``StoreUnavailableError``, raised), ``out``
        holds what was taken up before: those feeds were committed, and are reported."""
        for start in range(0, len(ready), GROUP_MAX):
            group = ready[start : start + GROUP_MAX]
            if len(group) > 1:
                stats.transactions += 1
                try:
                    saved = self.app.store.save_updates([(r.check, r.records) for r in group])
                except StoreUnavailableError:
                    raise  # the database's, not the feeds' (see _store_one)
                except Exception:  # rolled back: nothing of the group was stored
                    log.debug(
                        "storing %d feeds' updates failed; storing them one at a time",
                        len(group),
                        exc_info=True,
                    )
                else:
                    stats.stored += len(group)
                    out.extend(self._stored(r, s) for r, s in zip(group, saved, strict=True))
                    continue
            for r in group:
                stats.transactions += 1
                out.append(self._store_one(r, stats))

    def _store_one(self, r: Ready, stats: PollStats) -> UpdateResult | FeedCheck | Removed:
        try:
            saved = self.app.store.save_update(r.check, r.records)
        except StoreUnavailableError:
            # The database, not this feed (unreachable, restarting, locked past its
            # timeout): the poll ends as database trouble and hands its feeds back,
            # rather than recording an error, a backoff and a "failing" warning on a
            # healthy feed that happened to be the one being written.
            raise
        except Exception as e:  # rolled back with its transaction: nothing of it was stored
            if self._removed(r.feed):
                return Removed(r.feed.id)
            return self._contained(r.feed, "could not store", e, r.t0)
        stats.stored += 1
        return self._stored(r, saved)

    def _stored(self, r: Ready, saved: SaveResult) -> UpdateResult:
        return self._result(
            r.feed,
            r.check,
            len(saved.new),
            len(saved.updated),
            r.extracted,
            deferred=r.deferred,
            warnings=r.warnings,
        )

    def _post_dates(self, feed: Feed) -> list[datetime]:
        return self.app.store.post_dates(feed.id, self.app.now() - schedule.RATE_WINDOW)

    def _error_check(self, feed: Feed, error: FeedError, t0: float) -> FeedCheck:
        check = schedule.after_error(
            feed,
            error,
            now=self.app.now(),
            policy=self.app.policy,
            post_dates=self._post_dates(feed),
            ms=_ms(t0),
        )
        # An error message may quote the feed (e.g. a lone surrogate the store cannot
        # encode): recording the error must not fail on the very data that caused it.
        return replace(check, last_error=_storable(check.last_error))

    def _contained(self, feed: Feed, what: str, error: Exception, t0: float) -> FeedCheck:
        """An unexpected exception while taking up one feed's outcome, as that feed's error
        (status error, error count, backoff): one error line in the log (its traceback at
        debug level, ``-vv``) and the message on the feed, so that a bug stays visible
        without burying a poll's output in tracebacks; it stops only this feed. Its stories
        were not stored: the store writes a feed in one transaction, rolled back by the
        exception. Logged once the check is built: when building it fails too (it reads
        the store), the database is the problem, reported by whoever gets that error."""
        detail = str(error).strip().splitlines()
        message = f"{what}: {type(error).__name__}" + (f": {detail[0]}" if detail else "")
        check = self._error_check(feed, FeedError(feed.url, message[:500]), t0)
        shown = display_url(feed.url)
        log.error("feed update feed=%s failed: %s: %s", shown, what, type(error).__name__)
        log.debug("traceback of the failed update of %s", shown, exc_info=error)
        return check

    def _save_checks(
        self,
        quick: Sequence[tuple[Feed, FeedCheck]],
        started: dict[int, float],
        out: list[UpdateResult | Removed],
    ) -> None:
        """Write story-less outcomes in one transaction, appending their results to
        ``out``; should that fail, one feed at a time, so that a feed whose state cannot
        be written costs only itself (recorded as its error) and a feed deleted meanwhile
        is dropped. Recording an error failing is not one feed's problem: it propagates
        (``out`` then holds the feeds written before)."""
        taken: dict[int, str] = {}
        settled = []
        for f, c in quick:
            c, why = self._redirect_taken(f, c)
            if why is not None:
                taken[f.id] = why
            settled.append((f, c))
        quick = settled
        try:
            self.app.store.save_checks([c for _, c in quick])
        except StoreUnavailableError:
            raise  # the database's, not the feeds' (see _store_one)
        except Exception:
            log.debug(
                "writing %d outcomes failed; writing them one at a time", len(quick), exc_info=True
            )
            for f, c in quick:
                out.append(self._save_check(f, c, started[f.id], taken.get(f.id)))
            return
        out.extend(
            self._result(f, c, 0, 0, 0, warnings=(taken[f.id],) if f.id in taken else ())
            for f, c in quick
        )

    def _save_check(
        self, feed: Feed, check: FeedCheck, t0: float, taken: str | None = None
    ) -> UpdateResult | Removed:
        """One story-less outcome on its own (``taken``: its :meth:`_redirect_taken`)."""
        store = self.app.store
        try:
            store.save_checks([check])
        except StoreUnavailableError:
            # locked past the busy timeout (a `prune --vacuum`), unreachable: tried again
            # by the next poll, never this feed's error (it was written once the lock went)
            raise
        except Exception as e:
            if self._removed(feed):
                return Removed(feed.id)
            if check.outcome == "error":
                raise
            # written as the outcome would have been: a hold put on meanwhile stays
            # (``claimed_at``), and so does a lease another poll took over (``claimed_by``)
            failed = self._contained(feed, "could not store", e, t0)
            check = replace(
                failed,
                claimed_at=check.claimed_at,
                claimed_by=check.claimed_by,
                claimed=check.claimed,
            )
            try:
                store.save_checks([check])
            except Exception:
                if self._removed(feed):
                    return Removed(feed.id)
                raise
            taken = None  # its error was written, not the check that said it
        return self._result(feed, check, 0, 0, 0, warnings=(taken,) if taken else ())

    def _removed(self, feed: Feed) -> bool:
        """Whether ``feed`` was deleted (``aggregator feeds remove``) while this poll had
        it, asked after a write failed: then there is nowhere to store its outcome or an
        error, and it is dropped from the poll. (That failure used to be taken for the
        database's: removing a feed a daemon was polling made the daemon exit.)"""
        try:
            self.app.store.get_feed(feed.id)
        except NotFoundError:
            log.info(
                "feed update feed=%s dropped: feed removed during the poll", display_url(feed.url)
            )
            return True
        return False

    def _result(
        self,
        feed: Feed,
        check: FeedCheck,
        new: int,
        updated: int,
        extracted: int,
        *,
        deferred: int = 0,
        warnings: tuple[str, ...] = (),
    ) -> UpdateResult:
        url = check.url or feed.url
        if url != feed.url and not self._moved(feed, url):
            url = feed.url  # taken meanwhile: the next poll says so (``_redirect_taken``)
        return UpdateResult(
            feed_id=feed.id,
            url=url,
            title=feed.name or check.title or feed.title,  # the name you gave it first
            status=check.outcome,
            new=new,
            updated=updated,
            extracted=extracted,
            deferred=deferred,
            error=check.last_error if check.outcome == "error" else check.reason,
            ms=check.ms,
            next_check=check.next_check,
            feed_status=check.status,
            warnings=warnings,
        )

    def _moved(self, feed: Feed, url: str) -> bool:
        """Whether the store moved ``feed`` to ``url`` (rare: an adopted redirect)."""
        try:
            return self.app.store.get_feed(feed.id).url == url
        except NotFoundError:
            return False

    def _redirect_taken(self, feed: Feed, check: FeedCheck) -> tuple[FeedCheck, str | None]:
        """``check`` as it is written, and why a permanent redirect it adopts is not,
        when another subscription has that URL already (the store keeps each URL to one
        feed). The two are then one feed fetched twice, which only the user can settle:
        said on the feed, as its ``last_error`` beside the document's warnings (`feeds
        list`, `feeds show`), and the redirect kept pending, so that every poll says it
        again until one of the two is removed and the next adopts the URL. (Only the
        poll that dropped the redirect said it; the feed showed nothing, and the poll
        three more after.) A note from such a poll is taken off the warnings a 304 or an
        unchanged body carries over (``schedule._document_warnings``)."""
        kept = _without_redirect_note(check.last_error) if check.success else check.last_error
        if kept != check.last_error:
            check = replace(check, last_error=kept)
        target = check.url
        if not target or target == feed.url:
            return check, None
        try:
            other = self.app.store.get_feed(target)
        except NotFoundError:
            return check, None
        if other.id == feed.id or other.url != target:
            return check, None  # the store moves it (the URL a moved feed was subscribed as)
        message = (
            f"{_MOVED_TO} {display_url(target)}, which is feed {other.id} "
            "already: the two subscriptions are one feed (remove one with "
            "`aggregator feeds remove`)"
        )
        log.warning("feed update feed=%s: %s", display_url(feed.url), message)
        seen = feed.redirect_count + 1 if feed.redirect_url == target else 1
        check = replace(
            check,
            url=None,
            redirect_url=target,
            redirect_count=seen,
            redirect_first_seen=feed.redirect_first_seen or check.at,
            last_error="; ".join(filter(None, (check.last_error, message)))[:1000],
        )
        return check, message


#: How :meth:`Outcomes._redirect_taken`'s note starts.
_MOVED_TO = "moved permanently to"


def _without_redirect_note(text: str | None) -> str | None:
    """``text`` (a feed's warnings) without a note of :meth:`Outcomes._redirect_taken`."""
    if not text or _MOVED_TO not in text:
        return text
    parts = text.split("; ")
    kept = [p for p in parts if not (p.startswith(_MOVED_TO) and ", which is feed " in p)]
    # (a note's own text has no "; ": only the parts before a note's start are kept whole)
    return "; ".join(kept) or None


def _ms(t0: float) -> int:
    return int((time.monotonic() - t0) * 1000)


def _storable(text: str | None) -> str | None:
    """``text`` with what UTF-8 cannot encode (lone surrogates) escaped."""
    return text if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")
