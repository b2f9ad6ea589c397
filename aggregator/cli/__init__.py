"""Command line: argv -> App call -> table / JSON / CSV -> exit code.

Thin by design: every command builds Settings, opens the App, calls one method and
renders. Start-up stays light: scikit-learn, trafilatura, feedparser and httpx are only
imported by the commands that need them. Errors from the package become one line on
stderr (``--traceback`` shows the rest); exit codes: 0 ok, 1 the work failed (e.g. every
feed failed), 2 bad input or configuration, 130 / 143 ``poll`` or ``extract`` stopped by
SIGINT / SIGTERM (what it polled or extracted is kept and printed; the rest is handed back
for the next run). A
closed pipe (``| head``) ends a command quietly with 1 (typer's handling); a full disk
while writing the output is one line, exit 1.
"""

from __future__ import annotations

import codecs
import errno
import functools
import inspect
import io
import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
import typer.main
from rich.markup import escape as esc

from ..errors import AggregatorError, ConfigError, NotFoundError
from . import commands, feeds, learning, maintenance  # noqa: F401  (importing registers the commands)
from .common import app, err, state

__all__ = ["app", "main"]


def _one_line_summaries(group: typer.Typer) -> None:
    """Give each command, as listed by ``--help``, the first paragraph of its docstring
    as one line that the table wraps: typer kept the docstring's own line breaks there,
    so the list of commands read as ragged fragments."""
    for info in group.registered_commands:
        if info.short_help is None and info.callback is not None:
            doc = info.help or inspect.getdoc(info.callback) or ""
            info.short_help = " ".join(doc.split("\n\n", 1)[0].split())
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _one_line_summaries(sub.typer_instance)


_one_line_summaries(app)


@functools.cache
def _click_command() -> Any:
    """The click command typer makes of ``app``, made once per process: calling ``app``
    makes it again each time (every command's signature and type hints read, ~40 ms),
    which a process calling :func:`main` more than once paid at every call (the test
    suite's in-process commands: ~6 % of its own CPU). With pretty exceptions off, the
    call is all that typer's ``__call__`` adds."""
    return typer.main.get_command(app)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point. Usage errors are typer's (exit 2); package errors become one
    line on stderr (exit 2 for bad input, 1 for failed work)."""
    try:
        _click_command()(args=list(argv) if argv is not None else None, prog_name="aggregator")
    except AggregatorError as e:
        if state.traceback:
            raise
        kind = "not found" if isinstance(e, NotFoundError) else "error"
        err.print(f"[red]{kind}:[/] {esc(str(e))}", highlight=False)
        raise SystemExit(2 if isinstance(e, ConfigError | NotFoundError) else 1) from None
    except UnicodeEncodeError as e:
        # stdout's encoding (a locale's ISO-8859-1 or ASCII) lacks a story's characters,
        # or rich's "…": a traceback, from any command printing such a story
        if state.traceback or not _is_stdout_encoding(e.encoding):
            raise
        _drop_stdout()
        what = ascii(e.object[e.start : e.end][:10])
        err.print(
            f"[red]error:[/] cannot write the output: its encoding ({esc(e.encoding)}) has no"
            f" {esc(what)}; use a UTF-8 locale, or set PYTHONIOENCODING=utf-8",
            highlight=False,
        )
        raise SystemExit(1) from None
    except OSError as e:
        # A full disk or a quota while writing the output (or any other OS error no
        # command turned into one of ours): one line, not a traceback. (A closed pipe,
        # EPIPE, typer has already turned into a quiet exit 1.)
        if state.traceback:
            raise
        if e.filename is None and e.errno in _FULL:
            _drop_stdout()
            what = f"cannot write the output: {e.strerror or e}"
        else:
            what = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        err.print(f"[red]error:[/] {esc(what)}", highlight=False)
        raise SystemExit(1) from None


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _is_stdout_encoding(name: str) -> bool:
    """Whether the codec ``name`` is the one stdout writes with."""
    try:
        return codecs.lookup(name).name == codecs.lookup(sys.stdout.encoding or "").name
    except (LookupError, AttributeError, ValueError):
        return False


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that what it still holds is not written again (and
    reported as a second error) at exit."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
