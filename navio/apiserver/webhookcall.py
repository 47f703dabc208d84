"""One admission webhook call, as k8s.io/apiserver's webhook dispatchers make it (v1.32).

`call` sends the AdmissionReview (refusing first, with upstream's 400, a dry run to a webhook
that may have side effects), verifies the answer, records its warnings and audit annotations,
and turns a denial into the webhook's Status with the message `admission webhook "NAME"
denied the request: MSG` (code at least 400). A webhook that cannot be called or answers
badly raises `CallingError`, which the dispatcher turns into a 500 or ignores, per the
failure policy. `apply_patch` applies a mutating webhook's JSONPatch to the object in the
version the webhook saw, then prunes it to the kind's schema and defaults it, as upstream
decodes the patched JSON into the typed object and runs the defaulters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from navio.api import conversion, errors, fieldvalidation, patch, schema
from navio.api.defaults import apply_defaults
from navio.api.webhookrules import Attributes, Equivalent, Webhook
from navio.apiserver import admissionnotes, admissionreview
from navio.apiserver.admissionreview import InvalidResponse, ReviewUnsupported
from navio.apiserver.webhookclient import WebhookCallError, WebhookClient

if TYPE_CHECKING:
    from navio.apiserver.admission import Request

__all__ = ["CallingError", "internal_error", "denied", "kind_of", "versioned",
           "unversioned", "call", "apply_patch", "review_for"]

_NO_SIDE_EFFECTS = ("None", "NoneOnDryRun")


class CallingError(Exception):
    """webhookutil.ErrCallingWebhook: the webhook could not be called or answered badly."""

    def __init__(self, name: str, reason: str, code: int = 500) -> None:
        super().__init__(f'failed calling webhook "{name}": {reason}')
        self.code = code


def internal_error(message: str) -> errors.InternalError:
    """apierrors.NewInternalError(err)."""
    return errors.InternalError(f"Internal error occurred: {message}",
                                details={"causes": [{"message": message}]})


def denied(name: str, status: dict[str, Any] | None) -> errors.ApiError:
    """webhookerrors.ToStatusErr: the webhook's Status, its message prefixed."""
    status = dict(status or {})
    denied_by = f'admission webhook "{name}" denied the request'
    if status.get("message"):
        message = f"{denied_by}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied_by}: {status['reason']}"
    else:
        message = f"{denied_by} without explanation"
    code = status.get("code")
    exc = errors.ApiError(message, details=status.get("details") or None)
    exc.code = code if isinstance(code, int) and code >= 400 else 400
    exc.reason = str(status.get("reason") or "")
    return exc


def kind_of(attrs: Attributes, inv: Equivalent) -> tuple[str, str, str]:
    """The object's group/version/kind as the webhook is called."""
    if (inv.group, inv.version) == (attrs.group, attrs.version):
        return attrs.gvk
    return inv.group, inv.version, inv.kind


def versioned(obj: dict[str, Any] | None, attrs: Attributes, inv: Equivalent
              ) -> dict[str, Any] | None:
    """The object in the version the webhook is called with."""
    if obj is None or (inv.group, inv.version) == (attrs.group, attrs.version):
        return obj
    stored = conversion.to_storage(attrs.group, attrs.kind, obj)
    out = dict(conversion.from_storage(inv.group, inv.kind, stored))
    out["apiVersion"] = f"{inv.group}/{inv.version}" if inv.group else inv.version
    return out


def unversioned(obj: dict[str, Any], attrs: Attributes, inv: Equivalent) -> dict[str, Any]:
    """`versioned` undone: a patched object back in the request's version."""
    if (inv.group, inv.version) == (attrs.group, attrs.version):
        return obj
    stored = conversion.to_storage(inv.group, inv.kind, obj)
    out = dict(conversion.from_storage(attrs.group, attrs.kind, stored))
    out["apiVersion"] = f"{attrs.group}/{attrs.version}" if attrs.group else attrs.version
    return out


