"""The REST client every navio component uses to reach the API server.

Why: components talk to the API server only over HTTPS, as client-go's rest.RESTClient and
dynamic client do, so that each can run anywhere and any Kubernetes server could stand in.

What is guaranteed:
- Every request waits for a token of a client-wide bucket (default 50 qps, burst 100; qps 0
  disables it), as client-go's flowcontrol throttle does, watches included.
- Every request is bounded by a timeout (default 30 s); a watch has a connect and header
  timeout but no read timeout, since a quiet watch is healthy (the server ends it at
  `timeoutSeconds`).
- A non-2xx reply raises the matching `navio.api.errors` exception (see `status.py`). A reply
  that did not arrive raises `TransportError`.
- 429, and 5xx with `Retry-After`, are retried after the advised delay (at most 10 s, at most
  10 times), as client-go's request.go `checkWait` does; a GET is also retried once when a
  pooled keep-alive connection turns out to be dead (a restarted server). Nothing else is
  retried, so a create is never sent twice after an answer.
- With several API servers (`ClientConfig.endpoints`), a request whose connection could not be
  opened (nothing was sent) goes to the next server at once, whatever its method; after any
  other transport failure the next request goes to the next server. So a component keeps
  working while one API server of an HA control plane is down.
- Requests share at most `max_connections` (64) pooled keep-alive connections, kept open
  for a minute: a burst of thousands of concurrent calls queues in the client instead of
  opening (and later closing) a TLS connection each, which cost the server more than the
  requests did (client-go multiplexes over one HTTP/2 connection to the same end). Watches
  use connections of their own, outside that pool, since each holds one for its lifetime.
- Bodies and credentials are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Literal

import aiohttp
import orjson

import navio
from navio.client.kubeconfig import ClientConfig, load_kubeconfig
from navio.client.metrics import observe_request
from navio.client.ratelimit import TokenBucket
from navio.client.resources import ResourceRef
from navio.client.status import error_from_response
from navio.client.watch import WatchStream

__all__ = ["Client", "TransportError", "PatchType"]

log = logging.getLogger(__name__)

PatchType = Literal["merge", "strategic", "json", "apply"]
_PATCH_CONTENT = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
_JSON = "application/json"
_MAX_RETRIES = 10
_MAX_RETRY_AFTER = 10.0
_STALE_CONNECTION = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


class TransportError(ConnectionError):
    """No HTTP answer: the server was unreachable, the connection broke, or it timed out."""


def _params(**kw: Any) -> dict[str, str]:
    out = {}
    for k, v in kw.items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    if resp.status != 429 and not 500 <= resp.status < 600:
        return None
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER)
    except ValueError:
        return None


class Client:
    """An async API client; use as `async with Client.from_kubeconfig(path) as c:`."""

    def __init__(self, config: ClientConfig, *, component: str = "client", qps: float = 50.0,
                 burst: int = 100, timeout: float = 30.0, connect_timeout: float = 10.0,
                 max_connections: int = 64) -> None:
        self.config = config
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.user_agent = f"navio-{component}/{navio.__version__}"
        self._bucket = TokenBucket(qps, burst)
        self._ssl = config.ssl_context()
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self._closed = False
        self._endpoints = config.endpoints
        self._current = 0          # index into _endpoints of the server in use
        self._host = config.server.split("://", 1)[-1].split("/", 1)[0]

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], *, context: str | None = None,
                        **kw: Any) -> "Client":
        return cls(load_kubeconfig(path, context), **kw)

    async def __aenter__(self) -> "Client":
        self._get_session()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def reload_client_certificate(self, cert_pem: bytes, key_pem: bytes) -> None:
        """Use a new client certificate (a rotated one) for connections opened from now on;
        open ones keep the old, still valid, certificate until they close."""
        from navio.client.kubeconfig import _load_cert_chain
        _load_cert_chain(self._ssl, cert_pem, key_pem)

    async def close(self) -> None:
        """Close every connection; safe to repeat. A closed client stays closed: a request
        that comes after (a straggling task during shutdown) fails instead of quietly opening
        a new session that nothing would close."""
        self._closed = True
        sessions = (self._session, self._watch_session)
        self._session = self._watch_session = None
        for session in sessions:
            if session is not None:
                await session.close()

    def _get_session(self, watch: bool = False) -> aiohttp.ClientSession:
        if self._closed:
            raise TransportError("the client is closed")
        session = self._watch_session if watch else self._session
        if session is None or session.closed:
            # Requests: a bounded pool of long-lived connections. Watches: no limit, each
            # holds its connection (HTTP/1.1) for as long as it lasts.
            limit = 0 if watch else self.max_connections
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=limit, limit_per_host=limit,
                                             keepalive_timeout=60.0)
            session = aiohttp.ClientSession(connector=connector,
                                            headers={"User-Agent": self.user_agent})
            if watch:
                self._watch_session = session
            else:
                self._session = session
        return session

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": _JSON}
        if content_type:
            headers["Content-Type"] = content_type
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _send(self, method: str, path: str, params: dict[str, str] | None,
                    data: bytes | None, content_type: str | None,
                    timeout: aiohttp.ClientTimeout, *, watch: bool = False
                    ) -> aiohttp.ClientResponse:
        session = self._get_session(watch)
        extra = {}
        if self.config.tls_server_name:
            extra["server_hostname"] = self.config.tls_server_name
        tries = len(self._endpoints)
        while True:
            current = self._current
            try:
                return await session.request(method, self._endpoints[current] + path,
                                             params=params, data=data,
                                             headers=self._headers(content_type),
                                             timeout=timeout, **extra)
            except (aiohttp.ClientResponseError, aiohttp.InvalidURL):
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                tries -= 1
                if len(self._endpoints) > 1:
                    self._fail_over(current, exc)
                    if tries > 0 and isinstance(exc, aiohttp.ClientConnectorError):
                        continue      # nothing was sent: the next server may take it
                raise TransportError(f"{method} {path}: {type(exc).__name__}") from exc

    def _fail_over(self, failed: int, exc: BaseException) -> None:
        if self._current == failed:
            self._current = (failed + 1) % len(self._endpoints)
            log.warning("API server unreachable; failing over", extra={
                "server": self._endpoints[failed], "next": self._endpoints[self._current],
                "error": type(exc).__name__})

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = _JSON,
                      timeout: float | None = None) -> Any:
        """One request; the decoded JSON reply (`{}` when empty). Raises ApiError subclasses
        for non-2xx replies and TransportError when no reply arrived."""
        data = None if body is None else orjson.dumps(body)
        ctype = content_type if body is not None else None
        client_timeout = aiohttp.ClientTimeout(total=timeout or self.timeout,
                                               sock_connect=self.connect_timeout)
        stale_retry = method == "GET"
        attempt = 0
        while True:
            await self._bucket.wait()
            started = time.monotonic()
            try:
                resp = await self._send(method, path, params, data, ctype, client_timeout)
                async with resp:
                    raw = await resp.read()
            except (aiohttp.ClientError, TimeoutError, TransportError) as exc:
                observe_request(self._host, method, 0, time.monotonic() - started)
                cause = exc.__cause__ if isinstance(exc, TransportError) else exc
                if stale_retry and isinstance(cause, _STALE_CONNECTION):
                    stale_retry = False      # a pooled connection the server had closed
                    continue
                if isinstance(exc, TransportError):
                    raise
                raise TransportError(f"{method} {path}: {type(exc).__name__}") from exc
            observe_request(self._host, method, resp.status, time.monotonic() - started)
            if resp.status < 300:
                return orjson.loads(raw) if raw else {}
            delay = _retry_after(resp)
            if delay is not None and attempt < _MAX_RETRIES:
                attempt += 1
                log.debug("request retried", extra={"method": method, "path": path,
                                                    "status": resp.status, "delay": delay})
                await asyncio.sleep(delay)
                continue
            raise error_from_response(resp.status, raw)

    # ---- objects -----------------------------------------------------------------------

    @staticmethod
    def _ns(resource: ResourceRef, namespace: str | None, body: dict[str, Any] | None = None
            ) -> str | None:
        if not resource.namespaced:
            return None
        if namespace is None and body is not None:
            namespace = (body.get("metadata") or {}).get("namespace")
        return namespace

    @staticmethod
    def _name(body: dict[str, Any]) -> str:
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("object has no metadata.name")
        return str(name)

    async def get(self, resource: ResourceRef, name: str, namespace: str | None = None
                  ) -> dict[str, Any]:
        return await self.request("GET", resource.path(self._ns(resource, namespace), name))

    async def list(self, resource: ResourceRef, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None,
                   resource_version_match: str | None = None) -> dict[str, Any]:
        """One page of the collection (all namespaces when `namespace` is None)."""
        params = _params(labelSelector=label_selector, fieldSelector=field_selector,
                         limit=limit, resourceVersion=resource_version,
                         resourceVersionMatch=resource_version_match,
                         **{"continue": continue_ or None})
        return await self.request("GET", resource.path(self._ns(resource, namespace)),
                                  params=params)

    async def create(self, resource: ResourceRef, body: dict[str, Any],
                     namespace: str | None = None, *, field_manager: str | None = None,
                     dry_run: bool = False) -> dict[str, Any]:
        return await self.request(
            "POST", resource.path(self._ns(resource, namespace, body)), body=body,
            params=_params(fieldManager=field_manager, dryRun="All" if dry_run else None))

    async def update(self, resource: ResourceRef, body: dict[str, Any],
                     namespace: str | None = None, *, field_manager: str | None = None
                     ) -> dict[str, Any]:
        """PUT; with `metadata.resourceVersion` set, fails with Conflict when it is stale."""
        path = resource.path(self._ns(resource, namespace, body), self._name(body))
        return await self.request("PUT", path, body=body,
                                  params=_params(fieldManager=field_manager))

    async def update_status(self, resource: ResourceRef, body: dict[str, Any],
                            namespace: str | None = None) -> dict[str, Any]:
        return await self.update_subresource(resource, self._name(body), "status", body,
                                             self._ns(resource, namespace, body))

    async def patch(self, resource: ResourceRef, name: str, body: Any,
                    namespace: str | None = None, *, patch_type: PatchType = "merge",
                    field_manager: str | None = None, force: bool | None = None,
                    subresource: str | None = None) -> dict[str, Any]:
        """PATCH: `merge` (RFC 7386), `strategic`, `json` (RFC 6902, a list) or server-side
        `apply` (needs `field_manager`; `force` takes conflicting fields)."""
        if patch_type not in _PATCH_CONTENT:
            raise ValueError(f"unknown patch type {patch_type!r}")
        if patch_type == "apply" and not field_manager:
            raise ValueError("apply patches need a field_manager")
        path = resource.path(self._ns(resource, namespace), name, subresource)
        return await self.request("PATCH", path, body=body,
                                  content_type=_PATCH_CONTENT[patch_type],
                                  params=_params(fieldManager=field_manager, force=force))

    async def delete(self, resource: ResourceRef, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     propagation_policy: str | None = None,
                     preconditions: dict[str, str] | None = None) -> dict[str, Any]:
        """DELETE; returns the reply (the object while finalizers hold it, else a Status)."""
        options = _delete_options(grace_period_seconds, propagation_policy, preconditions)
        return await self.request("DELETE", resource.path(self._ns(resource, namespace), name),
                                  body=options)

    async def delete_collection(self, resource: ResourceRef, namespace: str | None = None, *,
                                label_selector: str | None = None,
                                field_selector: str | None = None,
                                grace_period_seconds: int | None = None,
                                propagation_policy: str | None = None) -> dict[str, Any]:
        options = _delete_options(grace_period_seconds, propagation_policy, None)
        return await self.request(
            "DELETE", resource.path(self._ns(resource, namespace)), body=options,
            params=_params(labelSelector=label_selector, fieldSelector=field_selector))

    # ---- subresources ------------------------------------------------------------------

    async def get_subresource(self, resource: ResourceRef, name: str, subresource: str,
                              namespace: str | None = None) -> dict[str, Any]:
        return await self.request(
            "GET", resource.path(self._ns(resource, namespace), name, subresource))

    async def create_subresource(self, resource: ResourceRef, name: str, subresource: str,
                                 body: dict[str, Any], namespace: str | None = None
                                 ) -> dict[str, Any]:
        """POST to a subresource, e.g. `pods/binding` or `pods/eviction`."""
        return await self.request(
            "POST", resource.path(self._ns(resource, namespace, body), name, subresource),
            body=body)

    async def update_subresource(self, resource: ResourceRef, name: str, subresource: str,
                                 body: dict[str, Any], namespace: str | None = None
                                 ) -> dict[str, Any]:
        return await self.request(
            "PUT", resource.path(self._ns(resource, namespace, body), name, subresource),
            body=body)

    async def patch_subresource(self, resource: ResourceRef, name: str, subresource: str,
                                body: Any, namespace: str | None = None, *,
                                patch_type: PatchType = "merge",
                                field_manager: str | None = None,
                                force: bool | None = None) -> dict[str, Any]:
        return await self.patch(resource, name, body, namespace, patch_type=patch_type,
                                field_manager=field_manager, force=force,
                                subresource=subresource)

    # ---- watch -------------------------------------------------------------------------

    def watch(self, resource: ResourceRef, namespace: str | None = None, *,
              resource_version: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, timeout_seconds: int | None = None,
              allow_bookmarks: bool = True) -> WatchStream:
        """Events after `resource_version` (from now, with synthetic ADDED events for the
        current objects, when None). Iterate it, or `async with` it to bound its life;
        `errors.Expired` at the start or mid-stream means: list again."""
        params = _params(watch="true", resourceVersion=resource_version,
                         labelSelector=label_selector, fieldSelector=field_selector,
                         timeoutSeconds=timeout_seconds,
                         allowWatchBookmarks=True if allow_bookmarks else None)
        path = resource.path(self._ns(resource, namespace))

        async def open_stream() -> aiohttp.ClientResponse:
            await self._bucket.wait()
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout,
                                            sock_read=None)
            try:
                # The reply's headers must come within the request timeout; the body may
                # then take as long as the watch lasts.
                async with asyncio.timeout(self.timeout):
                    resp = await self._send("GET", path, params, None, None, timeout,
                                            watch=True)
            except TimeoutError as exc:
                raise TransportError(f"GET {path}: watch not answered") from exc
            if resp.status >= 300:
                async with resp:
                    raw = await resp.read()
                raise error_from_response(resp.status, raw)
            return resp

        return WatchStream(open_stream)


def _delete_options(grace: int | None, propagation: str | None,
                    preconditions: dict[str, str] | None) -> dict[str, Any]:
    options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    if propagation is not None:
        options["propagationPolicy"] = propagation
    if preconditions:
        options["preconditions"] = dict(preconditions)
    return options
