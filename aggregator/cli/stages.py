"""The stage display of ``train`` and ``evaluate``: each stage the library reports (a
:class:`~aggregator.progress.Step`) drawn as a row on stderr with a bar, the time it took
or is likely still to take and the library's note, as ``poll`` draws its bar. Whether to
show it (a terminal, no ``--quiet``, no ``--format json``) is the commands' to decide
(:mod:`aggregator.cli.learning`); rich's progress display is imported only when it is
shown, and nothing here writes to stdout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.text import Text

from .common import err

if TYPE_CHECKING:
    from ..progress import Progress, Stage, Step


#: What each stage is called on the screen (the library's names are for code).
_STAGE_TITLES: dict[Stage, str] = {
    "examples": "collecting examples",
    "heldout": "held-out check",
    "features": "vectorising the texts",
    "folds": "cross-validation",
    "heads": "fitting the final model",
    "thresholds": "choosing thresholds",
    "write": "writing the model",
    "retag": "re-tagging stored stories",
    "cv": "cross-validating labels",
    "score": "scoring gold stories",
}


@contextmanager
def _stages(show: bool) -> Iterator[Progress]:
    """A :class:`~aggregator.progress.Progress` that draws each stage as a row on stderr
    (``err``): its name, a bar, the time it has taken and is likely still to take, and
    the library's note ("fold 2/5"); a finished stage keeps its row, ticked, until the
    work is done and the display goes (transient, as ``poll``'s bar: stdout's summary
    follows on a clean screen). Without ``show``, a no-op."""

    def ignore(step: Step, /) -> None:
        pass

    if not show:
        yield ignore
        return
    from rich.progress import (
        BarColumn,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TaskID,
        TextColumn,
    )
    from rich.progress import Progress as Display
    from rich.table import Column

    class Time(ProgressColumn):
        """The time a stage took, or has taken so far and, once rich can tell, about
        how much is left: "1:23 ~0:41 left"."""

        def render(self, task: Task) -> Text:
            spent = task.finished_time if task.finished else task.elapsed
            shown = _clock(spent or 0.0)
            if not task.finished and task.time_remaining is not None:
                shown += f" ~{_clock(task.time_remaining)} left"
            return Text(shown, style="progress.elapsed")

    # The note gets what the other columns leave, cut short with "…": rich squeezed
    # every column alike on an 80-column terminal, the times and the bar to one cell.
    titles = max(len(t) for t in _STAGE_TITLES.values())
    room = err.width - (2 + titles + 1 + 8 + 1 + 16 + 1)
    with Display(
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description}", table_column=Column(no_wrap=True)),
        BarColumn(bar_width=8),
        Time(table_column=Column(width=16, no_wrap=True)),
        # the library's words, not rich markup
        TextColumn(
            "{task.fields[note]}",
            markup=False,
            table_column=Column(no_wrap=True, overflow="ellipsis", max_width=max(room, 8)),
        ),
        console=err,
        transient=True,
    ) as view:
        rows: dict[str, TaskID] = {}
        last: dict[str, Step] = {}

        def report(step: Step, /) -> None:
            row = rows.get(step.stage)
            if row is None:
                for stage, earlier in rows.items():  # a stage is over once the next starts
                    whole = last[stage].total or 1  # an open-ended one too
                    view.update(earlier, total=whole, completed=whole)
                row = view.add_task(_STAGE_TITLES[step.stage], total=step.total, note="")
                rows[step.stage] = row
            last[step.stage] = step
            view.update(row, total=step.total, completed=step.done, note=step.note)

        yield report


def _clock(seconds: float) -> str:
    """1:05, or 1:02:05 past the hour."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
