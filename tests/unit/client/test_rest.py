"""The REST client's wire behaviour against a scripted HTTPS server on loopback.

The real API server is covered by tests/e2e/test_client.py; here each request's URL, query,
headers and body are checked exactly, and replies that a real server rarely sends (429s,
non-Status errors, split watch lines) are scripted.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Awaitable, Callable

import orjson
import pytest
from aiohttp import web

from navio.api import errors
from navio.client.kubeconfig import ClientConfig
from navio.client.resources import DEPLOYMENTS, NODES, PODS, ResourceRef
from navio.client.rest import Client, TransportError
from navio.pki.certs import load_or_create_ca

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status(code: int, reason: str, message: str, **details: Any) -> web.Response:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "code": code, "reason": reason, "message": message}
    if details:
        body["details"] = details
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


class Server:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[Handler] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append({"method": request.method, "path": request.path,
                              "query": dict(request.query), "headers": dict(request.headers),
                              "body": orjson.loads(body) if body else None})
        if self.script:
            return await self.script.pop(0)(request)
        return web.json_response({"kind": "Pod", "metadata": {"name": "ok"}})


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("pki")
    ca = load_or_create_ca(d)
    srv = ca.issue(d, "server", cn="server", client=False, server_names=("127.0.0.1",))
    cli = ca.issue(d, "client", cn="admin")
    return {"ca": ca.pair.cert.read_bytes(), "srv": srv, "cli": cli}


@pytest.fixture
async def env(pki):
    server = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["srv"].cert, pki["srv"].key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = ClientConfig(server=f"https://127.0.0.1:{port}", ca_data=pki["ca"],
                          cert_data=pki["cli"].cert.read_bytes(),
                          key_data=pki["cli"].key.read_bytes(), token="tok")
    client = Client(config, component="tester", timeout=5.0)
    try:
        yield server, client
    finally:
        await client.close()
        await runner.cleanup()


async def test_urls_follow_kubernetes_paths(env):
    server, c = env
    await c.get(PODS, "web", "shop")
    await c.get(NODES, "n1", "ignored")
    await c.get(DEPLOYMENTS, "d", "shop")
    await c.list(PODS)
    await c.list(DEPLOYMENTS, "shop")
    assert [r["path"] for r in server.requests] == [
        "/api/v1/namespaces/shop/pods/web", "/api/v1/nodes/n1",
        "/apis/apps/v1/namespaces/shop/deployments/d", "/api/v1/pods",
        "/apis/apps/v1/namespaces/shop/deployments"]


async def test_headers_carry_user_agent_accept_and_token(env):
    server, c = env
    await c.get(PODS, "web", "shop")
    h = server.requests[0]["headers"]
    assert h["User-Agent"].startswith("navio-tester/")
    assert h["Accept"] == "application/json"
    assert h["Authorization"] == "Bearer tok"


async def test_list_passes_selectors_paging_and_version(env):
    server, c = env
    await c.list(PODS, "shop", label_selector="app=web", field_selector="spec.nodeName=n1",
                 limit=500, continue_="tok123", resource_version="42")
    assert server.requests[0]["query"] == {
        "labelSelector": "app=web", "fieldSelector": "spec.nodeName=n1", "limit": "500",
        "continue": "tok123", "resourceVersion": "42"}


async def test_writes_use_the_right_verbs_paths_and_bodies(env):
    server, c = env
    body = {"metadata": {"name": "web", "namespace": "shop"}, "spec": {}}
    await c.create(PODS, body)
    await c.update(PODS, body)
    await c.update_status(PODS, body)
    await c.create_subresource(PODS, "web", "binding",
                               {"target": {"kind": "Node", "name": "n1"}}, "shop")
    await c.get_subresource(DEPLOYMENTS, "d", "scale", "shop")
    got = [(r["method"], r["path"]) for r in server.requests]
    assert got == [("POST", "/api/v1/namespaces/shop/pods"),
                   ("PUT", "/api/v1/namespaces/shop/pods/web"),
                   ("PUT", "/api/v1/namespaces/shop/pods/web/status"),
                   ("POST", "/api/v1/namespaces/shop/pods/web/binding"),
                   ("GET", "/apis/apps/v1/namespaces/shop/deployments/d/scale")]
    assert server.requests[0]["body"] == body
    assert server.requests[0]["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("patch_type, content_type", [
    ("merge", "application/merge-patch+json"),
    ("strategic", "application/strategic-merge-patch+json"),
    ("json", "application/json-patch+json"),
    ("apply", "application/apply-patch+yaml"),
])
async def test_patch_types_set_their_content_type(env, patch_type, content_type):
    server, c = env
    body: Any = [{"op": "add", "path": "/x", "value": 1}] if patch_type == "json" else {"a": 1}
    await c.patch(PODS, "web", body, "shop", patch_type=patch_type, field_manager="me",
                  force=True if patch_type == "apply" else None)
    req = server.requests[0]
    assert req["headers"]["Content-Type"] == content_type
    assert req["body"] == body
    assert req["query"]["fieldManager"] == "me"
    assert req["query"].get("force") == ("true" if patch_type == "apply" else None)


async def test_apply_without_a_field_manager_is_refused_locally(env):
    _, c = env
    with pytest.raises(ValueError):
        await c.patch(PODS, "web", {}, "shop", patch_type="apply")


async def test_delete_sends_delete_options(env):
    server, c = env
    await c.delete(PODS, "web", "shop", grace_period_seconds=0, propagation_policy="Foreground",
                   preconditions={"uid": "u1", "resourceVersion": "5"})
    req = server.requests[0]
    assert (req["method"], req["path"]) == ("DELETE", "/api/v1/namespaces/shop/pods/web")
    assert req["body"] == {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                           "propagationPolicy": "Foreground",
                           "preconditions": {"uid": "u1", "resourceVersion": "5"}}


@pytest.mark.parametrize("reply, cls, reason", [
    (lambda r: status(404, "NotFound", 'pods "x" not found', name="x", kind="pods"),
     errors.NotFound, "NotFound"),
    (lambda r: status(409, "Conflict", "the object has been modified"), errors.Conflict,
     "Conflict"),
    (lambda r: status(409, "AlreadyExists", 'pods "x" already exists'), errors.AlreadyExists,
     "AlreadyExists"),
    (lambda r: status(410, "Expired", "too old resource version"), errors.Expired, "Expired"),
    (lambda r: status(410, "Gone", "gone"), errors.Expired, "Gone"),
    (lambda r: status(403, "Forbidden", "no"), errors.Forbidden, "Forbidden"),
    (lambda r: status(409, "", "odd"), errors.Conflict, "Conflict"),
    (lambda r: web.Response(status=500, text="<html>oops</html>"), errors.InternalError,
     "InternalError"),
    (lambda r: web.Response(status=418, text="teapot"), errors.ApiError, "I'maTeapot"),
], ids=["404 is NotFound", "409 Conflict", "409 AlreadyExists", "410 Expired",
        "410 Gone is Expired", "403 Forbidden", "409 without reason is Conflict",
        "500 without a Status body", "unknown code keeps code"])
async def test_error_replies_raise_the_matching_class(env, reply, cls, reason):
    server, c = env

    async def respond(request: web.Request) -> web.StreamResponse:
        return reply(request)

    server.script.append(respond)
    with pytest.raises(cls) as info:
        await c.get(PODS, "x", "shop")
    assert type(info.value) is cls
    assert info.value.reason == reason
    assert 400 <= info.value.code < 600
    assert "oops" not in info.value.message


async def test_invalid_keeps_its_causes(env):
    server, c = env
    causes = [{"reason": "FieldValueRequired", "message": "Required value",
               "field": "spec.containers"}]

    async def respond(request: web.Request) -> web.StreamResponse:
        return status(422, "Invalid", 'Pod "x" is invalid: spec.containers: Required value',
                      name="x", kind="Pod", causes=causes)

    server.script.append(respond)
    with pytest.raises(errors.Invalid) as info:
        await c.create(PODS, {"metadata": {"name": "x", "namespace": "shop"}})
    assert info.value.causes == causes
    assert info.value.details["kind"] == "Pod"
    assert info.value.message.startswith('Pod "x" is invalid')


async def test_429_with_retry_after_is_retried(env):
    server, c = env

    async def busy(request: web.Request) -> web.StreamResponse:
        resp = status(429, "TooManyRequests", "slow down")
        resp.headers["Retry-After"] = "0"
        return resp

    server.script.extend([busy, busy])
    assert (await c.get(PODS, "web", "shop"))["metadata"]["name"] == "ok"
    assert len(server.requests) == 3


async def test_429_without_retry_after_raises(env):
    server, c = env

    async def busy(request: web.Request) -> web.StreamResponse:
        return status(429, "TooManyRequests", "slow down")

    server.script.append(busy)
    with pytest.raises(errors.TooManyRequests):
        await c.get(PODS, "web", "shop")


async def test_an_unreachable_server_is_a_transport_error(pki):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ClientConfig(server=f"https://127.0.0.1:{port}", ca_data=pki["ca"])
    async with Client(config, timeout=2.0) as c:
        with pytest.raises(TransportError):
            await c.get(PODS, "web", "shop")
        with pytest.raises(TransportError):
            async for _ in c.watch(PODS, "shop"):
                pass


def _watch_reply(chunks: list[bytes], delay: float = 0.0) -> Handler:
    async def respond(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for chunk in chunks:
            await resp.write(chunk)
            if delay:
                await asyncio.sleep(delay)
        await resp.write_eof()
        return resp
    return respond


async def test_watch_parses_events_split_across_chunks(env):
    server, c = env
    lines = b"".join(orjson.dumps(e) + b"\n" for e in (
        {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "2"}}},
        {"type": "MODIFIED", "object": {"metadata": {"name": "a", "resourceVersion": "3"},
                                        "data": {"big": "x" * 200_000}}},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "4"}}},
        {"type": "DELETED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}},
    ))
    chunks = [lines[i:i + 1000] for i in range(0, len(lines), 1000)]
    server.script.append(_watch_reply(chunks))
    events = [(e.type, e.object["metadata"]["resourceVersion"])
              async for e in c.watch(PODS, "shop", resource_version="1", timeout_seconds=30)]
    assert events == [("ADDED", "2"), ("MODIFIED", "3"), ("BOOKMARK", "4"), ("DELETED", "5")]
    q = server.requests[0]["query"]
    assert q == {"watch": "true", "resourceVersion": "1", "timeoutSeconds": "30",
                 "allowWatchBookmarks": "true"}


async def test_a_410_error_event_mid_stream_raises_expired(env):
    server, c = env
    lines = [orjson.dumps({"type": "ADDED", "object": {"metadata": {"name": "a"}}}) + b"\n",
             orjson.dumps({"type": "ERROR", "object": {
                 "kind": "Status", "status": "Failure", "code": 410, "reason": "Expired",
                 "message": "too old resource version: 1 (5)"}}) + b"\n"]
    server.script.append(_watch_reply(lines))
    seen = []
    with pytest.raises(errors.Expired):
        async with c.watch(PODS, "shop", resource_version="1") as stream:
            async for ev in stream:
                seen.append(ev.type)
    assert seen == ["ADDED"]


async def test_a_410_at_watch_start_raises_expired(env):
    server, c = env

    async def gone(request: web.Request) -> web.StreamResponse:
        return status(410, "Expired", "too old resource version: 1 (5)")

    server.script.append(gone)
    with pytest.raises(errors.Expired):
        async for _ in c.watch(PODS, "shop", resource_version="1", allow_bookmarks=False):
            pass
    assert "allowWatchBookmarks" not in server.requests[0]["query"]


async def test_a_watch_can_be_closed_early(env):
    server, c = env
    server.script.append(_watch_reply(
        [orjson.dumps({"type": "ADDED", "object": {"metadata": {"name": str(i)}}}) + b"\n"
         for i in range(1000)], delay=0.001))
    stream = c.watch(PODS, "shop")
    async for ev in stream:
        assert ev.object["metadata"]["name"] == "0"
        break
    await stream.aclose()
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_the_client_wide_bucket_throttles_requests(pki, env):
    server, c = env
    c._bucket.qps, c._bucket.burst, c._bucket._tokens = 20.0, 1, 1.0
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(5):
        await c.get(PODS, "web", "shop")
    assert loop.time() - start >= 0.18                 # 4 waits of 50 ms


def test_resource_paths_reject_empty_names():
    with pytest.raises(ValueError):
        PODS.path("ns", "")
    with pytest.raises(ValueError):
        PODS.path("ns", None, "status")
    crd = ResourceRef("example.com", "v1", "widgets", True, "Widget")
    assert crd.path("a b", "w/1") == "/apis/example.com/v1/namespaces/a%20b/widgets/w%2F1"


async def test_a_closed_client_refuses_requests_instead_of_opening_a_new_session(env):
    server, c = env
    await c.get(PODS, "web", "shop")
    await c.close()
    with pytest.raises(TransportError, match="closed"):
        await c.get(PODS, "web", "shop")
    assert c._session is None and len(server.requests) == 1
