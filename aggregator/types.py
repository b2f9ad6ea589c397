"""Frozen data that crosses the seams between stages. Stdlib only; no behaviour.

One new object per stage: FeedSource/Feed -> FetchResult -> ParsedFeed (ParsedEntry)
-> StoryDraft -> Story, with Article and Prediction attached along the way and one
UpdateResult per feed update. Datetimes are timezone-aware UTC everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

FetchStatus = Literal["ok", "not_modified"]
FeedStatus = Literal["active", "error", "gone", "disabled"]
UpdateStatus = Literal["ok", "not_modified", "unchanged", "error", "skipped"]
ExtractionStatus = Literal["pending", "ok", "skipped", "failed"]
TopicSource = Literal["model", "feed-category", "rule", "user"]
#: A stored story's (content hash, canonical URL): :attr:`StoryDraft.version`
StoryVersion = tuple[str, str | None]


def utc_now() -> datetime:
    """The one clock; inject another through ``make_app(now=...)``."""
    return datetime.now(UTC)


# The longest feed URL taken (as UTF-8): what sitemaps and most software allow, and under
# PostgreSQL's 2,704-byte limit on an index entry (the feed table's unique URL), which a
# few kilobytes of query string would pass: on SQLite such a feed could be added, on
# PostgreSQL not, and a permanent redirect to one failed to store on every poll.
MAX_FEED_URL_BYTES = 2048


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedSource:
    """One feed as the user configured it (feeds.yaml, OPML or ``feeds add``)."""

    url: str
    name: str | None = None
    topics: tuple[str, ...] = ()
    interval: timedelta | None = None
    enabled: bool = True
    #: The site's web page as an OPML file names it (``htmlUrl``): stored for a feed whose
    #: site is not known yet, until a poll stores the one the feed itself gives (its
    #: ``link``), so that an export after an import keeps it. Not a setting of the user's.
    site: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheState:
    """What we remember between polls of one feed for conditional GET."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None


