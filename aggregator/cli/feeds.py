"""`aggregator feeds`: list, add, remove, enable, import and export the subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.cells import cell_len, set_cell_size
from rich.console import Group
from rich.markup import escape as esc
from rich.table import Table
from rich.text import Text

from ..credentials import display_url
from ..errors import AggregatorError, ConfigError, NotFoundError
from ..feedlist import feed_key, load_feed_list, unwrap_feed_scheme
from ..types import FETCH_LOG_KEEP, Feed, FeedSource
from .common import (
    COMPACT_BELOW,
    Fmt,
    _ago,
    _dt,
    _write,
    counted,
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
    from .. import schedule
    from ..app import App
    from ..subscriptions import FeedHistory


class ListedStatus(StrEnum):
    """A feed's status as `feeds list` shows it: ``off`` for one feeds.yaml turns off."""

    active = "active"
    error = "error"
    gone = "gone"
    disabled = "disabled"
    off = "off"


def _listed_status(f: Feed) -> str:
    # A feed feeds.yaml turns off (`enabled: false`) is never polled: it was listed as
    # "active" and "due" (its status is the last poll's, kept for when it is on).
    return f.status if f.enabled else "off"


@feeds_app.command("list")
def feeds_list(
    fmt: Annotated[Fmt, typer.Option("--format", help="table, json or csv.")] = Fmt.table,
    status: Annotated[
        list[ListedStatus] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Only feeds with this status: active, error (failing), gone (410), disabled"
            " (30 days of errors) or off (in feeds.yaml); repeat for several.",
        ),
    ] = None,
) -> None:
    """Every feed with its id, status, last success, errors and next check (`feeds show
    ID` for one in full, with its latest fetches)."""
    with open_app() as a:
        sync_feeds_file(a)
        feeds = a.feeds()
    if status:
        wanted = {str(s) for s in status}
        feeds = [f for f in feeds if _listed_status(f) in wanted]
        if not feeds and fmt == Fmt.table:
            # the statuses as the list's column shows them: "No feed is error" was no sentence
            out.print(f"No feed has the status {' or '.join(sorted(wanted))}.")
            return
    rows = [_feed_row(f) for f in feeds]
    if fmt == Fmt.json:
        emit_json(rows)
        return
    if fmt == Fmt.csv:
        # the header names every column also when no feed is listed: it was "url" alone
        emit_csv((_csv_feed_row(r) for r in rows), list(FEED_COLUMNS))
        return
    now = datetime.now(UTC)
    if len(feeds) > PLAIN_ABOVE:
        out.print(feeds_lines(feeds, now, width=out.width), soft_wrap=True, end="")
    else:
        out.print(feeds_table(feeds, now, width=out.width))


#: Above this many feeds, `feeds list` prints plain aligned columns instead of a rich
#: table, which took ~1.3 ms a row to lay out (10,000 feeds: 19 s; plain: under 1 s).
PLAIN_ABOVE = 500


#: The keys of :func:`_feed_row`, in its order: `feeds list`'s JSON keys and CSV columns.
FEED_COLUMNS = (
    *("url", "name", "title", "status", "enabled", "last_error", "error_count"),
    *("last_check", "last_success", "next_check", "stories", "id", "topics", "interval"),
)


