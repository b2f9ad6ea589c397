"""aggregator.codings at the decoder level: a body split at every byte boundary decodes the
same as one read (the network decides where reads end), a body too short to be a stream
is a DecodeError, and no step yields more than one bounded piece however the body is fed."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator

import brotli
import pytest

from aggregator import codings
from aggregator.codings import DecodeError, decoder_for

BODY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>' * 20


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # no zlib header
    return c.compress(data) + c.flush()


# (Content-Encoding, encoder): both forms servers send as "deflate" (RFC 9110 §8.4.1.2).
FORMS = [
    pytest.param("deflate", zlib.compress, id="deflate-zlib"),
    pytest.param("deflate", _raw_deflate, id="deflate-raw"),
    pytest.param("gzip", gzip.compress, id="gzip"),
    pytest.param("br", brotli.compress, id="br"),
]


def decode(coding: str, chunks: Iterable[bytes]) -> bytes:
    d = decoder_for(coding)
    out = [piece for chunk in chunks for piece in d.feed(chunk)]
    out.extend(d.finish())
    return b"".join(out)


def split_at(data: bytes, cut: int) -> Iterator[bytes]:
    yield data[:cut]
    yield data[cut:]


@pytest.mark.parametrize(("coding", "encode"), FORMS)
def test_every_split_point_decodes(coding: str, encode: Callable[[bytes], bytes]) -> None:
    body = encode(BODY)
    assert len(body) > 10
    for cut in range(len(body) + 1):  # includes a 1-byte first read and empty chunks
        assert decode(coding, split_at(body, cut)) == BODY, cut


@pytest.mark.parametrize(("coding", "encode"), FORMS)
def test_byte_by_byte_decodes(coding: str, encode: Callable[[bytes], bytes]) -> None:
    body = encode(BODY)
    assert decode(coding, (body[i : i + 1] for i in range(len(body)))) == BODY
    # An empty read between bytes changes nothing.
    assert decode(coding, (c for i in range(len(body)) for c in (b"", body[i : i + 1]))) == BODY


@pytest.mark.parametrize("coding", ["deflate", "gzip"])
def test_one_byte_body_is_a_decode_error(coding: str) -> None:
    # No zlib, raw deflate or gzip stream fits in one byte (an empty raw deflate stream is 2).
    for byte in range(256):
        with pytest.raises(DecodeError, match=coding):
            decode(coding, [bytes([byte])])


@pytest.mark.parametrize("coding", ["deflate", "gzip"])
def test_empty_body_is_empty(coding: str) -> None:
    assert decode(coding, []) == b""
    assert decode(coding, [b""]) == b""


@pytest.mark.parametrize(("coding", "encode"), FORMS)
@pytest.mark.parametrize("first", [1, 2, None], ids=["1-byte-first", "2-byte-first", "whole"])
def test_bomb_comes_out_in_bounded_pieces(
    coding: str, encode: Callable[[bytes], bytes], first: int | None
) -> None:
    """The body cap in fetch counts decoded pieces, so a bomb is stopped only if no step
    yields more than _PIECE bytes, however the reads were cut."""
    bomb = encode(b"\0" * (4 * 1024 * 1024))
    assert len(bomb) < 10_000
    d = decoder_for(coding)
    chunks = [bomb] if first is None else [bomb[:first], bomb[first:]]
    sizes = [len(piece) for chunk in chunks for piece in d.feed(chunk)]
    assert list(d.finish()) == []
    assert max(sizes) <= largest_piece(coding)
    assert sum(sizes) == 4 * 1024 * 1024


def largest_piece(coding: str) -> int:
    """brotli stops decoding at the first of its ~32 KB output blocks that reaches the
    limit asked for, so its pieces may pass _PIECE by up to one block (98,272 bytes for a
    limit of 65,536 with brotli 1.2); zlib stops at the limit exactly."""
    return 2 * codings._PIECE if coding == "br" else codings._PIECE


def test_truncated_deflate_is_an_error() -> None:
    for encode in (zlib.compress, _raw_deflate):
        body = encode(BODY)
        with pytest.raises(DecodeError, match="truncated deflate body"):
            decode("deflate", [body[:1], body[1:-4]])


# gzip bodies of several members (RFC 1952 §2.2), as `cat a.gz b.gz` and some servers'
# chunked writers make them: every member is decoded, as gzip(1) and Python's gzip do.
MEMBERS = [BODY[:700], BODY[700:701], b"", BODY[701:]]


def test_every_gzip_member_is_decoded_at_every_split_point() -> None:
    body = b"".join(gzip.compress(part) for part in MEMBERS)
    assert gzip.decompress(body) == BODY
    for cut in range(len(body) + 1):
        assert decode("gzip", split_at(body, cut)) == BODY, cut
    assert decode("gzip", (body[i : i + 1] for i in range(len(body)))) == BODY


@pytest.mark.parametrize(
    "after", [b"\0\0\0\0", b"\x1f", b"\x1f\x00garbage", b"<html>", b"\n"], ids=repr
)
def test_bytes_after_the_last_gzip_member_are_ignored(after: bytes) -> None:
    body = gzip.compress(BODY[:500]) + gzip.compress(BODY[500:]) + after
    for cut in range(len(body) - 40, len(body) + 1):
        assert decode("gzip", split_at(body, cut)) == BODY, cut
    # Once ignoring, a later member is not looked for either (it may be anything).
    assert decode("gzip", [body, gzip.compress(b"more")]) == BODY


def test_a_truncated_later_gzip_member_is_an_error() -> None:
    body = gzip.compress(BODY[:500]) + gzip.compress(BODY[500:])
    for end in (len(body) - 4, len(gzip.compress(BODY[:500])) + 2):
        with pytest.raises(DecodeError, match="truncated gzip body"):
            decode("gzip", [body[:end]])


def test_a_bomb_split_into_members_comes_out_in_bounded_pieces() -> None:
    bomb = gzip.compress(b"\0" * (1024 * 1024)) * 4
    d = decoder_for("gzip")
    sizes = [len(piece) for piece in d.feed(bomb)]
    assert list(d.finish()) == []
    assert max(sizes) <= codings._PIECE
    assert sum(sizes) == 4 * 1024 * 1024


# brotli: bytes after the end of the stream are ignored too, as browsers do. Read in the same
# read as the stream's last bytes, they used to fail the body ("decoder failed").
@pytest.mark.parametrize("after", [b"\0\0\0\0", b"\n", b"<html>" * 100], ids=len)
def test_bytes_after_a_brotli_stream_are_ignored(after: bytes) -> None:
    body = brotli.compress(BODY) + after
    for cut in range(len(body) + 1):
        assert decode("br", split_at(body, cut)) == BODY, cut
    assert decode("br", (body[i : i + 1] for i in range(len(body)))) == BODY


def test_a_brotli_bomb_with_bytes_after_it_comes_out_in_bounded_pieces() -> None:
    bomb = brotli.compress(b"\0" * (4 * 1024 * 1024)) + b"trailing"
    d = decoder_for("br")
    sizes = [len(piece) for chunk in (bomb[:5], bomb[5:]) for piece in d.feed(chunk)]
    assert list(d.finish()) == []
    assert max(sizes) <= largest_piece("br")
    assert sum(sizes) == 4 * 1024 * 1024


def test_a_corrupt_brotli_stream_is_still_an_error() -> None:
    body = brotli.compress(BODY)
    corrupt = body[:8] + bytes(b ^ 0x55 for b in body[8:16]) + body[16:]
    for chunks in ([corrupt], [corrupt[:8], corrupt[8:]]):
        with pytest.raises(DecodeError, match="brotli"):
            decode("br", chunks)
    with pytest.raises(DecodeError, match="truncated brotli body"):
        decode("br", [body[:-3]])
