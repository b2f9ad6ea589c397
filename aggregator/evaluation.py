"""How well a classifier tags labelled stories: per-topic and micro/macro precision,
recall and F1 over the (story, topic) pairs whose truth is known; reading gold files;
reports saved beside a model; and the evaluation history that compares a model with the
previous one on the same data. Never touches the store or trains anything."""

from __future__ import annotations

import fcntl
import hashlib
import io
import itertools
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np

from aggregator.config import EVALUATIONS_FILE
from aggregator.errors import ConfigError, ModelError
from aggregator.examples import example_from_line, iter_jsonl_lines, read_file
from aggregator.manifest import REPORT_FILE, artifact_paths
from aggregator.taxonomy import Taxonomy
from aggregator.types import Example

if TYPE_CHECKING:  # scikit-learn: `train` keeping a model reads its report without it
    from aggregator.classify import Classifier

__all__ = [
    "HISTORY_FILE",
    "EvalData",
    "EvalHistory",
    "EvalRecord",
    "EvalReport",
    "GoldFile",
    "ReportDelta",
    "TopicMetrics",
    "evaluate",
    "evaluate_stream",
    "examples_sha256",
    "label_arrays",
    "load_report",
    "read_gold",
    "report_from_arrays",
]

log = logging.getLogger(__name__)

