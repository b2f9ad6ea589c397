"""The numpy-only scorer (aggregator.scoring) against the scikit-learn pipeline it is read
from: same analyzers, same scores, same topics and sources; the workers use it and never
import scikit-learn; a damaged or stale scorer is ignored in favour of the pipeline."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from aggregator.analyzers import PhraseIndex, char_wb_grams, normalize_for_chars, word_grams
from aggregator.classify import Classifier
from aggregator.errors import ModelError
from aggregator.jobs import ModelRef, classify_docs
from aggregator.scoring import SCORER_FILE, Scorer, load_scorer
from aggregator.taxonomy import Taxonomy
from aggregator.train import load_seed_examples
from aggregator.types import Document

REPO = Path(__file__).resolve().parent.parent

TEXTS = [
    "Zero-day in NimbusGate VPN exploited; CISA adds CVE-2026-1234 to KEV",
    "Café owners' Wi‑Fi hijacked — naïve résumé phishing hits Zürich & São Paulo",
    "a b cd  efg\t\thijk\nlmnop  1.1.1.1 at&t c++ .com example.com",
    "",
    "x",
    "ICANN ICANN icann: new gTLD round opens; .brand applicants line up",
    "日本語のテキストとEnglish words mixed 123",
]


@pytest.mark.parametrize("ngrams", [(1, 1), (1, 2), (2, 3)])
def test_word_grams_match_scikit_learn(ngrams: tuple[int, int]) -> None:
    analyzer = TfidfVectorizer(ngram_range=ngrams, strip_accents="unicode").build_analyzer()
    for text in TEXTS:
        assert sorted(word_grams(text, *ngrams)) == sorted(analyzer(text)), text


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_word_grams_match_scikit_learn_on_any_text(text: str) -> None:
    # accents and other combining marks, scripts without case, digits, underscores
    analyzer = TfidfVectorizer(ngram_range=(1, 2), strip_accents="unicode").build_analyzer()
    assert sorted(word_grams(text, 1, 2)) == sorted(analyzer(text))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_strip_accents_is_scikit_learns(text: str) -> None:
    from sklearn.feature_extraction.text import strip_accents_unicode

    from aggregator.analyzers import strip_accents

    assert strip_accents(text) == strip_accents_unicode(text)
    # marks outside the Basic Multilingual Plane, in runs and next to ASCII quotes
    rare = "Ca\u0301fe\u0301 \u2019x\U0001d167\U0001d168y\u2014 \u0928\u093f \U0001e944z"
    assert strip_accents(rare + text) == strip_accents_unicode(rare + text)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.characters(codec="utf-8") | st.sampled_from(" \t\n\x1c\x85\u2028\u3000\xa0"),
        max_size=80,
    )
)
def test_clean_is_the_whitespace_regex(text: str) -> None:
    import re

    from aggregator.analyzers import _clean

    assert _clean(text) == re.sub(r"\s+", " ", text).strip()


def test_phrase_counts_are_the_matches_counted() -> None:
    from collections import Counter

    taxonomy = Taxonomy.load(REPO / "models" / "taxonomy.yaml")
    index = PhraseIndex.build([t.seeds for t in taxonomy.topics])
    texts = [
        *TEXTS,
        *(f"{e.doc.title}\n{e.doc.summary}" for e in load_seed_examples(REPO / "models")),
    ]
    texts.append("zero-day in example.com and .org names; DNS over HTTPS, 1.1.1.1 resolver")
    for text in texts:
        assert index.counts(text) == dict(Counter(col for col, _ in index.matches(text))), text


@pytest.mark.parametrize("ngrams", [(3, 5), (2, 4), (1, 3)])
def test_char_grams_match_scikit_learn(ngrams: tuple[int, int]) -> None:
    analyzer = TfidfVectorizer(
        analyzer="char_wb", preprocessor=normalize_for_chars, ngram_range=ngrams
    ).build_analyzer()
    for text in TEXTS:
        assert sorted(char_wb_grams(text, *ngrams)) == sorted(analyzer(text)), text


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier.load(REPO / "models")


def _docs() -> list[Document]:
    docs = [e.doc for e in load_seed_examples(REPO / "models")]
    docs += [Document(id=f"t{i}", title=t, summary=t[::-1]) for i, t in enumerate(TEXTS)]
    docs.append(Document(id="cat", title="Registry news", categories=("Domain Names", "DNS")))
    return docs


def test_scorer_reproduces_the_pipeline_on_every_seed(shipped: Classifier) -> None:
    scorer = load_scorer(REPO / "models", shipped.taxonomy)
    assert scorer is not None, "the shipped artifact carries a valid scorer.npz"
    assert scorer.version == shipped.version
    docs = _docs()
    np.testing.assert_allclose(scorer.scores(docs), shipped.scores(docs), rtol=0, atol=1e-5)

    def topics(preds: list) -> list[list[tuple[str, str]]]:
        return [[(t.topic, t.source) for t in p.topics] for p in preds]

    ours, theirs = scorer.predict(docs), shipped.predict(docs)
    assert topics(ours) == topics(theirs)
    assert {p.model_version for p in ours} == {shipped.version}
    assert any(t.source == "rule" for p in ours for t in p.topics)
    assert [t.source for t in ours[-1].topics].count("feed-category") == 2

    # and `label --suggest`'s uncertainty (the scorer serves it now): the same topic,
    # score and threshold per story, the same ranking
    mine, pipeline = scorer.uncertain_topics(docs), shipped.uncertain_topics(docs)
    assert [(t.topic, thr) for _, t, thr in mine] == [(t.topic, thr) for _, t, thr in pipeline]
    np.testing.assert_allclose([u for u, _, _ in mine], [u for u, _, _ in pipeline], atol=1e-4)
    assert scorer.uncertain_topics([]) == []


def test_a_storys_scores_do_not_depend_on_the_stories_scored_with_it(
    shipped: Classifier,
) -> None:
    """A story gets the same scores, to the last bit, alone, in a re-tag's batch of 7 or
    a poll's of 300: ``retag`` leaves the stories the model in use tagged as they are,
    and a worker's batch is compared with the App's own. In float32 the weight products
    summed in an order that depended on the other stories of the batch (25 of 16,500
    scores of the dev data differed in the sixth decimal between batches of 500 and 7;
    one was at a rounding boundary on one CI machine)."""
    scorer = load_scorer(REPO / "models", shipped.taxonomy)
    assert scorer is not None
    docs = _docs()[::7][:300]
    together = scorer.scores(docs)
    in_sevens = np.vstack([scorer.scores(docs[i : i + 7]) for i in range(0, len(docs), 7)])
    alone = np.vstack([scorer.scores([d]) for d in docs[:40]])
    assert np.array_equal(together, in_sevens)
    assert np.array_equal(together[:40], alone)
    pipeline = shipped.scores(docs[:70])
    assert np.array_equal(
        pipeline, np.vstack([shipped.scores(docs[i : i + 7]) for i in range(0, 70, 7)])
    )


def test_save_and_load_round_trip(shipped: Classifier, tmp_path: Path) -> None:
    scorer = Scorer.from_pipeline(shipped.pipeline, shipped.manifest, shipped.taxonomy)
    scorer.save(tmp_path / SCORER_FILE)
    again = Scorer.load(tmp_path / SCORER_FILE, shipped.taxonomy)
    docs = _docs()[:200]
    np.testing.assert_allclose(again.scores(docs), scorer.scores(docs), rtol=0, atol=1e-6)


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "models"
    shutil.copytree(REPO / "models", dest, ignore=shutil.ignore_patterns("seeds"))
    return dest


@pytest.mark.parametrize("damage", ["checksum", "no-entry", "taxonomy", "sklearn"])
def test_a_damaged_or_stale_scorer_is_not_used(tmp_path: Path, damage: str) -> None:
    models = _copy(tmp_path)
    manifest_path = models / "classifier" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    taxonomy = Taxonomy.load(models / "taxonomy.yaml")
    if damage == "checksum":
        with (models / "classifier" / SCORER_FILE).open("ab") as f:
            f.write(b"junk")
    elif damage == "no-entry":
        del manifest["scorer"]
    elif damage == "taxonomy":
        manifest["taxonomy"]["hash"] = "0" * 64
    else:
        manifest["libraries"]["scikit-learn"] = "0.0.1"
    manifest_path.write_text(json.dumps(manifest))
    assert load_scorer(models, taxonomy) is None


def test_workers_classify_without_importing_scikit_learn(tmp_path: Path) -> None:
    """What a parse worker does, in a fresh interpreter: no scikit-learn, no SciPy."""
    code = f"""
