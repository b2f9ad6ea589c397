"""A model artifact's files and manifest, checked without loading the model: where an
artifact lives (:func:`artifact_paths`), and whether its manifest fits this install and
taxonomy (:func:`check_artifact`), each failure a :class:`ModelError` saying how to fix it.

Must not import numpy or scikit-learn: a poll with no usable model (none trained yet, or
the taxonomy edited since) learns why from here, and importing scikit-learn to be told
"missing manifest.json" cost each worker process ~50 MB and the poll's main process
numpy. Loading the model is :mod:`aggregator.scoring`'s (the numpy scorer) and
:mod:`aggregator.classify`'s (the pipeline).
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from aggregator.errors import ConfigError, ModelError
from aggregator.taxonomy import Taxonomy

__all__ = [
    "ARTIFACT_DIRNAME",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "REPORT_FILE",
    "RETRAIN_HINT",
    "artifact_paths",
    "check_artifact",
    "file_sha256",
]

#: Sub-directory of ``models/`` (or of a data directory) that holds one artifact.
ARTIFACT_DIRNAME = "classifier"
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.joblib"
REPORT_FILE = "report.json"
#: Bumped whenever the pickled pipeline's classes change shape; older artifacts are
#: refused with a retrain hint rather than unpickled into the wrong code.
FORMAT_VERSION = 1
RETRAIN_HINT = (
    "retrain with `aggregator train` (it writes DATA_DIR/models/classifier, which is used "
    "whenever it exists); `make model` / `python -m aggregator.train` rebuilds only the "
    "shipped model in models/"
)


def artifact_paths(models_dir: Path) -> Path:
    """The artifact directory for ``models_dir``: the directory itself when it holds a
    manifest, else its ``classifier/`` sub-directory."""
    models_dir = Path(models_dir)
    if (models_dir / MANIFEST_FILE).is_file():
        return models_dir
    return models_dir / ARTIFACT_DIRNAME


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_artifact(
    models_dir: Path, taxonomy: Taxonomy | None = None, *, checksum: bool = True
) -> tuple[Path, dict[str, Any], Taxonomy]:
    """The artifact directory, its manifest and the taxonomy (``taxonomy``, else the
    ``taxonomy.yaml`` beside the artifact) once the manifest is there, readable, of this
    format, made with the installed scikit-learn, for this taxonomy and complete, and
    the pickle is there (and matches its checksum, with ``checksum``)."""
    artifact = artifact_paths(models_dir)
    manifest_path = artifact / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelError(f"no classifier at {artifact} (missing {MANIFEST_FILE}); {RETRAIN_HINT}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"unreadable manifest {manifest_path}: {e}; {RETRAIN_HINT}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise ModelError(
            f"classifier at {artifact} has artifact format "
            f"{manifest.get('format') if isinstance(manifest, dict) else '?'}, "
            f"this version reads {FORMAT_VERSION}; {RETRAIN_HINT}"
        )
    if taxonomy is None:
        taxonomy = _default_taxonomy(artifact)
    _check_manifest(manifest, taxonomy, artifact)
    model_path = artifact / MODEL_FILE
    if not model_path.is_file():
        raise ModelError(f"classifier at {artifact} lacks {MODEL_FILE}; {RETRAIN_HINT}")
    if checksum:
        info = manifest.get("artifact")
        expected = info.get("sha256") if isinstance(info, dict) else None
        if expected != file_sha256(model_path):
            raise ModelError(
                f"{model_path} does not match its manifest checksum (corrupt or replaced); "
                f"{RETRAIN_HINT}"
            )
    return artifact, manifest, taxonomy


def _sklearn_version() -> str | None:
    try:
        return package_version("scikit-learn")  # what `import sklearn` would say
    except PackageNotFoundError:
        return None


def _default_taxonomy(artifact: Path) -> Taxonomy:
    for candidate in (artifact / "taxonomy.yaml", artifact.parent / "taxonomy.yaml"):
        if candidate.is_file():
            try:
                return Taxonomy.load(candidate)
            except ConfigError as e:
                raise ModelError(f"cannot load the taxonomy for {artifact}: {e}") from e
    raise ModelError(f"no taxonomy.yaml beside {artifact}; pass the taxonomy explicitly")


def _taxonomy_change(trained_for: object, taxonomy: Taxonomy) -> str:
    """What differs between the topics a model was trained for and the taxonomy's, in
    words ("topics added: X; removed: Y"): two hashes told a user who had edited
    taxonomy.yaml nothing about which edit mattered."""
    if not isinstance(trained_for, list) or not all(isinstance(t, str) for t in trained_for):
        return "its topics are not recorded"
    added = [t for t in taxonomy.names if t not in trained_for]
    removed = [t for t in trained_for if t not in taxonomy.names]
    said = [
        f"{what}: {', '.join(names)}"
        for what, names in (("added", added), ("removed", removed))
        if names
    ]
    if said:
        return "topics " + "; ".join(said)
    if tuple(trained_for) != taxonomy.names:
        return "topics reordered"
    return "the same topics, other ids or seed phrases"


def _check_manifest(manifest: dict[str, Any], taxonomy: Taxonomy, artifact: Path) -> None:
    libs = manifest.get("libraries", {})
    trained_with = libs.get("scikit-learn") if isinstance(libs, dict) else None
    installed = _sklearn_version()
    if trained_with != installed:
        raise ModelError(
            f"classifier at {artifact} was trained with scikit-learn {trained_with}, "
            f"this is {installed}; pickles are not portable across versions, "
            f"{RETRAIN_HINT}"
        )
    tax = manifest.get("taxonomy", {})
    if not isinstance(tax, dict) or tax.get("hash") != taxonomy.hash:
        raise ModelError(
            f"classifier at {artifact} was trained for a different taxonomy "
            f"({_taxonomy_change(manifest.get('topics'), taxonomy)}; "
            f"hash {str(tax.get('hash') if isinstance(tax, dict) else None)[:12]}, "
            f"current {taxonomy.hash[:12]}); {RETRAIN_HINT}"
        )
    topics = manifest.get("topics")
    thresholds = manifest.get("thresholds")
    if (
        not isinstance(topics, list)
        or not isinstance(thresholds, dict)
        or "model_version" not in manifest
        or any(t not in thresholds for t in topics)
        or tuple(topics) != taxonomy.names
    ):
        raise ModelError(f"manifest in {artifact} is incomplete; {RETRAIN_HINT}")
