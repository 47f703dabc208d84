"""Running one probe or lifecycle handler: exec, httpGet, tcpSocket (pkg/probe, kubelet prober).

Why: liveness, readiness and startup probes and postStart/preStop hooks share three action
kinds; their outcomes and messages appear in events ("Liveness probe failed: HTTP probe
failed with statuscode: 500"), so they follow the kubelet's wording.

Guarantees:
- Every action is bounded by its timeout; an exec that runs over is killed (runtime
  exec_sync) and reported as `command "..." timed out`.
- httpGet/tcpSocket connect to the pod IP (or `host`) from the node's network namespace (the
  configured node netns, else the agent's own), never through a proxy; an HTTP status in
  [200, 400) is success; at most 10 KiB of a body is read; `User-Agent: kube-probe/1.32`.
- Results are `ProbeResult(outcome, output)` with outcome "success", "failure" or "error"
  (the probe could not run, e.g. the container is gone: kubelet's probe.Unknown).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from navio import KUBERNETES_VERSION
from navio.kubelet.iopool import run_io
from navio.runtime import namespaces as ns
from navio.runtime.protocol import Runtime, RuntimeFailure

__all__ = ["ProbeResult", "ProbeRunner", "resolve_port"]

Outcome = Literal["success", "failure", "error"]
_MAX_BODY = 10 * 1024
_USER_AGENT = "kube-probe/" + ".".join(KUBERNETES_VERSION.lstrip("v").split(".")[:2])


@dataclass(frozen=True, slots=True)
class ProbeResult:
    outcome: Outcome
    output: str = ""


def resolve_port(port: Any, container: Mapping[str, Any]) -> int:
    """An IntOrString probe port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or ():
        if p.get("name") == text:
            return int(p.get("containerPort"))
    raise ValueError(f"couldn't find port: {text} in {container.get('name')}")


def _dial_error(exc: BaseException, host: str, port: int) -> str:
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, TimeoutError):
        return f"dial tcp {target}: i/o timeout"
    code = getattr(exc, "errno", None)
    text = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
            errno.ENETUNREACH: "network is unreachable"}.get(code or 0, str(exc))
    return f"dial tcp {target}: connect: {text}"


class _BadResponse(Exception):
    """The peer did not answer with HTTP."""


async def _http_exchange(sock: socket.socket, scheme: str, host: str, path: str,
                         headers: Mapping[str, str]) -> tuple[int, bytes]:
    ctx = None
    if scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE    # kubelet probes do not verify certificates
    try:
        reader, writer = await asyncio.open_connection(sock=sock, ssl=ctx,
                                                       server_hostname=host if ctx else None)
    except BaseException:
        sock.close()
        raise
    try:
        request = f"GET {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(request.encode("latin-1", "replace"))
        await writer.drain()
        parts = (await reader.readline()).decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise _BadResponse("malformed HTTP response")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        return int(parts[1]), await reader.read(_MAX_BODY)
    finally:
        writer.close()


class ProbeRunner:
    def __init__(self, runtime: Runtime, *, node_netns: str | None = None) -> None:
        self.runtime = runtime
        self.node_netns = node_netns

    async def run(self, action: Mapping[str, Any], container: Mapping[str, Any],
                  container_id: str, pod_ip: str, timeout: float) -> ProbeResult:
        """Run the action part of a probe or handler (`exec`, `httpGet`, `tcpSocket`)."""
        try:
            if action.get("exec") is not None:
                return await self._exec(action["exec"], container_id, timeout)
            if action.get("httpGet") is not None:
                get = action["httpGet"]
                port = resolve_port(get.get("port"), container)
                return await self._http(get, str(get.get("host") or pod_ip), port, timeout)
            if action.get("tcpSocket") is not None:
                tcp = action["tcpSocket"]
                port = resolve_port(tcp.get("port"), container)
                return await self._tcp(str(tcp.get("host") or pod_ip), port, timeout)
            if action.get("sleep") is not None:
                await asyncio.sleep(float(action["sleep"].get("seconds") or 0))
                return ProbeResult("success")
            if action.get("grpc") is not None:
                return ProbeResult("failure", "grpc probes are not supported by this node")
        except ValueError as exc:
            return ProbeResult("error", str(exc))
        return ProbeResult("error", "missing probe handler")

    async def _exec(self, spec: Mapping[str, Any], container_id: str,
                    timeout: float) -> ProbeResult:
        command = [str(c) for c in spec.get("command") or ()]
        try:
            code, out, err = await self.runtime.exec_sync(container_id, command, timeout)
        except TimeoutError:
            return ProbeResult("failure", f'command "{" ".join(command)}" timed out')
        except RuntimeFailure as exc:
            return ProbeResult("error", str(exc))
        output = (out + err)[:_MAX_BODY].decode("utf-8", "replace")
        return ProbeResult("success" if code == 0 else "failure", output)

    async def _connect(self, host: str, port: int, timeout: float) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if self.node_netns:
            sock = await run_io(ns.socket_in_netns, f"{ns.NETNS_DIR}/{self.node_netns}",
                                           family)
        else:
            sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    async def _tcp(self, host: str, port: int, timeout: float) -> ProbeResult:
        try:
            sock = await self._connect(host, port, timeout)
        except (OSError, TimeoutError) as exc:
            return ProbeResult("failure", _dial_error(exc, host, port))
        sock.close()
        return ProbeResult("success")

    async def _http(self, spec: Mapping[str, Any], host: str, port: int,
                    timeout: float) -> ProbeResult:
        scheme = str(spec.get("scheme") or "HTTP").lower()
        path = str(spec.get("path") or "/")
        if not path.startswith("/"):
            path = "/" + path
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        url = f"{scheme}://{hostport}{path}"
        headers = {"Host": hostport, "User-Agent": _USER_AGENT, "Accept": "*/*",
                   "Connection": "close"}
        for h in spec.get("httpHeaders") or ():
            name = str(h.get("name") or "")
            for existing in list(headers):
                if existing.lower() == name.lower():
                    del headers[existing]
            headers[name] = str(h.get("value") or "")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            sock = await self._connect(host, port, timeout)
        except TimeoutError:
            return ProbeResult("failure", f'Get "{url}": context deadline exceeded '
                                          "(Client.Timeout exceeded while awaiting headers)")
        except OSError as exc:
            return ProbeResult("failure", f'Get "{url}": {_dial_error(exc, host, port)}')
        try:
            async with asyncio.timeout_at(deadline):
                code, body = await _http_exchange(sock, scheme, host, path, headers)
        except TimeoutError:
            return ProbeResult("failure", f'Get "{url}": context deadline exceeded '
                                          "(Client.Timeout exceeded while awaiting headers)")
        except (OSError, _BadResponse) as exc:
            return ProbeResult("failure", f'Get "{url}": {exc or "EOF"}')
        if 200 <= code < 400:
            return ProbeResult("success", body.decode("utf-8", "replace"))
        return ProbeResult("failure", f"HTTP probe failed with statuscode: {code}")
