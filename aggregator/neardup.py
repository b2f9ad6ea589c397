"""Near-duplicate keys: the SimHash fingerprint of a story's text (:func:`simhash`, its
scheme :data:`SIMHASH_VERSION`), the distance between two (:func:`hamming`), a title
normalised for comparison (:func:`title_key`), the sentences a document repeats under
its items (:func:`boilerplate`, left out of fingerprints) and the rule that keeps issues
of a numbered series apart (:func:`series_apart`). Pure functions: no I/O, no clock, no store.

Must not: import numpy at module level (the store's process may import this module for
:func:`series_apart`; numpy loads with the first :func:`simhash`), or change what a
fingerprint means without a new :data:`SIMHASH_VERSION` and a store migration (stored
fingerprints would stop matching).
Story identity and canonical URLs are :mod:`aggregator.dedupe`'s.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Iterable
from itertools import islice
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "BOILERPLATE_LOOKED_AT",
    "FINGERPRINT_MIN_WORDS",
    "SIMHASH_VERSION",
    "TITLE_MATCH_MIN_WORDS",
    "boilerplate",
    "boilerplate_of",
    "fingerprint",
    "hamming",
    "keyed_sentences",
    "series_apart",
    "simhash",
    "title_hash",
    "title_key",
    "without_boilerplate",
    "without_keyed",
]

_WORD = re.compile(r"\w+")
_SHINGLE = 3

#: The fingerprint scheme. Stored fingerprints are only comparable within one scheme: a
#: new one needs a store migration that recomputes the recent ones (see store.migrations,
#: migration 4, which moved stores from scheme 1 to 2).
SIMHASH_VERSION = 2

# numpy is imported by simhash itself: the store may import this module (series_apart),
# and the poll's main process stays without numpy (~15 MB; see tests/test_store.py).
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place on uint64 (multiplication wraps): every input bit
    reaches every output bit."""
    u64 = x.dtype.type  # numpy.uint64
    x ^= x >> u64(30)
    x *= u64(_MIX1)
    x ^= x >> u64(27)
    x *= u64(_MIX2)
    x ^= x >> u64(31)
    return x


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    u64 = x.dtype.type
    rotated: np.ndarray = (x << u64(r)) | (x >> u64(64 - r))
    return rotated


def simhash(text: str) -> int:
    """64-bit SimHash (Charikar) over word 3-shingles of ``text``, case-folded.

    Near-identical texts get hashes a few bits apart (see :func:`hamming`); 0 for text
    without words. Scheme 2: each word's CRC-32 (UTF-8) is spread to 64 bits by
    SplitMix64's finaliser; a shingle's hash is the finaliser over its words' hashes,
    rotated by 0, 21 and 42 bits and XOR-ed. Values are stable across processes and
    versions (nothing depends on Python's per-process ``hash``). Scheme 1 hashed each
    shingle's text with BLAKE2b: 1.8x the CPU on the fetch benchmark's story texts.
    """
    words = _WORD.findall(text.casefold())
    n = len(words)
    if not n:
        return 0
    import numpy as np

    u64 = np.uint64
    try:
        crcs = np.fromiter(map(zlib.crc32, map(str.encode, words)), dtype=u64, count=n)
    except UnicodeEncodeError:  # lone surrogates, as JSON's "\\ud800" can give
        crcs = np.fromiter(
            (zlib.crc32(w.encode("utf-8", "surrogatepass")) for w in words), dtype=u64, count=n
        )
    h = _mix64(crcs)
    if n >= _SHINGLE:
        x = h[:-2] ^ _rotl(h[1:-1], 21) ^ _rotl(h[2:], 42)
    elif n == 2:
        x = h[:-1] ^ _rotl(h[1:], 21)
    else:
        x = h
    x = _mix64(x)
    # For each of the 64 bit positions (byte-major, least significant bit first, as the
    # machine's little-endian bytes are), count the shingle hashes that set it; the
    # majority decides the bit.
    octets = x.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)
    bits = np.unpackbits(octets, axis=1, bitorder="little")
    majority = 2 * bits.sum(axis=0, dtype=np.int64) > len(x)
    return int.from_bytes(np.packbits(majority, bitorder="little").tobytes(), "little")