def _feed_row(f: Feed) -> dict[str, Any]:
    """``feed_json`` and, after its fields (CSV columns keep their places), what the user
    set or needs: the ``id`` that `feeds remove` and `feeds enable` take, the ``topics``
    hint and the ``interval`` in minutes (null: adaptive), as feeds.yaml gives them."""
    return {
        **feed_json(f),
        "id": f.id,
        "topics": list(f.topics),
        "interval": _minutes(f.interval),
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
    if compact and width is not None and _compact_width(feeds, now) > width:
        return _stacked_feeds_table(feeds, now)
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
        status, *state = _state_cells(f, now)
        style = _STATUS_STYLE.get(status, "")
        name = Text(_feed_name(f))
        cells = [f"[{style}]{status}[/]", *state]
        if compact:
            name = Text(f"#{f.id} ", style="dim") + name
            if f.last_error:
                name.append("\n" + for_terminal(f.last_error), style="yellow")
            t.add_row(name, *cells)
        else:
            t.add_row(str(f.id), name, *cells, Text(for_terminal(f.last_error or "")))
    return t


#: The headers of the columns `feeds_table` shows beside the feed, in their order.
_STATE_HEADS = ("status", "stories", "last ok", "errors", "next check")


def _state_cells(f: Feed, now: datetime) -> tuple[str, ...]:
    """A feed's status, stories, last success, errors and next check, as shown."""
    status = _listed_status(f)
    return (
        status,
        str(f.stories),
        _ago(f.last_success, now),
        str(f.error_count),
        _next_check(f.next_check, now) if status in ("active", "error") else "—",
    )


def _compact_width(feeds: list[Feed], now: datetime) -> int:
    """How wide the compact table of ``feeds`` is at the least: its feed column's 20,
    the other columns whole (they do not wrap: "in 2h", "active"), its 7 borders and
    12 columns of padding."""
    cells = [_STATE_HEADS, *(_state_cells(f, now) for f in feeds)]
    return 20 + sum(max(cell_len(row[i]) for row in cells) for i in range(5)) + 7 + 12


def _stacked_feeds_table(feeds: list[Feed], now: datetime) -> Table:
    """The feeds in one column, for a terminal too narrow for the compact table (under
    ~76 columns): each feed's id and name, then its state on one line that wraps between
    its parts, then its last error. The compact table was wider than such a terminal and
    rich cropped it at the right edge: "next check" lost, the story count "s…"."""
    t = Table(expand=False)
    t.add_column("feed / state / last error", overflow="fold")
    for f in feeds:
        status, stories, last_ok, errors, next_check = _state_cells(f, now)
        cell = Text(f"#{f.id} ", style="dim") + Text(_feed_name(f))
        cell.append("\n")
        cell.append(status, style=_STATUS_STYLE.get(status, ""))
        cell.append(
            f" · {counted(int(stories), 'story', 'stories', grouped=False)} · last ok {last_ok}"
            f" · {counted(int(errors), 'error', grouped=False)} · next check {next_check}"
        )
        if f.last_error:
            cell.append("\n" + for_terminal(f.last_error), style="yellow")
        t.add_row(cell)
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
        status = _listed_status(f)
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


@feeds_app.command("show")
def feeds_show(
    ref: Annotated[
        str,
        typer.Argument(metavar="id|url", help="The feed's id or URL (current or subscribed)."),
    ],
    log: Annotated[
        int,
        typer.Option(
            "--log",
            min=0,
            metavar="N",
            help=f"How many of the newest fetches to list (0: none; {FETCH_LOG_KEEP} are kept).",
        ),
    ] = 10,
    fmt: Annotated[
        # the choices it writes: its help offered csv too, which it then refused
        Fmt, typer.Option("--format", metavar="<table|json>", help="table or json.")
    ] = Fmt.table,
) -> None:
    """One feed in full, for finding out why it is quiet or failing: its state, polling
    interval and next check, Retry-After, a pending permanent redirect, the stories it
    posted lately, and its latest fetches with their outcome, HTTP status, time and
    error."""
    if fmt == Fmt.csv:
        raise ConfigError("feeds show: --format is table or json")
    with open_app() as a:
        sync_feeds_file(a)
        feed = resolve_feed(a, ref)
        if feed is None and ref.isascii() and ref.isdigit():  # an id no feed has (of any size)
            raise NotFoundError(f"no feed {ref}")
        if feed is None:  # the URL it was subscribed under, before a redirect moved it
            feed = a.feed(ref)
        # no more than are kept: a larger N passed a 64-bit LIMIT (SQLite's OverflowError)
        history = a.feed_history(feed, min(log, FETCH_LOG_KEEP))
        policy = a.policy
    now = datetime.now(UTC)
    if fmt == Fmt.json:
        emit_json(_feed_detail_json(feed, history, now))
        return
    out.print(_feed_detail(feed, history, policy, now, width=out.width))


def _minutes(v: timedelta | None) -> float | int | None:
    """A span in minutes for JSON: whole minutes as an integer (45, not 45.0)."""
    if v is None:
        return None
    m = v.total_seconds() / 60
    return int(m) if m.is_integer() else m


def _feed_detail_json(f: Feed, h: FeedHistory, now: datetime) -> dict[str, Any]:
    """`feeds list --format json`'s row of the feed and, after it, the rest of its state
    and its fetch log (README, "Scripting contract"); its lease only while it runs, as
    the table shows it (a lapsed one holds the feed from no poll)."""
    lease = f.polled_by(now)
    return {
        **_feed_row(f),
        "site": f.site,
        "subscribed_as": display_url(f.source_url) if f.source_url else None,
        "poll_interval": _minutes(f.poll_interval),
        "not_before": _dt(f.not_before),
        "lease": {"owner": lease[0], "until": _dt(lease[1])} if lease is not None else None,
        "first_error_at": _dt(f.first_error_at),
        "redirect": (
            {
                "url": display_url(f.redirect_url),
                "seen": f.redirect_count,
                "first_seen": _dt(f.redirect_first_seen),
            }
            if f.redirect_url
            else None
        ),
        "etag": f.etag,
        "last_modified": f.last_modified,
        "posted_7d": h.posted_7d,
        "posted_30d": h.posted_30d,
        "log": [
            {
                "at": _dt(e.at),
                "outcome": e.outcome,
                "http_status": e.http_status,
                "ms": e.ms,
                "new": e.new,
                "updated": e.updated,
                "error": e.error,
            }
            for e in h.log
        ],
    }


def _span(v: timedelta) -> str:
    """A polling interval for people: "5m", "2h 15m", "1d"."""
    minutes = round(v.total_seconds() / 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (mins, "m")) if n]
    return " ".join(parts) or "0m"