# -- evaluation reports -----------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicMetrics:
    """Counts for one topic over the (story, topic) pairs whose truth is known."""

    topic: str
    support: int  # stories that have the topic
    predicted: int  # stories given the topic
    true_positives: int

    @property
    def precision(self) -> float:
        return _ratio(self.true_positives, self.predicted)

    @property
    def recall(self) -> float:
        return _ratio(self.true_positives, self.support)

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportDelta:
    """This report minus a previous one (positive = better now)."""

    micro_f1: float
    macro_f1: float
    micro_precision: float
    micro_recall: float
    # (topic, f1 before or None when it had no support then, f1 now or None when it has
    # none now), for each topic with support in either report
    topics: tuple[tuple[str, float | None, float | None], ...]

    @property
    def changed(self) -> tuple[tuple[str, float | None, float | None], ...]:
        """The topics whose F1 moved (F1 comes from integer counts, so equal counts give
        equal floats and ``!=`` is exact)."""
        return tuple(
            row for row in self.topics if row[1] is None or row[2] is None or row[1] != row[2]
        )

    def to_dict(self) -> dict[str, Any]:
        """Micro/macro deltas and, per topic whose F1 changed, before / now / delta."""
        return {
            "micro_f1": round(self.micro_f1, 4),
            "macro_f1": round(self.macro_f1, 4),
            "micro_precision": round(self.micro_precision, 4),
            "micro_recall": round(self.micro_recall, 4),
            "topics": {
                t: {
                    "f1_before": None if b is None else round(b, 4),
                    "f1_now": None if a is None else round(a, 4),
                    "delta": None if a is None or b is None else round(a - b, 4),
                }
                for t, b, a in self.changed
            },
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalReport:
    """Per-topic precision / recall / F1 with micro and macro averages. Macro averages
    run over topics with support (F1 is undefined for a topic nobody has); a topic given
    without support still costs micro precision. With no positives at all (every story
    off-topic) recall, F1 and the macro averages are undefined (None in :meth:`to_dict`;
    0.0 in the properties, for deltas), and what such data measures is ``off_topic_given``
    of ``off_topic``: the stories known to be in no topic, and those given one anyway."""

    topics: tuple[TopicMetrics, ...]
    examples: int
    label: str = ""
    off_topic: int = 0  # stories known to be in no topic (every topic's truth known)
    off_topic_given: int = 0  # of those, the stories given a topic

    @property
    def _totals(self) -> tuple[int, int, int]:
        return (
            sum(m.true_positives for m in self.topics),
            sum(m.predicted for m in self.topics),
            sum(m.support for m in self.topics),
        )

    @property
    def micro_precision(self) -> float:
        tp, pred, _ = self._totals
        return _ratio(tp, pred)

    @property
    def micro_recall(self) -> float:
        tp, _, sup = self._totals
        return _ratio(tp, sup)

    @property
    def micro_f1(self) -> float:
        return _f1(self.micro_precision, self.micro_recall)

    def _macro(self, attr: str) -> float:
        supported = [getattr(m, attr) for m in self.topics if m.support]
        return float(sum(supported) / len(supported)) if supported else 0.0

    @property
    def macro_precision(self) -> float:
        return self._macro("precision")

    @property
    def macro_recall(self) -> float:
        return self._macro("recall")

    @property
    def macro_f1(self) -> float:
        return self._macro("f1")

    @property
    def positives(self) -> int:
        """(story, topic) pairs known to hold: 0 when every story is off-topic."""
        return self._totals[2]

    @property
    def off_topic_share(self) -> float | None:
        """The share of off-topic stories given a topic; None without any."""
        return self.off_topic_given / self.off_topic if self.off_topic else None

    def topic(self, name: str) -> TopicMetrics | None:
        return next((m for m in self.topics if m.topic == name), None)

    def to_dict(self) -> dict[str, Any]:
        def r(x: float, defined: bool = True) -> float | None:
            return round(x, 4) if defined else None

        _, predicted, support = self._totals
        share = self.off_topic_share
        return {
            "label": self.label,
            "examples": self.examples,
            "positives": support,
            "off_topic": {
                "stories": self.off_topic,
                "given_a_topic": self.off_topic_given,
                "share": None if share is None else round(share, 4),
            },
            "micro": {
                "precision": r(self.micro_precision, bool(predicted or support)),
                "recall": r(self.micro_recall, bool(support)),
                "f1": r(self.micro_f1, bool(support)),
            },
            "macro": {
                "precision": r(self.macro_precision, bool(support)),
                "recall": r(self.macro_recall, bool(support)),
                "f1": r(self.macro_f1, bool(support)),
            },
            # per topic as micro: without support recall and F1 are 0/0, and precision
            # too when the topic was not given either (the table shows them as "–")
            "topics": {
                m.topic: {
                    "precision": r(m.precision, bool(m.predicted or m.support)),
                    "recall": r(m.recall, bool(m.support)),
                    "f1": r(m.f1, bool(m.support)),
                    "support": m.support,
                    "predicted": m.predicted,
                    "true_positives": m.true_positives,
                }
                for m in self.topics
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalReport:
        """Read back :meth:`to_dict` output (e.g. a previous model's report.json)."""
        try:
            topics = tuple(
                TopicMetrics(
                    topic=str(name),
                    support=int(m["support"]),
                    predicted=int(m["predicted"]),
                    true_positives=int(m["true_positives"]),
                )
                for name, m in data["topics"].items()
            )
            label = str(data.get("label", ""))
            off = data.get("off_topic") or {}  # absent from reports before session 24
            return cls(
                topics=topics,
                examples=int(data["examples"]),
                label=label,
                off_topic=int(off.get("stories", 0)),
                off_topic_given=int(off.get("given_a_topic", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelError(f"not an evaluation report: {e!r}") from e

    def compare(self, previous: EvalReport | Mapping[str, Any]) -> ReportDelta:
        """Deltas against a previous report (an :class:`EvalReport` or its dict)."""
        prev = previous if isinstance(previous, EvalReport) else EvalReport.from_dict(previous)
        before = {m.topic: m for m in prev.topics}
        rows = []
        for m in self.topics:
            b = before.get(m.topic)
            had = b is not None and b.support > 0
            if m.support or had:
                now = m.f1 if m.support else None  # undefined without support
                rows.append((m.topic, b.f1 if b is not None and had else None, now))
        return ReportDelta(
            micro_f1=self.micro_f1 - prev.micro_f1,
            macro_f1=self.macro_f1 - prev.macro_f1,
            micro_precision=self.micro_precision - prev.micro_precision,
            micro_recall=self.micro_recall - prev.micro_recall,
            topics=tuple(rows),
        )


def load_report(
    artifact_dir: Path, *, section: Literal["heldout", "cv"] | None = None
) -> EvalReport | None:
    """The evaluation saved beside a trained model (``report.json``): the ``section``
    asked for, or by default the held-out report when it has one, else the
    cross-validated one; None when there is none or it cannot be read (an old model's
    broken report is no reason to stop training a new one). ``aggregator train`` uses
    it as the replaced model's side of :meth:`EvalReport.compare`."""
    path = artifact_paths(Path(artifact_dir)) / REPORT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    found = data.get(section) if section else data.get("heldout") or data.get("cv")
    try:
        return EvalReport.from_dict(found) if isinstance(found, dict) else None
    except ModelError:
        log.warning("unreadable evaluation report %s", path)
        return None


def report_from_arrays(
    names: Sequence[str], Y: np.ndarray, K: np.ndarray, P: np.ndarray, label: str
) -> EvalReport:
    metrics = []
    for j, name in enumerate(names):
        known = K[:, j]
        y = Y[known, j]
        p = P[known, j]
        metrics.append(
            TopicMetrics(
                topic=name,
                support=int(y.sum()),
                predicted=int(p.sum()),
                true_positives=int((y & p).sum()),
            )
        )
    off = K.all(axis=1) & ~Y.any(axis=1) if len(names) else np.zeros(len(Y), dtype=bool)
    return EvalReport(
        topics=tuple(metrics),
        examples=int(Y.shape[0]),
        label=label,
        off_topic=int(off.sum()),
        off_topic_given=int((off & P.any(axis=1)).sum()),
    )


def evaluate(
    classifier: Classifier,
    examples: Sequence[Example],
    *,
    topics: Sequence[str] | None = None,
    label: str = "",
    scored: Callable[[int, int], None] | None = None,
    batch: int = 500,
) -> EvalReport:
    """Score ``classifier.predict`` against labelled examples. Only (story, topic) pairs
    whose truth is known count: all topics for seed examples, the listed positives and
    negatives for user and feed-category examples. ``topics`` restricts the report to
    those topics (e.g. the label space of an external test set). ``scored(done, total)``
    is told after each ``batch`` of examples is predicted (a prediction does not depend
    on the rest of its batch, so the batches change nothing but memory)."""
    names = list(classifier.topics)
    if topics is not None:
        wanted = {classifier.taxonomy.canonical(t) for t in topics}
        names = [n for n in names if n in wanted]
    Y, K = label_arrays(examples, names, classifier.taxonomy)
    P = np.zeros_like(Y)
    col = {n: j for j, n in enumerate(names)}
    for start in range(0, len(examples), batch):
        part = examples[start : start + batch]
        for i, pred in enumerate(classifier.predict([e.doc for e in part]), start):
            for ts in pred.topics:
                j = col.get(ts.topic)
                if j is not None:
                    P[i, j] = True
        if scored is not None:
            scored(start + len(part), len(examples))
    return report_from_arrays(names, Y, K, P, label)


def evaluate_stream(
    classifier: Classifier,
    examples: Iterable[Example],
    *,
    total: int,
    label: str = "",
    scored: Callable[[int, int], None] | None = None,
    batch: int = 2000,
) -> EvalReport:
    """:func:`evaluate` over ``examples`` read as they come (``total`` of them: a
    :meth:`GoldFile.stories`), ``batch`` at a time, so that memory holds one batch.
    Every figure of a report is made of counts, summed over the batches: the report is
    the one :func:`evaluate` gives for them all at once."""
    it = iter(examples)
    found: EvalReport | None = None
    done = 0
    while part := list(itertools.islice(it, batch)):

        def told(n: int, _: int, base: int = done) -> None:
            if scored is not None:
                scored(base + n, total)

        report = evaluate(classifier, part, label=label, scored=told)
        found = report if found is None else _summed(found, report)
        done += len(part)
    return found if found is not None else evaluate(classifier, [], label=label)


def _summed(a: EvalReport, b: EvalReport) -> EvalReport:
    """Two reports over the same topics and different stories as one."""
    return replace(
        a,
        topics=tuple(
            replace(
                m,
                support=m.support + n.support,
                predicted=m.predicted + n.predicted,
                true_positives=m.true_positives + n.true_positives,
            )
            for m, n in zip(a.topics, b.topics, strict=True)
        ),
        examples=a.examples + b.examples,
        off_topic=a.off_topic + b.off_topic,
        off_topic_given=a.off_topic_given + b.off_topic_given,
    )


# -- labels -----------------------------------------------------------------------------


def label_arrays(
    examples: Sequence[Example], names: Sequence[str], taxonomy: Taxonomy
) -> tuple[np.ndarray, np.ndarray]:
    """Y[i, t]: example i has topic t; K[i, t]: that is known (True or False)."""
    col = {n: j for j, n in enumerate(names)}
    n = len(examples)
    Y = np.zeros((n, len(names)), dtype=bool)
    K = np.zeros((n, len(names)), dtype=bool)
    unknown: set[str] = set()
    for i, ex in enumerate(examples):
        if ex.source == "seed":
            K[i, :] = True
        for value, row in ((True, ex.topics), (False, ex.negative)):
            for topic in row:
                td = taxonomy.get(topic)
                if td is None:
                    unknown.add(topic)
                    continue
                j = col.get(td.name)
                if j is None:
                    continue
                K[i, j] = True
                if value:
                    Y[i, j] = True
    if unknown:
        raise ConfigError(f"examples name unknown topics: {', '.join(sorted(unknown))}")
    return Y, K


# -- gold files -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalData:
    """What an evaluation scored, so that two models are only compared on the same data:
    a gold file (by the sha256 of its bytes) or cross-validation over the users' labels
    (by :func:`examples_sha256` of those labelled stories)."""

    kind: Literal["gold", "cv"]
    sha256: str
    what: str  # for people: "gold.jsonl (120 stories)", "cv over 12 user labels"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "sha256": self.sha256, "what": self.what}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalData:
        kind = data["kind"]
        if kind not in ("gold", "cv"):
            raise ValueError(f"unknown evaluation data kind {kind!r}")
        return cls(kind=kind, sha256=str(data["sha256"]), what=str(data["what"]))


def read_gold(
    path: Path, taxonomy: Taxonomy | None = None, *, raw: bytes | None = None
) -> tuple[list[Example], EvalData]:
    """A gold file: JSON Lines of ``{"title", "text", "topics"}``, fully labelled (topics
    not listed are known not to apply; ``"topics": []`` is a story in no topic), read as
    :func:`~aggregator.examples.read_examples` reads examples (``summary``, ``full_text``
    and ``categories`` too), except that every story is fully labelled whatever its
    ``source`` says. ``raw``: the file's bytes, already read (``path`` then only naming
    it). Every story in memory at once: ``aggregator evaluate`` reads a file of any size
    through :class:`GoldFile` instead, a line at a time; the stories, the checks and the
    data's identity are the same.

    UTF-8, with or without a byte-order mark, lines ending in LF or CRLF; only a line feed
    ends a line (U+2028 or U+0085 inside a JSON string is text, not a line break).
    :class:`ConfigError` naming the line for a line that is not a JSON object, one with
    neither a ``title`` nor a ``text`` (either alone is a story, as ``classify`` reads
    it), one without ``"topics"`` at all (in gold data a missing field is a mistake,
    and scoring that story as off-topic would quietly count every topic the model gives it
    as wrong) and, given the ``taxonomy``, one naming a topic it does not have. Also for a
    file without a single story, which would otherwise score zero everywhere, and for a
    story (the same title, text and categories) given again with other topics: one of
    the two answers is wrong. A story given again with the same topics (two gold files joined)
    is counted once, with a warning: it weighed twice in every score."""
    with GoldFile(Path(path), io.BytesIO(read_file(path) if raw is None else raw)) as gold:
        data = gold.check(taxonomy)
        return list(gold.stories(taxonomy)), data


#: How often (in bytes read) :meth:`GoldFile.check` reports its progress.
PROGRESS_BYTES = 1 << 20


class GoldFile:
    """A gold file (see :func:`read_gold`) read twice, a line at a time: :meth:`check`
    reads it through, checking every line, hashing its bytes and counting its stories
    (before the model loads: bad input fails fast), then :meth:`stories` gives them
    again to be scored. Memory holds a line and, per story, a 16-byte digest of it (to
    find a story given again), never the file: one of gigabytes was read whole (its
    bytes, its text, its lines and every story at once). A stream that cannot be read
    twice (standard input, a pipe: ``evaluate <(zcat gold.jsonl.gz)``) is copied to a
    temporary file as :meth:`check` reads it. Read once for both the stories and the
    hash: read again for the hash, a pipe gave nothing, so every gold file from a pipe
    was "the same data", and a named pipe hung."""

    def __init__(
        self, path: Path, stream: BinaryIO | None = None, *, spool_dir: Path | None = None
    ) -> None:
        self.path = Path(path)
        self._given = stream
        # where the copy of a pipe goes: the system's temporary directory is often a
        # tmpfs (RAM), which held a gold file of gigabytes in memory after all
        self._spool_dir = spool_dir
        self._stream: BinaryIO | None = None
        self._copy: BinaryIO | None = None
        self._repeats: set[bytes] = set()  # digests of the stories given again
        self._start: int | None = 0  # where to read again from; None: from the copy
        # (the copy, a temporary file, is closed by __exit__ after the second read)
        self.count = 0
        self.size: int | None = None  # the bytes to read, once open; None from a pipe

    def __enter__(self) -> GoldFile:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in (self._copy, None if self._given is not None else self._stream):
            if f is not None:
                f.close()

    def _lines(self) -> Iterator[bytes]:
        """The file's lines as bytes, read as they are needed; :class:`ConfigError`
        naming the file when it cannot be read."""
        if self._stream is None:
            try:
                self._stream = self._given or self.path.open("rb")
            except OSError as e:
                raise ConfigError(f"cannot read {self.path}: {e.strerror or e}") from e
            try:  # where it starts: stdin may be a file read past its start
                self._start = self._stream.tell() if self._stream.seekable() else None
            except OSError:
                self._start = None
            if self._start is None:  # a pipe, read once: kept for the second read
                self._copy = _spool(self._spool_dir)
            else:  # what there is to read, for the progress of the first read
                try:
                    self.size = max(self._stream.seek(0, os.SEEK_END) - self._start, 0)
                    self._stream.seek(self._start)
                except OSError:
                    self.size = None
        try:
            yield from self._stream
        except OSError as e:
            raise ConfigError(f"cannot read {self.path}: {e.strerror or e}") from e

    def _examples(
        self, lines: Iterable[bytes], taxonomy: Taxonomy | None
    ) -> Iterator[tuple[int, bytes, Example]]:
        for number, line in iter_jsonl_lines(self.path, lines):
            where = f"{self.path}:{number}"
            # every gold story is fully labelled, whatever "source" its line names
            example = replace(
                example_from_line(line, where, f"{self.path.name}:{number}", gold=True),
                source="seed",
            )
            if taxonomy is not None:
                example = _named_as_taxonomy(example, taxonomy, where)
            yield number, _story_digest(example), example

    def check(
        self,
        taxonomy: Taxonomy | None = None,
        *,
        read: Callable[[int, int | None], None] | None = None,
    ) -> EvalData:
        """Read the file through: every line checked (see :func:`read_gold`), its bytes
        hashed, its stories counted; what it holds, to record the evaluation under.
        ``read(done, size)`` hears how many bytes have been read (of :attr:`size`, None
        from a pipe): as it starts, every ``PROGRESS_BYTES`` and at the end. Of a file of
        gigabytes, minutes went by with nothing on the screen."""
        digest = hashlib.sha256()
        done = 0

        def hashed() -> Iterator[bytes]:
            nonlocal done
            lines = self._lines()
            first = next(lines, None)  # opens the stream: its size is known then
            if read is not None:
                read(0, self.size)
            shown = 0
            for raw in itertools.chain(() if first is None else (first,), lines):
                digest.update(raw)
                if self._copy is not None:
                    self._copy.write(raw)
                done += len(raw)
                if read is not None and done - shown >= PROGRESS_BYTES:
                    shown = done
                    read(done, self.size)
                yield raw

        # a story is its title, text and feed categories: all three decide what it is
        # given; by digest, so that memory holds no story's text
        first: dict[bytes, tuple[int, frozenset[str]]] = {}
        topic_sets: dict[frozenset[str], frozenset[str]] = {}  # one of each, shared
        repeated: list[int] = []  # the first ten, to name them
        repeats = 0
        for number, key, example in self._examples(hashed(), taxonomy):
            topics = frozenset(example.topics)
            topics = topic_sets.setdefault(topics, topics)
            seen = first.setdefault(key, (number, topics))
            if seen[0] == number:
                self.count += 1
                continue
            if seen[1] != topics:
                raise ConfigError(
                    f"{self.path}:{number}: the story of line {seen[0]} again, with other "
                    f"topics ({', '.join(sorted(topics)) or 'none'} here, "
                    f"{', '.join(sorted(seen[1])) or 'none'} there)"
                )
            self._repeats.add(key)
            repeats += 1
            if len(repeated) < 10:
                repeated.append(number)
        if repeats:
            lines = ", ".join(map(str, repeated))
            if repeats > 10:
                lines += f" and {repeats - 10} more"
            log.warning(
                "%s: line%s %s repeat%s stories of earlier lines (same title and text, same "
                "topics); each story is counted once",
                self.path,
                "s" if repeats > 1 else "",
                lines,
                "" if repeats > 1 else "s",
            )
        if read is not None:
            read(done, self.size)
        if not self.count:
            raise ConfigError(
                f"{self.path}: no labelled stories "
                '(expected one {"title", "text", "topics"} per line)'
            )
        # A name that is not UTF-8 (Latin-1 bytes from an old archive) reaches Python with
        # a lone surrogate per such byte, which neither evaluations.json nor stdout can
        # encode (a traceback after the whole evaluation had run): shown with U+FFFD, as
        # `ls` shows it.
        name = os.fsencode(self.path.name).decode("utf-8", "replace")
        n = self.count
        return EvalData(
            kind="gold",
            sha256=digest.hexdigest(),
            what=f"{name} ({n} {'story' if n == 1 else 'stories'})",
        )

    def stories(self, taxonomy: Taxonomy | None = None) -> Iterator[Example]:
        """After :meth:`check`: each story of the file once, in order (a story given
        again is skipped), read again a line at a time."""
        source = self._copy if self._copy is not None else self._stream
        assert source is not None, "check() first"
        source.seek(self._start or 0)
        seen_again: set[bytes] = set()
        for _, key, example in self._examples(source, taxonomy):
            if key in self._repeats:
                if key in seen_again:
                    continue
                seen_again.add(key)
            yield example


def _spool(directory: Path | None) -> BinaryIO:
    """A nameless temporary file in ``directory``, else (none given, or one that cannot
    be written: a read-only data directory) in the system's temporary directory."""
    if directory is not None:
        try:
            return tempfile.TemporaryFile(prefix=".aggregator-gold-", dir=directory)
        except OSError as e:
            log.debug("gold file copy: cannot write in %s (%s); the system's instead", directory, e)
    return tempfile.TemporaryFile(prefix="aggregator-gold-")


def _story_digest(example: Example) -> bytes:
    """What makes two gold lines one story (title, text, full text, categories), as 16
    bytes."""
    doc = example.doc
    key = json.dumps([doc.title, doc.summary, doc.text, doc.categories], ensure_ascii=False)
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _named_as_taxonomy(example: Example, taxonomy: Taxonomy, where: str) -> Example:
    """``example`` with its topics under the taxonomy's names: a topic's name or id in
    any case, or an alias only one topic claims, as ``label +infosec`` and ``stories -t``
    read them (an alias was refused as an unknown topic here alone). :class:`ConfigError`
    naming the line for unknown names, an alias several topics claim, and a topic both
    in ``topics`` and in ``negative`` once each is resolved."""
    names = (*example.topics, *example.negative)
    found = {t: taxonomy.resolve(t) for t in names}
    missing = [t for t in dict.fromkeys(names) if found[t] is None]
    unknown = [t for t in missing if not taxonomy.claimants(t)]
    if unknown:
        raise ConfigError(
            f"{where}: unknown topic{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(t) for t in unknown)} (see `aggregator topics`)"
            + taxonomy.did_you_mean(unknown)
        )
    if missing:
        name = missing[0]
        raise ConfigError(
            f"{where}: {name!r} is an alias of several topics "
            f"({', '.join(taxonomy.claimants(name))}): name one"
        )

    def named(row: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(td.name for t in row if (td := found[t]) is not None))

    topics, negative = named(example.topics), named(example.negative)
    both = [t for t in topics if t in negative]
    if both:
        raise ConfigError(
            f"{where}: {', '.join(repr(t) for t in both)} "
            f"{'is' if len(both) == 1 else 'are'} both in 'topics' and in 'negative'"
        )
    return replace(example, topics=topics, negative=negative)


def examples_sha256(examples: Sequence[Example]) -> str:
    """Identity of a set of labelled stories (text and labels, in order)."""
    digest = hashlib.sha256()
    for e in examples:
        row = [e.doc.title, e.doc.summary, e.doc.text, sorted(e.topics), sorted(e.negative)]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


# -- evaluation history -----------------------------------------------------------------

#: Beside the user's model (``DATA_DIR/models/``): ``Settings.evaluations_path``.
HISTORY_FILE = EVALUATIONS_FILE
HISTORY_FORMAT = 1
#: Records kept (one per model version and data); the oldest go first.
HISTORY_KEEP = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalRecord:
    """One ``aggregator evaluate`` result: which model scored what, when, and how."""

    model_version: str
    data: EvalData
    at: datetime
    report: EvalReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "data": self.data.to_dict(),
            "at": self.at.isoformat(),
            "report": self.report.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalRecord:
        at = datetime.fromisoformat(data["at"])
        if at.tzinfo is None:
            raise ValueError("naive timestamp")
        return cls(
            model_version=str(data["model_version"]),
            data=EvalData.from_dict(data["data"]),
            at=at,
            report=EvalReport.from_dict(data["report"]),
        )


class EvalHistory:
    """Every evaluation's result in one small JSON file, so that the next model can be
    compared with this one on the same data. A record replaces an earlier one of the same
    model version and data (a re-run of the same model says nothing new)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # What this history has warned about: one `evaluate` reads the file twice (the
        # run to compare with, then again under the lock to add its own), and a corrupt
        # file was "unreadable, starting afresh" twice in one run.
        self._warned: set[str] = set()

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    def records(self) -> list[EvalRecord]:
        """Oldest first. A missing file is an empty history; an unreadable one, or an
        unreadable record, is logged and left out (the history only informs)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            rows = raw["evaluations"]
            if not isinstance(rows, list):
                raise TypeError("'evaluations' is not a list")
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as e:
            self._warn(f"evaluation history {self.path} unreadable, starting afresh: {e}")
            return []
        out = []
        for row in rows:
            try:
                out.append(EvalRecord.from_dict(row))
            except (ModelError, ValueError, KeyError, TypeError) as e:
                self._warn(f"skipping a bad record in {self.path}: {e!r}")
        return out

    def previous(self, data: EvalData, model_version: str) -> EvalRecord | None:
        """The latest evaluation of the same data by a different model version."""
        for r in reversed(self.records()):
            same = (r.data.kind, r.data.sha256) == (data.kind, data.sha256)
            if same and r.model_version != model_version:
                return r
        return None

    def add(self, record: EvalRecord) -> None:
        """Record an evaluation: the history is read and rewritten under a lock, so that
        two ``evaluate`` runs finishing together each keep their record (each wrote the
        history it had read, one record lost); the new file is flushed to disk before it
        is renamed into place, and the rename after, so a power cut leaves the old history
        or the new one, never an empty file."""
        key = (record.model_version, record.data.kind, record.data.sha256)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.parent):
            kept = [
                r for r in self.records() if (r.model_version, r.data.kind, r.data.sha256) != key
            ]
            kept = [*kept, record][-HISTORY_KEEP:]
            body = {"format": HISTORY_FORMAT, "evaluations": [r.to_dict() for r in kept]}
            text = json.dumps(body, indent=1, ensure_ascii=False) + "\n"
            tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
            try:
                with tmp.open("w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)  # a full disk left half a file behind
                raise
            _fsync_dir(self.path.parent)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` itself (the models directory) in the
    block: no lock file is left beside the model. Where the file system refuses a lock
    on a directory (some network file systems), the block runs unlocked, as before."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as e:
        log.debug("evaluation history: cannot lock %s: %s", directory, e)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:
            log.debug("evaluation history: cannot lock %s: %s", directory, e)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fsync_dir(directory: Path) -> None:
    """Flush the rename to disk; a file system that cannot sync a directory is let be."""
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        log.debug("evaluation history: cannot flush %s to disk: %s", directory, e)