#: Words a story's title and text need together before the story gets a fingerprint
#: (:func:`fingerprint`). Twice :data:`TITLE_MATCH_MIN_WORDS`: a title too short to match
#: by, with a line of boilerplate ("Weekly roundup" / "Read more") or itself again as
#: the text, is equal in two sites' unrelated posts of one day, and SimHash over so few
#: words cannot tell their stories apart.
FINGERPRINT_MIN_WORDS = 8


def fingerprint(title: str, text: str, boilerplate: frozenset[str] = frozenset()) -> int | None:
    """The SimHash a story's copies are found by (:func:`simhash` over its title and
    ``text``, less the sentences of ``text`` that are in ``boilerplate``: see
    :func:`boilerplate`), or None: for a text without words, a match for every other one,
    and for fewer than :data:`FINGERPRINT_MIN_WORDS` words in all. Such a story clusters
    by its URL only (a story shown twice is better than one hidden)."""
    joined = f"{title}\n{without_boilerplate(text, boilerplate)}"
    if sum(1 for _ in islice(_WORD.finditer(joined), FINGERPRINT_MIN_WORDS)) < (
        FINGERPRINT_MIN_WORDS
    ):
        return None
    return simhash(joined) or None


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def without_boilerplate(text: str, boilerplate: frozenset[str]) -> str:
    """``text`` less its sentences that are in ``boilerplate`` (:func:`boilerplate`), one
    sentence a line; ``text`` itself when there is none to leave out."""
    if not boilerplate:
        return text
    return without_keyed(keyed_sentences(text), boilerplate)


#: A text's sentences, each with the key :func:`boilerplate` compares it by.
Keyed = list[tuple[str, str]]


def keyed_sentences(text: str) -> Keyed:
    """``text``'s sentences and their keys, for a caller that both looks for its
    document's boilerplate (:func:`boilerplate_of`) and leaves it out
    (:func:`without_keyed`): each sentence is split and keyed once."""
    return [(s, _sentence_key(s)) for s in _sentences(text)]


def without_keyed(keyed: Keyed, boilerplate: frozenset[str]) -> str:
    """:func:`without_boilerplate` of a text given as :func:`keyed_sentences`, for a
    non-empty ``boilerplate``."""
    return "\n".join(s for s, key in keyed if key not in boilerplate)


def _sentences(text: str) -> list[str]:
    """The sentences of ``text``: its lines (one per block element, as
    ``textutil.html_to_text`` gives them) cut after ".", "!", "?" or "…"."""
    return [s for line in text.splitlines() for s in _SENTENCE_END.split(line) if s]


def _sentence_key(sentence: str) -> str:
    """A sentence as :func:`boilerplate` compares it: case-folded, its runs of what is
    neither letter nor digit one space, as :func:`title_key` has it but without
    decomposing accented letters (what a site repeats under its items is repeated as
    written). Each sentence of a document's texts is keyed, so this is kept cheap: the
    decomposition, per character, cost a full-text document's parse job a quarter more
    CPU, and ASCII text (most) goes through a byte table instead of the pattern."""
    if sentence.isascii():
        return " ".join(sentence.encode().lower().translate(_ASCII_NOT_WORD).decode().split())
    return " ".join(_NOT_WORD.sub(" ", sentence.casefold()).split())


#: What ``_NOT_WORD`` replaces in ASCII text (all but letters and digits), as a table.
_ASCII_NOT_WORD = bytes(c if chr(c).isalnum() else 32 for c in range(256))


#: Other stories of a document that :func:`boilerplate` reads besides those it is
#: wanted for: what a site puts under every item is in each of them, and reading every
#: entry of a long full-text document again at each poll that brings one new item would
#: cost more than its parse.
BOILERPLATE_LOOKED_AT = 8


