"""The trained topic pipeline's arithmetic without scikit-learn: ``Scorer``.

Owns a scorer that reproduces ``Classifier.predict`` from plain arrays saved
beside the pickled pipeline (``scorer.npz``, written by :mod:`aggregator.train`).

Why: the worker processes that parse feeds classify every new story. Unpickling the
scikit-learn pipeline there imports scikit-learn and SciPy (~75 MB of RSS in each worker,
more than everything else a worker holds) and routes every batch through the generic
vectorizer code. The scorer needs numpy only, counts n-grams with ``collections.Counter``
(C speed) instead of a Python loop per n-gram, and gives the same scores to within float32
rounding (``tests/test_scoring.py`` checks it against the pipeline on the seed corpus).

The vectorizers' half of the arithmetic (n-grams looked up in the vocabularies, TF-IDF
rows, phrase counts) is ``Features`` in :mod:`aggregator.scorerfeatures`, a mixin of
``Scorer``; this module keeps the heads' half (the weights, the decisions, calibration,
thresholds), the arrays' persistence, the artifact's file names and the predictions the
pipeline shares.

Must not import scikit-learn or SciPy, directly or through another module.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from aggregator.analyzers import (
    PhraseIndex,
    normalize_for_chars,
    text_for,
)
from aggregator.errors import ModelError
from aggregator.manifest import (
    ARTIFACT_DIRNAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    artifact_paths,
    file_sha256,
)
from aggregator.scorerfeatures import Features, _Block
from aggregator.taxonomy import Taxonomy
from aggregator.types import Document, Prediction, TopicScore, TopicSource

__all__ = [
    "ARTIFACT_DIRNAME",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "SCORER_FILE",
    "Scorer",
    "artifact_paths",
    "file_sha256",
    "load_scorer",
    "predictions",
]

SCORER_FILE = "scorer.npz"
#: Bumped whenever the arrays in ``scorer.npz`` change meaning.
SCORER_FORMAT = 1
#: A topic named by the publisher's own feed category is a statement, not a guess.
FEED_CATEGORY_SCORE = 1.0


def load_scorer(models_dir: Path, taxonomy: Taxonomy) -> Scorer | None:
    """The artifact's scorer when everything checks out exactly as ``Classifier.load``
    would check it (format, scikit-learn version, taxonomy hash, checksum); None
    otherwise, and the caller loads the pipeline, which reports what is wrong."""
    artifact = artifact_paths(models_dir)
    try:
        manifest = json.loads((artifact / MANIFEST_FILE).read_text(encoding="utf-8"))
        trained_with = manifest["libraries"]["scikit-learn"]
        installed = package_version("scikit-learn")
        entry = manifest["scorer"]
        ok = (
            manifest.get("format") == FORMAT_VERSION
            and trained_with == installed
            and manifest["taxonomy"]["hash"] == taxonomy.hash
            and tuple(manifest["topics"]) == taxonomy.names
            and entry["sha256"] == file_sha256(artifact / entry["file"])
        )
    except (OSError, ValueError, KeyError, TypeError, PackageNotFoundError):
        return None
    if not ok:
        return None
    scorer = Scorer.load(artifact / entry["file"], taxonomy)
    return scorer if scorer.version == manifest["model_version"] else None


#: Stories scored together: one chunk's weight rows (~400 per story, float32) take
#: ~30 MB, and per-chunk numpy calls cost nothing per story.
_CHUNK = 512


# -- the scorer --------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0))))


# Stories per dense product in Scorer._accumulate: 64 long feed stories have ~15k distinct
# columns, a 4 MB matrix.
_GROUP = 64

_blas: Any = None  # threadpoolctl's controller, made on first use


def _one_blas_thread() -> Any:
    """A context in which BLAS runs one thread. The scorer's products are small: a
    second OpenBLAS thread brought no speed and, spinning between calls, doubled the CPU
    time (measured: 7.6 s against 3.8 s for 10k feed stories)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