import sys
from aggregator.jobs import ModelRef, classify_docs
from aggregator.types import Document
ref = ModelRef(models_dir={str(REPO / "models")!r},
               taxonomy_path={str(REPO / "models" / "taxonomy.yaml")!r})
preds, error = classify_docs([Document(id="1", title="Ransomware gang hits hospital")], ref)
assert error is None and preds and preds[0].topics, (preds, error)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "scipy"))
assert not leaked, leaked
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("broken", ["no model", "taxonomy edited"])
def test_a_model_that_cannot_load_is_told_without_importing_scikit_learn(
    tmp_path: Path, broken: str
) -> None:
    """Without a usable model, a worker (and `classify`, and the App) imported
    scikit-learn and SciPy (~50 MB a process, the poll's tree past its 300 MB) only for
    the pipeline's loader to say why: no manifest, a taxonomy edited since training."""
    models = _copy(tmp_path)
    if broken == "no model":
        shutil.rmtree(models / "classifier")
        why = "missing manifest.json"
    else:
        with (models / "taxonomy.yaml").open("a", encoding="utf-8") as f:
            f.write("\n  - id: gardening\n    name: Gardening\n    seeds: [tomatoes]\n")
        why = "trained for a different taxonomy (topics added: Gardening"
    code = f"""
import sys
from pathlib import Path
from aggregator.config import Settings
from aggregator.errors import ModelError
from aggregator.jobs import ModelRef, classify_docs
from aggregator.predictor import load_predictor
from aggregator.taxonomy import Taxonomy
from aggregator.types import Document
models = {str(models)!r}
ref = ModelRef(models_dir=models, taxonomy_path=models + "/taxonomy.yaml")
preds, error = classify_docs([Document(id="1", title="x", categories=("infosec",))], ref)
assert [t.topic for t in preds[0].topics] == ["Cybersecurity"], preds
print(error)
settings = Settings.from_env(
    {{}}, data_dir=Path({str(tmp_path / "data")!r}), models_dir=Path(models)
)
try:
    load_predictor(settings, Taxonomy.load(settings.taxonomy_path))
except ModelError as e:
    print(e)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "scipy"))
assert not leaked, leaked
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(why in line for line in lines), out.stdout
    with pytest.raises(ModelError, match=why.replace("(", r"\(")):
        Classifier.load(models)  # the pipeline's loader says the same


def test_worker_falls_back_to_the_pipeline_without_a_scorer(tmp_path: Path) -> None:
    models = _copy(tmp_path)
    (models / "classifier" / SCORER_FILE).unlink()
    ref = ModelRef(models_dir=str(models), taxonomy_path=str(models / "taxonomy.yaml"))
    doc = Document(id="1", title="Registrar loses UDRP case over lookalike domain")
    preds, error = classify_docs([doc], ref)
    assert error is None and preds is not None
    assert preds == Classifier.load(models).predict([doc])


def test_without_a_model_a_worker_gives_the_feed_categories_topics(tmp_path: Path) -> None:
    """A model that does not load (here: not there) still lets the taxonomy's aliases
    tag the stories, marked as given by no model; the error is said too. Once the App
    knows (``categories_only``), the model is not tried again; without a readable
    taxonomy there is nothing to give."""
    from aggregator.types import CATEGORIES_ONLY

    models = _copy(tmp_path)
    shutil.rmtree(models / "classifier")
    ref = ModelRef(models_dir=str(models), taxonomy_path=str(models / "taxonomy.yaml"))
    docs = [
        Document(id="1", title="Registrar news", categories=("Domain Names", "infosec")),
        Document(id="2", title="Ransomware gang hits hospital"),
    ]
    preds, error = classify_docs(docs, ref)
    assert error is not None and "no classifier" in error
    assert preds is not None
    assert [[(t.topic, t.score, t.source) for t in p.topics] for p in preds] == [
        [("Cybersecurity", 1.0, "feed-category"), ("Domain Names", 1.0, "feed-category")],
        [],
    ]
    assert {p.model_version for p in preds} == {CATEGORIES_ONLY}
    quiet = dataclasses.replace(ref, categories_only=True)
    assert classify_docs(docs, quiet) == (preds, None)
    (models / "taxonomy.yaml").write_text("topics: [unclosed\n")
    assert classify_docs(docs, quiet) == (None, None)


def _reference_text_for(doc: Document) -> str:
    """text_for as first written: clean everything, then cut."""
    import re

    def clean(v: str) -> str:
        return re.sub(r"\s+", " ", v).strip()

    def cut(v: str, limit: int) -> str:
        if len(v) <= limit:
            return v
        c = v[:limit]
        space = c.rfind(" ")
        return c[:space] if space > limit // 2 else c

    title, summary, text = clean(doc.title), cut(clean(doc.summary), 1_000), clean(doc.text)
    if summary and text.startswith(summary[:200]):
        summary = ""
    return "\n".join(p for p in [title, title, summary, cut(text, 1_500)] if p)


@pytest.mark.parametrize("seed", range(40))
def test_text_for_cleans_only_the_head_it_needs_with_the_same_result(seed: int) -> None:
    import random

    from aggregator.analyzers import text_for

    rng = random.Random(seed)
    pieces = ["word", "  ", "\n\n\t", "x" * rng.randint(1, 40), " " * rng.randint(0, 3000)]
    body = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3000)))
    summary = body[: rng.randint(0, 8000)]
    doc = Document(id="d", title=" T  i t\nle ", summary=summary, text=body)
    assert text_for(doc) == _reference_text_for(doc)


def test_the_scorer_runs_one_blas_thread() -> None:
    """Its products are small: a second OpenBLAS thread only spins (twice the CPU)."""
    from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

    from aggregator.scoring import _one_blas_thread

    blas = ThreadpoolController().select(user_api="blas")
    with blas.limit(limits=2), _one_blas_thread():
        assert {lib["num_threads"] for lib in blas.info()} == {1}
