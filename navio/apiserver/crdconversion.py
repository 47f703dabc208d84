"""CRD webhook conversion: ConversionReview over HTTPS, checked as kube-apiserver checks it.

A CRD with `spec.conversion.strategy: Webhook` stores its objects in the storage version and
serves every other version by asking its webhook (apiextensions-apiserver's
webhookConverter): one `ConversionReview` (apiextensions.k8s.io/v1, or v1beta1 when that is
the first version the CRD lists that navio speaks) carrying a fresh `uid`, the
`desiredAPIVersion` and the objects not already in it. The answer must be a ConversionReview
of the same version (v1: the same uid), `result.status: Success`, as many converted objects
as were sent, each of the desired apiVersion and the same kind, name, namespace and uid.
Only labels and annotations may change in metadata: the rest is restored from the original.
Any failure is a 500 without a reason (`ConversionFailed`) with kube's text, `conversion
webhook for <group/version>, Kind=<kind> failed: <why>` (the version the objects were in).

Conversion happens where objects change version: on write (to the storage version), when a
watch cache of a non-storage version takes in an event, and on reads that find an object
still unconverted (`Unconverted`: the cache could not convert it when the event came, e.g.
the webhook was down; the read tries again and fails with the webhook's error if it still
cannot).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from navio.api import errors
from navio.api.crd.customresource import ConversionFailed, CustomResource
from navio.api.validation.meta import validate_object_meta
from navio.apiserver.webhookclient import WebhookCallError, WebhookClient

__all__ = ["ConversionWebhooks", "Unconverted"]

# kube's conversion webhook calls have a fixed 30s budget (webhook.DefaultRequestTimeout).
_TIMEOUT = 30.0
_SPOKEN = ("v1", "v1beta1")


class Unconverted(dict):  # type: ignore[type-arg]
    """A stored object (as stored, with its resourceVersion) that still has to go through
    the conversion webhook before it can be served; `error` is why the last try failed."""

    error: str = ""


class ConversionWebhooks:
    """Calls CRD conversion webhooks with the API server's webhook client."""

    def __init__(self, client: WebhookClient) -> None:
        self.client = client

    async def convert(self, custom: CustomResource, objs: list[dict[str, Any]],
                      api_version: str) -> list[dict[str, Any]]:
        """`objs` as `api_version` serves them (same order); objects already in it are
        returned as they are. Raises ConversionFailed with kube's message."""
        hook = custom.webhook
        todo = [i for i, o in enumerate(objs) if o.get("apiVersion") != api_version]
        if hook is None or not todo:
            return [custom.converter.convert(o, api_version) for o in objs]
        first = objs[todo[0]]
        gvk = f"{first.get('apiVersion')}, Kind={first.get('kind') or custom.kind}"
        sent = [_plain(objs[i]) for i in todo]
        review_version = next((v for v in hook.review_versions if v in _SPOKEN), None)
        if review_version is None:
            raise ConversionFailed("no supported conversion review versions")
        uid = str(uuid.uuid4())
        review = {"kind": "ConversionReview",
                  "apiVersion": f"apiextensions.k8s.io/{review_version}",
                  "request": {"uid": uid, "desiredAPIVersion": api_version, "objects": sent}}
        try:
            answer = await self.client.post(hook.client_config, review, _TIMEOUT)
            converted = _converted_objects(answer, review_version, uid)
        except (WebhookCallError, _Refused) as exc:
            raise ConversionFailed(f"conversion webhook for {gvk} failed: {exc}") from None
        if len(converted) != len(sent):
            raise ConversionFailed(f"conversion webhook for {gvk} returned "
                                       f"{len(converted)} objects, expected {len(sent)}")
        out = list(objs)
        for n, (i, got) in enumerate(zip(todo, converted)):
            # kube's texts differ for one object and a list (whose index counts from 1).
            if len(objs) == 1:
                where = ("returned invalid object at index 0", "returned invalid metadata")
            else:
                where = (f"returned invalid converted object at index {n + 1}",
                         f"returned invalid metadata in object at index {n + 1}")
            out[i] = _checked(sent[n], got, api_version, f"conversion webhook for {gvk}",
                              where)
        return out


