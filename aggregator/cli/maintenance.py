"""Maintenance commands: ``prune`` (story retention), ``extract`` (article text for
stories stored without it) and ``status`` (the install at a glance)."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape as esc
from rich.table import Table
from rich.text import Text

from ..config import describe_span, parse_span
from ..errors import ConfigError, StoreUnavailableError
from ..types import CATEGORIES_ONLY
from . import lists
from .common import (
    MAX_SQL_INTEGER,
    PollFmt,
    _ago,
    _dt,
    app,
    counted,
    emit_json,
    err,
    open_app,
    out,
    settings,
)

if TYPE_CHECKING:
    from ..app import ExtractionTally
    from ..status import Status
    from ..store.summary import StoreSummary


@app.command()
def prune(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Delete stories first seen and dated longer ago than this (180d, 26w); "
            "default: AGGREGATOR_RETENTION.",
        ),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option(
            "--keep",
            help="Keep each feed's newest N stories whatever their age "
            "(default: AGGREGATOR_KEEP_PER_FEED, 200).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    vacuum: Annotated[
        bool,
        typer.Option(
            "--vacuum",
            help="Then give the space back to the file system (SQLite; takes an exclusive "
            "lock while it runs).",
        ),
    ] = False,
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
) -> None:
    """Delete old stories. What a feed's latest document still lists stays (deleted, it
    would come back as new), as do each feed's newest stories and every story you
    labelled: labels are kept until you withdraw them, and training reads them."""
    span = parse_span(older_than, name="--older-than") if older_than else settings().retention
    if span is None:
        raise ConfigError(
            "say how old a story must be to go: --older-than 180d, or set AGGREGATOR_RETENTION"
        )
    with open_app() as a:
        keep_n = a.settings.keep_per_feed if keep is None else keep
        deleted = a.prune(span, keep_per_feed=keep_n, dry_run=dry_run)
        remaining = a.story_count()
        # PostgreSQL's autovacuum gives the space back itself; only SQLite is compacted.
        vacuumed = vacuum and not dry_run and a.settings.sqlite_path is not None
        if vacuumed:
            a.compact()
    if fmt == PollFmt.json:
        emit_json(
            {
                "deleted": 0 if dry_run else deleted,
                "would_delete": deleted if dry_run else None,
                "remaining": remaining,
                "older_than_days": round(span.total_seconds() / 86400, 3),
                "kept_per_feed": keep_n,
                "vacuumed": vacuumed,
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    out.print(
        f"{verb} {counted(deleted, 'story', 'stories')} first seen and dated over"
        f" {describe_span(span)} ago "
        f"(what feeds still list, each feed's newest {keep_n:,} and every labelled story "
        "kept); "
        f"{counted(remaining, 'story', 'stories')} {'now ' if not dry_run else ''}stored"
        + ("; database compacted" if vacuumed else "")
        + (
            "; PostgreSQL's autovacuum reclaims the space"
            if vacuum and not dry_run and not vacuumed
            else ""
        ),
        highlight=False,
    )


@app.command()
def extract(
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="At most N stories, newest first.")
    ] = 500,
    failed: Annotated[
        bool,
        typer.Option("--failed", help="Also try again the stories whose page failed before."),
    ] = False,
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
) -> None:
    """Fetch and extract the article pages of stored stories still waiting for them:
    those a poll stored without extraction (`poll --no-extract`), and with --failed those
    whose page failed. Their topics are recomputed over the full text.

    SIGINT (Ctrl-C) or SIGTERM stops it without waiting for the pages in flight: those
    extracted are stored and reported, the rest still wait, and the exit status is 128 +
    the signal's number (130, 143).
    """
    from ..daemon import Stopper

    if limit < 1:
        raise ConfigError("--limit takes a positive number")
    if limit > MAX_SQL_INTEGER:
        # as `stories --limit`: past a 64-bit LIMIT, a traceback from SQLite's driver,
        # "bigint out of range" (exit 1, as if the store had failed) from PostgreSQL's
        raise ConfigError(f"--limit {limit} is too large")
    # The handlers cover the App's closing too: a second signal must not kill it there.
    with Stopper().installed() as stopper:
        try:
            with open_app() as a:
                done = a.extract_waiting(limit, failed=failed, stop=stopper.event)
        except StoreUnavailableError as e:
            if not stopper.stopped:  # the database's trouble, not the signal's
                raise
            err.print(f"[yellow]extract interrupted:[/] {esc(str(e))}", highlight=False)
            raise typer.Exit(128 + (stopper.signal or signal.SIGINT)) from None
    _report_extraction(done, fmt)
    if stopper.stopped:
        # Ctrl-C ended it with no word (typer's exit 130), what it had extracted lost
        err.print(
            "[yellow]extract interrupted:[/] the pages not extracted still wait",
            highlight=False,
        )
        raise typer.Exit(128 + (stopper.signal or signal.SIGINT))


def _report_extraction(done: ExtractionTally, fmt: PollFmt) -> None:
    if fmt == PollFmt.json:
        # "left" as the table's "still wait": taken up or passed over, not tried
        emit_json(
            {
                "tried": done.tried,
                "extracted": done.extracted,
                "failed": done.failed,
                "left": done.left,
            }
        )
        return
    if not done.tried and not done.left:
        out.print("No stories are waiting for their article's text.")
        return
    kept = done.tried - done.extracted - done.failed
    left = (
        f"; {done.left:,} still {'waits (its' if done.left == 1 else 'wait (their'} site did"
        " not answer or time ran out: run it again)"
        if done.left
        else ""
    )
    out.print(
        f"extracted {done.extracted:,} of {counted(done.tried, 'story', 'stories')};"
        f" {done.failed:,} failed (`show ID` says why), {kept:,} kept"
        f" {'its' if kept == 1 else 'their'} feed's longer text{left}"
    )


@app.command()
def status(
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
) -> None:
    """The install at a glance: the database, feeds by state and what is due, who is
    polling, stories and their articles, your labels, and the model in use with its
    cross-validated scores."""
    with open_app() as a:
        st = a.status()
        now = a.now()
    if fmt == PollFmt.json:
        emit_json(_status_json(st))
        return
    s, m = st.store, st.model
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    size = f", {_size(s.size_bytes)}" if s.size_bytes is not None else ""
    backend = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(s.backend, s.backend)
    t.add_row("database", Text(f"{backend}, schema {s.schema_version}{size}: {st.database}"))
    enabled = sum(n for k, n in s.feeds.items() if k != "off")
    states = [
        f"{s.feeds[k]:,} {label}"
        for k, label in (
            ("active", "active"),
            ("error", "failing"),
            ("gone", "gone (410)"),
            ("disabled", "disabled (30 days of errors)"),
        )
        if s.feeds.get(k)
    ]
    off = f"; {s.feeds['off']:,} off in feeds.yaml" if s.feeds.get("off") else ""
    # the feeds that need a look: where to see which, and why
    look = " ".join(f"--status {k}" for k in ("error", "gone", "disabled") if s.feeds.get(k))
    hint = f" (`aggregator feeds list {look}`, then `feeds show ID`)" if look else ""
    t.add_row("feeds", f"{enabled:,}: " + (", ".join(states) or "none") + off + hint)
    polling = f"{s.due_now:,} due now; last check {_ago(s.last_check, now)}"
    if s.leases:
        held = ", ".join(f"{owner} ({n:,})" for owner, n in sorted(s.leases.items()))
        polling += f"; polling now: {held}"
    t.add_row("polling", Text(polling))
    t.add_row("stories", _stories_line(s, None if m.error else m.version))
    x = s.extraction
    articles = (
        f"{x.get('ok', 0):,} extracted, {x.get('skipped', 0):,} with the feed's text, "
        f"{x.get('pending', 0):,} waiting, {x.get('failed', 0):,} failed"
    )
    if x.get("pending") or x.get("failed"):
        articles += " (`aggregator extract [--failed]`)"
    t.add_row("articles", articles)
    archived = f"; {s.archived_stories:,} archived from removed feeds" if s.archived_stories else ""
    labelled = counted(s.labelled_stories, "story", "stories")
    t.add_row("labels", f"{labelled} labelled by you{archived}")
    if s.reading_lists:
        lists = ", ".join(
            f"{name} read {_ago(at, now)}{_reads(s.reading_list_filters.get(name))}"
            for name, at in s.reading_lists.items()
        )
        t.add_row("reading", Text(f"{lists} (`stories --new --cursor NAME`)"))
    if m.error:
        model = f"{'yours' if m.yours else 'shipped'}: {m.error} ({m.path})"
    else:
        model = f"yours, trained {_ago(m.trained, now)}" if m.yours else "shipped"
        model += f", {m.version}"
        if m.micro_f1 is not None and m.macro_f1 is not None:
            on = counted(m.examples, "training example") if m.examples else "training examples"
            model += (
                f"; F1 on its own {on} (cross-validated): micro "
                f"{m.micro_f1:.3f}, macro {m.macro_f1:.3f}"
            )
        if (e := m.evaluated) is not None and (e.micro_f1 is None or e.macro_f1 is None):
            # data with no story in any topic (see `evaluate`): F1 is undefined
            model += f"; evaluated {_ago(e.at, now)} on {e.what}: off-topic stories only"
        elif e is not None:
            model += (
                f"; evaluated {_ago(e.at, now)} on {e.what}: micro F1 {e.micro_f1:.3f},"
                f" macro {e.macro_f1:.3f}"
            )
        else:
            model += "; `aggregator evaluate` measures it on your own labelled stories"
    t.add_row("model", Text(model))
    out.print(t)


def _stories_line(s: StoreSummary, model: str | None) -> str:
    """How many stories, how many new, and how many the model in use (``model``) has not
    tagged: stored with no model (feed categories only) or tagged by another one."""
    line = f"{s.stories:,}; {s.new_last_day:,} new in the last 24 hours"
    if model is None:
        return line
    untagged = (CATEGORIES_ONLY, "")  # stored with no model in use; a label withdrawn
    waiting = sum(s.tagged_by.get(v, 0) for v in untagged)
    other = sum(n for v, n in s.tagged_by.items() if v not in (model, *untagged))
    parts = []
    if waiting:
        parts.append(f"{waiting:,} not yet tagged by a model")
    if other:
        parts.append(f"{other:,} tagged by another model")
    if parts:
        line += f"; {' and '.join(parts)}: `aggregator train` tags them with this one"
    return line


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


def _status_json(st: Status) -> dict[str, Any]:
    s, m = st.store, st.model
    return {
        "database": {
            "backend": s.backend,
            "url": st.database,
            "schema_version": s.schema_version,
            "size_bytes": s.size_bytes,
        },
        "feeds": {
            "by_status": dict(sorted(s.feeds.items())),
            "due_now": s.due_now,
            "last_check": _dt(s.last_check),
            "leases": dict(sorted(s.leases.items())),
        },
        "stories": {
            "total": s.stories,
            "new_last_day": s.new_last_day,
            "extraction": dict(sorted(s.extraction.items())),
            "tagged_by": dict(sorted(s.tagged_by.items())),
        },
        "labels": {"stories": s.labelled_stories, "archived_stories": s.archived_stories},
        "reading_lists": {name: _dt(at) for name, at in s.reading_lists.items()},
        "reading_list_filters": {
            name: lists.read_filters(kept) for name, kept in s.reading_list_filters.items()
        },
        "model": {
            "path": str(m.path),
            "yours": m.yours,
            "version": m.version,
            "trained": _dt(m.trained) if m.yours else None,
            "cv_examples": m.examples,
            "cv_micro_f1": m.micro_f1,
            "cv_macro_f1": m.macro_f1,
            "evaluated": None
            if m.evaluated is None
            else {
                "at": _dt(m.evaluated.at),
                "data": m.evaluated.what,
                "micro_f1": m.evaluated.micro_f1,
                "macro_f1": m.evaluated.macro_f1,
            },
            "error": m.error,
        },
    }


def _reads(kept: str | None) -> str:
    """What a named reading list reads by, for ``status`` (`` (-t DNS)``)."""
    if kept is None:
        return ""
    filters = lists.read_filters(kept)
    return f" ({lists.shown(filters) if filters is not None else 'options unreadable'})"
