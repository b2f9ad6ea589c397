"""Shared plumbing of the command line: the typer app, settings from flags, the consoles,
and rendering helpers (tables, JSON, CSV) with stable field names."""

from __future__ import annotations

import csv
import errno
import io
import itertools
import json
import logging
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import Settings, feed_refs, parse_when
from ..credentials import display_url
from ..errors import ConfigError
from ..textutil import counted as counted  # re-exported: the commands import it from here
from ..types import Feed, Story, StoryQuery

if TYPE_CHECKING:
    from ..app import App

app = typer.Typer(
    name="aggregator",
    help="Fetch, extract, classify and query internet-industry news feeds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
feeds_app = typer.Typer(help="List, add, remove, import and export feeds.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")

# emoji=False: rich reads ":-1:" or ":100:" as emoji codes, also with markup off, and
# what is printed holds them ("127.0.0.1:-1: bind()", "feeds.yaml:100: feed #1", a
# story's text); none of ours is one.
out = Console(soft_wrap=False, emoji=False)
# soft_wrap: one message is one line, whatever the width (a pipe gets 80 columns), so
# scripts can grep stderr; the terminal wraps long lines itself.
err = Console(stderr=True, soft_wrap=True, emoji=False)


class Fmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class SortBy(StrEnum):
    date = "date"
    sources = "sources"
    relevance = "relevance"


class PollFmt(StrEnum):
    table = "table"
    json = "json"


class ExportFmt(StrEnum):
    atom = "atom"
    rss = "rss"
    json = "json"


class _State:
    traceback = False
    data_dir: Path | None = None
    database_url: str | None = None
    feeds: Path | None = None


state = _State()


@app.callback()
def _main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")
    ] = 0,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full traceback on errors.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Data directory (env AGGREGATOR_DATA_DIR; default ./data)."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="SQLAlchemy URL (env AGGREGATOR_DATABASE_URL)."),
    ] = None,
    feeds: Annotated[
        Path | None,
        typer.Option(
            "--feeds", help="feeds.yaml or OPML file (env AGGREGATOR_FEEDS; default ./feeds.yaml)."
        ),
    ] = None,
) -> None:
    state.traceback = traceback
    state.data_dir, state.database_url, state.feeds = data_dir, database_url, feeds
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def settings(**overrides: Any) -> Settings:
    return Settings.from_env(
        data_dir=state.data_dir,
        database_url=state.database_url,
        feeds_path=state.feeds,
        **overrides,
    )


def sync_feeds_file(a: App) -> None:
    """Sync the feeds file into the database (``poll``, ``daemon``, ``feeds list`` and
    ``feeds export``). The default ./feeds.yaml may be absent: the feeds are then those
    ``feeds add`` and ``feeds import`` stored. A file named by ``--feeds`` or
    ``AGGREGATOR_FEEDS`` must exist: a daemon given a mistyped path idled without a
    word."""
    path = a.settings.feeds_path
    if path.exists():
        a.sync_feeds(path)
    elif a.settings.feeds_given:
        raise ConfigError(f"feeds file not found: {path}")


def prepare_data_dir(s: Settings) -> None:
    """Create the directory the SQLite file goes in: one that cannot be made (a read-only
    parent, a file in the way, /proc/x) is one clear ConfigError, not an OSError traceback
    from deep in the store; so is a database path that is a directory or a file that is
    not SQLite's (the store said "unable to open database file", exit 1)."""
    path = s.sqlite_path
    if path is None:
        return
    where = path.parent
    try:
        where.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:
        raise ConfigError(f"cannot use {where} as the data directory: it is not a directory") from e
    except OSError as e:
        because = e.strerror or str(e)
        if e.filename and str(e.filename) != str(where):
            because += f" ({e.filename})"
        raise ConfigError(f"cannot create the data directory {where}: {because}") from e
    if path.is_dir():
        raise ConfigError(f"cannot use {path} as the database: it is a directory")
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        return  # a new database
    except OSError as e:
        raise ConfigError(f"cannot read the database {path}: {e.strerror or e}") from e
    if head and head != b"SQLite format 3\x00":  # SQLite's header; an empty file is new
        raise ConfigError(f"cannot use {path} as the database: it is not a SQLite file")


