"""Article pages -> :class:`Article`: the main text of a story's web page, via trafilatura.

Owns: decoding the page bytes (BOM; then UTF-16 without one, as feed discovery reads it,
:mod:`aggregator.charsets`; then UTF-8 if the bytes are UTF-8, whatever the
labels say; then the HTTP ``Content-Type`` charset, then ``<meta charset>`` / XML
declaration, read as browsers read those labels (WHATWG Encoding Standard); else the
legacy encoding the bytes read best in), refusing what is not an HTML page (by its
``Content-Type`` or its bytes, a feed included) but plain text (whose text is the
article), and running trafilatura tuned for
precision (no comments, no tables, no links or images), plus the "too little text to be
an article" cut-off and the "this text is not about the story" check
(:func:`mentions_story`).

Must not: fetch anything (trafilatura is given the page, never asked to download), touch
the store, or keep state between calls: it runs in worker processes.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import unicodedata
from typing import Any

import trafilatura

from aggregator.charsets import utf16_codec
from aggregator.errors import ExtractError
from aggregator.textutil import PLAIN_TEXT, page_media_type, xml_chars
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
    # <meta charset> and http-equiv; [^<>] keeps a page of "<meta<meta<meta..." linear
    rb"""<meta[^<>]+?charset\s*=\s*["']?\s*([\w.:+-]+)"""
    rb"""|^\s*<\?xml[^>]+?encoding\s*=\s*["']([\w.:+-]+)""",
    re.IGNORECASE,
)
_HEAD_BYTES = 64 * 1024
# A document whose root is a feed's (RSS, Atom, RSS 1.0), after any XML declaration,
# comments, processing instructions and doctype.
_FEED_ROOT = re.compile(
    r"(?:\s|<\?[^<>]*\?>|<!--(?:[^-]|-(?!->))*-->|<![^<>-][^<>]*>)*<(rss|feed|rdf:rdf)[\s/>]",
    re.IGNORECASE,
)
_JSON_START = re.compile(r"\s*[\[{]")
_MIN_GUESS_EVIDENCE = 3  # bytes invalid in UTF-8 before an undeclared encoding is guessed
_BODY_START = re.compile(rb"<body[\s>]", re.IGNORECASE)
# WHATWG Encoding Standard: browsers decode these labels with a superset, and pages rely
# on it (curly quotes in "iso-8859-1" pages, GBK characters in "gb2312" ones, NEC and IBM
# extensions in "shift_jis" ones). Keys are Python's codec names.
_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
}
# WHATWG labels Python's codec registry does not know.
_WHATWG_LABELS = {
    "unicode-1-1-utf-8": "utf-8",
    "unicode11utf8": "utf-8",
    "unicode20utf8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jp",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "csgb2312": "gb18030",
    "csiso58gb231280": "gb18030",
    "x-gbk": "gb18030",
    "cseuckr": "cp949",
    "csksc56011987": "cp949",
    "iso-ir-149": "cp949",
    "ks_c_5601-1989": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "windows-949": "cp949",
    "cn-big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "dos-874": "cp874",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso8859_8",
    "koi8-ru": "koi8_u",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-roman": "mac_roman",
    **{f"x-cp125{i}": f"cp125{i}" for i in range(9)},
}
# Codecs Python has under a charset-like name that no browser decodes a page with.
_NOT_PAGE_ENCODINGS = frozenset(
    {"idna", "punycode", "raw-unicode-escape", "undefined", "unicode-escape", "utf-7"}
)
# What an undeclared non-UTF-8 page is guessed among: the legacy encodings of the web
# (Western, Cyrillic, Greek, Hebrew, Arabic, Thai, Japanese, Chinese, Korean). Central
# European and Baltic ones are left out: on Western text the detector prefers them, and
# browsers in most locales fall back to windows-1252 too.
_DETECTABLE = (
    "cp1252", "cp1251", "koi8_r", "cp1253", "cp1255", "cp1256", "cp874",
    "cp932", "euc_jp", "gb18030", "big5hkscs", "cp949",
)  # fmt: skip
_BINARY_MAGIC = (b"%PDF", b"PK\x03\x04", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"\x1f\x8b")
_MAX_REPLACEMENT_SHARE = 0.2
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:+-]+)""", re.IGNORECASE)
# Numeric character references that may name a character XML 1.0 does not allow (C0
# controls but tab, LF and CR; surrogates; U+FFFE and U+FFFF; past U+10FFFF), as
# candidates checked in _ref_fix. libxml2's HTML parser gives up on the document at one
# of them ("&#27;" or "&#65535;" in a paragraph cost the whole article: trafilatura found
# no text).
_SUSPECT_REF = re.compile(
    r"&#(?:[xX]0*([0-8bcefBCEF]|1[0-9a-fA-F]|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF]"
    r"|[0-9a-fA-F]{6,})(?![0-9a-fA-F])"
    r"|0*([0-8]|1[124-9]|2[0-9]|3[01]|5[5-7][0-9]{3}|6553[45]|[0-9]{7,})(?![0-9]));?"
)


def extract_article(
    html: bytes, url: str, content_type: str | None = None, *, title: str | None = None
) -> Article | None:
    """The article in ``html`` (the page at ``url``, served with ``content_type``), or
    None when there is not enough text to be one. Raises :class:`ExtractError` for input
    that cannot be read as text, and, when the story's ``title`` is given, for text that
    does not mention the story (:func:`mentions_story`), and for a ``content_type`` that
    is not a web page's (a PDF, an image, JSON: trafilatura would read the HTML inside a
    JSON string as a page). Plain text (``text/plain`` that is no markup) is the article
    itself, a paragraph a line."""
    if (media_type := page_media_type(content_type)) is not None:
        raise ExtractError(url, f"not an HTML page ({_one_line(media_type)})")
    text = decode_html(html, url, content_type)
    if (feed := _FEED_ROOT.match(text[:_HEAD_BYTES])) is not None:
        # a feed served as XML: read as a page, its elements' text was glued together
        # and the entries' escaped markup came out as text ("<p>The registry said...")
        raise ExtractError(url, f"not an HTML page (a feed: <{feed.group(1)}>)")
    if _JSON_START.match(text) and _is_json(text):
        # JSON served with no type, or as text/html (PHP's default): trafilatura read
        # the HTML inside its strings, and stored JSON's escapes ("It\\u2019s") as text
        raise ExtractError(url, "not an HTML page (JSON)")
    if _media_type(content_type) == PLAIN_TEXT and not _MARKUP_START.match(text):
        # An advisory, an RFC, a mailing-list post: the text is the article, and
        # trafilatura, reading it as a page, found none.
        return _checked_article(_plain_paragraphs(text), url, title, None, None)
    if "&#" in text:
        text = _SUSPECT_REF.sub(_ref_fix, text)
    try:
        doc = trafilatura.bare_extraction(
            _parsed(text),
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
    return _checked_article(
        getattr(doc, "text", None) or "",
        url,
        title,
        _clean(getattr(doc, "title", None)),
        _clean(getattr(doc, "author", None)),
    )


def _checked_article(
    text: str, url: str, title: str | None, page_title: str | None, author: str | None
) -> Article | None:
    """The article of ``text`` when it is long enough to be one, and (``title`` given)
    mentions the story."""
    body = xml_chars(text).strip()
    if len(body) < MIN_TEXT_CHARS:
        return None
    if title is not None and not mentions_story(_without_headline(body, title, page_title), title):
        raise ExtractError(url, NOT_THE_STORY)
    return Article(url=url, text=body, title=page_title, author=author)


_MARKUP_START = re.compile(r"\s*<[!?a-zA-Z]")
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


def _plain_paragraphs(text: str) -> str:
    """Plain text as the extractor gives a page's: a paragraph a line (the lines of a
    paragraph are wrapped at ~72 columns in advisories and RFCs), split at blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text))
    return "\n".join(p for p in paragraphs if p)


