"""Classifier commands: classify, label, train, evaluate, explain. ``train`` and
``evaluate`` draw the stages the library reports (:class:`~aggregator.progress.Step`) as
a rich display on stderr, as ``poll`` draws its bar: on a terminal only, and not with
``--quiet`` or ``--format json``; stdout carries the result alone. The display is
:mod:`aggregator.cli.stages`'s; ``classify``'s JSON Lines reading and writing is
:mod:`aggregator.cli.jsonlines`'s."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.cells import cell_len
from rich.markup import escape as esc
from rich.table import Table
from rich.text import Text

from ..errors import ConfigError, NotFoundError
from ..predictor import load_predictor
from ..taxonomy import Taxonomy
from ..types import Document
from .common import (
    PollFmt,
    app,
    counted,
    emit_json,
    err,
    for_terminal,
    largest_story_id,
    open_app,
    out,
    settings,
    story_json,
)
from .jsonlines import (
    _classify_batch,
    _emit_prediction,
    _input_lines,
    _open_input,
    _read_jsonl_docs,
)
from .stages import _stages

# --- the classifier: classify / label / train / evaluate / explain ---------------------------

CLASSIFY_BATCH = 2000


@app.command()
def classify(
    file: Annotated[
        str | None, typer.Argument(help='JSON Lines file of {"id", "title", "text"}; - for stdin.')
    ] = None,
    text: Annotated[
        str | None,
        typer.Option(
            "--text",
            help="Classify this one story instead: its first line is the title, the rest "
            "(if any) the text.",
        ),
    ] = None,
) -> None:
    """Tag stories with topics: JSON Lines in, JSON Lines out ({"id", "topics": [...]}).

    A bad line is reported on stderr with its line number and skipped; every other line is
    still classified (exit status 1 if any line was bad)."""
    if file is None and text is None:
        raise ConfigError("give a FILE of JSON Lines (or - for stdin), or --text")
    if file is not None and text is not None:
        raise ConfigError("give a FILE or --text, not both")
    if file == "-" and sys.stdin is None:  # started with fd 0 closed (`<&-`)
        raise ConfigError("classify -: standard input is closed")
    if sys.stdout is None:  # started with fd 1 closed (`>&-`): a traceback at the answer
        err.print("[red]error:[/] cannot write the output: standard output is closed")
        raise typer.Exit(1)
    # The model alone: no store is opened (nor a data directory made where it runs).
    s = settings()
    model = load_predictor(s, Taxonomy.load(s.taxonomy_path))
    if text is not None:
        # a headline is read as one, with the title's weight (as in JSON Lines input)
        if not text.strip():
            raise ConfigError("--text is empty: nothing to classify")
        # the first line, even an empty one: stripped first, a story without a title
        # had its body read as the title (scored otherwise than in JSON Lines)
        title, _, body = text.partition("\n")
        (pred,) = model.predict([Document(id="text", title=title.strip(), summary=body.strip())])
        _emit_prediction('"text"', pred)
        return
    assert file is not None
    # Bytes, not text: _read_jsonl_docs decodes line by line (a bad line stays one line).
    stream = sys.stdin.buffer if file == "-" else _open_input(Path(file))
    bad = 0
    batch: list[tuple[str, Document]] = []
    try:
        for _, item in _read_jsonl_docs(_input_lines(stream), "stdin" if file == "-" else file):
            if item is None:  # the writer is slow: answer what it sent before waiting
                _classify_batch(model, batch)
                batch = []
                continue
            if isinstance(item, str):
                err.print(f"[red]error:[/] {esc(item)}", highlight=False)
                bad += 1
                continue
            batch.append(item)
            if len(batch) >= CLASSIFY_BATCH:
                _classify_batch(model, batch)
                batch = []
        _classify_batch(model, batch)
    finally:
        if file != "-":
            stream.close()
    if bad:
        raise typer.Exit(1)


@app.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": False})
def label(
    story_id: Annotated[int | None, typer.Argument(help="Story id.")] = None,
    changes: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="±topic",
            help="+Topic adds a topic, -Topic removes it (quote names with spaces).",
        ),
    ] = None,
    suggest: Annotated[
        int | None,
        typer.Option(
            "--suggest", help="List the N stories whose labels would teach the model most."
        ),
    ] = None,
    forget: Annotated[
        list[str] | None,
        typer.Option(
            "--forget",
            metavar="TOPIC",
            help="Withdraw your label on this topic (repeatable): the model decides it again.",
        ),
    ] = None,
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
) -> None:
    """Record your judgement on a story's topics (kept until you withdraw it with
    --forget; used by `train`), or ask which stories to label next."""
    if suggest is not None and (story_id is not None or changes or forget):
        # one or the other: a label given beside --suggest would otherwise go unrecorded
        raise ConfigError("give --suggest N, or a story ID with +Topic / -Topic labels, not both")
    with open_app() as a:
        if suggest is not None:
            ranked = a.learning.suggest(suggest)
            if fmt == PollFmt.json:
                emit_json(
                    [
                        {
                            **story_json(g.story),
                            "uncertainty": round(g.uncertainty, 4),
                            "about": {
                                "topic": g.topic,
                                "score": round(g.score, 4),
                                "threshold": round(g.threshold, 4),
                            },
                        }
                        for g in ranked
                    ]
                )
                return
            if not ranked:
                out.print(
                    "no unlabelled stories to suggest: "
                    + (
                        "the stories it looks at (the newest) are all labelled"
                        if a.story_count()
                        else "poll some feeds first"
                    )
                )
                return
            t = Table(title="Label these next (most uncertain first)", expand=False)
            t.add_column("id", justify="right", no_wrap=True)
            t.add_column("title", ratio=1, overflow="fold")
            t.add_column("unsure about", no_wrap=True)
            t.add_column("score / thr", justify="right", no_wrap=True)
            for g in ranked:
                t.add_row(
                    str(g.story.id),
                    Text(for_terminal(g.story.title)),  # a feed's words, not our escapes
                    Text(g.topic),  # "Policy [beta]" is a name, not rich markup
                    f"{g.score:.2f} / {g.threshold:.2f}",
                )
            out.print(t)
            out.print("label one: aggregator label ID +Topic or -Topic", highlight=False)
            return
        if story_id is None or not (changes or forget):
            raise ConfigError(
                "usage: aggregator label ID +Topic -Topic [--forget Topic] …  (or --suggest N)"
            )
        if not 0 < story_id <= largest_story_id(a.settings):
            # past the id column: the database was asked anyway (an OverflowError
            # traceback from SQLite's driver, "integer out of range" and exit 1 from
            # PostgreSQL's, as if the store had failed)
            raise NotFoundError(f"no story {story_id}")
        pos: list[str] = []
        neg: list[str] = []
        for i, c in enumerate(changes or ()):
            if len(c) < 2 or c[0] not in "+-":
                raise ConfigError(
                    f"{c!r}: write +Topic to add a topic or -Topic to remove it"
                    + _unquoted_hint(changes or [], i)
                )
            (pos if c[0] == "+" else neg).append(c[1:].strip())
        targets = a.forget_targets(story_id, forget or ())
        story = a.label(story_id, pos, neg, forget or ())
        for name, withdrawn in targets:
            if not withdrawn:
                # nothing to withdraw (a mistyped id, say) did nothing and said nothing
                err.print(
                    f"note: story {story_id} had no label on {name} to withdraw",
                    highlight=False,
                    markup=False,
                )
    if fmt == PollFmt.json:
        emit_json(story_json(story))
    else:
        out.print(f"#{story.id} {for_terminal(story.title)}", highlight=False, markup=False)
        out.print(
            "topics: "
            + (", ".join(f"{t.topic} {t.score:.2f} ({t.source})" for t in story.topics) or "none"),
            markup=False,  # a topic named "Policy [beta]" lost its "[beta]" as a style
        )


def _unquoted_hint(changes: list[str], bad: int) -> str:
    """For ``changes[bad]``, neither +Topic nor -Topic: after a +Topic or -Topic it is
    most likely part of a topic name with spaces that the shell split, so the hint shows
    that name quoted, up to the next +Topic or -Topic."""
    signed = [i for i, c in enumerate(changes) if c[:1] in "+-" and len(c) > 1]
    start = max((i for i in signed if i < bad), default=None)
    if start is None:
        return ""
    end = min((i for i in signed if i > bad), default=len(changes))
    return f'; quote a name with spaces: "{" ".join(changes[start:end])}"'


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM raise :class:`_Stopped` in the main thread, so that
    what is being written is cleaned up (``train`` removes its temporary directory) and
    the command can say what state it left; further signals are ignored meanwhile, so
    the clean-up is not cut short."""

    def stop(signum: int, frame: Any) -> None:
        for s in watched:
            signal.signal(s, signal.SIG_IGN)
        raise _Stopped(signum)

    watched = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers
        return
    previous = {s: signal.signal(s, stop) for s in watched}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        help="Print the result only: no progress display on stderr (a terminal gets one).",
    ),
]


