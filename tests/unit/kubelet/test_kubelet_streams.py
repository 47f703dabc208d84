"""The exec channel protocol and SPDY/3.1 framing for port-forward (issue 7)."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib

import aiohttp
import pytest
from aiohttp import web

from navio.kubelet.streams import channel as ch
from navio.kubelet.streams import spdy
from navio.kubelet.streams.portforward import PROTOCOL, PortForwardSession


@pytest.mark.parametrize("channel, payload", [(0, b"input"), (1, b""), (4, b'{"Width":80}'),
                                              (255, b"\x00")])
def test_channel_messages_round_trip(channel, payload):
    assert ch.decode(ch.encode(channel, payload)) == (channel, payload)


def test_channel_rejects_empty_messages_and_bad_resizes():
    with pytest.raises(ch.ChannelError):
        ch.decode(b"")
    with pytest.raises(ch.ChannelError):
        ch.parse_resize(b"not json")
    assert ch.parse_resize(b'{"Width":120,"Height":40}\n') == ch.Resize(120, 40)


def test_exit_status_messages_are_the_kubelets():
    assert json.loads(ch.success_status()) == {"metadata": {}, "status": "Success"}
    failure = json.loads(ch.exit_status(3))
    assert failure["reason"] == "NonZeroExitCode"
    assert failure["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert json.loads(ch.internal_error("boom"))["message"] == "Internal error occurred: boom"


def test_the_spdy3_dictionary_is_the_specs():
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b",*,enq=0.")


FRAMES = [
    spdy.SynStream(1, [("streamtype", "error"), ("port", "8080"), ("requestid", "0")]),
    spdy.SynStream(3, [("streamtype", "data"), ("port", "8080"), ("requestid", "0")], flags=0,
                   priority=2),
    spdy.SynReply(1, []),
    spdy.DataFrame(3, b"x" * 70000),
    spdy.DataFrame(3, b"", spdy.FLAG_FIN),
    spdy.Headers(3, [("a", "b")]),
    spdy.RstStream(5, 5),
    spdy.Settings([(0, 7, 65536)]),
    spdy.Ping(2),
    spdy.GoAway(3, 0),
    spdy.WindowUpdate(3, 1024),
]


def test_spdy_frames_round_trip_in_any_pieces():
    writer = spdy.FrameWriter()
    data = b"".join(writer.encode(f) for f in FRAMES)
    for piece in (1, 7, 4096, len(data)):
        reader = spdy.FrameReader()
        got = []
        for i in range(0, len(data), piece):
            got += reader.feed(data[i:i + piece])
        assert got == FRAMES


def test_spdy_header_blocks_share_one_compression_context():
    writer, reader = spdy.FrameWriter(), spdy.FrameReader()
    for i in range(5):
        frame = spdy.SynStream(2 * i + 1, [("port", str(80 + i)), ("requestid", str(i))])
        assert reader.feed(writer.encode(frame)) == [frame]


def test_spdy_header_block_uses_the_dictionary_and_32_bit_lengths():
    block = spdy.FrameWriter().encode(spdy.SynReply(1, [("a", "bc")]))[12:]
    z = zlib.decompressobj(zdict=spdy.DICTIONARY)
    raw = z.decompress(block)
    assert raw == struct.pack(">I", 1) + struct.pack(">I", 1) + b"a" + struct.pack(">I", 2) + b"bc"


def test_spdy_reader_refuses_oversized_frames_and_other_versions():
    with pytest.raises(spdy.FrameError):
        spdy.FrameReader(max_frame=10).feed(struct.pack(">II", 1, 11) + b"x" * 11)
    with pytest.raises(spdy.FrameError, match="version"):
        spdy.FrameReader().feed(struct.pack(">HHI", 0x8002, 6, 4) + b"\0\0\0\1")


@pytest.fixture
async def echo_port():
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()        # until the client's half-close
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def _forwarding_server(dial) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=(PROTOCOL,))
        await ws.prepare(request)
        await PortForwardSession(ws, dial, pod="p", uid="u").run()
        return ws

    app = web.Application()
    app.router.add_get("/pf", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


async def _frames(ws: aiohttp.ClientWebSocketResponse, reader: spdy.FrameReader,
                  until: int) -> list[spdy.Frame]:
    """Read frames until stream `until` was closed by the server (error stream FIN)."""
    got: list[spdy.Frame] = []
    async with asyncio.timeout(10):
        while not any(isinstance(f, spdy.DataFrame) and f.stream_id == until
                      and f.flags & spdy.FLAG_FIN for f in got):
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            got += reader.feed(msg.data)
    return got


async def test_port_forward_pairs_streams_by_request_id_and_copies_both_ways(echo_port):
    async def dial(port: int):
        return await asyncio.open_connection("127.0.0.1", port)

    runner, port = await _forwarding_server(dial)
    writer, reader = spdy.FrameWriter(), spdy.FrameReader()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{port}/pf",
                                          protocols=[PROTOCOL]) as ws:
                assert ws.protocol == PROTOCOL
                hdr = [("port", str(echo_port)), ("requestid", "0")]
                out = (writer.encode(spdy.SynStream(1, [("streamtype", "error"), *hdr]))
                       + writer.encode(spdy.DataFrame(1, b"", spdy.FLAG_FIN))
                       + writer.encode(spdy.SynStream(3, [("streamtype", "data"), *hdr]))
                       + writer.encode(spdy.Ping(1)))
                await ws.send_bytes(out[:5])           # message boundaries mean nothing
                await ws.send_bytes(out[5:])
                await ws.send_bytes(writer.encode(spdy.DataFrame(3, b"hello ")))
                await ws.send_bytes(writer.encode(spdy.DataFrame(3, b"pod", spdy.FLAG_FIN)))
                frames = await _frames(ws, reader, until=1)
    finally:
        await runner.cleanup()
    assert spdy.SynReply(1, []) in frames and spdy.SynReply(3, []) in frames
    assert spdy.Ping(1) in frames
    data = b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == 3)
    assert data == b"HELLO POD"
    assert not any(f.data for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == 1)


async def test_port_forward_reports_dial_failures_on_the_error_stream():
    async def dial(port: int):
        raise ConnectionRefusedError(111, "connection refused")

    runner, port = await _forwarding_server(dial)
    writer, reader = spdy.FrameWriter(), spdy.FrameReader()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{port}/pf",
                                          protocols=[PROTOCOL]) as ws:
                hdr = [("port", "80"), ("requestid", "7")]
                await ws.send_bytes(writer.encode(spdy.SynStream(1, [("streamtype", "error"),
                                                                     *hdr]))
                                    + writer.encode(spdy.SynStream(3, [("streamtype", "data"),
                                                                       *hdr])))
                frames = await _frames(ws, reader, until=1)
    finally:
        await runner.cleanup()
    message = b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame)
                       and f.stream_id == 1).decode()
    assert message.startswith("error forwarding port 80 to pod p, uid u:")


async def test_port_forward_resets_streams_without_a_port():
    async def dial(port: int):
        raise AssertionError("never dialled")

    runner, port = await _forwarding_server(dial)
    writer, reader = spdy.FrameWriter(), spdy.FrameReader()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{port}/pf",
                                          protocols=[PROTOCOL]) as ws:
                await ws.send_bytes(writer.encode(spdy.SynStream(1, [("streamtype", "data")])))
                async with asyncio.timeout(5):
                    msg = await ws.receive()
    finally:
        await runner.cleanup()
    assert reader.feed(msg.data) == [spdy.RstStream(1, 1)]