# --- does the text belong to the story? ----------------------------------------------------
#
# A cookie-consent wall, paywall or bot check served in place of the article extracts as a
# long, well-formed text (status ok), which then stands in for the story: it is classified
# with it, and its SimHash is the notice's, within a few bits of every other story given
# the same notice, so unrelated stories of different feeds were clustered and hidden.
#
# The rule: a story's *content words* are the words of its title that are at least four
# characters long, not all digits and not function words (_STOP_WORDS), compared after
# NFKD without accents, case-folding, folding of common English suffixes (_fold_suffix)
# and by their first five letters only (_key: inflected languages such as Russian put
# other endings in the text than in the title; with whole words a real Russian article
# matched 1 of its title's 4 and was refused; the notices below still match at most 1 of
# 6-7 with the demo titles). The text must contain at least a third of them, rounded up (one of one
# to three, two of four to six, ...). On the demo pages and test fixtures real articles
# reach 2/4, 3/6 and 3/9 at their lowest (headlines often use words the text does not);
# against those titles and 20 others, a cookie notice, a TCF consent notice and a paywall
# notice matched at most 2 of 7 words, and most titles none. A title without content
# words (a number, a title in a script written without spaces between words, which \w+
# cannot split) is not judged. The lines of the text that are only the headline (the
# story's title, or the page's) do not count (_without_headline): a paywall shows the
# headline above its notice, which then matched every word (the demo pages and fixtures
# still reach the same lowest counts without their headline line).

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
    wanted = {_key(w) for w in _WORDS.findall(_fold(title)) if _is_content_word(w)}
    if not wanted:
        return True
    found = wanted & {_key(w) for w in set(_WORDS.findall(_fold(text)))}
    return len(found) >= math.ceil(len(wanted) / 3)


