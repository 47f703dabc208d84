"""Calling an HTTPS webhook the way kube-apiserver does: admission webhooks now, CRD
conversion webhooks later.

A `clientConfig` names the webhook either by `url` (used as written) or by
`service{namespace, name, path, port}`. kube-apiserver dials a service by its DNS name
(`<name>.<namespace>.svc`) through the cluster network, or, with
`--enable-aggregator-routing`, straight to one of its ready endpoints. navio's API server runs
on the host, outside the pod network's DNS and (without root) outside any service routing, so
it always does the latter: the Service's EndpointSlices (label `kubernetes.io/service-name`)
give a ready endpoint whose port is the one named like the service port the reference selects
(`port`, default 443). A pod IP is what the host can reach when the node's pod network is up;
a ClusterIP is only reachable where the proxy's rules apply to host traffic, so it is not
used. TLS is verified against the service's DNS name, as upstream's `ServerName`, and the
messages name the `https://<name>.<namespace>.svc:<port><path>` URL kube would show.

TLS follows navio's policy (`navio.pki.tlspolicy`: TLS 1.2+, ECDHE+AEAD) and verifies the
server against `caBundle` (PEM, base64 on the wire), or the system roots when it is empty.
Every call is one JSON POST bounded by its timeout; kube adds `?timeout=<n>s` so the webhook
knows its budget, and so does this client. Failures raise `WebhookCallError` whose text is what
Go's HTTP client would say (`Post "URL": dial tcp 127.0.0.1:1: connect: connection refused`,
`… context deadline exceeded`, `… tls: failed to verify certificate: x509: certificate signed
by unknown authority`); callers prefix it as their upstream does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import random
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

import aiohttp
import orjson

from navio.pki import tlspolicy

if TYPE_CHECKING:
    from navio.apiserver.resources import Resources

__all__ = ["WebhookClient", "WebhookCallError", "Target", "EndpointResolver",
           "ResolveError", "timeout_param"]

_MAX_RESPONSE = 3 << 20
_USER_AGENT = "kube-apiserver-admission"


class WebhookCallError(Exception):
    """The webhook could not be called or answered badly; str() is Go's wording.
    `status_code`, when the webhook answered at all, is its HTTP status."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ResolveError(Exception):
    """A service reference that has nowhere to go (no service, port or ready endpoint)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a clientConfig points: `url` as messages show it (no timeout parameter),
    `host`/`port` to dial, `server_name` to verify, `path` to post to."""
    url: str
    host: str
    port: int
    server_name: str
    path: str
    host_header: str


def timeout_param(seconds: float) -> str:
    """kube's `timeout` query value: whole seconds, rounded up (`10s`)."""
    return f"{max(1, math.ceil(seconds))}s"


class EndpointResolver:
    """Service reference → a ready endpoint, from the API server's own watch caches."""

    def __init__(self, resources: "Resources") -> None:
        self.resources = resources

    def _cache_objects(self, group: str, plural: str, namespace: str) -> list[dict[str, Any]]:
        kind = self.resources.registry.resource(group, "v1", plural)
        if kind is None:
            return []
        return [o for _, o in self.resources.cache(kind).list(namespace)]

    def resolve(self, namespace: str, name: str, port: int) -> tuple[str, int]:
        svc = next((s for s in self._cache_objects("", "services", namespace)
                    if s["metadata"]["name"] == name), None)
        if svc is None:
            raise ResolveError(f'services "{name}" not found')
        spec = svc.get("spec") or {}
        if spec.get("type", "ClusterIP") not in ("ClusterIP", "NodePort", "LoadBalancer"):
            raise ResolveError(f'unsupported service type "{spec.get("type")}"')
        svc_port = next((p for p in spec.get("ports") or () if p.get("port") == port), None)
        if svc_port is None:
            raise ResolveError(f'no service port {port} found for service "{name}"')
        port_name = svc_port.get("name") or ""
        candidates: list[tuple[str, int]] = []
        for sl in self._cache_objects("discovery.k8s.io", "endpointslices", namespace):
            labels = (sl.get("metadata") or {}).get("labels") or {}
            if labels.get("kubernetes.io/service-name") != name:
                continue
            ports = [p for p in sl.get("ports") or () if (p.get("name") or "") == port_name
                     and p.get("port")]
            if not ports:
                continue
            for ep in sl.get("endpoints") or ():
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                for addr in ep.get("addresses") or ():
                    candidates.append((addr, int(ports[0]["port"])))
        if not candidates:
            raise ResolveError(f'no endpoints available for service "{name}"')
        return random.choice(candidates)


def _go_dial_error(host: str, port: int, exc: BaseException) -> str:
    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {addr}: connect: connection refused"
    text = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
    return f"dial tcp {addr}: connect: {text[:1].lower()}{text[1:]}"


def _go_tls_error(exc: ssl.SSLCertVerificationError, server_name: str) -> str:
    code = getattr(exc, "verify_code", 0)
    if code in (18, 19, 20, 21, 2):
        why = "x509: certificate signed by unknown authority"
    elif code == 62:
        why = f"x509: certificate is not valid for {server_name}"
    elif code in (9, 10):
        why = "x509: certificate has expired or is not yet valid"
    else:
        why = f"x509: {getattr(exc, 'verify_message', '') or exc}"
    return f"tls: failed to verify certificate: {why}"


