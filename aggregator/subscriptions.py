"""The App's feed subscriptions: the feeds of feeds.yaml / OPML synced or imported into
the store (never deleting one), a feed added (found from a web page when need be),
removed, turned back on, and the feeds listed; with ``AddedFeed``, what an addition did.

A mixin of :class:`aggregator.app.App`, which owns the store, the settings, the clock, the
schedule's policy and the fetcher that discovery borrows (declared below for mypy). Must
not poll, schedule or write SQL (``polling``, ``schedule`` and the store do), nor import
:mod:`aggregator.app`, which imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from . import schedule
from .config import Settings, describe_span
from .credentials import display_url
from .errors import ConfigError
from .feedlist import FeedList, check_feed_url, feed_key, host_key, load_feed_list, url_host
from .store import FetchLogEntry, Store
from .types import Feed, FeedSource

if TYPE_CHECKING:
    from .fetch import Fetcher
    from .loopthread import LoopThread

# The App's logger: a feed list's warnings were logged under this name before this module
# was split from app.py, and stay so (operators filter on it).
log = logging.getLogger("aggregator.app")


@dataclass(frozen=True, slots=True, kw_only=True)
class AddedFeed:
    feed: Feed
    created: bool
    discovered_from: str | None = None


class Subscriptions:
    """Feed management for :class:`~aggregator.app.App`, over its store."""

    settings: Settings
    store: Store
    now: Callable[[], datetime]
    policy: schedule.Policy

    if TYPE_CHECKING:

        def _ensure_fetcher(self) -> tuple[LoopThread, Fetcher]: ...

    # --- feeds --------------------------------------------------------------------------

    def sync_feeds(self, path: Path | None = None) -> tuple[int, int]:
        """Add or update the feeds of feeds.yaml / OPML in the store (never deletes). An
        ``interval`` outside the schedule's bounds is polled at the bound, with a warning
        (it was clamped silently: ``interval: 1m`` meant every 5 minutes). An OPML
        file's entries that cannot be feeds are warned of too: they were dropped at
        every sync without a word."""
        path = path or self.settings.feeds_path
        listing = load_feed_list(path)
        for why in listing.skipped:
            log.warning("%s: skipped %s", path, why)
        self._warn_clamped(listing.sources, str(path))
        return self.store.upsert_feeds(
            listing.sources, self.now(), min_interval=self.policy.min_interval
        )

    def _warn_clamped(self, sources: Sequence[FeedSource], origin: str) -> None:
        """A warning for each ``interval`` outside the schedule's bounds."""
        low, high = self.policy.min_interval, self.policy.max_interval
        for src in sources:
            if src.interval is not None and not low <= src.interval <= high:
                bound = low if src.interval < low else high
                log.warning(
                    "%s: feed %s: interval %s is %s the schedule's %s, so it is polled every %s",
                    origin,
                    src.name or display_url(src.url),
                    _span(src.interval),
                    "below" if bound == low else "above",
                    "floor" if bound == low else "ceiling",
                    _span(bound),
                )

    def import_feeds(self, listing: FeedList, *, origin: str = "import") -> tuple[int, int]:
        """Add or update the feeds of an imported list; returns (added, updated). A feed
        already here under another spelling keeps its stored URL; one from OPML keeps
        its interval and enabled unless the file carries them (our ``aggregator:``
        attributes: an interval, ``enabled="false"``), and its name and topics when the
        file gives none (or as its name just the feed's own title). An interval outside
        the schedule's bounds is warned of, named after ``origin``, as the sync does (it
        was clamped without a word)."""
        self._warn_clamped(listing.sources, origin)
        # Each feed by its URL and by the one it was subscribed under before a permanent
        # redirect moved it (its URL first), with that stored spelling: an OPML written
        # before the move lists the old one, and its feed's settings were reset.
        existing: dict[str, tuple[Feed, str]] = {}
        feeds = self.feeds()
        for f in feeds:
            existing.setdefault(feed_key(f.url), (f, f.url))
        for f in feeds:
            if f.source_url:
                existing.setdefault(feed_key(f.source_url), (f, f.source_url))
        # and by the URL a permanent redirect is about to move it to, under its own URL
        # (other readers' files follow the move first): it was added a second time
        for f in feeds:
            if f.redirect_url:
                existing.setdefault(feed_key(f.redirect_url), (f, f.url))
        sources = []
        for src in listing.sources:
            found = existing.get(feed_key(src.url))
            if found is not None:
                known, spelling = found
                # The stored spelling, with the file's password: a new one is the same
                # subscription (feed_key), and keeping the old made the import a no-op.
                src = replace(src, url=_with_password_of(spelling, src.url))
                if listing.kind == "opml":
                    # OPML names a feed by its own title (other readers, our export of a
                    # feed never renamed): taken as a name, it pinned the title and a
                    # round trip reported every such feed updated.
                    src = replace(
                        src,
                        name=known.name if src.name in (None, known.title) else src.name,
                        topics=src.topics or known.topics,
                        # our export's aggregator:interval and aggregator:enabled="false"
                        # (a backup restored): ignored, the file said "unchanged"
                        interval=src.interval or known.interval,
                        enabled=known.enabled and src.enabled,
                    )
            sources.append(src)
        return self.store.upsert_feeds(sources, self.now(), min_interval=self.policy.min_interval)

    def feeds(self) -> list[Feed]:
        return self.store.feeds()

    def add_feed(self, url: str, *, name: str | None = None, discover: bool = True) -> AddedFeed:
        """Add a feed; when ``url`` is a web page, find its feed (discover.find_feed: the
        page's ``<link rel="alternate">``, else the usual feed paths). A feed already
        there under another spelling (http/https, a trailing slash, host case) or about
        to move to this URL is reported as present, not added twice."""
        from .discover import Discovery, find_feed, known_feed

        # a feed: URL (a site's "subscribe" link) as the http(s) URL it stands for
        url = check_feed_url(url)
        found = Discovery(url=url, seen_as=(url,))
        if discover:
            admit = self._refuse_held_host(found.url)
            loop, fetcher = self._ensure_fetcher()
            found = find_feed(url, lambda u: loop.run(fetcher.fetch_page(u, admit=admit)))
        # Not by ``url`` when it is the page the feed was found on: a subscription to the
        # page itself (failing at every poll) made the feed "already present".
        feed = known_feed({found.url, *found.seen_as}, self.store.feeds())
        created = False
        if feed is None:
            source = FeedSource(url=found.url, name=name)
            feed, created = self.store.add_feed(source, self.now())
        return AddedFeed(feed=feed, created=created, discovered_from=found.found_from)

    def _refuse_held_host(self, url: str) -> Callable[[str], None]:
        """A ConfigError when ``url``'s host asked to be left alone (``Store.held_hosts``):
        finding its feed takes a request or several (the usual feed paths), which the
        host asked not to get before then. The feed's own URL may still be added without
        fetching it; it waits for the hold as the host's other feeds do.

        Returns the fetcher's ``admit`` for discovery's requests, which raises the same
        for any other held host before a request is sent to it: the page may redirect
        to one (and the usual paths are then tried there) or link its feed on one."""
        holds = self.store.held_hosts(self.now())

        def admit(host: str) -> None:
            host = host_key(host)  # httpx spells an internationalised name in Unicode
            if (until := holds.get(host)) is not None:
                raise ConfigError(
                    f"cannot add {display_url(url)}: {host} asked for no request before"
                    f" {until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC; try again then, or"
                    " add the feed's own URL with --no-discover"
                )

        admit(url_host(url))
        return admit

    def remove_feed(self, url: str) -> int:
        """Remove a feed and its stories; returns how many of them carried user labels,
        which stay in the label archive for training."""
        return self.store.remove_feed(url, self.now())

    def feed(self, ref: int | str) -> Feed:
        """A feed by id, or by URL: its current one or the one it was subscribed under
        (NotFoundError when none)."""
        return self.store.get_feed(ref)

    def feed_history(self, feed: Feed, log: int) -> FeedHistory:
        """What `feeds show` prints beside the feed: its newest ``log`` fetch-log rows
        (at most the ``FETCH_LOG_KEEP`` kept), and its stories dated in the last 7 and 30
        days, the posting rate its adaptive interval follows."""
        now = self.now()
        dates = self.store.post_dates(feed.id, now - timedelta(days=30))
        week = now - timedelta(days=7)
        return FeedHistory(
            log=self.store.fetch_log(feed.id, limit=log) if log > 0 else [],
            posted_7d=sum(1 for d in dates if d >= week),
            posted_30d=len(dates),
        )

    def enable_feed(self, ref: int | str) -> Feed:
        """Turn a stopped feed (disabled by hand or by the 30-day rule, or gone) back on."""
        return self.store.enable_feed(ref, self.now())


@dataclass(frozen=True, slots=True)
class FeedHistory:
    log: list[FetchLogEntry]  # newest first
    posted_7d: int
    posted_30d: int


def _with_password_of(url: str, other: str) -> str:
    """``url`` with ``other``'s user info when ``other`` gives a password (the same
    user, as ``feed_key`` requires); else ``url`` as it is."""
    given = urlsplit(other)
    if given.password is None:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    userinfo = given.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def _span(span: timedelta) -> str:
    """A polling interval for messages: minutes under an hour, else hours or days."""
    minutes = span.total_seconds() / 60
    return f"{minutes:g} min" if minutes < 60 else describe_span(span)