def review_for(versions: tuple[str, ...], inv: Equivalent, attrs: Attributes,
               request: "Request") -> tuple[str, dict[str, Any]]:
    """(uid, AdmissionReview) for `attrs` as the invocation `inv` sees it; raises
    ReviewUnsupported when none of `versions` is spoken."""
    opts = request.opts
    user = opts.user.to_api() if opts.user is not None else {"username": ""}
    return admissionreview.review(
        versions, kind=kind_of(attrs, inv),
        resource=(inv.group, inv.version, inv.resource), subresource=attrs.subresource,
        request_kind=attrs.gvk,
        request_resource=(attrs.group, attrs.version, attrs.resource),
        request_subresource=attrs.subresource, name=attrs.name,
        namespace=attrs.namespace, operation=attrs.operation, user=user,
        obj=versioned(attrs.obj, attrs, inv),
        old=versioned(attrs.old, attrs, inv), dry_run=opts.dry_run,
        options=admissionreview.operation_options(
            attrs.operation, opts.dry_run, opts.field_manager,
            opts.field_validation, request.options))


async def call(client: WebhookClient, hook: Webhook, inv: Equivalent, attrs: Attributes,
               request: "Request") -> admissionreview.Response:
    """Send the review; the verified response. Raises CallingError or an ApiError."""
    opts = request.opts
    if opts.dry_run and hook.side_effects not in _NO_SIDE_EFFECTS:
        if hook.side_effects is None:
            raise CallingError(hook.name, "Webhook SideEffects is nil", 400)
        raise errors.BadRequest(f'admission webhook "{hook.name}" does not support dry run')
    try:
        uid, body = review_for(hook.review_versions, inv, attrs, request)
    except ReviewUnsupported as exc:
        raise CallingError(hook.name, f"could not create admission objects: {exc}",
                           400) from None
    try:
        reply = await client.post(hook.client_config, body, hook.timeout_seconds)
    except WebhookCallError as exc:
        raise CallingError(hook.name, f"failed to call webhook: {exc}",
                           exc.status_code or 503) from None
    try:
        result = admissionreview.verify(uid, hook.mutating, body["apiVersion"], reply)
    except InvalidResponse as exc:
        raise CallingError(hook.name, f"received invalid webhook response: {exc}",
                           503) from None
    for k, v in result.audit_annotations.items():
        admissionnotes.annotate(f"{hook.name}/{k}", v)
    for w in result.warnings:
        admissionnotes.warn(w)
    if not result.allowed:
        raise denied(hook.name, result.status)
    return result


def apply_patch(hook: Webhook, inv: Equivalent, attrs: Attributes,
                result: admissionreview.Response) -> tuple[dict[str, Any], bool]:
    """The object with the webhook's JSONPatch applied, pruned and defaulted."""
    try:
        ops = orjson.loads(result.patch)
    except orjson.JSONDecodeError as exc:
        raise CallingError(hook.name, f"received undecodable patch in webhook response: "
                                      f"{exc}", 503) from None
    if not isinstance(ops, list):
        raise CallingError(hook.name, "received undecodable patch in webhook response: "
                                      "json: cannot unmarshal object into Go value of type "
                                      "jsonpatch.Patch", 503)
    if not ops:
        return attrs.obj or {}, False
    if attrs.obj is None:
        raise internal_error(f'admission webhook "{hook.name}" attempted to modify the object, '
                        f"which is not supported for this operation")
    if result.patch_type != "JSONPatch":
        raise CallingError(hook.name, f'unsupported patch type "{result.patch_type}"', 500)
    seen = versioned(attrs.obj, attrs, inv)
    assert seen is not None
    try:
        patched = patch.json_patch(seen, ops)
    except errors.ApiError as exc:
        raise internal_error(exc.message) from None
    if not isinstance(patched, dict) or (patched.get("apiVersion"), patched.get("kind")) \
            != (seen.get("apiVersion"), seen.get("kind")):
        raise internal_error(f'admission webhook "{hook.name}" changed the object\'s apiVersion '
                        f"or kind")
    group, version, kind_name = kind_of(attrs, inv)
    schema_name = schema.definition_name(group, version, kind_name)
    if schema_name:
        patched = fieldvalidation.prune(patched, schema_name)
    apply_defaults(group, kind_name, patched)
    changed = patched != seen
    return unversioned(patched, attrs, inv), changed