def _http_status_error(status: int, body: bytes) -> str:
    """client-go's error for a non-2xx reply: the Status it carries, or a generic one."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status" and decoded.get("message"):
        return str(decoded["message"])
    text = body.decode("utf-8", "replace").strip()
    if status == 404:
        return "the server could not find the requested resource"
    if text and status >= 500:
        return f'an error on the server ("{text[:1024]}") has prevented the request from ' \
               f"succeeding"
    return f"the server responded with the status code {status} but did not return more " \
           f"information"


class WebhookClient:
    """One aiohttp session (made on first use) shared by every webhook call of a server."""

    def __init__(self, resolver: Callable[[str, str, int], tuple[str, int]] | None = None
                 ) -> None:
        self.resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ssl(self, ca_bundle: str | None) -> ssl.SSLContext:
        key = ca_bundle or ""
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = tlspolicy.apply_policy(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
            ctx.set_alpn_protocols(["http/1.1"])
            if key:
                try:
                    pem = base64.b64decode(key, validate=True).decode("ascii")
                    ctx.load_verify_locations(cadata=pem)
                except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError):
                    raise WebhookCallError("unable to load root certificates: unable to parse "
                                           "bytes as PEM block") from None
            else:
                ctx.load_default_certs()
            if len(self._contexts) > 256:
                self._contexts.clear()
            self._contexts[key] = ctx
        return ctx

    @staticmethod
    def display_url(client_config: dict[str, Any]) -> str:
        """The URL messages name: the `url`, or `https://<name>.<namespace>.svc:<port><path>`."""
        if client_config.get("url"):
            return str(client_config["url"])
        svc = client_config.get("service") or {}
        return (f"https://{svc.get('name', '')}.{svc.get('namespace', '')}.svc:"
                f"{int(svc.get('port') or 443)}{svc.get('path') or '/'}")

    def target(self, client_config: dict[str, Any]) -> Target:
        """Where `client_config` points (resolving a service reference now); ResolveError
        when a service reference has nowhere to go."""
        url = client_config.get("url")
        if url:
            u = urlsplit(url)
            host = u.hostname or ""
            return Target(url, host, u.port or 443, host, u.path or "/", u.netloc)
        svc = client_config.get("service") or {}
        name, namespace = svc.get("name", ""), svc.get("namespace", "")
        port = int(svc.get("port") or 443)
        server_name = f"{name}.{namespace}.svc"
        if self.resolver is None:
            raise ResolveError("service references cannot be resolved here")
        host, ep_port = self.resolver(namespace, name, port)
        return Target(self.display_url(client_config), host, ep_port, server_name,
                      svc.get("path") or "/", f"{server_name}:{port}")

    async def post(self, client_config: dict[str, Any], body: Any, timeout: float
                   ) -> Any:
        """POST `body` as JSON; the decoded JSON reply. Raises WebhookCallError."""
        loop_deadline = asyncio.get_running_loop().time() + timeout
        tp = timeout_param(timeout)
        shown = f"{self.display_url(client_config)}?timeout={tp}"
        try:
            target = self.target(client_config)
        except ResolveError as exc:
            raise WebhookCallError(f'Post "{shown}": {exc}') from None
        ctx = self._ssl(client_config.get("caBundle"))
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=10),
                auto_decompress=True)
        host = f"[{target.host}]" if ":" in target.host else target.host
        dial_url = f"https://{host}:{target.port}{target.path}"
        headers = {"Content-Type": "application/json", "Accept": "application/json, */*",
                   "User-Agent": _USER_AGENT, "Host": target.host_header}
        data = orjson.dumps(body)
        try:
            async with asyncio.timeout_at(loop_deadline):
                async with self._session.post(
                        dial_url, params={"timeout": tp}, data=data, headers=headers,
                        ssl=ctx, server_hostname=target.server_name,
                        allow_redirects=False) as resp:
                    raw = await resp.content.read(_MAX_RESPONSE + 1)
                    status = resp.status
        except TimeoutError:
            raise WebhookCallError(f'Post "{shown}": context deadline exceeded') from None
        except aiohttp.ClientConnectorCertificateError as exc:
            cert_error = exc.certificate_error
            why = _go_tls_error(cert_error, target.server_name) \
                if isinstance(cert_error, ssl.SSLCertVerificationError) else str(cert_error)
            raise WebhookCallError(f'Post "{shown}": {why}') from None
        except aiohttp.ClientConnectorError as exc:
            raise WebhookCallError(f'Post "{shown}": '
                                   f'{_go_dial_error(target.host, target.port, exc.os_error)}'
                                   ) from None
        except (aiohttp.ClientError, OSError) as exc:
            text = str(exc) or type(exc).__name__
            raise WebhookCallError(f'Post "{shown}": {text}') from None
        if status < 200 or status > 299:
            raise WebhookCallError(_http_status_error(status, raw), status)
        if len(raw) > _MAX_RESPONSE:
            raise WebhookCallError("the webhook response is too large", status)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise WebhookCallError(f"couldn't get version/kind; json parse error: {exc}",
                                   status) from None
