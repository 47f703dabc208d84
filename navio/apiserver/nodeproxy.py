"""Pod logs, exec, attach and port-forward: requests the node's kubelet serves.

The API server finds the pod's node and forwards the request to that node's kubelet API
(`status.daemonEndpoints.kubeletEndpoint.Port` on the node's InternalIP), as kube-apiserver
does: `pods/log` streams `/containerLogs/<ns>/<pod>/<container>`; `pods/exec`, `pods/attach`
and `pods/portforward` accept kubectl's WebSocket upgrade here and bridge every message to a
WebSocket opened to the kubelet's `/exec`, `/attach` or `/portForward` with the same
subprotocol (v5/v4.channel.k8s.io, SPDY/3.1+portforward.k8s.io), so the bytes are untouched.

Guarantees:
- The kubelet is reached over TLS with the API server's kubelet-client certificate, and its
  serving certificate is verified against the cluster CA (`configure` hands both over;
  without it these requests fail with 503 and say why).
- Validation and messages follow kube-apiserver (pkg/registry/core/pod/strategy.go): a pod
  without a node is a 400 `pod <p> does not have a host assigned`; an unknown container or
  an ambiguous one is a 400 (`container c is not valid for pod p`, `a container name must be
  specified for pod p, choose one of: [a b]`).
- Kubelet errors keep their code and message; an unreachable kubelet is a 503 `error dialing
  backend: ...`. Closing either WebSocket closes the other with the same code.
- A request without a WebSocket upgrade (kubectl's SPDY fallback) gets the same validation
  errors, else 400 `Upgrade request required`.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from navio.api import errors
from navio.api.registry import Kind
from navio.apiserver.requestinfo import RequestInfo
from navio.pki import tlspolicy
from navio.pki.certs import CertificateAuthority
from navio.pki.kubeletclient import ensure_kubelet_client_cert

if TYPE_CHECKING:
    from navio.apiserver.handlers import ResourceHandlers

__all__ = ["proxy", "kubelet_endpoint", "configure", "configure_with_ca", "KubeletClientTLS",
           "KUBELET_CLIENT"]

_LOG_PARAMS = ("follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime",
               "limitBytes")
_CONNECT_TIMEOUT = 10.0
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class KubeletClientTLS:
    """The cluster CA (to verify kubelets) and the API server's kubelet-client cert/key."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    _ctx: list[ssl.SSLContext] = field(default_factory=list, repr=False, compare=False)

    def ssl_context(self) -> ssl.SSLContext:
        if not self._ctx:
            ctx = tlspolicy.apply_policy(ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file)))
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
            self._ctx.append(ctx)
        return self._ctx[0]


KUBELET_CLIENT = web.AppKey("navio.kubelet_client", KubeletClientTLS)


def configure(app: web.Application, client_tls: KubeletClientTLS) -> None:
    """Give the API server its kubelet credentials (before the app starts)."""
    app[KUBELET_CLIENT] = client_tls


def configure_with_ca(app: web.Application, ca: CertificateAuthority) -> None:
    """`configure` with the cluster CA and its `apiserver-kubelet-client` certificate (made
    in the CA's directory if missing). Call before the app starts."""
    pair = ensure_kubelet_client_cert(ca, ca.pair.cert.parent)
    configure(app, KubeletClientTLS(ca.pair.cert, pair.cert, pair.key))


async def kubelet_endpoint(h: "ResourceHandlers", node_name: str) -> tuple[str, int]:
    """The (host, port) of a node's kubelet API; 503 if the node does not publish one."""
    node_kind = h.resources.registry.resource("", "v1", "nodes")
    assert node_kind is not None
    node = await h.resources.get(node_kind, "", node_name)
    status = node.get("status", {})
    port = (status.get("daemonEndpoints", {}).get("kubeletEndpoint") or {}).get("Port")
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses", ())}
    host = addresses.get("InternalIP") or addresses.get("Hostname")
    if not port or not host:
        raise errors.ServiceUnavailable(f'node "{node_name}" publishes no kubelet endpoint')
    return host, int(port)


def _names(containers: list[dict[str, Any]]) -> str:
    return " ".join(str(c.get("name")) for c in containers)


