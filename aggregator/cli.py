"""Command line: argv -> App call -> table / JSON / CSV -> exit code.

Thin by design: every command builds Settings, opens the App, calls one method and
renders. Start-up stays light: scikit-learn, trafilatura, feedparser and httpx are only
imported by the commands that need them. Errors from the package become one line on
stderr (``--traceback`` shows the rest); exit codes: 0 ok, 1 the work failed (e.g. every
feed failed), 2 bad input or configuration.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape as esc
from rich.table import Table
from rich.text import Text

from .app import App, make_app
from .config import Settings, parse_when
from .errors import AggregatorError, ConfigError, NotFoundError
from .textutil import html_to_text, one_line
from .types import Document, Feed, Story, StoryQuery, UpdateResult

app = typer.Typer(
    name="aggregator",
    help="Fetch, extract, classify and query internet-industry news feeds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
feeds_app = typer.Typer(help="List, add, remove, import and export feeds.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")

out = Console(soft_wrap=False)
err = Console(stderr=True)


class Fmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


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
            "--data-dir", help="Data directory [env AGGREGATOR_DATA_DIR; default ./data]."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="SQLAlchemy URL [env AGGREGATOR_DATABASE_URL]."),
    ] = None,
    feeds: Annotated[
        Path | None,
        typer.Option(
            "--feeds", help="feeds.yaml or OPML file [env AGGREGATOR_FEEDS; default ./feeds.yaml]."
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


@contextmanager
def open_app(**overrides: Any) -> Iterator[App]:
    with make_app(settings(**overrides)) as a:
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


def story_json(s: Story) -> dict[str, Any]:
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
    }


def feed_json(f: Feed) -> dict[str, Any]:
    return {
        "url": f.url,
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


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def emit_csv(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    sys.stdout.write(buf.getvalue())


def topics_text(s: Story, limit: int = 4) -> str:
    return ", ".join(f"{t.topic} {t.score:.2f}" for t in s.topics[:limit]) or "—"


def stories_table(stories: Sequence[Story], title: str | None = None) -> Table:
    t = Table(title=title, show_lines=False, expand=False)
    t.add_column("id", justify="right", style="cyan", no_wrap=True)
    t.add_column("date", no_wrap=True)
    t.add_column("feed", max_width=22, no_wrap=True, overflow="ellipsis")
    t.add_column("title", max_width=60, overflow="fold")
    t.add_column("topics", max_width=48, overflow="fold", style="green")
    for s in stories:
        t.add_row(
            str(s.id),
            s.date.strftime("%Y-%m-%d %H:%M"),
            Text(s.feed_title or s.feed_url),
            Text(s.title),  # feed text is data, never rich markup ("[Webinar] …")
            topics_text(s),
        )
    return t


def build_query(
    topic: list[str] | None,
    feed: str | None,
    since: str | None,
    until: str | None,
    search: str | None,
    limit: int,
) -> StoryQuery:
    if limit < 0:
        raise ConfigError("--limit must be 0 (no limit) or more")
    return StoryQuery(
        topics=tuple(topic or ()),
        feed=feed,
        since=parse_when(since),
        until=parse_when(until),
        text=search,
        limit=None if limit == 0 else limit,
    )


TopicOpt = Annotated[
    list[str] | None,
    typer.Option("--topic", "-t", help="Only stories with this topic (repeat: all of them)."),
]
FeedOpt = Annotated[
    str | None,
    typer.Option("--feed", "-f", help="Only stories of feeds whose URL, name or title matches."),
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", "-s", help="Newer than: 7d, 24h, 30m, 2w or an ISO date.")
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Older than: same forms as --since.")]
SearchOpt = Annotated[
    str | None,
    typer.Option("--search", "-q", help="Full-text search over title, summary and text."),
]


# --- poll ----------------------------------------------------------------------------------


def _sync_feeds(a: App) -> None:
    path = a.settings.feeds_path
    if path.exists():
        a.sync_feeds(path)
    elif state.feeds is not None:
        raise ConfigError(f"feeds file not found: {path}")


def run_poll(
    a: App, *, all_feeds: bool, extract: bool, quiet: bool, as_json: bool
) -> list[UpdateResult]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    results: list[UpdateResult] = []
    show_progress = not quiet and not as_json and err.is_terminal
    total = sum(1 for f in a.feeds() if f.enabled and f.status in ("active", "error"))
    with Progress(
        TextColumn("[bold]polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[new]} new · {task.fields[errors]} errors"),
        TimeElapsedColumn(),
        console=err,
        disable=not show_progress,
        transient=True,
    ) as progress:
        task = progress.add_task("poll", total=total or None, new=0, errors=0)
        new = errors = 0
        for r in a.update_due(all_feeds=all_feeds, extract=extract):
            results.append(r)
            new += r.new
            errors += r.status == "error"
            progress.update(task, advance=1, new=new, errors=errors)
    return results


def print_poll_summary(results: Sequence[UpdateResult]) -> None:
    t = Table(title="Feeds polled", expand=False)
    t.add_column("feed", max_width=40, overflow="ellipsis", no_wrap=True)
    t.add_column("status")
    t.add_column("new", justify="right")
    t.add_column("upd", justify="right")
    t.add_column("text", justify="right")
    t.add_column("ms", justify="right")
    t.add_column("error / next check", max_width=60, overflow="fold")
    for r in sorted(results, key=lambda r: (r.status != "error", (r.title or r.url).lower())):
        style = {"error": "red", "ok": "green"}.get(r.status, "")
        t.add_row(
            Text(r.title or r.url),
            f"[{style}]{r.status}[/]" if style else r.status,
            str(r.new),
            str(r.updated),
            str(r.extracted),
            str(r.ms),
            Text(r.error or f"next {_ago(r.next_check)}"),
        )
    out.print(t)
    failed = [r for r in results if r.status == "error"]
    new = sum(r.new for r in results)
    out.print(f"{len(results)} feeds, {new} new stories, {len(failed)} failed")


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
        int, typer.Option("--show", help="Then list the N newest tagged stories (0: none).")
    ] = 0,
) -> None:
    """Run one update cycle over due feeds (all feeds with --all) and exit.

    Exits 1 only when every polled feed failed; each failure is reported on its own line.
    """
    with open_app() as a:
        _sync_feeds(a)
        results = run_poll(
            a, all_feeds=all_feeds, extract=not no_extract, quiet=quiet, as_json=fmt == PollFmt.json
        )
        if fmt == PollFmt.json:
            emit_json(
                [
                    {
                        "url": r.url,
                        "title": r.title,
                        "status": r.status,
                        "new": r.new,
                        "updated": r.updated,
                        "extracted": r.extracted,
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
                    err.print(f"[red]failed[/] {esc(r.url)}: {esc(r.error or '')}", highlight=False)
        else:
            if not results:
                out.print("No feeds are due. Use --all to poll every feed now.")
            else:
                print_poll_summary(results)
            if show:
                stories = a.stories(StoryQuery(limit=show))
                if stories:
                    out.print(stories_table(stories, title=f"Newest {len(stories)} stories"))
        if results and all(r.status == "error" for r in results):
            raise typer.Exit(1)


# --- stories / show / topics ------------------------------------------------------------------


@app.command()
def stories(
    topic: TopicOpt = None,
    feed: FeedOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    search: SearchOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="At most N stories; 0 means no limit.")
    ] = 50,
    fmt: Annotated[Fmt, typer.Option("--format", help="table, json or csv.")] = Fmt.table,
) -> None:
    """Query stored stories, newest first, one per cluster of duplicates."""
    q = build_query(topic, feed, since, until, search, limit)
    with open_app() as a:
        found = a.stories(q)
    if fmt == Fmt.json:
        emit_json([story_json(s) for s in found])
    elif fmt == Fmt.csv:
        rows = [
            {**story_json(s), "topics": ";".join(f"{t.topic}:{t.score:.3f}" for t in s.topics)}
            for s in found
        ]
        emit_csv(
            rows, ["id", "published", "first_seen", "feed", "feed_title", "title", "link", "topics"]
        )
    elif not found:
        out.print("No stories match.")
    else:
        out.print(stories_table(found))


@app.command()
def show(
    story_id: Annotated[int, typer.Argument(help="Story id (see `aggregator stories`).")],
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
) -> None:
    """Show one story: metadata, topics with their source, text, and other sources."""
    with open_app() as a:
        s = a.story(story_id)
        others = a.also_covered(s)
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
            also_covered_by=[{"id": o.id, "feed": o.feed_url, "link": o.link} for o in others],
        )
        emit_json(data)
        return
    out.print(f"[bold]{esc(s.title)}[/]", highlight=False)
    out.print(
        f"[cyan]#{s.id}[/] · {esc(s.feed_title or s.feed_url)} · {s.date:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    if s.link:
        out.print(s.link, highlight=False, markup=False)
    if s.author:
        out.print(f"by {s.author}", highlight=False, markup=False)
    if s.categories:
        out.print("feed categories: " + ", ".join(s.categories), highlight=False, markup=False)
    out.print(
        "topics: "
        + (", ".join(f"{t.topic} {t.score:.2f} ({t.source})" for t in s.topics) or "none")
    )
    summary = html_to_text(s.summary or "")
    if summary:
        out.print("\n" + summary, highlight=False, markup=False)
    status = s.extraction_status + (f": {s.extraction_error}" if s.extraction_error else "")
    out.print(f"\n[dim]full text: {esc(status)}[/]")
    if s.full_text:
        out.print(one_line(s.full_text, 1200), highlight=False, markup=False)
    if others:
        out.print("\nalso covered by:")
        for o in others:
            line = f"  #{o.id} {o.feed_title or o.feed_url} {o.link or ''}"
            out.print(line, highlight=False, markup=False)


@app.command()
def topics(
    fmt: Annotated[Fmt, typer.Option("--format", help="table, json or csv.")] = Fmt.table,
) -> None:
    """List the taxonomy's topics with how many stories carry each."""
    with open_app() as a:
        infos = a.topics()
    rows = [{"topic": t.name, "stories": t.stories, "description": t.description} for t in infos]
    if fmt == Fmt.json:
        emit_json(rows)
    elif fmt == Fmt.csv:
        emit_csv(rows, ["topic", "stories", "description"])
    else:
        t = Table(expand=False)
        t.add_column("topic", style="green")
        t.add_column("stories", justify="right")
        t.add_column("description", max_width=80, overflow="fold")
        for r in rows:
            t.add_row(str(r["topic"]), str(r["stories"]), str(r["description"] or ""))
        out.print(t)