def _feed_detail(
    f: Feed, h: FeedHistory, policy: schedule.Policy, now: datetime, width: int | None = None
) -> Group:
    status = _listed_status(f)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")

    def fact(name: str, value: str | Text) -> None:
        facts.add_row(name, value if isinstance(value, Text) else Text(value))

    fact("url", for_terminal(display_url(f.url)))
    if f.source_url and f.source_url != f.url:
        fact("subscribed as", for_terminal(display_url(f.source_url)))
    if f.title:
        fact("title", for_terminal(f.title))
    if f.site:
        fact("site", for_terminal(f.site))
    if f.topics:
        fact("topics (hint)", for_terminal("; ".join(f.topics)))
    state = Text(status, style=_STATUS_STYLE.get(status, ""))
    if not f.enabled:
        state.append(" (enabled: false in the feeds file)", style="dim")
    elif f.status in ("gone", "disabled"):
        state.append(f" (`aggregator feeds enable {f.id}` turns it back on)", style="dim")
    fact("status", state)
    fact(
        "stories",
        f"{f.stories} stored; {h.posted_7d} dated in the last 7 days, {h.posted_30d} in 30",
    )
    bounds = f"between {_span(policy.min_interval)} and {_span(policy.max_interval)}"
    if f.interval is not None:
        interval = f"{_span(f.interval)}, set in the feeds file ({bounds})"
    elif f.poll_interval is not None:
        interval = f"{_span(f.poll_interval)}, adaptive ({bounds}, from the posting rate)"
    else:
        interval = f"adaptive ({bounds}); chosen after the first success"
    fact("interval", interval)
    fact("last check", _when(f.last_check, now))
    fact("last success", _when(f.last_success, now))
    if status in ("active", "error"):
        fact("next check", _when(f.next_check, now, due=True))
    if (held := f.held_until(now)) is not None:
        fact("not before", f"{_when(held, now)}: the server's Retry-After")
    if (lease := f.polled_by(now)) is not None:
        owner, ends = lease
        fact("polling now", f"{for_terminal(owner)} (its lease ends {_when(ends, now)})")
    if f.error_count or f.last_error:
        errors = Text(str(f.error_count))
        if f.first_error_at is not None and f.error_count:
            errors.append(f" in a row, since {_when(f.first_error_at, now)}")
        fact("errors", errors)
    if f.last_error:
        fact("last error", Text(for_terminal(f.last_error), style="yellow"))
    if f.redirect_url:
        fact("moving to", for_terminal(display_url(f.redirect_url)))
        fact(
            "redirect seen",
            f"{f.redirect_count} {'time' if f.redirect_count == 1 else 'times'} since"
            f" {_when(f.redirect_first_seen, now)}; a permanent redirect is adopted once"
            f" seen {policy.redirect_polls} times over at least"
            f" {_span(policy.redirect_span)}",
        )
    validators = [n for n, v in (("ETag", f.etag), ("Last-Modified", f.last_modified)) if v]
    fact(
        "validators", ", ".join(validators) if validators else "none (every check is a full fetch)"
    )
    title = Text(f"#{f.id} ", style="dim") + Text(_feed_name(f), style="bold")
    parts: list[Any] = [title, facts]
    if h.log:
        parts.append(_fetch_log(h, now, width))
    return Group(*parts)


