"""How well a classifier tags labelled stories: per-topic and micro/macro precision,
recall and F1 over the (story, topic) pairs whose truth is known, reports saved beside a
model and compared with the previous one's."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aggregator.classify import REPORT_FILE, Classifier
from aggregator.errors import ConfigError, ModelError
from aggregator.scoring import artifact_paths
from aggregator.taxonomy import Taxonomy
from aggregator.types import Example

__all__ = [
    "EvalReport",
    "ReportDelta",
    "TopicMetrics",
    "evaluate",
    "label_arrays",
    "load_report",
    "report_from_arrays",
]

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
    topics: tuple[tuple[str, float | None, float], ...]  # (topic, f1 before, f1 now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "micro_f1": round(self.micro_f1, 4),
            "macro_f1": round(self.macro_f1, 4),
            "micro_precision": round(self.micro_precision, 4),
            "micro_recall": round(self.micro_recall, 4),
            "topics": {
                t: {
                    "f1_before": None if b is None else round(b, 4),
                    "f1_now": round(a, 4),
                    "delta": None if b is None else round(a - b, 4),
                }
                for t, b, a in self.topics
            },
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalReport:
    """Per-topic precision / recall / F1 with micro and macro averages. Macro averages
    run over topics with support (F1 is undefined for a topic nobody has); a topic given
    without support still costs micro precision."""

    topics: tuple[TopicMetrics, ...]
    examples: int
    label: str = ""

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

    def topic(self, name: str) -> TopicMetrics | None:
        return next((m for m in self.topics if m.topic == name), None)

    def to_dict(self) -> dict[str, Any]:
        def r(x: float) -> float:
            return round(x, 4)

        return {
            "label": self.label,
            "examples": self.examples,
            "micro": {
                "precision": r(self.micro_precision),
                "recall": r(self.micro_recall),
                "f1": r(self.micro_f1),
            },
            "macro": {
                "precision": r(self.macro_precision),
                "recall": r(self.macro_recall),
                "f1": r(self.macro_f1),
            },
            "topics": {
                m.topic: {
                    "precision": r(m.precision),
                    "recall": r(m.recall),
                    "f1": r(m.f1),
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
            return cls(topics=topics, examples=int(data["examples"]), label=label)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelError(f"not an evaluation report: {e!r}") from e

    def compare(self, previous: EvalReport | Mapping[str, Any]) -> ReportDelta:
        """Deltas against a previous report (an :class:`EvalReport` or its dict)."""
        prev = previous if isinstance(previous, EvalReport) else EvalReport.from_dict(previous)
        before = {m.topic: m for m in prev.topics}
        rows = []
        for m in self.topics:
            b = before.get(m.topic)
            rows.append((m.topic, None if b is None or not b.support else b.f1, m.f1))
        return ReportDelta(
            micro_f1=self.micro_f1 - prev.micro_f1,
            macro_f1=self.macro_f1 - prev.macro_f1,
            micro_precision=self.micro_precision - prev.micro_precision,
            micro_recall=self.micro_recall - prev.micro_recall,
            topics=tuple(rows),
        )


def load_report(artifact_dir: Path) -> EvalReport | None:
    """The evaluation saved beside a trained model (``report.json``): its held-out
    report when it has one, else the cross-validated one; None when there is none.
    Use it as the "previous model" side of :meth:`EvalReport.compare`."""
    path = artifact_paths(Path(artifact_dir)) / REPORT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    section = data.get("heldout") or data.get("cv") if isinstance(data, dict) else None
    return EvalReport.from_dict(section) if isinstance(section, dict) else None


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
    return EvalReport(topics=tuple(metrics), examples=int(Y.shape[0]), label=label)


def evaluate(
    classifier: Classifier,
    examples: Sequence[Example],
    *,
    topics: Sequence[str] | None = None,
    label: str = "",
) -> EvalReport:
    """Score ``classifier.predict`` against labelled examples. Only (story, topic) pairs
    whose truth is known count: all topics for seed examples, the listed positives and
    negatives for user and feed-category examples. ``topics`` restricts the report to
    those topics (e.g. the label space of an external test set)."""
    names = list(classifier.topics)
    if topics is not None:
        wanted = {classifier.taxonomy.canonical(t) for t in topics}
        names = [n for n in names if n in wanted]
    Y, K = label_arrays(examples, names, classifier.taxonomy)
    P = np.zeros_like(Y)
    col = {n: j for j, n in enumerate(names)}
    for i, pred in enumerate(classifier.predict([e.doc for e in examples])):
        for ts in pred.topics:
            j = col.get(ts.topic)
            if j is not None:
                P[i, j] = True
    return report_from_arrays(names, Y, K, P, label)


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
