"""How a story is read for classification, identically at training and prediction time:
the one text it is classified by (:func:`text_for`), the seed-phrase matcher, and the word
and character n-gram analyzers exactly as scikit-learn's ``TfidfVectorizer`` runs them
(the numpy scorer counts with these; tests hold them to scikit-learn's on any text).

Must not import scikit-learn or SciPy: the worker processes import it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat

from aggregator.types import Document

__all__ = [
    "CHAR_CHARS",
    "SUMMARY_CHARS",
    "TEXT_CHARS",
    "TITLE_REPEAT",
    "WORD_TOKEN",
    "PhraseIndex",
    "char_wb_grams",
    "char_words",
    "normalize_for_chars",
    "phrase_tokens",
    "strip_accents",
    "text_for",
    "word_char_grams",
    "word_grams",
]

# The title is repeated so its words weigh about 1.7x those of the body under sublinear
# TF-IDF; full text is cut so that a long page does not drown headline and summary.
TITLE_REPEAT = 2
SUMMARY_CHARS = 1_000
TEXT_CHARS = 1_500


def _clean(value: str) -> str:
    """Runs of whitespace to one space, none at the ends (str.split's whitespace is the
    regex ``\\s``'s, code point for code point; splitting is ~5x faster)."""
    return " ".join(value.split())


def _cut(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    cut = value[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


def _clean_head(value: str, limit: int) -> str:
    """``_clean(value)``, of which only the first ``limit`` + 1 characters are needed:
    cleans a prefix when that is provably the same (a full article is ~50x the limit)."""
    if len(value) > 4 * limit:
        head = _clean(value[: 4 * limit])
        if len(head) > limit + 1:  # whitespace only shrinks: the cut lies inside the head
            return head
    return _clean(value)


def text_for(doc: Document) -> str:
    """The one text a story is classified by, at training and at prediction time:
    the title twice, then the summary, then the start of the extracted full text
    (skipped when it merely repeats the summary), one per line."""
    title = _clean(doc.title)
    summary = _cut(_clean_head(doc.summary, SUMMARY_CHARS), SUMMARY_CHARS)
    text = _clean_head(doc.text, TEXT_CHARS)
    if summary and text.startswith(summary[:200]):
        summary = ""
    parts = [title] * TITLE_REPEAT + [summary, _cut(text, TEXT_CHARS)]
    return "\n".join(p for p in parts if p)


_CHAR_JUNK = re.compile(r"[^\w.&+]+|(?<!\w)[.&+]|[.&+](?!\w)|_")

# Character n-grams see only the head of the text (the title twice and the start of the
# summary): they carry spelling variants of names and jargon, which the headline has, and
# over a whole article they cost 4x the time of everything else together (measured: ~600
# vs ~2,500 stories/s with ~2,000-character texts). Words still see all of the text.
CHAR_CHARS = 600


def normalize_for_chars(text: str) -> str:
    """Preprocessor of the character n-gram vectorizer: the head of the text, lower
    case, punctuation to spaces (dots, '&' and '+' kept inside tokens such as ``at&t``)."""
    return _CHAR_JUNK.sub(" ", unicodedata.normalize("NFKC", text[:CHAR_CHARS]).casefold())


# -- seed phrases ------------------------------------------------------------------------

_PHRASE_TOKEN = re.compile(r"\.?[0-9a-z]+(?:[./&@+][0-9a-z]+)*")


def phrase_tokens(text: str) -> list[str]:
    """Tokens for seed-phrase matching: lower case; hyphens and apostrophes split words
    (so "zero-day" matches "zero day"); dots inside a token are kept ("1.1.1.1",
    ".com", "example.com")."""
    return _PHRASE_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


@dataclass(frozen=True, slots=True)
class PhraseIndex:
    """Seed phrases by first token, plus domain suffixes (``.com``), per topic column."""

    index: dict[str, tuple[tuple[tuple[str, ...], int], ...]]
    suffixes: dict[str, tuple[int, ...]]
    # ``index`` regrouped for :meth:`counts`, made on first use: per first token, the
    # columns of the phrase that is that token alone, then per longer length the phrases
    # of that length with their columns
    _grouped: dict[str, _Group] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def build(cls, phrases: Sequence[Sequence[str]]) -> PhraseIndex:
        index: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        suffixes: dict[str, list[int]] = {}
        for col, topic_phrases in enumerate(phrases):
            for phrase in topic_phrases:
                toks = tuple(phrase_tokens(phrase))
                if not toks:
                    continue
                if len(toks) == 1 and toks[0].startswith(".") and toks[0].count(".") == 1:
                    suffixes.setdefault(toks[0], []).append(col)
                    continue
                entries = index.setdefault(toks[0], [])
                if (toks, col) not in entries:
                    entries.append((toks, col))
        return cls(
            {k: tuple(v) for k, v in index.items()},
            {k: tuple(sorted(set(v))) for k, v in suffixes.items()},
        )

    def matches(self, text: str) -> list[tuple[int, str]]:
        """(topic column, matched phrase) for every seed-phrase occurrence in ``text``."""
        tokens = phrase_tokens(text)
        index, suffixes = self.index, self.suffixes
        found: list[tuple[int, str]] = []
        n = len(tokens)
        for i, tok in enumerate(tokens):
            for toks, col in index.get(tok, ()):
                k = len(toks)
                if k == 1 or (i + k <= n and tuple(tokens[i : i + k]) == toks):
                    found.append((col, " ".join(toks)))
            if suffixes and "." in tok:
                suffix = tok[tok.rfind(".") :]
                for col in suffixes.get(suffix, ()):
                    found.append((col, suffix))
        return found

    def counts(self, text: str) -> dict[int, int]:
        """Occurrences per topic column: what :meth:`matches` finds, counted. Tokens that
        start no phrase and hold no dot are skipped in C (``compress``), not in a Python
        loop: most of a story's hundred-odd tokens start none."""
        tokens = phrase_tokens(text)
        index, suffixes = self.index, self.suffixes
        grouped = self._grouped
        if not grouped and index:
            grouped.update(_group_phrases(index))
        out: dict[int, int] = {}
        n = len(tokens)
        # A frequent first token ("dns", "domain") starts a few dozen phrases: one look-up
        # per phrase length, not one comparison per phrase.
        for i in compress(range(n), map(index.__contains__, tokens)):
            alone, longer = grouped[tokens[i]]
            for col in alone:
                out[col] = out.get(col, 0) + 1
            for k, phrases in longer:
                if i + k > n:
                    break
                for col in phrases.get(tuple(tokens[i : i + k]), ()):
                    out[col] = out.get(col, 0) + 1
        if suffixes:
            for tok in compress(tokens, map(str.__contains__, tokens, repeat("."))):
                for col in suffixes.get(tok[tok.rfind(".") :], ()):
                    out[col] = out.get(col, 0) + 1
        return out


_Group = tuple[tuple[int, ...], tuple[tuple[int, dict[tuple[str, ...], tuple[int, ...]]], ...]]


def _group_phrases(index: dict[str, tuple[tuple[tuple[str, ...], int], ...]]) -> dict[str, _Group]:
    out: dict[str, _Group] = {}
    for first, entries in index.items():
        by_length: dict[int, dict[tuple[str, ...], list[int]]] = {}
        for toks, col in entries:
            by_length.setdefault(len(toks), {}).setdefault(toks, []).append(col)
        alone = tuple(col for cols in by_length.pop(1, {}).values() for col in cols)
        longer = tuple(
            (k, {toks: tuple(cols) for toks, cols in phrases.items()})
            for k, phrases in sorted(by_length.items())
        )
        out[first] = (alone, longer)
    return out


# -- n-gram analyzers, as scikit-learn's TfidfVectorizer runs them ------------------------

WORD_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token_pattern


class _Unmarked(dict[int, int | None]):
    """``str.translate`` table deleting every character with a non-zero canonical
    combining class; filled per code point as characters are met."""

    def __missing__(self, point: int) -> int | None:
        kept = None if unicodedata.combining(chr(point)) else point
        self[point] = kept
        return kept


_UNMARKED = _Unmarked()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _unmark(run: re.Match[str]) -> str:
    return run.group().translate(_UNMARKED)


def strip_accents(s: str) -> str:
    """scikit-learn's strip_accents_unicode, exactly: NFKD, then drop the combining
    characters. Only runs of non-ASCII characters are looked at: English news is mostly
    ASCII but rarely all of it (curly quotes, dashes), and scanning every character,
    in a Python loop or against one regex class of all combining marks, was a sixth of
    the scorer's time on feed text."""
    if s.isascii():
        return s
    return _NON_ASCII.sub(_unmark, unicodedata.normalize("NFKD", s))


def word_grams(text: str, lo: int, hi: int) -> list[str]:
    """analyzer="word", lowercase, strip_accents="unicode", the default token pattern."""
    tokens = WORD_TOKEN.findall(strip_accents(text.lower()))
    out = list(tokens) if lo == 1 else []
    join = " ".join
    for n in range(max(lo, 2), min(hi + 1, len(tokens) + 1)):
        out.extend(join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return out


def word_char_grams(w: str, lo: int, hi: int) -> list[str]:
    w = " " + w + " "
    w_len = len(w)
    out: list[str] = []
    for n in range(lo, hi + 1):
        if n >= w_len:  # a short word counts once, as scikit-learn does
            out.append(w)
            break
        out.extend([w[i : i + n] for i in range(w_len - n + 1)])
    return out


def char_words(text: str) -> Counter[str]:
    """The words the char_wb analyzer cuts into n-grams, with how often each occurs."""
    # scikit-learn collapses runs of white space before split(), which changes nothing
    return Counter(normalize_for_chars(text).split())


def char_wb_grams(text: str, lo: int, hi: int) -> list[str]:
    """analyzer="char_wb" with ``normalize_for_chars`` as preprocessor: what the scorer's
    character block counts (it caches each word's columns instead of its n-grams)."""
    out: list[str] = []
    for word, count in char_words(text).items():
        grams = word_char_grams(word, lo, hi)
        out.extend(grams * count if count > 1 else grams)
    return out
