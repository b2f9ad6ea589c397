"""Command line: argv -> App call -> table / JSON / CSV -> exit code.

Thin by design: every command builds Settings, opens the App, calls one method and
renders. Start-up stays light: scikit-learn, trafilatura, feedparser and httpx are only
imported by the commands that need them. Errors from the package become one line on
stderr (``--traceback`` shows the rest); exit codes: 0 ok, 1 the work failed (e.g. every
feed failed), 2 bad input or configuration, 130 / 143 ``poll`` stopped by SIGINT / SIGTERM
(what it polled is kept and printed; the rest is handed back for the next run).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape as esc

from ..errors import AggregatorError, ConfigError, NotFoundError
from . import commands, learning, maintenance  # noqa: F401  (importing registers the commands)
from .common import app, err, state

__all__ = ["app", "main"]


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
