"""Article pages -> :class:`Article`: the main text of a story's web page, via trafilatura.

Owns: decoding the page bytes (BOM, then the HTTP ``Content-Type`` charset, then
``<meta charset>`` / XML declaration, else UTF-8 with replacement characters, as the
WHATWG encoding-sniffing order has it) and running trafilatura tuned for
precision (no comments, no tables, no links or images), plus the "too little text to be
an article" cut-off and the "this text is not about the story" check
(:func:`mentions_story`).

Must not: fetch anything (trafilatura is given the page, never asked to download), touch
the store, or keep state between calls: it runs in worker processes.
"""

from __future__ import annotations

import codecs
import math
import re
import unicodedata

import trafilatura

from aggregator.errors import ExtractError
from aggregator.types import Article

__all__ = ["MIN_TEXT_CHARS", "NOT_THE_STORY", "decode_html", "extract_article", "mentions_story"]

MIN_TEXT_CHARS = 200  # shorter extractions are teasers, paywalls or navigation

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARED = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([\w.:+-]+)"""  # <meta charset> and http-equiv
    rb"""|^\s*<\?xml[^>]+?encoding\s*=\s*["']([\w.:+-]+)""",
    re.IGNORECASE,
)
# WHATWG Encoding Standard: browsers read these labels as windows-1252, and pages rely
# on it (curly quotes in "iso-8859-1" pages).
_AS_WINDOWS_1252 = {"ascii", "iso8859-1", "cp1252"}
_BINARY_MAGIC = (b"%PDF", b"PK\x03\x04", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"\x1f\x8b")
_MAX_REPLACEMENT_SHARE = 0.2
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:+-]+)""", re.IGNORECASE)


def extract_article(
    html: bytes, url: str, content_type: str | None = None, *, title: str | None = None
) -> Article | None:
    """The article in ``html`` (the page at ``url``, served with ``content_type``), or
    None when there is not enough text to be one. Raises :class:`ExtractError` for input
    that cannot be read as text, and, when the story's ``title`` is given, for text that
    does not mention the story (:func:`mentions_story`)."""
    text = decode_html(html, url, content_type)
    try:
        doc = trafilatura.bare_extraction(
            text,
            url=url,
            favor_precision=True,
            include_comments=False,
            include_tables=False,
            include_images=False,
            include_links=False,
            with_metadata=True,
        )
    except Exception as e:  # a crash on one hostile page must cost only that page
        raise ExtractError(url, f"extraction failed: {type(e).__name__}: {e}") from e
    body = (getattr(doc, "text", None) or "").strip()
    if len(body) < MIN_TEXT_CHARS:
        return None
    if title is not None and not mentions_story(body, title):
        raise ExtractError(url, NOT_THE_STORY)
    return Article(
        url=url,
        text=body,
        title=_clean(getattr(doc, "title", None)),
        author=_clean(getattr(doc, "author", None)),
    )


# --- does the text belong to the story? ----------------------------------------------------
#
# A cookie-consent wall, paywall or bot check served in place of the article extracts as a
# long, well-formed text (status ok), which then stands in for the story: it is classified
# with it, and its SimHash is the notice's, within a few bits of every other story given
# the same notice, so unrelated stories of different feeds were clustered and hidden.
#
# The rule: a story's *content words* are the words of its title that are at least four
# characters long, not all digits and not function words (_STOP_WORDS), compared after
# NFKD without accents, case-folding and folding of common English suffixes
# (_fold_suffix). The text must contain at least a third of them, rounded up (one of one
# to three, two of four to six, ...). On the demo pages and test fixtures real articles
# reach 2/4, 3/6 and 3/9 at their lowest (headlines often use words the text does not);
# against those titles and 20 others, a cookie notice, a TCF consent notice and a paywall
# notice matched at most 2 of 7 words, and most titles none. A title without content
# words (a number, a title in a script written without spaces between words, which \w+
# cannot split) is not judged.

NOT_THE_STORY = "extracted text does not mention the story (a consent or paywall page?)"
_WORDS = re.compile(r"\w+")
_MIN_WORD = 4
# Han, kana, Hangul, Thai, Lao, Myanmar and Khmer: one \w+ run spans many words.
_SPACELESS = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
# Function words of four letters or more (accents stripped): English, and the commonest of
# French, German, Spanish, Italian, Dutch and Portuguese, which any notice in that language
# would contain too.
_STOP_WORDS = frozenset(
    {
        "about", "above", "across", "after", "again", "against", "along", "also", "although",
        "among", "amid", "another", "because", "been", "before", "behind", "being", "below",
        "beside", "between", "beyond", "both", "cannot", "could", "does", "doing", "down", "during",
        "each", "either", "else", "even", "ever", "every", "from", "further", "have", "having",
        "here", "hers", "herself", "himself", "however", "into", "itself", "just", "like", "many",
        "more", "most", "much", "must", "myself", "near", "neither", "never", "none", "once",
        "only", "onto", "other", "others", "ours", "ourselves", "over", "same", "says", "said",
        "should", "since", "some", "still", "such", "than", "that", "their", "theirs", "them",
        "themselves", "then", "there", "these", "they", "this", "those", "though", "through",
        "thus", "till", "under", "unless", "until", "upon", "used", "uses", "using", "very", "want",
        "were", "what", "whatever", "when", "where", "whether", "which", "while", "whom", "whose",
        "will", "with", "within", "without", "would", "your", "yours", "yourself", "yourselves",
        "aber", "alle", "auch", "dass", "diese", "dieser", "dieses", "durch", "eine", "einem",
        "einen", "einer", "eines", "haben", "hier", "ihre", "ihren", "kann", "mehr", "nach",
        "nicht", "noch", "oder", "sein", "seine", "sich", "sind", "uber", "unter", "werden", "wird",
        "wurde", "wenn", "zwei",
        "avec", "avoir", "cette", "comme", "dans", "elle", "elles", "etre", "leur", "leurs", "mais",
        "nous", "pour", "sans", "sont", "sous", "tous", "tout", "toute", "vous",
        "como", "desde", "entre", "esta", "este", "esto", "hasta", "para", "pero", "porque",
        "sobre", "tambien", "todo", "todos",
        "anche", "come", "della", "delle", "degli", "nella", "sono", "questo", "questa",
        "deze", "door", "heeft", "hebben", "niet", "voor", "zijn",
        "pelo", "pela",
    }
)  # fmt: skip


def mentions_story(text: str, title: str) -> bool:
    """Whether ``text`` contains at least a third (rounded up) of the content words of the
    story ``title``; True when the title has none to judge by (see the rule above)."""
    wanted = {_fold_suffix(w) for w in _WORDS.findall(_fold(title)) if _is_content_word(w)}
    if not wanted:
        return True
    found = wanted & {_fold_suffix(w) for w in set(_WORDS.findall(_fold(text)))}
    return len(found) >= math.ceil(len(wanted) / 3)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _is_content_word(word: str) -> bool:
    return (
        len(word) >= _MIN_WORD
        and not word.isdigit()
        and word not in _STOP_WORDS
        and _SPACELESS.search(word) is None
    )


_SUFFIXES = (("ies", "i"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""))


def _fold_suffix(word: str) -> str:
    """A crude English stem, the same for both sides: "prices", "priced" and "pricing" all
    read "pric"; "company" and "companies" read "compani". Not a real stemmer (none is
    needed to tell an article from a notice), and harmless on other languages' words."""
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    if len(word) > 3 and word[-1] == "e":
        return word[:-1]
    if len(word) > 3 and word[-1] == "y":
        return word[:-1] + "i"
    return word


