"""Session 26 hunt: subscription management (OPML as other tools save it, the export
and import round trip, feeds.yaml, `feeds add|remove`), through real files, a real SQLite
database, the real CLI and a real local HTTP server."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.feedlist import load_feed_list, read_opml


@pytest.mark.parametrize("declared", ["ISO-8859-1", "windows-1252", "US-ASCII", "UTF-16"])
def test_a_utf8_byte_order_mark_wins_over_the_declared_encoding(
    tmp_path: Path, declared: str
) -> None:
    """An OPML saved as UTF-8 with a byte-order mark (Notepad's "UTF-8") that still
    declares the encoding it was first written in: the mark says how the bytes are
    encoded (XML 1.0 Appendix F, as libxml2 and browsers read it), yet the file was read
    as the declared encoding, and every accented name and folder came in garbled ("CafÃ©
    Crème") without a word."""
    text = (
        f'<?xml version="1.0" encoding="{declared}"?>\n'
        '<opml version="1.0"><body><outline text="Cuisine française">'
        '<outline type="rss" text="Café Crème" xmlUrl="https://a.example/f"/>'
        "</outline></body></opml>"
    )
    raw = b"\xef\xbb\xbf" + text.encode("utf-8")
    listing = read_opml(raw)
    assert [(s.name, s.topics) for s in listing.sources] == [("Café Crème", ("Cuisine française",))]
    path = tmp_path / "feedly.opml"
    path.write_bytes(raw)
    assert load_feed_list(path).sources == listing.sources
