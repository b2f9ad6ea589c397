"""Story commands and the long-running ones: poll, stories, show, topics, export, daemon,
serve, demo. (`feeds` is feeds.py's.)"""

from __future__ import annotations

import json
import math
import shlex
import signal
import sys
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.cells import cell_len
from rich.markup import escape as esc
from rich.table import Table
from rich.text import Text

from ..config import Settings, parse_public_url
from ..credentials import display_url
from ..errors import ConfigError, NotFoundError, StoreUnavailableError
from ..textutil import html_to_text, one_line
from ..types import Feed, Story, StoryQuery, UpdateResult
from . import lists
from .common import (
    AnyTopicOpt,
    ExportFmt,
    FeedOpt,
    Fmt,
    GivenSortOpt,
    NotTopicOpt,
    PollFmt,
    SearchOpt,
    SinceOpt,
    SortBy,
    SortOpt,
    TopicOpt,
    UntilOpt,
    _ago,
    _dt,
    _write,
    app,
    build_query,
    check_search,
    counted,
    csv_text,
    day,
    emit_csv,
    emit_json,
    emit_json_items,
    err,
    for_terminal,
    largest_story_id,
    open_app,
    out,
    prepare_data_dir,
    resolve_feed,
    stories_table,
    story_json,
    sync_feeds_file,
    write_streamed,
)

if TYPE_CHECKING:
    from ..app import App
    from ..daemon import Stopper

#: Stories per table when `stories --limit 0` prints every match as a table
TABLE_CHUNK = 500

# --- poll ----------------------------------------------------------------------------------


