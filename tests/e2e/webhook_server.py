"""An HTTPS admission webhook server for the e2e tests, run in a thread of its own.

It listens on 127.0.0.1 with a certificate from a CA the test makes (`ca_bundle` is what a
webhook configuration's `caBundle` carries) and answers AdmissionReviews per path:

- `/deny`: refuses an object carrying the label `forbidden=true` (403, a warning and an audit
  annotation with every answer);
- `/mutate`: adds the label `mutated=yes` with a JSONPatch;
- `/add-b`: adds the label `b=1`; `/reinvoke`: adds `a-saw-b=<whether label b is there>`
  (a webhook reinvoked after `/add-b` ran sees it);
- `/sidecar`: adds a container `sidecar` requesting 10m CPU to a pod (a sidecar injector);
- `/slow`: answers allowed after `SLOW_SECONDS`;
- `/allow`: allows everything;
- `/convert`: a CRD conversion webhook (ConversionReview) between `v1`, whose `spec.hostPort`
  is `"host:port"`, and `v2`, whose `spec.endpoint` is `{host, port}`; the converted object
  gets the annotation `converted-to: <version>`.

Every review received is kept in `reviews` (path, request) for assertions.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from navio.pki import tlspolicy
from navio.pki.certs import load_or_create_ca

SLOW_SECONDS = 10.0
# The certificate is also valid for this service (what a `service` reference is verified
# against): Service `hook` in namespace `webhook-svc`.
SERVICE_DNS_NAME = "hook.webhook-svc.svc"


def _patch_label(obj: dict[str, Any], key: str, value: str) -> list[dict[str, Any]]:
    if not (obj.get("metadata") or {}).get("labels"):
        return [{"op": "add", "path": "/metadata/labels", "value": {key: value}}]
    return [{"op": "add", "path": "/metadata/labels/" + key.replace("~", "~0").replace("/", "~1"),
             "value": value}]


def convert_widget(obj: dict[str, Any], api_version: str) -> dict[str, Any]:
    """A Widget in `api_version`: v1 `spec.hostPort: "h:p"` <-> v2 `spec.endpoint`."""
    out = json.loads(json.dumps(obj))
    spec = out.setdefault("spec", {})
    if api_version.endswith("/v2") and "hostPort" in spec:
        host, _, port = str(spec.pop("hostPort")).rpartition(":")
        spec["endpoint"] = {"host": host, "port": int(port)}
    elif api_version.endswith("/v1") and "endpoint" in spec:
        ep = spec.pop("endpoint")
        spec["hostPort"] = f"{ep.get('host')}:{ep.get('port')}"
    out["apiVersion"] = api_version
    meta = out.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}),
                           "converted-to": api_version.rsplit("/", 1)[-1]}
    return out


class WebhookServer:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = load_or_create_ca(directory, "webhook-test-ca")
        self.pair = self.ca.issue(directory, "webhook", cn="webhook.test", client=False,
                                  server_names=("127.0.0.1", "localhost", SERVICE_DNS_NAME))
        self.ca_bundle = base64.b64encode(self.ca.pair.cert.read_bytes()).decode()
        self.reviews: list[tuple[str, dict[str, Any]]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> "WebhookServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{hook}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        ctx = tlspolicy.server_context(self.pair.cert, self.pair.key)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        server = site._server
        assert server is not None and server.sockets   # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def stop(self) -> None:
        async def _stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            # Connections still in their TLS handshake (a client that refused our certificate)
            # are not aiohttp's yet, so cleanup() cannot close them: abort what the loop holds.
            loop = asyncio.get_running_loop()
            for transport in list(getattr(loop, "_transports", {}).values()):
                if transport is not None and not transport.is_closing():
                    transport.abort()
            await asyncio.sleep(0)
        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def received(self, path: str) -> list[dict[str, Any]]:
        return [r for p, r in list(self.reviews) if p == path]

    async def _handle(self, request: web.Request) -> web.Response:
        hook = request.match_info["hook"]
        review = await request.json()
        req = review["request"]
        self.reviews.append((hook, req))
        if review.get("kind") == "ConversionReview":
            return web.json_response({
                "apiVersion": review["apiVersion"], "kind": "ConversionReview",
                "response": {"uid": req["uid"], "result": {"status": "Success"},
                             "convertedObjects": [convert_widget(o, req["desiredAPIVersion"])
                                                  for o in req["objects"]]}})
        obj = req.get("object") or req.get("oldObject") or {}
        labels = (obj.get("metadata") or {}).get("labels") or {}
        resp: dict[str, Any] = {"uid": req["uid"], "allowed": True}
        if hook == "deny":
            resp["warnings"] = [f"deny webhook saw {obj.get('kind')} "
                                f"{(obj.get('metadata') or {}).get('name')}"]
            resp["auditAnnotations"] = {"checked": "true"}
            if labels.get("forbidden") == "true":
                resp["allowed"] = False
                resp["status"] = {"code": 403, "reason": "Forbidden",
                                  "message": "label forbidden=true is not allowed"}
        elif hook in ("mutate", "add-b", "reinvoke") and req.get("object"):
            key, value = {"mutate": ("mutated", "yes"), "add-b": ("b", "1"),
                          "reinvoke": ("a-saw-b", "true" if "b" in labels else "false")}[hook]
            ops = _patch_label(req["object"], key, value)
            resp["patchType"] = "JSONPatch"
            resp["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
        elif hook == "sidecar" and req.get("object"):
            sidecar = {"name": "sidecar", "image": "busybox",
                       "resources": {"requests": {"cpu": "10m"}}}
            resp["patchType"] = "JSONPatch"
            resp["patch"] = base64.b64encode(json.dumps(
                [{"op": "add", "path": "/spec/containers/-", "value": sidecar}]).encode()
            ).decode()
        elif hook == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        return web.json_response({"apiVersion": "admission.k8s.io/v1",
                                  "kind": "AdmissionReview", "response": resp})