@contextmanager
def open_app(**overrides: Any) -> Iterator[App]:
    from ..app import make_app  # here: `--help` and `classify` need no store

    s = settings(**overrides)
    prepare_data_dir(s)
    with make_app(s) as a:
        yield a


# --- rendering helpers ---------------------------------------------------------------------


def _dt(v: datetime | None) -> str | None:
    return v.isoformat().replace("+00:00", "Z") if v else None


def _ago(v: datetime | None, now: datetime | None = None) -> str:
    if v is None:
        return "—"
    now = now or datetime.now(UTC)
    s = (now - v).total_seconds()
    future = s < 0
    s = abs(s)
    if s < 90:
        txt = f"{int(s)}s"
    elif s < 5400:
        txt = f"{int(s // 60)}m"
    elif s < 172800:
        txt = f"{int(s // 3600)}h"
    else:
        txt = f"{int(s // 86400)}d"
    return f"in {txt}" if future else f"{txt} ago"


def day(v: datetime, *, time: bool = False) -> str:
    """``v`` as YYYY-MM-DD (and HH:MM), the year in four digits: strftime's ``%Y`` gives
    the year 1 (Go's zero time, which Hugo dates a page without a date by) as "1"."""
    return f"{v.year:04d}-{v:%m-%d}" + (f" {v:%H:%M}" if time else "")


def story_json(s: Story) -> dict[str, Any]:
    """A story's stable fields (README, "Scripting contract"): new ones only ever go at
    the end. ``feed_id`` is `feeds list`'s ``id``: ``feed`` has no credentials while
    `feeds list` shows ``user:***``, so only the id joins the two for a private feed."""
    return {
        "id": s.id,
        "title": s.title,
        "link": s.link,
        "feed": s.feed_url,
        "feed_title": s.feed_title,
        "published": _dt(s.published),
        "first_seen": _dt(s.first_seen),
        "topics": [
            {"topic": t.topic, "score": round(t.score, 4), "source": t.source} for t in s.topics
        ],
        "feed_id": s.feed_id,
        "sources": s.sources,
    }


def feed_json(f: Feed) -> dict[str, Any]:
    return {
        "url": display_url(f.url),
        "name": f.name,
        "title": f.title,
        "status": f.status,
        "enabled": f.enabled,
        "last_error": f.last_error,
        "error_count": f.error_count,
        "last_check": _dt(f.last_check),
        "last_success": _dt(f.last_success),
        "next_check": _dt(f.next_check),
        "stories": f.stories,
    }


def stdout() -> TextIO:
    """``sys.stdout``; OSError (one ``error:`` line from ``cli.main``, exit 1) when the
    command was started with it closed (``>&-``): Python has none then, and every JSON
    answer died with an AttributeError traceback."""
    if sys.stdout is None:
        raise OSError(errno.EBADF, "cannot write the output: standard output is closed")
    return sys.stdout


def emit_json(data: Any) -> None:
    stdout().write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def emit_json_items(items: Iterable[Any], batch: int = 100) -> None:
    """What ``emit_json(list(items))`` writes, ``batch`` items at a time: each batch
    dumped as a list of its own and cut out of its brackets (an item's indentation
    depends on its depth alone), so memory holds one batch, not the whole list."""
    first = True
    it = iter(items)
    stream = stdout()
    while part := list(itertools.islice(it, batch)):
        text = json.dumps(part, ensure_ascii=False, indent=2)  # "[\n  {...}\n]"
        stream.write(("[" if first else ",") + text[1:-2])
        first = False
    stream.write("[]\n" if first else "\n]\n")