@app.command()
def train(
    no_retag: Annotated[
        bool, typer.Option("--no-retag", help="Do not re-tag stored stories.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Train even when the model in use was trained on exactly the same examples.",
        ),
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Retrain the classifier from your labels, feed categories and the seed examples,
    then re-tag stored stories whose topics change. When nothing changed since the model
    in use was trained (labels, feed categories, seeds), that model is kept.

    On a terminal, stderr shows each stage as it goes (collecting examples, the held-out
    check, cross-validation, the final model, thresholds, writing, re-tagging)."""
    learning: Any = None
    before: str | None = None
    try:
        with (
            _stopped_by_signals(),
            open_app() as a,
            _stages(not quiet and err.is_terminal) as progress,
        ):
            learning = a.learning
            before = learning.version_in_use()
            outcome = learning.train(retag=not no_retag, force=force, progress=progress)
    except _Stopped as stop:
        # the new model is swapped in whole or not at all (a temporary directory, then
        # renames); what stopped is the fitting or the re-tagging after it
        now = before if learning is None else learning.version_in_use()
        if now == before:
            why = "nothing was written" + (f"; the model in use is still {now}" if now else "")
        else:
            why = (
                f"the new model {now} is in use, but not every story was re-tagged with it "
                "(`aggregator train` again re-tags them, and keeps the model)"
            )
        err.print(f"[yellow]train interrupted:[/] {esc(why)}", highlight=False)
        raise typer.Exit(128 + stop.signum) from None
    r = outcome.report
    if outcome.unchanged:
        out.print(
            f"nothing new to learn: the model in use, {r.model_version}, was trained on "
            f"exactly these {counted(r.examples, 'example')} "
            f"({', '.join(f'{k} {v:,}' for k, v in sorted(r.by_source.items()))}); kept "
            "(--force trains it again)",
            highlight=False,
        )
        out.print(
            f"cross-validated: micro-F1 {r.cv.micro_f1:.3f}, macro-F1 {r.cv.macro_f1:.3f}"
            + (f"; held out: micro-F1 {r.heldout.micro_f1:.3f}" if r.heldout else "")
        )
        if not no_retag:
            out.print(
                f"re-tagged {counted(outcome.retagged, 'story', 'stories')}:"
                f" {outcome.changed:,} with changed topics"
            )
        out.print(f"model in use: {r.out_dir}", highlight=False, markup=False)
        return
    out.print(
        f"trained {r.model_version} on {counted(r.examples, 'example')} "
        f"({', '.join(f'{k} {v:,}' for k, v in sorted(r.by_source.items()))}) in {r.seconds:.1f} s"
    )
    out.print(
        f"cross-validated: micro-F1 {r.cv.micro_f1:.3f}, macro-F1 {r.cv.macro_f1:.3f}"
        + (f"; held out: micro-F1 {r.heldout.micro_f1:.3f}" if r.heldout else "")
    )
    if outcome.previous is None or outcome.delta is None:
        out.print("the previous model has no cross-validated report to compare with")
    else:
        p, d = outcome.previous, outcome.delta
        out.print(
            "vs the previous model (cross-validated, each over its own training data): "
            f"micro-F1 {p.micro_f1:.3f} → {r.cv.micro_f1:.3f} ({d.micro_f1:+.3f}), "
            f"macro-F1 {p.macro_f1:.3f} → {r.cv.macro_f1:.3f} ({d.macro_f1:+.3f})"
        )
    if not no_retag:
        out.print(
            f"re-tagged {counted(outcome.retagged, 'story', 'stories')}:"
            f" {outcome.changed:,} with changed topics"
        )
    # markup=False: a "[work]" in DATA_DIR was dropped as a style, a "[/old]" raised
    out.print(f"model written to {r.out_dir}", highlight=False, markup=False)


@app.command()
def evaluate(
    gold: Annotated[
        Path | None,
        typer.Argument(
            help='Gold JSON Lines, one {"title", "text", "topics"} per line (a title or a text '
            'alone will do). Every line must have "topics" ([] for a story in no topic): a line '
            "without it, or without a title or text, or a file without stories, is rejected "
            "(exit 2); - reads stdin. Without a file: cross-validation over your labels."
        ),
    ] = None,
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
    quiet: QuietOpt = False,
) -> None:
    """Per-topic precision / recall / F1 (micro and macro) against a gold file, or by
    5-fold cross-validation over your labels (minutes: on a terminal, stderr shows the
    fold it is in).

    Each run is recorded beside your model (DATA_DIR/models/evaluations.json) and compared
    with the latest evaluation of the same data (the same file contents, or the same
    labels) by a different model version: micro/macro deltas and the topics whose F1
    changed. JSON: the report plus "model_version", "data", "compared_with" (null when
    there is nothing to compare with) and "recorded" (false when the history could not be
    written)."""
    show = not quiet and fmt != PollFmt.json and err.is_terminal  # as poll decides
    stream = None
    if gold is not None and str(gold) == "-":  # as `classify -` reads it
        if sys.stdin is None:  # started with fd 0 closed (`<&-`)
            raise ConfigError("evaluate -: standard input is closed")
        # read a line at a time (kept in a temporary file for the second read), not
        # whole: a gold file of gigabytes was held in memory, several times over
        gold, stream = Path("stdin"), sys.stdin.buffer
    with open_app() as a, _stages(show) as progress:
        ev = a.learning.evaluate(gold, progress=progress, gold_stream=stream)
    rep, prev, delta = ev.report, ev.previous, ev.delta
    if fmt == PollFmt.json:
        data = {
            **rep.to_dict(),
            "model_version": ev.model_version,
            "data": ev.data.to_dict(),
            "compared_with": None,
            # false: the history could not be written (a warning on stderr says why), and
            # no later run is compared with this one; a script could not tell before
            "recorded": ev.recorded,
        }
        if prev is not None and delta is not None:
            data["compared_with"] = {
                "model_version": prev.model_version,
                "evaluated_at": prev.at.isoformat(),
                "delta": delta.to_dict(),
            }
        emit_json(data)
        return
    t = Table(title=f"Evaluation of {ev.model_version}: {esc(rep.label)}", expand=False)
    for col_name in ("topic", "precision", "recall", "F1", "support"):
        t.add_column(col_name, justify="left" if col_name == "topic" else "right")
    for m in rep.topics:
        if m.support or m.predicted:
            # a topic no story has: recall and F1 are undefined, not 0 (see EvalReport)
            t.add_row(
                esc(m.topic),
                f"{m.precision:.3f}",
                f"{m.recall:.3f}" if m.support else "–",
                f"{m.f1:.3f}" if m.support else "–",
                str(m.support),
            )
    if rep.positives:
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
    if t.rows:
        out.print(t)
    else:
        out.print(f"Evaluation of {ev.model_version}: {rep.label}", highlight=False, markup=False)
    if rep.off_topic:
        out.print(
            f"off-topic stories given a topic: {rep.off_topic_given} of {rep.off_topic} "
            f"({_percent(rep.off_topic_share)})",
            highlight=False,
        )
    if not rep.positives:
        # 0.000 everywhere read as "all wrong"; with nothing to find there is no score
        out.print(
            "precision, recall and F1 are undefined: the data has no story in any topic",
            highlight=False,
        )
    if prev is not None and delta is not None and not rep.positives:
        out.print(
            f"vs {prev.model_version} on the same data (evaluated {prev.at:%Y-%m-%d %H:%M %Z}): "
            f"off-topic stories given a topic {_percent(prev.report.off_topic_share)} → "
            f"{_percent(rep.off_topic_share)}",
            highlight=False,
            markup=False,
        )
        return
    if prev is None or delta is None:
        out.print(
            f"No earlier evaluation of the same data ({ev.data.kind} {ev.data.sha256[:12]}) "
            "by another model version to compare with"
            + ("; this one is recorded for the next." if ev.recorded else "."),
            highlight=False,
            markup=False,
        )
        return
    out.print(
        f"vs {prev.model_version} on the same data (evaluated {prev.at:%Y-%m-%d %H:%M %Z}): "
        f"micro-F1 {prev.report.micro_f1:.3f} → {rep.micro_f1:.3f} ({delta.micro_f1:+.3f}), "
        f"macro-F1 {prev.report.macro_f1:.3f} → {rep.macro_f1:.3f} ({delta.macro_f1:+.3f})",
        highlight=False,
        markup=False,
    )
    changed = delta.changed
    if not changed:
        out.print("F1 unchanged for every topic")
    else:
        out.print("F1 changed for:")
    for topic, before, now in changed:
        was = "no support" if before is None else f"{before:.3f}"
        is_ = "no support" if now is None else f"{now:.3f}"
        change = "" if before is None or now is None else f" ({now - before:+.3f})"
        out.print(f"  {topic}: {was} → {is_}{change}", highlight=False, markup=False)


def _percent(share: float | None) -> str:
    """ "12.5 %", or "n/a" (a report recorded before off-topic stories were counted)."""
    return "n/a" if share is None else f"{share * 100:.1f} %"


@app.command()
def explain(
    story_id: Annotated[int, typer.Argument(help="Story id.")],
    fmt: Annotated[PollFmt, typer.Option("--format", help="table or json.")] = PollFmt.table,
) -> None:
    """Why a story has its topics: each topic it has (as `show` lists them: your labels,
    then feed categories, rules, the model), each your "-Topic" label removed and each
    the model nearly gives (score below the threshold by at most 0.15 and at least half
    of it), with the model's own score, threshold and the terms that pushed it up or
    down."""
    with open_app() as a:
        if not 0 < story_id <= largest_story_id(a.settings):
            raise NotFoundError(f"no story {story_id}")  # as `label` (and `show`) say it
        story, exps = a.learning.explain(story_id)
    if fmt == PollFmt.json:
        emit_json(
            {
                "id": story.id,
                "title": story.title,
                "topics": [
                    {
                        "topic": e.topic,
                        "score": None if e.score is None else round(e.score, 4),
                        "threshold": None if e.threshold is None else round(e.threshold, 4),
                        "given": e.given,
                        "source": e.source,
                        "given_score": None if e.given_score is None else round(e.given_score, 4),
                        "model_given": e.model_given,
                        "removed_by_label": e.removed_by_label,
                        "up": [[w, round(v, 4)] for w, v in e.terms_up],
                        "down": [[w, round(v, 4)] for w, v in e.terms_down],
                    }
                    for e in exps
                ],
            }
        )
        return
    out.print(f"[bold]#{story.id} {esc(for_terminal(story.title))}[/]", highlight=False)
    if not exps:
        out.print("No topic was given or came close.")
    for e in exps:
        if e.given:
            mark = f"[green]given[/] via {e.source}"
        elif e.removed_by_label:
            mark = "[yellow]not given[/]: removed by your label"
        else:
            mark = "[yellow]not given[/]"
        if e.score is None or e.threshold is None:
            out.print(f"\n{esc(e.topic)}: not a topic of the current model — {mark}")
            continue
        line = f"\n{esc(e.topic)}: score {e.score:.2f} / threshold {e.threshold:.2f} — {mark}"
        if e.removed_by_label or e.source in ("user", "feed-category") or e.model_given != e.given:
            line += f"; the model alone would {'give' if e.model_given else 'not give'} it"
        out.print(line)
        for head, terms in (("  up:   ", e.terms_up), ("  down: ", e.terms_down)):
            for row in _term_lines(head, terms, out.width):
                out.print(row, highlight=False, markup=False)


def _term_lines(head: str, terms: Iterable[tuple[str, float]], width: int) -> list[str]:
    """``head`` and the terms ("dnssec (+1.32)"), as many to a line as fit in ``width``,
    the next lines indented under the first term. The console wrapped them wherever the
    edge fell, so "seed phrases [Domain Names]:" ended one line and its "cctld (+1.44)"
    began the next, reading as a term of its own. Terms that move the score by less than
    the 0.01 shown are left out: "very.long.example.com (+0.00)" explained nothing.
    Widths are the terminal's cells, not characters: a CJK term takes two a character."""
    shown = [f"{for_terminal(w)} ({v:+.2f})" for w, v in terms if round(v, 2) != 0]
    rows: list[str] = []
    for i, term in enumerate(shown):
        term += "," if i < len(shown) - 1 else ""
        if rows and cell_len(rows[-1]) + 1 + cell_len(term) <= width:
            rows[-1] += " " + term
        else:
            rows.append((head if not rows else " " * len(head)) + term)
    return rows
