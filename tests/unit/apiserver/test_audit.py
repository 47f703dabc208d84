"""The audit middleware over a small aiohttp app: stages, codes, bodies, the secret cap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from navio.apiserver.audit import Auditor
from navio.apiserver.auditpolicy import parse_policy
from navio.apiserver.authn import UserInfo

# The app's authentication stores the user under the plain key "user", as app.py does.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@web.middleware
async def fake_authn(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.headers.get("X-User"):
        request["user"] = UserInfo(request.headers["X-User"], ("devs",))
    return await handler(request)


async def echo(request: web.Request) -> web.StreamResponse:
    body = b"".join([c async for c in request.content.iter_chunked(1024)])
    if request.path.endswith("/missing"):
        return web.json_response({"kind": "Status", "code": 404}, status=404)
    return web.Response(body=body or b'{"kind":"List"}', content_type="application/json",
                        status=201 if request.method == "POST" else 200)


async def run(tmp_path: Path, policy: dict[str, Any] | None, *requests: tuple[str, str, Any]
              ) -> list[dict[str, Any]]:
    app = web.Application(middlewares=[fake_authn])
    app.router.add_route("*", "/{tail:.*}", echo)
    log = tmp_path / "audit.log"
    Auditor(log, parse_policy(policy) if policy else None).install(app)
    async with TestClient(TestServer(app)) as client:
        for method, path, body in requests:
            resp = await client.request(method, path, json=body, headers={"X-User": "ann"})
            if body is not None and resp.status < 300:
                assert await resp.json() == body      # the handler still got the body
            assert resp.headers["Audit-Id"]
    assert log.stat().st_mode & 0o777 == 0o600
    return [json.loads(line) for line in log.read_text().splitlines()]


async def test_default_policy_writes_metadata_response_complete(tmp_path: Path) -> None:
    events = await run(tmp_path, None,
                       ("POST", "/api/v1/namespaces/a/configmaps", {"data": {"k": "v"}}),
                       ("GET", "/api/v1/namespaces/a/configmaps/missing", None))
    assert [(e["stage"], e["verb"], e["responseStatus"]["code"]) for e in events] == [
        ("ResponseComplete", "create", 201), ("ResponseComplete", "get", 404)]
    assert events[0]["user"] == {"username": "ann", "groups": ["devs"]}
    assert events[1]["objectRef"] == {"resource": "configmaps", "namespace": "a",
                                      "name": "missing", "apiVersion": "v1"}
    assert all("requestObject" not in e for e in events)


async def test_request_response_level_records_bodies_but_never_secrets(tmp_path: Path
                                                                       ) -> None:
    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
              "rules": [{"level": "RequestResponse"}]}
    events = await run(tmp_path, policy,
                       ("POST", "/api/v1/namespaces/a/configmaps", {"data": {"k": "cm"}}),
                       ("POST", "/api/v1/namespaces/a/secrets", {"data": {"k": "c2VjcmV0"}}))
    stages = [(e["stage"], e["objectRef"]["resource"]) for e in events]
    assert stages == [("RequestReceived", "configmaps"), ("ResponseComplete", "configmaps"),
                      ("RequestReceived", "secrets"), ("ResponseComplete", "secrets")]
    assert events[1]["requestObject"] == {"data": {"k": "cm"}}
    assert events[1]["responseObject"] == {"data": {"k": "cm"}}
    assert events[3]["level"] == "Metadata"
    assert "c2VjcmV0" not in (tmp_path / "audit.log").read_text()


async def test_level_none_writes_nothing(tmp_path: Path) -> None:
    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
              "rules": [{"level": "None", "users": ["ann"]}, {"level": "Metadata"}]}
    assert await run(tmp_path, policy, ("GET", "/api/v1/pods", None)) == []


def test_audit_ids_are_distinct_version_4_uuids() -> None:
    import uuid

    from navio.apiserver import audit
    ids = [next(audit._AUDIT_IDS) for _ in range(1000)]   # crosses a pool refill
    assert len(set(ids)) == len(ids)
    for text in ids:
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 4 and u.variant == uuid.RFC_4122


async def _annotated_events(tmp_path: Path, policy: dict[str, Any] | None,
                            path: str) -> list[dict[str, Any]]:
    async def annotating(request: web.Request) -> web.StreamResponse:
        request["audit_annotations"] = {"always": "1"}
        request["audit_annotations_request"] = {"patch.webhook.admission.k8s.io/x": "[]"}
        return web.json_response({}, status=201)
    app = web.Application(middlewares=[fake_authn])
    app.router.add_route("*", "/{tail:.*}", annotating)
    log = tmp_path / "audit.log"
    Auditor(log, parse_policy(policy) if policy else None).install(app)
    async with TestClient(TestServer(app)) as client:
        await client.post(path, json={}, headers={"X-User": "ann"})
    return [json.loads(line) for line in log.read_text().splitlines()]


async def test_request_level_annotations_only_at_request_level(tmp_path: Path) -> None:
    """Mutating webhooks' patches (#4) are recorded at level Request and above only, as
    kube's AddAnnotationWithLevel does; secrets stay capped at Metadata."""
    events = await _annotated_events(tmp_path / "a", None, "/api/v1/namespaces/a/configmaps")
    assert events[-1]["annotations"] == {"always": "1"}
    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Request"}]}
    events = await _annotated_events(tmp_path / "b", policy, "/api/v1/namespaces/a/configmaps")
    assert events[-1]["annotations"] == {"always": "1",
                                         "patch.webhook.admission.k8s.io/x": "[]"}
    events = await _annotated_events(tmp_path / "c", policy, "/api/v1/namespaces/a/secrets")
    assert events[-1]["annotations"] == {"always": "1"}