# What a terminal would act on rather than show: C0 and C1 controls (ESC starts colour,
# screen-clearing and title-setting sequences, and U+009B is a one-character CSI) and the
# bidi embedding/override/isolate controls, which reorder the rest of the line.
_TERMINAL_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Whole escape sequences go, not only their ESC: CSI (ESC [ or U+009B … final byte) and
# OSC (ESC ] … BEL or ESC \\), so "\x1b[31mred" shows as "red", not "[31mred".
_ESCAPE_SEQUENCE = re.compile(
    "(?:\x1b\\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b\\][^\x07\x1b]*(?:\x07|\x1b\\\\)?"
)


def for_terminal(text: str) -> str:
    """A story's text (data, not ours) made safe to print in a table: control
    characters dropped, line breaks and tabs as spaces."""
    return _TERMINAL_CONTROLS.sub("", _ESCAPE_SEQUENCE.sub("", " ".join(text.split())))


# Cells a spreadsheet reads as a formula (OWASP "CSV injection"); a feed's author chooses
# its titles, and `stories --format csv > stories.csv` is made to be opened in one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str | None) -> str | None:
    """``value`` for a CSV text cell: a leading ' before what a spreadsheet would run."""
    return "'" + value if value and value.startswith(_FORMULA_START) else value


def emit_csv(rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> None:
    """The rows as CSV under a header line, written as they come (``rows`` may be a
    generator: it is never held whole)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
        if buf.tell() >= 1 << 16:
            sys.stdout.write(buf.getvalue())
            buf.seek(0)
            buf.truncate()
    sys.stdout.write(buf.getvalue())


def _topic_entries(s: Story, limit: int) -> list[str]:
    entries = [f"{t.topic} {t.score:.2f}" for t in s.topics[:limit]]
    if len(s.topics) > limit:
        entries.append(f"+{len(s.topics) - limit} more")
    return entries


def _title_cell(s: Story) -> Text:
    """The story's title (data, never rich markup: "[Webinar] …"), and how many feeds
    carried it when more than its own."""
    cell = Text(for_terminal(s.title))
    if s.sources > 1:
        cell.append(f" · {s.sources} sources", style="dim")
    return cell


def topics_text(s: Story, limit: int = 4) -> str:
    """One topic per line ("Policy & Regulation 0.95"): a list wrapped across lines
    split names from their scores in narrow columns."""
    return "\n".join(_topic_entries(s, limit)) or "—"


def _packed(entries: list[str], width: int) -> str:
    """Whole "Topic 0.95" entries joined by " · ", a new line where the next would not
    fit: a name is never split from its score. Widths are the terminal's cells, not
    characters: a topic named in CJK takes two a character."""
    lines: list[str] = []
    for e in entries:
        if lines and cell_len(lines[-1]) + 3 + cell_len(e) <= width:
            lines[-1] += " · " + e
        else:
            lines.append(e)
    return "\n".join(lines)


#: Below this many columns the stories table puts each story's topics under its title.
COMPACT_BELOW = 100
#: The least the story column keeps beside a feed column: a few words of a title, and
#: a topic with its score ("Policy & Regulation 0.95") whole.
STORY_MIN = 24


def stories_table(
    stories: Sequence[Story], title: str | None = None, *, width: int | None = None
) -> Table:
    """The stories as a table for people. Given the console ``width``: under
    ``COMPACT_BELOW`` columns, four columns (dates without the time, topics on the
    lines under the title), so that titles keep ~40 columns of 80; where even that
    leaves the story less than ``STORY_MIN`` (under ~63 columns), three, the feed on the
    line under the title. Dates are UTC, as `show` and the JSON's are, and say so."""
    t = Table(title=title, show_lines=False, expand=False)
    t.add_column("id", justify="right", style="cyan", no_wrap=True)
    t.add_column("date (UTC)", no_wrap=True)
    if width is not None and width < COMPACT_BELOW:
        ids = max((len(str(s.id)) for s in stories), default=1)
        room = width - ids - 10 - 14 - 13  # the other columns, borders, padding
        # At 40 columns the id, date and feed columns left the story one column: each
        # title ran down the screen a letter per line.
        feed_column = room >= STORY_MIN
        if feed_column:
            t.add_column("feed", max_width=14, no_wrap=True, overflow="ellipsis")
        else:
            room = width - ids - 10 - 10
        t.add_column("story", overflow="fold")
        for s in stories:
            feed = for_terminal(s.feed_title or s.feed_url)
            cell = _title_cell(s)
            if not feed_column:
                cell.append("\n" + feed, style="dim")
            topics = _packed(_topic_entries(s, 4), max(room, 16)) or "—"
            cell.append("\n" + topics, style="green")
            beside = [Text(feed)] if feed_column else []
            t.add_row(str(s.id), day(s.date), *beside, cell)
        return t
    t.add_column("feed", max_width=18, no_wrap=True, overflow="ellipsis")
    # The title takes what the other columns leave: it is what people read.
    t.add_column("title", min_width=16, max_width=72, ratio=3, overflow="fold")
    t.add_column("topics", min_width=12, max_width=28, ratio=1, overflow="fold", style="green")
    for s in stories:
        t.add_row(
            str(s.id),
            day(s.date, time=True),
            Text(for_terminal(s.feed_title or s.feed_url)),
            _title_cell(s),
            Text(topics_text(s)),  # names from the user's taxonomy, not rich markup
        )
    return t


#: The largest integer SQLite and PostgreSQL (bigint) take as a parameter.
MAX_SQL_INTEGER = 2**63 - 1


def largest_story_id(s: Settings) -> int:
    """The largest id a story can have in the store ``s`` names: PostgreSQL's story.id
    is an INTEGER (32 bits), SQLite's a 64-bit rowid. A number past it is no story,
    and asking the database for it failed instead (an OverflowError traceback from
    SQLite's driver, "integer out of range" and exit 1 from PostgreSQL's)."""
    return 2**31 - 1 if (s.database_url or "").startswith("postgresql") else MAX_SQL_INTEGER


def build_query(
    topic: list[str] | None,
    feed: list[str] | None,
    since: str | None,
    until: str | None,
    search: str | None,
    limit: int,
    offset: int = 0,
    *,
    any_topic: list[str] | None = None,
    not_topic: list[str] | None = None,
    order: SortBy = SortBy.date,
) -> StoryQuery:
    if limit < 0:
        raise ConfigError("--limit must be 0 (no limit) or more")
    if limit > MAX_SQL_INTEGER:
        # Past a 64-bit LIMIT: a traceback from SQLite's driver, "bigint out of range"
        # (exit 1, as if the store had failed) from PostgreSQL's.
        raise ConfigError(f"--limit {limit} is too large: 0 means no limit")
    if offset < 0:
        raise ConfigError("--offset must be 0 or more")
    if offset > MAX_SQL_INTEGER:  # as for --limit: a 64-bit OFFSET at most
        raise ConfigError(f"--offset {offset} is too large")
    check_search(search)
    now = datetime.now(UTC)  # one "now" for both: --since 7d --until 7d is empty too
    after = parse_when(since, now=now, option="--since")
    before = parse_when(until, now=now, option="--until")
    if after is not None and before is not None and after >= before:
        # Newer than the one and older than the other: an empty range, which listed
        # nothing and exited 0 as if there were no such stories (--since 1d --until 3d
        # reads naturally as "from one to three days ago").
        raise ConfigError(f"--since {since} is not before --until {until}: no story can match")
    return StoryQuery(
        topics=tuple(topic or ()),
        any_topics=tuple(any_topic or ()),
        not_topics=tuple(not_topic or ()),
        feeds=feed_refs(feed or ()),
        since=after,
        until=before,
        text=search,
        limit=None if limit == 0 else limit,
        offset=offset,
        order=order.value,
    )


def check_search(search: str | None) -> None:
    """``--search`` given empty or blank is bad input (an unset shell variable, most
    likely), as ``-q '""'`` is: ``-q ""`` listed every story as if no search had been
    given. ``serve`` reads an empty ``q=`` (a form's empty field) as not given instead,
    as it reads its other parameters."""
    if search is not None and not search.strip():
        raise ConfigError("--search is empty: give the words to look for, or leave it out")


_SORT_HELP = (
    "date (newest first), sources (the stories most feeds carried first) or"
    " relevance (the best matches of -q first); ties newest first."
)
SortOpt = Annotated[SortBy, typer.Option("--sort", help=_SORT_HELP)]
#: ``stories --sort``: None when not given, for a reading list (``--new --cursor``) reads
#: by the options it keeps only when given none, and ``--sort date`` is one.
GivenSortOpt = Annotated[
    SortBy | None,
    typer.Option("--sort", help=_SORT_HELP.replace("first)", "first, the default)", 1)),
]
TopicOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--topic",
        "-t",
        metavar="TOPIC",
        help="Only stories with this topic (repeat: all of them).",
    ),
]
AnyTopicOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--any-topic",
        metavar="TOPIC",
        help="Only stories with at least one of these topics (repeat the option).",
    ),
]
NotTopicOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--not-topic",
        metavar="TOPIC",
        help="Leave out stories with this topic (repeat: with any of them).",
    ),
]
FeedOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--feed",
        "-f",
        metavar="FEED",
        help="Only stories of this feed: its id (see `feeds list`), its URL (http or https,"
        " any host case, credentials or none), or a part of its name, title or URL"
        " (case-insensitive). Repeat it: stories of any of them.",
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        "-s",
        help="Newer than: 7d, 24h, 30m, 2w or an ISO date (UTC unless it gives a zone).",
    ),
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Older than: same forms as --since.")]
SearchOpt = Annotated[
    str | None,
    typer.Option("--search", "-q", help="Full-text search over title, summary and text."),
]