def _container(pod: dict[str, Any], requested: str, name: str, *, for_logs: bool) -> str:
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or ())
    inits = list(spec.get("initContainers") or ())
    ephemeral = list(spec.get("ephemeralContainers") or ())
    if requested:
        if not any(c.get("name") == requested for c in (*containers, *inits, *ephemeral)):
            raise errors.BadRequest(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return str(containers[0].get("name"))
    if not containers:
        raise errors.BadRequest(f"a container name must be specified for pod {name}")
    if for_logs:
        message = f"a container name must be specified for pod {name}, choose one of: " \
                  f"[{_names(containers)}]"
        if inits:
            message += f" or one of the init containers: [{_names(inits)}]"
    else:
        message = f"a container name must be specified for pod {name}, choose one of: " \
                  f"[{_names(containers)}]"
    raise errors.BadRequest(message)


def _error_from(status: int, body: bytes, fallback: str) -> errors.ApiError:
    message = fallback
    try:
        data = orjson.loads(body)
        if isinstance(data, dict) and data.get("message"):
            message = str(data["message"])
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        if text:
            message = text
    if status == 404:
        return errors.NotFound(message)
    if status == 400:
        return errors.BadRequest(message)
    if status == 403:
        return errors.Forbidden(message)
    return errors.InternalError(message)


async def proxy(h: "ResourceHandlers", request: web.Request, info: RequestInfo,
                kind: Kind) -> web.StreamResponse:
    sub = info.subresource
    if kind.kind != "Pod" or sub == "proxy":
        raise errors.ServiceUnavailable(f"{kind.plural}/{sub} is not served yet")
    pod = await h.resources.get(kind, info.namespace, info.name)
    q = request.query
    if sub != "log":
        # CONNECT admission, before the pod's node is looked for, as kube's connecter runs
        # it: webhooks see the options object.
        from navio.apiserver.resources import WriteOptions
        await h.resources.webhooks.connect(kind, info.namespace, info.name, sub,
                                           _connect_options(sub, q),
                                           WriteOptions(user=request.get("user")))
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.BadRequest(f"pod {info.name} does not have a host assigned")
    ns, name = quote(info.namespace, safe=""), quote(info.name, safe="")
    params: list[tuple[str, str]]
    if sub == "log":
        container = _container(pod, q.get("container", ""), info.name, for_logs=True)
        path = f"/containerLogs/{ns}/{name}/{quote(container, safe='')}"
        params = [(k, q[k]) for k in _LOG_PARAMS if k in q]
    elif sub in ("exec", "attach"):
        container = _container(pod, q.get("container", ""), info.name, for_logs=False)
        path = f"/{sub}/{ns}/{name}/{quote(container, safe='')}"
        params = [("command", c) for c in q.getall("command", [])] if sub == "exec" else []
        for ours, theirs in (("stdin", "input"), ("stdout", "output"), ("stderr", "error"),
                             ("tty", "tty")):
            if q.get(ours, "").lower() in ("1", "true"):
                params.append((theirs, "1"))
    else:
        path, params = f"/portForward/{ns}/{name}", [("port", p) for p in q.getall("ports", [])]
    client_tls = request.app.get(KUBELET_CLIENT)
    if client_tls is None:
        raise errors.ServiceUnavailable("the API server has no kubelet client credentials: "
                                        f"pods/{sub} cannot be served")
    host, port = await kubelet_endpoint(h, node)
    url = f"https://{host}:{port}{path}" if ":" not in host else f"https://[{host}]:{port}{path}"
    if sub == "log":
        return await _logs(request, url, params, client_tls)
    return await _bridge(request, url, params, client_tls)


def _connect_options(sub: str, q: Any) -> dict[str, Any]:
    """PodExecOptions / PodAttachOptions / PodPortForwardOptions from the query, in Go's
    field order with its omitempty rules."""
    if sub == "portforward":
        out: dict[str, Any] = {"kind": "PodPortForwardOptions", "apiVersion": "v1"}
        ports = [int(p) for p in q.getall("ports", []) if str(p).isdigit()]
        if ports:
            out["ports"] = ports
        return out
    out = {"kind": "PodExecOptions" if sub == "exec" else "PodAttachOptions",
           "apiVersion": "v1"}
    for flag in ("stdin", "stdout", "stderr", "tty"):
        if q.get(flag, "").lower() in ("1", "true"):
            out[flag] = True
    if q.get("container"):
        out["container"] = q["container"]
    if sub == "exec":
        out["command"] = q.getall("command", [])
    return out


def _session(client_tls: KubeletClientTLS) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_tls.ssl_context()))


async def _logs(request: web.Request, url: str, params: Any,
                client_tls: KubeletClientTLS) -> web.StreamResponse:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT, sock_read=None)
    async with _session(client_tls) as session:
        try:
            upstream = await session.get(url, params=params, timeout=timeout)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise errors.ServiceUnavailable(f"error dialing backend: {exc}") from None
        async with upstream:
            if upstream.status != 200:
                raise _error_from(upstream.status, await upstream.read(),
                                  f"the kubelet answered {upstream.status}")
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except (aiohttp.ClientError, ConnectionError):
                pass
            await resp.write_eof()
            return resp


def _wire_code(code: int | None) -> int | None:
    """A close code that may be sent in a close frame (RFC 6455 §7.4; 1005/1006/1015 are
    reserved for reporting, and gorilla/websocket rejects them)."""
    if code is None or not (1000 <= code <= 1003 or 1007 <= code <= 1011
                            or 3000 <= code <= 4999):
        return None
    return code


async def _pipe(src: Any, dst: Any) -> None:
    async for msg in src:
        if msg.type == WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif msg.type == WSMsgType.TEXT:
            await dst.send_str(msg.data)


async def _bridge(request: web.Request, url: str, params: Any,
                  client_tls: KubeletClientTLS) -> web.StreamResponse:
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
               if p.strip()]
    async with _session(client_tls) as session:
        try:
            upstream = await session.ws_connect(
                url, params=params, protocols=offered, max_msg_size=0, autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
        except aiohttp.WSServerHandshakeError as exc:
            raise _error_from(exc.status, b"", f"error dialing backend: {exc.message}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise errors.ServiceUnavailable(f"error dialing backend: {exc}") from None
        async with upstream:
            if request.headers.get("Upgrade", "").lower() != "websocket":
                # kubectl's SPDY fallback: the kubelet is reachable, but only over WebSocket.
                raise errors.BadRequest("Upgrade request required")
            ws = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol
                                       else (), max_msg_size=0, autoping=True)
            await ws.prepare(request)
            tasks = {asyncio.ensure_future(_pipe(ws, upstream)),
                     asyncio.ensure_future(_pipe(upstream, ws))}
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                code = _wire_code(upstream.close_code) or _wire_code(ws.close_code) or 1000
                await upstream.close(code=code)
                await ws.close(code=code)
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return ws
