"""The App's exports: the stories a query selects as one merged Atom, RSS or JSON Feed
document, returned whole (``export``; ``export_document``, which ``serve`` answers with)
or written in bounded memory (``export_to``: ``aggregator export``), titled after the
query unless given a title; and the formats there are.

A mixin of :class:`aggregator.app.App`, over its store, clock, taxonomy and story queries
(declared below for mypy). Must not render a document itself (:mod:`aggregator.export`
does) nor import :mod:`aggregator.app`, which imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from .errors import ConfigError
from .store import Store
from .types import Story, StoryQuery

if TYPE_CHECKING:
    from .export import Pages
    from .taxonomy import Taxonomy

EXPORT_FORMATS = ("atom", "rss", "json")
ExportFormat = Literal["atom", "rss", "json"]


class Exporting:
    """Exports for :class:`~aggregator.app.App`, over its store and queries."""

    store: Store
    now: Callable[[], datetime]

    if TYPE_CHECKING:

        @property
        def taxonomy(self) -> Taxonomy: ...

        def stories(self, query: StoryQuery) -> list[Story]: ...

        def _named(self, query: StoryQuery) -> StoryQuery: ...

    # --- export -------------------------------------------------------------------------

    def export(
        self,
        query: StoryQuery,
        fmt: ExportFormat,
        *,
        title: str | None = None,
        self_url: str | None = None,
    ) -> str:
        return self.export_document(query, fmt, title=title, self_url=self_url)[0]

    def export_document(
        self,
        query: StoryQuery,
        fmt: ExportFormat,
        *,
        title: str | None = None,
        self_url: str | None = None,
        home_url: str | None = None,
        pages: Callable[[list[Story]], Pages | None] | None = None,
        updated: datetime | None = None,
    ) -> tuple[str, list[Story]]:
        """What ``export`` returns, and the stories it holds (``serve`` dates its response
        by them: one read gives both). ``home_url``: the website of the feed (RSS's
        channel link, JSON Feed's home_page_url); ``pages``: the links to the other pages
        of a paged feed, given the stories of this one; ``updated``: the date of a
        document without stories (the clock's now unless given)."""
        from .export import render

        _check_format(fmt)
        stories = self.stories(query)
        name = self._export_name(query, title)
        text = render(
            stories,
            fmt,
            title=name,
            self_url=self_url,
            home_url=home_url,
            updated=updated or self.now(),
            pages=pages(stories) if pages is not None else None,
            owners=self.store.first_clusters_at(
                [s.canonical_url for s in stories if s.canonical_url]
            ),
        )
        return text, stories

    def export_to(
        self,
        write: Callable[[str], object],
        query: StoryQuery,
        fmt: ExportFormat,
        *,
        title: str | None = None,
        self_url: str | None = None,
        home_url: str | None = None,
        chunk: int = 500,
    ) -> None:
        """Write what ``export`` returns, in bounded memory: the matching ids once, then
        two passes over their stories, ``chunk`` at a time, one for what the document's
        head and entry ids need (``export.Outline``: the links, the newest date), one
        writing the entries as they come. ``self_url``, ``home_url``: where the document
        will be published, and the website it belongs to (as ``export_document``)."""
        from .export import outline, write_feed

        _check_format(fmt)
        ids = self.store.matching_ids(self._named(query))
        name = self._export_name(query, title)
        facts = outline(self.store.stories_by_ids(ids, chunk=chunk))
        facts.owners = self.store.first_clusters_at(sorted({url for _, url, _ in facts.claims}))
        stories = self.store.stories_by_ids(ids, chunk=chunk)
        write_feed(
            stories,
            fmt,
            write,
            outline=facts,
            title=name,
            updated=self.now(),
            self_url=self_url,
            home_url=home_url,
        )

    def _export_name(self, query: StoryQuery, title: str | None) -> str:
        # The taxonomy's spelling of each topic (``?topic=dns`` titles the feed "DNS"),
        # each once: ``/topics/DNS.atom?topic=dns`` was "DNS + DNS".
        def named(names: tuple[str, ...]) -> tuple[str, ...]:
            seen: dict[str, str] = {}
            for q in names:
                name = t.name if (t := self.taxonomy.resolve(q)) else q
                seen.setdefault(name.casefold(), name)
            return tuple(seen.values())

        return title or _export_title(
            replace(
                query,
                topics=named(query.topics),
                any_topics=named(query.any_topics),
                not_topics=named(query.not_topics),
            )
        )


def _check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")


def _export_title(query: StoryQuery) -> str:
    parts = ["aggregator"]
    if query.topics:
        parts.append(" + ".join(query.topics))
    if query.any_topics:
        parts.append(" or ".join(query.any_topics))
    if query.not_topics:
        parts.append("not " + ", ".join(query.not_topics))
    if query.feeds:
        parts.append(("feed " if len(query.feeds) == 1 else "feeds ") + ", ".join(query.feeds))
    if query.text:
        parts.append(f"“{query.text}”")
    # another order is another feed: without --url its id is made from this title, and
    # a feed by sources had the id (and the title) of the same stories by date
    if query.order == "sources":
        parts.append("most covered first")
    elif query.order == "relevance":
        parts.append("best matches first")
    return " — ".join(parts)
