"""The audit log: who did what, as kube-apiserver's audit.k8s.io/v1 Event JSON lines.

Why: the 2019 audit asked for a record of every request, and CIS 1.2.16-1.2.19 for an audit log
on by default. `navio server` writes one to DATA/logs/audit.log (0600) at level Metadata unless
`--audit-policy-file` says otherwise (auditpolicy.py), with kube's fields: level, auditID,
stage, requestURI, verb, user, sourceIPs, userAgent, objectRef, responseStatus,
requestReceivedTimestamp, stageTimestamp, annotations (+ requestObject / responseObject at
Request / RequestResponse levels).

Stages: RequestReceived (omitted by the default policy, as in kube's example policy) and
ResponseComplete for every request; long-running ones (watch, exec, logs -f, port-forward)
also get ResponseStarted when their stream begins, so a watch is on record when it starts, not
when it ends. The events of a request are written once its
response starts, when the authenticated user is known.

The file rotates as kube-apiserver's (lumberjack, auditlog.py): --audit-log-maxsize MB per
file, --audit-log-maxbackup and --audit-log-maxage days of rotated files kept.

Never in the log: any header (so no Authorization bearer token), bodies of secrets, tokens and
token reviews (capped at Metadata, auditpolicy.py), and request bodies that are not JSON.
Other middleware can add annotations through `request["audit_annotations"]` (a dict), as kube's
authorizer adds `authorization.k8s.io/decision`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import orjson
from aiohttp import web
from aiohttp.streams import StreamReader

from navio.api import errors, protobuf
from navio.apiserver.auditlog import RotatingLog
from navio.apiserver.auditpolicy import AuditPolicy, default_policy
from navio.apiserver.requestinfo import RequestInfo, parse_request

__all__ = ["Auditor"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _audit_ids() -> Iterator[str]:
    """Random (version 4) UUIDs, drawing the kernel's randomness 256 at a time: uuid4() makes
    one getrandom call per request, a measurable share of a cached GET."""
    while True:
        pool = os.urandom(16 * 256)
        text = pool.hex()
        for i in range(0, len(text), 32):
            h = text[i:i + 32]
            yield (f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-"
                   f"{h[20:]}")


_AUDIT_IDS = _audit_ids()


class _Context:
    __slots__ = ("audit_id", "code", "event", "info", "level", "omit", "received", "started")

    def __init__(self, info: RequestInfo) -> None:
        self.audit_id = next(_AUDIT_IDS)
        self.received = _now()
        self.info = info
        self.level = ""
        self.omit: frozenset[str] = frozenset()
        self.event: dict[str, Any] = {}
        self.started = False
        self.code = 500   # until a response says otherwise


# A typed request key where aiohttp has them (3.13+), else the plain string.
_STATE: Any = (web.RequestKey("navio.audit", _Context) if hasattr(web, "RequestKey")
               else "navio.audit")


class Auditor:
    """Writes audit events for an aiohttp app; `install(app)` before the app starts."""

    def __init__(self, path: Path, policy: AuditPolicy | None = None, *, max_size: int = 100,
                 max_backups: int = 10, max_age: int = 30) -> None:
        self.path = path
        self.policy = policy or default_policy()
        self._log = RotatingLog(path, max_size=max_size, max_backups=max_backups,
                                max_age=max_age)

    def install(self, app: web.Application) -> None:
        app.middlewares.insert(0, self._middleware)   # outermost: sees every response
        app.on_response_prepare.append(self._on_prepare)
        app.on_cleanup.append(self._close)

    async def _close(self, app: web.Application) -> None:
        self._log.close()

    def _write(self, event: dict[str, Any]) -> None:
        try:
            self._log.write(orjson.dumps(event) + b"\n")
        except OSError as exc:
            log.error("audit log write failed", extra={"path": str(self.path),
                                                        "error": exc.strerror or str(exc)})

    # -- request flow ----------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        ctx = _Context(parse_request(request.method, request.path, request.query))
        request[_STATE] = ctx
        if self.policy.records_bodies and request.can_read_body and (
                request.content_type.endswith("json") or
                request.content_type == protobuf.MEDIA_TYPE):
            _replayable(request, await request.read())
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            ctx.code = response.status
            return response
        except web.HTTPException as exc:
            ctx.code = exc.status
            raise
        except errors.ApiError as exc:
            ctx.code = exc.code
            raise
        finally:
            if not ctx.started:   # a plain response (prepared after this returns) or none
                self._begin(request, ctx, response, streaming=False)
            if ctx.level not in ("", "None") and "ResponseComplete" not in ctx.omit:
                event = dict(ctx.event, stage="ResponseComplete", stageTimestamp=_now(),
                             responseStatus={"metadata": {}, "code": ctx.code})
                if ctx.level == "RequestResponse":
                    body = _json_body(getattr(response, "body", None))
                    if body is not None:
                        event["responseObject"] = body
                self._write(event)

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        ctx = request.get(_STATE)
        if ctx is None or ctx.started:
            return
        self._begin(request, ctx, response, streaming=True)

    def _begin(self, request: web.Request, ctx: _Context, response: web.StreamResponse | None,
               *, streaming: bool) -> None:
        """Decide the level (the user is known now) and write the early stages."""
        ctx.started = True
        if response is not None:
            ctx.code = response.status   # a stream the client ends keeps its status
        user = request.get("user")
        name = getattr(user, "name", "system:anonymous")
        groups = tuple(getattr(user, "groups", ("system:unauthenticated",)))
        ctx.level, ctx.omit = self.policy.evaluate(name, groups, ctx.info)
        if response is not None:
            response.headers["Audit-Id"] = ctx.audit_id
        if ctx.level == "None":
            return
        ctx.event = self._event(request, ctx, name, groups)
        if "RequestReceived" not in ctx.omit:
            self._write(dict(ctx.event, stage="RequestReceived",
                             stageTimestamp=ctx.received))
        long_running = ctx.info.verb == "watch" or ctx.info.subresource in (
            "exec", "attach", "portforward", "proxy") or (
            ctx.info.subresource == "log" and request.query.get("follow") == "true")
        if long_running and streaming and response is not None and \
                "ResponseStarted" not in ctx.omit:
            self._write(dict(ctx.event, stage="ResponseStarted", stageTimestamp=_now(),
                             responseStatus={"metadata": {}, "code": response.status}))

    def _event(self, request: web.Request, ctx: _Context, name: str,
               groups: tuple[str, ...]) -> dict[str, Any]:
        info = ctx.info
        event: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": ctx.level,
            "auditID": ctx.audit_id, "requestURI": request.path_qs, "verb": info.verb,
            "user": {"username": name, "groups": list(groups)},
            "sourceIPs": [request.remote] if request.remote else [],
            "userAgent": request.headers.get("User-Agent", ""),
            "requestReceivedTimestamp": ctx.received,
        }
        if not info.is_resource:
            event["verb"] = request.method.lower()
        else:
            ref = {"resource": info.resource, "namespace": info.namespace, "name": info.name,
                   "apiGroup": info.group, "apiVersion": info.version,
                   "subresource": info.subresource}
            event["objectRef"] = {k: v for k, v in ref.items() if v}
        annotations = dict(request.get("audit_annotations") or {})
        if ctx.level in ("Request", "RequestResponse"):
            annotations.update(request.get("audit_annotations_request") or {})
        if annotations:
            event["annotations"] = annotations
        if ctx.level in ("Request", "RequestResponse"):
            raw = getattr(request, "_read_bytes", None)
            body = _protobuf_body(raw) if request.content_type == protobuf.MEDIA_TYPE \
                else _json_body(raw)
            if body is not None:
                event["requestObject"] = body
        return event


def _replayable(request: web.Request, body: bytes) -> None:
    """Give the handler, which streams `request.content`, the body this middleware read."""
    stream = StreamReader(request.protocol, 2 ** 16, loop=asyncio.get_running_loop())
    if body:
        stream.feed_data(body)
    stream.feed_eof()
    request._payload = stream   # type: ignore[attr-defined]  # aiohttp keeps the body here


def _protobuf_body(data: Any) -> Any:
    if not isinstance(data, (bytes, bytearray)) or not data:
        return None
    try:
        return protobuf.decode(bytes(data))
    except Exception:   # an undecodable body is not recorded; the handler reports it
        return None


def _json_body(data: Any) -> Any:
    if not isinstance(data, (bytes, bytearray)) or not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
