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

    def retag(
        self,
        batch: int = 500,
        *,
        every: bool = False,
        progress: Callable[[int, int], object] | None = None,
    ) -> tuple[int, int]:
        """Re-classify the stored stories another model (or none) tagged with the current
        model, every stored story with ``every``; returns (seen, changed). ``progress``
        hears (stories looked at, stories to look at) after each batch.

        A story the model in use tagged is left as it is: its text has not changed since
        (a new text, an article extracted, is classified again as it is stored), so the
        same model gives the same topics, and ``train`` keeping the model in use spent
        minutes re-tagging every story for no change. ``train --force`` asks for every
        story.

        A daemon polling meanwhile may store stories its workers classified with the
        previous model just before it was replaced, after the ids to re-tag were read:
        so stories stored since are looked at too, until none are left that another
        model tagged."""
        predictor = self.predictor
        seen = changed = last = looked = total = 0
        skip = None if every else predictor.version
        while ids := self.store.story_ids(after=last, not_version=skip):
            total += len(ids)
            for i in range(0, len(ids), batch):
                stories = self.store.get_stories(ids[i : i + batch])
                looked += len(ids[i : i + batch])
                # tagged meanwhile (by the daemon's workers, with the new model)
                stories = [s for s in stories if every or s.model_version != predictor.version]
                if stories:
                    preds = predictor.predict([self.document(s) for s in stories])
                    seen += len(stories)
                    changed += self.store.set_predictions(
                        [(s.id, p) for s, p in zip(stories, preds, strict=True)]
                    )
                if progress is not None:
                    progress(looked, total)
            last = ids[-1]
            skip = predictor.version  # stored since the first pass: the new model's, mostly
        return seen, changed
