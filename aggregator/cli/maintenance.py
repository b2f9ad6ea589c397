"""Maintenance commands: ``prune`` (story retention) and ``extract`` (article text for
stories stored without it)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import describe_span, parse_span
from ..errors import ConfigError
from .common import PollFmt, app, emit_json, open_app, out, settings


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
        f"{verb} {deleted:,} stories first seen and dated over {describe_span(span)} ago "
        f"(what feeds still list, each feed's newest {keep_n:,} and every labelled story "
        "kept); "
        f"{remaining:,} stories {'now ' if not dry_run else ''}stored"
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
    whose page failed. Their topics are recomputed over the full text."""
    if limit < 1:
        raise ConfigError("--limit takes a positive number")
    with open_app() as a:
        done = a.extract_waiting(limit, failed=failed)
    if fmt == PollFmt.json:
        emit_json({"tried": done.tried, "extracted": done.extracted, "failed": done.failed})
        return
    if not done.tried:
        out.print("No stories are waiting for their article's text.")
        return
    kept = done.tried - done.extracted - done.failed
    out.print(
        f"extracted {done.extracted} of {done.tried} stories; {done.failed} failed "
        f"(`show ID` says why), {kept} kept their feed's longer text"
    )