def decode_html(html: bytes, url: str = "", content_type: str | None = None) -> str:
    """Decode a page: its BOM, else the charset of ``content_type`` (the HTTP header),
    else what the page declares; raise :class:`ExtractError` for binary data."""
    for bom, encoding in _BOMS:
        if html.startswith(bom):
            return html[len(bom) :].decode(encoding, "replace")
    head = html[:4096]
    if head.startswith(_BINARY_MAGIC) or b"\x00" in head:
        raise ExtractError(url, "not text: binary content")
    header = _HEADER_CHARSET.search(content_type or "")
    sent = _encoding(header.group(1)) if header else None
    text = html.decode(sent or _declared_encoding(head), "replace")
    if text.count("\ufffd") > _MAX_REPLACEMENT_SHARE * len(text):
        raise ExtractError(url, "not text: undecodable bytes")
    return text


def _declared_encoding(head: bytes) -> str:
    match = _DECLARED.search(head)
    if match is None:
        return "utf-8"
    name = _encoding((match.group(1) or match.group(2)).decode("ascii"))
    if name is None:
        return "utf-8"
    if name.startswith(("utf-16", "utf-32")):
        return "utf-8"  # a readable ASCII <meta> means it is not UTF-16 (WHATWG rule)
    return name


def _encoding(label: str) -> str | None:
    """Python's codec for a charset label, None when unknown (latin-1 and ASCII read as
    windows-1252, as browsers read them)."""
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return "cp1252" if name in _AS_WINDOWS_1252 else name


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None
