"""A trained model as a record: its version (a hash of everything that decides the model:
examples, taxonomy, parameters, random state, scikit-learn), the :class:`TrainReport` a
training returns, and that report read back from an intact artifact
(:func:`trained_report`, so that ``train`` can keep a model it would only fit again);
with the shapes of the manifest's score summaries and of its JSON files.

Writing the artifact is :func:`aggregator.train.train`'s (and the swap into place
:mod:`aggregator.modeldir`'s); loading a model to predict with is
:mod:`aggregator.classify`'s. This module fits nothing and never prints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator.evaluation import EvalReport, load_report
from aggregator.manifest import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    MODEL_FILE,
    _sklearn_version,
    artifact_paths,
    file_sha256,
)
from aggregator.params import _merge_params
from aggregator.taxonomy import Taxonomy
from aggregator.types import Example

__all__ = ["TrainReport", "model_version", "trained_report"]


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
        # the installed scikit-learn's version as its metadata says it (what `import
        # sklearn` would: the manifest's check compares the two), without importing it
        [FORMAT_VERSION, data_hash, taxonomy.hash, p, random_state, _sklearn_version()],
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


def _summary(report: EvalReport) -> dict[str, Any]:
    d = report.to_dict()
    return {"examples": d["examples"], "micro": d["micro"], "macro": d["macro"]}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
