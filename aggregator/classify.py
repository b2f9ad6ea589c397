"""Topic classification with a trained artifact: ``text_for``, ``Classifier.load(dir)``,
``predict`` / ``scores`` / ``explain`` / ``uncertainty``.

Owns what prediction needs and what training shares: the text a story is read as
(:func:`text_for`), the feature pieces that live inside the pickled pipeline
(:class:`PhraseFeatures`, :func:`normalize_for_chars`) and the final linear step
(:class:`TopicHeads`). Fitting lives in :mod:`aggregator.train`. This module imports
scikit-learn and numpy, so query commands must not import it (the app imports it lazily).

Why a hand-written final step instead of ``OneVsRestClassifier(CalibratedClassifierCV)``:
user and feed-category labels are partial (a topic can be unknown for a story), which
the stock wrappers cannot mask per topic; a dense weight matrix also scores thousands of
stories per second with one sparse product and makes ``explain`` exact (a linear model's
term contributions add up to its decision value).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from aggregator.analyzers import PhraseIndex, normalize_for_chars, text_for
from aggregator.errors import ModelError
from aggregator.manifest import (
    ARTIFACT_DIRNAME,
    FORMAT_VERSION,
    MODEL_FILE,
    REPORT_FILE,
    RETRAIN_HINT,
    check_artifact,
)
from aggregator.scoring import (
    FEED_CATEGORY_SCORE,
    predictions,
    uncertain_topics,
)
from aggregator.taxonomy import Taxonomy
from aggregator.types import Document, Prediction, TopicScore, TopicSource

__all__ = [
    "ARTIFACT_DIRNAME",
    "FEED_CATEGORY_SCORE",
    "FORMAT_VERSION",
    "NEAR_FRACTION",
    "NEAR_MARGIN",
    "REPORT_FILE",
    "Classifier",
    "PhraseFeatures",
    "TopicExplanation",
    "TopicHeads",
    "normalize_for_chars",
    "text_for",
]

#: ``explain``'s "nearly given": a score below its threshold by at most NEAR_MARGIN *and*
#: at least NEAR_FRACTION of the threshold. The margin alone listed hopeless topics:
#: thresholds go down to ~0.1, so a score of 0.0004 was "near" a 0.145 threshold.
NEAR_MARGIN = 0.15
NEAR_FRACTION = 0.5


class PhraseFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """One feature per topic: ``log1p`` of how many times the topic's seed phrases occur.

    Seed phrases come from the taxonomy; a phrase listed under several topics counts for
    each. A phrase that starts with a dot (``.com``) also matches as a domain suffix
    (``example.com``). Stateless apart from the phrase index built by ``fit``.
    """

    def __init__(self, topics: tuple[str, ...] = (), phrases: tuple[tuple[str, ...], ...] = ()):
        self.topics = topics
        self.phrases = phrases

    def fit(self, X: Any = None, y: Any = None) -> PhraseFeatures:
        if len(self.topics) != len(self.phrases):
            raise ValueError("topics and phrases must have the same length")
        built = PhraseIndex.build(self.phrases)
        self.index_, self.suffixes_ = built.index, built.suffixes
        return self

    def matches(self, text: str) -> list[tuple[int, str]]:
        """(topic column, matched phrase) for every seed-phrase occurrence in ``text``."""
        return PhraseIndex(self.index_, self.suffixes_).matches(text)

    def transform(self, X: Iterable[str]) -> sp.csr_matrix:
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        n_rows = 0
        for row, text in enumerate(X):
            n_rows = row + 1
            counts: dict[int, int] = {}
            for col, _ in self.matches(text):
                counts[col] = counts.get(col, 0) + 1
            for col, count in counts.items():
                rows.append(row)
                cols.append(col)
                vals.append(math.log1p(count))
        return sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)),
            shape=(n_rows, len(self.topics)),
            dtype=np.float32,
        )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(list(self.topics), dtype=object)


# -- the final step: one linear head per topic, Platt-calibrated, optionally gated -----


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0))))


class TopicHeads(BaseEstimator):  # type: ignore[misc]
    """Linear one-vs-rest topic scores with per-topic Platt calibration.

    ``score[t] = sigmoid(a_t * (x . W_t + b_t) + c_t)``; when a relevance gate is
    present the score is multiplied by ``sigmoid(a_r * (x . w_r + b_r) + c_r)``, the
    calibrated probability that the story is internet-industry news at all, and the
    topic heads then estimate P(topic | relevant). Built by :func:`aggregator.train.train`
    (calibration parameters come from out-of-fold decisions), never fitted here.
    """

    def __init__(
        self,
        coef: np.ndarray | None = None,
        intercept: np.ndarray | None = None,
        calibration: np.ndarray | None = None,
        gate_coef: np.ndarray | None = None,
        gate_intercept: float = 0.0,
        gate_calibration: tuple[float, float] = (1.0, 0.0),
    ):
        self.coef = coef
        self.intercept = intercept
        self.calibration = calibration
        self.gate_coef = gate_coef
        self.gate_intercept = gate_intercept
        self.gate_calibration = gate_calibration

    def fit(self, X: Any, y: Any = None) -> TopicHeads:
        raise TypeError("TopicHeads is built by aggregator.train.train(), not fitted")

    # Weights are stored as float16 to keep the committed artifact small (a few MB);
    # they are widened once to float32 for scoring. The cache is never pickled.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_wide", None)
        return state

    def _weights(self) -> tuple[np.ndarray, np.ndarray | None]:
        wide: tuple[np.ndarray, np.ndarray | None] | None = getattr(self, "_wide", None)
        if wide is None:
            assert self.coef is not None
            gate = None if self.gate_coef is None else self.gate_coef.astype(np.float32)
            wide = (np.ascontiguousarray(self.coef.astype(np.float32).T), gate)
            self._wide = wide
        return wide

    @property
    def gated(self) -> bool:
        return self.gate_coef is not None

    def decision(self, X: sp.spmatrix) -> np.ndarray:
        """Raw per-topic decision values, shape (n, topics)."""
        assert self.intercept is not None
        coef_t, _ = self._weights()
        z: np.ndarray = np.asarray(X @ coef_t, dtype=np.float64) + self.intercept
        return z

    def gate_decision(self, X: sp.spmatrix) -> np.ndarray:
        _, gate = self._weights()
        assert gate is not None
        return np.asarray(X @ gate, dtype=np.float64).ravel() + self.gate_intercept

    def calibrate(self, z: np.ndarray, zr: np.ndarray | None) -> np.ndarray:
        assert self.calibration is not None
        p = _sigmoid(self.calibration[:, 0] * z + self.calibration[:, 1])
        if zr is not None:
            a, c = self.gate_calibration
            p = p * _sigmoid(a * zr + c)[:, None]
        return p

    def predict_proba(self, X: sp.spmatrix) -> np.ndarray:
        """Calibrated scores in [0, 1], shape (n, topics)."""
        zr = self.gate_decision(X) if self.gated else None
        return self.calibrate(self.decision(X), zr)


# -- the classifier -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicExplanation:
    """Why one topic was, or nearly was, given.

    ``score`` and ``threshold`` are the model's own, whatever gave the topic (None only
    for a topic the model does not have, such as a label on a since-renamed topic);
    ``model_given`` is what the model alone decides (score >= threshold). ``given`` and
    ``source`` say whether and how the story carries the topic (``source`` None if it
    does not) and ``given_score`` the score it carries it with: from
    :meth:`Classifier.explain`, as a prediction would (feed categories, then rule or
    model); from ``App.learning.explain``, as stored, user labels first.
    ``removed_by_label``: the user's "-Topic" label keeps the topic off the story.

    ``terms_up`` / ``terms_down`` are (term, weight) pairs, largest magnitude first;
    weight = the term's contribution to the topic's calibrated log-odds, plus its effect
    through the relevance gate when the gate is unsure (``(1 - relevance)`` times its gate
    log-odds contribution)."""

    topic: str
    score: float | None
    threshold: float | None
    given: bool
    source: TopicSource | None
    terms_up: tuple[tuple[str, float], ...]
    terms_down: tuple[tuple[str, float], ...]
    model_given: bool = False
    given_score: float | None = None
    removed_by_label: bool = False
    relevance: float | None = None  # the gate's P(internet-industry story), if gated


class Classifier:
    """A loaded, checked artifact plus the taxonomy it was trained for."""

    def __init__(
        self, pipeline: Any, taxonomy: Taxonomy, manifest: dict[str, Any], path: Path | None
    ):
        self.pipeline = pipeline
        self.taxonomy = taxonomy
        self.manifest = manifest
        self.path = path
        self.version: str = str(manifest["model_version"])
        self.topics: tuple[str, ...] = tuple(manifest["topics"])
        self.thresholds: dict[str, float] = {
            t: float(manifest["thresholds"][t]) for t in self.topics
        }
        self._thr = np.asarray([self.thresholds[t] for t in self.topics], dtype=np.float64)
        features = pipeline.named_steps["features"]
        self._features = features
        self._heads: TopicHeads = pipeline.named_steps["heads"]
        self._phrase_slice = _block_slice(features, "phrases")
        self._names: np.ndarray | None = None

    # -- loading ----------------------------------------------------------------------

    @classmethod
    def load(cls, models_dir: Path, *, taxonomy: Taxonomy | None = None) -> Classifier:
        """Load the artifact in ``models_dir`` (a directory with ``manifest.json``, or
        one with a ``classifier/`` sub-directory holding it).

        The manifest is read and checked first (format, scikit-learn version, taxonomy
        hash, file checksum); only then is the pickle loaded, and only from that
        directory. ``taxonomy`` defaults to ``taxonomy.yaml`` next to the artifact
        directory. Every failure is a :class:`ModelError` saying how to fix it.
        """
        artifact, manifest, taxonomy = check_artifact(models_dir, taxonomy)
        model_path = artifact / MODEL_FILE
        import joblib

        try:
            pipeline = joblib.load(model_path)
        except Exception as e:  # unpickling can fail in many ways; all mean "retrain"
            raise ModelError(f"cannot load {model_path}: {e}; {RETRAIN_HINT}") from e
        steps = getattr(pipeline, "named_steps", {})
        if "features" not in steps or not isinstance(steps.get("heads"), TopicHeads):
            raise ModelError(f"{model_path} is not an aggregator topic pipeline; {RETRAIN_HINT}")
        return cls(pipeline, taxonomy, manifest, artifact)

    # -- scoring ----------------------------------------------------------------------

    def _transform(self, docs: Sequence[Document]) -> sp.csr_matrix:
        return sp.csr_matrix(self._features.transform([text_for(d) for d in docs]))

    def scores(self, docs: Sequence[Document]) -> np.ndarray:
        """Calibrated model scores, shape (len(docs), len(topics)), in topic order."""
        if not docs:
            return np.zeros((0, len(self.topics)))
        return np.asarray(self._heads.predict_proba(self._transform(docs)))

    def _scores_and_rule_flags(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        heads = self._heads
        z = heads.decision(X)
        zr = heads.gate_decision(X) if heads.gated else None
        scores = heads.calibrate(z, zr)
        given = scores >= self._thr
        rule = np.zeros_like(given)
        if self._phrase_slice is not None and given.any():
            # "rule" = the taxonomy's seed phrases are the reason: without their
            # contribution the score would not even reach half the threshold. (Phrases
            # that merely add to strong word evidence leave the decision to "model".)
            coef_t, gate = heads._weights()
            sl = self._phrase_slice
            Xp = X[:, sl]
            z0 = z - np.asarray(Xp @ coef_t[sl, :])
            zr0 = None
            if zr is not None:
                assert gate is not None
                zr0 = zr - np.asarray(Xp @ gate[sl]).ravel()
            rule = given & (heads.calibrate(z0, zr0) < self._thr / 2)
        return scores, rule

    def predict(self, docs: Sequence[Document]) -> list[Prediction]:
        """Topics for each document: those whose calibrated score reaches the topic's
        threshold (source "model", or "rule" when the seed phrases are the reason) plus
        those its feed categories name through taxonomy aliases (source
        "feed-category", score :data:`FEED_CATEGORY_SCORE`). Sorted by score, highest
        first, ties in taxonomy order."""
        if not docs:
            return []
        scores, rule = self._scores_and_rule_flags(self._transform(docs))
        return predictions(docs, scores, rule, self._thr, self.topics, self.taxonomy, self.version)

    def uncertainty(self, docs: Sequence[Document]) -> list[float]:
        """How unsure the model is about each document, in [0, 1]: 1 when some topic's
        score sits exactly on its threshold, 0 when every score is at 0 or 1. Label the
        most uncertain stories first (uncertainty sampling)."""
        return [u for u, _, _ in self.uncertain_topics(docs)]

    def uncertain_topics(self, docs: Sequence[Document]) -> list[tuple[float, TopicScore, float]]:
        """Per document, :meth:`uncertainty`, the topic it comes from with that topic's
        score, and its threshold: what a label on the story would settle."""
        return uncertain_topics(self.scores(docs), self._thr, self.topics) if docs else []

    # -- explanation ------------------------------------------------------------------

    def explain(
        self,
        doc: Document,
        top_terms: int = 8,
        *,
        margin: float = NEAR_MARGIN,
        fraction: float = NEAR_FRACTION,
        include: Collection[str] = (),
    ) -> list[TopicExplanation]:
        """The model's score, threshold and the terms that pushed the score up or down
        most, for each topic given (as :meth:`predict` gives it), each topic named in
        ``include`` and each topic nearly given: its score is below the threshold by at
        most ``margin`` and is at least ``fraction`` of the threshold (by default: with a
        0.14 threshold, a score of 0.07 or more). Given topics come first, by the score they
        are given with, then the others by score; ties in taxonomy order."""
        text = text_for(doc)
        X = sp.csr_matrix(self._features.transform([text]))
        scores, rule = self._scores_and_rule_flags(X)
        heads = self._heads
        assert heads.calibration is not None
        coef_t, gate = heads._weights()
        feed_topics = set(self.taxonomy.topics_for_categories(doc.categories))
        relevance: float | None = None
        gate_grad: np.ndarray | None = None
        if gate is not None:
            a, c = heads.gate_calibration
            zr = heads.gate_decision(X)
            relevance = float(_sigmoid(a * zr + c)[0])
            gate_grad = a * (1.0 - relevance) * gate.astype(np.float64)
        cols = X.indices
        vals = X.data.astype(np.float64)
        names = self._feature_names()
        out: list[TopicExplanation] = []
        for j, topic in enumerate(self.topics):
            score = float(scores[0, j])
            thr = float(self._thr[j])
            by_model = score >= thr
            in_feed = topic in feed_topics
            near = score >= thr - margin and score >= fraction * thr
            if not (by_model or in_feed or near or topic in include):
                continue
            source: TopicSource | None
            if in_feed:
                source = "feed-category"
            elif by_model:
                source = "rule" if rule[0, j] else "model"
            else:
                source = None
            # The term's share of the topic's calibrated log-odds (additive, does not
            # saturate at scores near 1), plus its effect through the relevance gate,
            # which only matters while the gate is not already sure.
            grad = heads.calibration[j, 0] * coef_t[cols, j].astype(np.float64)
            if gate_grad is not None:
                grad = grad + gate_grad[cols]
            contrib = grad * vals
            terms = self._readable_terms(text, names[cols], contrib)
            ranked = [
                (k, round(v, 4)) for k, v in sorted(terms.items(), key=lambda kv: -abs(kv[1]))
            ]
            up = tuple((k, v) for k, v in ranked if v > 0)[:top_terms]
            down = tuple((k, v) for k, v in ranked if v < 0)[:top_terms]
            given_score = FEED_CATEGORY_SCORE if in_feed else score if by_model else None
            out.append(
                TopicExplanation(
                    topic=topic,
                    score=score,
                    threshold=thr,
                    given=by_model or in_feed,
                    source=source,
                    terms_up=up,
                    terms_down=down,
                    model_given=by_model,
                    given_score=given_score,
                    relevance=relevance,
                )
            )
        order = {t: i for i, t in enumerate(self.topics)}
        out.sort(
            key=lambda e: (not e.given, -(e.given_score or 0.0), -(e.score or 0.0), order[e.topic])
        )
        return out

    def _feature_names(self) -> np.ndarray:
        if self._names is None:
            self._names = np.asarray(self._features.get_feature_names_out(), dtype=object)
        return self._names

    def _readable_terms(
        self, text: str, names: np.ndarray, contrib: np.ndarray
    ) -> dict[str, float]:
        """Fold feature contributions into terms a person reads: words and word pairs
        as they are, character n-grams shared out among the words that contain them,
        each seed-phrase feature as the phrases it matched."""
        terms: dict[str, float] = {}
        char_grams: dict[str, float] = {}
        for name, value in zip(names, contrib, strict=True):
            block, _, feature = str(name).partition("__")
            if block == "chars":
                char_grams[feature] = float(value)
            elif block == "phrases":
                phrases = self._phrase_matches(text, feature)
                label = f"seed phrases [{feature}]: {', '.join(phrases) or '-'}"
                terms[label] = terms.get(label, 0.0) + float(value)
            else:
                terms[feature] = terms.get(feature, 0.0) + float(value)
        if char_grams:
            for word, value in _share_char_grams(text, char_grams, self._char_range()).items():
                terms[word] = terms.get(word, 0.0) + value
        return terms

    def _char_range(self) -> tuple[int, int]:
        for name, transformer in self._features.transformer_list:
            if name == "chars":
                lo, hi = transformer.ngram_range
                return int(lo), int(hi)
        return (3, 5)

    def _phrase_matches(self, text: str, topic: str) -> list[str]:
        for name, transformer in self._features.transformer_list:
            if name == "phrases":
                col = list(transformer.topics).index(topic)
                seen: list[str] = []
                for c, phrase in transformer.matches(text):
                    if c == col and phrase not in seen:
                        seen.append(phrase)
                return seen
        return []


def _share_char_grams(
    text: str, grams: dict[str, float], ngram_range: tuple[int, int]
) -> dict[str, float]:
    """Split each character n-gram's contribution evenly over its occurrences in the
    words of ``text`` (the char_wb analyzer pads each word with spaces)."""
    lo, hi = ngram_range
    occurrences: dict[str, list[str]] = {}
    for word in normalize_for_chars(text).split():
        padded = f" {word} "
        for n in range(lo, hi + 1):
            for k in range(max(len(padded) - n + 1, 1)):
                gram = padded[k : k + n]
                if gram in grams:
                    occurrences.setdefault(gram, []).append(word)
    out: dict[str, float] = {}
    for gram, words in occurrences.items():
        share = grams[gram] / len(words)
        for word in words:
            out[word] = out.get(word, 0.0) + share
    return out


def _block_slice(features: Any, block: str) -> slice | None:
    """Column slice of one named block of a fitted FeatureUnion."""
    start = 0
    for name, transformer in features.transformer_list:
        if transformer in (None, "drop"):
            continue
        width = len(transformer.get_feature_names_out())
        if name == block:
            return slice(start, start + width)
        start += width
    return None