def boilerplate(stories: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The sentences (keyed as ``_sentence_key`` has them: for ASCII text the form
    :func:`title_key` gives) that the texts of one document's
    stories, as (title, text) pairs, repeat under two or more different titles: a site's
    newsletter sign-up, cookie notice, "Read more on ..." line or "About us" paragraph
    under every item. They say nothing about the story, and two of its stories of one
    day with a one-line teaser each above 140 words of them were SimHash near-duplicates
    (2 bits apart), one hidden under the other; a syndicated copy under another site's
    footer was too far from the original to be found. :func:`fingerprint` leaves them
    out. Texts under one title (copies or versions of one story) are not compared: their
    shared text is the story's own."""
    return boilerplate_of((title, keyed_sentences(text)) for title, text in stories)


def boilerplate_of(stories: Iterable[tuple[str, Keyed]]) -> frozenset[str]:
    """:func:`boilerplate` of texts given as :func:`keyed_sentences`."""
    first_title: dict[str, str] = {}  # sentence -> the first title it was seen under
    repeated: set[str] = set()
    for title, keyed in stories:
        tkey = title_key(title)
        for sentence in {key for _, key in keyed}:
            if sentence and first_title.setdefault(sentence, tkey) != tkey:
                repeated.add(sentence)
    return frozenset(repeated)


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two SimHash values."""
    return (a ^ b).bit_count()


_NOT_WORD = re.compile(r"[\W_]+")


def title_key(title: str) -> str:
    """A title normalised for similarity: NFKD without accents, case-folded, punctuation
    and runs of whitespace collapsed to single spaces. Site suffixes such as " - Site"
    are kept: stripping them would also cut real titles."""
    if title.isascii():  # most titles: NFKD changes nothing and there are no marks
        bare = title
    else:
        decomposed = unicodedata.normalize("NFKD", title)
        bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", bare.casefold()).split())


#: Words a title needs before copies are looked for by it (:func:`title_hash`): "Press
#: release", "Weekly update" or "News" head many unrelated stories.
TITLE_MATCH_MIN_WORDS = 4


def title_hash(title: str) -> int | None:
    """The title's words (:func:`title_key`) as a signed 64-bit hash, the store's key for
    copies of a story under the same title (a syndicated copy with a dateline or an
    editor's note added is 4-12 SimHash bits away, past the bands' 3); None for a title
    of fewer than :data:`TITLE_MATCH_MIN_WORDS` words. A hash, not the text: an index
    entry of PostgreSQL's B-tree holds ~2.7 kB, and a title may be 150,000 characters."""
    key = title_key(title)
    if key.count(" ") + 1 < TITLE_MATCH_MIN_WORDS:
        return None
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_DIGITS = re.compile(r"\d+")


def series_apart(a: str, b: str) -> bool:
    """Whether titles ``a`` and ``b`` are two issues of one numbered series rather than
    one story: the same words (:func:`title_key`), other numbers — "Weekly Threat Report
    #41" and "#42", minutes of "12 March" and "19 March", "CVE-2026-1234" and "-1235".
    Issues of a series often carry one boilerplate paragraph (the report itself is a PDF
    or behind a login), so their SimHashes are a few bits apart; a near-duplicate match
    between them would hide this week's issue under last week's, and a story shown
    twice is better than one hidden. Numbers compare by value ("041" is 41); titles
    that differ in words are not judged here (a syndicated copy may reword or drop the
    number, and the text decides)."""
    key_a, key_b = title_key(a), title_key(b)
    if _DIGITS.sub("0", key_a) != _DIGITS.sub("0", key_b):
        return False
    return _numbers(key_a) != _numbers(key_b)


def _numbers(key: str) -> list[str]:
    # NFKD (title_key) made full-width and superscript digits ASCII; other scripts'
    # digits compare within their script. Not int(): a run of 5,000 digits must not raise.
    return [run.lstrip("0") or "0" for run in _DIGITS.findall(key)]
