"""Build, fit and evaluate the topic classifier; write artifact + manifest + report.

Owns the training recipe (features, per-topic linear heads on partially known labels,
out-of-fold Platt calibration and per-topic thresholds, held-out scoring) and
``python -m aggregator.train``, which rebuilds the shipped model in ``models/classifier/``
from ``models/taxonomy.yaml`` and ``models/seeds/*.jsonl``; the reports it writes are
:mod:`aggregator.evaluation`'s. It imports :mod:`aggregator.classify` so that training and
prediction read stories through the same :func:`~aggregator.classify.text_for`.
It never touches the store: callers turn stored labels into :class:`Example` objects
(reading them from files is :mod:`aggregator.examples`'s, re-exported here). It never
prints either: how far a fit has come goes, as :class:`Step` objects, to the
:class:`Progress` callable a front end passes in (the CLI draws them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import joblib
import numpy as np
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from aggregator import modeldir
from aggregator.classify import (
    FORMAT_VERSION,
    MODEL_FILE,
    REPORT_FILE,
    Classifier,
    PhraseFeatures,
    TopicHeads,
    normalize_for_chars,
    text_for,
)
from aggregator.errors import ConfigError, ModelError
from aggregator.evaluation import (
    EvalReport,
    evaluate,
    label_arrays,
    load_report,
    report_from_arrays,
)
from aggregator.examples import examples_from_feed_categories, load_seed_examples, read_examples
from aggregator.scoring import (
    MANIFEST_FILE,
    SCORER_FILE,
    Scorer,
    artifact_paths,
    file_sha256,
)
from aggregator.taxonomy import Taxonomy
from aggregator.types import Example

__all__ = [
    "DEFAULT_PARAMS",
    "Progress",
    "Stage",
    "Step",
    "TrainReport",
    "cross_validate",
    "examples_from_feed_categories",
    "load_seed_examples",
    "main",
    "model_version",
    "no_progress",
    "read_examples",
    "train",
    "trained_report",
]

log = logging.getLogger(__name__)

REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

#: Every knob of the recipe; ``train(params=...)`` overrides any subset and the merged
#: values are written to the manifest.
DEFAULT_PARAMS: dict[str, Any] = {
    # word uni+bigrams and character 3-5-grams inside words, both sublinear TF-IDF
    "word_ngrams": [1, 2],
    "word_min_df": 2,
    "word_max_features": 40_000,
    "char_ngrams": [3, 5],
    "char_min_df": 2,
    "char_max_features": 40_000,
    # one feature per topic counting its taxonomy seed phrases, with this weight
    "phrase_weight": 1.0,
    # logistic regression per topic
    "C": 4.0,
    "class_weight": "balanced",
    "solver": "lbfgs",
    # relevance gate: score = P(internet-industry story) * P(topic | such a story)
    "gate": True,
    # label strength by source (users first, then feed categories, then our seeds)
    "source_weights": {"user": 3.0, "feed-category": 1.0, "seed": 1.0},
    # thresholds: chosen per topic on out-of-fold scores, maximising F-beta
    "cv_folds": 5,
    "threshold_beta": 0.75,  # leaning to precision: a wrong tag costs more than a missing one
    "threshold_bounds": [0.1, 0.9],
    "min_positives": 3,  # fewer known positives: threshold 0.5, no tuning
    # share of examples kept back for the held-out scores in the manifest (0 = none)
    "holdout": 0.2,
}


# -- progress -----------------------------------------------------------------------------

#: The stages of the long commands, in the order ``train`` goes through them:
#: ``examples`` (collecting them), ``heldout`` (a model on ~80 % of them, scored on the
#: rest, for the manifest's held-out scores), then the model itself: ``features``
#: (vectorising the texts), ``folds`` (its out-of-fold scores, which calibration and
#: thresholds are chosen on), ``heads`` (the final per-topic heads and the relevance
#: gate), ``thresholds``, ``write`` (the artifact); then ``retag`` (stored stories).
#: ``evaluate`` goes through ``examples`` and ``cv`` (cross-validation over the users'
#: labels), or ``score`` (the stories of a gold file).
Stage = Literal[
    "examples",
    "heldout",
    "features",
    "folds",
    "heads",
    "thresholds",
    "write",
    "retag",
    "cv",
    "score",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """How far a stage has come: ``done`` of ``total`` units (None: not known yet).
    A stage is reported once as it starts (``done`` 0) and again as units complete;
    it is over when ``done == total`` or the next stage starts. The units are whatever
    makes the bar move evenly (heads fitted, stories scored); ``note`` says in words
    where the stage is ("fold 2/5", "1,500/9,000 stories"), for people."""

    stage: Stage
    done: int
    total: int | None
    note: str = ""


class Progress(Protocol):
    """Told of each :class:`Step` of a long piece of work, in the thread doing it; it
    must be quick (it is called once per head fitted). The front end draws it (the CLI
    as a rich display on stderr); the library never prints."""

    def __call__(self, step: Step, /) -> None: ...


def no_progress(step: Step, /) -> None:
    """The default :class:`Progress`: nobody is watching."""


# (phase of one fit, units done, units in that phase, note): see _fit_all
_FitTick = Callable[[Literal["features", "folds", "heads", "thresholds"], int, int, str], None]


def _no_tick(phase: str, done: int, total: int, note: str) -> None:
    pass


_PHASES = {
    "features": "features",
    "folds": "cross-validation",
    "heads": "final heads",
    "thresholds": "thresholds",
}


def _fit_within(
    progress: Progress,
    stage: Stage,
    start: int,
    total: int,
    shape: tuple[int, int],
    note: str | None = None,
) -> _FitTick:
    """A tick that reports one :func:`_fit_all` (of ``shape``, see :func:`_fit_shape`)
    as units ``start`` to ``start + (folds + 1) * heads`` of ``stage``, which has
    ``total``: a fit inside a bigger stage (the held-out check, a fold of ``cv``).
    The note is ``note`` if given, else where the fit is and in which phase ("fold
    2/5, cross-validation"), the number first: it is what a narrow screen keeps."""
    folds, per_round = shape

    def tick(
        phase: Literal["features", "folds", "heads", "thresholds"], done: int, units: int, at: str
    ) -> None:
        if phase == "folds":
            counted = done
        elif phase == "heads":
            counted = folds * per_round + done
        elif phase == "thresholds":
            counted = (folds + 1) * per_round
        else:  # the features come before any head
            counted = 0
        progress(
            Step(
                stage=stage,
                done=start + counted,
                total=total,
                note=note if note is not None else f"{at}, {_PHASES[phase]}",
            )
        )

    return tick


# -- the recipe -------------------------------------------------------------------------


def _merge_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = json.loads(json.dumps(DEFAULT_PARAMS))
    for key, value in (params or {}).items():
        if key not in merged:
            raise ConfigError(f"unknown training parameter {key!r}")
        if isinstance(merged[key], dict) and isinstance(value, Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return dict(json.loads(json.dumps(merged)))


def _features(params: Mapping[str, Any], taxonomy: Taxonomy) -> FeatureUnion:
    blocks: list[tuple[str, Any]] = [
        (
            "words",
            TfidfVectorizer(
                ngram_range=tuple(params["word_ngrams"]),
                min_df=params["word_min_df"],
                max_features=params["word_max_features"],
                sublinear_tf=True,
                strip_accents="unicode",
                dtype=np.float32,
            ),
        )
    ]
    weights = {"words": 1.0}
    if params["char_ngrams"]:
        blocks.append(
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb",
                    preprocessor=normalize_for_chars,
                    ngram_range=tuple(params["char_ngrams"]),
                    min_df=params["char_min_df"],
                    max_features=params["char_max_features"],
                    sublinear_tf=True,
                    dtype=np.float32,
                ),
            )
        )
        weights["chars"] = 1.0
    if params["phrase_weight"]:
        blocks.append(
            (
                "phrases",
                PhraseFeatures(
                    topics=taxonomy.names,
                    phrases=tuple(t.seeds for t in taxonomy.topics),
                ),
            )
        )
        weights["phrases"] = float(params["phrase_weight"])
    return FeatureUnion(blocks, transformer_weights=weights)


