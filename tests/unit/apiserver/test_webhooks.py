"""The webhook dispatchers (#4) with a scripted webhook client: JSONPatch application,
reinvocation, dry runs and side effects, denials, failure policies, parallel validation."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, Callable

import pytest

from navio.api import errors
from navio.api.defaults import apply_defaults
from navio.api.registry import default_registry
from navio.apiserver import admissionnotes
from navio.apiserver.admission import Request
from navio.apiserver.resources import WriteOptions
from navio.apiserver.webhookclient import EndpointResolver, ResolveError, WebhookCallError
from navio.apiserver.webhooks import WebhookAdmission


class _Cache:
    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects
        self.events: list[Any] = []

    def list(self, namespace: str = "") -> list[tuple[str, dict[str, Any]]]:
        return [(k, o) for k, o in self.objects.items()
                if not namespace or o["metadata"].get("namespace") == namespace]

    def get(self, key: str) -> dict[str, Any] | None:
        return self.objects.get(key)


class _Resources:
    def __init__(self) -> None:
        self.registry = default_registry()
        self.caches: dict[str, _Cache] = {}

    def cache(self, kind: Any) -> _Cache:
        return self.caches.setdefault(kind.plural, _Cache({}))

    def put(self, plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = f"{meta.get('namespace', '')}/{meta['name']}"
        if plural == "namespaces":
            key = f"/registry/core/namespaces/{meta['name']}"
        self.cache(type("K", (), {"plural": plural})).objects[key] = obj


Reply = Callable[[str, dict[str, Any]], Any]


class _Client:
    """Answers each POST by the URL path's handler; records every review."""

    def __init__(self, handlers: dict[str, Reply]) -> None:
        self.handlers = handlers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def post(self, cc: dict[str, Any], body: Any, timeout: float) -> Any:
        path = cc["url"].rsplit("/", 1)[1]
        self.calls.append((path, body["request"]))
        result = self.handlers[path](path, body["request"])
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, Exception):
            raise result
        if "apiVersion" in result:    # a whole AdmissionReview, sent as it is
            return result
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": body["request"]["uid"], **result}}

    async def close(self) -> None:
        pass


def _config(kind: str, name: str, *hooks: dict[str, Any]) -> dict[str, Any]:
    obj = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
           "metadata": {"name": name}, "webhooks": list(hooks)}
    apply_defaults("admissionregistration.k8s.io", kind, obj)
    return obj


def _hook(name: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "clientConfig": {"url": f"https://127.0.0.1/{path}"},
            "rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"]}],
            "sideEffects": "None", "admissionReviewVersions": ["v1"], **extra}


def _setup(mutating: list[dict[str, Any]] = (), validating: list[dict[str, Any]] = (),
           handlers: dict[str, Reply] | None = None) -> tuple[WebhookAdmission, _Client]:
    res = _Resources()
    res.put("namespaces", {"metadata": {"name": "ns", "labels": {"team": "a"}}})
    for cfg in mutating:
        res.put("mutatingwebhookconfigurations", cfg)
    for cfg in validating:
        res.put("validatingwebhookconfigurations", cfg)
    client = _Client(handlers or {})
    return WebhookAdmission(res, client), client   # type: ignore[arg-type]


CM_KIND = default_registry().resource("", "v1", "configmaps")


def _cm(labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "ns", "labels": dict(labels or {})},
            "data": {"k": "v"}}


def _patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"allowed": True, "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(list(ops)).encode()).decode()}


def _req(op: str = "CREATE", obj: dict[str, Any] | None = None, dry: bool = False,
         old: dict[str, Any] | None = None) -> Request:
    return Request(CM_KIND, op, obj or _cm(), old,  # type: ignore[arg-type]
                   WriteOptions(dry_run=dry))


async def test_a_json_patch_is_applied_pruned_and_defaulted() -> None:
    adm, _ = _setup([_config("MutatingWebhookConfiguration", "m",
                             _hook("m.navio.test", "m"))],
                    handlers={"m": lambda p, r: _patch(
                        {"op": "add", "path": "/metadata/labels/added", "value": "yes"},
                        {"op": "add", "path": "/unknownField", "value": 1})})
    admissionnotes.begin()
    out = await adm.admit(_req())
    assert out["metadata"]["labels"] == {"added": "yes"}
    assert "unknownField" not in out
    notes = admissionnotes.current()
    assert notes is not None and json.loads(
        notes.annotations["mutation.webhook.admission.k8s.io/round_0_index_0"]) == {
        "configuration": "m", "webhook": "m.navio.test", "mutated": True}
    # The patch itself is only for audit events of level Request and above.
    assert "patch.webhook.admission.k8s.io/round_0_index_0" not in notes.annotations
    patch_note = json.loads(
        notes.request_annotations["patch.webhook.admission.k8s.io/round_0_index_0"])
    assert patch_note["patchType"] == "JSONPatch" and patch_note["patch"][0]["op"] == "add"