def write_streamed(render: Callable[[Callable[[str], object]], None], output: Path | None) -> None:
    """``render(write)`` to stdout, or to ``output``: into a temporary file of its own
    beside it (:func:`_new_beside`), renamed into place once whole. A failure part way
    (the store, a full disk, Ctrl-C) removes the temporary file and leaves ``output`` as
    it was, whatever ``render`` had written. A named pipe or device (``-o /dev/stdout``)
    is written in place, and a symbolic link keeps pointing at the file it names, which
    is replaced. A directory is refused (ConfigError) before ``render`` runs; the
    directories made for the file are removed again when it fails."""
    if output is None or str(output) == "-":
        render(sys.stdout.write)
        return
    if _not_a_file(output):
        with output.open("w", encoding="utf-8") as f:
            render(f.write)
        err.print(f"wrote {output}", highlight=False)
        return
    target = _through_link(output)
    if target.name in ("", "..") or target.is_dir():
        # Refused before any work: ``-o .`` (or ``-o ""``, ``-o /``) raised ValueError
        # from the temporary name, and ``-o DIR`` rendered the whole document, then
        # failed to rename its temporary file over the directory, naming that file.
        raise ConfigError(f"-o {output} is a directory: name the file to write")
    made = _missing_dirs(target.parent)  # made for the file: gone again should it fail
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _new_beside(target)
    except OSError as e:
        _remove_dirs(made)
        # Named as given: the error named the temporary file beside it (``No such file or
        # directory: /sys/x.atom.5c1f….tmp``), or a file on the way as if it should not
        # exist (``File exists: notes``).
        raise _cannot_write(output, e) from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            render(f.write)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_dirs(made)
        raise
    err.print(f"wrote {output}", highlight=False)


