"""Content codings (gzip, deflate, brotli) decoded in bounded pieces, so a small
compressed body cannot expand into memory before the body cap stops it."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli

__all__ = ["ACCEPT_ENCODING", "DecodeError", "Decoder", "decoder_for"]

_GZIP_MAGIC = b"\x1f\x8b"
_PIECE = 64 * 1024  # decoded bytes asked for at once (brotli may pass it by one 32 KB block)
# Bounded brotli output needs brotli >= 1.2 (output_buffer_limit); without it we do not
# advertise br rather than risk a decompression bomb.
_BROTLI_BOUNDED = hasattr(brotli.Decompressor(), "can_accept_more_data")
ACCEPT_ENCODING = "gzip, deflate, br" if _BROTLI_BOUNDED else "gzip, deflate"


def _ended_stream() -> zlib._Decompress:
    """A gzip decompressor at the end of an empty member, with nothing after it."""
    c = zlib.compressobj(wbits=zlib.MAX_WBITS | 16)
    d = zlib.decompressobj(zlib.MAX_WBITS | 16)
    d.decompress(c.compress(b"") + c.flush())
    assert d.eof and not d.unused_data
    return d


_ENDED = _ended_stream()


#: Registered compressions (RFC 9110 §8.4.1, RFC 8878) not decoded here, and so not in
#: ACCEPT_ENCODING: a body in one of them is refused, not passed through as unknown.
_NOT_DECODED = frozenset({"compress", "x-compress", "zstd"})


class DecodeError(Exception):
    pass


class Decoder(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...
    def finish(self) -> Iterator[bytes]: ...


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def finish(self) -> Iterator[bytes]:
        return iter(())


class _Zlib:
    """gzip or deflate, never producing more than _PIECE bytes per step, so a bomb is
    stopped by the body cap after at most one piece past it."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._started = False
        # deflate: RFC 9110 §8.4.1.2 "deflate" is zlib-wrapped (RFC 1950), but some servers
        # send raw deflate (RFC 1951). The 2-byte zlib header tells them apart, and a read
        # may end after its first byte, so the start is held until two bytes have come.
        self._sniffing = not gzip
        self._held = b""
        # gzip: bytes after a member's end. Another member (RFC 1952 §2.2: a gzip file is a
        # series of members; `cat a.gz b.gz` and some servers' chunked writers make them)
        # is decoded too, as gzip(1) and Python's gzip do; anything else after a member is
        # ignored, as zlib's own trailing bytes are.
        self._after = b""
        self._ignoring = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._started = True
        if self._gzip and self._d.eof:  # after a member: another one, or bytes ignored
            if not self._ignoring:
                yield from self._next_members(data)
            return
        if self._sniffing:
            data = self._held + data
            if len(data) < 2:
                self._held = data
                return
            self._choose(data)
        yield from self._inflate(data)
        if self._gzip:
            yield from self._next_members()

    def finish(self) -> Iterator[bytes]:
        if self._sniffing and self._held:
            # A 1-byte body: too short for a zlib header, and for any whole stream too, so
            # this ends in a DecodeError (bad or truncated), never a wait for more.
            data = self._held
            self._choose(data)
            yield from self._inflate(data)
        if self._started and not self._d.eof:
            raise DecodeError(f"truncated {self._name} body")

    def _choose(self, data: bytes) -> None:
        self._sniffing = False
        self._held = b""
        zlib_header = (
            len(data) >= 2 and (data[0] & 0x0F) == 8 and (data[0] << 8 | data[1]) % 31 == 0
        )
        if not zlib_header:
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)

    def _next_members(self, data: bytes = b"") -> Iterator[bytes]:
        """After a gzip member's end (``data``: bytes read since): start the next member if
        the bytes after the end begin with the gzip magic, wait while they may (one byte so
        far), else ignore them and all that follows."""
        self._after += data
        while self._d.eof and not self._ignoring:
            after = self._after + self._d.unused_data
            # A fresh object stands in until the next member starts, so that unused_data
            # is not counted twice when one byte has to wait for the next read.
            self._d = _ENDED
            if len(after) < len(_GZIP_MAGIC) and _GZIP_MAGIC.startswith(after):
                self._after = after
                return
            self._after = b""
            if not after.startswith(_GZIP_MAGIC):
                self._ignoring = True
                return
            self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)
            yield from self._inflate(after)

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while not self._d.eof:  # past the end: ignored (gzip: _next_members looks)
            try:
                out = self._d.decompress(data, _PIECE)
            except zlib.error as e:
                raise DecodeError(f"bad {self._name} body: {e}") from e
            data = self._d.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < _PIECE:
                break

    @property
    def _name(self) -> str:
        return "gzip" if self._gzip else "deflate"