def _without_headline(text: str, *headlines: str | None) -> str:
    """``text`` without its lines that are only one of ``headlines`` (the story's title,
    the page's): a paywall or consent page shows the story's headline above its notice
    (trafilatura keeps the ``<h1>`` as the text's first line), and the headline alone
    mentions every word of the title, so the notice passed for the article."""
    drop = {" ".join(_fold(h).split()) for h in headlines if h}
    return "\n".join(
        line for line in text.splitlines() if " ".join(_fold(line).split()) not in drop
    )


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


def _key(word: str) -> str:
    """What two words are compared by: the first five letters of their English stem, so
    that the inflections of other languages match too (a Russian text says "доменов" and
    "цен" where its title says "домены" and "цены")."""
    return _fold_suffix(word)[:_KEY_CHARS]


_KEY_CHARS = 5
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
    """Decode a page: its BOM; else UTF-16 when :func:`~aggregator.charsets.utf16_codec`
    tells it without one; else UTF-8 when the bytes are mostly valid multi-byte UTF-8
    (whatever the labels say); else the charset of ``content_type`` (the HTTP header),
    else what the page declares; else, bytes neither UTF-8 nor declared, the encoding
    they read best in (:func:`_detected_encoding`). Raise :class:`ExtractError` for
    binary data."""
    for bom, encoding in _BOMS:
        if html.startswith(bom):
            return html[len(bom) :].decode(encoding, "replace")
    if html[:4096].startswith(_BINARY_MAGIC):
        raise ExtractError(url, "not text: binary content")
    # UTF-16 without a BOM (markup in UTF-16, or a UTF-16 charset and NULs), as feed
    # discovery reads it: its NULs were taken for binary data, and the page refused.
    if (utf16 := utf16_codec(html, content_type)) is not None:
        text = html.decode(utf16, "replace")
        if "<" not in text[:2048]:  # NULs under a UTF-16 label, but no markup in them
            raise ExtractError(url, "not text: binary content")
        return _checked(text, url)
    if b"\x00" in html[:4096]:
        raise ExtractError(url, "not text: binary content")
    header = _HEADER_CHARSET.search(content_type or "")
    labels = [_encoding(header.group(1)) if header else None, _declared_encoding(html)]
    legacy = next((name for name in labels if name is not None and name != "utf-8"), None)
    text = html.decode("utf-8", "replace")
    if text.isascii():  # the same in every label's encoding but 7-bit ones (ISO-2022-JP)
        return text if legacy is None else _checked(html.decode(legacy, "replace"), url)
    # Is it a UTF-8 page mislabelled (a server configured for ISO-8859-1 serving UTF-8
    # pages is a common misconfiguration), or a page in the labelled encoding? Text in a
    # legacy encoding practically never forms valid multi-byte UTF-8 sequences, so more
    # of those than invalid bytes means UTF-8 (the few invalid ones e.g. a snippet cut
    # mid-character), whatever the labels say.
    errors = text.count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    if non_ascii - errors > errors:
        return _checked(text, url)
    if legacy is not None:
        return _checked(html.decode(legacy, "replace"), url)
    if errors < _MIN_GUESS_EVIDENCE:  # a stray byte or two: too little to guess from
        return text
    # Neither UTF-8 nor declared: browsers guess (Firefox's chardetng, Chrome's CED);
    # read as UTF-8, every non-ASCII letter of such a page came out as U+FFFD.
    detected = _detected_encoding(html)
    if detected is None:
        raise ExtractError(url, "not text: undecodable bytes")
    return _checked(html.decode(detected, "replace"), url)