async def test_a_patch_that_changes_the_kind_or_targets_a_delete_is_an_internal_error() -> None:
    adm, _ = _setup([_config("MutatingWebhookConfiguration", "m",
                             _hook("m.navio.test", "m"))],
                    handlers={"m": lambda p, r: _patch(
                        {"op": "replace", "path": "/kind", "value": "Secret"})})
    with pytest.raises(errors.InternalError):
        await adm.admit(_req())
    adm, _ = _setup([_config("MutatingWebhookConfiguration", "m",
                             _hook("m.navio.test", "m"))],
                    handlers={"m": lambda p, r: _patch(
                        {"op": "add", "path": "/metadata/labels/x", "value": "y"})})
    with pytest.raises(errors.InternalError, match='admission webhook "m.navio.test" attempted '
                                                   "to modify the object, which is not "
                                                   "supported for this operation"):
        await adm.admit(_req("DELETE", old=_cm()))


async def test_if_needed_webhooks_are_reinvoked_once_after_a_later_change() -> None:
    def adds(label: str) -> Reply:
        def reply(path: str, req: dict[str, Any]) -> Any:
            labels = req["object"]["metadata"].get("labels") or {}
            if label in labels:
                return {"allowed": True}
            return _patch({"op": "add", "path": f"/metadata/labels/{label}", "value": "1"})
        return reply
    adm, client = _setup([
        _config("MutatingWebhookConfiguration", "a",
                _hook("a.navio.test", "a", reinvocationPolicy="IfNeeded")),
        _config("MutatingWebhookConfiguration", "b", _hook("b.navio.test", "b")),
        _config("MutatingWebhookConfiguration", "c",
                _hook("c.navio.test", "c", reinvocationPolicy="IfNeeded"))],
        handlers={"a": adds("a"), "b": adds("b"), "c": adds("c")})
    out = await adm.admit(_req())
    assert out["metadata"]["labels"] == {"a": "1", "b": "1", "c": "1"}
    # a ran before b changed the object: reinvoked; c changed it last itself: not reinvoked.
    assert [p for p, _ in client.calls] == ["a", "b", "c", "a"]


async def test_dry_run_needs_webhooks_without_side_effects() -> None:
    adm, client = _setup(validating=[_config(
        "ValidatingWebhookConfiguration", "v", _hook("v.navio.test", "v", sideEffects="Some"))],
        handlers={"v": lambda p, r: {"allowed": True}})
    with pytest.raises(errors.BadRequest, match='admission webhook "v.navio.test" does not '
                                                "support dry run"):
        await adm.validate(None, _req(dry=True))   # type: ignore[arg-type]
    await adm.validate(None, _req())   # type: ignore[arg-type]
    assert len(client.calls) == 1 and client.calls[0][1]["dryRun"] is False


@pytest.mark.parametrize("status,code,reason,message", [
    ({"code": 403, "reason": "Forbidden", "message": "no"}, 403, "Forbidden",
     'admission webhook "v.navio.test" denied the request: no'),
    ({"code": 200, "message": "no"}, 400, "",
     'admission webhook "v.navio.test" denied the request: no'),
    ({"reason": "TooBad"}, 400, "TooBad",
     'admission webhook "v.navio.test" denied the request: TooBad'),
    (None, 400, "", 'admission webhook "v.navio.test" denied the request without explanation'),
])
async def test_denials_are_relayed_as_kube_words_them(status: Any, code: int, reason: str,
                                                      message: str) -> None:
    adm, _ = _setup(validating=[_config("ValidatingWebhookConfiguration", "v",
                                        _hook("v.navio.test", "v"))],
                    handlers={"v": lambda p, r: {"allowed": False, "status": status}})
    with pytest.raises(errors.ApiError) as info:
        await adm.validate(None, _req())   # type: ignore[arg-type]
    assert (info.value.code, info.value.reason, info.value.message) == (code, reason, message)


async def test_failure_policies_on_a_webhook_that_cannot_be_called() -> None:
    down = WebhookCallError('Post "https://127.0.0.1/v?timeout=10s": dial tcp 127.0.0.1:443: '
                            "connect: connection refused")
    adm, _ = _setup(validating=[_config("ValidatingWebhookConfiguration", "v",
                                        _hook("v.navio.test", "v"))],
                    handlers={"v": lambda p, r: down})
    with pytest.raises(errors.InternalError) as info:
        await adm.validate(None, _req())   # type: ignore[arg-type]
    assert info.value.message == (
        'Internal error occurred: failed calling webhook "v.navio.test": failed to call '
        'webhook: Post "https://127.0.0.1/v?timeout=10s": dial tcp 127.0.0.1:443: connect: '
        "connection refused")
    adm, _ = _setup(validating=[_config("ValidatingWebhookConfiguration", "v",
                                        _hook("v.navio.test", "v", failurePolicy="Ignore"))],
                    handlers={"v": lambda p, r: down})
    admissionnotes.begin()
    await adm.validate(None, _req())   # type: ignore[arg-type]
    notes = admissionnotes.current()
    assert notes is not None and notes.annotations[
        "failed-open.validating.webhook.admission.k8s.io/round_0_index_0"] == "v.navio.test"