class _Refused(Exception):
    """The webhook answered, but not with a successful ConversionReview."""


def _plain(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj) if isinstance(obj, Unconverted) else obj


def _converted_objects(answer: Any, review_version: str, uid: str) -> list[Any]:
    if not isinstance(answer, dict):
        raise _Refused("unrecognized response type")
    gvk = f"apiextensions.k8s.io/{review_version}, Kind=ConversionReview"
    if review_version == "v1":
        got = f"{answer.get('apiVersion') or ''}, Kind={answer.get('kind') or ''}"
        if got != gvk:
            raise _Refused(f"expected webhook response of {gvk}, got {got}")
    resp = answer.get("response")
    if not isinstance(resp, dict):
        raise _Refused("no response provided")
    if review_version == "v1" and resp.get("uid") != uid:
        raise _Refused(f'expected response.uid="{uid}", got "{resp.get("uid") or ""}"')
    result = resp.get("result")
    if not isinstance(result, dict):
        result = {}
    if result.get("status") != "Success":
        if result.get("message"):
            raise _Refused(str(result["message"]))
        raise _Refused(f"response.result.status was '{result.get('status') or ''}', "
                       f"not 'Success'")
    objs = resp.get("convertedObjects") or []
    return objs if isinstance(objs, list) else []


def _checked(original: dict[str, Any], got: Any, api_version: str, prefix: str,
             where: tuple[str, str]) -> dict[str, Any]:
    """A converted object after kube's checks, with the original's metadata restored but
    for labels and annotations."""
    bad = f"{prefix} {where[0]}"
    if not isinstance(got, dict):
        raise ConversionFailed(f"{bad}: invalid type, expected=Unstructured")
    if got.get("apiVersion") != api_version:
        raise ConversionFailed(f"{bad}: invalid groupVersion (expected {api_version}, "
                                   f"received {got.get('apiVersion') or ''})")
    if got.get("kind") != original.get("kind"):
        raise ConversionFailed(f"{bad}: invalid kind (expected {original.get('kind')}, "
                                   f"received {got.get('kind') or ''})")
    was, meta = original.get("metadata") or {}, got.get("metadata")
    now = meta if isinstance(meta, dict) else {}
    for what, key in (("name", "name"), ("namespace", "namespace"), ("UID", "uid")):
        if (was.get(key) or "") != (now.get(key) or ""):
            raise ConversionFailed(f"{bad}: must have the same {what}: "
                                       f"{was.get(key) or ''} != {now.get(key) or ''}")
    invalid_meta = f"{prefix} {where[1]}"
    if not isinstance(meta, dict):
        raise ConversionFailed(f"{invalid_meta}: missing metadata in converted object")
    restored = copy.deepcopy(was)
    for fld in ("labels", "annotations"):
        value = meta.get(fld)
        if value is None:
            restored.pop(fld, None)
            continue
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConversionFailed(f"{invalid_meta}: invalid metadata.{fld} in converted "
                                       f"object")
        if value != (was.get(fld) or {}):
            causes = [c for c in validate_object_meta({"name": "x", fld: value}, False,
                                                      lambda n, p: [])
                      if c.get("field", "").startswith(f"metadata.{fld}")]
            if causes:
                raise ConversionFailed(f"{invalid_meta}: " + ", ".join(
                    f"{c['field']}: {c['message']}" for c in causes))
        restored[fld] = value
    return {**got, "metadata": restored}


async def resolve(conversions: ConversionWebhooks | None, custom: CustomResource | None,
                  version: str, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`objs` with every `Unconverted` one converted to `version` of `custom` (and defaulted
    as it serves them); raises the conversion's InternalError, noting it on the objects."""
    todo = [i for i, o in enumerate(objs) if isinstance(o, Unconverted)]
    if not todo:
        return objs
    if conversions is None or custom is None:
        raise ConversionFailed("conversion webhook is not available")
    try:
        converted = await conversions.convert(custom, [objs[i] for i in todo],
                                              custom.gv(version))
    except errors.ApiError as exc:
        for i in todo:
            objs[i].error = exc.message  # type: ignore[attr-defined]
        raise
    out = list(objs)
    for i, obj in zip(todo, converted):
        out[i] = custom.from_storage(obj, version)
    return out
