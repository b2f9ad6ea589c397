"""Training examples: labelled stories read from JSON-lines files (our seeds in
``models/seeds/``, a user's gold file) and from stored stories whose feed categories map to
topics.

Owns the file format (``{"title", "text", "topics"}`` per line, ``title`` or ``text``
possibly missing but not both, with optional ``summary``, ``full_text``, ``negative``,
``categories``, ``id``, ``source``) and its errors, which name the file and line. Must
not import scikit-learn (``aggregator evaluate`` and the label commands read examples
before deciding whether to train) or touch the store.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aggregator.errors import ConfigError
from aggregator.taxonomy import Taxonomy, normalize_category
from aggregator.types import Document, Example, ExampleSource

__all__ = [
    "example_from_line",
    "examples_from_feed_categories",
    "iter_jsonl_lines",
    "json_error",
    "jsonl_lines",
    "load_seed_examples",
    "read_examples",
    "read_file",
    "story_texts",
]


def story_texts(row: Mapping[str, Any]) -> tuple[Any, Any]:
    """A JSON Lines story's text and full text, as the model reads them (the summary and
    the extracted text of a stored story): ``text``, or ``summary`` where ``text`` is
    missing, null or empty; and ``full_text`` ("" when missing). ``classify`` and the
    example and gold files read a line through this one function: each chose its own
    way (``summary`` first here, ``text`` first there; ``full_text`` read here alone),
    and the same line scored otherwise in ``classify`` than in ``evaluate``. Values are
    returned as found: each reader says what it makes of one that is not a string."""
    text = row.get("text")
    if text is None or text == "":
        text = row.get("summary") or ""
    return text, row.get("full_text") or ""


def read_examples(path: Path, *, source: ExampleSource = "seed") -> list[Example]:
    """Labelled stories from a JSON-lines file: ``{"title", "text", "topics"}`` per line
    (``text`` is the summary; optional ``summary``, ``full_text``, ``negative``,
    ``categories``, ``id``, ``source``). ``topics: []`` means "belongs to no topic". A
    line may have a ``title`` or a ``text`` alone (missing, null or ""), as ``classify``
    reads it, but not neither: :class:`ConfigError` naming the line, as for any other
    malformed one."""
    return [
        example_from_line(line, f"{path}:{number}", f"{Path(path).name}:{number}", source=source)
        for number, line in jsonl_lines(path)
    ]


def read_file(path: Path) -> bytes:
    """The bytes of ``path``; :class:`ConfigError` naming it when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e


def jsonl_lines(path: Path, raw: bytes | None = None) -> list[tuple[int, str]]:
    """(line number, line) for each non-blank line of a UTF-8 JSON-lines file (its bytes
    ``raw`` when already read), with or without a byte-order mark (at the start of any
    line: files joined with ``cat``), lines ending in LF or CRLF. Only a line feed ends
    a line: U+2028 or U+0085 inside a JSON string is text (``str.splitlines`` broke such
    a line in two). :class:`ConfigError` naming the file
    (and the line, for bytes not UTF-8)."""
    if raw is None:
        raw = read_file(path)
    return list(iter_jsonl_lines(path, io.BytesIO(raw)))


def iter_jsonl_lines(path: Path, stream: Iterable[bytes]) -> Iterator[tuple[int, str]]:
    """:func:`jsonl_lines` read from ``stream`` a line at a time (its lines, each ending
    in its line feed but the last; ``path`` names it in errors), so that memory holds
    one line, not the file: a gold file of gigabytes was read whole, decoded whole and
    split whole before its first story was looked at.
    A UTF-8 sequence never holds a line feed, so decoding line by line reads the same
    text as decoding the whole."""
    offset = 0  # of the line, in the file after its byte-order mark
    for number, raw_line in enumerate(stream, 1):
        line = raw_line.removesuffix(b"\n")
        if number == 1:
            if line.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                # what PowerShell's `>` and Notepad's "Unicode" write
                raise ConfigError(
                    f"{path}:1: UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8"
                )
            if line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8) :]
                raw_line = raw_line[len(codecs.BOM_UTF8) :]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            at = offset + e.start
            raise ConfigError(
                f"{path}:{number}: not UTF-8 text (byte 0x{line[e.start]:02x} at offset {at})"
            ) from e
        offset += len(raw_line)
        # a BOM at the start of any line: files saved with one and joined (`cat`) have the
        # second's there, and the whole file was refused as "not JSON" at that line
        text = text.removeprefix("\ufeff")
        if text.strip():
            yield number, text


