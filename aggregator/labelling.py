"""The App's labels and the model's tags on stored stories: a story labelled (a topic
forgotten is the model's to decide again), its labels read back, the labelled stories,
the ``Document`` the model reads for a story, and the re-tag of every stored story with
the current model.

A mixin of :class:`aggregator.app.App`, over its store, clock, topic names and predictor
(declared below for mypy). Must not load or train a model (``App.predictor`` and
:mod:`aggregator.learning` do) nor import :mod:`aggregator.app`, which imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from .errors import ConfigError
from .store import LabelledStory, Store
from .textutil import html_to_text
from .types import Document, Story

if TYPE_CHECKING:
    from .classify import Classifier
    from .scoring import Scorer


class Labelling:
    """Labels and re-tags for :class:`~aggregator.app.App`, over its store and predictor."""

    store: Store
    now: Callable[[], datetime]

    if TYPE_CHECKING:

        @property
        def predictor(self) -> Classifier | Scorer: ...

        def _topic_names(self, names: Sequence[str]) -> list[str]: ...

    # --- labels and the model -------------------------------------------------------------

    def label(
        self,
        story_id: int,
        positive: Sequence[str],
        negative: Sequence[str],
        forget: Sequence[str] = (),
    ) -> Story:
        """Record labels (``positive`` topics apply, ``negative`` do not); ``forget``
        withdraws earlier ones, and the model decides those topics again."""
        named = self._topic_names([*positive, *negative, *forget])
        pos, neg = named[: len(positive)], named[len(positive) : len(positive) + len(negative)]
        gone = named[len(positive) + len(negative) :]
        if set(pos) & set(neg):
            raise ConfigError("a topic cannot be both added and removed")
        if set(gone) & (set(pos) | set(neg)):
            raise ConfigError("a topic cannot be both labelled and forgotten")
        if pos or neg:
            self.store.add_labels(story_id, pos, neg, self.now())
        if gone and self.store.forget_labels(story_id, gone):
            story = self.store.get_story(story_id)
            (pred,) = self.predictor.predict([self.document(story)])
            self.store.set_predictions([(story_id, pred)])
        return self.store.get_story(story_id)

    def story_labels(self, story_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(topics you added, topics you removed) on one story."""
        return self.store.story_labels(story_id)

    def labelled(self) -> list[LabelledStory]:
        return self.store.labelled_stories()

    def document(self, story: Story) -> Document:
        summary = html_to_text(story.summary or "")
        body = story.full_text or html_to_text(story.content or "")
        return Document(
            id=str(story.id),
            title=story.title,
            summary=summary,
            text=body if body != summary else "",
            categories=story.categories,
        )

    def retag(self, batch: int = 500) -> tuple[int, int]:
        """Re-classify every stored story with the current model; returns (seen, changed).

        A daemon polling meanwhile may store stories its workers classified with the
        previous model just before it was replaced, after the ids to re-tag were read:
        so stories stored since are looked at too, until none are left that another
        model tagged."""
        predictor = self.predictor
        seen = changed = last = 0
        while ids := self.store.story_ids(after=last):
            for i in range(0, len(ids), batch):
                stories = self.store.get_stories(ids[i : i + batch])
                if last:  # stored since the first pass: the new model's already, mostly
                    stories = [s for s in stories if s.model_version != predictor.version]
                if not stories:
                    continue
                preds = predictor.predict([self.document(s) for s in stories])
                seen += len(stories)
                changed += self.store.set_predictions(
                    [(s.id, p) for s, p in zip(stories, preds, strict=True)]
                )
            last = ids[-1]
        return seen, changed
