"""Train the topic classifier and write artifact + manifest + report; ``python -m
aggregator.train``.

Owns a training run: the held-out check (a model fitted without a stratified share of
the examples, scored on that share), the model itself, the files it writes
(``model.joblib``, ``scorer.npz``, ``manifest.json``, ``report.json``, swapped into place
whole by :mod:`aggregator.modeldir`), cross-validating the whole recipe over a set of
labels, and ``python -m aggregator.train``, which rebuilds the shipped model in
``models/classifier/`` from ``models/taxonomy.yaml`` and ``models/seeds/*.jsonl``. The
recipe it fits is :mod:`aggregator.recipe`'s; a model's version and its report read back
are :mod:`aggregator.artifact`'s; the reports it writes are
:mod:`aggregator.evaluation`'s. It never touches the store: callers turn stored labels
into :class:`Example` objects (reading them from files is :mod:`aggregator.examples`'s,
re-exported here, as are the names callers use from the recipe and the artifact). It
never prints either: how far a fit has come goes, as :class:`~aggregator.progress.Step`
objects, to the :class:`~aggregator.progress.Progress` callable a front end passes in
(the CLI draws them).
"""

from __future__ import annotations

import argparse
import logging
import platform
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import scipy
import sklearn
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from aggregator import modeldir
from aggregator.artifact import (
    TrainReport,
    _data_hash,
    _summary,
    _version,
    _write_json,
    model_version,
    trained_report,
)
from aggregator.errors import ConfigError, ModelError
from aggregator.evaluation import EvalReport, evaluate, label_arrays, report_from_arrays
from aggregator.examples import examples_from_feed_categories, load_seed_examples, read_examples
from aggregator.manifest import FORMAT_VERSION, MODEL_FILE, REPORT_FILE
from aggregator.progress import Progress, Stage, Step, no_progress
from aggregator.recipe import (
    DEFAULT_PARAMS,
    _fit_all,
    _fit_shape,
    _FitTick,
    _holdout_split,
    _in_memory,
    _merge_params,
)
from aggregator.scoring import MANIFEST_FILE, SCORER_FILE, Scorer, file_sha256
from aggregator.taxonomy import Taxonomy
from aggregator.types import Example

__all__ = [
    "DEFAULT_PARAMS",
    "TrainReport",
    "cross_validate",
    "examples_from_feed_categories",
    "load_seed_examples",
    "main",
    "model_version",
    "read_examples",
    "train",
    "trained_report",
]

log = logging.getLogger(__name__)

REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

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
    modeldir.check_writable(Path(out_dir))  # before minutes of fitting, not after
    p = _merge_params(params)
    # One BLAS thread: sums are then reduced in a fixed order (same inputs -> same bytes),
    # and the solver's small dense operations do not fight the daemon's other workers.
    with threadpool_limits(limits=1):
        return _train(examples, taxonomy, Path(out_dir), p, random_state, started, progress)


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
    modeldir.clear_leftovers(out_dir)
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
