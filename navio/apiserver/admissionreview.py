"""AdmissionReview requests and responses, as kube-apiserver writes and checks them
(k8s.io/apiserver/pkg/admission/plugin/webhook/request/admissionreview.go, v1.32).

`review(...)` builds the `admission.k8s.io/v1` AdmissionReview (or v1beta1 when that is the
only version the webhook accepts) with every request field upstream sets: uid, kind/resource/
subResource as the webhook is called (an equivalent version under matchPolicy Equivalent),
requestKind/requestResource/requestSubResource as the client asked, name, namespace,
operation, userInfo, object, oldObject (`null` when absent), dryRun and the operation's
options (CreateOptions / UpdateOptions / DeleteOptions). `verify(...)` checks the reply as
VerifyAdmissionResponse does and raises `InvalidResponse` with upstream's wording.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["review", "verify", "Response", "InvalidResponse", "operation_options",
           "ReviewUnsupported"]

V1 = "admission.k8s.io/v1"
V1BETA1 = "admission.k8s.io/v1beta1"


class InvalidResponse(Exception):
    pass


class ReviewUnsupported(Exception):
    """The webhook accepts no AdmissionReview version this server sends."""


@dataclass(frozen=True, slots=True)
class Response:
    allowed: bool
    status: dict[str, Any] | None
    patch: bytes = b""
    patch_type: str = ""
    audit_annotations: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def operation_options(operation: str, dry_run: bool, field_manager: str = "",
                      field_validation: str = "", delete_options: dict[str, Any] | None = None
                      ) -> dict[str, Any] | None:
    """The options object of the operation (`request.options`), in Go's field order."""
    if operation == "DELETE":
        out: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}
        for k in ("gracePeriodSeconds", "preconditions", "orphanDependents",
                  "propagationPolicy"):
            if (delete_options or {}).get(k) is not None:
                out[k] = delete_options[k]  # type: ignore[index]
        if dry_run:
            out["dryRun"] = ["All"]
        return out
    if operation not in ("CREATE", "UPDATE"):
        return None
    out = {"kind": "CreateOptions" if operation == "CREATE" else "UpdateOptions",
           "apiVersion": "meta.k8s.io/v1"}
    if dry_run:
        out["dryRun"] = ["All"]
    if field_manager:
        out["fieldManager"] = field_manager
    if field_validation:
        out["fieldValidation"] = field_validation
    return out


def review(versions: tuple[str, ...], *, kind: tuple[str, str, str],
           resource: tuple[str, str, str], subresource: str,
           request_kind: tuple[str, str, str], request_resource: tuple[str, str, str],
           request_subresource: str, name: str, namespace: str, operation: str,
           user: dict[str, Any], obj: dict[str, Any] | None, old: dict[str, Any] | None,
           dry_run: bool, options: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(uid, AdmissionReview body) in the first version of `versions` this server speaks."""
    api_version = next((V1 if v == "v1" else V1BETA1 for v in versions
                        if v in ("v1", "v1beta1")), None)
    if api_version is None:
        raise ReviewUnsupported("webhook does not accept known AdmissionReview versions "
                                "(v1, v1beta1)")
    uid = str(uuid.uuid4())

    def gvk(t: tuple[str, str, str]) -> dict[str, str]:
        return {"group": t[0], "version": t[1], "kind": t[2]}

    def gvr(t: tuple[str, str, str]) -> dict[str, str]:
        return {"group": t[0], "version": t[1], "resource": t[2]}

    request: dict[str, Any] = {"uid": uid, "kind": gvk(kind), "resource": gvr(resource)}
    if subresource:
        request["subResource"] = subresource
    request["requestKind"] = gvk(request_kind)
    request["requestResource"] = gvr(request_resource)
    if request_subresource:
        request["requestSubResource"] = request_subresource
    if name:
        request["name"] = name
    if namespace:
        request["namespace"] = namespace
    request.update(operation=operation, userInfo=user, object=obj, oldObject=old,
                   dryRun=dry_run, options=options)
    return uid, {"kind": "AdmissionReview", "apiVersion": api_version, "request": request}


def _gvk_string(obj: dict[str, Any]) -> str:
    """schema.GroupVersionKind.String(): `group/version, Kind=kind`."""
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={obj.get('kind') or ''}"


def verify(uid: str, mutating: bool, api_version: str, reply: Any) -> Response:
    """VerifyAdmissionResponse: the reply's verdict, patch and notes, or InvalidResponse."""
    if not isinstance(reply, dict):
        raise InvalidResponse("webhook response was absent")
    resp = reply.get("response")
    if not isinstance(resp, dict):
        raise InvalidResponse("webhook response was absent")
    patch_b64 = resp.get("patch") or ""
    patch_type = resp.get("patchType")
    if api_version == V1:
        if resp.get("uid") != uid:
            raise InvalidResponse(f'expected response.uid="{uid}", got "{resp.get("uid", "")}"')
        if (reply.get("apiVersion"), reply.get("kind")) != (V1, "AdmissionReview"):
            raise InvalidResponse(f"expected webhook response of {V1}, Kind=AdmissionReview, "
                                  f"got {_gvk_string(reply)}")
        if mutating:
            if patch_b64 and patch_type is None:
                raise InvalidResponse("webhook returned response.patch but not "
                                      "response.patchType")
            if not patch_b64 and patch_type is not None:
                raise InvalidResponse("webhook returned response.patchType but not "
                                      "response.patch")
            if patch_type is not None and not patch_type:
                raise InvalidResponse('webhook returned invalid response.patchType of ""')
        else:
            if patch_b64:
                raise InvalidResponse("validating webhook may not return response.patch")
            if patch_type is not None:
                raise InvalidResponse("validating webhook may not return response.patchType")
    elif mutating and patch_b64:
        patch_type = "JSONPatch"   # v1beta1 never checked it: pinned to the one it supports
    patch = b""
    if mutating and patch_b64:
        try:
            patch = base64.b64decode(patch_b64, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidResponse(f"illegal base64 data in response.patch: {exc}") from None
    status = resp.get("status")
    return Response(allowed=resp.get("allowed") is True,
                    status=status if isinstance(status, dict) else None,
                    patch=patch, patch_type=(patch_type or "") if mutating else "",
                    audit_annotations={str(k): str(v) for k, v in
                                       (resp.get("auditAnnotations") or {}).items()},
                    warnings=tuple(str(w) for w in resp.get("warnings") or ()))
