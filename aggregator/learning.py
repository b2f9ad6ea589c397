"""The classifier as the app uses it: training from every source, evaluation, explanation
and label suggestions. Part of the service layer (``App.learning``); scikit-learn is
imported only when one of these is called.

Training data, strongest first: labels users gave (``aggregator label``), stored stories
whose feed categories map to a topic through the taxonomy's aliases, and the seed examples
in ``models/seeds/``. A user's model is written beside the database
(``DATA_DIR/models/classifier``) and wins over the shipped one from then on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ModelError
from .types import Document, Example, Prediction, Story, StoryQuery

if TYPE_CHECKING:
    from .app import App
    from .classify import TopicExplanation
    from .evaluation import EvalReport, ReportDelta
    from .train import TrainReport

log = logging.getLogger(__name__)

SUGGEST_POOL = 5000  # newest stories considered for label suggestions


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainOutcome:
    report: TrainReport
    previous: dict[str, Any] | None  # the replaced model's report.json
    retagged: int
    changed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    report: EvalReport
    delta: ReportDelta | None
    against: str  # what the delta compares with


class Learning:
    def __init__(self, app: App) -> None:
        self.app = app

    # --- classify ---------------------------------------------------------------------

    def classify(self, docs: Sequence[Document]) -> list[Prediction]:
        return self.app.predictor.predict(docs)

    # --- training data ------------------------------------------------------------------

    def examples(self) -> list[Example]:
        """Every training example with its source: user, feed-category, seed.

        A labelled story's feed categories still count for the topics its labels leave
        open (a second, feed-category example of the same story). Labels of topics the
        taxonomy no longer has are skipped with a warning, and kept."""
        from .examples import load_seed_examples

        taxonomy = self.app.taxonomy
        out: list[Example] = []
        labels: dict[int, set[str]] = {}
        dropped: set[str] = set()
        for ls in self.app.labelled():
            dropped.update(t for t in (*ls.positive, *ls.negative) if taxonomy.get(t) is None)
            positive = tuple(t for t in ls.positive if taxonomy.get(t) is not None)
            negative = tuple(t for t in ls.negative if taxonomy.get(t) is not None)
            labels[ls.story.id] = {taxonomy.canonical(t) for t in (*positive, *negative)}
            if positive or negative:
                out.append(
                    Example(
                        doc=self.app.document(ls.story),
                        topics=positive,
                        negative=negative,
                        source="user",
                    )
                )
            if ls.story.id < 0:  # archived with a removed feed: not among stored stories
                out.extend(self._category_example(ls.story, labels[ls.story.id]))
        if dropped:
            log.warning(
                "user labels of topics no longer in the taxonomy are skipped: %s",
                ", ".join(sorted(dropped)),
            )
        for story in self.app.stories(StoryQuery(limit=None)):
            out.extend(self._category_example(story, labels.get(story.id, set())))
        out.extend(load_seed_examples(self.app.settings.models_dir))
        return out

    def _category_example(self, story: Story, labelled: set[str]) -> list[Example]:
        """The story's feed categories mapped to topics, less those a user labelled."""
        if not story.categories:
            return []
        mapped = self.app.taxonomy.topics_for_categories(story.categories)
        topics = tuple(t for t in mapped if t not in labelled)
        if not topics:
            return []
        return [Example(doc=self.app.document(story), topics=topics, source="feed-category")]

    # --- train / evaluate ---------------------------------------------------------------

    def train(self, *, retag: bool = True) -> TrainOutcome:
        """Retrain from all sources into the data directory, then re-tag stored stories."""
        from .train import train

        previous = self._current_report()
        out_dir = self.app.settings.trained_models_dir / "classifier"
        report = train(self.examples(), self.app.taxonomy, out_dir)
        self.app.reload_classifier()
        seen = changed = 0
        if retag:
            seen, changed = self.app.retag()
        return TrainOutcome(report=report, previous=previous, retagged=seen, changed=changed)

    def _current_report(self) -> dict[str, Any] | None:
        path = self.app.settings.active_models_dir / "classifier" / "report.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def evaluate(self, gold: Path | None = None) -> Evaluation:
        """Against a labelled JSONL file ({"title", "text", "topics"}), or by 5-fold
        cross-validation over the users' labels; compared with the current model's own
        report."""
        from .evaluation import EvalReport, evaluate
        from .examples import read_examples
        from .train import cross_validate

        if gold is not None:
            # a gold file is fully labelled: topics not listed are known not to apply
            examples = read_examples(gold, source="seed")
            report = evaluate(self.app.classifier, examples)
        else:
            everything = self.examples()
            user = [e for e in everything if e.source == "user"]
            if len(user) < 5:
                raise ConfigError(
                    f"only {len(user)} labelled stories: give at least 5 labels "
                    "(`aggregator label ID +Topic`) or pass a labelled file"
                )
            # the whole recipe: each fold also trains on the other sources, as `train` does
            rest = [e for e in everything if e.source != "user"]
            report = cross_validate(user, self.app.taxonomy, also_train_on=rest)
        against = "the model's cross-validated scores at training time"
        delta = None
        previous = self._current_report()
        if previous is not None:
            prev = previous.get("cv") or previous.get("heldout") or previous
            try:
                delta = report.compare(EvalReport.from_dict(prev))
            except (ModelError, KeyError, TypeError, ValueError):
                delta = None  # an unreadable old report is no reason to fail evaluation
        return Evaluation(report=report, delta=delta, against=against)

    # --- explain / suggest --------------------------------------------------------------

    def explain(self, story_id: int) -> tuple[Story, list[TopicExplanation]]:
        story = self.app.story(story_id)
        return story, self.app.classifier.explain(self.app.document(story))

    def suggest(self, n: int) -> list[tuple[Story, float]]:
        """The unlabelled stories the model is least sure about (uncertainty sampling)."""
        if n < 1:
            raise ConfigError("--suggest takes a positive number")
        labelled = {ls.story.id for ls in self.app.labelled()}
        pool = [s for s in self.app.stories(StoryQuery(limit=SUGGEST_POOL)) if s.id not in labelled]
        if not pool:
            return []
        scores = self.app.classifier.uncertainty([self.app.document(s) for s in pool])
        ranked = sorted(zip(pool, scores, strict=True), key=lambda p: (-p[1], -p[0].id))
        return ranked[:n]
