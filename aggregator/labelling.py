"""The App's labels and the model's tags on stored stories: a story labelled (a topic
forgotten is the model's to decide again), its labels read back, the labelled stories,
the ``Document`` the model reads for a story, and the re-tag of every stored story with
the current model.

A mixin of :class:`aggregator.app.App`, over its store, clock, topic names and predictor
(declared below for mypy). Must not load or train a model (``App.predictor`` and
:mod:`aggregator.learning` do) nor import :mod:`aggregator.app`, which imports it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING

from .errors import ConfigError, ModelError
from .jobs import StoredText, retag_job, stored_document
from .store import LabelledStory, Store
from .taxonomy import normalize_category
from .types import Document, Prediction, Story
from .workers import WorkerDiedError

if TYPE_CHECKING:
    from .classify import Classifier
    from .jobs import ModelRef
    from .scoring import Scorer
    from .taxonomy import Taxonomy
    from .workers import WorkerPool

log = logging.getLogger(__name__)

#: Stories to re-tag from which the worker processes classify them: below it, starting
#: them (numpy and the model in each) costs about what they would save.
RETAG_IN_WORKERS = 2_000
#: A worker's time for one batch (~0.3 s for 500 stories): past it, the worker is
#: replaced and the batch is classified in the command.
RETAG_BATCH_LIMIT_S = 120.0


class Labelling:
    """Labels and re-tags for :class:`~aggregator.app.App`, over its store and predictor."""

    store: Store
    now: Callable[[], datetime]

    if TYPE_CHECKING:

        @property
        def predictor(self) -> Classifier | Scorer: ...

        @property
        def taxonomy(self) -> Taxonomy: ...

        def _topic_names(self, names: Sequence[str]) -> list[str]: ...

        def _ensure_pool(self) -> WorkerPool: ...

        def _model_ref(self) -> ModelRef: ...

        def _workers(self) -> int: ...

    # --- labels and the model -------------------------------------------------------------

    def label(
        self,
        story_id: int,
        positive: Sequence[str],
        negative: Sequence[str],
        forget: Sequence[str] = (),
    ) -> Story:
        """Record labels (``positive`` topics apply, ``negative`` do not); ``forget``
        withdraws earlier ones, and the model decides those topics again.

        A label stays under the name its topic had when it was given. So that the
        taxonomy can change under them (see :meth:`forget_targets`): ``forget`` also
        takes the name of a topic since removed or renamed, as the story's labels spell
        it, and a new word on a renamed topic replaces the story's label under its old
        name (``show`` listed "+DNS Security" and "-DNS Abuse and Security" side by
        side). When the model in use does not load (the taxonomy was edited after it was
        trained), the labels are withdrawn all the same and a warning says so (the
        command failed, having withdrawn them): the story keeps its other topics until
        a re-tag (``aggregator train``) decides them."""
        targets, unknown = self._forget_plan(story_id, forget)
        named = self._topic_names([*positive, *negative, *unknown])  # unknown ones: raises
        pos, neg = named[: len(positive)], named[len(positive) : len(positive) + len(negative)]
        gone = [name for name, _ in targets]
        if set(pos) & set(neg):
            raise ConfigError("a topic cannot be both added and removed")
        if set(gone) & (set(pos) | set(neg)):
            raise ConfigError("a topic cannot be both labelled and forgotten")
        replaced = self._renamed_labels(story_id, {*pos, *neg})
        withdraw = list(dict.fromkeys([*(n for _, ns in targets for n in ns), *replaced]))
        if pos or neg:
            self.store.add_labels(story_id, pos, neg, self.now())
        if withdraw and self.store.forget_labels(story_id, withdraw):
            story = self.store.get_story(story_id)
            try:
                (pred,) = self.predictor.predict([self.document(story)])
            except ModelError as e:
                log.warning(
                    "story %d: label withdrawn, but the model in use cannot decide its "
                    "topics again; it keeps the others until `aggregator train` re-tags "
                    "it (%s)",
                    story_id,
                    e,
                )
            else:
                self.store.set_predictions([(story_id, pred)])
        return self.store.get_story(story_id)

    def forget_targets(
        self, story_id: int, names: Sequence[str]
    ) -> list[tuple[str, tuple[str, ...]]]:
        """What ``label --forget`` of ``names`` withdraws on a story: per topic named,
        its name and the story's labels on it, as they are stored (a renamed topic's
        labels are moved to its new name by ``sync_topics``, the old name is looked for
        too); () when the story has no label on it. A name the taxonomy no longer has (a
        topic removed, or renamed) is looked for among the story's labels: it was
        refused as an unknown topic, so such a label could never be withdrawn and the
        story showed the topic for good.
        A name that is no topic at all is left out: :meth:`label` refuses it, with every
        other unknown topic of the command in one error."""
        return self._forget_plan(story_id, names)[0]

    def _forget_plan(
        self, story_id: int, names: Sequence[str]
    ) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
        """(:meth:`forget_targets`' answer, the names that are no topic at all)."""
        if not names:
            return [], []
        taxonomy = self.taxonomy
        added, removed = self.store.story_labels(story_id)
        labels = [*added, *removed]
        current = set(taxonomy.names)
        targets: dict[str, tuple[str, ...]] = {}
        unknown: list[str] = []
        for name in names:
            topic = taxonomy.get(name)
            if topic is None:
                key = normalize_category(name)
                stale = [n for n in labels if n not in current and normalize_category(n) == key]
                if stale:
                    targets.setdefault(stale[0], tuple(stale))
                    continue
                # an alias only one topic claims, as `+infosec` takes it: it was left out
                # here, and `--forget infosec` withdrew nothing and said nothing
                topic = taxonomy.resolve(name)
                if topic is None:
                    unknown.append(name)
                    continue
            mine = [
                n
                for n in labels
                if n == topic.name or (n not in current and taxonomy.resolve(n) == topic)
            ]
            targets.setdefault(topic.name, tuple(mine))
        return list(targets.items()), unknown

    def _renamed_labels(self, story_id: int, topics: set[str]) -> list[str]:
        """The story's labels under an earlier name of one of ``topics`` (renamed since)."""
        if not topics:
            return []
        taxonomy = self.taxonomy
        current = set(taxonomy.names)
        added, removed = self.store.story_labels(story_id)
        return [
            n
            for n in (*added, *removed)
            if n not in current and (t := taxonomy.resolve(n)) is not None and t.name in topics
        ]

    def story_labels(self, story_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(topics you added, topics you removed) on one story."""
        return self.store.story_labels(story_id)

    def labelled(self) -> list[LabelledStory]:
        return self.store.labelled_stories()

    def document(self, story: Story) -> Document:
        return stored_document(*_stored_text(story))

    def retag(
        self,
        batch: int = 500,
        *,
        every: bool = False,
        progress: Callable[[int, int], object] | None = None,
        in_workers_from: int | None = RETAG_IN_WORKERS,
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
        model tagged.

        From ``in_workers_from`` stories on (and with more than one worker), batches are
        classified in the worker processes, up to one per worker ahead of the writes:
        plain text and scoring were ~85 % of a re-tag, on one core. A batch a worker
        cannot do (its model does not load, it died) is classified here."""
        predictor = self.predictor
        seen = changed = last = looked = total = 0
        skip = None if every else predictor.version
        workers: tuple[WorkerPool, ModelRef] | None = None
        ahead: deque[tuple[list[Story], Future[list[Prediction]]]] = deque()

        def write(stories: list[Story], preds: Sequence[Prediction]) -> None:
            nonlocal seen, changed
            seen += len(stories)
            changed += self.store.set_predictions(
                [(s.id, p) for s, p in zip(stories, preds, strict=True)]
            )

        def finish_oldest() -> None:
            stories, future = ahead.popleft()
            preds: Sequence[Prediction] | None = None
            try:
                preds = future.result()
            except (ModelError, WorkerDiedError, TimeoutError, RuntimeError) as e:
                log.debug("re-tag: a worker could not classify a batch (%s)", e)
            # A worker that read another model from disk (a `train` swapped one in
            # meanwhile) would leave its stories for the next pass, again and again.
            if preds is None or any(p.model_version != predictor.version for p in preds):
                preds = predictor.predict([self.document(s) for s in stories])
            write(stories, preds)

        try:
            while ids := self.store.story_ids(after=last, not_version=skip):
                total += len(ids)
                if (
                    workers is None
                    and in_workers_from is not None
                    and total >= in_workers_from
                    and self._workers() > 1
                ):
                    workers = self._ensure_pool(), self._model_ref()
                for i in range(0, len(ids), batch):
                    stories = self.store.get_stories(ids[i : i + batch])
                    looked += len(ids[i : i + batch])
                    # tagged meanwhile (by the daemon's workers, with the new model)
                    stories = [s for s in stories if every or s.model_version != predictor.version]
                    if stories:
                        if workers is not None:
                            texts = [_stored_text(s) for s in stories]
                            job = workers[0].submit(
                                retag_job, texts, workers[1], timeout=RETAG_BATCH_LIMIT_S
                            )
                            ahead.append((stories, job))
                            while len(ahead) > self._workers():
                                finish_oldest()
                        else:
                            write(stories, predictor.predict([self.document(s) for s in stories]))
                    if progress is not None:
                        progress(looked, total)
                while ahead:
                    finish_oldest()
                last = ids[-1]
                skip = predictor.version  # stored since the first pass: the new model's, mostly
        finally:
            for _, future in ahead:
                future.cancel()
        return seen, changed


def _stored_text(story: Story) -> StoredText:
    return (
        story.id,
        story.title,
        story.summary,
        story.content,
        story.full_text,
        story.categories,
    )
