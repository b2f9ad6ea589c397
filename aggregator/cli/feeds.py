"""`aggregator feeds`: list, add, remove, enable, import and export the subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.cells import cell_len, set_cell_size
from rich.markup import escape as esc
from rich.table import Table
from rich.text import Text

from ..credentials import display_url
from ..errors import AggregatorError, ConfigError
from ..feedlist import feed_key, load_feed_list
from ..types import Feed, FeedSource
from .common import (
    COMPACT_BELOW,
    Fmt,
    _ago,
    _write,
    csv_text,
    emit_csv,
    emit_json,
    err,
    feed_json,
    feeds_app,
    for_terminal,
    open_app,
    out,
    resolve_feed,
    sync_feeds_file,
)

if TYPE_CHECKING:
    from ..app import App


@feeds_app.command("list")
def feeds_list(
    fmt: Annotated[Fmt, typer.Option("--format", help="table, json or csv.")] = Fmt.table,
) -> None:
    """Every feed with its id, status, last success, errors and next check."""
    with open_app() as a:
        sync_feeds_file(a)
        feeds = a.feeds()
    rows = [_feed_row(f) for f in feeds]
    if fmt == Fmt.json:
        emit_json(rows)
        return
    if fmt == Fmt.csv:
        emit_csv((_csv_feed_row(r) for r in rows), list(rows[0]) if rows else ["url"])
        return
    now = datetime.now(UTC)
    if len(feeds) > PLAIN_ABOVE:
        out.print(feeds_lines(feeds, now, width=out.width), soft_wrap=True, end="")
    else:
        out.print(feeds_table(feeds, now, width=out.width))


#: Above this many feeds, `feeds list` prints plain aligned columns instead of a rich
#: table, which took ~1.3 ms a row to lay out (10,000 feeds: 19 s; plain: under 1 s).
PLAIN_ABOVE = 500


def _feed_row(f: Feed) -> dict[str, Any]:
    """``feed_json`` and, after its fields (CSV columns keep their places), what the user
    set or needs: the ``id`` that `feeds remove` and `feeds enable` take, the ``topics``
    hint and the ``interval`` in minutes (null: adaptive), as feeds.yaml gives them."""
    minutes = f.interval.total_seconds() / 60 if f.interval is not None else None
    return {
        **feed_json(f),
        "id": f.id,
        "topics": list(f.topics),
        "interval": int(minutes) if minutes is not None and minutes.is_integer() else minutes,
    }


def _csv_feed_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row for a spreadsheet: a feed's author chooses its title and a server its error
    text, so a cell a spreadsheet would run as a formula gets a leading ' (as `stories
    --format csv` does); topics joined by "; "."""
    text = {k: csv_text(row[k]) for k in ("name", "title", "last_error")}
    return {**row, **text, "topics": "; ".join(row["topics"])}


_STATUS_STYLE = {
    "active": "green",
    "error": "yellow",
    "gone": "red",
    "disabled": "dim",
    "off": "dim",
}