async def test_an_invalid_response_fails_the_call() -> None:
    adm, _ = _setup(validating=[_config("ValidatingWebhookConfiguration", "v",
                                        _hook("v.navio.test", "v"))],
                    handlers={"v": lambda p, r: {"apiVersion": "admission.k8s.io/v1",
                                                 "kind": "AdmissionReview",
                                                 "response": {"uid": "wrong",
                                                              "allowed": True}}})
    with pytest.raises(errors.InternalError, match=r"received invalid webhook response: "
                                                   r'expected response.uid="[0-9a-f-]+", '
                                                   r'got "wrong"'):
        await adm.validate(None, _req())   # type: ignore[arg-type]


async def test_validating_webhooks_are_called_in_parallel() -> None:
    started: list[str] = []
    both = asyncio.Event()

    async def wait_for_both(path: str, req: dict[str, Any]) -> Any:
        started.append(path)
        if len(started) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)
        return {"allowed": True}
    adm, _ = _setup(validating=[_config("ValidatingWebhookConfiguration", "v",
                                        _hook("one.navio.test", "one"),
                                        _hook("two.navio.test", "two"))],
                    handlers={"one": wait_for_both, "two": wait_for_both})
    await adm.validate(None, _req())   # type: ignore[arg-type]
    assert sorted(started) == ["one", "two"]


async def test_the_review_carries_kube_request_fields() -> None:
    adm, client = _setup(validating=[_config("ValidatingWebhookConfiguration", "v",
                                             _hook("v.navio.test", "v"))],
                         handlers={"v": lambda p, r: {"allowed": True, "warnings": ["w1"],
                                                      "auditAnnotations": {"k": "x"}}})
    admissionnotes.begin()
    old = _cm()
    await adm.validate(None, Request(CM_KIND, "DELETE", old, old,  # type: ignore[arg-type]
                                     WriteOptions(), options={"propagationPolicy": "Background"}))
    req = client.calls[0][1]
    assert req["operation"] == "DELETE" and req["object"] is None
    assert req["oldObject"]["metadata"]["name"] == "c"
    assert req["options"] == {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1",
                              "propagationPolicy": "Background"}
    assert req["namespace"] == "ns" and req["name"] == "c"
    notes = admissionnotes.current()
    assert notes is not None and notes.warnings == ["w1"]
    assert notes.annotations["v.navio.test/k"] == "x"


async def test_namespace_selector_uses_the_namespace_labels() -> None:
    adm, client = _setup(validating=[_config(
        "ValidatingWebhookConfiguration", "v",
        _hook("v.navio.test", "v", namespaceSelector={"matchLabels": {"team": "b"}}))],
        handlers={"v": lambda p, r: {"allowed": False}})
    await adm.validate(None, _req())   # type: ignore[arg-type]
    assert client.calls == []


def test_service_references_resolve_to_a_ready_endpoint() -> None:
    res = _Resources()
    res.put("services", {"metadata": {"name": "hook", "namespace": "ns"},
                         "spec": {"type": "ClusterIP", "ports": [
                             {"name": "https", "port": 443, "targetPort": 8443}]}})
    res.put("endpointslices", {"metadata": {"name": "hook-x", "namespace": "ns", "labels": {
        "kubernetes.io/service-name": "hook"}}, "ports": [{"name": "https", "port": 8443}],
        "endpoints": [{"addresses": ["10.42.0.9"], "conditions": {"ready": False}},
                      {"addresses": ["10.42.0.7"], "conditions": {"ready": True}}]})
    resolver = EndpointResolver(res)   # type: ignore[arg-type]
    assert resolver.resolve("ns", "hook", 443) == ("10.42.0.7", 8443)
    with pytest.raises(ResolveError, match='no service port 80 found for service "hook"'):
        resolver.resolve("ns", "hook", 80)
    with pytest.raises(ResolveError, match='services "nope" not found'):
        resolver.resolve("ns", "nope", 443)


async def test_a_scale_is_what_scale_webhooks_patch() -> None:
    hook = _hook("s.navio.test", "s")
    hook["rules"] = [{"operations": ["UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"],
                      "resources": ["deployments/scale"]}]
    adm, client = _setup([_config("MutatingWebhookConfiguration", "s", hook)],
                         handlers={"s": lambda p, r: _patch(
                             {"op": "replace", "path": "/spec/replicas", "value": 5})})
    kind = default_registry().resource("apps", "v1", "deployments")
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "d", "namespace": "ns"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}}}
    old = dict(dep, spec={"replicas": 1})
    out = await adm.admit(Request(kind, "UPDATE", dep, old,  # type: ignore[arg-type]
                                  WriteOptions(), "scale"))
    assert out["kind"] == "Deployment" and out["spec"]["replicas"] == 5
    assert out["spec"]["selector"] == {"matchLabels": {"a": "b"}}
    req = client.calls[0][1]
    assert req["kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert req["object"]["spec"] == {"replicas": 2} and req["oldObject"]["spec"] == {
        "replicas": 1}
