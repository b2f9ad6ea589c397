"""``aggregator classify``'s JSON Lines: reading stories from a file or stdin line by line
(bytes decoded one line at a time, so a bad line is one error, not the end of the batch;
lines handed on as soon as a slow writer sends them) and writing one prediction per line,
each id echoed exactly as it was given.

Owns the line format and its errors, which name the input and the line; the command
itself, and loading the model, are :mod:`aggregator.cli.learning`'s. Must stay light (the
CLI imports it on every command): the standard library, errors, examples and types only.
"""

from __future__ import annotations

import codecs
import io
import json
import math
import os
import select
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ConfigError
from ..examples import json_error, story_texts
from ..types import Document

#: The longest line read (its line feed not counted): a story with the text of a page as
#: large as the fetcher takes (10 MiB) fits, written as JSON with its escapes. A longer
#: line is one bad line, read past without being kept (it was read whole: `head -c 2G
#: /dev/zero | tr '\0' a | aggregator classify -` grew without bound).
MAX_LINE_BYTES = 16 * 1024 * 1024


class _Overlong:
    """A line longer than :data:`MAX_LINE_BYTES`, read past."""


OVERLONG = _Overlong()


def _read_jsonl_docs(
    lines: Iterable[bytes | _Overlong | None], name: str
) -> Iterator[tuple[int, tuple[str, Document] | str | None]]:
    """(line number, (the id as given, written as JSON, Document)) per good line, (line
    number, error) per bad one. Lines come in as bytes and are decoded one by one, so a
    line that is not UTF-8 is one bad line, not the end of the batch; a UTF-8 byte-order
    mark at the start of a line is skipped. A line without an id gets its line number as a string
    ("3"). A None in ``lines`` (the input has nothing more for now) is passed on as (last
    line, None)."""
    n = 0
    for raw in lines:
        if raw is None:
            yield n, None
            continue
        n += 1
        if isinstance(raw, _Overlong):
            yield n, f"{name} line {n}: longer than {MAX_LINE_BYTES >> 20} MiB; skipped"
            continue
        if raw.startswith(codecs.BOM_UTF8):
            # on any line: files saved with one and joined (`cat a.jsonl b.jsonl`) have
            # the second's BOM at the start of a line, which was "not valid JSON"
            raw = raw[len(codecs.BOM_UTF8) :]
        elif n == 1 and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            # what PowerShell's `>` writes: every line would be one error, none classified
            raise ConfigError(
                f"{name} line 1: UTF-16 text (it starts with a UTF-16 byte-order mark); "
                "classify reads UTF-8"
            )
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            bad = raw[e.start]
            yield n, f"{name} line {n}: not valid UTF-8 (byte 0x{bad:02x} at offset {e.start})"
            continue
        try:
            obj = json.loads(line, parse_float=_Fraction, parse_int=_int)
        except json.JSONDecodeError as e:
            yield n, f"{name} line {n}: not valid JSON ({json_error(e)})"
            continue
        except ValueError:  # an integer past Python's 4300-digit conversion limit
            yield n, f"{name} line {n}: not valid JSON (a number is too long)"
            continue
        except RecursionError:
            yield n, f"{name} line {n}: not valid JSON (nested too deeply)"
            continue
        if not isinstance(obj, dict):
            yield n, f"{name} line {n}: expected a JSON object"
            continue
        # the fields evaluate reads too (a gold line is scored as classify scores it)
        title, (text, full_text) = obj.get("title"), story_texts(obj)
        cats = obj.get("categories")
        # refused, as evaluate refuses them: read as missing, a line's categories given
        # as one string ("DNS", a feed category worth its topic) or a title that is a
        # number were quietly dropped, and the line got other topics than in evaluate
        wrong = _wrong_type(title=title, text=text, full_text=full_text, categories=cats)
        if wrong:
            yield n, f"{name} line {n}: {wrong}"
            continue
        title = title or ""
        if not (title + text + full_text).strip():
            yield n, f"{name} line {n}: no text to classify ('title' and 'text' are empty)"
            continue
        # The id is echoed exactly as given (42 stays a number, null stays null), and so
        # written out here, where the line can still be refused: non-finite numbers
        # (1e400, NaN) have no JSON spelling to echo, and an id nested a few hundred
        # levels deep (which json.loads takes) ran out of stack as the answers were
        # written, a traceback that lost the rest of the input.
        doc_id = obj.get("id", str(n))
        try:
            echo = _as_written(doc_id)
        except ValueError:
            yield n, f"{name} line {n}: 'id' must be a finite number"
            continue
        except RecursionError:
            yield n, f"{name} line {n}: 'id' is nested too deeply to echo"
            continue
        doc = Document(
            id=str(doc_id),
            title=title,
            summary=text,
            text=full_text,
            categories=tuple(cats or ()),
        )
        yield n, (echo, doc)


def _wrong_type(*, title: Any, text: Any, full_text: Any, categories: Any) -> str | None:
    """What is wrong with a line's fields (null or missing ones are empty), or None."""
    for field, value in (("title", title), ("text", text), ("full_text", full_text)):
        if value is not None and not isinstance(value, str):
            return f"'{field}' must be a string"
    if categories is not None and (
        not isinstance(categories, list) or not all(isinstance(c, str) for c in categories)
    ):
        return "'categories' must be a list of strings"
    return None


