"""The scorer's features: what the pipeline's ``features`` step (TF-IDF vectorizers over
words and characters, and the seed-phrase counts) makes of a chunk of texts, as arrays
of (story, column[, value]): each block's n-gram occurrences looked up in its vocabulary,
TfidfVectorizer's rows from them, and the phrase counts; with the blocks (``_Block``) and
the word block's vocabulary as integer arrays (``_WordIndex``) that they read.

A mixin of :class:`aggregator.scoring.Scorer` (the attributes it reads are declared below
for mypy), which owns the weights, the decisions, calibration, the predictions and the
arrays' persistence. Like it, this must not import scikit-learn or SciPy, directly or
through another module; nor may it import :mod:`aggregator.scoring`, which imports it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from aggregator.analyzers import (
    WORD_TOKEN,
    PhraseIndex,
    char_words,
    strip_accents,
    word_char_grams,
    word_grams,
)

#: Distinct words whose character n-gram columns a scorer remembers (a few MB at most).
_WORD_CACHE_MAX = 20_000


@dataclass(slots=True)
class _Block:
    kind: str  # "words" | "chars" | "phrases"
    weight: float
    offset: int  # first column in the union
    width: int
    ngrams: tuple[int, int] = (1, 1)
    vocab: dict[str, int] | None = None
    idf: np.ndarray | None = None
    index: _WordIndex | None = None


@dataclass(frozen=True, slots=True)
class _WordIndex:
    """A unigram + bigram vocabulary as arrays: ``ids`` numbers every token that occurs
    in a term (``unknown`` = len(ids) for any other); ``unigram[id]`` is the token's
    column or -1; ``pair_keys`` (sorted id1 * size + id2) and ``pair_cols`` the bigrams'."""

    ids: dict[str, int]
    unknown: int
    size: int
    unigram: np.ndarray
    pair_keys: np.ndarray
    pair_cols: np.ndarray

    @classmethod
    def build(cls, vocab: dict[str, int]) -> _WordIndex:
        ids: dict[str, int] = {}
        for term in vocab:  # unigrams first: their key strings are shared, not copied
            if " " not in term:
                ids[term] = len(ids)
        for term in vocab:
            for tok in term.split(" "):
                if tok not in ids:
                    ids[tok] = len(ids)
        size = len(ids) + 1
        unigram = np.full(size, -1, dtype=np.int64)
        keys: list[int] = []
        cols: list[int] = []
        for term, col in vocab.items():
            toks = term.split(" ")
            if len(toks) == 1:
                unigram[ids[toks[0]]] = col
            else:
                keys.append(ids[toks[0]] * size + ids[toks[1]])
                cols.append(col)
        order = np.argsort(np.asarray(keys, dtype=np.int64), kind="stable")
        return cls(
            ids,
            len(ids),
            size,
            unigram,
            np.asarray(keys, dtype=np.int64)[order],
            np.asarray(cols, dtype=np.int64)[order],
        )


class Features:
    """Feature rows for :class:`~aggregator.scoring.Scorer`, over its blocks' vocabularies."""

    phrases: PhraseIndex | None
    _phrase_block: _Block | None
    _word_cols: dict[str, bytes]

    def _word_index(self, b: _Block) -> _WordIndex:
        """The word block's vocabulary as integer arrays (built on first use): each
        token an id, unigram columns by id, bigram columns by sorted id pairs."""
        if b.index is None:
            assert b.vocab is not None
            b.index = _WordIndex.build(b.vocab)
        return b.index

    def _word_entries(self, b: _Block, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(story, column) of every word n-gram of ``texts`` in the vocabulary, one entry
        per occurrence. Tokens are looked up once; bigrams are found by binary search on
        id pairs rather than by joining strings."""
        ix = self._word_index(b)
        tokens: list[str] = []
        lens = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            found = WORD_TOKEN.findall(strip_accents(text.lower()))
            tokens.extend(found)
            lens[i] = len(found)
        ids = np.fromiter(map(ix.ids.get, tokens, repeat(ix.unknown)), np.int64, len(tokens))
        story = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
        uni = ix.unigram[ids]
        known = uni >= 0
        docs, cols = [story[known]], [uni[known]]
        if len(ids) > 1 and len(ix.pair_keys):
            same = (story[:-1] == story[1:]) & (ids[:-1] != ix.unknown) & (ids[1:] != ix.unknown)
            keys = ids[:-1][same] * ix.size + ids[1:][same]
            pos = np.minimum(np.searchsorted(ix.pair_keys, keys), len(ix.pair_keys) - 1)
            hit = ix.pair_keys[pos] == keys
            docs.append(story[:-1][same][hit])
            cols.append(ix.pair_cols[pos[hit]])
        return np.concatenate(docs), np.concatenate(cols)

    def _char_entries(self, b: _Block, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(story, column) of every character n-gram of ``texts`` in the vocabulary. Each
        distinct word's columns are computed once per process (news reuses its words)."""
        assert b.vocab is not None
        cache = self._word_cols
        if len(cache) > _WORD_CACHE_MAX:
            cache.clear()
        lo, hi = b.ngrams
        get = b.vocab.get
        parts: list[bytes] = []
        lens = np.zeros(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            total = 0
            for word, count in char_words(text).items():
                cols = cache.get(word)
                if cols is None:
                    found = [c for c in map(get, word_char_grams(word, lo, hi)) if c is not None]
                    cols = cache[word] = np.asarray(found, dtype=np.int32).tobytes()
                parts.extend([cols] * count)
                total += len(cols) * count
            lens[i] = total // 4
        story = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
        return story, np.frombuffer(b"".join(parts), dtype=np.int32).astype(np.int64)

    def _tfidf(
        self, b: _Block, story: np.ndarray, cols: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TfidfVectorizer's rows from (story, column) occurrences: sublinear tf times
        idf, L2-normalised per story, times the block weight, as (story, union column,
        value) sorted by story."""
        assert b.idf is not None
        keys, tf = np.unique(story * b.width + cols, return_counts=True)
        story, cols = np.divmod(keys, b.width)
        value = (np.log(tf.astype(np.float32)) + np.float32(1.0)) * b.idf[cols]
        norm = np.sqrt(np.bincount(story, weights=value * value, minlength=n))
        value = value / norm[story].astype(np.float32)
        return story, cols + b.offset, value * np.float32(b.weight)

    def _phrase_entries(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b = self._phrase_block
        assert b is not None and self.phrases is not None
        story: list[int] = []
        cols: list[int] = []
        values: list[float] = []
        for i, text in enumerate(texts):
            counts = self.phrases.counts(text)
            for k in sorted(counts):
                story.append(i)
                cols.append(k + b.offset)
                values.append(math.log1p(counts[k]))
        value = np.asarray(values, dtype=np.float32) * np.float32(b.weight)
        return np.asarray(story, dtype=np.int64), np.asarray(cols, dtype=np.int64), value

    def _generic_entries(self, b: _Block, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(story, column) for a word block of any n-gram range, from the n-gram strings."""
        assert b.vocab is not None
        grams = [word_grams(t, *b.ngrams) for t in texts]
        flat = [g for gs in grams for g in gs]
        cols = np.fromiter(map(b.vocab.get, flat, repeat(-1)), np.int64, len(flat))
        story = np.repeat(np.arange(len(texts), dtype=np.int64), [len(g) for g in grams])
        known = cols >= 0
        return story[known], cols[known]