def _fit_head(
    X: sp.csr_matrix,
    y: np.ndarray,
    w: np.ndarray,
    params: Mapping[str, Any],
    random_state: int,
) -> tuple[np.ndarray, float]:
    """One logistic-regression head; a constant one when only one class is known."""
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        prior = (n_pos + 0.5) / (len(y) + 1.0)
        return np.zeros(X.shape[1]), float(np.log(prior / (1 - prior)))
    model = LogisticRegression(
        C=float(params["C"]),
        class_weight=params["class_weight"],
        solver=params["solver"],
        max_iter=1000,
        random_state=random_state,
    )
    model.fit(X, y, sample_weight=w)
    return np.asarray(model.coef_[0], dtype=np.float64), float(model.intercept_[0])


def _platt(z: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    """Platt scaling (with Platt's smoothed targets) of decision values ``z`` -> P(y).

    Newton's method with a backtracking line search (Lin, Lin & Weng 2007, "A note on
    Platt's probabilistic outputs for support vector machines"): plain Newton steps from
    a = 1 overshoot when the positives and negatives barely overlap, as the seed examples
    of most small topics do, and ran off to slopes of ~1e10, i.e. scores of 0 or 1."""
    if len(z) == 0 or y.all() or not y.any():
        base = (y.sum() + 1.0) / (len(y) + 2.0)
        return 0.0, float(np.log(base / (1 - base)))
    w = np.ones(len(z)) if w is None else w
    n_pos = float(w[y].sum())
    n_neg = float(w[~y].sum())
    t = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(a: float, c: float) -> float:  # weighted cross-entropy against the targets
        f = a * z + c
        return float(np.sum(w * (np.logaddexp(0.0, f) - t * f)))

    a, c = 0.0, float(np.log((n_pos + 1.0) / (n_neg + 1.0)))
    current = loss(a, c)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(a * z + c, -40, 40)))
        g = w * (p - t)
        grad = np.array([np.dot(g, z), g.sum()])
        if np.abs(grad).max() < 1e-5:
            break
        h = w * p * (1 - p) + 1e-12
        hess = np.array([[np.dot(h, z * z), np.dot(h, z)], [np.dot(h, z), h.sum()]])
        step = np.linalg.solve(hess + np.eye(2) * 1e-12, grad)
        descent = float(grad @ step)
        s = 1.0
        while s >= 1e-10:  # halve the step until the loss drops enough (Armijo)
            na, nc = a - s * float(step[0]), c - s * float(step[1])
            candidate = loss(na, nc)
            if candidate < current - 1e-4 * s * descent:
                break
            s /= 2.0
        else:
            break
        a, c, current = na, nc, candidate
        if s * np.abs(step).max() < 1e-10:
            break
    return max(a, 0.0), c  # a negative slope would invert the head; never trust it


