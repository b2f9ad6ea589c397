"""The CPU-bound steps of a feed update, as top-level functions that run in worker
processes (picklable, importing only what they use). No I/O but reading the model once
per process; no database.

Everything per story that costs CPU happens here, so the app's own thread only talks to
the database: HTML to plain text, the SimHash fingerprint, and classification.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, ModelError
from .textutil import html_to_text
from .types import (
    CATEGORIES_ONLY,
    Article,
    Document,
    ParsedFeed,
    Prediction,
    StoryDraft,
    StoryVersion,
    TopicScore,
)

if TYPE_CHECKING:
    from .classify import Classifier
    from .scoring import Scorer
    from .taxonomy import Taxonomy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRef:
    """Where a worker finds the classifier (it loads it once and keeps it).
    ``categories_only``: the model failed to load this run, so stories get only the
    topics their feed categories name through the taxonomy's aliases (which need no
    model), until ``train`` writes one."""

    models_dir: str
    taxonomy_path: str
    categories_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """A story draft with what the pipeline derives from it in a worker."""

    draft: StoryDraft
    summary_text: str
    body_text: str  # plain text of the feed's full content ("" when it carries none)
    #: The length of the feed's text for the story (its content's, else its summary's)
    #: less what its document repeats under other items (``neardup.boilerplate``): a
    #: site's footer under a one-line teaser is no text of the story's. Below
    #: ``min_chars`` the page is fetched, and its article must be longer to be taken.
    own_chars: int
    #: The document's boilerplate (``neardup.boilerplate``), left out of the page's
    #: fingerprint too: a company's releases carry their "About" and safe-harbor text
    #: on their pages as in its feed. One set per document, shared by its stories.
    boilerplate: frozenset[str]
    needs_extraction: bool
    fingerprint: int | None
    prediction: Prediction | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseOutcome:
    feed: ParsedFeed  # without entries: the stories travel as ``stories``
    stories: list[Prepared]
    post_dates: list[datetime]  # the entries' published datetimes, for adaptive polling
    model_error: str | None = None
    # dedupe.listing_digest of every entry's key, unchanged ones included: what the
    # document lists, which pruning must spare
    listed: tuple[str, ...] = ()
    #: The document ends before its root element closes (cut short: a server's script
    #: dying mid-output), so it lists only part of the feed: see ``FeedCheck.listed_cut``.
    listed_cut: bool = False


_models: dict[tuple[str, str, float], Classifier | Scorer] = {}


def _classifier(ref: ModelRef) -> Classifier | Scorer:
    """The model for ``ref``, loaded once per process: its numpy-only scorer when the
    artifact has a valid one (no scikit-learn in the workers), else the pipeline."""
    from .manifest import MANIFEST_FILE, artifact_paths, check_artifact
    from .scoring import load_scorer
    from .taxonomy import Taxonomy

    manifest = artifact_paths(Path(ref.models_dir)) / MANIFEST_FILE
    try:
        stamp = manifest.stat().st_mtime
    except OSError:
        stamp = 0.0
    key = (ref.models_dir, ref.taxonomy_path, stamp)
    model = _models.get(key)
    if model is None:
        _models.clear()  # a retrained model replaces the old one
        try:
            taxonomy = Taxonomy.load(Path(ref.taxonomy_path))
        except ConfigError as e:
            # taxonomy.yaml broken while a daemon runs: the model cannot be used, as
            # when the model is broken (stories stored untagged: by_categories cannot
            # read it either), not every feed failing
            raise ModelError(str(e)) from e
        model = load_scorer(Path(ref.models_dir), taxonomy)
        if model is None:
            # why not, told without importing scikit-learn (~50 MB a worker) when the
            # artifact is unusable anyway; the pipeline when only its scorer is
            check_artifact(Path(ref.models_dir), taxonomy, checksum=False)
            from .classify import Classifier

            model = Classifier.load(Path(ref.models_dir), taxonomy=taxonomy)
        _models[key] = model
    return model


def classify_docs(
    docs: list[Document], model: ModelRef | None
) -> tuple[list[Prediction] | None, str | None]:
    """The model's predictions, or why there are none; without a model (it failed to
    load, now or earlier this run), the topics the feed categories name alone."""
    if model is None or not docs:
        return None, None
    if model.categories_only:
        return by_categories(docs, model), None
    try:
        return _classifier(model).predict(docs), None
    except ModelError as e:
        return by_categories(docs, model), str(e)


_taxonomies: dict[tuple[str, int, int], Taxonomy] = {}


def by_categories(docs: Sequence[Document], ref: ModelRef) -> list[Prediction] | None:
    """Each document's topics from its feed categories through the taxonomy's aliases
    (source "feed-category", as a model gives them), marked as given by no model
    (:data:`~aggregator.types.CATEGORIES_ONLY`: the next re-tag takes them up). A
    model that does not fit an edited taxonomy is refused, yet the aliases of the edit
    apply at once. None when the taxonomy cannot be read either."""
    from .scoring import FEED_CATEGORY_SCORE
    from .taxonomy import Taxonomy

    try:
        st = Path(ref.taxonomy_path).stat()
        key = (ref.taxonomy_path, st.st_mtime_ns, st.st_size)
        taxonomy = _taxonomies.get(key)
        if taxonomy is None:
            taxonomy = Taxonomy.load(Path(ref.taxonomy_path))
            _taxonomies.clear()
            _taxonomies[key] = taxonomy
    except (OSError, ConfigError):
        return None
    return [
        Prediction(
            topics=tuple(
                TopicScore(topic=name, score=FEED_CATEGORY_SCORE, source="feed-category")
                for name in taxonomy.topics_for_categories(doc.categories)
            ),
            model_version=CATEGORIES_ONLY,
        )
        for doc in docs
    ]


def document(d: StoryDraft, summary: str, body: str) -> Document:
    return Document(
        id=d.key,
        title=d.title,
        summary=summary,
        text=body if body != summary else "",
        categories=d.categories,
    )


#: The end tag of an RSS, Atom or RDF document's root (NULs taken out first, so that
#: UTF-16 reads as ASCII here)
_ROOT_CLOSED = re.compile(rb"</(?:[\w.-]+:)?(?:rss|feed|rdf)\s*>", re.I)
_ENTRY_OPENS = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s>/]", re.I)
_ENTRY_CLOSES = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>", re.I)


def _last(pattern: re.Pattern[bytes], text: bytes) -> int:
    """Where ``pattern`` last matches in ``text`` (-1: nowhere)."""
    last = -1
    for m in pattern.finditer(text):
        last = m.start()
    return last


def parse_job(
    body: bytes,
    url: str,
    content_type: str | None,
    model: ModelRef | None = None,
    min_chars: int = 600,
    known: Mapping[str, StoryVersion | str] | None = None,
    now: datetime | None = None,
) -> ParseOutcome:
    """Bytes -> the feed, its stories with their identities, plain text, fingerprints and
    topics (from the feed's own text; stories whose page is extracted are classified again
    with the full text). Entries whose key ``known`` maps to their version
    (``StoryDraft.version``: text and article; a bare content hash compares the text
    alone) are stored already, unchanged: they are left out before any of that per-story
    work (a feed that changed usually has one new item among dozens). A corrected link
    is a change: the stored story's link, and its page, are the wrong ones. ``now``: the
    app's clock, against which dates too far in the future are not trusted (see
    :func:`aggregator.parse.parse_feed`)."""
    from .dedupe import listing_digest, story_drafts
    from .neardup import (
        BOILERPLATE_LOOKED_AT,
        boilerplate_of,
        fingerprint,
        keyed_sentences,
        without_keyed,
    )
    from .parse import parse_feed

    parsed = parse_feed(body, url, content_type=content_type, now=now)
    xml = body.replace(b"\0", b"")
    cut = (
        bool(parsed.warnings)
        and not parsed.version.startswith("json")
        and not _ROOT_CLOSED.search(xml)
    )
    if cut and parsed.entries and _last(_ENTRY_OPENS, xml) > _last(_ENTRY_CLOSES, xml):
        # The entry the cut falls in is read as far as it went (no guid, link or title:
        # stored as a new "(untitled)" story keyed by its text); a whole document brings it.
        parsed = replace(parsed, entries=parsed.entries[:-1])
    every = story_drafts(parsed)
    listed = tuple(listing_digest(d.key) for d in every)
    drafts = (
        [d for d in every if known.get(d.key) not in (d.version, d.content_hash)]
        if known
        else every
    )
    texts = [_texts(d) for d in drafts]
    # What the document repeats under its items, left out of their fingerprints: read
    # in the stories fingerprinted and a few of the others (neardup.boilerplate).
    keyed = [keyed_sentences(c or s) for s, c in texts]  # split and keyed once
    read = [(d.title, k) for d, k in zip(drafts, keyed, strict=True)]
    if drafts and len(drafts) < len(every):
        fingerprinted = {d.key for d in drafts}  # one draft per key
        for d in [d for d in every if d.key not in fingerprinted][:BOILERPLATE_LOOKED_AT]:
            summary, content = _texts(d)
            read.append((d.title, keyed_sentences(content or summary)))
    shared = boilerplate_of(read)
    preds, error = classify_docs(
        [document(d, s, c or s) for d, (s, c) in zip(drafts, texts, strict=True)], model
    )
    stories = []
    for i, (d, (summary, content)) in enumerate(zip(drafts, texts, strict=True)):
        body_text = content or summary
        own = without_keyed(keyed[i], shared) if shared else body_text
        stories.append(
            Prepared(
                draft=d,
                summary_text=summary,
                body_text=content,
                own_chars=len(own),
                boilerplate=shared,
                # Only a link that names the story (its canonical URL: dedupe refuses
                # one every item shares, or the feed's own page) is its article: the
                # front page all of a feed's items link to, fetched for each, gave every
                # story the whole page's text and topics.
                needs_extraction=bool(d.canonical_url) and len(own) < min_chars,
                # None: a text without words (an emoji post) or too short to tell stories
                # apart (neardup.fingerprint)
                fingerprint=fingerprint(d.title, own) if body_text else None,
                prediction=preds[i] if preds is not None else None,
            )
        )
    return ParseOutcome(
        feed=replace(parsed, entries=()),
        stories=stories,
        post_dates=[e.published for e in parsed.entries if e.published],
        model_error=error,
        listed=listed,
        listed_cut=cut,
    )


def _texts(d: StoryDraft) -> tuple[str, str]:
    """The plain text of a draft's summary and content ("" for none)."""
    return html_to_text(d.summary or ""), html_to_text(d.content) if d.content else ""


