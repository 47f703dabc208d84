"""SPDY/3.1 framing, as kubectl's port-forward speaks it inside a WebSocket (moby/spdystream).

Why: `kubectl port-forward` (client-go ≥ 1.31) opens a WebSocket with the subprotocol
`SPDY/3.1+portforward.k8s.io` and runs a SPDY session over its binary messages (message
boundaries mean nothing: the bytes are one stream). See kubectl-compat.md §5.4.

Frames (draft-mbelshe-httpbis-spdy-00 / SPDY/3):
    control: 1 | version(15) = 3 | type(16) | flags(8) | length(24) | data
    data:    0 | stream id(31)             | flags(8) | length(24) | data
Control types handled: SYN_STREAM(1), SYN_REPLY(2), RST_STREAM(3), SETTINGS(4), PING(6),
GOAWAY(7), HEADERS(8), WINDOW_UPDATE(9). Header blocks (32-bit counts and lengths) are
zlib-compressed with the SPDY/3 dictionary, one compression context per direction for the
whole session, each block ended with a sync flush.

Guarantees: `FrameWriter.encode` and `FrameReader.feed` are inverse (round-trips are unit
tested); the reader buffers partial frames across feeds, skips unknown control frames and
refuses frames larger than `max_frame` (FrameError), so a peer cannot make it buffer
without bound.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

__all__ = ["DICTIONARY", "DataFrame", "FrameError", "FrameReader", "FrameWriter", "GoAway",
           "Headers", "Ping", "RstStream", "Settings", "SynReply", "SynStream", "WindowUpdate",
           "FLAG_FIN", "FLAG_UNIDIRECTIONAL", "Frame"]

VERSION = 3
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = \
    1, 2, 3, 4, 6, 7, 8, 9
_MAX_FRAME = 16 << 20

_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type",
    "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
    "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK",
    "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin")
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504"
    "505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, "
    "Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
# The SPDY/3 header compression dictionary (spec section 2.6.10.1).
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class FrameError(ValueError):
    """The byte stream is not valid SPDY/3."""


Headers_ = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class DataFrame:
    stream_id: int
    data: bytes = b""
    flags: int = 0


@dataclass(frozen=True, slots=True)
class SynStream:
    stream_id: int
    headers: Headers_ = field(default_factory=list)
    flags: int = 0
    associated_to: int = 0
    priority: int = 0


@dataclass(frozen=True, slots=True)
class SynReply:
    stream_id: int
    headers: Headers_ = field(default_factory=list)
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Headers:
    stream_id: int
    headers: Headers_ = field(default_factory=list)
    flags: int = 0


@dataclass(frozen=True, slots=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True, slots=True)
class Settings:
    entries: list[tuple[int, int, int]] = field(default_factory=list)   # (flags, id, value)
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Ping:
    id: int


@dataclass(frozen=True, slots=True)
class GoAway:
    last_stream_id: int
    status: int = 0


@dataclass(frozen=True, slots=True)
class WindowUpdate:
    stream_id: int
    delta: int


Frame = (DataFrame | SynStream | SynReply | Headers | RstStream | Settings | Ping | GoAway
         | WindowUpdate)


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    if len(payload) >= 1 << 24:
        raise FrameError("frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


class FrameWriter:
    """Encodes frames; keeps the outgoing header compression context."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                   zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)

    def _block(self, headers: Headers_) -> bytes:
        raw = [struct.pack(">I", len(headers))]
        for name, value in headers:
            n, v = name.lower().encode(), value.encode()
            raw.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
        return self._z.compress(b"".join(raw)) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, DataFrame):
            if len(frame.data) >= 1 << 24:
                raise FrameError("frame too large")
            return struct.pack(">II", frame.stream_id & 0x7FFFFFFF,
                               (frame.flags << 24) | len(frame.data)) + frame.data
        if isinstance(frame, SynStream):
            head = struct.pack(">IIBB", frame.stream_id & 0x7FFFFFFF,
                               frame.associated_to & 0x7FFFFFFF, (frame.priority & 7) << 5, 0)
            return _control(SYN_STREAM, frame.flags, head + self._block(frame.headers))
        if isinstance(frame, SynReply):
            return _control(SYN_REPLY, frame.flags, struct.pack(">I", frame.stream_id)
                            + self._block(frame.headers))
        if isinstance(frame, Headers):
            return _control(HEADERS, frame.flags, struct.pack(">I", frame.stream_id)
                            + self._block(frame.headers))
        if isinstance(frame, RstStream):
            return _control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.entries)) + b"".join(
                struct.pack(">II", (f << 24) | i, v) for f, i, v in frame.entries)
            return _control(SETTINGS, frame.flags, body)
        if isinstance(frame, Ping):
            return _control(PING, 0, struct.pack(">I", frame.id))
        if isinstance(frame, GoAway):
            return _control(GOAWAY, 0, struct.pack(">II", frame.last_stream_id, frame.status))
        if isinstance(frame, WindowUpdate):
            return _control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))
        raise FrameError(f"cannot encode {type(frame).__name__}")


