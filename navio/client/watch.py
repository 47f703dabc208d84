"""A watch response as an async iterator of events.

Why: the watch protocol (kubectl-compat §5.1) is a chunked stream of JSON objects
`{"type": …, "object": …}`, one per line. This module turns those bytes back into
`WatchEvent`s and owns the HTTP response so that closing the iterator closes the connection.

Guarantees: events come out in the order the server sent them; a line split across chunks is
reassembled, and objects of any size are accepted (no line-length limit); an `ERROR` event is
raised as the matching `navio.api.errors` exception (so a 410 mid-stream looks the same as a
410 at the start), after which the stream is closed; the stream ends (StopAsyncIteration) when
the server closes it cleanly. Closing is idempotent, and `async with` closes it on exit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Literal

import aiohttp
import orjson

from navio.client.status import error_from_status

__all__ = ["WatchEvent", "WatchStream", "WatchStreamError"]

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
_TYPES = frozenset(("ADDED", "MODIFIED", "DELETED", "BOOKMARK"))


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: EventType
    object: dict[str, Any]


class WatchStreamError(ConnectionError):
    """The watch connection broke or sent something that is not a watch event."""


class WatchStream:
    """The events of one watch request; open it by iterating or with `async with`."""

    def __init__(self, opener: Callable[[], Awaitable[aiohttp.ClientResponse]]) -> None:
        self._opener = opener
        self._resp: aiohttp.ClientResponse | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._buf = bytearray()
        self._pending: list[bytes] = []
        self._closed = False

    async def __aenter__(self) -> "WatchStream":
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> "WatchStream":
        return self

    async def _open(self) -> None:
        if self._resp is None and not self._closed:
            self._resp = await self._opener()
            self._chunks = self._resp.content.iter_any().__aiter__()

    async def __anext__(self) -> WatchEvent:
        await self._open()
        while True:
            if self._closed or self._chunks is None:
                raise StopAsyncIteration
            if self._pending:
                line = self._pending.pop(0)
                if line.strip():
                    return await self._decode(line)
                continue
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                rest = bytes(self._buf).strip()
                self._buf.clear()
                if rest:
                    self._pending.append(rest)
                    self._chunks = _empty()
                    continue
                await self.aclose()
                raise
            except (aiohttp.ClientError, ConnectionError) as exc:
                await self.aclose()
                raise WatchStreamError(f"watch connection lost: {type(exc).__name__}") from exc
            self._buf += chunk
            if b"\n" in chunk:
                *lines, tail = bytes(self._buf).split(b"\n")
                self._buf = bytearray(tail)
                self._pending.extend(lines)

    async def _decode(self, line: bytes) -> WatchEvent:
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError:
            await self.aclose()
            raise WatchStreamError("watch stream sent a line that is not JSON") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("object"), dict):
            await self.aclose()
            raise WatchStreamError("watch stream sent an object that is not an event")
        kind = raw.get("type")
        if kind == "ERROR":
            await self.aclose()
            raise error_from_status(raw["object"])
        if kind not in _TYPES:
            await self.aclose()
            raise WatchStreamError("watch stream sent an unknown event type")
        return WatchEvent(kind, raw["object"])

    async def aclose(self) -> None:
        """Close the connection; safe to repeat."""
        self._closed = True
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.close()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator
