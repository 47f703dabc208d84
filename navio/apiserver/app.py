"""The API server's aiohttp application: authentication, errors, and routing.

Every request passes one middleware that authenticates it (client certificates signed by the
cluster CA; anonymous only for health and version) and turns any failure into a Kubernetes
`Status`: typed API errors keep their code and reason, anything unexpected becomes a 500 whose
traceback is logged and never sent.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import ssl
from pathlib import Path
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from navio import KUBERNETES_VERSION, __version__
from navio.api import errors, openapi, openapi_proto
from navio.api.registry import Registry
from navio.apiserver import admissionnotes, discovery
from navio.apiserver.authn import UserInfo, authenticate
from navio.apiserver.authz import AUTHZ_KEY, Authorization, authorize_request
from navio.apiserver.handlers import ResourceHandlers, json_response, warning_header
from navio.apiserver.metrics import ApiMetrics
from navio.apiserver.requestinfo import parse_request
from navio.apiserver.resources import Resources
from navio.pki import tlspolicy
from navio.storage.protocol import StoreUnavailable

__all__ = ["ApiServer", "loggable_path", "tls_context", "version_info"]

log = logging.getLogger(__name__)

_PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})


def version_info() -> dict[str, str]:
    major, minor, _ = KUBERNETES_VERSION.lstrip("v").split(".")
    return {"major": major, "minor": minor, "gitVersion": f"{KUBERNETES_VERSION}+navio",
            "gitCommit": f"navio-{__version__}", "gitTreeState": "clean",
            "buildDate": "2026-11-25T00:00:00Z", "goVersion": f"python{platform.python_version()}",
            "compiler": "cpython", "platform": f"linux/{_arch()}"}


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def tls_context(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """The serving context, under navio's TLS policy (navio/pki/tlspolicy.py: TLS 1.2/1.3,
    ECDHE+AEAD only), that asks for (but does not require) a client certificate."""
    ctx = tlspolicy.server_context(cert, key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _noted(request: web.Request, resp: web.StreamResponse,
           notes: admissionnotes.Notes) -> web.StreamResponse:
    """Admission's warnings as `Warning: 299` headers and its annotations for the audit log."""
    for w in notes.warnings:
        resp.headers.add("Warning", warning_header(w))
    if notes.annotations:
        request.setdefault("audit_annotations", {}).update(notes.annotations)
    if notes.request_annotations:
        request.setdefault("audit_annotations_request", {}).update(notes.request_annotations)
    return resp