#: The least width the fetch log gives its error column; with less, each fetch is
#: listed on lines of its own instead.
LOG_ERROR_MIN = 24


def _fetch_log(h: FeedHistory, now: datetime, width: int | None) -> Table:
    """The newest fetches as a table, or, where the table would not fit ``width`` with
    ``LOG_ERROR_MIN`` columns left for the errors, one fetch to a cell: when, then
    outcome, HTTP status, time and stories, then the error. At 80 columns the table
    gave a failing feed's error one cell, "…" for "HTTP 503 Service Unavailable", and
    under ~76 cut the numbers too ("HT…")."""
    title = "latest fetches, newest first"
    with_errors = any(e.error for e in h.log)
    heads = ("when", "outcome", "HTTP", "ms", "new", "upd")
    rows = [
        (
            _when(e.at, now),
            e.outcome,
            str(e.http_status) if e.http_status is not None else "—",
            str(e.ms),
            str(e.new),
            str(e.updated),
        )
        for e in h.log
    ]
    # each column whole with its padding of 2, the borders, and the errors' room
    need = sum(max(cell_len(r[i]) for r in [heads, *rows]) + 2 for i in range(6)) + 7
    need += LOG_ERROR_MIN + 3 if with_errors else 0
    styles = {"error": "red", "ok": "green"}
    if width is not None and need > width:
        stacked = Table(title=title, title_justify="left", expand=False)
        stacked.add_column("fetch", overflow="fold")
        for e, (when, outcome, http, ms, new, upd) in zip(h.log, rows, strict=True):
            cell = Text(when + "\n")
            cell.append(outcome, style=styles.get(outcome, ""))
            cell.append(f" · HTTP {http} · {ms} ms · {new} new · {upd} updated")
            if e.error:
                cell.append("\n" + for_terminal(e.error), style="yellow")
            stacked.add_row(cell)
        return stacked
    log = Table(title=title, title_justify="left", expand=False)
    for name in heads:
        right = name not in ("when", "outcome")
        log.add_column(name, justify="right" if right else "left", no_wrap=True)
    if with_errors:
        log.add_column("error")
    for e, (when, outcome, *numbers) in zip(h.log, rows, strict=True):
        log.add_row(
            when,
            Text(outcome, style=styles.get(outcome, "")),
            *numbers,
            *((Text(for_terminal(e.error or ""), style="yellow"),) if with_errors else ()),
        )
    return log


def _when(v: datetime | None, now: datetime, *, due: bool = False) -> str:
    """A time as the UTC minute and how far from now: "2026-11-30 16:05 (3h ago)"."""
    if v is None:
        return "never" if not due else "—"
    if due and v <= now:
        return "due now"
    return f"{v.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({_ago(v, now)})"


