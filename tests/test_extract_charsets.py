"""decode_html and extract_article on pages in legacy encodings: declared in the HTTP
header, only in the page (``<meta charset>``, ``<meta http-equiv>``), wrongly, or not at
all, as pages in the wild are. Each case encodes a known text and must read it back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_extract_pipeline import ARTICLE, article_page, poll

from aggregator.errors import ExtractError
from aggregator.extract import decode_html, extract_article

FRENCH = "Le café “déjà vu” coûte 3 € à Zürich – vraiment ; l’été est chaud. " * 4
GERMAN = "Die Straße über den Fluß: Müller und Bäcker sagen, es sei schön. " * 4
JAPANESE = "東京でドメイン登録が急増しています。今日のニュースです。①番目の記事、髙橋さん。" * 4
CHINESE = "朱镕基：中国互联网络信息中心发布报告，域名注册数量增长。" * 4
TRADITIONAL = "中華民國網路資訊中心發佈報告，網域名稱註冊數量成長。" * 4
KOREAN = "한국인터넷진흥원은 도메인 등록이 증가했다고 밝혔다. 똠방각하. " * 4
RUSSIAN = "Регистратор доменов объявил о росте цен на домены в этом году. " * 4
TURKISH = "İstanbul'da alan adı kayıtları arttı; şirket açıklama yaptı. " * 4


def _page(text: str, head: str = "") -> str:
    return f"<html><head>{head}<title>t</title></head><body><p>{text}</p></body></html>"


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        pytest.param("windows-1252", FRENCH, id="windows-1252"),
        pytest.param("windows-1252", GERMAN, id="windows-1252-german"),
        pytest.param("shift_jis", JAPANESE.replace("①", "").replace("髙", "高"), id="shift_jis"),
        pytest.param("euc_jp", JAPANESE.replace("①", "").replace("髙", "高"), id="euc-jp"),
        pytest.param("gb2312", CHINESE.replace("镕", "荣"), id="gb2312"),
        pytest.param("gbk", CHINESE, id="gbk"),
        pytest.param("big5", TRADITIONAL, id="big5"),
        pytest.param("euc_kr", KOREAN.replace("똠방각하. ", ""), id="euc-kr"),
        pytest.param("koi8_r", RUSSIAN, id="koi8-r"),
        pytest.param("windows-1251", RUSSIAN, id="windows-1251"),
    ],
)
def test_an_undeclared_legacy_encoding_is_detected(encoding: str, text: str) -> None:
    """No charset in the header or the page, and not UTF-8: read as UTF-8 with
    replacement characters, these came out as U+FFFD soup (or were refused)."""
    page = _page(text)
    assert decode_html(page.encode(encoding), content_type="text/html") == page


@pytest.mark.parametrize(
    ("label", "encoding", "text"),
    [
        # WHATWG Encoding Standard: these labels name the superset browsers decode with.
        pytest.param("gb2312", "gbk", CHINESE, id="gb2312-label-gbk-bytes"),
        pytest.param("GB_2312-80", "gb18030", CHINESE, id="gb2312-alias-gb18030-bytes"),
        pytest.param("shift_jis", "cp932", JAPANESE, id="shift_jis-label-windows-31j-bytes"),
        pytest.param("x-sjis", "cp932", JAPANESE, id="x-sjis-label"),
        pytest.param("euc-kr", "cp949", KOREAN, id="euc-kr-label-windows-949-bytes"),
        pytest.param("big5", "big5hkscs", TRADITIONAL + "嘅", id="big5-label-hkscs-bytes"),
        pytest.param("iso-8859-9", "cp1254", TURKISH + "“quoted”", id="latin5-label-1254"),
        pytest.param("tis-620", "cp874", "ข่าว “วันนี้” – ทดสอบ " * 4, id="tis-620-label-874"),
    ],
)
def test_a_label_reads_as_the_encoding_browsers_use_for_it(
    label: str, encoding: str, text: str
) -> None:
    for where in ("header", "meta", "http-equiv"):
        head = {
            "header": "",
            "meta": f'<meta charset="{label}">',
            "http-equiv": f'<meta http-equiv="Content-Type" content="text/html; charset={label}">',
        }[where]
        page = _page(text, head)
        content_type = f"text/html; charset={label}" if where == "header" else "text/html"
        assert decode_html(page.encode(encoding), content_type=content_type) == page, where


@pytest.mark.parametrize(
    ("content_type", "head", "encoding", "text"),
    [
        pytest.param(
            "text/html; charset=utf-8", "", "windows-1252", FRENCH, id="header-utf8-body-1252"
        ),
        pytest.param(
            "text/html; charset=utf-8",
            '<meta charset="shift_jis">',
            "shift_jis",
            JAPANESE.replace("①", "").replace("髙", "高"),
            id="header-utf8-body-and-meta-shift_jis",
        ),
        pytest.param(
            "text/html; charset=ISO-8859-1", "", "utf-8", FRENCH, id="header-latin1-body-utf8"
        ),
        pytest.param(
            "text/html", '<meta charset="windows-1251">', "utf-8", RUSSIAN, id="meta-1251-body-utf8"
        ),
        pytest.param("text/html", '<meta charset="utf-8">', "koi8_r", RUSSIAN, id="meta-utf8-koi8"),
    ],
)
def test_a_wrong_declaration_does_not_garble_the_page(
    content_type: str, head: str, encoding: str, text: str
) -> None:
    """Valid UTF-8 with multi-byte characters is UTF-8 whatever the label says (a server
    configured for ISO-8859-1 serving UTF-8 pages), and bytes that are not UTF-8 are not
    read as UTF-8 because a label says so."""
    page = _page(text, head)
    assert decode_html(page.encode(encoding), content_type=content_type) == page


def test_mostly_utf8_with_a_stray_byte_stays_utf8() -> None:
    page = _page(FRENCH + JAPANESE)
    body = page.encode() + b"<p>broken \xe9 byte</p>"
    assert decode_html(body) == page + "<p>broken \ufffd byte</p>"
    assert decode_html(body, content_type="text/html; charset=windows-1252") == (
        page + "<p>broken \ufffd byte</p>"
    )


def test_a_7bit_declared_encoding_is_honoured() -> None:
    """ISO-2022-JP is all ASCII bytes: valid UTF-8, but not UTF-8 text."""
    text = JAPANESE.replace("①", "").replace("髙", "高")
    page = _page(text, '<meta charset="iso-2022-jp">')
    assert decode_html(page.encode("iso2022_jp")) == page


def test_a_meta_charset_after_a_long_head_is_found() -> None:
    """Browsers honour a <meta charset> anywhere in the head (the parser restarts with
    it); pages with big inline scripts or styles put it past the first 4 KiB."""
    head = "<script>" + "var x = 1;\n" * 800 + "</script>" + '<meta charset="koi8-r">'
    page = _page(RUSSIAN, head)
    assert decode_html(page.encode("koi8_r")) == page


@pytest.mark.parametrize(
    "label", ["base64", "hex", "zlib", "bz2", "rot13", "uu", "quopri", "undefined", "idna"]
)
@pytest.mark.parametrize("where", ["header", "meta"])
def test_a_label_naming_a_non_text_codec_is_an_unknown_label(label: str, where: str) -> None:
    """Python's codec registry knows these names, but they are not text encodings:
    ``bytes.decode`` raised LookupError / UnicodeError out of decode_html (not an
    ExtractError), which cost the whole feed its stories."""
    head = f'<meta charset="{label}">' if where == "meta" else ""
    content_type = f"text/html; charset={label}" if where == "header" else "text/html"
    page = _page(FRENCH, head)
    assert decode_html(page.encode(), content_type=content_type) == page
    article = extract_article(
        _page(FRENCH * 3, head).encode(), "https://x.example/a", content_type, title="café"
    )
    assert article is not None and "déjà vu" in article.text


def test_binary_data_without_a_magic_number_is_still_refused() -> None:
    with pytest.raises(ExtractError, match="not text"):
        decode_html(bytes(range(1, 256)) * 40, "https://x.example/a", "text/html")


def test_looking_for_a_declaration_is_linear() -> None:
    """The head is searched further than it was (64 KiB): a page of "<meta<meta..."
    made the search quadratic (7 s for 64 KiB)."""
    started = time.perf_counter()
    assert decode_html(b"<meta" * 13000 + b'<meta charset="koi8-r">\xf4') == (
        "<meta" * 13000 + '<meta charset="koi8-r">Т'
    )
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("ref", "kept"),
    [
        ("&#27;[2J", "[2J"),
        ("&#x1B;]0;title&#7;", "]0;title"),
        ("&#0;", ""),
        ("&#xD800;", ""),
        ("&#55296;", ""),
        ("&#1114112;", ""),
        ("&#27 unterminated", "unterminated"),
        # allowed characters stay as they are
        ("&#8217;s", "\u2019s"),
        ("&#x1f600;", "\U0001f600"),
        ("&#55000;", "\ud6d8"),
        ("&#x9b;", "\u203a"),  # HTML maps the C1 range to windows-1252's characters
    ],
)
def test_a_reference_to_a_control_character_costs_only_itself(ref: str, kept: str) -> None:
    """libxml2 gave up on a page at `&#27;`: trafilatura found no text and the story lost
    its article. Such references become spaces; the text holds no control character."""
    from test_extract_pipeline import ARTICLE, TITLE, article_page

    from aggregator.extract import extract_article

    page = article_page(f"{ARTICLE} Then {ref} it ended.").encode()
    article = extract_article(page, "https://news.example/a", "text/html", title=TITLE)
    assert article is not None
    assert f"Then {kept}".rstrip() in " ".join(article.text.split())
    assert not any(ord(c) < 0x20 and c not in "\n\t" for c in article.text)


@pytest.mark.parametrize(
    ("encoding", "content_type"),
    [
        pytest.param("utf-16-le", "text/html; charset=utf-16", id="le-utf-16"),
        pytest.param("utf-16-be", "text/html; charset=utf-16", id="be-utf-16"),
        pytest.param("utf-16-le", "text/html; charset=UTF-16LE", id="le-utf-16le"),
        pytest.param("utf-16-be", "text/html; charset=utf-16be", id="be-utf-16be"),
        pytest.param("utf-16-le", "text/html", id="le-markup-only"),
        pytest.param("utf-16-be", "text/html", id="be-markup-only"),
    ],
)
def test_a_utf16_article_without_a_byte_order_mark_is_extracted(
    tmp_path: Path, server: LocalServer, encoding: str, content_type: str
) -> None:
    """A UTF-16 page without a byte-order mark (its charset in the Content-Type, or
    markup that starts in UTF-16) was refused as "not text: binary content" for its
    NULs, and the story had no full text. Read as feed discovery reads such a page."""
    text = ARTICLE + "Le café “déjà vu” à Zürich. "
    page = '\n<!doctype html><meta charset="utf-16">' + article_page(text)
    results, stories = poll(
        tmp_path, server, [{"body": page.encode(encoding), "content_type": content_type}]
    )
    assert results == [("ok", 1)]
    story = stories["s0"]
    assert story.extraction_status == "ok", story.extraction_error
    assert story.full_text and "Le café “déjà vu” à Zürich." in story.full_text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"%PDF-1.7\x00" + bytes(range(1, 256)) * 40, id="magic"),
        pytest.param(bytes(range(256)) * 40, id="no-markup"),
    ],
)
def test_binary_data_under_a_utf16_label_is_still_refused(body: bytes) -> None:
    with pytest.raises(ExtractError, match="not text: binary content"):
        decode_html(body, "https://x.example/a", "text/html; charset=utf-16")
