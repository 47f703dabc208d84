"""HTTP handlers for resource requests: one generic path for every kind and verb.

A request is parsed into a RequestInfo, its body decoded, its options read, and the work done
by `Resources`; the reply is the object, a list, a Table, or metadata only, as the client
asked. Subresources (status, scale, binding, finalize) and watches have their own modules.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from typing import Any

from aiohttp import web

from navio.api import errors, fieldvalidation, managedfields, patch, strategicpatch
from navio.api.registry import Kind
from navio.api.tables import build_table
from navio.apiserver import admissionnotes, negotiation, strategy, subresources, watchstream
from navio.apiserver.listing import list_objects, make_predicate, parse_list_options
from navio.apiserver.negotiation import MAX_BODY_BYTES, choose_output, decode_body
from navio.apiserver.netpolwarning import unenforced_warnings
from navio.apiserver.requestinfo import RequestInfo
from navio.apiserver.resources import Resources, WriteOptions

__all__ = ["ResourceHandlers", "json_response", "read_body", "apply_patch"]

_FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


def warning_header(text: str) -> str:
    """A `Warning: 299` value with `text` as an RFC 7230 quoted-string, as kube writes it
    (kubectl drops a warning whose quotes are not escaped)."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'299 - "{quoted}"'


def json_response(data: Any, status: int = 200, content_type: str = negotiation.JSON,
                  warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(body=negotiation.dumps(data), status=status,
                        headers={"Content-Type": content_type})
    for w in warnings or ():
        resp.headers.add("Warning", warning_header(w))
    return resp


async def read_body(request: web.Request) -> bytes:
    """The request body, refused with 413 past kube-apiserver's 3 MiB limit."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise errors.TooLarge("the request body is too large: limit is 3MB",
                              details={"causes": [{"reason": "RequestEntityTooLarge"}]})
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise errors.TooLarge("the request body is too large: limit is 3MB")
        chunks.append(chunk)
    return b"".join(chunks)


def _write_options(request: web.Request) -> WriteOptions:
    q = request.query
    dry = q.getall("dryRun", [])
    for d in dry:
        if d != "All":
            raise errors.BadRequest(f'Invalid dryRun value "{d}": valid values are "All"')
    manager = q.get("fieldManager", "")
    if len(manager) > 128:
        raise errors.BadRequest("fieldManager: Too long: may not be longer than 128 characters")
    return WriteOptions(dry_run=bool(dry), field_manager=manager,
                        user_agent=request.headers.get("User-Agent", ""),
                        user=request.get("user"),
                        field_validation=q.get("fieldValidation", ""))


def _field_validation(request: web.Request) -> str:
    mode = request.query.get("fieldValidation", "Warn")
    if mode not in _FIELD_VALIDATION:
        raise errors.BadRequest(f'fieldValidation: Unsupported value: "{mode}": supported '
                                f'values: "Ignore", "Strict", "Warn"')
    return mode


def _check_fields(kind: Kind, obj: dict[str, Any], mode: str, raw: bytes = b"", *,
                  patch_body: Any = None) -> tuple[dict[str, Any], list[str]]:
    """Decode errors and unknown fields, as kube-apiserver reports them: a value of the wrong
    type is 400; unknown fields are refused (Strict), warned about (Warn) or ignored, and
    dropped in every case."""
    if kind.custom is not None and isinstance(obj, dict):
        return _check_custom_fields(kind, obj, mode, raw, patch_body=patch_body)
    schema_name = kind.schema_name
    if schema_name is None or not isinstance(obj, dict):
        return obj, []
    problem = fieldvalidation.decode_error(obj, schema_name)
    if problem is not None:
        raise errors.BadRequest(fieldvalidation.cannot_handle(kind.kind, kind.version, problem))
    found: list[str] = []
    unknown = fieldvalidation.unknown_fields(obj, schema_name)
    if mode != "Ignore":
        dups = fieldvalidation.duplicate_fields(raw) if raw else []
        found = fieldvalidation.strict_errors(unknown, dups)
    if found and mode == "Strict":
        detail = fieldvalidation.strict_decoding_error(found)
        if patch_body is not None:
            raise errors.Invalid("", "", [errors.cause("FieldValueInvalid", "patch", detail,
                                                       patch_body)])
        raise errors.BadRequest(fieldvalidation.cannot_handle(kind.kind, kind.version, detail))
    # Nothing unknown: the body is what pruning would copy (callers copy before mutating).
    return (fieldvalidation.prune(obj, schema_name) if unknown else obj), found


def _check_custom_fields(kind: Kind, obj: dict[str, Any], mode: str, raw: bytes, *,
                         patch_body: Any) -> tuple[dict[str, Any], list[str]]:
    """A custom object's unknown fields, found by pruning with its structural schema
    (metadata is checked as ObjectMeta); type errors are left to schema validation (422)."""
    obj = copy.deepcopy(obj)
    unknown = kind.custom.prune(obj)
    meta = obj.get("metadata")
    if isinstance(meta, dict) and kind.schema_name:
        wrapped = {"metadata": meta}
        extra = fieldvalidation.unknown_fields(wrapped, kind.schema_name)
        if extra:
            obj["metadata"] = fieldvalidation.prune(wrapped, kind.schema_name)["metadata"]
            unknown = extra + unknown
    if mode == "Ignore":
        return obj, []
    dups = fieldvalidation.duplicate_fields(raw) if raw else []
    found = fieldvalidation.strict_errors(unknown, dups)
    if found and mode == "Strict":
        detail = fieldvalidation.strict_decoding_error(found)
        if patch_body is not None:
            raise errors.Invalid("", "", [errors.cause("FieldValueInvalid", "patch", detail,
                                                       patch_body)])
        raise errors.BadRequest(fieldvalidation.cannot_handle(kind.kind, kind.version, detail))
    return obj, found


def _json_raw(raw: bytes, content_type: str | None) -> bytes:
    """The raw body when it is JSON (duplicate-field detection reads JSON text only)."""
    return raw if negotiation.media_type(content_type) in ("", negotiation.JSON) else b""


def _check_type(kind: Kind, obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise errors.BadRequest("the object provided is unrecognized (must be of type "
                                f"{kind.kind})")
    api_version, k = obj.get("apiVersion"), obj.get("kind")
    if api_version and api_version != kind.group_version:
        raise errors.BadRequest(f"the API version in the data ({api_version}) does not match "
                                f"the expected API version ({kind.group_version})")
    if k and k != kind.kind:
        raise errors.BadRequest(f"the kind in the data ({k}) does not match the expected "
                                f"kind ({kind.kind})")
    return obj


class ResourceHandlers:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def _kind(self, info: RequestInfo) -> Kind:
        kind = self.resources.registry.resource(info.group, info.version, info.resource)
        if kind is None:
            raise errors.NotFound("the server could not find the requested resource")
        if info.namespace and not kind.namespaced and info.resource != "namespaces":
            raise errors.NotFound("the server could not find the requested resource")
        return kind

    async def handle(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        kind = self._kind(info)
        if kind.custom is not None:
            for w in kind.custom.warnings(kind.version):
                admissionnotes.warn(w)
        if info.subresource:
            return await subresources.handle(self, request, info, kind)
        if info.verb not in kind.verbs and not (info.verb == "watch" and "list" in kind.verbs):
            raise errors.MethodNotAllowed("the server does not allow this method on the "
                                          "requested resource")
        ns = info.namespace if kind.namespaced else ""
        if kind.namespaced and not ns and info.verb in ("create", "get", "update", "patch",
                                                        "delete"):
            raise errors.NotFound("the server could not find the requested resource")
        if kind.virtual:
            return await subresources.handle_virtual(self, request, info, kind)
        verb = info.verb
        if verb == "get":
            return await self.get(request, kind, ns, info.name)
        if verb in ("list", "watch"):
            return await self.list_or_watch(request, kind, ns)
        if verb == "create":
            return await self.create(request, kind, ns)
        if verb == "update":
            return await self.update(request, kind, ns, info.name)
        if verb == "patch":
            return await self.patch(request, kind, ns, info.name)
        if verb == "delete":
            return await self.delete(request, kind, ns, info.name)
        if verb == "deletecollection":
            return await self.delete_collection(request, kind, ns)
        raise errors.MethodNotAllowed("the server does not allow this method on the requested "
                                      "resource")

    # -- output --------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        clock = self.resources.clock
        return clock() if clock else dt.datetime.now(dt.timezone.utc)

    def respond(self, request: web.Request, kind: Kind, obj: dict[str, Any], status: int = 200,
                warnings: list[str] | None = None) -> web.Response:
        if (kind.group, kind.kind) == ("networking.k8s.io", "NetworkPolicy") \
                and request.method in ("POST", "PUT", "PATCH") and status < 300:
            warnings = [*(warnings or ()), *self._netpol_warnings()]
        out = choose_output(request.headers.get("Accept"), listing=False)
        if out.is_table:
            table = build_table(kind.group, kind.kind, [obj], self.now(),
                                include_object=request.query.get("includeObject", "Metadata"),
                                version=kind.version)
            table["metadata"] = {"resourceVersion":
                                 obj.get("metadata", {}).get("resourceVersion", "")}
            return json_response(table, status, out.content_type, warnings)
        if out.form == "metadata":
            return json_response(negotiation.partial_metadata(obj), status, out.content_type,
                                 warnings)
        return json_response(obj, status, warnings=warnings)

    def _netpol_warnings(self) -> list[str]:
        node_kind = self.resources.registry.resource("", "v1", "nodes")
        if node_kind is None:
            return []
        return unenforced_warnings(o for _, o in self.resources.cache(node_kind).list())

    # -- reads ---------------------------------------------------------------------------------
    async def get(self, request: web.Request, kind: Kind, ns: str, name: str) -> web.Response:
        obj = await self.resources.get(kind, ns, name,
                                       resource_version=request.query.get("resourceVersion", ""))
        return self.respond(request, kind, obj)

    async def list_or_watch(self, request: web.Request, kind: Kind,
                            ns: str) -> web.StreamResponse:
        opts = parse_list_options(request.query)
        predicate = make_predicate(kind, opts)
        if opts.watch or request.match_info.get("legacy_watch"):
            return await watchstream.serve(self, request, kind, ns, opts, predicate)
        out = choose_output(request.headers.get("Accept"), listing=True)
        cache = self.resources.cache(kind)
        items, rv, token, remaining = await list_objects(kind, cache, self.resources.store, ns,
                                                         opts, predicate)
        list_meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if token:
            list_meta["continue"] = token
            if remaining is not None:
                list_meta["remainingItemCount"] = remaining
        if out.is_table:
            table = build_table(kind.group, kind.kind, items, self.now(),
                                include_object=request.query.get("includeObject", "Metadata"),
                                version=kind.version)
            table["metadata"] = list_meta
            return json_response(table, 200, out.content_type)
        if out.form == "metadata":
            body = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                    "metadata": list_meta,
                    "items": [negotiation.partial_metadata(o) for o in items]}
            return json_response(body, 200, out.content_type)
        body = {"kind": kind.list_kind, "apiVersion": kind.group_version, "metadata": list_meta,
                "items": items}
        return json_response(body)

    # -- writes --------------------------------------------------------------------------------
    async def create(self, request: web.Request, kind: Kind, ns: str) -> web.Response:
        if kind.custom is not None and kind.custom.terminating:
            raise errors.MethodNotAllowed("create not allowed while custom resource definition "
                                          "is terminating")
        opts = _write_options(request)
        mode = _field_validation(request)
        raw = await read_body(request)
        content_type = request.headers.get("Content-Type")
        body = _check_type(kind, decode_body(raw, content_type))
        body, warnings = _check_fields(kind, body, mode, _json_raw(raw, content_type))
        meta = body.get("metadata") or {}
        if kind.namespaced and meta.get("namespace") and meta["namespace"] != ns:
            raise errors.BadRequest("the namespace of the provided object does not match the "
                                    "namespace sent on the request")
        if (kind.group, kind.kind) == ("certificates.k8s.io", "CertificateSigningRequest"):
            user = request.get("user")
            if user is not None:
                strategy.set_csr_requester(body, user.name, user.uid, user.groups, user.extra)
        obj = await self.resources.create(kind, ns, body, opts)
        return self.respond(request, kind, obj, 201, warnings)

    async def update(self, request: web.Request, kind: Kind, ns: str, name: str,
                     subresource: str = "") -> web.Response:
        opts = _write_options(request)
        mode = _field_validation(request)
        raw = await read_body(request)
        content_type = request.headers.get("Content-Type")
        body = _check_type(kind, decode_body(raw, content_type))
        body, warnings = _check_fields(kind, body, mode, _json_raw(raw, content_type))
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise errors.BadRequest(f"the name of the object ({meta['name']}) does not match "
                                    f"the name on the URL ({name})")
        if kind.namespaced and meta.get("namespace") and meta["namespace"] != ns:
            raise errors.BadRequest("the namespace of the provided object does not match the "
                                    "namespace sent on the request")
        obj, created = await self.resources.update(
            kind, ns, name, lambda current: body, opts, subresource=subresource,
            create_if_missing=_create_on_update(kind) and not subresource)
        return self.respond(request, kind, obj, 201 if created else 200, warnings)

    async def patch(self, request: web.Request, kind: Kind, ns: str, name: str,
                    subresource: str = "") -> web.Response:
        opts = _write_options(request)
        mode = _field_validation(request)
        content_type = negotiation.media_type(request.headers.get("Content-Type"))
        body = decode_body(await read_body(request), content_type, patch=True)
        warnings: list[str] = []
        if content_type == "application/apply-patch+yaml":
            return await self._apply(request, kind, ns, name, body, opts, mode, subresource)
        # Custom kinds have no Go struct to take patch strategies from: kube refuses
        # strategic merge patches for them with 415.
        schema_name = kind.schema_name if kind.custom is None else None

        def mutate(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                return {}
            result = apply_patch(content_type, current, body, schema_name)
            if result.get("metadata", {}).get("resourceVersion") == \
                    current["metadata"]["resourceVersion"]:
                result["metadata"].pop("resourceVersion", None)
            shown = (fieldvalidation.go_format(body)
                     if content_type == "application/strategic-merge-patch+json"
                     else negotiation.dumps(result).decode())
            result, found = _check_fields(kind, result, mode, patch_body=shown)
            warnings[:] = found
            return result

        obj, _ = await self.resources.update(kind, ns, name, mutate, opts,
                                             subresource=subresource)
        return self.respond(request, kind, obj, 200, warnings)

    async def _apply(self, request: web.Request, kind: Kind, ns: str, name: str, body: Any,
                     opts: WriteOptions, mode: str, subresource: str) -> web.Response:
        if not opts.field_manager:
            raise errors.BadRequest("PATCH, application/apply-patch+yaml requests must specify "
                                    "a fieldManager")
        body = _check_type(kind, body)
        if not body.get("apiVersion") or not body.get("kind"):
            raise errors.BadRequest("apiVersion and kind must be set in an apply configuration")
        body, warnings = _check_fields(kind, body, mode)
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise errors.BadRequest(f"the name of the object ({meta['name']}) does not match "
                                    f"the name on the URL ({name})")
        force = request.query.get("force", "false").lower() == "true"
        schema_name = kind.schema_name
        if schema_name is None:
            raise errors.UnsupportedMediaType("apply is not supported for this resource")
        now = self.resources.now()

        def mutate(current: dict[str, Any] | None) -> dict[str, Any]:
            live = copy.deepcopy(current) if current is not None else None
            merged = managedfields.apply(live, body, manager=opts.field_manager, force=force,
                                         schema=schema_name, now=now, subresource=subresource,
                                         status_subresource=kind.subresource("status")
                                         is not None)
            if current is not None:
                merged.setdefault("metadata", {}).pop("resourceVersion", None)
            return merged

        obj, created = await self.resources.update(kind, ns, name, mutate, opts,
                                                   subresource=subresource,
                                                   create_if_missing=not subresource,
                                                   track_fields=False)
        return self.respond(request, kind, obj, 201 if created else 200, warnings)

    async def delete(self, request: web.Request, kind: Kind, ns: str,
                     name: str) -> web.Response:
        opts = _write_options(request)
        options = await _delete_options(request)
        obj, gone = await self.resources.delete(kind, ns, name, options, opts)
        return self.respond(request, kind, obj, 200 if gone else 202)

    async def delete_collection(self, request: web.Request, kind: Kind,
                                ns: str) -> web.Response:
        opts = _write_options(request)
        options = await _delete_options(request)
        lopts = parse_list_options(request.query)
        predicate = make_predicate(kind, lopts)
        cache = self.resources.cache(kind)
        items, rv, _, _ = await list_objects(kind, cache, self.resources.store, ns,
                                             dataclasses.replace(lopts, limit=0), predicate)
        deleted = []
        for obj in items:
            meta = obj["metadata"]
            try:
                gone_obj, _ = await self.resources.delete(kind, meta.get("namespace", ""),
                                                          meta["name"], options, opts)
                deleted.append(gone_obj)
            except errors.NotFound:
                continue
        body = {"kind": kind.list_kind, "apiVersion": kind.group_version,
                "metadata": {"resourceVersion": str(rv)}, "items": deleted}
        return json_response(body)


def _create_on_update(kind: Kind) -> bool:
    """Kinds kube-apiserver lets PUT create (AllowCreateOnUpdate in their strategies)."""
    return (kind.group, kind.kind) in {("", "Endpoints"), ("coordination.k8s.io", "Lease"),
                                      ("discovery.k8s.io", "EndpointSlice"), ("", "Event"),
                                      ("events.k8s.io", "Event")}


async def _delete_options(request: web.Request) -> dict[str, Any]:
    raw = await read_body(request)
    options: dict[str, Any] = {}
    if raw.strip():
        decoded = decode_body(raw, request.headers.get("Content-Type"))
        if not isinstance(decoded, dict):
            raise errors.BadRequest("the body of a delete request must be DeleteOptions")
        options = decoded
    q = request.query
    if "gracePeriodSeconds" in q:
        try:
            options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        except ValueError:
            raise errors.BadRequest("invalid gracePeriodSeconds") from None
    if "propagationPolicy" in q:
        options["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q:
        options["orphanDependents"] = q["orphanDependents"] == "true"
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
        raise errors.Invalid("DeleteOptions", "", [errors.cause(
            "FieldValueNotSupported", "propagationPolicy",
            'supported values: "Foreground", "Background", "Orphan", nil', policy)],
            group="meta.k8s.io")
    return options


def apply_patch(content_type: str, current: dict[str, Any], body: Any,
                schema_name: str | None) -> dict[str, Any]:
    """`current` with a JSON, merge or strategic merge patch applied (a new dict)."""
    if content_type == "application/json-patch+json":
        if not isinstance(body, list):
            raise errors.BadRequest("json: cannot unmarshal object into Go value of type "
                                    "jsonpatch.Patch")
        result = patch.json_patch(current, body)
    elif content_type == "application/merge-patch+json":
        result = patch.merge_patch(current, body)
    else:
        if schema_name is None:
            raise errors.UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml")
        if not isinstance(body, dict):
            raise errors.BadRequest("the strategic merge patch must be a JSON object")
        result = strategicpatch.strategic_merge_patch(current, body, schema_name)
    if not isinstance(result, dict):
        raise errors.BadRequest("the patch produced something that is not an object")
    return result