#: Fetch-log rows kept per feed (the store prunes older ones; `feeds show --log` lists them).
FETCH_LOG_KEEP = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class Feed:
    """A stored feed with its polling state."""

    id: int
    url: str
    name: str | None
    title: str | None
    site: str | None
    topics: tuple[str, ...]
    status: FeedStatus
    enabled: bool
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    interval: timedelta | None  # user override; None = adaptive
    next_check: datetime | None
    last_check: datetime | None
    last_success: datetime | None
    error_count: int
    first_error_at: datetime | None
    last_error: str | None
    redirect_url: str | None  # pending permanent redirect target
    redirect_count: int
    redirect_first_seen: datetime | None
    stories: int = 0
    poll_interval: timedelta | None = None  # the base interval last chosen (no jitter)
    not_before: datetime | None = None  # no request before (Retry-After)
    source_url: str | None = None  # the URL first subscribed, when a redirect moved it
    lease_owner: str | None = None  # the poller ("host:pid:tag") polling it now
    lease_until: datetime | None = None
    #: The warnings of the document last parsed (what its success left as
    #: ``last_error``), or None: what a 304 or the same body again shows.
    warnings: str | None = None

    def held_until(self, now: datetime) -> datetime | None:
        """When the server's Retry-After lets the feed be asked again, if not yet."""
        return self.not_before if self.not_before is not None and self.not_before > now else None

    def polled_by(self, now: datetime) -> tuple[str, datetime] | None:
        """The poller holding the feed's lease now, and when the lease ends."""
        if self.lease_owner and self.lease_until is not None and self.lease_until > now:
            return self.lease_owner, self.lease_until
        return None

    @property
    def cache(self) -> CacheState:
        return CacheState(
            etag=self.etag, last_modified=self.last_modified, body_hash=self.body_hash
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchResult:
    """The outcome of one successful HTTP exchange; errors are ``FetchError``.

    ``status`` is "not_modified" for a 304; then ``body`` is empty. ``url`` is the URL
    requested, ``final_url`` the one after redirects. ``permanent_redirect`` is the
    target of the first hop when that hop was a 301/308 (adopted only after it is seen
    consistently). ``max_age`` comes from Cache-Control / Expires.
    """

    url: str
    final_url: str
    status: FetchStatus
    http_status: int
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    max_age: timedelta | None = None
    permanent_redirect: str | None = None
    elapsed_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedEntry:
    """One entry, normalised: absolute links, UTC datetimes, sanitised HTML."""

    guid: str | None
    link: str | None
    title: str
    author: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    summary: str | None = None  # sanitised HTML
    content: str | None = None  # sanitised HTML, the longest full-content variant
    categories: tuple[str, ...] = ()
    enclosures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedFeed:
    """A parsed feed document.

    ``version`` is feedparser's version string ("rss20", "atom10", ...) or
    "json10"/"json11" for JSON Feed. ``ttl`` is the publisher's hint (RSS <ttl>,
    sy:updatePeriod/sy:updateFrequency) for how often to poll. ``warnings`` holds
    non-fatal problems (e.g. a recovered not-well-formed document).
    """

    url: str
    version: str
    title: str | None
    link: str | None
    description: str | None = None
    entries: tuple[ParsedEntry, ...] = ()
    ttl: timedelta | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryDraft:
    """An entry with its identity inside its feed, ready to be stored.

    ``key`` is the versioned identity within the feed ("v1:guid:...", "v1:link:...",
    "v1:hash:..."); ``content_hash`` changes when the story's text changes.
    ``canonical_url`` has tracking parameters removed and is the cross-feed key.
    """

    key: str
    guid: str | None
    link: str | None
    canonical_url: str | None
    title: str
    author: str | None
    published: datetime | None
    updated: datetime | None
    summary: str | None
    content: str | None
    categories: tuple[str, ...]
    content_hash: str

    @property
    def version(self) -> StoryVersion:
        """What a stored story under this key must match to be unchanged: its text and
        its article (a feed correcting an item's link changes no text)."""
        return (self.content_hash, self.canonical_url)


@dataclass(frozen=True, slots=True, kw_only=True)
class Article:
    """Full text extracted from a story's page."""

    url: str
    text: str
    title: str | None = None
    author: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicScore:
    topic: str
    score: float
    source: TopicSource = "model"


#: ``Prediction.model_version`` (and a stored story's) for topics given without a model: the
#: ones its feed categories name, while the model in use fails to load (see
#: ``jobs.by_categories``); a re-tag by a model takes such stories up
CATEGORIES_ONLY = "feed-categories"


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """Topics given to one story; ``topics`` sorted by score, highest first."""

    topics: tuple[TopicScore, ...]
    model_version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Story:
    """A stored story as queries return it."""

    id: int
    feed_id: int
    feed_url: str
    feed_title: str | None
    key: str
    guid: str | None
    link: str | None
    canonical_url: str | None
    title: str
    author: str | None
    published: datetime | None
    first_seen: datetime
    summary: str | None
    content: str | None
    full_text: str | None
    extraction_status: ExtractionStatus
    extraction_error: str | None
    categories: tuple[str, ...]
    topics: tuple[TopicScore, ...] = ()
    cluster_id: int | None = None
    model_version: str | None = None
    #: The feeds that carried this story: its cluster's (its copies'), this one's included.
    sources: int = 1
    #: The link its cluster was exported under (as entry id) before this story became the
    #: cluster's first, its first story before deleted; None: its own link
    entry_link: str | None = None

    @property
    def date(self) -> datetime:
        """The date to sort and filter by: published, else first seen."""
        return self.published or self.first_seen


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadMark:
    """How far a reading list (``stories --new``) has read: the stories stored by then.
    SQLite gives story ids in commit order (one writer at a time, and never an id twice),
    so the largest id then says it. PostgreSQL's writers commit out of id order (a daemon's
    story 100 may become visible after another's 101), so there it is the snapshot then
    (``pg_current_snapshot()``), against which each story's inserting transaction is
    tested. ``since``: no list yet; the stories first stored from then on."""

    story_id: int = 0
    snapshot: str | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingList:
    """A reading list (``stories --new --cursor NAME``): how far it has read, when it
    last read, and the options it reads by (a named list's: the CLI's JSON; None where
    it keeps none)."""

    name: str
    mark: ReadMark
    last_read: datetime | None
    filters: str | None = None


StoryOrder = Literal["date", "sources", "relevance"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryQuery:
    """Filters for ``Store.stories``; empty fields do not filter."""

    topics: tuple[str, ...] = ()  # every one of them
    #: any of them: each an id, a URL, a part of a name, title or URL (queries._feeds_named)
    feeds: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None  # full-text search
    limit: int | None = 50  # None = no limit
    offset: int = 0
    any_topics: tuple[str, ...] = ()  # at least one of them
    not_topics: tuple[str, ...] = ()  # none of them
    #: only the stories stored after this mark, and not new copies of a story stored
    #: before it (the cluster's first matching copy is what is new or not)
    stored_after: ReadMark | None = None
    #: "date" (newest first), "sources" (the most feeds carrying it first) or "relevance"
    #: (the best match of ``text`` first); ties newest first, then by id
    order: StoryOrder = "date"


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateResult:
    """What one feed update did; one per feed per cycle, logged and shown by the CLI."""

    feed_id: int
    url: str
    title: str | None
    status: UpdateStatus
    new: int = 0
    updated: int = 0
    extracted: int = 0
    #: New or changed stories stored without their article page, which waits for a later
    #: try: its host was not answering, or the feed's article budget ran out.
    deferred: int = 0
    error: str | None = None
    ms: int = 0
    next_check: datetime | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: The feed's state after this update: "active", "error", "gone" (410) or
    #: "disabled" (the 30-day rule); None where unknown.
    feed_status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """What the classifier reads of a story: plain text only, no HTML."""

    id: str
    title: str
    summary: str = ""
    text: str = ""  # extracted full text when there is one
    categories: tuple[str, ...] = ()  # the feed's own category strings


ExampleSource = Literal["user", "feed-category", "seed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """A labelled document for training. ``negative`` lists topics known NOT to apply
    (user labels like ``-Cybersecurity``); topics in neither tuple are unknown for user
    and feed-category examples and absent for seed examples."""

    doc: Document
    topics: tuple[str, ...]
    negative: tuple[str, ...] = ()
    source: ExampleSource = "seed"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryRecord:
    """A new or changed story with what the pipeline added to it, ready to be written."""

    draft: StoryDraft
    full_text: str | None = None
    extraction_status: ExtractionStatus = "skipped"
    extraction_error: str | None = None
    prediction: Prediction | None = None
    fingerprint: int | None = None  # 64-bit SimHash of the story's text
    text: str | None = None  # plain text of summary, content and full text, for search


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtractionUpdate:
    """What extracting a stored story's page gave (``aggregator extract``)."""

    story_id: int
    status: ExtractionStatus
    full_text: str | None = None
    error: str | None = None
    fingerprint: int | None = None  # over the title and the full text
    prediction: Prediction | None = None  # topics over the full text


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedSettings:
    """What a poll read, at its claim, of a feed's state that a user command also sets,
    and the schedule's floor: the store compares them with the row's when it writes the
    poll's outcome (``FeedCheck.claimed``), so that a change made meanwhile is kept."""

    interval: timedelta | None  # Feed.interval: the user's override (feeds.yaml)
    error_count: int  # Feed.error_count: `feeds enable` clears it
    url: str | None = None  # Feed.url: feeds.yaml may respell it (a new password)
    min_interval: timedelta = timedelta(0)  # Policy.min_interval


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedCheck:
    """The outcome of one poll of one feed; the store applies it atomically with the
    stories. The app decides every value (see schedule.py); the store only writes."""

    feed_id: int
    at: datetime
    outcome: UpdateStatus
    next_check: datetime
    status: FeedStatus
    error_count: int
    first_error_at: datetime | None
    last_error: str | None
    http_status: int | None = None
    ms: int = 0
    url: str | None = None  # a permanent redirect adopted as the feed's new URL
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    title: str | None = None
    site: str | None = None
    redirect_url: str | None = None
    redirect_count: int = 0
    redirect_first_seen: datetime | None = None
    success: bool = False  # stamps last_success and keeps caching fields
    interval: timedelta | None = None  # the base interval chosen (before jitter)
    not_before: datetime | None = None  # the server's Retry-After, if it gave one
    # dedupe.listing_digest of the keys the document lists (None: not parsed this time)
    listed: tuple[str, ...] | None = None
    #: The document was cut short (it ends before its root element closes): ``listed``
    #: is added to the feed's listing instead of replacing it. Replaced, the next prune
    #: deleted every story past the cut, and the next whole document brought them back
    #: as new.
    listed_cut: bool = False
    #: Why a "skipped" feed was not requested (its host asked to be left alone).
    reason: str | None = None
    #: When the poll claimed the feed: a ``not_before`` the store finds later than this
    #: was put on meanwhile (``Store.hold_host``) and is kept (None: written as it is).
    claimed_at: datetime | None = None
    #: The lease owner (``App.owner``) whose poll this is: the feed's lease is released
    #: only when it is still this owner's (None: released whoever holds it). A poll whose
    #: lease lapsed and was taken over by another writes its outcome late, and cleared
    #: the new holder's lease while that one still fetched the feed.
    claimed_by: str | None = None
    #: What the poll read of the user's settings at its claim (None: written as it is).
    #: A feeds.yaml ``interval`` changed meanwhile is applied to the next check as the
    #: sync applies it when no poll has the feed; a failing feed that `feeds enable`
    #: cleared meanwhile keeps its cleared state (its fetch, begun before, is logged).
    #: The outcome wrote back what the poll had read: a day's wait after `interval:
    #: 24h` became `30m`, and the error count, first error and backoff `feeds enable`
    #: had just cleared (the 30-day rule disabling the feed again at once).
    #: A permanent redirect the poll adopts keeps a new password written into feeds.yaml
    #: meanwhile (``store.rows.login_moved``): it moved the feed with the old one.
    claimed: ClaimedSettings | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveResult:
    new: tuple[int, ...] = ()  # story ids
    updated: tuple[int, ...] = ()