# --- feeds ---------------------------------------------------------------------------------


@feeds_app.command("list")
def feeds_list(
    fmt: Annotated[Fmt, typer.Option("--format", help="table, json or csv.")] = Fmt.table,
) -> None:
    """Every feed with its status, last success, errors and next check."""
    with open_app() as a:
        if a.settings.feeds_path.exists():
            a.sync_feeds()
        feeds = a.feeds()
    rows = [feed_json(f) for f in feeds]
    if fmt == Fmt.json:
        emit_json(rows)
        return
    if fmt == Fmt.csv:
        emit_csv(rows, list(rows[0]) if rows else ["url"])
        return
    t = Table(expand=False)
    t.add_column("feed", max_width=36, overflow="ellipsis", no_wrap=True)
    t.add_column("status")
    t.add_column("stories", justify="right")
    t.add_column("last ok", no_wrap=True)
    t.add_column("errors", justify="right")
    t.add_column("next check", no_wrap=True)
    t.add_column("last error", max_width=50, overflow="fold")
    now = datetime.now(UTC)
    for f in feeds:
        style = {"active": "green", "error": "yellow", "gone": "red", "disabled": "dim"}.get(
            f.status, ""
        )
        t.add_row(
            Text(f.title or f.name or f.url),
            f"[{style}]{f.status}[/]",
            str(f.stories),
            _ago(f.last_success, now),
            str(f.error_count),
            _ago(f.next_check, now) if f.status in ("active", "error") else "—",
            Text(f.last_error or ""),
        )
    out.print(t)