class FrameReader:
    """Decodes a byte stream fed in arbitrary pieces; keeps the incoming header context."""

    def __init__(self, *, max_frame: int = _MAX_FRAME) -> None:
        self._buf = bytearray()
        self._z = zlib.decompressobj(15, zdict=DICTIONARY)
        self._max = max_frame

    def _headers(self, block: bytes) -> Headers_:
        try:
            raw = self._z.decompress(block)
        except zlib.error as exc:
            raise FrameError(f"bad header block: {exc}") from None
        try:
            (count,), pos = struct.unpack_from(">I", raw, 0), 4
            out = []
            for _ in range(count):
                (n,) = struct.unpack_from(">I", raw, pos)
                name = raw[pos + 4:pos + 4 + n].decode()
                pos += 4 + n
                (v,) = struct.unpack_from(">I", raw, pos)
                value = raw[pos + 4:pos + 4 + v].decode()
                pos += 4 + v
                for part in value.split("\x00"):
                    out.append((name, part))
        except (struct.error, UnicodeDecodeError) as exc:
            raise FrameError(f"bad header block: {exc}") from None
        return out

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= 8:
            first, flags_len = struct.unpack_from(">II", self._buf, 0)
            length = flags_len & 0xFFFFFF
            if length > self._max:
                raise FrameError(f"frame of {length} bytes is too large")
            if len(self._buf) < 8 + length:
                break
            flags = flags_len >> 24
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if not first & 0x80000000:
                frames.append(DataFrame(first & 0x7FFFFFFF, payload, flags))
                continue
            version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
            if version != VERSION:
                raise FrameError(f"unsupported SPDY version {version}")
            frame = self._control(kind, flags, payload)
            if frame is not None:
                frames.append(frame)
        return frames

    def _control(self, kind: int, flags: int, p: bytes) -> Frame | None:
        try:
            if kind == SYN_STREAM:
                sid, assoc, pri = struct.unpack_from(">IIB", p, 0)
                return SynStream(sid & 0x7FFFFFFF, self._headers(p[10:]), flags,
                                 assoc & 0x7FFFFFFF, pri >> 5)
            if kind in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", p, 0)
                cls = SynReply if kind == SYN_REPLY else Headers
                return cls(sid & 0x7FFFFFFF, self._headers(p[4:]), flags)
            if kind == RST_STREAM:
                sid, status = struct.unpack_from(">II", p, 0)
                return RstStream(sid & 0x7FFFFFFF, status)
            if kind == SETTINGS:
                (count,) = struct.unpack_from(">I", p, 0)
                entries = []
                for i in range(count):
                    fid, val = struct.unpack_from(">II", p, 4 + 8 * i)
                    entries.append((fid >> 24, fid & 0xFFFFFF, val))
                return Settings(entries, flags)
            if kind == PING:
                return Ping(struct.unpack_from(">I", p, 0)[0])
            if kind == GOAWAY:
                last, status = struct.unpack_from(">II", p + b"\0" * 4, 0)
                return GoAway(last & 0x7FFFFFFF, status)
            if kind == WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", p, 0)
                return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error as exc:
            raise FrameError(f"truncated control frame {kind}: {exc}") from None
        return None
