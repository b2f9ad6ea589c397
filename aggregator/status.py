"""What ``aggregator status`` reports: the store's summary (:mod:`.store.summary`) and the
model in use, read from its manifest without loading it (the model takes ~1 s to load;
a status command must not), its file checked against the size and checksum the manifest
gives."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .manifest import MODEL_FILE, file_sha256
from .store import StoreSummary


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSummary:
    """The classifier in use: yours (``train``'s, beside the database) or the shipped one.
    ``error`` says why its manifest could not be read, or why its model file does not
    match it; the other fields are then None."""

    path: Path
    yours: bool
    version: str | None = None
    trained: datetime | None = None  # when its manifest was written
    examples: int | None = None  # what its cross-validated scores were measured on
    micro_f1: float | None = None
    macro_f1: float | None = None
    #: Its latest ``aggregator evaluate`` (on your gold file or labels), if any: what a
    #: user should trust over the scores on its own training examples.
    evaluated: Evaluated | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluated:
    at: datetime
    what: str  # "gold.jsonl (120 stories)", "cv over 12 user labels"
    micro_f1: float | None  # None: data with no story in any topic (F1 undefined)
    macro_f1: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    store: StoreSummary
    model: ModelSummary
    database: str  # the database URL, password hidden


def model_summary(models_dir: Path, *, yours: bool, history: Path) -> ModelSummary:
    """The :class:`ModelSummary` of ``models_dir/classifier``, from its manifest, and its
    latest evaluation in ``history`` (``evaluations.json``)."""
    manifest = models_dir / "classifier" / "manifest.json"
    try:
        data: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        trained = datetime.fromtimestamp(manifest.stat().st_mtime, UTC)
    except FileNotFoundError:
        return ModelSummary(path=manifest.parent, yours=yours, error="no model here")
    except (OSError, ValueError) as e:
        return ModelSummary(path=manifest.parent, yours=yours, error=f"unreadable manifest: {e}")
    if not isinstance(data, dict):
        # JSON, but not the object `train` writes: reading it as one was a traceback
        return ModelSummary(
            path=manifest.parent, yours=yours, error="unreadable manifest: not a JSON object"
        )
    if (problem := _model_file_problem(manifest.parent, data)) is not None:
        return ModelSummary(path=manifest.parent, yours=yours, error=problem)
    cv = _object(_object(data.get("scores")).get("cv"))

    def f1(average: str) -> float | None:
        value = _object(cv.get(average)).get("f1")
        return float(value) if isinstance(value, int | float) else None

    examples = cv.get("examples")
    version = str(data.get("model_version") or "") or None
    return ModelSummary(
        path=manifest.parent,
        yours=yours,
        version=version,
        trained=trained,
        examples=int(examples) if isinstance(examples, int) else None,
        micro_f1=f1("micro"),
        macro_f1=f1("macro"),
        evaluated=_latest_evaluation(history, version) if version else None,
    )


def _object(value: Any) -> dict[str, Any]:
    """``value`` where it is a JSON object, else an empty one: a manifest's scores of
    another shape are unknown scores, not a traceback."""
    return value if isinstance(value, dict) else {}


def _model_file_problem(artifact: Path, manifest: dict[str, Any]) -> str | None:
    """Why ``model.joblib`` is not the file its manifest describes (``train`` writes its
    size and SHA-256 there), or None. Not unpickled: its size first, which tells a file
    cut short (a full disk, a copy stopped part way) at no cost, then its checksum, as
    loading it checks (~10 ms for the shipped 5 MB). status read only the manifest, and
    reported such a model with its scores until `classify` failed to load it."""
    retrain = "`aggregator train` writes a new one"
    info = manifest.get("artifact")
    info = info if isinstance(info, dict) else {}
    path = artifact / MODEL_FILE
    try:
        size = path.stat().st_size
        expected = info.get("bytes")
        if isinstance(expected, int) and size != expected:
            return (
                f"{MODEL_FILE} is {size:,} bytes; its manifest says {expected:,} (cut short or"
                f" replaced); {retrain}"
            )
        if file_sha256(path) != info.get("sha256"):
            return f"{MODEL_FILE} does not match its manifest's checksum (corrupt); {retrain}"
    except FileNotFoundError:
        return f"{MODEL_FILE} is missing; {retrain}"
    except OSError as e:
        return f"cannot read {MODEL_FILE}: {e}"
    return None


def _latest_evaluation(history: Path, version: str) -> Evaluated | None:
    """The latest record of ``version`` in the evaluation history (the format
    :class:`~aggregator.evaluation.EvalHistory` writes, read here without importing the
    evaluation code and numpy); None when there is none or it cannot be read."""
    try:
        rows = json.loads(history.read_text(encoding="utf-8"))["evaluations"]
        for row in reversed(rows):
            if row.get("model_version") != version:
                continue
            report = row["report"]
            return Evaluated(
                at=datetime.fromisoformat(row["at"]),
                what=str(row["data"]["what"]),
                micro_f1=_score(report["micro"]["f1"]),
                macro_f1=_score(report["macro"]["f1"]),
            )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def _score(value: Any) -> float | None:
    """A recorded score; None where it was undefined (no story in any topic)."""
    return None if value is None else float(value)