@feeds_app.command("add")
def feeds_add(
    urls: Annotated[
        list[str],
        typer.Argument(metavar="url", help="Feed URLs, or site URLs whose page links to a feed."),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Display name (with one URL only).")
    ] = None,
    no_discover: Annotated[
        bool, typer.Option("--no-discover", help="Add the URL as is, without fetching it.")
    ] = False,
) -> None:
    """Add feeds to the database (feeds.yaml is not rewritten).

    A URL that cannot be added is one line on stderr; the others are still added, and
    the exit status is 2 (as for that URL alone)."""
    if name is not None and len(urls) > 1:
        # it was dropped without a word, every feed added unnamed
        raise ConfigError("--name names one feed: give it with one URL")
    failed = 0
    with open_app() as a:
        for url in urls:
            try:
                added = a.add_feed(
                    url, name=name if len(urls) == 1 else None, discover=not no_discover
                )
            except AggregatorError as e:
                shown = display_url(url)
                # said once, below (also as the http(s) URL a feed: one stands for)
                as_http = display_url(unwrap_feed_scheme(url.strip()))
                why = str(e).removeprefix(f"cannot add {shown}: ")
                why = why.removeprefix(f"cannot add {as_http}: ")
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
            given = name if len(urls) == 1 else None
            if not added.created and given is not None and given != added.feed.name:
                # said "already present" and kept the old name: taken for renamed
                err.print(
                    f"note: --name {given!r} is not applied: it names a feed as it is"
                    " added; give it as `name:` in feeds.yaml instead",
                    markup=False,
                    highlight=False,
                )
            if not added.created and _password(url) not in (None, _password(added.feed.url)):
                # a new password is the same feed (feedlist.feed_key), kept as it was
                err.print(
                    "note: it is there with another password, which is kept: write the new"
                    " one in feeds.yaml (the next sync takes it)",
                    markup=False,
                    highlight=False,
                )
    if failed:
        # Any URL not added, as when it is the only one: with others added, a script
        # exited 0 and could not tell that one was left out.
        raise typer.Exit(2)


def _password(url: str) -> str | None:
    try:
        return urlsplit(unwrap_feed_scheme(url.strip())).password
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
        if feed is None and url.isascii() and url.isdigit():  # not "no feed with URL 99"
            raise NotFoundError(f"no feed {url}")
        removed = feed.url if feed is not None else url
        kept = a.remove_feed(removed)
        urls = (removed,) if feed is None else (feed.url, feed.source_url)
        listed = _listed(_file_entries(a), *urls)
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
    again at the next sync: set it to true there instead.) A ref no feed has is one
    `not found` line; the others are still enabled, and the exit status is 2."""
    missing = 0
    with open_app() as a:
        entries = _file_entries(a)
        for ref in refs:
            found = resolve_feed(a, ref)
            try:
                feed = a.enable_feed(found.id if found is not None else ref)
            except NotFoundError as e:
                # the rest are still enabled: the first ref no feed had ended the command,
                # the feeds named after it left off without a word
                err.print(f"[red]not found:[/] {esc(str(e))}", highlight=False)
                missing += 1
                continue
            out.print(f"enabled: {display_url(feed.url)}", markup=False, highlight=False)
            listed = _listed(entries, feed.url, feed.source_url)
            if listed is not None and not listed.enabled:
                err.print(
                    f"note: {a.settings.feeds_path} gives it enabled: false, so the next"
                    " sync (poll, daemon, feeds list) turns it off again: set it to true"
                    " there",
                    markup=False,
                    highlight=False,
                )
    if missing:
        raise typer.Exit(2)  # as for one ref alone: `not found` is exit 2


def _listed(entries: dict[str, FeedSource], *urls: str | None) -> FeedSource | None:
    """The file's entry for a feed known by ``urls``: its URL and the one it was
    subscribed under before a permanent redirect moved it, by which the file (still
    listing that one) finds it at the next sync."""
    return next((e for u in urls if u and (e := entries.get(feed_key(u))) is not None), None)


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
    topics hint; a feed already here keeps its interval and enabled setting (unless the
    file is an export of ours carrying them), and its name and topics when the file
    gives none. feeds.yaml sets all of a feed's settings.
    A feed already here under another spelling of its URL (http/https, host case, a
    trailing slash) is updated, not added twice. Prints what was added, updated, left
    unchanged and skipped, with each skipped entry and why.
    """
    listing = load_feed_list(path)
    with open_app() as a:
        added, changed = a.import_feeds(listing, origin=str(path))
    for why in listing.skipped:
        # the file's titles and URLs: XML allows C1 controls (a terminal's CSI) in them
        err.print(f"[yellow]skipped[/] {esc(for_terminal(why))}", highlight=False)
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
            name=f.name,
            topics=f.topics,
            interval=f.interval,
            enabled=f.enabled,
        )
        for f in feeds
    ]
    text = to_opml(
        sources,
        sites={f.url: f.site for f in feeds if f.site},
        titles={f.url: f.title for f in feeds if f.title},
    )
    _write(text, output)