class Scorer(Features):
    """``Classifier.predict`` from arrays: TF-IDF blocks -> linear heads -> Platt
    calibration (times the relevance gate) -> per-topic thresholds, plus the "rule"
    source and feed-category topics. Built by :meth:`from_pipeline` at training time,
    saved with :meth:`save`, loaded in workers with :meth:`load`."""

    def __init__(
        self,
        *,
        blocks: list[_Block],
        phrases: PhraseIndex | None,
        coef: np.ndarray,
        intercept: np.ndarray,
        calibration: np.ndarray,
        gate: tuple[np.ndarray, float, float, float] | None,
        topics: tuple[str, ...],
        thresholds: np.ndarray,
        version: str,
        taxonomy: Taxonomy,
    ) -> None:
        self.blocks = blocks
        self.phrases = phrases
        coef16 = np.asarray(coef, dtype=np.float16)  # (topics, features), as stored
        self.intercept = intercept.astype(np.float64)
        self.calibration = calibration.astype(np.float64)
        self.gate = gate
        self.topics = topics
        self.thr = thresholds.astype(np.float64)
        self.version = version
        self.taxonomy = taxonomy
        self._phrase_block = next((b for b in blocks if b.kind == "phrases"), None)
        # One (features, topics [+ gate]) matrix, kept in float16 as trained (4 MB less
        # in every worker than float32); decisions are gathers of the non-zero features'
        # rows, widened to float64 (see ``_accumulate``).
        width = len(topics) + (gate is not None)
        self._weights = np.empty((coef16.shape[1], width), dtype=np.float16)
        self._weights[:, : len(topics)] = coef16.T
        if gate is not None:
            self._weights[:, len(topics)] = np.asarray(gate[0], dtype=np.float16)
        # word -> its character n-gram columns as raw int32 bytes (a bytes object is a
        # third of the size of a small numpy array, and joins in one call)
        self._word_cols: dict[str, bytes] = {}

    # -- building and persistence ---------------------------------------------------------

    @classmethod
    def from_pipeline(cls, pipeline: Any, manifest: dict[str, Any], taxonomy: Taxonomy) -> Scorer:
        """Read the arrays out of a fitted pipeline (scikit-learn is loaded by then)."""
        features = pipeline.named_steps["features"]
        heads = pipeline.named_steps["heads"]
        weights = features.transformer_weights or {}
        blocks: list[_Block] = []
        phrases = None
        offset = 0
        for name, tr in features.transformer_list:
            weight = float(weights.get(name, 1.0))
            if name == "phrases":
                phrases = PhraseIndex.build(tr.phrases)
                blocks.append(_Block("phrases", weight, offset, len(tr.topics)))
                offset += len(tr.topics)
                continue
            kind = {"word": "words", "char_wb": "chars"}.get(tr.analyzer)
            supported = (
                kind is not None
                and tr.lowercase
                and tr.sublinear_tf
                and tr.use_idf
                and tr.norm == "l2"
                and tr.stop_words is None
                and tr.tokenizer is None
                and (
                    (kind == "words" and tr.preprocessor is None and tr.strip_accents == "unicode")
                    or (kind == "chars" and tr.preprocessor is normalize_for_chars)
                )
            )
            if not supported or kind is None:
                raise ModelError(f"feature block {name!r} has settings the scorer cannot run")
            vocab = {str(k): int(v) for k, v in tr.vocabulary_.items()}
            block = _Block(kind, weight, offset, len(vocab), tuple(tr.ngram_range), vocab)
            block.idf = np.asarray(tr.idf_, dtype=np.float32)
            blocks.append(block)
            offset += len(vocab)
        gate = None
        if heads.gate_coef is not None:
            a, c = heads.gate_calibration
            gate = (np.asarray(heads.gate_coef), float(heads.gate_intercept), float(a), float(c))
        topics = tuple(manifest["topics"])
        return cls(
            blocks=blocks,
            phrases=phrases,
            coef=np.asarray(heads.coef),
            intercept=np.asarray(heads.intercept),
            calibration=np.asarray(heads.calibration),
            gate=gate,
            topics=topics,
            thresholds=np.asarray([float(manifest["thresholds"][t]) for t in topics]),
            version=str(manifest["model_version"]),
            taxonomy=taxonomy,
        )

    def save(self, path: Path) -> None:
        meta: dict[str, Any] = {
            "format": SCORER_FORMAT,
            "version": self.version,
            "topics": list(self.topics),
            "blocks": [
                {"kind": b.kind, "weight": b.weight, "width": b.width, "ngrams": list(b.ngrams)}
                for b in self.blocks
            ],
            "phrases": None
            if self.phrases is None
            else {
                "index": {k: [[list(t), c] for t, c in v] for k, v in self.phrases.index.items()},
                "suffixes": {k: list(v) for k, v in self.phrases.suffixes.items()},
            },
            "gate": None if self.gate is None else list(self.gate[1:]),
        }
        arrays: dict[str, np.ndarray] = {
            "meta": np.asarray(json.dumps(meta, sort_keys=True)),
            "coef": np.ascontiguousarray(self._weights[:, : len(self.topics)].T),
            "intercept": self.intercept,
            "calibration": self.calibration,
            "thresholds": self.thr,
        }
        if self.gate is not None:
            arrays["gate_coef"] = np.asarray(self.gate[0], dtype=np.float16)
        for i, b in enumerate(self.blocks):
            if b.vocab is not None and b.idf is not None:
                terms = sorted(b.vocab, key=b.vocab.__getitem__)
                if any("\n" in t for t in terms):
                    raise ModelError("a vocabulary term contains a newline")
                joined = "\n".join(terms).encode("utf-8")
                arrays[f"vocab{i}"] = np.frombuffer(joined, dtype=np.uint8)
                arrays[f"idf{i}"] = b.idf
        # np.savez stamps each member with the current time; a fixed stamp keeps a rebuilt
        # model byte-for-byte identical (np.load reads it all the same).
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, array in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())

    @classmethod
    def load(cls, path: Path, taxonomy: Taxonomy) -> Scorer:
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(str(data["meta"]))
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"cannot read {path}: {e}") from e
        if meta.get("format") != SCORER_FORMAT:
            raise ModelError(f"{path} has scorer format {meta.get('format')}")
        blocks: list[_Block] = []
        offset = 0
        for i, b in enumerate(meta["blocks"]):
            block = _Block(
                b["kind"], float(b["weight"]), offset, int(b["width"]), tuple(b["ngrams"])
            )
            if f"vocab{i}" in data:
                terms = data[f"vocab{i}"].tobytes().decode("utf-8").split("\n")
                block.vocab = dict(zip(terms, range(len(terms)), strict=True))
                block.idf = data[f"idf{i}"].astype(np.float32)
            blocks.append(block)
            offset += block.width
        phrases = None
        if meta["phrases"] is not None:
            phrases = PhraseIndex(
                {
                    k: tuple((tuple(t), int(c)) for t, c in v)
                    for k, v in meta["phrases"]["index"].items()
                },
                {k: tuple(v) for k, v in meta["phrases"]["suffixes"].items()},
            )
        gate = None
        if meta["gate"] is not None:
            b0, a, c = meta["gate"]
            gate = (data["gate_coef"], float(b0), float(a), float(c))
        return cls(
            blocks=blocks,
            phrases=phrases,
            coef=data["coef"],
            intercept=data["intercept"],
            calibration=data["calibration"],
            gate=gate,
            topics=tuple(meta["topics"]),
            thresholds=data["thresholds"],
            version=str(meta["version"]),
            taxonomy=taxonomy,
        )

    # -- scoring --------------------------------------------------------------------------

    def _accumulate(
        self, out: np.ndarray, story: np.ndarray, cols: np.ndarray, value: np.ndarray
    ) -> None:
        """out[s] += sum over s's entries of value * W[col] (entries sorted by story).
        Per group of stories: their distinct columns' weight rows, widened once each,
        times a small dense (stories x distinct columns) matrix of the values, one BLAS
        product. Widening a row per entry and summing with ``np.add.reduceat`` cost a
        third more on feed stories (and half again as much in batches of 1,000).

        In float64, where a float32 value times a float16 weight is exact: a story's sums
        then do not depend on the other stories of its group (in float32, BLAS summed
        them in an order that did: 25 of 16,500 dev scores differed in the sixth decimal
        between batches of 500 and 7)."""
        if not len(story):
            return
        m = out.shape[0]
        bounds = np.searchsorted(story, np.arange(0, m + _GROUP, _GROUP))
        for first in range(0, m, _GROUP):
            lo, hi = bounds[first // _GROUP], bounds[first // _GROUP + 1]
            if lo == hi:
                continue
            distinct, inverse = np.unique(cols[lo:hi], return_inverse=True)
            dense = np.zeros((min(_GROUP, m - first), len(distinct)))
            dense[story[lo:hi] - first, inverse] = value[lo:hi]  # (story, col) pairs are unique
            out[first : first + len(dense)] += dense @ self._weights[distinct].astype(np.float64)

    def _decisions(
        self, docs: Sequence[Document]
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
        """Per story: topic decisions z, gate decision zr, and the same without the seed
        phrases' contribution (for the "rule" source). The gate is one more column of the
        weight matrix. Stories go through in chunks, each block's features for a whole
        chunk at once (numpy calls per chunk, not per story)."""
        n, k = len(docs), len(self.topics)
        bare = np.zeros((n, self._weights.shape[1]))  # without the phrases
        both = np.zeros((n, self._weights.shape[1]))  # with them
        with _one_blas_thread():
            self._fill(docs, bare, both)
        z = both[:, :k] + self.intercept
        z0 = bare[:, :k] + self.intercept
        if self.gate is None:
            return z, None, z0, None
        return z, both[:, k] + self.gate[1], z0, bare[:, k] + self.gate[1]

    def _fill(self, docs: Sequence[Document], bare: np.ndarray, both: np.ndarray) -> None:
        n = len(docs)
        for lo in range(0, n, _CHUNK):
            texts = [text_for(d) for d in docs[lo : lo + _CHUNK]]
            m = len(texts)
            part = bare[lo : lo + m]
            for b in self.blocks:
                if b.kind == "phrases":
                    continue
                if b.kind == "words" and b.ngrams[0] == 1 and b.ngrams[1] <= 2:
                    story, cols = self._word_entries(b, texts)
                elif b.kind == "chars":
                    story, cols = self._char_entries(b, texts)
                else:
                    story, cols = self._generic_entries(b, texts)
                self._accumulate(part, *self._tfidf(b, story, cols, m))
            both[lo : lo + m] = part
            if self._phrase_block is not None and self.phrases is not None:
                self._accumulate(both[lo : lo + m], *self._phrase_entries(texts))

    def _calibrate(self, z: np.ndarray, zr: np.ndarray | None) -> np.ndarray:
        p = _sigmoid(self.calibration[:, 0] * z + self.calibration[:, 1])
        if zr is not None and self.gate is not None:
            _, _, a, c = self.gate
            p = p * _sigmoid(a * zr + c)[:, None]
        return p

    def scores(self, docs: Sequence[Document]) -> np.ndarray:
        """Calibrated model scores, shape (len(docs), len(topics)), in topic order."""
        if not docs:
            return np.zeros((0, len(self.topics)))
        z, zr, _, _ = self._decisions(docs)
        return self._calibrate(z, zr)

    def uncertain_topics(self, docs: Sequence[Document]) -> list[tuple[float, TopicScore, float]]:
        """What ``Classifier.uncertain_topics`` returns for ``docs``."""
        return uncertain_topics(self.scores(docs), self.thr, self.topics) if docs else []

    def predict(self, docs: Sequence[Document]) -> list[Prediction]:
        """What ``Classifier.predict`` returns for ``docs``."""
        if not docs:
            return []
        z, zr, z0, zr0 = self._decisions(docs)
        scores = self._calibrate(z, zr)
        rule = (scores >= self.thr) & (self._calibrate(z0, zr0) < self.thr / 2)
        return predictions(docs, scores, rule, self.thr, self.topics, self.taxonomy, self.version)


def uncertain_topics(
    scores: np.ndarray, thresholds: np.ndarray, topics: Sequence[str]
) -> list[tuple[float, TopicScore, float]]:
    """Per row of ``scores``, as ``Classifier`` and ``Scorer`` both give it: how unsure
    the model is, in [0, 1] (1 when some topic's score sits exactly on its threshold, 0
    when every score is at 0 or 1), the topic that comes from with its score, and that
    topic's threshold: what a label on the story would settle."""
    span = np.where(scores >= thresholds, 1.0 - thresholds, thresholds)
    closeness = np.clip(1.0 - np.abs(scores - thresholds) / np.maximum(span, 1e-9), 0.0, 1.0)
    worst = closeness.argmax(axis=1)
    return [
        (
            float(closeness[i, j]),
            TopicScore(topic=topics[j], score=float(scores[i, j])),
            float(thresholds[j]),
        )
        for i, j in enumerate(worst)
    ]


def predictions(
    docs: Sequence[Document],
    scores: np.ndarray,
    rule: np.ndarray,
    thresholds: np.ndarray,
    topics: tuple[str, ...],
    taxonomy: Taxonomy,
    version: str,
) -> list[Prediction]:
    """The topics of each document, as ``Classifier`` and ``Scorer`` both give them: those
    whose calibrated score reaches the topic's threshold (source "model", or "rule" where
    ``rule`` is set) plus those its feed categories name through the taxonomy's aliases
    (source "feed-category", score :data:`FEED_CATEGORY_SCORE`); sorted by score, highest
    first, ties in taxonomy order."""
    order = {t: i for i, t in enumerate(topics)}
    out: list[Prediction] = []
    for i, doc in enumerate(docs):
        given: dict[str, TopicScore] = {}
        for j in np.flatnonzero(scores[i] >= thresholds):
            name = topics[j]
            source: TopicSource = "rule" if rule[i, j] else "model"
            given[name] = TopicScore(topic=name, score=float(scores[i, j]), source=source)
        if doc.categories:
            for name in taxonomy.topics_for_categories(doc.categories):
                if name in order:
                    given[name] = TopicScore(
                        topic=name, score=FEED_CATEGORY_SCORE, source="feed-category"
                    )
        ranked = sorted(given.values(), key=lambda s: (-s.score, order[s.topic]))
        out.append(Prediction(topics=tuple(ranked), model_version=version))
    return out