def run_poll(
    a: App,
    *,
    all_feeds: bool,
    extract: bool,
    quiet: bool,
    as_json: bool,
    stop: threading.Event | None = None,
    feed_ids: Sequence[int] | None = None,
) -> tuple[list[UpdateResult], int]:
    """Poll once, with a progress bar on a terminal; returns the results and how many
    feeds were due when the poll began. Once ``stop`` is set the poll ends as the
    daemon's does (fetches cancelled, the feeds not stored handed back)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    results: list[UpdateResult] = []
    show_progress = not quiet and not as_json and err.is_terminal
    total = a.due_count(all_feeds=all_feeds, feed_ids=feed_ids)
    if stop is not None and stop.is_set():  # stopped before it began: claim nothing
        return results, total
    with Progress(
        TextColumn("[bold]polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[new]} new · {task.fields[errors]}"),
        TimeElapsedColumn(),
        console=err,
        disable=not show_progress,
        transient=True,
    ) as progress:
        task = progress.add_task("poll", total=total or None, new=0, errors=counted(0, "error"))
        new = errors = 0
        for r in a.update_due(all_feeds=all_feeds, extract=extract, stop=stop, feed_ids=feed_ids):
            results.append(r)
            new += r.new
            errors += r.status == "error"
            progress.update(task, advance=1, new=new, errors=counted(errors, "error"))
    return results, total


def _named_feeds(a: App, refs: Sequence[str]) -> list[Feed]:
    """The feeds ``poll --feed`` names, each once; a name that is no feed is an error
    before anything is polled."""
    found: dict[int, Feed] = {}
    for ref in refs:
        f = resolve_feed(a, ref)
        if f is None:
            raise ConfigError(f"no feed {ref!r} (see `aggregator feeds list`)")
        found.setdefault(f.id, f)
    return list(found.values())


def _why_not_polled(f: Feed, now: datetime) -> str:
    """Why a feed named with ``--feed`` was not polled (``f`` as it was before the poll)."""
    if not f.enabled:
        return "it is turned off in the feeds file (enabled: false)"
    if f.status not in ("active", "error"):
        return f"it is {f.status} (`aggregator feeds enable {f.id}` turns it back on)"
    if (held := f.held_until(now)) is not None:
        return (
            "its server asked for no request before"
            f" {held.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC (Retry-After)"
        )
    if (lease := f.polled_by(now)) is not None:
        owner, ends = lease
        return f"{owner} is polling it (its lease ends {ends.astimezone(UTC):%H:%M:%S} UTC)"
    return "another poller took it first"


def _nothing_polled(a: App, all_feeds: bool) -> str:
    """Why a poll of the due feeds (or of all, with ``--all``) polled none. "Use --all" only
    where --all would poll one: it was said to `poll --all` itself, and with no feed."""
    if not all_feeds and a.due_count(all_feeds=True):
        return "No feeds are due. Use --all to poll every feed now."
    feeds = a.feeds()
    if not feeds:
        return (
            "No feeds yet: add one with `aggregator feeds add URL`, or list them in the"
            f" feeds file ({a.settings.feeds_path})."
        )
    if not any(f.enabled and f.status in ("active", "error") for f in feeds):
        return (
            "No feed is on: each is turned off in the feeds file, gone (HTTP 410) or"
            " disabled after 30 days of errors (see `aggregator feeds list`)."
        )
    # on, but none to take now: another poll holds them, or their server's Retry-After
    return (
        "No feed can be polled now: another poll is polling them, or their server asked"
        " for no request yet (see `aggregator feeds list`)."
    )


def print_poll_summary(results: Sequence[UpdateResult]) -> None:
    t = Table(title="Feeds polled", expand=False)
    # The feed's name gives way to the error, which is what a failed row is read for.
    t.add_column("feed", max_width=22, overflow="ellipsis", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("new", justify="right")
    t.add_column("upd", justify="right")
    t.add_column("text", justify="right")
    t.add_column("ms", justify="right")
    t.add_column("error / next check", max_width=72, overflow="fold")
    for r in sorted(results, key=lambda r: (r.status != "error", (r.title or r.url).lower())):
        style = {"error": "red", "ok": "green", "skipped": "yellow"}.get(r.status, "")
        t.add_row(
            Text(r.title or display_url(r.url)),
            f"[{style}]{r.status}[/]" if style else r.status,
            str(r.new),
            str(r.updated),
            str(r.extracted),
            str(r.ms),
            Text(for_terminal(r.error) if r.error else f"next {_ago(r.next_check)}"),
        )
    out.print(t)
    failed = [r for r in results if r.status == "error"]
    skipped = sum(r.status == "skipped" for r in results)
    new = sum(r.new for r in results)
    out.print(
        f"{counted(len(results), 'feed')}, {counted(new, 'new story', 'new stories')},"
        f" {len(failed):,} failed"
        + (f", {skipped:,} skipped (their host asked to be left alone)" if skipped else "")
    )
    if deferred := sum(r.deferred for r in results):
        were = "story was" if deferred == 1 else "stories were"
        their = "its" if deferred == 1 else "their"
        out.print(
            f"{deferred:,} {were} stored without {their} article page, which did not come"
            " in time (a slow or unanswering site); the daemon fetches "
            f"{'it' if deferred == 1 else 'them'} later, or run `aggregator extract`."
        )


@app.command()
def poll(
    all_feeds: Annotated[
        bool, typer.Option("--all", help="Poll every enabled feed, due or not.")
    ] = False,
    no_extract: Annotated[
        bool, typer.Option("--no-extract", help="Do not fetch article pages for full text.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only failures.")] = False,
    fmt: Annotated[
        PollFmt, typer.Option("--format", help="table for people, json for scripts.")
    ] = PollFmt.table,
    show: Annotated[
        int,
        typer.Option(
            "--show",
            help="Then list the N newest stories with their topics (0: none; not with"
            " --quiet or --format json).",
        ),
    ] = 0,
    feed: Annotated[
        list[str] | None,
        typer.Option(
            "--feed",
            metavar="ID|URL",
            help="Poll only this feed, due or not (its id or URL, as `feeds list` shows"
            " it); repeatable.",
        ),
    ] = None,
) -> None:
    """Run one update cycle over due feeds (all feeds with --all, the named ones with
    --feed) and exit.

    Exits 1 only when every polled feed failed; each failure is reported on its own line.
    SIGINT (Ctrl-C) or SIGTERM stops the poll as it stops the daemon: fetches in flight are
    cancelled, the feeds not yet stored are handed back, what was polled is reported, and
    the exit status is 128 + the signal's number (130, 143).
    """
    from ..daemon import Stopper

    if show and (quiet or fmt == PollFmt.json):
        # --show prints a table after the poll's; both say there is none (it was ignored)
        with_what = "--quiet" if quiet else "--format json"
        raise ConfigError(f"--show lists stories after the poll's table; {with_what} has none")
    if show < 0:
        raise ConfigError("--show takes a number of stories, 0 or more")
    # The handlers cover the App's closing too: a second signal must not kill it there.
    with Stopper().installed() as stopper:
        try:
            _poll_and_report(stopper, all_feeds, no_extract, quiet, fmt, show, feed)
        except StoreUnavailableError as e:
            if not stopper.stopped:  # the database's trouble, not the signal's
                raise
            err.print(f"[yellow]poll interrupted:[/] {esc(str(e))}", highlight=False)
            raise typer.Exit(128 + (stopper.signal or signal.SIGINT)) from None


def _poll_and_report(
    stopper: Stopper,
    all_feeds: bool,
    no_extract: bool,
    quiet: bool,
    fmt: PollFmt,
    show: int,
    refs: list[str] | None,
) -> None:
    with open_app() as a:
        a.prepare_poll()  # the HTTP stack loads while feeds.yaml is synced
        sync_feeds_file(a)
        named = _named_feeds(a, refs) if refs else None
        now = a.now()  # the time the named feeds were read at
        results, due = run_poll(
            a,
            all_feeds=all_feeds,
            extract=a.settings.extract and not no_extract,  # AGGREGATOR_EXTRACT=0 too
            quiet=quiet,
            as_json=fmt == PollFmt.json,
            stop=stopper.event,
            feed_ids=None if named is None else [f.id for f in named],
        )
        if named is not None and not stopper.stopped:
            polled = {r.feed_id for r in results}
            for f in named:
                if f.id not in polled:
                    err.print(
                        f"not polled: {esc(display_url(f.url))}: {_why_not_polled(f, now)}",
                        highlight=False,
                    )
        interrupted = stopper.stopped
        if fmt == PollFmt.json:
            emit_json(
                [
                    {
                        "url": display_url(r.url),
                        "title": r.title,
                        "status": r.status,
                        "new": r.new,
                        "updated": r.updated,
                        "extracted": r.extracted,
                        "deferred": r.deferred,
                        "error": r.error,
                        "ms": r.ms,
                        "next_check": _dt(r.next_check),
                    }
                    for r in results
                ]
            )
        elif quiet:
            for r in results:
                if r.status == "error":
                    why = for_terminal(r.error or "")  # may quote a server
                    err.print(
                        f"[red]failed[/] {esc(display_url(r.url))}: {esc(why)}", highlight=False
                    )
        else:
            if results:
                print_poll_summary(results)
            elif not interrupted and named is None:
                out.print(
                    _nothing_polled(a, all_feeds), markup=False, highlight=False, soft_wrap=True
                )
            if show and not interrupted:
                stories = a.stories(StoryQuery(limit=show))
                if stories:
                    out.print(
                        stories_table(
                            stories,
                            title=f"Newest {counted(len(stories), 'story', 'stories')}",
                            width=out.width,
                        )
                    )
        if interrupted:
            # due - polled: the feeds left when it stopped (another process may have
            # polled a few of them meanwhile; the count is what this run did not do)
            left = max(due - len(results), 0)
            err.print(
                f"[yellow]poll interrupted:[/] {counted(left, 'feed')} not polled",
                highlight=False,
            )
            raise typer.Exit(128 + (stopper.signal or signal.SIGINT))
        # skipped feeds (their host asked to be left alone) were not tried: a poll whose
        # every other feed failed failed
        if any(r.status == "error" for r in results) and all(
            r.status in ("error", "skipped") for r in results
        ):
            raise typer.Exit(1)


# --- stories / show / topics ------------------------------------------------------------------


@app.command()
def stories(
    topic: TopicOpt = None,
    any_topic: AnyTopicOpt = None,
    not_topic: NotTopicOpt = None,
    feed: FeedOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    search: SearchOpt = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            help="At most N stories (default 50); 0 means no limit.",
            show_default=False,
        ),
    ] = None,
    offset: Annotated[
        int,
        typer.Option("--offset", help="Skip the first N stories (--limit 50 --offset 50: page 2)."),
    ] = 0,
    fmt: Annotated[Fmt, typer.Option("--format", help="table, json or csv.")] = Fmt.table,
    sort: GivenSortOpt = None,
    new: Annotated[
        bool,
        typer.Option(
            "--new",
            help="Only the stories stored since the last `stories --new` (of the same"
            " --cursor), every one of them; the first time, those of the last day. Then"
            " they count as read.",
        ),
    ] = False,
    cursor: Annotated[
        str | None,
        typer.Option(
            "--cursor",
            metavar="NAME",
            help="The reading list --new keeps its place in (default: default): one per"
            " set of filters you read by.",
        ),
    ] = None,
) -> None:
    """Query stored stories, newest first (ties by id, so pages neither overlap nor skip),
    one per cluster of duplicates."""
    if new or cursor is not None:  # a reading list: every new story, no page
        name = _cursor_name(new, cursor, limit, offset)
        check_search(search)  # build_query's check: a reading list keeps no empty -q
        given = lists.given_filters(
            topic, any_topic, not_topic, feed, since, until, search, sort or SortBy.date
        )
        # `--sort date` alone gives no filter to keep, and is an option all the same
        told = bool(given) or sort is not None
        # `--cursor default` is the list `--new` reads without one, which keeps no options
        # (named, it kept some that `status` showed and `--new` alone did not read by)
        _new_stories(name, given, fmt, named=name != DEFAULT_LIST, told=told)
        return
    q = build_query(
        topic,
        feed,
        since,
        until,
        search,
        50 if limit is None else limit,
        offset,
        any_topic=any_topic,
        not_topic=not_topic,
        order=sort or SortBy.date,
    )
    if fmt != Fmt.table and q.limit is None:
        # Every match: streamed, a few hundred stories in memory at a time (a list of
        # them all, texts and all, took 600 MB for 42,000 stories).
        with open_app() as a:
            _emit_stories(a.iter_stories(q), fmt)
        return
    if q.limit is None:
        # Every match as a table: printed 500 stories at a time (the header once), not
        # built whole: 280,000 stories took 2.4 GB and minutes before the first line.
        with open_app() as a:
            shown = 0
            stories = a.iter_stories(q)
            while part := list(islice(stories, TABLE_CHUNK)):
                table = stories_table(part, width=out.width)
                table.show_header = shown == 0
                out.print(table)
                shown += len(part)
        if not shown:
            out.print("No stories match.")
        return
    with open_app() as a:
        found = a.stories(q)
    if fmt != Fmt.table:
        _emit_stories(found, fmt)
    elif not found:
        out.print("No stories match.")
    else:
        out.print(stories_table(found, width=out.width))


#: A reading list's name: printable, and short enough to type.
CURSOR_MAX = 100
#: The reading list of ``stories --new`` without ``--cursor``: it keeps no options.
DEFAULT_LIST = "default"


def _cursor_name(new: bool, cursor: str | None, limit: int | None, offset: int) -> str:
    """The reading list ``stories --new`` reads, after its options are checked."""
    if not new:
        raise ConfigError("--cursor names the reading list of --new: give --new too")
    if limit is not None or offset:
        # A part of the new stories, then all of them counted as read, would lose the rest
        raise ConfigError(
            "--new lists every story stored since it last read: leave out --limit and --offset"
        )
    name = DEFAULT_LIST if cursor is None else cursor.strip()
    if not name or len(name) > CURSOR_MAX or not name.isprintable():
        raise ConfigError(f"--cursor: a name of 1 to {CURSOR_MAX} printable characters")
    return name


def _gone_feeds(a: App, name: str, refs: list[str], note: str | None) -> str | None:
    """A list kept with ``-f`` refs that name no feed now (the feed removed, or renamed
    so that the ref no longer matches): when none does, a ConfigError, for the list would
    read nothing and count the feed's new stories read, silently, at every run; when
    some, a note naming them (added to ``note``)."""
    gone = a.feed_refs_naming_none(refs)
    if not gone:
        return note
    names = " ".join(shlex.join(["-f", for_terminal(ref)]) for ref in gone)
    if len(gone) == len([r for r in refs if r]):
        raise ConfigError(f"{names} names no feed now (removed, or renamed?)")
    more = f"note: reading list {name!r}: {names} names no feed now (removed, or renamed?)"
    return more if note is None else f"{note}\n{more}"


def _new_stories(name: str, given: dict[str, Any], fmt: Fmt, *, named: bool, told: bool) -> None:
    """``stories --new``: the new stories, written as they are read; then, once all are
    out, they count as read (an output cut short, a closed pipe or a full disk, leaves
    them new). A list named by ``--cursor`` keeps the options it is read by: read with
    none (``told``: some were given, ``given`` those of them to keep), it reads by those
    it was last given."""
    with open_app() as a:
        use, keep, note = given, None, None
        if named:
            kept = a.reading_list(name)
            saved = None
            if kept is not None and kept.filters is not None:
                saved = lists.read_filters(kept.filters)
                if saved is None and not told:
                    raise ConfigError(
                        f"reading list {name!r}: its options cannot be read; give them again"
                        f" (stories --new --cursor {shlex.quote(name)} -t TOPIC ...)"
                    )
            if saved is not None and not told:
                use = saved
            elif saved is not None and given != saved:
                note = f"note: reading list {name!r} now reads {lists.shown(given)}"
                note += f" (it read {lists.shown(saved)})"
            keep = json.dumps(use, ensure_ascii=False)
        try:
            q = build_query(
                use.get("topic"),
                use.get("feed"),
                use.get("since"),
                use.get("until"),
                use.get("q"),
                0,
                any_topic=use.get("any_topic"),
                not_topic=use.get("not_topic"),
                order=SortBy(use.get("sort", "date")),
            )
            if use is not given and (refs := use.get("feed")):
                note = _gone_feeds(a, name, refs, note)
            unread = a.unread(q, name)
        except ConfigError as e:
            if use is given:
                raise
            # The kept options fail (a topic taken out of the taxonomy since): the error
            # alone named options the command line did not give
            raise ConfigError(
                f"reading list {name!r} reads {lists.shown(use)}: {e}; give it other"
                f" options (stories --new --cursor {shlex.quote(name)} -t TOPIC ...)"
            ) from e
        if note is not None:  # once they are read by: options refused replace nothing
            err.print(note, markup=False, highlight=False)
        found = a.unread_stories(unread)
        if fmt != Fmt.table:
            _emit_stories(found, fmt)
        else:
            reads = f": {lists.shown(use)}" if named and use else ""
            since = (
                f"since {unread.last_read:%Y-%m-%d %H:%M} UTC"
                if unread.last_read is not None
                else "in the last day"
            )
            shown = 0
            while part := list(islice(found, TABLE_CHUNK)):
                table = stories_table(part, width=out.width)
                table.show_header = shown == 0
                if shown == 0:
                    table.title = Text(f"New {since} (reading list {name!r}{reads})")
                out.print(table)
                shown += len(part)
            if not shown:
                out.print(f"No new stories {since} (reading list {name!r}{reads}).", markup=False)
        sys.stdout.flush()  # all of it written (a full disk fails here), then read
        a.mark_read(name, unread, keep)


def _emit_stories(found: Iterable[Story], fmt: Fmt) -> None:
    """The stories as JSON or CSV, written as they come."""
    if fmt == Fmt.json:
        emit_json_items(story_json(s) for s in found)
        return
    rows = (
        {
            **story_json(s),
            "title": csv_text(s.title),
            "feed_title": csv_text(s.feed_title),
            # the taxonomy may name a topic "@Risk": guarded as `topics --format csv` is
            "topics": csv_text(";".join(f"{t.topic}:{t.score:.3f}" for t in s.topics)),
        }
        for s in found
    )
    fields = ["id", "published", "first_seen", "feed", "feed_title", "title", "link", "topics"]
    # a new column goes last: the others keep their places
    emit_csv(rows, [*fields, "feed_id", "sources"])


@app.command()
def show(
    story_id: Annotated[int, typer.Argument(help="Story id (see `aggregator stories`).")],
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
) -> None:
    """Show one story: metadata, topics with their source, text, and other sources."""
    with open_app() as a:
        if not 0 < story_id <= largest_story_id(a.settings):
            raise NotFoundError(f"no story {story_id}")
        s = a.story(story_id)
        others = a.also_covered(s)
        added, removed = a.story_labels(story_id)
        stale = [m for t in dict.fromkeys((*added, *removed)) if (m := _label_now(a, t))]
    if fmt == PollFmt.json:
        data = story_json(s)
        data.update(
            author=s.author,
            summary=html_to_text(s.summary or ""),
            full_text=s.full_text,
            extraction_status=s.extraction_status,
            extraction_error=s.extraction_error,
            categories=list(s.categories),
            model_version=s.model_version,
            labels={"added": list(added), "removed": list(removed)},
            also_covered_by=[{"id": o.id, "feed": o.feed_url, "link": o.link} for o in others],
        )
        emit_json(data)
        return
    # Story text is data from the web: shown without what a terminal would act on.
    out.print(f"[bold]{esc(for_terminal(s.title))}[/]", highlight=False)
    feed = for_terminal(s.feed_title or s.feed_url)
    out.print(f"[cyan]#{s.id}[/] · {esc(feed)} · {day(s.date, time=True)} UTC", highlight=False)
    if s.link:
        # soft_wrap: the link is one line, however long; cut at the console's width (80
        # in a pipe) it could be neither clicked nor copied whole
        out.print(for_terminal(s.link), highlight=False, markup=False, soft_wrap=True)
    if s.author:
        out.print(f"by {for_terminal(s.author)}", highlight=False, markup=False)
    if s.categories:
        cats = ", ".join(s.categories)
        out.print("feed categories: " + for_terminal(cats), highlight=False, markup=False)
    out.print(
        "topics: "
        + (", ".join(f"{t.topic} {t.score:.2f} ({t.source})" for t in s.topics) or "none"),
        highlight=False,
        markup=False,  # a topic is named in the user's taxonomy: "[beta]" is no style
    )
    if added or removed:
        marks = [f"+{t}" for t in added] + [f"-{t}" for t in removed]
        out.print("your labels: " + ", ".join(marks), highlight=False, markup=False)
        if stale:
            # A label keeps the name its topic had: after an edit of taxonomy.yaml the
            # story listed a topic that `topics` did not and `-t` refused, unexplained.
            out.print(
                f"[dim]({esc('; '.join(stale))}; `aggregator label {s.id} --forget TOPIC` "
                "withdraws a label)[/]",
                highlight=False,
            )
    summary = "\n".join(for_terminal(line) for line in html_to_text(s.summary or "").splitlines())
    if summary:
        out.print("\n" + summary, highlight=False, markup=False)
    status = s.extraction_status + (f": {s.extraction_error}" if s.extraction_error else "")
    out.print(f"\n[dim]full text: {esc(for_terminal(status))}[/]")  # may quote a server
    if s.full_text:
        text = one_line(s.full_text)
        shown = one_line(text, 1200)
        out.print(for_terminal(shown), highlight=False, markup=False)
        if shown != text:  # cut, with "…": say how much is left, and where it is
            left = len(text) - len(shown) + 1
            out.print(
                f"[dim]({left:,} more characters: `aggregator show {s.id} --format json`"
                " has them all)[/]",
                highlight=False,
            )
    if others:
        out.print("\nalso covered by:")
        for o in others:
            # the indent outside for_terminal, which collapses whitespace (it was lost)
            line = for_terminal(f"#{o.id} {o.feed_title or o.feed_url} {o.link or ''}")
            out.print("  " + line, highlight=False, markup=False, soft_wrap=True)


def _label_now(a: App, name: str) -> str:
    """What a label's topic is now, when taxonomy.yaml no longer names it so: "X is Y
    now" (renamed: learnt as Y), "X is no longer a topic (kept, not learnt)"; "" for a
    topic of the taxonomy."""
    if name in a.taxonomy.names:
        return ""
    topic = a.taxonomy.resolve(name)
    if topic is not None:
        return f"{name} is {topic.name} now"
    return f"{name} is no longer a topic (kept, not learnt)"


@app.command()
def topics(
    fmt: Annotated[Fmt, typer.Option("--format", help="table, json or csv.")] = Fmt.table,
) -> None:
    """List the taxonomy's topics with how many stories `stories -t TOPIC` lists for each
    (one per cluster of duplicates)."""
    with open_app() as a:
        infos = a.topics()  # the taxonomy's, in its order (App.topics)
    rows = [{"topic": t.name, "stories": t.stories, "description": t.description} for t in infos]
    if fmt == Fmt.json:
        emit_json(rows)
    elif fmt == Fmt.csv:
        # The taxonomy is the user's, and may be a shared one: its names and descriptions
        # guarded as stories' titles are (csv_text); JSON keeps them as written.
        guarded = [
            {
                "topic": csv_text(t.name),
                "stories": t.stories,
                "description": csv_text(t.description),
            }
            for t in infos
        ]
        emit_csv(guarded, ["topic", "stories", "description"])
    else:
        # The description takes what the whole names and counts leave; with less than
        # DESCRIPTION_MIN of it (under ~50 columns) it ran down the screen 4 letters a
        # line, and the count column, squeezed beside it, showed 1,234 stories as "1…".
        names = max((cell_len(str(r["topic"])) for r in rows), default=0)
        counts = max((len(str(r["stories"])) for r in rows), default=0)
        room = out.width - max(names, 5) - max(counts, 7) - 10  # borders, padding
        described = room >= DESCRIPTION_MIN
        t = Table(expand=False)
        # no_wrap: a name is what `stories -t` takes, whole at any width (40 columns cut
        # "Cybersecurity" to "Cybersecur…"), and a count is whole or wrong
        t.add_column("topic", style="green", no_wrap=True)
        t.add_column("stories", justify="right", no_wrap=True)
        if described:
            t.add_column("description", max_width=80, overflow="fold")
        for r in rows:
            # Text, not markup: the taxonomy is the user's ("[beta]" is no style)
            cells: list[Text | str] = [Text(str(r["topic"])), str(r["stories"])]
            if described:
                # taxonomy.yaml checks names, not descriptions, for control characters
                cells.append(Text(for_terminal(str(r["description"] or ""))))
            t.add_row(*cells)
        out.print(t)
        if not described:
            out.print("[dim](`--format csv` has the descriptions)[/]")


#: The least width `topics` gives the description column, else it leaves it out.
DESCRIPTION_MIN = 16


# --- export / serve / daemon ------------------------------------------------------------------


@app.command()
def export(
    fmt: Annotated[
        ExportFmt, typer.Option("--format", help="atom, rss or json (JSON Feed 1.1).")
    ] = ExportFmt.atom,
    topic: TopicOpt = None,
    any_topic: AnyTopicOpt = None,
    not_topic: NotTopicOpt = None,
    feed: FeedOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    search: SearchOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="At most N stories; 0 means no limit.")
    ] = 100,
    offset: Annotated[
        int,
        typer.Option("--offset", help="Skip the first N stories (as `stories --offset`)."),
    ] = 0,
    sort: SortOpt = SortBy.date,
    title: Annotated[str | None, typer.Option("--title", help="The merged feed's title.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Where the file will be published (an absolute http(s) URL): the feed's "
            "self link and Atom id, and RSS's channel link unless --home-url is given.",
        ),
    ] = None,
    home_url: Annotated[
        str | None,
        typer.Option(
            "--home-url",
            help="The website the feed belongs to: RSS's channel link, JSON Feed's home_page_url.",
        ),
    ] = None,
) -> None:
    """Write a merged, deduplicated feed of the matching stories."""
    q = build_query(
        topic,
        feed,
        since,
        until,
        search,
        limit,
        offset,
        any_topic=any_topic,
        not_topic=not_topic,
        order=sort,
    )
    self_url = parse_public_url(url, "--url") if url is not None else None
    home = parse_public_url(home_url, "--home-url") if home_url is not None else None
    with open_app() as a:
        # Written as it is rendered, a few hundred stories in memory at a time: the whole
        # document as one string took 1.4 GB for 42,000 stories.
        write_streamed(
            lambda write: a.export_to(
                write, q, fmt.value, title=title, self_url=self_url, home_url=home
            ),
            output,
        )


@app.command()
def daemon(
    no_extract: Annotated[
        bool, typer.Option("--no-extract", help="Do not fetch article pages.")
    ] = False,
    max_sleep: Annotated[
        float, typer.Option("--max-sleep", help="Wake at least this often (seconds).")
    ] = 300.0,
) -> None:
    """Poll due feeds forever, following the feeds file (synced again when it changes
    and on SIGHUP), until SIGTERM / SIGINT stops it cleanly.

    A stop finishes the feeds being stored; fetches in flight are cancelled, the feeds not
    yet stored are handed back for the next run, and the exit status is 0. A second
    SIGTERM / SIGINT while it stops exits at once (128 + the signal's number: 130, 143).
    """
    from ..daemon import Stopper, run_daemon

    if not (math.isfinite(max_sleep) and max_sleep > 0):
        # NaN compared false everywhere: the daemon never slept (a core at 100%); 0 or
        # less polled again at once after every cycle that stored something.
        raise ConfigError(f"--max-sleep must be a positive number of seconds, got {max_sleep}")
    stopper = Stopper(second_signal_exits=True)
    stopper.install_hangup()  # before the start's work: a reload meanwhile is a sync
    with open_app() as a:
        a.prepare_poll()
        sync_feeds_file(a)
        run_daemon(
            a,
            extract=a.settings.extract and not no_extract,
            max_sleep=max_sleep,
            stopper=stopper,
            feeds=a.settings.feeds_path,
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port).")] = 8080,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Public URL behind a reverse proxy, e.g. https://news.example.org/feeds/ "
            "(env AGGREGATOR_BASE_URL): self links and the index page's links start with it; "
            "the proxy passes requests on without that path prefix.",
        ),
    ] = None,
) -> None:
    """Serve merged feeds over HTTP: /feed.atom, /feed.rss, /feed.json (?topic=&feed=&q=&since=)."""
    from ..serve import serve_forever

    with open_app(base_url=base_url) as a:
        serve_forever(
            a,
            host=host,
            port=port,
            base_url=a.settings.base_url,
            announce=lambda url: err.print(f"serving on {url}"),
        )


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the merged Atom feed.")
    ] = Path("demo-output/merged.atom"),
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Keep the demo database in this directory.")
    ] = None,
) -> None:
    """Offline demo: serve bundled sample feeds on 127.0.0.1, run the whole pipeline into a
    temporary database, print the tagged stories and write a merged Atom feed."""
    import tempfile

    from ..demo_server import DemoServer

    kept = Settings.from_env({}, data_dir=keep).sqlite_path if keep is not None else None
    if kept is not None and kept.exists():
        # An earlier demo's feeds were served on a port that is gone: polled again, each
        # would fail. And a directory holding a database may be someone's real one.
        raise ConfigError(f"{keep} holds a database already: give --keep an empty or new directory")
    with tempfile.TemporaryDirectory(prefix="aggregator-demo-") as tmp, DemoServer() as server:
        data_dir = keep or Path(tmp)
        feeds_file = Path(tmp) / "feeds.yaml"
        feeds_file.write_text(server.feeds_yaml(), encoding="utf-8")
        s = Settings.from_env(
            {},
            data_dir=data_dir,
            feeds_path=feeds_file,
            allow_private_addresses=True,
        )
        prepare_data_dir(s)
        from ..app import make_app

        with make_app(s) as a:
            a.prepare_poll()
            a.sync_feeds(feeds_file)
            results, _ = run_poll(a, all_feeds=True, extract=True, quiet=False, as_json=False)
            print_poll_summary(results)
            found = a.stories(StoryQuery(limit=None))
            out.print(
                stories_table(
                    found,
                    title=f"{counted(len(found), 'story', 'stories')}, tagged",
                    width=out.width,
                )
            )
            text = a.export(StoryQuery(limit=None), "atom", title="aggregator demo — all topics")
        _write(text, output)