class _Brotli:
    """brotli, never producing more than _PIECE bytes per step. Bytes after the end of
    the stream are ignored, as after a gzip member and as browsers do."""

    def __init__(self) -> None:
        self._d = brotli.Decompressor()
        self._started = False
        # Input so far: only read again if bytes follow the stream's end in the same read.
        # The decoder then fails ("decoder failed"), leaves no way to tell where the
        # stream ended, and cannot go on; so a fresh one reads it all again to find out.
        self._fed: list[bytes] = []

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data or self._d.is_finished():  # bytes after the end are ignored
            return
        self._started = True
        done = 0
        try:
            for out in _drain(self._d, data):
                done += len(out)
                yield out
        except brotli.error as e:
            yield from self._after_end(data, done, e)
        if self._d.is_finished():
            self._fed.clear()
        else:
            self._fed.append(data)

    def finish(self) -> Iterator[bytes]:
        if self._started and not self._d.is_finished():
            raise DecodeError("truncated brotli body")
        return iter(())

    def _after_end(self, data: bytes, done: int, error: brotli.error) -> Iterator[bytes]:
        """Replay the input to the failed read, then that read byte by byte: if the stream
        ends inside it, the rest is ignored and the output not yet given (past ``done``
        bytes of this read) comes out; if it fails first, the body is bad."""
        d = brotli.Decompressor()
        try:
            for chunk in self._fed:
                for _ in _drain(d, chunk):
                    pass
            for i in range(len(data)):
                for out in _drain(d, data[i : i + 1]):
                    skip = min(done, len(out))
                    done -= skip
                    if skip < len(out):
                        yield out[skip:]
                if d.is_finished():
                    self._d = d
                    return
        except brotli.error:
            pass
        raise DecodeError(f"bad brotli body: {error}") from error


def _drain(d: brotli.Decompressor, data: bytes) -> Iterator[bytes]:
    """Give ``data`` to ``d`` and every piece it decodes, each at most _PIECE bytes."""
    out: bytes = d.process(data, output_buffer_limit=_PIECE)
    while True:
        if out:
            yield out
        if d.is_finished():
            return
        # New input is allowed only once the decoder has drained its output.
        out = d.process(b"", output_buffer_limit=_PIECE)
        if not out and d.can_accept_more_data():
            return


def decoder_for(coding: str) -> Decoder:
    """The decoder of one content coding (the fetcher chains them, one step per coding
    listed, each step's output counted against the body cap)."""
    coding = coding.strip().lower()
    if coding in ("gzip", "x-gzip"):
        return _Zlib(gzip=True)
    if coding == "deflate":
        return _Zlib(gzip=False)
    if coding == "br":
        if not _BROTLI_BOUNDED:
            raise DecodeError("brotli body but brotli >= 1.2 is not installed")
        return _Brotli()
    if coding in _NOT_DECODED:
        # Compressed all the same: handed on as it is, it was the parser's "not well-formed".
        raise DecodeError(f"unsupported content coding {coding!r} (not asked for)")
    # "identity" and unknown tokens pass through, as in httpx and browsers.
    return _Identity()