def _parsed(text: str) -> Any:
    """The page as trafilatura's own loader (``trafilatura.utils.load_html``) reads it,
    but without libxml2's default limit of 256 nested elements (``huge_tree``, libxml2's
    XML_PARSE_HUGE: 2,048). A page whose paragraphs each leave a tag open (``<p><font>``)
    nests one level deeper per paragraph: libxml2 stopped reading past ~125 of them, and
    the rest of the article was dropped without a word. Where this parse gives no tree,
    or one trafilatura's loader would reject, the text goes to that loader unchanged."""
    from lxml.html import HTMLParser, fromstring  # type: ignore[import-untyped]
    from trafilatura.utils import is_dubious_html, repair_faulty_html

    parser = HTMLParser(  # trafilatura's own parser's options, and huge_tree
        collect_ids=False,
        default_doctype=False,
        encoding="utf-8",
        remove_comments=True,
        remove_pis=True,
        huge_tree=True,
    )
    beginning = text[:50].lower()
    repaired = repair_faulty_html(text, beginning)
    try:
        try:
            tree = fromstring(repaired, parser=parser)
        except ValueError:  # a str with an encoding declaration: lxml wants bytes
            tree = fromstring(repaired.encode("utf-8", "surrogatepass"), parser=parser)
    except Exception:  # lxml's own error on this page: trafilatura's loader has its way
        return text
    if tree is None or len(tree) < 1 or (is_dubious_html(beginning) and len(tree) < 2):
        return text
    return tree


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or cut short, or nested past reading
        return False
    return True


def _checked(text: str, url: str) -> str:
    if text.count("\ufffd") > _MAX_REPLACEMENT_SHARE * len(text):
        raise ExtractError(url, "not text: undecodable bytes")
    return text


def _declared_encoding(html: bytes) -> str | None:
    """The encoding ``<meta charset>``, ``<meta http-equiv>`` or the XML declaration
    names, looked for in the head (browsers honour a late one by restarting the parse, so
    not just the first 1,024 bytes the WHATWG prescan reads); None when there is none."""
    head = html[:_HEAD_BYTES]
    body = _BODY_START.search(head)
    match = _DECLARED.search(head, 0, body.start() if body else len(head))
    if match is None:
        return None
    return _encoding((match.group(1) or match.group(2)).decode("ascii"))


def _detected_encoding(html: bytes) -> str | None:
    """The encoding an undeclared, non-UTF-8 page reads best in, among the legacy
    encodings pages are commonly in; None for bytes that read as none (binary data)."""
    import charset_normalizer  # trafilatura's own dependency; only undeclared pages need it

    best = charset_normalizer.from_bytes(html, cp_isolation=list(_DETECTABLE)).best()
    return None if best is None else _encoding(best.encoding)


def _encoding(label: str) -> str | None:
    """Python's codec for a charset label, as browsers read it (WHATWG Encoding Standard:
    e.g. latin-1 and ASCII as windows-1252, GB2312 as GB18030, Shift_JIS as Windows-31J);
    None when unknown, not a text encoding (Python also knows "base64", "zlib", ...), or
    UTF-16/32, which a page readable as ASCII cannot be in."""
    label = label.strip().lower()
    try:
        info = codecs.lookup(_WHATWG_LABELS.get(label, label))
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_PAGE_ENCODINGS:
        return None
    if info.name.startswith(("utf-16", "utf-32")):
        return None  # a readable ASCII <meta> means it is not UTF-16 (WHATWG rule)
    return _SUPERSETS.get(info.name, info.name)


def _one_line(text: str, limit: int = 100) -> str:
    return " ".join(text.split())[:limit]


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(xml_chars(value).split()) or None


def _ref_fix(match: re.Match[str]) -> str:
    """A space for a reference to a character XML does not allow; others stay."""
    hex_digits, digits = match.group(1), match.group(2)
    code = int(hex_digits, 16) if hex_digits else int(digits)
    allowed = (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )
    return match.group(0) if allowed else " "