@feeds_app.command("add")
def feeds_add(
    urls: Annotated[
        list[str], typer.Argument(help="Feed URLs, or site URLs whose page links to a feed.")
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
                err.print(f"[red]not added[/] {esc(url)}: {esc(str(e))}", highlight=False)
                failed += 1
                continue
            what = "added" if added.created else "already present"
            via = f" (found on {added.discovered_from})" if added.discovered_from else ""
            out.print(f"{what}: {added.feed.url}{via}", highlight=False)
    if failed == len(urls):
        raise typer.Exit(2)


@feeds_app.command("remove")
def feeds_remove(
    url: Annotated[str, typer.Argument(help="The feed's URL as `feeds list` shows it.")],
) -> None:
    """Remove a feed and its stories."""
    with open_app() as a:
        a.remove_feed(url)
    out.print(f"removed: {url}", highlight=False)


@feeds_app.command("import")
def feeds_import(path: Annotated[Path, typer.Argument(help="An OPML or feeds.yaml file.")]) -> None:
    """Add or update feeds from an OPML or feeds.yaml file."""
    with open_app() as a:
        added, changed = a.sync_feeds(path)
    out.print(f"{added} added, {changed} updated")


@feeds_app.command("export")
def feeds_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write every feed as OPML 2.0."""
    from .config import to_opml
    from .types import FeedSource

    with open_app() as a:
        text = to_opml([FeedSource(url=f.url, name=f.name or f.title) for f in a.feeds()])
    _write(text, output)


# --- export / serve / daemon ------------------------------------------------------------------


def _write(text: str, output: Path | None) -> None:
    if output is None or str(output) == "-":
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    err.print(f"wrote {output}", highlight=False)


@app.command()
def export(
    fmt: Annotated[
        ExportFmt, typer.Option("--format", help="atom, rss or json (JSON Feed 1.1).")
    ] = ExportFmt.atom,
    topic: TopicOpt = None,
    feed: FeedOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    search: SearchOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="At most N stories; 0 means no limit.")
    ] = 100,
    title: Annotated[str | None, typer.Option("--title", help="The merged feed's title.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write a merged, deduplicated feed of the matching stories."""
    q = build_query(topic, feed, since, until, search, limit)
    with open_app() as a:
        text = a.export(q, fmt.value, title=title)
    _write(text, output)


@app.command()
def daemon(
    no_extract: Annotated[
        bool, typer.Option("--no-extract", help="Do not fetch article pages.")
    ] = False,
    max_sleep: Annotated[
        float, typer.Option("--max-sleep", help="Wake at least this often (seconds).")
    ] = 300.0,
) -> None:
    """Poll due feeds forever; stop cleanly on SIGTERM / SIGINT after the work in flight."""
    from .daemon import run_daemon

    with open_app() as a:
        _sync_feeds(a)
        run_daemon(a, extract=not no_extract, max_sleep=max_sleep)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port).")] = 8080,
) -> None:
    """Serve merged feeds over HTTP: /feed.atom, /feed.rss, /feed.json (?topic=&feed=&q=&since=)."""
    from .serve import serve_forever

    with open_app() as a:
        serve_forever(a, host=host, port=port, announce=lambda url: err.print(f"serving on {url}"))


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

    from .demo_server import DemoServer

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
        with make_app(s) as a:
            a.sync_feeds(feeds_file)
            results = run_poll(a, all_feeds=True, extract=True, quiet=False, as_json=False)
            print_poll_summary(results)
            found = a.stories(StoryQuery(limit=None))
            out.print(stories_table(found, title=f"{len(found)} stories, tagged"))
            text = a.export(StoryQuery(limit=None), "atom", title="aggregator demo — all topics")
        _write(text, output)


