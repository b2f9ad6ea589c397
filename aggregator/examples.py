"""Training examples: labelled stories read from JSON-lines files (our seeds in
``models/seeds/``, a user's gold file) and from stored stories whose feed categories map to
topics.

Owns the file format (``{"title", "text", "topics"}`` per line, with optional
``summary``, ``full_text``, ``negative``, ``categories``, ``id``, ``source``) and its
errors, which name the file and line. Must not import scikit-learn (``aggregator
evaluate`` and the label commands read examples before deciding whether to train) or
touch the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from aggregator.errors import ConfigError
from aggregator.taxonomy import Taxonomy
from aggregator.types import Document, Example, ExampleSource

__all__ = ["examples_from_feed_categories", "load_seed_examples", "read_examples"]


def read_examples(path: Path, *, source: ExampleSource = "seed") -> list[Example]:
    """Labelled stories from a JSON-lines file: ``{"title", "text", "topics"}`` per line
    (``text`` is the summary; optional ``summary``, ``full_text``, ``negative``,
    ``categories``, ``id``, ``source``). ``topics: []`` means "belongs to no topic".
    :class:`ConfigError` on a malformed line."""
    examples: list[Example] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read examples {path}: {e.strerror or e}") from e
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError as e:
            raise ConfigError(f"{where}: not JSON: {e}") from e
        if not isinstance(row, dict) or not isinstance(row.get("title"), str):
            raise ConfigError(f"{where}: expected an object with a 'title' string")
        topics = row.get("topics", [])
        negative = row.get("negative", [])
        categories = row.get("categories", [])
        for name, value in (("topics", topics), ("negative", negative), ("categories", categories)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: '{name}' must be a list of strings")
        row_source = row.get("source", source)
        if row_source not in ("seed", "user", "feed-category"):
            row_source = source
        summary = row.get("summary") or row.get("text") or ""
        full_text = row.get("full_text") or ""
        if not isinstance(summary, str) or not isinstance(full_text, str):
            raise ConfigError(f"{where}: 'text' / 'full_text' must be strings")
        doc = Document(
            id=str(row.get("id") or f"{Path(path).name}:{number}"),
            title=row["title"],
            summary=summary,
            text=full_text,
            categories=tuple(categories),
        )
        examples.append(
            Example(doc=doc, topics=tuple(topics), negative=tuple(negative), source=row_source)
        )
    return examples


def load_seed_examples(models_dir: Path) -> list[Example]:
    """Every example in ``models_dir/seeds/*.jsonl``, files in name order."""
    seeds_dir = Path(models_dir) / "seeds"
    files = sorted(seeds_dir.glob("*.jsonl"))
    if not files:
        raise ConfigError(f"no seed examples: {seeds_dir}/*.jsonl not found")
    examples: list[Example] = []
    for path in files:
        examples.extend(read_examples(path, source="seed"))
    return examples


def examples_from_feed_categories(docs: Sequence[Document], taxonomy: Taxonomy) -> list[Example]:
    """Training examples from stories whose feed categories map to topics through the
    taxonomy aliases: those topics are known positives, every other topic is unknown."""
    out: list[Example] = []
    for doc in docs:
        topics = taxonomy.topics_for_categories(doc.categories)
        if topics:
            out.append(Example(doc=doc, topics=topics, source="feed-category"))
    return out