def loggable_path(path: str) -> str:
    """`path` for a log line: a secret's name is not logged (2019 audit finding)."""
    head, sep, _ = path.partition("/secrets/")
    return f"{head}/secrets/…" if sep else path


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiServer:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.registry: Registry = resources.registry
        self.handlers = ResourceHandlers(resources)
        self.metrics = ApiMetrics(resources)
        self.ready = False
        self._openapi_v3: dict[str, tuple[bytes, str]] = {}
        self._openapi_v2: bytes | None = None
        self._openapi_v2_proto: bytes | None = None
        self.app = web.Application(middlewares=[self._middleware], client_max_size=4 << 20)
        self.authz = self.app[AUTHZ_KEY] = Authorization(resources)
        self.app.router.add_route("*", "/{tail:.*}", self._route)

    # -- middleware ----------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        notes = admissionnotes.begin()
        try:
            user = authenticate(request)
            if user is None and request.path not in _PUBLIC_PATHS:
                raise errors.Unauthorized("Unauthorized")
            request["user"] = user or UserInfo("system:anonymous", ("system:unauthenticated",))
            await authorize_request(request)  # Node, then RBAC; may impersonate
            return _noted(request, await handler(request), notes)
        except errors.ApiError as exc:
            return _noted(request, json_response(errors.to_status(exc), exc.code), notes)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except web.HTTPException:
            raise
        except StoreUnavailable as exc:
            # kube-apiserver passes an etcd failure on as it is: 500, no reason, etcd's words.
            log.warning("storage unavailable", extra={"method": request.method,
                                                      "path": loggable_path(request.path),
                                                      "error": exc.message})
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Failure", "message": exc.message, "code": 500},
                                 500)
        except Exception:
            log.exception("request failed", extra={"method": request.method,
                                                   "path": loggable_path(request.path)})
            exc = errors.InternalError("an error on the server has prevented the request from "
                                       "succeeding")
            return json_response(errors.to_status(exc), 500)

    # -- routing -------------------------------------------------------------------------------
    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in ("/healthz", "/livez", "/readyz"):
            if path == "/readyz" and not self.ready:
                return web.Response(text="[-]informer-sync failed: not ready\nreadyz check "
                                         "failed\n", status=500)
            return web.Response(text="ok", content_type="text/plain")
        if path == "/version":
            return json_response(version_info())
        if path == "/metrics":
            if request.method not in ("GET", "HEAD"):
                raise errors.MethodNotAllowed("the server does not allow this method on the "
                                              "requested resource")
            return self.metrics.response()
        if path.startswith("/openapi/"):
            return self._openapi(request)
        info = parse_request(request.method, path, request.query)
        if info.is_resource:
            return await self.metrics.track(request, info,
                                            lambda: self.handlers.handle(request, info))
        if request.method != "GET":
            raise errors.MethodNotAllowed("the server does not allow this method on the "
                                          "requested resource")
        return self._discovery(request, path)

    def _discovery(self, request: web.Request, path: str) -> web.Response:
        parts = [p for p in path.split("/") if p]
        agg = discovery.wants_aggregated(request.headers.get("Accept"))
        if parts == ["api"]:
            if agg:
                return json_response(discovery.aggregated(self.registry, legacy=True,
                                                          version=agg),
                                     content_type=discovery.AGGREGATED_CONTENT_TYPE
                                     .replace("v=v2", f"v={agg}"))
            return json_response(discovery.api_versions(request.host))
        if parts == ["apis"]:
            if agg:
                return json_response(discovery.aggregated(self.registry, legacy=False,
                                                          version=agg),
                                     content_type=discovery.AGGREGATED_CONTENT_TYPE
                                     .replace("v=v2", f"v={agg}"))
            return json_response(discovery.api_group_list(self.registry))
        body: dict[str, Any] | None = None
        if len(parts) == 2 and parts[0] == "api":
            body = discovery.resource_list(self.registry, "", parts[1])
        elif len(parts) == 2 and parts[0] == "apis":
            body = discovery.api_group(self.registry, parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            body = discovery.resource_list(self.registry, parts[1], parts[2])
        elif not parts:
            body = {"paths": sorted({"/api", "/api/v1", "/apis", "/healthz", "/livez",
                                     "/readyz", "/version", "/openapi/v2", "/openapi/v3",
                                     "/metrics"}
                                    | {f"/apis/{g}" for g, _ in self.registry.groups() if g})}
        if body is None:
            raise errors.NotFound("the server could not find the requested resource")
        return json_response(body)

    def _openapi(self, request: web.Request) -> web.Response:
        path = request.path
        if path == "/openapi/v2":
            if openapi_proto.wants_protobuf(request.headers.get("Accept")):
                if self._openapi_v2_proto is None:
                    self._openapi_v2_proto = openapi_proto.encode(
                        openapi.v2_document(self.registry))
                return web.Response(body=self._openapi_v2_proto,
                                    headers={"Content-Type": openapi_proto.MEDIA_TYPE})
            if self._openapi_v2 is None:
                self._openapi_v2 = orjson.dumps(openapi.v2_document(self.registry))
            return web.Response(body=self._openapi_v2, content_type="application/json")
        if path == "/openapi/v3":
            return json_response(openapi.v3_index(self.registry))
        if path.startswith("/openapi/v3/"):
            key = path[len("/openapi/v3/"):]
            doc = self._openapi_v3.get(key)
            if doc is None:
                data = openapi.v3_document_at(self.registry, key)
                if data is None:
                    raise errors.NotFound("the server could not find the requested resource")
                doc = (orjson.dumps(data), openapi.document_hash(data))
                self._openapi_v3[key] = doc
            headers = {"Content-Type": "application/json", "ETag": f'"{doc[1]}"',
                       "Cache-Control": "public, immutable" if request.query.get("hash")
                       else "no-cache, private"}
            return web.Response(body=doc[0], headers=headers)
        raise errors.NotFound("the server could not find the requested resource")

    def invalidate_openapi(self) -> None:
        """Drop cached documents after the registry changed (CRDs)."""
        self._openapi_v3.clear()
        self._openapi_v2 = None
        self._openapi_v2_proto = None
