"""The classifier as the app uses it: training from every source, evaluation, explanation
and label suggestions. Part of the service layer (``App.learning``); scikit-learn is
imported only when one of these is called.

Training data, strongest first: labels users gave (``aggregator label``), stored stories
whose feed categories map to a topic through the taxonomy's aliases, and the seed examples
in ``models/seeds/``. A user's model is written beside the database
(``DATA_DIR/models/classifier``) and wins over the shipped one from then on.

``train`` and ``evaluate`` take minutes: they report their stages to a
:class:`~aggregator.progress.Progress` callable the front end passes (the CLI draws it on
stderr); nothing here prints.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .errors import ConfigError
from .textutil import counted
from .types import Example, Story, StoryQuery

if TYPE_CHECKING:
    from .app import App
    from .classify import TopicExplanation
    from .evaluation import EvalData, EvalRecord, EvalReport, ReportDelta
    from .progress import Progress
    from .taxonomy import Taxonomy
    from .train import TrainReport

log = logging.getLogger(__name__)

SUGGEST_POOL = 5000  # newest stories considered for label suggestions
# Newest stories whose feed categories become training examples: every stored story made
# `train` read the whole store into memory (texts and all: gigabytes at 300,000 stories)
# and fit on up to that many examples (50,000 took ~6 minutes); 20,000 is three times the
# seeds, and the newest say best how the feeds tag today.
CATEGORY_STORIES = 20_000


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainOutcome:
    report: TrainReport
    previous: EvalReport | None  # the replaced model's cross-validated report
    retagged: int
    changed: int
    # the model in use was already trained on exactly these examples: it was kept, and
    # ``report`` is its own (``previous`` is then None)
    unchanged: bool = False
    # topics with fewer positive examples than the recipe tunes a threshold for, and how
    # many they have (a topic just added: 0), in taxonomy order
    thin: Mapping[str, int] = field(default_factory=dict)

    @property
    def delta(self) -> ReportDelta | None:
        """The new model's cross-validated scores minus the replaced model's (each over
        its own training data)."""
        return None if self.previous is None else self.report.cv.compare(self.previous)


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    report: EvalReport
    model_version: str  # the model evaluated
    data: EvalData  # what it was evaluated on
    previous: EvalRecord | None  # latest evaluation of the same data by another model version
    recorded: bool = True  # False: the history could not be written (a warning says why)

    @property
    def delta(self) -> ReportDelta | None:
        return None if self.previous is None else self.report.compare(self.previous.report)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suggestion:
    story: Story
    uncertainty: float  # 1: a score exactly on its threshold
    topic: str  # the topic it comes from
    score: float
    threshold: float


class Learning:
    def __init__(self, app: App) -> None:
        self.app = app

    # --- classify ---------------------------------------------------------------------

    # --- training data ------------------------------------------------------------------

    def examples(self) -> list[Example]:
        """Every training example with its source: user, feed-category (from the newest
        ``CATEGORY_STORIES`` stories), seed.

        A labelled story's feed categories still count for the topics its labels leave
        open (a second, feed-category example of the same story), and so do those of the
        other copies of its cluster: a label speaks for the story, whichever feed's copy
        it was given on.

        The taxonomy may have changed since a label was given or a seed written: a
        topic renamed (its old name among its aliases, or spelled like its id) is read
        under its new name, and a label under the new name wins over one under the old;
        labels of a topic removed are skipped with a warning, and kept; seeds keep the
        topics the taxonomy still has (they failed the whole `train` before)."""
        from .examples import load_seed_examples

        taxonomy = self.app.taxonomy
        out: list[Example] = []
        labels: dict[int, set[str]] = {}  # by cluster (a story alone is its own)
        dropped: set[str] = set()
        # By story, not by when each label was written: a label withdrawn and given again
        # moved its story behind the others, and the same labels made another model
        # version (`train` fitted again) and other cross-validation data (`evaluate`
        # found no earlier run of them). Stored stories by id, then archived ones.
        for ls in sorted(self.app.labelled(), key=lambda ls: (ls.story.id < 0, abs(ls.story.id))):
            positive, negative, gone = _current_labels(taxonomy, ls.positive, ls.negative)
            dropped.update(gone)
            # Keyed by cluster: a -DNS on the second feed's copy of a story went on
            # teaching DNS through the first copy's feed category (the same text taught
            # both ways), the copy the newest stories list for the whole cluster.
            labels.setdefault(_cluster(ls.story), set()).update((*positive, *negative))
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
                out.extend(self._category_example(ls.story, labels[_cluster(ls.story)]))
        if dropped:
            log.warning(
                "user labels of topics no longer in the taxonomy are skipped: %s",
                ", ".join(sorted(dropped)),
            )
        for story in self.app.stories(StoryQuery(limit=CATEGORY_STORIES)):
            out.extend(self._category_example(story, labels.get(_cluster(story), set())))
        models = self.app.settings.models_dir
        out.extend(_current_seeds(taxonomy, load_seed_examples(models), models / "seeds"))
        return out

    def _collect(self, progress: Progress) -> list[Example]:
        """:meth:`examples`, reported as stage ``examples`` with what it found."""
        from .progress import Step

        progress(Step(stage="examples", done=0, total=None, note="labels, feed categories, seeds"))
        found = self.examples()
        count = {"user": 0, "feed-category": 0, "seed": 0}
        for e in found:
            count[e.source] += 1
        note = ", ".join(
            (
                counted(count["user"], "label"),
                counted(count["feed-category"], "feed-category story", "feed-category stories"),
                counted(count["seed"], "seed"),
            )
        )
        progress(Step(stage="examples", done=len(found), total=len(found), note=note))
        return found

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

    def version_in_use(self) -> str | None:
        """The version of the model in use, from its manifest (None if unreadable)."""
        import json

        from .manifest import MANIFEST_FILE, artifact_paths

        path = artifact_paths(self.app.settings.active_models_dir) / MANIFEST_FILE
        try:
            version = json.loads(path.read_text(encoding="utf-8")).get("model_version")
        except (OSError, ValueError, AttributeError):
            return None
        return version if isinstance(version, str) else None

    def train(
        self, *, retag: bool = True, force: bool = False, progress: Progress | None = None
    ) -> TrainOutcome:
        """Retrain from all sources into the data directory, then re-tag stored stories.

        When the model in use was trained on exactly these examples (the same labels,
        feed categories, seeds, taxonomy and recipe: the same model version), fitting
        again would write the same model after minutes of work: it is kept (unless
        ``force``), and the stories are still re-tagged. ``progress`` hears of the
        stages (see :data:`~aggregator.progress.Stage`): ``examples``, the training's, then
        ``retag``."""
        # scikit-learn (aggregator.train) only to fit: keeping the model in use needs its
        # version and report alone (~1.7 s of a fresh process's ~3 s)
        from .artifact import model_version, trained_report
        from .evaluation import load_report
        from .params import DEFAULT_PARAMS
        from .progress import Step, no_progress

        report_step = progress or no_progress
        active = self.app.settings.active_models_dir
        examples = self._collect(report_step)
        # A topic just added to the taxonomy has no seeds and no labels: the model
        # learns nothing for it, and nothing said so.
        thin = _thin_topics(examples, self.app.taxonomy, int(DEFAULT_PARAMS["min_positives"]))
        if thin:
            log.warning(
                "too few examples to learn %s (%s): the model gives %s rarely if ever until "
                "you label stories with %s (`aggregator label ID +Topic`); feed categories "
                "still tag %s through the aliases",
                counted(len(thin), "topic"),
                ", ".join(f"{t}: {n}" for t, n in thin.items()),
                *(("it",) * 3 if len(thin) == 1 else ("them",) * 3),
            )
        kept = None if force else trained_report(active, model_version(examples, self.app.taxonomy))
        if kept is not None:
            report, previous = kept, None
        else:
            # the model being replaced: the user's previous one, or the shipped one
            previous = load_report(active, section="cv")
            from .train import train

            out_dir = self.app.settings.trained_models_dir / "classifier"
            report = train(examples, self.app.taxonomy, out_dir, progress=report_step)
            self.app.reload_classifier()
        seen = changed = 0
        if retag:
            report_step(
                Step(stage="retag", done=0, total=None, note="stories another model tagged")
            )

            def looked(done: int, total: int) -> None:
                note = f"{done:,}/{total:,} stories"
                report_step(Step(stage="retag", done=done, total=total, note=note))

            # the stories the model in use tagged are left alone, unless forced
            seen, changed = self.app.retag(every=force, progress=looked)
            note = f"{counted(seen, 'story', 'stories')}, {changed:,} with changed topics"
            report_step(Step(stage="retag", done=seen, total=seen, note=note))
        return TrainOutcome(
            report=report,
            previous=previous,
            retagged=seen,
            changed=changed,
            unchanged=kept is not None,
            thin=thin,
        )

    def evaluate(
        self,
        gold: Path | None = None,
        *,
        progress: Progress | None = None,
        gold_bytes: bytes | None = None,
        gold_stream: BinaryIO | None = None,
    ) -> Evaluation:
        """Against a gold JSONL file ({"title", "text", "topics"} on every line), or by
        5-fold cross-validation over the users' labels. The result is recorded in the
        evaluation history beside the user's model (``DATA_DIR/models/evaluations.json``)
        and compared with the latest evaluation of the same data (the same file bytes, or
        the same labels) by a different model version. ``progress`` hears of stage
        ``score`` (the gold stories), or ``examples`` then ``cv``. ``gold_bytes``: the
        gold file's bytes, already read, or ``gold_stream`` its stream (standard input;
        ``gold`` names either). The gold file is read a line at a time, twice (checked
        before the model loads, then scored), so memory does not grow with its texts."""
        from .evaluation import (
            EvalData,
            EvalHistory,
            EvalRecord,
            GoldFile,
            evaluate_stream,
            examples_sha256,
        )
        from .progress import Step, no_progress
        from .train import cross_validate

        report_step = progress or no_progress
        if gold is not None:
            if gold_bytes is not None:
                gold_stream = io.BytesIO(gold_bytes)
            # a pipe's copy beside the database, not in a /tmp that may be RAM
            with GoldFile(gold, gold_stream, spool_dir=self.app.settings.data_dir) as gold_file:

                def reading(done: int, size: int | None) -> None:
                    # the first read, before a story is scored: minutes for gigabytes,
                    # which showed nothing at all
                    of = f" of {size / 1e6:,.1f}" if size is not None else ""
                    note = f"checking the file: {done / 1e6:,.1f}{of} MB"
                    report_step(Step(stage="score", done=0, total=None, note=note))

                # before loading the model: bad input fails fast
                data = gold_file.check(self.app.taxonomy, read=reading)
                n = gold_file.count
                report_step(Step(stage="score", done=0, total=n, note="loading the model"))
                model_version = self.app.classifier.version

                def scored(done: int, total: int) -> None:
                    note = f"{done:,}/{total:,} stories"
                    report_step(Step(stage="score", done=done, total=total, note=note))

                report = evaluate_stream(
                    self.app.classifier,
                    gold_file.stories(self.app.taxonomy),
                    total=n,
                    label=data.what,
                    scored=scored,
                )
        else:
            everything = self._collect(report_step)
            user = [e for e in everything if e.source == "user"]
            if len(user) < 5:
                raise ConfigError(
                    f"only {len(user)} labelled {'story' if len(user) == 1 else 'stories'}: "
                    "give at least 5 labels "
                    "(`aggregator label ID +Topic`) or pass a labelled file"
                )
            # the whole recipe: each fold also trains on the other sources, as `train` does,
            # less the feed-category examples of labelled stories: a held-out story's text
            # would otherwise be trained on
            labelled = {e.doc.id for e in user}
            rest = [
                e
                for e in everything
                if e.source == "seed" or (e.source == "feed-category" and e.doc.id not in labelled)
            ]
            data = EvalData(
                kind="cv", sha256=examples_sha256(user), what=f"cv over {len(user)} user labels"
            )
            # recorded under the model in use: the one trained by this recipe on this data
            # when `train` ran since the last labels
            model_version = self.app.predictor.version
            report = replace(
                cross_validate(user, self.app.taxonomy, also_train_on=rest, progress=report_step),
                label=data.what,
            )
        history = EvalHistory(self.app.settings.evaluations_path)
        previous = history.previous(data, model_version)
        recorded = True
        try:
            history.add(
                EvalRecord(model_version=model_version, data=data, at=self.app.now(), report=report)
            )
        except OSError as e:
            # The history only informs: a data directory the user may not write, or a
            # full disk, failed the command after the whole evaluation, its scores unseen.
            recorded = False
            log.warning(
                "evaluation not recorded in %s (%s): the next model is not compared with it",
                history.path,
                e.strerror or e,
            )
        return Evaluation(
            report=report,
            model_version=model_version,
            data=data,
            previous=previous,
            recorded=recorded,
        )

    # --- explain / suggest --------------------------------------------------------------

    def explain(self, story_id: int) -> tuple[Story, list[TopicExplanation]]:
        """Why the story has the topics ``show`` lists: each topic it carries, as stored
        (the store applied the user's labels over the pipeline's feed categories, rules
        and model, so ``given`` / ``source`` are read back, not decided again here), in
        ``show``'s order; then each topic a "-Topic" label removed and each the model
        gives or nearly gives (see ``Classifier.explain``) that the story does not carry,
        by score. Every entry keeps the model's own score, threshold and terms, so the
        user sees what the model alone would do."""
        from .classify import TopicExplanation

        story = self.app.story(story_id)
        removed = self.app.story_labels(story_id)[1]
        clf = self.app.classifier
        model = {
            e.topic: e
            for e in clf.explain(
                self.app.document(story), include={t.topic for t in story.topics} | set(removed)
            )
        }

        def entry(topic: str) -> TopicExplanation:
            # a topic the model lacks (a label on a since-renamed topic) has no score
            return model.get(topic) or TopicExplanation(
                topic=topic,
                score=None,
                threshold=None,
                given=False,
                source=None,
                terms_up=(),
                terms_down=(),
            )

        carried = [
            replace(entry(t.topic), given=True, source=t.source, given_score=t.score)
            for t in story.topics
        ]
        order = {t: i for i, t in enumerate(clf.topics)}
        others = sorted(
            ({*model, *removed} - {t.topic for t in story.topics}),
            key=lambda t: (-(model[t].score or 0.0) if t in model else 1.0, order.get(t, 0), t),
        )
        rest = [
            replace(
                entry(t), given=False, source=None, given_score=None, removed_by_label=t in removed
            )
            for t in others
        ]
        return story, carried + rest

    def suggest(self, n: int) -> list[Suggestion]:
        """The unlabelled stories the model is least sure about (uncertainty sampling),
        each with the topic whose score sits nearest its threshold."""
        if n < 1:
            raise ConfigError("--suggest takes a positive number")
        # by cluster: the newest stories list a cluster's first copy, which was suggested
        # when the user had labelled another feed's copy of the same story
        labelled = {_cluster(ls.story) for ls in self.app.labelled()}
        pool = [
            s
            for s in self.app.stories(StoryQuery(limit=SUGGEST_POOL))
            if _cluster(s) not in labelled
        ]
        if not pool:
            return []
        # the numpy scorer when the artifact has one: the same scores, ~2x the speed
        found = self.app.predictor.uncertain_topics([self.app.document(s) for s in pool])
        ranked = sorted(zip(pool, found, strict=True), key=lambda p: (-p[1][0], -p[0].id))
        return [
            Suggestion(
                story=story, uncertainty=u, topic=about.topic, score=about.score, threshold=t
            )
            for story, (u, about, t) in ranked[:n]
        ]


def _thin_topics(examples: Sequence[Example], taxonomy: Taxonomy, minimum: int) -> dict[str, int]:
    """The taxonomy's topics with fewer than ``minimum`` positive examples, with their
    counts, in taxonomy order."""
    count = dict.fromkeys(taxonomy.names, 0)
    for e in examples:
        for name in e.topics:
            topic = taxonomy.get(name)
            if topic is not None:
                count[topic.name] += 1
    return {t: n for t, n in count.items() if n < minimum}


def _current_labels(
    taxonomy: Taxonomy, positive: Sequence[str], negative: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...], set[str]]:
    """A story's labels as the taxonomy names their topics now: (positive, negative,
    names of topics it no longer has). A label stays under the name its topic had when
    it was given; one under the topic's current name was given since, and wins (a
    +DNS Security from before the rename and a -DNS Abuse and Security after it taught
    the topic as given)."""
    word: dict[str, bool] = {}
    gone: set[str] = set()
    current = set(taxonomy.names)
    for recent in (False, True):
        for names, value in ((positive, True), (negative, False)):
            for name in names:
                if (name in current) is recent:
                    topic = taxonomy.resolve(name)
                    if topic is None:
                        gone.add(name)
                    else:
                        word[topic.name] = value
    return (
        tuple(t for t, v in word.items() if v),
        tuple(t for t, v in word.items() if not v),
        gone,
    )


def _current_seeds(taxonomy: Taxonomy, seeds: list[Example], where: Path) -> list[Example]:
    """The seed examples with their topics as the taxonomy names them now. Ours were
    written for the shipped taxonomy: after a user renamed or removed a topic, every
    `train` and `evaluate` failed with "examples name unknown topics". A renamed topic's
    seeds count for it when its old name is among its aliases (or spelled like its id);
    a seed keeps the topics the taxonomy still has, and stays fully labelled over them
    (a story only about a topic removed is now one about none of them)."""
    unknown: dict[str, int] = {}
    read_as: dict[str, str] = {}
    out: list[Example] = []
    for e in seeds:
        if all(taxonomy.get(t) is not None for t in (*e.topics, *e.negative)):
            out.append(e)  # as it was: the same examples keep the same model version
            continue
        kept: tuple[list[str], list[str]] = ([], [])
        for row, keep in ((e.topics, kept[0]), (e.negative, kept[1])):
            for name in row:
                topic = taxonomy.resolve(name)
                if topic is None:
                    unknown[name] = unknown.get(name, 0) + 1
                    continue
                if topic.name != name and taxonomy.get(name) is None:
                    read_as[name] = topic.name
                if topic.name not in keep:
                    keep.append(topic.name)
        out.append(replace(e, topics=tuple(kept[0]), negative=tuple(kept[1])))
    if read_as:
        log.info(
            "seed examples' topics read through the taxonomy's aliases: %s",
            ", ".join(f"{old} as {new}" for old, new in sorted(read_as.items())),
        )
    if unknown:
        log.warning(
            "seed examples in %s name topics the taxonomy no longer has (%s): those "
            "labels are skipped; to keep a renamed topic's seeds, list its old name "
            "among its aliases",
            where,
            ", ".join(f"{name} in {n:,}" for name, n in sorted(unknown.items())),
        )
    return out


def _cluster(story: Story) -> int:
    """The id of the cluster the story is in: the same story in other feeds (one canonical
    URL, or near-identical text) shares it; a story alone, or archived, is its own."""
    return story.cluster_id if story.cluster_id is not None and story.id > 0 else story.id