def _best_threshold(
    s: np.ndarray, y: np.ndarray, beta: float, bounds: tuple[float, float], min_pos: int
) -> float:
    """The threshold maximising F-beta of ``s >= thr`` on out-of-fold scores; halfway
    to the next lower score so that it is not balanced on one example's score."""
    lo, hi = bounds
    if int(y.sum()) < min_pos:
        return 0.5
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    y_sorted = y[order]
    tp = np.cumsum(y_sorted)
    pred = np.arange(1, len(s) + 1)
    b2 = beta * beta
    fbeta = (1 + b2) * tp / (pred + b2 * y.sum())
    # only cut between distinct scores
    distinct = np.append(s_sorted[1:] < s_sorted[:-1], True)
    fbeta = np.where(distinct, fbeta, -1.0)
    k = int(np.argmax(fbeta))
    nxt = s_sorted[k + 1] if k + 1 < len(s_sorted) else 0.0
    thr = (float(s_sorted[k]) + float(nxt)) / 2.0
    return float(min(max(thr, lo), hi))


@dataclass(slots=True)
class _Fitted:
    pipeline: Pipeline
    thresholds: dict[str, float]
    oof_scores: np.ndarray
    Y: np.ndarray
    K: np.ndarray
    names: tuple[str, ...] = field(default_factory=tuple)


def _fit_shape(n: int, params: Mapping[str, Any], taxonomy: Taxonomy) -> tuple[int, int]:
    """(out-of-fold folds, heads per round) of :func:`_fit_all` on ``n`` examples: it
    fits ``(folds + 1) * heads`` logistic regressions, nearly all of its time."""
    folds = max(2, min(int(params["cv_folds"]), n))
    return folds, len(taxonomy.names) + bool(params["gate"])


