"""The kubelet API on :10250 (pkg/kubelet/server/server.go), over TLS with client certificates.

Why: the API server proxies pods/log, pods/exec, pods/attach and pods/portforward here.

Endpoints:
    GET /healthz                                          "ok"
    GET /pods                                             the pods bound to this node
    GET /containerLogs/<ns>/<pod>/<container>             follow, tailLines, timestamps,
                                                          previous, sinceSeconds, sinceTime,
                                                          limitBytes
    GET /exec/<ns>/<pod>[/<uid>]/<container>              WebSocket v5/v4.channel.k8s.io;
        ?command=...&input=1&output=1&error=1&tty=1       (stdin/stdout/stderr also accepted)
    GET /attach/<ns>/<pod>[/<uid>]/<container>            WebSocket, container output
        ?input=1&tty=1                                    (and its stdin, if spec.stdin)
    GET /portForward/<ns>/<pod>[/<uid>]                   WebSocket SPDY/3.1+portforward.k8s.io
    GET /stats/summary                                    node and pod usage (stats.py)
    GET /metrics                                          Prometheus metrics (metrics.py)

Guarantees: every request carries a verified client certificate (the TLS layer refuses
others) and is authorized (tls.authorize; otherwise 403 with the kubelet's message); errors
before a WebSocket upgrade are `Status` objects with the kubelet's wording (e.g. `container
"c" in pod "p" is waiting to start: ContainerCreating`), errors after it go on the error
channel. Malformed query values are 400s. Nothing a container prints is logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Protocol

import orjson
from aiohttp import web

from navio.kubelet import metrics, tls
from navio.kubelet.logs import LogOptions, follow_new, parse_timestamp, stream_log
from navio.kubelet.stats import summary
from navio.kubelet.streams import channel, remotecommand
from navio.kubelet.streams.portforward import PROTOCOL as PORTFORWARD_PROTOCOL
from navio.kubelet.streams.portforward import PortForwardSession
from navio.runtime.protocol import ContainerStatus, Runtime, RuntimeFailure, SandboxInfo

__all__ = ["KubeletHost", "KubeletServer", "LogTargetError", "log_container_id", "serve"]

log = logging.getLogger(__name__)


class LogTargetError(Exception):
    """The container's logs cannot be served (the message is the kubelet's)."""


class KubeletHost(Protocol):
    runtime: Runtime

    def find_pod(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def pods(self) -> list[dict[str, Any]]: ...
    def pod_status(self, pod: dict[str, Any]) -> dict[str, Any]: ...
    def sandbox_of(self, pod: dict[str, Any]) -> SandboxInfo | None: ...
    async def container_by_id(self, container_id: str) -> ContainerStatus | None: ...


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


def _container_spec(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod.get("spec") or {}
    for c in (*(spec.get("containers") or ()), *(spec.get("initContainers") or ()),
              *(spec.get("ephemeralContainers") or ())):
        if c.get("name") == name:
            return dict(c)
    return {}


def _flag(query: Any, *names: str) -> bool:
    for n in names:
        v = query.get(n)
        if v is not None:
            return v.lower() in ("1", "true", "yes")
    return False


def _int(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        n = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"invalid {name}: {raw!r}") from None
    if n < 0:
        raise web.HTTPBadRequest(text=f"{name} must not be negative")
    return n


def _container_id(status_entry: dict[str, Any] | None, key: str = "containerID") -> str:
    raw = str((status_entry or {}).get(key) or "")
    return raw.split("://", 1)[1] if "://" in raw else raw


def log_container_id(pod: dict[str, Any], status: dict[str, Any], container: str,
                     previous: bool) -> str:
    """kubelet validateContainerLogStatus: which container instance to read, or why none."""
    name = (pod.get("metadata") or {}).get("name")
    entries = [*(status.get("containerStatuses") or ()),
               *(status.get("initContainerStatuses") or ()),
               *(status.get("ephemeralContainerStatuses") or ())]
    entry = next((e for e in entries if e.get("name") == container), None)
    if entry is None:
        raise LogTargetError(f'container "{container}" in pod "{name}" is not available')
    state, last = entry.get("state") or {}, (entry.get("lastState") or {}).get("terminated")
    if previous:
        if not last or not last.get("containerID"):
            raise LogTargetError(f'previous terminated container "{container}" in pod '
                                 f'"{name}" not found')
        return _container_id(last)
    if "running" in state:
        return _container_id(entry)
    if "terminated" in state:
        cid = _container_id(state["terminated"]) or _container_id(entry)
        if not cid:
            if last and last.get("containerID"):
                return _container_id(last)
            raise LogTargetError(f'container "{container}" in pod "{name}" is terminated')
        return cid
    if last:
        if not last.get("containerID"):
            raise LogTargetError(f'container "{container}" in pod "{name}" is terminated')
        return _container_id(last)
    if "waiting" in state:
        reason = (state["waiting"] or {}).get("reason", "")
        raise LogTargetError(f'container "{container}" in pod "{name}" is waiting to start: '
                             f"{reason}")
    raise LogTargetError(f'container "{container}" in pod "{name}" is waiting to start - no '
                         "logs yet")


class KubeletServer:
    def __init__(self, host: KubeletHost, *, node_name: str = "") -> None:
        self.host = host
        self.node_name = node_name
        self.app = web.Application(middlewares=[self._auth])
        r = self.app.router
        r.add_get("/healthz", self._healthz)
        r.add_get("/pods", self._pods)
        r.add_get("/stats/summary", self._summary)
        r.add_get("/metrics", self._metrics)
        metrics.register_node(node_name, lambda: sum(
            1 for p in host.pods() if host.sandbox_of(p) is not None))
        r.add_get("/containerLogs/{ns}/{pod}/{container}", self._logs)
        for verb in ("exec", "attach"):
            for path in (f"/{verb}/{{ns}}/{{pod}}/{{container}}",
                         f"/{verb}/{{ns}}/{{pod}}/{{uid}}/{{container}}"):
                r.add_route("GET", path, self._exec if verb == "exec" else self._attach)
                r.add_route("POST", path, self._exec if verb == "exec" else self._attach)
        for path in ("/portForward/{ns}/{pod}", "/portForward/{ns}/{pod}/{uid}"):
            r.add_route("GET", path, self._portforward)
            r.add_route("POST", path, self._portforward)

    @web.middleware
    async def _auth(self, request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        user, groups = tls.peer_identity(peer)
        if not tls.authorize(user, groups):
            sub = request.path.strip("/").split("/", 1)[0] or "proxy"
            verb = "create" if request.method == "POST" else "get"
            return web.Response(status=403, text=f"Forbidden (user={user}, verb={verb}, "
                                                 f"resource=nodes, subresource={sub})")
        try:
            return await handler(request)
        except web.HTTPBadRequest as exc:
            return _status(400, "BadRequest", exc.text or "bad request")

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(),
                            headers={"Content-Type": "text/plain; version=0.0.4; "
                                                     "charset=utf-8"})

    async def _pods(self, request: web.Request) -> web.Response:
        items = [{**p, "status": self.host.pod_status(p)} for p in self.host.pods()]
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _summary(self, request: web.Request) -> web.Response:
        body = await summary(self.host, self.node_name)
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _pod(self, request: web.Request) -> dict[str, Any]:
        ns, name = request.match_info["ns"], request.match_info["pod"]
        pod = self.host.find_pod(ns, name)
        uid = request.match_info.get("uid")
        if pod is None or (uid and (pod.get("metadata") or {}).get("uid") != uid):
            raise _NotFound(f'pods "{name}" not found')
        return pod

    async def _running(self, cid: str) -> bool:
        status = await self.host.container_by_id(cid)
        return status is not None and status.state == "running"

    # ---- logs ---------------------------------------------------------------------------

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        since = None
        if q.get("sinceSeconds"):
            since = time.time() - (_int(q, "sinceSeconds") or 0)
        elif q.get("sinceTime"):
            since = parse_timestamp(q["sinceTime"])
            if since is None:
                raise web.HTTPBadRequest(text=f"invalid sinceTime: {q['sinceTime']!r}")
        opts = LogOptions(follow=_flag(q, "follow"), tail_lines=_int(q, "tailLines"),
                          timestamps=_flag(q, "timestamps"), since=since,
                          limit_bytes=_int(q, "limitBytes"))
        try:
            pod = self._pod(request)
            cid = log_container_id(pod, self.host.pod_status(pod),
                                   request.match_info["container"], _flag(q, "previous"))
        except _NotFound as exc:
            return _status(404, "NotFound", str(exc))
        except LogTargetError as exc:
            return _status(400, "BadRequest", str(exc))
        status = await self.host.container_by_id(cid)
        path = status.log_path if status else await self.host.runtime.log_path(cid)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if path:
            await stream_log(path, opts, resp.write, lambda: self._running(cid))
        await resp.write_eof()
        return resp

    # ---- exec / attach ------------------------------------------------------------------

    async def _target(self, request: web.Request) -> tuple[dict[str, Any], str]:
        pod = self._pod(request)
        container = request.match_info["container"]
        status = self.host.pod_status(pod)
        entries = [*(status.get("containerStatuses") or ()),
                   *(status.get("initContainerStatuses") or ()),
                   *(status.get("ephemeralContainerStatuses") or ())]
        entry = next((e for e in entries if e.get("name") == container), None)
        if entry is None or "running" not in (entry.get("state") or {}):
            raise _Unavailable(f'container "{container}" in pod '
                               f'"{request.match_info["pod"]}" is not running')
        return pod, _container_id(entry)

    async def _upgrade(self, request: web.Request, protocols: tuple[str, ...]
                       ) -> web.WebSocketResponse | web.Response:
        ws = web.WebSocketResponse(protocols=protocols, max_msg_size=0, autoping=True)
        if not ws.can_prepare(request).ok:
            return _status(400, "BadRequest", "Upgrade request required")
        await ws.prepare(request)
        return ws

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        command = q.getall("command", [])
        stdin, tty = _flag(q, "input", "stdin"), _flag(q, "tty")
        stdout, stderr = _flag(q, "output", "stdout"), _flag(q, "error", "stderr")
        ws = await self._upgrade(request, channel.PROTOCOLS)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        try:
            _, cid = await self._target(request)
            if not command:
                raise _Unavailable("you must specify at least one command for the container")
            session = await self.host.runtime.exec(cid, list(command), stdin=stdin, tty=tty)
        except (_NotFound, _Unavailable) as exc:
            await remotecommand.serve_error(ws, str(exc))
            return ws
        except RuntimeFailure as exc:
            await remotecommand.serve_error(ws, f"error executing command in container: {exc}")
            return ws
        log.info("exec started", extra={"pod": f"{request.match_info['ns']}/"
                                               f"{request.match_info['pod']}",
                                        "container": request.match_info["container"],
                                        "tty": tty})
        await remotecommand.serve_exec(ws, session, stdout=stdout, stderr=stderr, tty=tty)
        return ws

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        stdin, tty = _flag(q, "input", "stdin"), _flag(q, "tty")
        ws = await self._upgrade(request, channel.PROTOCOLS)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        try:
            pod, cid = await self._target(request)
        except (_NotFound, _Unavailable) as exc:
            await remotecommand.serve_error(ws, str(exc))
            return ws
        status = await self.host.container_by_id(cid)
        path = status.log_path if status else None
        if not path:
            await remotecommand.serve_error(ws, "the container has no output to attach to")
            return ws
        spec = _container_spec(pod, request.match_info["container"])
        tty = tty and bool(spec.get("tty"))
        session = None
        if stdin or tty:   # (input only reaches a container that keeps its stdin open)
            try:
                session = await self.host.runtime.attach(
                    cid, stdin=stdin and bool(spec.get("stdin")), tty=tty)
            except RuntimeFailure as exc:
                await remotecommand.serve_error(ws, f"error attaching to container: {exc}")
                return ws

        async def follow(emit: Callable[[str, bytes], Awaitable[None]]) -> None:
            await follow_new(path, emit, lambda: self._running(cid))

        await remotecommand.serve_output(ws, follow, session=session, tty=tty)
        return ws

    # ---- port-forward -------------------------------------------------------------------

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        try:
            pod = self._pod(request)
        except _NotFound as exc:
            return _status(404, "NotFound", str(exc))
        sandbox = self.host.sandbox_of(pod)
        if sandbox is None:
            return _status(400, "BadRequest", f'pod "{request.match_info["pod"]}" has no '
                                              "running sandbox to forward to")
        ws = await self._upgrade(request, (PORTFORWARD_PROTOCOL,))
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        meta = pod.get("metadata") or {}
        session = PortForwardSession(
            ws, lambda port: self.host.runtime.port_forward(sandbox.id, port),
            pod=str(meta.get("name")), uid=str(meta.get("uid")))
        await session.run()
        if not ws.closed:
            await ws.close()
        return ws


class _NotFound(Exception):
    pass


class _Unavailable(Exception):
    pass


async def serve(app: web.Application, address: str, port: int, ssl_ctx: Any,
                ) -> tuple[web.AppRunner, int]:
    """Start the HTTPS listener; returns the runner and the bound port."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, address, port, ssl_context=ssl_ctx, reuse_address=True)
    await site.start()
    server = getattr(site, "_server", None)     # aiohttp keeps the asyncio server here
    bound = port
    if server is not None and getattr(server, "sockets", None):
        bound = int(server.sockets[0].getsockname()[1])
    return runner, bound
