"""The training recipe's parameters: every knob with its default (:data:`DEFAULT_PARAMS`)
and a caller's overrides merged over them, as the manifest records them.

Standard library only: a model's version is a hash of these (:mod:`aggregator.artifact`),
and `train` with nothing new to learn computes it, finds the model in use is that
version and keeps it without importing scikit-learn (~1.7 s of a fresh process). The
recipe that fits with them is :mod:`aggregator.recipe`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aggregator.errors import ConfigError

__all__ = ["DEFAULT_PARAMS"]

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