# --- the classifier: classify / label / train / evaluate / explain ---------------------------

CLASSIFY_BATCH = 2000


def _read_jsonl_docs(stream: Any, name: str) -> Iterator[tuple[int, Document | str]]:
    """(line number, Document) per good line, (line number, error) per bad one."""
    for n, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            yield n, f"{name} line {n}: not valid JSON ({e.msg} at column {e.colno})"
            continue
        if not isinstance(obj, dict):
            yield n, f"{name} line {n}: expected a JSON object"
            continue
        title, text = obj.get("title"), obj.get("text", obj.get("summary", ""))
        if not isinstance(title, str) and not isinstance(text, str):
            yield n, f"{name} line {n}: needs a string 'title' or 'text'"
            continue
        cats = obj.get("categories") or []
        yield (
            n,
            Document(
                id=str(obj.get("id", n)),
                title=title if isinstance(title, str) else "",
                summary=text if isinstance(text, str) else "",
                categories=tuple(str(c) for c in cats) if isinstance(cats, list) else (),
            ),
        )


@app.command()
def classify(
    file: Annotated[
        str | None, typer.Argument(help='JSON Lines file of {"id", "title", "text"}; - for stdin.')
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="Classify this one text instead.")
    ] = None,
) -> None:
    """Tag stories with topics: JSON Lines in, JSON Lines out ({"id", "topics": [...]}).

    A bad line is reported on stderr with its line number and skipped; every other line is
    still classified (exit status 1 if any line was bad)."""
    if (file is None) == (text is None):
        raise ConfigError("give a FILE (or - for stdin) or --text, not both")
    with open_app() as a:
        learning = a.learning
        if text is not None:
            (pred,) = learning.classify([Document(id="text", title="", summary=text)])
            _emit_prediction("text", pred)
            return
        assert file is not None
        stream = sys.stdin if file == "-" else _open_text(Path(file))
        bad = 0
        batch: list[Document] = []
        try:
            for _, item in _read_jsonl_docs(stream, "stdin" if file == "-" else file):
                if isinstance(item, str):
                    err.print(f"[red]error:[/] {esc(item)}", highlight=False)
                    bad += 1
                    continue
                batch.append(item)
                if len(batch) >= CLASSIFY_BATCH:
                    _classify_batch(learning, batch)
                    batch = []
            _classify_batch(learning, batch)
        finally:
            if stream is not sys.stdin:
                stream.close()
    if bad:
        raise typer.Exit(1)