def _fit_all(
    examples: Sequence[Example],
    taxonomy: Taxonomy,
    params: Mapping[str, Any],
    random_state: int,
    tick: _FitTick = _no_tick,
) -> _Fitted:
    """Fit the whole recipe on ``examples``. ``tick`` hears of each phase: the features
    (0 then 1 of 1), each head of each out-of-fold round (``folds * heads`` units), each
    final head (``heads`` units, the gate last), the thresholds (0 then 1 of 1)."""
    names = taxonomy.names
    Y, K = label_arrays(examples, names, taxonomy)
    texts = [text_for(e.doc) for e in examples]
    sw = params["source_weights"]
    w = np.asarray([float(sw.get(e.source, 1.0)) for e in examples])

    n = len(examples)
    folds, per_round = _fit_shape(n, params, taxonomy)
    tick("features", 0, 1, f"{n:,} texts")
    features = _features(params, taxonomy)
    X = sp.csr_matrix(features.fit_transform(texts), dtype=np.float32)
    tick("features", 1, 1, f"{n:,} texts")
    for _, transformer in features.transformer_list:
        if hasattr(transformer, "stop_words_"):
            transformer.stop_words_ = None  # only for introspection; bloats the pickle
        # id() of the stop-word list, cached by scikit-learn: a memory address that would
        # make two identical trainings pickle to different bytes.
        transformer.__dict__.pop("_stop_words_id", None)

    gate = bool(params["gate"])
    rel_y: np.ndarray = np.asarray(Y.any(axis=1))
    rel_known: np.ndarray = np.asarray(rel_y | (K.all(axis=1) & ~rel_y))
    # With the gate, topic heads learn P(topic | internet-industry story): stories known
    # to belong to no topic teach the gate, not the heads.
    in_pop: np.ndarray = (rel_y | ~rel_known) if gate else np.ones(len(examples), dtype=bool)

    rng = np.random.RandomState(random_state)
    fold_of = rng.permutation(n) % folds
    Z = np.zeros((n, len(names)))
    Zr = np.zeros(n)
    units = folds * per_round
    for f in range(folds):
        tr = fold_of != f
        te = ~tr
        note = f"fold {f + 1}/{folds}"
        tick("folds", f * per_round, units, note)
        for j in range(len(names)):
            rows = tr & K[:, j] & in_pop
            coef, b = _fit_head(X[rows], Y[rows, j], w[rows], params, random_state)
            Z[te, j] = X[te] @ coef + b
            tick("folds", f * per_round + j + 1, units, note)
        if gate:
            rows = tr & rel_known
            coef, b = _fit_head(X[rows], rel_y[rows], w[rows], params, random_state)
            Zr[te] = X[te] @ coef + b
            tick("folds", (f + 1) * per_round, units, note)

    # Final heads on everything; calibration from the out-of-fold decisions.
    coefs = np.zeros((len(names), X.shape[1]))
    intercepts = np.zeros(len(names))
    calibration = np.zeros((len(names), 2))
    for j in range(len(names)):
        tick("heads", j, per_round, f"topic {j + 1}/{len(names)}")
        rows = K[:, j] & in_pop
        coefs[j], intercepts[j] = _fit_head(X[rows], Y[rows, j], w[rows], params, random_state)
        calibration[j] = _platt(Z[rows, j], Y[rows, j], w[rows])
    heads = TopicHeads(
        coef=coefs.astype(np.float16),
        intercept=intercepts,
        calibration=calibration,
    )
    if gate:
        tick("heads", len(names), per_round, "relevance gate")
        rows = rel_known
        gcoef, gb = _fit_head(X[rows], rel_y[rows], w[rows], params, random_state)
        heads.gate_coef = gcoef.astype(np.float16)
        heads.gate_intercept = gb
        heads.gate_calibration = _platt(Zr[rows], rel_y[rows], w[rows])
    tick("heads", per_round, per_round, f"{len(names)} topics" + (" and the gate" if gate else ""))
    oof = heads.calibrate(Z, Zr if gate else None)

    tick("thresholds", 0, 1, f"{len(names)} topics")
    bounds = (float(params["threshold_bounds"][0]), float(params["threshold_bounds"][1]))
    thresholds = {}
    for j, name in enumerate(names):
        known = K[:, j]
        thresholds[name] = round(
            _best_threshold(
                oof[known, j],
                Y[known, j],
                float(params["threshold_beta"]),
                bounds,
                int(params["min_positives"]),
            ),
            4,
        )
    tick("thresholds", 1, 1, f"{len(names)} topics")
    pipeline = Pipeline([("features", features), ("heads", heads)])
    return _Fitted(pipeline, thresholds, oof, Y, K, names)


def _in_memory(fitted: _Fitted, taxonomy: Taxonomy, version: str) -> Classifier:
    manifest = {
        "model_version": version,
        "topics": list(fitted.names),
        "thresholds": fitted.thresholds,
    }
    return Classifier(fitted.pipeline, taxonomy, manifest, None)