class _Fraction(float):
    """A JSON number with a fraction or an exponent, and its text as written: the id is
    echoed exactly as given ("1e5" came back as 100000.0, "1.10" as 1.1, and digits past
    a double's 17 were lost)."""

    text: str

    def __new__(cls, text: str) -> _Fraction:
        number = super().__new__(cls, text)
        number.text = text
        return number


class _MinusZero(int):
    """The integer ``-0``: Python has no negative zero, and it came back as ``0``."""


def _int(text: str) -> int:
    """A JSON integer: ``int(text)``, but ``-0`` marked so that it is echoed as written
    (the one integer ``int`` does not spell back as JSON wrote it)."""
    return _MinusZero(0) if text == "-0" else int(text)


def _as_written(value: Any) -> str:
    """``value`` as JSON (ASCII), its fractional numbers as they were written. Raises
    ValueError for a non-finite number, RecursionError for one nested too deeply."""
    if isinstance(value, _Fraction) and math.isfinite(value):
        return value.text
    if isinstance(value, _MinusZero):
        return "-0"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_as_written(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_as_written(v) for v in value) + "]"
    return json.dumps(value, allow_nan=False)


def _input_lines(stream: BinaryIO) -> Iterator[bytes | _Overlong | None]:
    """The lines of ``stream`` as bytes, with a None whenever the next line has not
    arrived yet, so that the lines read so far are classified and written out before
    waiting: a script that sends one story and waits for its answer (a co-process, a
    ``tail -f`` pipe) gets it at once, while input that is already there (a file, a fast
    pipe) is still classified in full batches. Files and streams without a pollable file
    descriptor are read as they are. A line longer than :data:`MAX_LINE_BYTES` is
    :data:`OVERLONG`, its bytes dropped as they come."""
    try:
        fd = stream.fileno()
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        select.select([fd], [], [], 0)  # pipes cannot be polled everywhere (Windows)
    except (OSError, ValueError, io.UnsupportedOperation):
        yield from _stream_lines(stream)
        return
    if regular:
        yield from _stream_lines(stream)
        return
    buf = bytearray()
    over = False  # the line arriving is past the cap: dropped up to its line feed
    sent = False  # lines went out since the last None
    while True:
        if sent and not select.select([fd], [], [], 0)[0]:
            sent = False
            yield None
        chunk = _read(fd)
        if not chunk:
            break
        if over:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            over, chunk = False, chunk[end + 1 :]
            yield OVERLONG
            sent = True
        buf += chunk
        if b"\n" in chunk:
            *lines, rest = buf.split(b"\n")
            buf = bytearray(rest)
            for line in lines:
                yield OVERLONG if len(line) > MAX_LINE_BYTES else bytes(line) + b"\n"
            sent = True
        if len(buf) > MAX_LINE_BYTES:  # a long line still arriving, too long to keep
            buf.clear()
            over = True
    if over or len(buf) > MAX_LINE_BYTES:
        yield OVERLONG
    elif buf:
        yield bytes(buf)


def _stream_lines(stream: BinaryIO) -> Iterator[bytes | _Overlong]:
    """The lines of a file (or a stream that cannot be polled), each no longer than
    :data:`MAX_LINE_BYTES` kept; a longer one is :data:`OVERLONG`."""
    while line := stream.readline(MAX_LINE_BYTES + 2):
        if len(line.removesuffix(b"\n")) <= MAX_LINE_BYTES:
            yield line
            continue
        while not line.endswith(b"\n") and (line := stream.readline(1 << 16)):
            pass  # the rest of the line, read past
        yield OVERLONG


def _read(fd: int) -> bytes:
    """Up to 64 KiB from ``fd``, waiting for them: an input left non-blocking by the
    program that made it (an event loop's pipe) failed the command with "Resource
    temporarily unavailable" as soon as it had nothing to read."""
    while True:
        try:
            return os.read(fd, 1 << 16)
        except BlockingIOError:
            select.select([fd], [], [])


def _open_input(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from e


def _classify_batch(model: Any, batch: list[tuple[str, Document]]) -> None:
    # a full disk or a closed pipe while writing is cli.main's to report
    if batch:
        preds = model.predict([doc for _, doc in batch])
        for (echo, _), pred in zip(batch, preds, strict=True):
            _emit_prediction(echo, pred)
        sys.stdout.flush()


def _emit_prediction(echo: str, pred: Any) -> None:
    """One answer line; ``echo`` is the id as JSON (:func:`_as_written`)."""
    topics = [
        {"topic": t.topic, "score": round(t.score, 4), "source": t.source} for t in pred.topics
    ]
    # ASCII with \u escapes: valid UTF-8 whatever the ids hold (a lone surrogate such as
    # "\ud800" is legal JSON but cannot be encoded) and whatever stdout's encoding is.
    sys.stdout.write(f'{{"id": {echo}, "topics": {json.dumps(topics)}}}\n')
