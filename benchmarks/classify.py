"""Benchmark the shipped topic classifier (models/classifier) on the shared dev data.

Prints: micro/macro P/R/F1 and a per-topic table on topics-dev (label space of
label_map.json), the share of off-topic stories given any topic, a naive keyword matcher
on the same data, classify throughput on one core, training time / model size on 10k and
50k synthetic stories (seeds resampled and perturbed), and the gain from user labels
(half of topics-dev as user labels, scored on the other half).

The dev files are only read here, by path, for measuring: never copied into the repo and
never used to train the shipped model.

    .venv/bin/python benchmarks/classify.py            # everything (~15 min on 2 cores)
    .venv/bin/python benchmarks/classify.py --quick    # skip the 50k training run
    .venv/bin/python benchmarks/classify.py --json benchmarks/out/classify.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

# One core: set before numpy / scipy load their BLAS (the aggregator imports below).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

from aggregator.classify import Classifier, PhraseFeatures  # noqa: E402
from aggregator.evaluation import EvalReport, TopicMetrics, evaluate  # noqa: E402
from aggregator.scoring import Scorer, load_scorer  # noqa: E402
from aggregator.taxonomy import Taxonomy  # noqa: E402
from aggregator.train import load_seed_examples, train  # noqa: E402
from aggregator.types import Document, Example  # noqa: E402

MODELS = REPO / "models"


def _rows(name: str) -> list[dict[str, Any]]:
    path = DATA / name
    if not path.is_file():
        sys.exit(
            f"error: {path} not found. The benchmark reads the shared dev data from "
            f"{DATA} (a sibling of the repository); it is not part of the repo."
        )
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _doc(row: dict[str, Any]) -> Document:
    return Document(id=str(row["id"]), title=row["title"], summary=row.get("text", ""))


def _table(report: EvalReport, thresholds: dict[str, float] | None = None) -> str:
    lines = [f"  {'topic':<22} {'P':>6} {'R':>6} {'F1':>6} {'support':>8} {'given':>6}  thr"]
    for m in report.topics:
        if not (m.support or m.predicted):
            continue
        thr = f"{thresholds[m.topic]:.2f}" if thresholds else ""
        lines.append(
            f"  {m.topic:<22} {m.precision:6.3f} {m.recall:6.3f} {m.f1:6.3f} "
            f"{m.support:8d} {m.predicted:6d}  {thr}"
        )
    return "\n".join(lines)


def _line(label: str, r: EvalReport) -> str:
    return (
        f"{label}: micro P/R/F1 {r.micro_precision:.3f}/{r.micro_recall:.3f}/{r.micro_f1:.3f}"
        f"   macro P/R/F1 {r.macro_precision:.3f}/{r.macro_recall:.3f}/{r.macro_f1:.3f}"
    )


def _keyword_baseline(
    taxonomy: Taxonomy, examples: list[Example], offtopic: list[Document], space: list[str]
) -> tuple[EvalReport, float]:
    """Naive matcher: a topic is given when its name or any seed phrase occurs."""
    matcher = PhraseFeatures(
        topics=taxonomy.names,
        phrases=tuple((t.name, *t.seeds) for t in taxonomy.topics),
    ).fit()

    def topics_of(doc: Document) -> set[str]:
        text = f"{doc.title}\n{doc.summary}\n{doc.text}"
        return {taxonomy.names[col] for col, _ in matcher.matches(text)}

    metrics = []
    predicted = [topics_of(e.doc) for e in examples]
    for name in space:
        gold = [name in {taxonomy.canonical(t) for t in e.topics} for e in examples]
        pred = [name in p for p in predicted]
        metrics.append(
            TopicMetrics(
                topic=name,
                support=sum(gold),
                predicted=sum(pred),
                true_positives=sum(g and p for g, p in zip(gold, pred, strict=True)),
            )
        )
    fp = sum(1 for d in offtopic if topics_of(d)) / max(len(offtopic), 1)
    return EvalReport(topics=tuple(metrics), examples=len(examples), label="keywords"), fp


def _throughput(clf: Classifier | Scorer, docs: list[Document], batch: int = 1000) -> float:
    clf.predict(docs[:batch])  # warm caches
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for i in range(0, len(docs), batch):
            clf.predict(docs[i : i + batch])
        best = max(best, len(docs) / (time.perf_counter() - started))
    return best


def _synthetic(seeds: list[Example], n: int, rng: random.Random) -> list[Example]:
    """``n`` stories resampled from the seeds: words dropped and shuffled locally, a
    sentence borrowed from another seed with the same topics, a random id. A tenth
    become partial user labels and a tenth feed-category examples."""
    by_topics: dict[tuple[str, ...], list[Example]] = {}
    for e in seeds:
        by_topics.setdefault(tuple(sorted(e.topics)), []).append(e)

    def perturb(text: str) -> str:
        words = [w for w in text.split() if rng.random() > 0.12]
        for i in range(len(words) - 1):
            if rng.random() < 0.05:
                words[i], words[i + 1] = words[i + 1], words[i]
        return " ".join(words)

    out: list[Example] = []
    for i in range(n):
        base = rng.choice(seeds)
        mate = rng.choice(by_topics[tuple(sorted(base.topics))])
        summary = perturb(base.doc.summary) + " " + perturb(mate.doc.summary)[:200]
        doc = Document(
            id=f"syn{i}", title=perturb(base.doc.title) or base.doc.title, summary=summary
        )
        roll = rng.random()
        if roll < 0.1 and base.topics:
            out.append(Example(doc=doc, topics=base.topics[:1], source="user"))
        elif roll < 0.2 and base.topics:
            out.append(Example(doc=doc, topics=base.topics, source="feed-category"))
        else:
            out.append(Example(doc=doc, topics=base.topics))
    return out


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 50k training run")
    parser.add_argument("--skip-training", action="store_true", help="skip 10k/50k runs")
    parser.add_argument("--skip-labels", action="store_true", help="skip the label-gain run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}

    label_map = json.loads((DATA / "label_map.json").read_text(encoding="utf-8"))
    dev_rows = _rows("topics-dev.jsonl")
    off_rows = _rows("offtopic-dev.jsonl")
    taxonomy = Taxonomy.load(MODELS / "taxonomy.yaml")
    space = [taxonomy.canonical(t) for t in label_map["our_topics"]]
    dev = [Example(doc=_doc(r), topics=tuple(r["topics"])) for r in dev_rows]
    offtopic = [_doc(r) for r in off_rows]

    try:
        clf = Classifier.load(MODELS, taxonomy=taxonomy)
    except Exception as e:  # ModelError: say how to build it
        sys.exit(f"error: {e}")
    artifact = clf.path
    assert artifact is not None
    print(f"shipped model {clf.version} ({artifact.relative_to(REPO)})")
    manifest = clf.manifest
    print(f"  trained on {manifest['data']['examples']} examples {manifest['data']['by_source']}")

    # 1. quality on topics-dev
    report = evaluate(clf, dev, topics=space, label="topics-dev")
    print(f"\n== topics-dev ({len(dev)} stories, {len(space)}-topic label space)")
    print(_line("model   ", report))
    print(_table(report, clf.thresholds))
    out["dev"] = report.to_dict()

    # 2. off-topic false positives
    preds = clf.predict(offtopic)
    given = [p for p in preds if p.topics]
    fp_rate = len(given) / len(offtopic)
    topics_given = Counter(t.topic for p in given for t in p.topics)
    print(f"\n== off-topic ({len(offtopic)} general-news stories)")
    print(
        f"given any topic: {len(given)} = {fp_rate:.1%}   by topic: {topics_given.most_common(6)}"
    )
    out["offtopic_fp_rate"] = round(fp_rate, 4)

    # 3. naive keyword matcher on the same data
    base, base_fp = _keyword_baseline(taxonomy, dev, offtopic, space)
    print("\n== naive keyword matcher (topic name or any taxonomy seed phrase occurs)")
    print(_line("keywords", base))
    print(f"off-topic given any topic: {base_fp:.1%}")
    ratio = report.micro_f1 / base.micro_f1 if base.micro_f1 else float("inf")
    print(f"model / keywords micro-F1 ratio: {ratio:.2f}")
    out["keywords"] = {"dev": base.to_dict(), "offtopic_fp_rate": round(base_fp, 4)}

    # 4. throughput on one core (headline + abstract stories, batches of 1000)
    docs = [e.doc for e in dev] + offtopic
    docs = (docs * (10_000 // len(docs) + 1))[:10_000]
    rate = _throughput(clf, docs)
    started = time.perf_counter()
    for d in docs[:200]:
        clf.predict([d])
    single = (time.perf_counter() - started) / 200 * 1000
    scorer = load_scorer(REPO / "models", clf.taxonomy)
    scorer_rate = _throughput(scorer, docs) if scorer is not None else 0.0
    print("\n== speed (one core)")
    print(
        f"classify (numpy scorer: what `aggregator classify`, retagging and the poll's "
        f"workers run): {scorer_rate:,.0f} stories/s in batches of 1000"
    )
    print(
        f"scikit-learn pipeline (explain, evaluate): {rate:,.0f} stories/s; one story alone "
        f"{single:.2f} ms; the scorer is {scorer_rate / rate:.2f}x the pipeline"
    )
    out["scorer_throughput_per_s"] = round(scorer_rate)
    size = _dir_size(artifact)
    print(f"shipped artifact: {size / 1e6:.2f} MB on disk ({artifact.relative_to(REPO)})")
    out["throughput_per_s"] = round(rate)
    out["single_story_ms"] = round(single, 3)
    out["artifact_bytes"] = size

    seeds = load_seed_examples(MODELS)

    # 5. training time and size on synthetic corpora
    if not args.skip_training:
        sizes = [10_000] if args.quick else [10_000, 50_000]
        out["training"] = {}
        for n in sizes:
            data = _synthetic(seeds, n, random.Random(n))
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                tr = train(data, taxonomy, Path(tmp) / "classifier")
                seconds = time.perf_counter() - started
                big = Classifier.load(Path(tmp) / "classifier", taxonomy=taxonomy)
                big_rate = _throughput(big, docs[:5000])
                big_size = _dir_size(Path(tmp) / "classifier")
            print(
                f"train on {n:,} synthetic stories: {seconds:.0f}s, "
                f"artifact {big_size / 1e6:.2f} MB, classify {big_rate:,.0f} stories/s"
            )
            out["training"][str(n)] = {
                "seconds": round(seconds, 1),
                "artifact_bytes": big_size,
                "throughput_per_s": round(big_rate),
                "holdout_micro_f1": round(tr.heldout.micro_f1, 4) if tr.heldout else None,
            }

    # 6. gain from user labels: half of topics-dev as user labels, scored on the other half
    if not args.skip_labels:
        half = [int(hashlib.sha256(r["id"].encode()).hexdigest(), 16) % 2 for r in dev_rows]
        users = [
            Example(
                doc=e.doc,
                topics=e.topics,
                negative=tuple(t for t in space if t not in set(e.topics)),
                source="user",
            )
            for e, h in zip(dev, half, strict=True)
            if h == 0
        ]
        test = [e for e, h in zip(dev, half, strict=True) if h == 1]
        before = evaluate(clf, test, topics=space, label="seeds only")
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            train(seeds + users, taxonomy, Path(tmp) / "classifier", params={"holdout": 0})
            seconds = time.perf_counter() - started
            tuned = Classifier.load(Path(tmp) / "classifier", taxonomy=taxonomy)
            after = evaluate(tuned, test, topics=space, label="seeds + user labels")
            off_after = sum(1 for p in tuned.predict(offtopic) if p.topics) / len(offtopic)
        delta = after.compare(before)
        print(
            f"\n== gain from labels ({len(users)} dev stories as user labels, "
            f"scored on the other {len(test)}; retrain {seconds:.0f}s)"
        )
        print(_line("seeds only         ", before))
        print(_line("seeds + user labels", after))
        print(
            f"delta micro-F1 {delta.micro_f1:+.3f}, macro-F1 {delta.macro_f1:+.3f}; "
            f"off-topic given any topic after: {off_after:.1%}"
        )
        out["label_gain"] = {
            "before": before.to_dict(),
            "after": after.to_dict(),
            "delta": delta.to_dict(),
            "offtopic_fp_rate_after": round(off_after, 4),
        }

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
