"""Probes and their results, against local servers on 127.0.0.1 (issue 7)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable

import pytest
from aiohttp import web

from navio.kubelet.prober import ProbeManager
from navio.kubelet.probes import ProbeResult, ProbeRunner, resolve_port
from navio.runtime.protocol import InvalidState


async def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s waiting for {what}") from None


class FakeRuntime:
    name = "fake"

    def __init__(self) -> None:
        self.exit_code = 0
        self.delay = 0.0

    async def exec_sync(self, cid: str, cmd: list[str], timeout: float):
        if cid == "gone":
            raise InvalidState("container gone is not running")
        if self.delay > timeout:
            raise TimeoutError
        return self.exit_code, b"out ", b"err"


@pytest.fixture
async def http_port():
    statuses = {"/ok": 200, "/redirect": 302, "/fail": 500}

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/slow":
            await asyncio.sleep(3)
        assert request.headers["User-Agent"].startswith("kube-probe/1.")
        return web.Response(status=statuses.get(request.path, 200),
                            text=request.headers.get("X-Probe", "hello"))

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]
    await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONTAINER = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}


async def run(action: dict[str, Any], timeout: float = 1.0) -> ProbeResult:
    return await ProbeRunner(FakeRuntime()).run(action, CONTAINER, "cid", "127.0.0.1", timeout)


@pytest.mark.parametrize("path, outcome", [("/ok", "success"), ("/redirect", "success"),
                                            ("/fail", "failure")])
async def test_http_probe_success_is_a_2xx_or_3xx(http_port, path, outcome):
    result = await run({"httpGet": {"path": path, "port": http_port}})
    assert result.outcome == outcome
    if outcome == "failure":
        assert result.output == "HTTP probe failed with statuscode: 500"


async def test_http_probe_sends_the_configured_headers(http_port):
    result = await run({"httpGet": {"path": "/ok", "port": http_port,
                                    "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}})
    assert result == ProbeResult("success", "yes")


async def test_http_probe_reports_refused_connections_and_timeouts_as_the_kubelet_does(http_port):
    port = closed_port()
    result = await run({"httpGet": {"path": "/healthz", "port": port}})
    assert result == ProbeResult("failure", f'Get "http://127.0.0.1:{port}/healthz": dial tcp '
                                            f"127.0.0.1:{port}: connect: connection refused")
    result = await run({"httpGet": {"path": "/slow", "port": http_port}}, timeout=1)
    assert result.outcome == "failure" and "Client.Timeout exceeded" in result.output


async def test_tcp_probe_connects_or_fails(http_port):
    assert (await run({"tcpSocket": {"port": http_port}})).outcome == "success"
    port = closed_port()
    assert await run({"tcpSocket": {"port": port}}) == ProbeResult(
        "failure", f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_exec_probe_uses_the_exit_code_and_output():
    rt = FakeRuntime()
    runner = ProbeRunner(rt)
    assert (await runner.run({"exec": {"command": ["true"]}}, CONTAINER, "cid", "", 1)
            ).outcome == "success"
    rt.exit_code = 1
    assert await runner.run({"exec": {"command": ["false"]}}, CONTAINER, "cid", "", 1) == \
        ProbeResult("failure", "out err")
    rt.delay = 5
    assert await runner.run({"exec": {"command": ["sleep", "5"]}}, CONTAINER, "cid", "", 1) == \
        ProbeResult("failure", 'command "sleep 5" timed out')
    assert (await runner.run({"exec": {"command": ["x"]}}, CONTAINER, "gone", "", 1)
            ).outcome == "error"


def test_named_ports_resolve_against_the_container():
    assert resolve_port("http", CONTAINER) == 8080
    assert resolve_port(9000, CONTAINER) == 9000
    with pytest.raises(ValueError, match="couldn't find port: metrics"):
        resolve_port("metrics", CONTAINER)


class ScriptedRunner:
    """Answers probes from a list of outcomes, then repeats the last one."""

    def __init__(self, outcomes: list[str]) -> None:
        self.outcomes = outcomes
        self.calls = 0

    async def run(self, *args: Any) -> ProbeResult:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        return ProbeResult(outcome, "scripted")


def pod_with(**probes: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"containers": [{"name": "c", **probes}]}}


async def test_readiness_starts_false_and_flips_after_success_threshold():
    runner = ScriptedRunner(["failure", "success", "success"])
    changes: list[str] = []
    events: list[str] = []
    mgr = ProbeManager(runner, on_change=changes.append,  # type: ignore[arg-type]
                       event=lambda pod, kind, reason, msg: events.append(f"{reason}: {msg}"))
    probe = {"periodSeconds": 1, "successThreshold": 2, "failureThreshold": 1, "exec": {}}
    pod = pod_with(readinessProbe=probe)
    spec = pod["spec"]["containers"][0]
    mgr.sync(pod, {"c": ("cid", 0.0, "10.0.0.1")})
    assert mgr.ready("u", "c", "cid", spec) is False
    await wait_until(lambda: mgr.ready("u", "c", "cid", spec), timeout=6,
                     what="readiness after two successes")
    assert runner.calls >= 3 and changes == ["u"]
    assert events == ["Unhealthy: Readiness probe failed: scripted"]
    assert mgr.ready("u", "c", "other-container", spec) is False
    await mgr.stop()


async def test_liveness_failure_is_reported_after_failure_threshold_and_the_worker_stops():
    runner = ScriptedRunner(["failure"])
    mgr = ProbeManager(runner, on_change=lambda uid: None,  # type: ignore[arg-type]
                       event=lambda *a: None)
    pod = pod_with(livenessProbe={"periodSeconds": 1, "failureThreshold": 2, "exec": {}})
    mgr.sync(pod, {"c": ("cid", 0.0, "")})
    assert mgr.failed("u", "c", "cid") is None
    await wait_until(lambda: mgr.failed("u", "c", "cid") == "liveness",
                     timeout=6, what="liveness failure")
    calls = runner.calls
    await asyncio.sleep(1.2)
    assert runner.calls == calls == 2
    mgr.sync(pod, {"c": ("cid2", 0.0, "")})      # restarted: a fresh worker, fresh result
    assert mgr.failed("u", "c", "cid2") is None
    await mgr.stop()


async def test_liveness_waits_for_the_startup_probe():
    runner = ScriptedRunner(["failure"])
    mgr = ProbeManager(runner, on_change=lambda uid: None,  # type: ignore[arg-type]
                       event=lambda *a: None)
    never = {"periodSeconds": 1, "failureThreshold": 100, "exec": {}}
    pod = pod_with(startupProbe=never, livenessProbe={"periodSeconds": 1,
                                                      "failureThreshold": 1, "exec": {}})
    spec = pod["spec"]["containers"][0]
    mgr.sync(pod, {"c": ("cid", 0.0, "")})
    await asyncio.sleep(1.5)
    assert mgr.failed("u", "c", "cid") is None
    assert mgr.started("u", "c", "cid", spec) is False
    await mgr.stop()
