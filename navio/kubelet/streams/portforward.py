"""port-forward: a SPDY/3.1 session in a WebSocket, one TCP connection per stream pair
(kubelet cri/streaming/portforward/httpstream.go).

Why: for every local connection kubectl opens two SPDY streams with the headers
`streamType: error|data`, `port: <remote port>`, `requestID: <n>`; the kubelet pairs them by
requestID, connects to the port inside the pod's network namespace and copies bytes both
ways, writing any failure as text on the error stream.

Guarantees:
- Every SYN_STREAM is answered with a SYN_REPLY at once (client-go waits for it); a stream
  without a valid `port` header is reset. PINGs are echoed. GOAWAY or the WebSocket closing
  ends the session and every connection of it.
- A pair's pod connection gets the client's bytes in order; the client's FIN half-closes it;
  the pod side's EOF ends the pair: FIN on the data stream, then on the error stream (empty
  on success, the kubelet's message on failure: `error forwarding port 80 to pod ...`).
- A stream whose partner does not arrive within 30 s is reset. Outgoing DATA frames carry at
  most 32 KiB.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import WSMsgType, web

from navio.kubelet.streams import spdy

__all__ = ["PortForwardSession", "PROTOCOL", "Dialer"]

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
_CHUNK = 32 * 1024
_PAIR_TIMEOUT = 30.0
_RST_PROTOCOL_ERROR = 1
_RST_CANCEL = 5

Dialer = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass
class _Stream:
    id: int
    kind: str
    port: str
    request_id: str
    inbound: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    closed_out: bool = False


class PortForwardSession:
    def __init__(self, ws: web.WebSocketResponse, dial: Dialer, *, pod: str, uid: str) -> None:
        self._ws = ws
        self._dial = dial
        self._pod = pod
        self._uid = uid
        self._reader = spdy.FrameReader()
        self._writer = spdy.FrameWriter()
        self._send_lock = asyncio.Lock()
        self._streams: dict[int, _Stream] = {}
        self._pending: dict[str, dict[str, _Stream]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def _send(self, frame: spdy.Frame) -> None:
        async with self._send_lock:
            if not self._ws.closed:
                await self._ws.send_bytes(self._writer.encode(frame))

    async def _close_stream(self, stream: _Stream) -> None:
        if not stream.closed_out:
            stream.closed_out = True
            await self._send(spdy.DataFrame(stream.id, b"", spdy.FLAG_FIN))

    async def run(self) -> None:
        """Serve until the client closes the WebSocket or sends GOAWAY."""
        try:
            async for msg in self._ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                try:
                    frames = self._reader.feed(msg.data)
                except spdy.FrameError as exc:
                    log.warning("port-forward protocol error", extra={"pod": self._pod,
                                                                      "error": str(exc)})
                    return
                for frame in frames:
                    if not await self._handle(frame):
                        return
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, frame: spdy.Frame) -> bool:
        if isinstance(frame, spdy.SynStream):
            await self._open(frame)
        elif isinstance(frame, spdy.DataFrame):
            stream = self._streams.get(frame.stream_id)
            if stream is not None:
                if frame.data:
                    stream.inbound.put_nowait(frame.data)
                if frame.flags & spdy.FLAG_FIN:
                    stream.inbound.put_nowait(None)
        elif isinstance(frame, spdy.RstStream):
            stream = self._streams.pop(frame.stream_id, None)
            if stream is not None:
                stream.closed_out = True
                stream.inbound.put_nowait(None)
        elif isinstance(frame, spdy.Ping):
            await self._send(spdy.Ping(frame.id))
        elif isinstance(frame, spdy.GoAway):
            return False
        return True

    async def _open(self, frame: spdy.SynStream) -> None:
        headers = {k.lower(): v for k, v in frame.headers}
        kind, port = headers.get("streamtype", ""), headers.get("port", "")
        request_id = headers.get("requestid", "")
        if kind not in ("error", "data") or not port.isdigit():
            await self._send(spdy.RstStream(frame.stream_id, _RST_PROTOCOL_ERROR))
            return
        stream = _Stream(frame.stream_id, kind, port, request_id)
        self._streams[frame.stream_id] = stream
        await self._send(spdy.SynReply(frame.stream_id, []))
        pair = self._pending.setdefault(request_id, {})
        pair[kind] = stream
        if len(pair) == 2:
            del self._pending[request_id]
            self._spawn(self._forward(pair["error"], pair["data"]))
        else:
            self._spawn(self._expire(request_id, stream))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self, request_id: str, stream: _Stream) -> None:
        await asyncio.sleep(_PAIR_TIMEOUT)
        pair = self._pending.get(request_id)
        if pair is not None and pair.get(stream.kind) is stream:
            del self._pending[request_id]
            self._streams.pop(stream.id, None)
            await self._send(spdy.RstStream(stream.id, _RST_CANCEL))

    async def _forward(self, error: _Stream, data: _Stream) -> None:
        port = int(data.port)
        try:
            try:
                reader, writer = await self._dial(port)
            except Exception as exc:
                message = (f"error forwarding port {port} to pod {self._pod}, uid {self._uid}: "
                           f"{exc}")
                log.info("port-forward dial failed", extra={"pod": self._pod, "port": port})
                await self._send(spdy.DataFrame(error.id, message.encode()))
                return
            # Like the kubelet's runtime, the pair ends when the pod side ends.
            to_pod = asyncio.ensure_future(self._to_pod(data, writer))
            try:
                await self._from_pod(data, reader)
            finally:
                to_pod.cancel()
                await asyncio.gather(to_pod, return_exceptions=True)
                writer.close()
        finally:
            await self._close_stream(data)
            await self._close_stream(error)
            self._streams.pop(data.id, None)
            self._streams.pop(error.id, None)

    async def _to_pod(self, stream: _Stream, writer: asyncio.StreamWriter) -> None:
        while (chunk := await stream.inbound.get()) is not None:
            writer.write(chunk)
            try:
                await writer.drain()
            except ConnectionError:
                return
        if writer.can_write_eof():
            try:
                writer.write_eof()
            except OSError:
                pass

    async def _from_pod(self, stream: _Stream, reader: asyncio.StreamReader) -> None:
        try:
            while chunk := await reader.read(_CHUNK):
                if stream.closed_out:
                    return
                await self._send(spdy.DataFrame(stream.id, chunk))
        except ConnectionError:
            pass
        await self._close_stream(stream)
