"""The training recipe: features (word and character TF-IDF, seed-phrase counts), per-topic
linear heads on partially known labels and the relevance gate, out-of-fold Platt
calibration and per-topic thresholds, fitted in memory on a list of examples
(:func:`_fit_all`), and the stratified held-out split. Its parameters
(:data:`DEFAULT_PARAMS`, re-exported here) are :mod:`aggregator.params`'s.

:mod:`aggregator.train` runs it and writes what it fitted; this module writes no file,
never touches the store and never prints: how far a fit has come goes to the tick its
caller passes. It imports :mod:`aggregator.classify` so that training and prediction read
stories through the same :func:`~aggregator.classify.text_for`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from aggregator.classify import (
    Classifier,
    PhraseFeatures,
    TopicHeads,
    normalize_for_chars,
    text_for,
)
from aggregator.errors import ConfigError
from aggregator.evaluation import label_arrays
from aggregator.params import DEFAULT_PARAMS
from aggregator.params import _merge_params as _merge_params  # train's, tests'
from aggregator.taxonomy import Taxonomy
from aggregator.textutil import counted
from aggregator.types import Example

__all__ = ["DEFAULT_PARAMS"]

#: Threads fitting one round's logistic regressions (the GIL caps what more would give).
FIT_THREADS = max(1, min(4, os.cpu_count() or 1))

# (phase of one fit, units done, units in that phase, note): see _fit_all
_FitTick = Callable[[Literal["features", "folds", "heads", "thresholds"], int, int, str], None]


def _no_tick(phase: str, done: int, total: int, note: str) -> None:
    pass


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


def _one_thread_each() -> None:
    """A fitting thread's own limits: one BLAS and one OpenMP thread (as ``train`` sets
    for itself), so its sums run in the same order as the calling thread's would."""
    threadpool_limits(limits=1)


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
    threads: int = FIT_THREADS,
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
    try:
        X = sp.csr_matrix(features.fit_transform(texts), dtype=np.float32)
    except ValueError as e:
        # scikit-learn's "After pruning, no terms remain. Try a lower min_df": a few
        # examples (a taxonomy of the user's own, taught by a handful of labels) with no
        # word in common; a traceback, exit 1, said nothing a user could act on
        raise ConfigError(
            f"too few examples to learn from ({n:,}, no word found in two of them): "
            "label more stories (`aggregator label ID +Topic`) or add seed examples"
        ) from e
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

    def head(rows: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        return _fit_head(X[rows], y[rows], w[rows], params, random_state)

    # Each round's heads are independent: they are fitted on ``threads`` threads (the
    # solver releases the GIL for part of its work), and taken up in order. Each thread
    # uses one BLAS and one OpenMP thread as the caller does (``train``'s
    # threadpool_limits; an OpenMP limit is per thread), so that its sums run in the
    # same order: the model is the same bytes as a one-thread fit's.
    with ThreadPoolExecutor(threads, initializer=_one_thread_each) as pool:
        for f in range(folds):
            tr = fold_of != f
            te = ~tr
            note = f"fold {f + 1}/{folds}"
            tick("folds", f * per_round, units, note)
            jobs = [(tr & K[:, j] & in_pop, Y[:, j]) for j in range(len(names))]
            if gate:
                jobs.append((tr & rel_known, rel_y))
            for j, (coef, b) in enumerate(pool.map(lambda job: head(*job), jobs)):
                if j < len(names):
                    Z[te, j] = X[te] @ coef + b
                else:
                    Zr[te] = X[te] @ coef + b
                tick("folds", f * per_round + j + 1, units, note)

        # Final heads on everything; calibration from the out-of-fold decisions.
        coefs = np.zeros((len(names), X.shape[1]))
        intercepts = np.zeros(len(names))
        calibration = np.zeros((len(names), 2))
        jobs = [(K[:, j] & in_pop, Y[:, j]) for j in range(len(names))]
        if gate:
            jobs.append((rel_known, rel_y))
        fitted_heads = pool.map(lambda job: head(*job), jobs)
        for j in range(len(names)):
            tick("heads", j, per_round, f"topic {j + 1}/{len(names)}")
            rows = K[:, j] & in_pop
            coefs[j], intercepts[j] = next(fitted_heads)
            calibration[j] = _platt(Z[rows, j], Y[rows, j], w[rows])
        heads = TopicHeads(
            coef=coefs.astype(np.float16),
            intercept=intercepts,
            calibration=calibration,
        )
        if gate:
            tick("heads", len(names), per_round, "relevance gate")
            rows = rel_known
            gcoef, gb = next(fitted_heads)
            heads.gate_coef = gcoef.astype(np.float16)
            heads.gate_intercept = gb
            heads.gate_calibration = _platt(Zr[rows], rel_y[rows], w[rows])
    tick(
        "heads",
        per_round,
        per_round,
        counted(len(names), "topic") + (" and the gate" if gate else ""),
    )
    oof = heads.calibrate(Z, Zr if gate else None)

    tick("thresholds", 0, 1, counted(len(names), "topic"))
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
    tick("thresholds", 1, 1, counted(len(names), "topic"))
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
