"""Subresources: status, scale, binding, finalize, eviction, and the node-side streams.

`status` and `finalize` are views of the object itself; `scale` reads and writes an
`autoscaling/v1 Scale` mapped onto `spec.replicas`; `binding` assigns a pod to a node exactly
once (kube's BindingREST). Logs, exec, attach and port-forward are served by the node's kubelet
and proxied there by `nodeproxy`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aiohttp import web

from navio.api import errors, selectors
from navio.api.crd import jsonpath
from navio.api.registry import Kind
from navio.apiserver.negotiation import decode_body, media_type
from navio.apiserver.requestinfo import RequestInfo
from navio.apiserver.resources import not_found

if TYPE_CHECKING:
    from navio.apiserver.handlers import ResourceHandlers

__all__ = ["handle", "handle_virtual", "to_scale"]

_NODE_STREAMS = ("log", "exec", "attach", "portforward", "proxy")


async def handle(h: "ResourceHandlers", request: web.Request, info: RequestInfo,
                 kind: Kind) -> web.StreamResponse:
    sub = kind.subresource(info.subresource)
    if sub is None:
        raise errors.NotFound("the server could not find the requested resource")
    verb = info.verb
    if verb not in sub.verbs and not (info.subresource in _NODE_STREAMS):
        raise errors.MethodNotAllowed("the server does not allow this method on the "
                                      "requested resource")
    ns = info.namespace if kind.namespaced else ""
    name = info.name
    if info.subresource in ("status", "finalize", "ephemeralcontainers", "approval"):
        if verb == "get":
            return h.respond(request, kind, await h.resources.get(kind, ns, name))
        if verb == "update":
            return await h.update(request, kind, ns, name, subresource=info.subresource)
        return await h.patch(request, kind, ns, name, subresource=info.subresource)
    if info.subresource == "scale":
        return await _scale(h, request, kind, ns, name)
    if info.subresource == "binding":
        body = decode_body(await _body(request), request.headers.get("Content-Type"))
        return await _bind(h, request, kind, ns, name, body)
    if info.subresource == "eviction":
        return await _evict(h, request, kind, ns, name)
    if info.subresource == "token" and kind.kind == "ServiceAccount":
        from navio.apiserver import authreviews
        return await authreviews.token_request(h, request, kind, ns, name)
    if info.subresource in _NODE_STREAMS:
        from navio.apiserver import nodeproxy
        return await nodeproxy.proxy(h, request, info, kind)
    raise errors.NotFound("the server could not find the requested resource")


async def handle_virtual(h: "ResourceHandlers", request: web.Request, info: RequestInfo,
                         kind: Kind) -> web.StreamResponse:
    """Resources that exist only as an action: `POST namespaces/<ns>/bindings`."""
    if kind.group == "" and kind.kind == "Binding" and info.verb == "create":
        body = decode_body(await _body(request), request.headers.get("Content-Type"))
        if not isinstance(body, dict):
            raise errors.BadRequest("the object provided is unrecognized")
        pod_kind = h.resources.registry.resource("", "v1", "pods")
        assert pod_kind is not None
        name = (body.get("metadata") or {}).get("name", "")
        return await _bind(h, request, pod_kind, info.namespace, name, body)
    if kind.group == "authorization.k8s.io" and info.verb == "create":
        from navio.apiserver.authz import reviews
        return await reviews.handle(h, request, info, kind)
    if kind.group == "authentication.k8s.io" and info.verb == "create":
        from navio.apiserver import authreviews
        if kind.kind == "TokenReview":
            return await authreviews.token_review(h, request, kind)
        if kind.kind == "SelfSubjectReview":
            return await authreviews.self_subject_review(h, request, kind)
    raise errors.MethodNotAllowed("the server does not allow this method on the requested "
                                  "resource")


async def _body(request: web.Request) -> bytes:
    from navio.apiserver.handlers import read_body
    return await read_body(request)


def _scale_selector(kind: Kind, obj: dict[str, Any]) -> str:
    sel = obj.get("spec", {}).get("selector")
    if kind.kind == "ReplicationController":
        return ",".join(f"{k}={v}" for k, v in sorted((sel or {}).items()))
    return selectors.format_label_selector(sel) if sel else ""


def _custom_scale(kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
    """A custom object's Scale, read through the CRD's scale paths (kube's scale
    subresource for custom resources: labelSelectorPath read from the object)."""
    paths = kind.custom.scale_paths(kind.version)
    meta = obj.get("metadata", {})

    def first(path: str | None) -> Any:
        found = jsonpath.find(obj, path) if path else []
        return found[0] if found else None

    status: dict[str, Any] = {"replicas": first(paths.get("statusReplicasPath")) or 0}
    selector = first(paths.get("labelSelectorPath"))
    if isinstance(selector, str) and selector:
        status["selector"] = selector
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": first(paths.get("specReplicasPath")) or 0},
        "status": status,
    }


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    steps = [arg for _, arg in jsonpath.parse(path)]
    cur = obj
    for step in steps[:-1]:
        nxt = cur.get(step)
        if not isinstance(nxt, dict):
            nxt = cur[step] = {}
        cur = nxt
    cur[steps[-1]] = value


def to_scale(kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
    if kind.custom is not None:
        return _custom_scale(kind, obj)
    meta = obj.get("metadata", {})
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                   "selector": _scale_selector(kind, obj)},
    }


async def _scale(h: "ResourceHandlers", request: web.Request, kind: Kind, ns: str,
                 name: str) -> web.Response:
    from navio.apiserver.handlers import _write_options, apply_patch, json_response, read_body
    if request.method == "GET":
        return json_response(to_scale(kind, await h.resources.get(kind, ns, name)))
    opts = _write_options(request)
    is_patch = request.method == "PATCH"
    ct = media_type(request.headers.get("Content-Type"))
    body = decode_body(await read_body(request), ct, patch=is_patch)
    if is_patch and ct == "application/apply-patch+yaml":
        raise errors.UnsupportedMediaType("apply is not supported on the scale subresource")

    def mutate(current: dict[str, Any] | None) -> dict[str, Any]:
        if current is None:
            return {}
        scale = to_scale(kind, current)
        if is_patch:
            new_scale = apply_patch(ct, scale, body, "io.k8s.api.autoscaling.v1.Scale")
        else:
            if not isinstance(body, dict):
                raise errors.BadRequest("the object provided is unrecognized")
            new_scale = body
        replicas = new_scale.get("spec", {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.Invalid("Scale", name, [errors.cause(
                "FieldValueInvalid", "spec.replicas", "must be greater than or equal to 0",
                replicas)], group="autoscaling")
        result = copy.deepcopy(current)
        if kind.custom is not None:
            _set_path(result, kind.custom.scale_paths(kind.version)["specReplicasPath"],
                      replicas)
        else:
            result.setdefault("spec", {})["replicas"] = replicas
        pinned = (new_scale.get("metadata") or {}).get("resourceVersion")
        if pinned and not is_patch:
            result["metadata"]["resourceVersion"] = pinned
        else:
            result["metadata"].pop("resourceVersion", None)
        return result

    obj, _ = await h.resources.update(kind, ns, name, mutate, opts, subresource="scale")
    return json_response(to_scale(kind, obj))


async def _bind(h: "ResourceHandlers", request: web.Request, kind: Kind, ns: str, name: str,
                body: Any) -> web.Response:
    from navio.apiserver.handlers import _write_options, json_response
    opts = _write_options(request)
    if not isinstance(body, dict):
        raise errors.BadRequest("the object provided is unrecognized")
    target = body.get("target") or {}
    node = target.get("name", "")
    if not node:
        raise errors.Invalid("Binding", name, [errors.cause("FieldValueRequired", "target.name")])
    bind_name = (body.get("metadata") or {}).get("name") or name
    if bind_name != name:
        raise errors.BadRequest(f"the name of the object ({bind_name}) does not match the "
                                f"name on the URL ({name})")
    want_uid = (body.get("metadata") or {}).get("uid")

    def mutate(current: dict[str, Any] | None) -> dict[str, Any]:
        if current is None:
            return {}
        meta = current["metadata"]
        if want_uid and want_uid != meta.get("uid"):
            raise errors.Conflict(f"Operation cannot be fulfilled on pods/binding \"{name}\": "
                                  f"the UID in the binding ({want_uid}) does not match the pod "
                                  f"({meta.get('uid')})")
        if meta.get("deletionTimestamp"):
            raise errors.Conflict(f"Operation cannot be fulfilled on pods/binding \"{name}\": "
                                  f"pod {name} is being deleted, cannot be assigned to a host")
        if current.get("spec", {}).get("nodeName"):
            raise errors.Conflict(f"Operation cannot be fulfilled on pods/binding \"{name}\": "
                                  f"pod {name} is already assigned to node "
                                  f"\"{current['spec']['nodeName']}\"")
        # Shallow copies of what changes: `update` deep-copies the result before storing it,
        # and a deep copy here was 40 % of a binding's cost.
        meta = {k: v for k, v in meta.items() if k != "resourceVersion"}
        ann = (body.get("metadata") or {}).get("annotations")
        if ann:
            meta["annotations"] = {**(meta.get("annotations") or {}), **ann}
        status = dict(current.get("status") or {})
        status["conditions"] = [c for c in status.get("conditions") or ()
                                if c.get("type") != "PodScheduled"] + [
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
             "lastTransitionTime": h.resources.now()}]
        return {**current, "metadata": meta, "spec": {**current["spec"], "nodeName": node},
                "status": status}

    try:
        # As kube's BindingREST (a GuaranteedUpdate): no managedFields entry for the binder.
        await h.resources.update(kind, ns, name, mutate, opts, subresource="binding",
                                 track_fields=False)
    except errors.NotFound:
        raise not_found(kind, name) from None
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                          "status": "Success", "code": 201}, 201)


async def _evict(h: "ResourceHandlers", request: web.Request, kind: Kind, ns: str,
                 name: str) -> web.Response:
    """Eviction = a delete that PodDisruptionBudgets may refuse (see `eviction`)."""
    from navio.apiserver import eviction
    from navio.apiserver.handlers import _write_options
    opts = _write_options(request)
    body = decode_body(await _body(request), request.headers.get("Content-Type"))
    return await eviction.evict(h, request, kind, ns, name, body, opts)