def feeds_table(feeds: list[Feed], now: datetime, *, width: int | None = None) -> Table:
    """Feeds with status, stories, last success, errors, next check and last error. Under
    ``COMPACT_BELOW`` columns the last error goes under the feed's name, where it has
    the feed column's width instead of the few columns left at the right edge, and the
    id (what `feeds remove ID` takes) goes before the name instead of in a column."""
    compact = width is not None and width < COMPACT_BELOW
    t = Table(expand=False)
    if compact:
        t.add_column("feed / last error", min_width=20, ratio=1, overflow="fold")
    else:
        t.add_column("id", justify="right", no_wrap=True)
        t.add_column("feed", max_width=22, overflow="ellipsis", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("stories", justify="right")
    t.add_column("last ok", no_wrap=True)
    t.add_column("errors", justify="right")
    t.add_column("next check", no_wrap=True)
    if not compact:
        t.add_column("last error", max_width=60, overflow="fold")
    for f in feeds:
        # A feed feeds.yaml turns off (`enabled: false`) is never polled: it was listed
        # as "active" and "due" (its status is the last poll's, kept for when it is on).
        status = f.status if f.enabled else "off"
        style = _STATUS_STYLE.get(status, "")
        name = Text(_feed_name(f))
        cells = [
            f"[{style}]{status}[/]",
            str(f.stories),
            _ago(f.last_success, now),
            str(f.error_count),
            _next_check(f.next_check, now) if status in ("active", "error") else "—",
        ]
        if compact:
            name = Text(f"#{f.id} ", style="dim") + name
            if f.last_error:
                name.append("\n" + for_terminal(f.last_error), style="yellow")
            t.add_row(name, *cells)
        else:
            t.add_row(str(f.id), name, *cells, Text(for_terminal(f.last_error or "")))
    return t


def _feed_name(f: Feed) -> str:
    """How a feed is named in lists: the name you gave it (feeds.yaml, ``--name``), else
    its own title, else its URL (credentials hidden). Data, never rich markup; a name
    from feeds.yaml may hold "\\e[2J" too."""
    return for_terminal(f.name or f.title or display_url(f.url))


def feeds_lines(feeds: list[Feed], now: datetime, *, width: int | None = None) -> Text:
    """What :func:`feeds_table` shows, as plain aligned columns in one Text, for long
    lists (a rich table lays them out a row at a time). The name is cut to 30 columns;
    the last error ends the line, or under ``COMPACT_BELOW`` columns goes on the next
    one, and the terminal wraps it."""
    compact = width is not None and width < COMPACT_BELOW
    head = ("id", "feed", "status", "stories", "last ok", "errors", "next check")
    rows: list[tuple[tuple[str, ...], str]] = []
    for f in feeds:
        status = f.status if f.enabled else "off"
        name = _feed_name(f)
        if cell_len(name) > 30:
            name = set_cell_size(name, 29) + "…"
        when = _next_check(f.next_check, now) if status in ("active", "error") else "—"
        row = (str(f.id), name, status, str(f.stories), _ago(f.last_success, now))
        rows.append(((*row, str(f.error_count), when), for_terminal(f.last_error or "")))
    widths = [max(cell_len(r[i]) for r in [head, *(cols for cols, _ in rows)]) for i in range(7)]

    def cell(i: int, value: str) -> str:
        pad = " " * (widths[i] - cell_len(value))
        return pad + value if i in (0, 3, 5) else value + pad  # numbers to the right

    text = Text("  ".join(cell(i, v) for i, v in enumerate(head)), style="bold")
    text.append("" if compact else "  last error")
    for cols, error in rows:
        text.append("\n" + "  ".join(cell(i, v) for i, v in enumerate(cols[:2])) + "  ")
        text.append(cell(2, cols[2]), style=_STATUS_STYLE.get(cols[2], ""))
        tail = "  " + "  ".join(cell(i, cols[i]) for i in range(3, 7))
        text.append(tail if error and not compact else tail.rstrip())
        if error:
            text.append(("\n    " if compact else "  ") + error, style="yellow")
    text.append("\n")
    return text


def _next_check(v: datetime | None, now: datetime) -> str:
    """When a feed is checked next: "in 2h", or "due" once that time has come."""
    return "due" if v is not None and v <= now else _ago(v, now)


@feeds_app.command("add")
def feeds_add(
    urls: Annotated[
        list[str],
        typer.Argument(metavar="url", help="Feed URLs, or site URLs whose page links to a feed."),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Display name (with a single URL).")
    ] = None,
    no_discover: Annotated[
        bool, typer.Option("--no-discover", help="Add the URL as is, without fetching it.")
    ] = False,
) -> None:
    """Add feeds to the database (feeds.yaml is not rewritten)."""
    failed = 0
    with open_app() as a:
        for url in urls:
            try:
                added = a.add_feed(
                    url, name=name if len(urls) == 1 else None, discover=not no_discover
                )
            except AggregatorError as e:
                shown = display_url(url)
                why = str(e).removeprefix(f"cannot add {shown}: ")  # said once, below
                if why.startswith("refused ") and " address " in why:
                    why += " (AGGREGATOR_ALLOW_PRIVATE_ADDRESSES=1 allows such addresses)"
                why = for_terminal(why)  # may quote a server
                err.print(f"[red]not added[/] {esc(shown)}: {esc(why)}", highlight=False)
                failed += 1
                continue
            what = "added" if added.created else "already present"
            found_on = added.discovered_from
            via = f" (found on {display_url(found_on)})" if found_on else ""
            # not markup: `?tags[]=dns` is a URL, and `[/]` in one raised MarkupError
            out.print(f"{what}: {display_url(added.feed.url)}{via}", markup=False, highlight=False)
            if not added.created and _password(url) not in (None, _password(added.feed.url)):
                # a new password is the same feed (feedlist.feed_key), kept as it was
                err.print(
                    "note: it is there with another password, which is kept: write the new"
                    " one in feeds.yaml (the next sync takes it)",
                    markup=False,
                    highlight=False,
                )
    if failed == len(urls):
        raise typer.Exit(2)


def _password(url: str) -> str | None:
    try:
        return urlsplit(url.strip()).password
    except ValueError:  # not a URL: it has none
        return None


@feeds_app.command("remove")
def feeds_remove(
    url: Annotated[
        str, typer.Argument(help="The feed's URL (as `feeds list` shows it) or its id.")
    ],
) -> None:
    """Remove a feed and its stories."""
    with open_app() as a:
        feed = resolve_feed(a, url)
        removed = feed.url if feed is not None else url
        kept = a.remove_feed(removed)
        listed = _file_entries(a).get(feed_key(removed))
    note = (
        f" (the labels of {kept} {'story are' if kept == 1 else 'stories are'} kept for"
        " training, and return to their stories if you add the feed again)"
        if kept
        else ""
    )
    out.print(f"removed: {display_url(removed)}{note}", markup=False, highlight=False)
    if listed is not None:
        err.print(
            f"note: it is still listed in {a.settings.feeds_path}, so the next sync (poll,"
            " daemon, feeds list) adds it back, without its stories: delete it there too",
            markup=False,
            highlight=False,
        )


@feeds_app.command("enable")
def feeds_enable(
    refs: Annotated[
        list[str],
        typer.Argument(metavar="id|url", help="Feeds by URL (current or subscribed) or id."),
    ],
) -> None:
    """Turn feeds back on after the 30-day rule disabled them or a 410 marked them gone:
    each is due at once, its error count cleared. (feeds.yaml's `enabled: false` wins
    again at the next sync: set it to true there instead.)"""
    with open_app() as a:
        entries = _file_entries(a)
        for ref in refs:
            found = resolve_feed(a, ref)
            feed = a.enable_feed(found.id if found is not None else ref)
            out.print(f"enabled: {display_url(feed.url)}", markup=False, highlight=False)
            listed = entries.get(feed_key(feed.url))
            if listed is not None and not listed.enabled:
                err.print(
                    f"note: {a.settings.feeds_path} gives it enabled: false, so the next"
                    " sync (poll, daemon, feeds list) turns it off again: set it to true"
                    " there",
                    markup=False,
                    highlight=False,
                )


def _file_entries(a: App) -> dict[str, FeedSource]:
    """The feeds file's entries by ``feed_key``, which the next sync applies again:
    `feeds remove` and `feeds enable` were undone by them without a word. Empty when
    there is no file or it cannot be read (the next sync reports that)."""
    path = a.settings.feeds_path
    try:
        sources = load_feed_list(path).sources if path.exists() else ()
    except ConfigError:
        return {}
    return {feed_key(s.url): s for s in sources}


@feeds_app.command("import")
def feeds_import(path: Annotated[Path, typer.Argument(help="An OPML or feeds.yaml file.")]) -> None:
    """Add or update feeds from an OPML or feeds.yaml file.

    OPML (Feedly, Inoreader, NewsBlur, Miniflux, FreshRSS): a feed's folders become its
    topics hint; a feed already here keeps its interval and enabled setting, and its
    name and topics when the file gives none. feeds.yaml sets all of a feed's settings.
    A feed already here under another spelling of its URL (http/https, host case, a
    trailing slash) is updated, not added twice. Prints what was added, updated, left
    unchanged and skipped, with each skipped entry and why.
    """
    listing = load_feed_list(path)
    with open_app() as a:
        added, changed = a.import_feeds(listing)
    for why in listing.skipped:
        err.print(f"[yellow]skipped[/] {esc(why)}", highlight=False)
    same = len(listing.sources) - added - changed
    out.print(
        f"{added} added, {changed} updated, {same} unchanged, {len(listing.skipped)} skipped",
        highlight=False,
    )


@feeds_app.command("export")
def feeds_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write every feed as OPML 2.0 (topics as folders, the site as htmlUrl, an interval
    and enabled: false as aggregator: attributes); credentials in a feed URL are kept, as
    this is your own subscription list."""
    from ..feedlist import to_opml

    with open_app() as a:
        # synced first, as `feeds list` is: a feeds.yaml not yet polled exported nothing
        sync_feeds_file(a)
        feeds = a.feeds()
    sources = [
        FeedSource(
            url=f.url,
            name=f.name or f.title,
            topics=f.topics,
            interval=f.interval,
            enabled=f.enabled,
        )
        for f in feeds
    ]
    text = to_opml(sources, sites={f.url: f.site for f in feeds if f.site})
    _write(text, output)