def json_error(e: json.JSONDecodeError) -> str:
    """What is wrong with a line that is not JSON, and where in it: the column alone
    (the message's own "line 1 column 21 (char 20)" pointed at a line of the file that
    was not meant, and "Unterminated string starting at" ends in its own "at")."""
    return f"{e.msg.removesuffix(' at')} at column {e.colno}"


def example_from_line(
    line: str, where: str, default_id: str, *, source: ExampleSource = "seed", gold: bool = False
) -> Example:
    """One line of an examples file (see :func:`read_examples`); ``where`` names it in
    errors, ``default_id`` is the id of a line without one. A line's own ``source``
    overrides ``source``. ``gold``: a line without ``"topics"`` is an error (in gold data
    a missing field is a mistake, and scoring that story as off-topic would quietly count
    every topic the model gives it as wrong)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: not JSON ({json_error(e)})") from e
    except ValueError as e:  # an integer too long to convert
        raise ConfigError(f"{where}: not JSON: {e}") from e
    except RecursionError as e:
        raise ConfigError(f"{where}: not JSON: nested too deeply") from e
    if not isinstance(row, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    title = row.get("title")
    if title is None:
        title = ""  # a story may be its text alone, as `classify` reads it
    if not isinstance(title, str):
        raise ConfigError(f"{where}: 'title' must be a string")
    if gold and "topics" not in row:
        raise ConfigError(
            f'{where}: no "topics"; every gold story needs its topics '
            '(write "topics": [] for a story that belongs to no topic)'
        )
    fields: dict[str, list[str]] = {}
    for name in ("topics", "negative", "categories"):
        value = row.get(name, [])
        if value is None and name != "topics":
            # null is none, as `classify` reads categories: a gold line a script wrote
            # for a story without feed categories, or with no topic denied, refused the
            # whole file (null topics stay an error: in gold data, a story unlabelled)
            value = []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: '{name}' must be a list of strings")
        fields[name] = value
    # compared as the taxonomy matches names: "policy-and-regulation" in 'negative' was
    # not seen to deny "Policy & Regulation" in 'topics', and the denial was quietly lost
    # (a name without a letter or digit has no key: it is an unknown topic, said later)
    denied = {normalize_category(t) for t in fields["negative"]} - {""}
    both = [t for t in fields["topics"] if normalize_category(t) in denied]
    if both:
        # scored (and trained) as given, the denial quietly lost
        raise ConfigError(
            f"{where}: {', '.join(repr(t) for t in both)} "
            f"{'is' if len(both) == 1 else 'are'} both in 'topics' and in 'negative'"
        )
    row_source = row.get("source", source)
    if row_source not in ("seed", "user", "feed-category"):
        row_source = source
    summary, full_text = story_texts(row)
    if not isinstance(summary, str) or not isinstance(full_text, str):
        raise ConfigError(f"{where}: 'text' / 'full_text' must be strings")
    if not (title + summary + full_text).strip():
        # as `classify` refuses such a line: the model would score an empty story
        raise ConfigError(f"{where}: no 'title' or 'text' (a story needs one of them, not empty)")
    doc = Document(
        id=str(row.get("id") or default_id),
        title=title,
        summary=summary,
        text=full_text,
        categories=tuple(fields["categories"]),
    )
    return Example(
        doc=doc,
        topics=tuple(fields["topics"]),
        negative=tuple(fields["negative"]),
        source=row_source,
    )


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