def extract_job(
    html: bytes,
    url: str,
    title: str,
    content_type: str | None = None,
    boilerplate: frozenset[str] = frozenset(),
) -> tuple[Article | None, int | None]:
    """The page's article text and the story's fingerprint over it, less the sentences
    of ``boilerplate`` (its feed document's, :func:`aggregator.neardup.boilerplate`).
    Text that does not mention the story's ``title`` (a consent or paywall page) is
    refused with :class:`~aggregator.errors.ExtractError`, so it neither stands in for
    the story nor clusters it with the other stories given the same notice."""
    from .extract import extract_article
    from .neardup import fingerprint

    art = extract_article(html, url, content_type, title=title)
    return art, (fingerprint(title, art.text, boilerplate) if art is not None else None)


def classify_job(
    docs: list[Document], model: ModelRef
) -> tuple[list[Prediction] | None, str | None]:
    return classify_docs(docs, model)


#: What a re-tag sends a worker of one stored story: its id, title, summary and content
#: (HTML), extracted text and feed categories.
StoredText = tuple[int, str, str | None, str | None, str | None, tuple[str, ...]]


def stored_document(
    story_id: int,
    title: str,
    summary: str | None,
    content: str | None,
    full_text: str | None,
    categories: tuple[str, ...],
) -> Document:
    """What the model reads of a stored story (``App.document``): plain text of its
    summary, and its extracted text, else its content's plain text, unless that only
    repeats the summary."""
    summary_text = html_to_text(summary or "")
    body = full_text or html_to_text(content or "")
    return Document(
        id=str(story_id),
        title=title,
        summary=summary_text,
        text=body if body != summary_text else "",
        categories=categories,
    )


def retag_job(stories: list[StoredText], model: ModelRef) -> list[Prediction]:
    """A re-tag's batch in a worker: the stories' documents (their plain text is most of
    the work beside scoring) and the model's predictions. A model that does not load
    raises :class:`ModelError`: a re-tag never falls back to feed categories."""
    return _classifier(model).predict([stored_document(*s) for s in stories])
