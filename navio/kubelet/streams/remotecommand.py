"""exec and attach over the channel protocol (kubelet cri/streaming/remotecommand).

Why: `kubectl exec -it ... -- sh`, `kubectl exec ... -- cat /etc/hostname` and
`kubectl attach` end up here: the WebSocket from the API server on one side, a runtime
ExecSession (or the container's log, for attach) on the other.

Guarantees:
- Output is forwarded as it arrives (stdout on channel 1, stderr on 2; with a tty only 1);
  channel 0 feeds the command's stdin, 4 resizes its terminal, and v5's close message for
  channel 0 ends its stdin (a tty gets ^D).
- When the command ends and its output is drained, the exit status goes on channel 3
  (Success, or NonZeroExitCode with the code) and the WebSocket is closed normally.
- If the client goes away first, the command is killed; nothing is left running.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Coroutine

from aiohttp import WSMsgType, web

from navio.kubelet.streams import channel as ch
from navio.runtime.protocol import AttachSession, ExecSession

__all__ = ["serve_exec", "serve_error", "serve_output"]

log = logging.getLogger(__name__)

_CHUNK = 32 * 1024


async def _send(ws: web.WebSocketResponse, channel: int, data: bytes) -> None:
    if not ws.closed:
        await ws.send_bytes(ch.encode(channel, data))


async def serve_error(ws: web.WebSocketResponse, message: str) -> None:
    """Report a failure on the error channel and close (the kubelet's writeStatus)."""
    try:
        await _send(ws, ch.ERROR, ch.internal_error(message))
    finally:
        await ws.close()


async def _pump(reader: asyncio.StreamReader | None, ws: web.WebSocketResponse, channel: int,
                forward: bool) -> None:
    if reader is None:
        return
    while chunk := await reader.read(_CHUNK):
        if forward:
            try:
                await _send(ws, channel, chunk)
            except ConnectionError:
                forward = False


async def _from_client(ws: web.WebSocketResponse, session: ExecSession | AttachSession, *,
                       v5: bool, tty: bool) -> None:
    async for msg in ws:
        if msg.type != WSMsgType.BINARY:
            continue
        try:
            channel, payload = ch.decode(msg.data)
        except ch.ChannelError:
            continue
        if channel == ch.STDIN and session.stdin is not None and payload:
            session.stdin.write(payload)
            await session.stdin.drain()
        elif channel == ch.RESIZE:
            try:
                size = ch.parse_resize(payload)
            except ch.ChannelError:
                continue
            await session.resize(size.width, size.height)
        elif channel == ch.CLOSE and v5 and payload[:1] == bytes((ch.STDIN,)) \
                and session.stdin is not None:
            if tty:                     # a terminal ends its input with ^D
                session.stdin.write(b"\x04")
                await session.stdin.drain()
            else:
                session.stdin.close()


async def serve_exec(ws: web.WebSocketResponse, session: ExecSession, *, stdout: bool,
                     stderr: bool, tty: bool) -> int | None:
    """Bridge `session` to `ws` until the command ends; returns its exit code (None when the
    client left first)."""
    v5 = ws.ws_protocol == ch.V5
    client = asyncio.create_task(_from_client(ws, session, v5=v5, tty=tty))
    output: asyncio.Future[Any] = asyncio.gather(
        _pump(session.stdout, ws, ch.STDOUT, stdout),
        _pump(session.stderr, ws, ch.STDERR, stderr and not tty))
    try:
        done, _ = await asyncio.wait([client, output], return_when=asyncio.FIRST_COMPLETED)
        if client in done and output not in done:
            await session.kill()
            output.cancel()
            await asyncio.gather(output, return_exceptions=True)
            return None
        code = await session.wait()
        status = ch.success_status() if code == 0 else ch.exit_status(code)
        try:
            await _send(ws, ch.ERROR, status)
            await ws.close()
        except ConnectionError:
            pass
        return code
    finally:
        client.cancel()
        await asyncio.gather(client, return_exceptions=True)
        if not output.done():
            output.cancel()
            await asyncio.gather(output, return_exceptions=True)
        await session.kill()


async def serve_output(ws: web.WebSocketResponse,
                       follow: Callable[[Callable[[str, bytes], Awaitable[None]]],
                                        Coroutine[Any, Any, None]], *,
                       session: AttachSession | None = None, tty: bool = False) -> None:
    """attach: stream what the container writes from now on (`follow` calls back with
    (stream, bytes)) until it stops or the client leaves; with a `session`, the client's
    stdin (channel 0, and v5's close of it) and terminal size (channel 4) go to it."""
    async def emit(stream: str, data: bytes) -> None:
        await _send(ws, ch.STDERR if stream == "stderr" else ch.STDOUT, data)

    async def drain_client() -> None:
        if session is not None:
            await _from_client(ws, session, v5=ws.ws_protocol == ch.V5, tty=tty)
            return
        async for _ in ws:
            pass

    client = asyncio.create_task(drain_client())
    out = asyncio.create_task(follow(emit))
    try:
        done, _ = await asyncio.wait({client, out}, return_when=asyncio.FIRST_COMPLETED)
        if out in done and not ws.closed:
            await _send(ws, ch.ERROR, ch.success_status())
            await ws.close()
    finally:
        for t in (client, out):
            t.cancel()
        await asyncio.gather(client, out, return_exceptions=True)
        if session is not None:
            await session.close()