def _open_text(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from e


def _classify_batch(learning: Any, batch: list[Document]) -> None:
    if batch:
        for doc, pred in zip(batch, learning.classify(batch), strict=True):
            _emit_prediction(doc.id, pred)
        sys.stdout.flush()


def _emit_prediction(doc_id: str, pred: Any) -> None:
    topics = [
        {"topic": t.topic, "score": round(t.score, 4), "source": t.source} for t in pred.topics
    ]
    sys.stdout.write(json.dumps({"id": doc_id, "topics": topics}, ensure_ascii=False) + "\n")


@app.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": False})
def label(
    story_id: Annotated[int | None, typer.Argument(help="Story id.")] = None,
    changes: Annotated[
        list[str] | None,
        typer.Argument(help="+Topic adds a topic, -Topic removes it (quote names with spaces)."),
    ] = None,
    suggest: Annotated[
        int | None,
        typer.Option(
            "--suggest", help="List the N stories whose labels would teach the model most."
        ),
    ] = None,
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
) -> None:
    """Record your judgement on a story's topics (kept forever, used by `train`), or ask
    which stories to label next."""
    with open_app() as a:
        if suggest is not None:
            ranked = a.learning.suggest(suggest)
            if fmt == PollFmt.json:
                emit_json([{**story_json(s), "uncertainty": round(u, 4)} for s, u in ranked])
                return
            t = stories_table(
                [s for s, _ in ranked], title="Label these next (most uncertain first)"
            )
            out.print(t)
            return
        if story_id is None or not changes:
            raise ConfigError("usage: aggregator label ID +Topic -Topic …  (or --suggest N)")
        pos: list[str] = []
        neg: list[str] = []
        for c in changes:
            if len(c) < 2 or c[0] not in "+-":
                raise ConfigError(f"{c!r}: write +Topic to add a topic or -Topic to remove it")
            (pos if c[0] == "+" else neg).append(c[1:].strip())
        story = a.label(story_id, pos, neg)
    if fmt == PollFmt.json:
        emit_json(story_json(story))
    else:
        out.print(f"#{story.id} {story.title}", highlight=False, markup=False)
        out.print(
            "topics: "
            + (", ".join(f"{t.topic} {t.score:.2f} ({t.source})" for t in story.topics) or "none")
        )


@app.command()
def train(
    no_retag: Annotated[
        bool, typer.Option("--no-retag", help="Do not re-tag stored stories.")
    ] = False,
) -> None:
    """Retrain the classifier from your labels, feed categories and the seed examples,
    then re-tag stored stories whose topics change."""
    with open_app() as a, err.status("training…"):
        outcome = a.learning.train(retag=not no_retag)
    r = outcome.report
    out.print(
        f"trained {r.model_version} on {r.examples} examples "
        f"({', '.join(f'{k} {v}' for k, v in sorted(r.by_source.items()))}) in {r.seconds:.1f} s"
    )
    out.print(
        f"cross-validated: micro-F1 {r.cv.micro_f1:.3f}, macro-F1 {r.cv.macro_f1:.3f}"
        + (f"; held out: micro-F1 {r.heldout.micro_f1:.3f}" if r.heldout else "")
    )
    if not no_retag:
        out.print(f"re-tagged {outcome.retagged} stories: {outcome.changed} changed topics")
    out.print(f"model written to {r.out_dir}", highlight=False)


@app.command()
def evaluate(
    gold: Annotated[
        Path | None, typer.Argument(help='Labelled JSON Lines: {"title", "text", "topics"}.')
    ] = None,
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
) -> None:
    """Per-topic precision / recall / F1 (micro and macro) against a labelled file, or by
    cross-validation over your labels; compared with the current model's report."""
    with open_app() as a:
        ev = a.learning.evaluate(gold)
    rep = ev.report
    if fmt == PollFmt.json:
        data = rep.to_dict()
        if ev.delta is not None:
            data["compared_with"] = {"what": ev.against, **ev.delta.to_dict()}
        emit_json(data)
        return
    t = Table(title=f"Evaluation: {rep.to_dict().get('source', '')}", expand=False)
    for col_name in ("topic", "precision", "recall", "F1", "support"):
        t.add_column(col_name, justify="left" if col_name == "topic" else "right")
    for m in rep.topics:
        if m.support or m.predicted:
            t.add_row(
                m.topic, f"{m.precision:.3f}", f"{m.recall:.3f}", f"{m.f1:.3f}", str(m.support)
            )
    t.add_row(
        "[bold]micro[/]",
        f"{rep.micro_precision:.3f}",
        f"{rep.micro_recall:.3f}",
        f"{rep.micro_f1:.3f}",
        "",
    )
    t.add_row(
        "[bold]macro[/]",
        f"{rep.macro_precision:.3f}",
        f"{rep.macro_recall:.3f}",
        f"{rep.macro_f1:.3f}",
        "",
    )
    out.print(t)
    if ev.delta is not None:
        d = ev.delta.to_dict()
        micro, macro = d.get("micro_f1", 0.0), d.get("macro_f1", 0.0)
        out.print(f"vs {ev.against}: micro-F1 {micro:+.3f}, macro-F1 {macro:+.3f}")


@app.command()
def explain(
    story_id: Annotated[int, typer.Argument(help="Story id.")],
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
) -> None:
    """Why a story got its topics: for each topic given or nearly given, its score,
    threshold and the terms that pushed it up or down."""
    with open_app() as a:
        story, exps = a.learning.explain(story_id)
    if fmt == PollFmt.json:
        emit_json(
            {
                "id": story.id,
                "title": story.title,
                "topics": [
                    {
                        "topic": e.topic,
                        "score": round(e.score, 4),
                        "threshold": round(e.threshold, 4),
                        "given": e.given,
                        "source": e.source,
                        "up": [[w, round(v, 4)] for w, v in e.terms_up],
                        "down": [[w, round(v, 4)] for w, v in e.terms_down],
                    }
                    for e in exps
                ],
            }
        )
        return
    out.print(f"[bold]#{story.id} {esc(story.title)}[/]", highlight=False)
    if not exps:
        out.print("No topic was given or came close.")
    for e in exps:
        mark = "[green]given[/]" if e.given else "[yellow]not given[/]"
        via = f" via {e.source}" if e.source else ""
        out.print(f"\n{e.topic}: score {e.score:.2f} / threshold {e.threshold:.2f} — {mark}{via}")
        if e.terms_up:
            out.print(
                "  up:   " + ", ".join(f"{w} (+{v:.2f})" for w, v in e.terms_up),
                highlight=False,
                markup=False,
            )
        if e.terms_down:
            out.print(
                "  down: " + ", ".join(f"{w} ({v:.2f})" for w, v in e.terms_down),
                highlight=False,
                markup=False,
            )


# --- entry point ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point. Usage errors are typer's (exit 2); package errors become one
    line on stderr (exit 2 for bad input, 1 for failed work)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="aggregator")
    except AggregatorError as e:
        if state.traceback:
            raise
        kind = "not found" if isinstance(e, NotFoundError) else "error"
        err.print(f"[red]{kind}:[/] {esc(str(e))}", highlight=False)
        raise SystemExit(2 if isinstance(e, ConfigError | NotFoundError) else 1) from None