def _missing_dirs(directory: Path) -> list[Path]:
    """``directory`` and those of its parents that are not there, deepest first."""
    missing: list[Path] = []
    while not os.path.lexists(directory) and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return missing


def _remove_dirs(made: list[Path]) -> None:
    """Removes the directories ``write_streamed`` made (deepest first), as long as they
    are empty: a failed export left them behind, though it wrote nothing in them."""
    for directory in made:
        try:
            directory.rmdir()
        except OSError:
            return


def _cannot_write(output: Path, e: OSError) -> OSError:
    """``e`` as the CLI reports it (its ``strerror`` alone: no file name, and no errno,
    which ``main`` would read as a full disk while writing stdout), naming ``output``."""
    reason = e.strerror or str(e)
    if isinstance(e, FileExistsError):  # mkdir met a file where a directory must be
        reason = f"{e.filename} is not a directory"
    return OSError(None, f"cannot write {output}: {reason}")


#: The most bytes of the output's name a temporary file beside it keeps (NAME_MAX is
#: 255 on the usual file systems; the temporary name adds 17).
_TMP_STEM = 200


def _new_beside(target: Path) -> tuple[int, Path]:
    """A new file beside ``target``, opened for writing, named ``TARGET.RANDOM.tmp``: two
    exports to one file at once each write their own (through one ``TARGET.tmp`` the
    second truncated the first's, renamed it into place half-written, and the first then
    failed). Created as ``open(target, "w")`` creates a file, 0o666 less the umask, and
    not with ``tempfile.mkstemp``'s 0o600: renamed into place, it is ``target`` as the
    user's umask makes their files (an export shared with a group stays readable).
    A name too long to take the 17 bytes more is cut to fit (at 200 bytes): the export
    to a valid name of 239 to 255 bytes failed with "File name too long"."""
    name = target.name
    if len(name.encode(errors="surrogateescape")) > _TMP_STEM:
        cut = name.encode(errors="surrogateescape")[:_TMP_STEM]
        name = cut.decode(errors="ignore")  # not half a UTF-8 character
    for _ in range(100):
        tmp = target.with_name(f"{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def _write(text: str, output: Path | None) -> None:
    """``text`` to stdout or ``output``, as ``write_streamed`` writes."""

    def render(write: Callable[[str], object]) -> None:
        write(text)

    write_streamed(render, output)


def _not_a_file(output: Path) -> bool:
    """Whether ``output`` is there and neither a regular file nor a directory: a named
    pipe, ``/dev/stdout``, a device. Those are written where they are; a temporary
    file renamed over one replaced the pipe a reader was waiting on (or, as root,
    ``/dev/stdout`` itself) with a regular file."""
    try:
        mode = output.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _through_link(output: Path) -> Path:
    """The file a symbolic link ``output`` points to, so that the rename replaces that
    file and leaves the link in place (it replaced the link with a copy)."""
    return output.resolve() if output.is_symlink() else output


def resolve_feed(a: App, ref: str) -> Feed | None:
    """The feed ``ref`` names: its id, its URL as stored or as `feeds list` shows it
    (the password as ``***``), or spelled another way (http/https, host case, a trailing
    slash), or the URL it was subscribed under before a permanent redirect moved it
    spelled so too, as the feeds file's sync finds it (the file's entry named no feed
    once respelled). None leaves the store to look further."""
    from ..feedlist import feed_key  # YAML and XML parsers: not on every command's path

    feeds = a.feeds()
    if ref.isascii() and ref.isdigit():  # str.isdigit also takes "６" or "²"
        return next((f for f in feeds if f.id == int(ref)), None)
    for f in feeds:
        if ref in (f.url, display_url(f.url)):
            return f
    key = feed_key(ref)
    found = next((f for f in feeds if feed_key(f.url) == key), None)
    if found is None:
        found = next((f for f in feeds if f.source_url and feed_key(f.source_url) == key), None)
    return found