def _holdout_split(examples: Sequence[Example], fraction: float, random_state: int) -> np.ndarray:
    """Boolean mask of held-out rows, stratified by each example's rarest topic."""
    counts: dict[str, int] = {}
    for e in examples:
        for t in e.topics:
            counts[t] = counts.get(t, 0) + 1
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        key = min(e.topics, key=lambda t: (counts[t], t)) if e.topics else ""
        groups.setdefault(key, []).append(i)
    rng = np.random.RandomState(random_state + 1)
    mask = np.zeros(len(examples), dtype=bool)
    for key in sorted(groups):
        idx = np.asarray(groups[key])
        rng.shuffle(idx)
        k = round(len(idx) * fraction)
        if len(idx) >= 3:
            mask[idx[:k]] = True
    return mask


def _data_hash(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for e in examples:
        row = [
            e.source,
            e.doc.title,
            e.doc.summary,
            e.doc.text,
            list(e.doc.categories),
            sorted(e.topics),
            sorted(e.negative),
        ]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainReport:
    """What one training run produced."""

    out_dir: Path
    model_version: str
    examples: int
    by_source: Mapping[str, int]
    thresholds: Mapping[str, float]
    cv: EvalReport
    heldout: EvalReport | None
    seconds: float
    size_bytes: int


def train(
    examples: Sequence[Example],
    taxonomy: Taxonomy,
    out_dir: Path,
    *,
    params: Mapping[str, Any] | None = None,
    random_state: int = 0,
    progress: Progress = no_progress,
) -> TrainReport:
    """Fit the pipeline on ``examples`` and write ``out_dir/{model.joblib, manifest.json,
    report.json}`` atomically (a crash leaves the previous artifact in place).

    Per topic, only examples whose label for that topic is known train its head: all
    topics of seed examples, the listed positives/negatives of user and feed-category
    examples. Scores are Platt-calibrated and thresholds chosen on out-of-fold scores;
    with ``holdout`` > 0 the manifest also carries scores of a model trained without a
    stratified share of the examples, measured on that share. Same inputs and
    ``random_state`` give the same scores. ``progress`` hears of the stages
    ``heldout``, ``features``, ``folds``, ``heads``, ``thresholds`` and ``write``.
    """
    started = time.perf_counter()
    if not examples:
        raise ConfigError("no training examples")
    p = _merge_params(params)
    # One BLAS thread: sums are then reduced in a fixed order (same inputs -> same bytes),
    # and the solver's small dense operations do not fight the daemon's other workers.
    with threadpool_limits(limits=1):
        return _train(examples, taxonomy, Path(out_dir), p, random_state, started, progress)


def model_version(
    examples: Sequence[Example],
    taxonomy: Taxonomy,
    *,
    params: Mapping[str, Any] | None = None,
    random_state: int = 0,
) -> str:
    """The version :func:`train` gives the model it would fit on these inputs: the same
    version means the same examples, taxonomy, parameters, random state and
    scikit-learn, i.e. the same model (training is deterministic)."""
    return _version(_data_hash(examples), taxonomy, _merge_params(params), random_state)


def _version(data_hash: str, taxonomy: Taxonomy, p: Mapping[str, Any], random_state: int) -> str:
    version_key = json.dumps(
        [FORMAT_VERSION, data_hash, taxonomy.hash, p, random_state, sklearn.__version__],
        sort_keys=True,
    )
    return "clf-" + hashlib.sha256(version_key.encode()).hexdigest()[:12]


def trained_report(artifact_dir: Path, version: str) -> TrainReport | None:
    """The :class:`TrainReport` of the model already at ``artifact_dir`` when it is
    ``version`` (see :func:`model_version`) and intact (its files match the manifest's
    checksums, its report reads back); else None. Retraining it would only write the
    same model again."""
    artifact = artifact_paths(Path(artifact_dir))
    try:
        manifest = json.loads((artifact / MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest.get("model_version") != version or manifest.get("format") != FORMAT_VERSION:
            return None
        info, scorer, data = manifest["artifact"], manifest["scorer"], manifest["data"]
        if file_sha256(artifact / MODEL_FILE) != info["sha256"]:
            return None
        if file_sha256(artifact / str(scorer["file"])) != scorer["sha256"]:
            return None
        thresholds = {str(k): float(v) for k, v in manifest["thresholds"].items()}
        by_source = {str(k): int(v) for k, v in data["by_source"].items()}
        examples, size = int(data["examples"]), int(info["bytes"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    cv = load_report(artifact, section="cv")
    if cv is None:
        return None
    return TrainReport(
        out_dir=artifact,
        model_version=version,
        examples=examples,
        by_source=by_source,
        thresholds=thresholds,
        cv=cv,
        heldout=load_report(artifact, section="heldout"),
        seconds=0.0,
        size_bytes=size,
    )


def _train(
    examples: Sequence[Example],
    taxonomy: Taxonomy,
    out_dir: Path,
    p: dict[str, Any],
    random_state: int,
    started: float,
    progress: Progress,
) -> TrainReport:
    names = taxonomy.names
    data_hash = _data_hash(examples)
    libraries = {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }
    version = _version(data_hash, taxonomy, p, random_state)

    heldout: EvalReport | None = None
    if float(p["holdout"]) > 0:
        mask = _holdout_split(examples, float(p["holdout"]), random_state)
        if mask.any() and (~mask).sum() >= 10:
            part = [e for e, m in zip(examples, mask, strict=True) if not m]
            kept = [e for e, m in zip(examples, mask, strict=True) if m]
            shape = _fit_shape(len(part), p, taxonomy)
            units = (shape[0] + 1) * shape[1] + 1  # the heads, then scoring the rest
            heldout_tick = _fit_within(progress, "heldout", 0, units, shape)
            fitted_part = _fit_all(part, taxonomy, p, random_state, heldout_tick)
            note = f"scoring {len(kept):,} held-out examples"
            progress(Step(stage="heldout", done=units - 1, total=units, note=note))
            heldout = evaluate(_in_memory(fitted_part, taxonomy, version), kept, label="held-out")
            progress(Step(stage="heldout", done=units, total=units, note=note))

    def tick(
        phase: Literal["features", "folds", "heads", "thresholds"], done: int, total: int, at: str
    ) -> None:
        progress(Step(stage=phase, done=done, total=total, note=at))

    fitted = _fit_all(examples, taxonomy, p, random_state, tick)
    thr = np.asarray([fitted.thresholds[n] for n in names])
    cv = report_from_arrays(
        names, fitted.Y, fitted.K, fitted.oof_scores >= thr, "cross-validated (out-of-fold)"
    )

    by_source: dict[str, int] = {}
    for e in examples:
        by_source[e.source] = by_source.get(e.source, 0) + 1
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    progress(Step(stage="write", done=0, total=1))
    tmp = modeldir.tmp_dir(out_dir)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        model_path = tmp / MODEL_FILE
        joblib.dump(fitted.pipeline, model_path, compress=3)
        size = model_path.stat().st_size
        report = {
            "model_version": version,
            "heldout": heldout.to_dict() if heldout else None,
            "cv": cv.to_dict(),
        }
        manifest = {
            "format": FORMAT_VERSION,
            "model_version": version,
            "created_by": "aggregator.train",
            "libraries": libraries,
            "taxonomy": {"hash": taxonomy.hash, "version": taxonomy.version},
            "topics": list(names),
            "thresholds": fitted.thresholds,
            "data": {
                "sha256": data_hash,
                "examples": len(examples),
                "by_source": dict(sorted(by_source.items())),
                "positives": {n: int(fitted.Y[:, j].sum()) for j, n in enumerate(names)},
            },
            "params": p,
            "random_state": random_state,
            "scores": {
                "cv": _summary(cv),
                "heldout": _summary(heldout) if heldout else None,
            },
            "artifact": {"file": MODEL_FILE, "sha256": file_sha256(model_path), "bytes": size},
        }
        # The same model as plain arrays, for the worker processes (aggregator.scoring).
        scorer_path = tmp / SCORER_FILE
        Scorer.from_pipeline(fitted.pipeline, manifest, taxonomy).save(scorer_path)
        manifest["scorer"] = {"file": SCORER_FILE, "sha256": file_sha256(scorer_path)}
        _write_json(tmp / REPORT_FILE, report)
        _write_json(tmp / MANIFEST_FILE, manifest)
        modeldir.swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(Step(stage="write", done=1, total=1, note=f"{size / 1e6:.1f} MB"))
    seconds = time.perf_counter() - started
    log.info("trained model=%s examples=%d s=%.1f", version, len(examples), seconds)
    return TrainReport(
        out_dir=out_dir,
        model_version=version,
        examples=len(examples),
        by_source=by_source,
        thresholds=fitted.thresholds,
        cv=cv,
        heldout=heldout,
        seconds=seconds,
        size_bytes=size,
    )


def cross_validate(
    examples: Sequence[Example],
    taxonomy: Taxonomy,
    *,
    also_train_on: Sequence[Example] = (),
    params: Mapping[str, Any] | None = None,
    folds: int = 5,
    random_state: int = 0,
    progress: Progress = no_progress,
) -> EvalReport:
    """Per-topic scores of the whole recipe (thresholds included) by k-fold
    cross-validation over ``examples`` (e.g. the users' labels). ``also_train_on``
    (e.g. seeds and feed-category examples) joins every training fold but is never
    scored, so the report says how well the full recipe predicts ``examples``.
    ``progress`` hears of stage ``cv``: each fold is a whole training, heads and all."""
    if len(examples) < folds:
        raise ConfigError(f"need at least {folds} examples to cross-validate")
    p = _merge_params({**(params or {}), "holdout": 0})
    names = taxonomy.names
    Y, K = label_arrays(examples, names, taxonomy)
    P = np.zeros_like(Y)
    fold_of = np.random.RandomState(random_state).permutation(len(examples)) % folds
    col = {n: j for j, n in enumerate(names)}
    # per fold: its training's heads, then scoring the held-out labels (one unit)
    shapes = [
        _fit_shape(len(also_train_on) + int((fold_of != f).sum()), p, taxonomy)
        for f in range(folds)
    ]
    units = [(inner + 1) * heads + 1 for inner, heads in shapes]
    total = sum(units)
    with threadpool_limits(limits=1):
        for f in range(folds):
            start = sum(units[:f])
            note = f"fold {f + 1}/{folds}"
            tick = _fit_within(progress, "cv", start, total, shapes[f], note=f"{note}: fitting")
            part = [e for e, k in zip(examples, fold_of, strict=True) if k != f]
            fitted = _fit_all([*also_train_on, *part], taxonomy, p, random_state, tick)
            clf = _in_memory(fitted, taxonomy, "cv")
            test_idx = np.flatnonzero(fold_of == f)
            scored = f"{len(test_idx):,} labelled {'story' if len(test_idx) == 1 else 'stories'}"
            note += f": scoring {scored}"
            progress(Step(stage="cv", done=start + units[f] - 1, total=total, note=note))
            test_docs = [examples[int(i)].doc for i in test_idx]
            for i, pred in zip(test_idx, clf.predict(test_docs), strict=True):
                for ts in pred.topics:
                    P[i, col[ts.topic]] = True
            progress(Step(stage="cv", done=start + units[f], total=total, note=note))
    return report_from_arrays(names, Y, K, P, f"{folds}-fold cross-validation")


def _summary(report: EvalReport) -> dict[str, Any]:
    d = report.to_dict()
    return {"examples": d["examples"], "micro": d["micro"], "macro": d["macro"]}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# -- command line -----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m aggregator.train``: rebuild the shipped model from the repository."""
    parser = argparse.ArgumentParser(
        prog="python -m aggregator.train",
        description="Train the topic classifier from models/taxonomy.yaml and "
        "models/seeds/*.jsonl and write models/classifier/.",
    )
    parser.add_argument("--models-dir", type=Path, default=REPO_MODELS_DIR)
    parser.add_argument("--out", type=Path, default=None, help="default: MODELS_DIR/classifier")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models_dir: Path = args.models_dir
    try:
        taxonomy = Taxonomy.load(models_dir / "taxonomy.yaml")
        examples = load_seed_examples(models_dir)
        report = train(
            examples,
            taxonomy,
            args.out or models_dir / "classifier",
            random_state=args.random_state,
        )
    except (ConfigError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"model {report.model_version}: {report.examples} examples {dict(report.by_source)}")
    size_mb = report.size_bytes / 1e6
    print(f"written to {report.out_dir} ({size_mb:.2f} MB) in {report.seconds:.1f}s")
    for label, r in (("cross-validated", report.cv), ("held-out", report.heldout)):
        if r is not None:
            print(
                f"{label}: micro P/R/F1 {r.micro_precision:.3f}/{r.micro_recall:.3f}/"
                f"{r.micro_f1:.3f}  macro F1 {r.macro_f1:.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
