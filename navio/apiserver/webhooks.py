"""Dynamic admission: MutatingAdmissionWebhook and ValidatingAdmissionWebhook.

Mutating webhooks run after navio's built-in mutating admission (`admission.admit_create` /
`admit_update`), one after another in configuration-name order and, within a configuration,
in the order listed; each JSONPatch answer is applied, pruned to the kind's schema and
defaulted again, and the result goes through schema validation like any write. A webhook with
`reinvocationPolicy: IfNeeded` is called once more when a later webhook changed the object
after it ran (kube's webhookReinvokeContext; in-tree plugins are not re-run). Validating
webhooks run after the built-in validating plugins and before ResourceQuota, all at once, as
kube calls them in parallel; the first failure in webhook order wins.

For each webhook, as k8s.io/apiserver/pkg/admission/plugin/webhook does (v1.32):
- a denial is relayed as `admission webhook "NAME" denied the request: MSG` with the code
  (400 at least) and reason the webhook gave;
- a webhook that cannot be called (connection, TLS, timeout, bad response) fails the request
  with 500 `Internal error occurred: failed calling webhook "NAME": failed to call webhook:
  Post "URL?timeout=10s": …` under failurePolicy Fail, and is skipped under Ignore (with a
  `failed-open.…` audit annotation);
- a dry-run request is refused (400 `admission webhook "NAME" does not support dry run`) by a
  matching webhook whose sideEffects is neither None nor NoneOnDryRun;
- warnings become `Warning` headers; auditAnnotations are recorded as `NAME/KEY`, beside
  `mutation.webhook.admission.k8s.io/round_R_index_I`.

The configurations are read from the API server's watch caches and compiled once per change,
never from the store per request. matchConditions (CEL) are not evaluated: navio has no CEL
library yet, so a webhook with matchConditions is called whenever its rules match.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from navio.api import conversion, errors, fieldvalidation, patch
from navio.api.defaults import apply_defaults
from navio.api.registry import Kind
from navio.api.webhookrules import (Attributes, Equivalent, Webhook, compile_configuration,
                                    invocation, is_exempt, namespace_selector_applies,
                                    object_selector_matches)
from navio.apiserver import admissionnotes, admissionreview
from navio.apiserver.admissionreview import InvalidResponse, ReviewUnsupported
from navio.apiserver.webhookclient import EndpointResolver, WebhookCallError, WebhookClient

if TYPE_CHECKING:
    from navio.apiserver.admission import Request
    from navio.apiserver.resources import Resources

__all__ = ["WebhookAdmission", "CallingError"]

log = logging.getLogger(__name__)

_GROUP = "admissionregistration.k8s.io"
_NO_SIDE_EFFECTS = ("None", "NoneOnDryRun")


class CallingError(Exception):
    """webhookutil.ErrCallingWebhook: the webhook could not be called or answered badly."""

    def __init__(self, name: str, reason: str, code: int = 500) -> None:
        super().__init__(f'failed calling webhook "{name}": {reason}')
        self.code = code


def _internal(message: str) -> errors.InternalError:
    """apierrors.NewInternalError(err)."""
    return errors.InternalError(f"Internal error occurred: {message}",
                                details={"causes": [{"message": message}]})


def _denied(name: str, status: dict[str, Any] | None) -> errors.ApiError:
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


class WebhookAdmission:
    """The two webhook plugins of one API server, over its caches."""

    def __init__(self, resources: "Resources", client: WebhookClient | None = None) -> None:
        self.resources = resources
        self.client = client or WebhookClient(EndpointResolver(resources).resolve)
        self._compiled: dict[bool, tuple[Any, tuple[Webhook, ...]]] = {}
        # Set by the API server's metrics (webhookmetrics.WebhookMetrics).
        self.metrics: Any = None

    async def close(self) -> None:
        await self.client.close()

    # -- configurations ------------------------------------------------------------------------
    def hooks(self, mutating: bool) -> tuple[Webhook, ...]:
        """Every webhook of every configuration, configurations sorted by name; recompiled
        only when the watch cache changed."""
        plural = "mutatingwebhookconfigurations" if mutating else \
            "validatingwebhookconfigurations"
        kind = self.resources.registry.resource(_GROUP, "v1", plural)
        if kind is None:
            return ()
        cache = self.resources.cache(kind)
        stamp = (id(cache.objects), len(cache.objects),
                 cache.events[-1].revision if cache.events else 0)
        found = self._compiled.get(mutating)
        if found is not None and found[0] == stamp:
            return found[1]
        configs = sorted((o for _, o in cache.list()),
                         key=lambda o: o["metadata"].get("name", ""))
        hooks = tuple(h for c in configs for h in compile_configuration(c, mutating))
        self._compiled[mutating] = (stamp, hooks)
        return hooks

    # -- matching ------------------------------------------------------------------------------
    def _attributes(self, request: "Request", obj: dict[str, Any] | None,
                    old: dict[str, Any] | None) -> Attributes:
        kind = request.kind
        meta = (request.obj or request.old or {}).get("metadata") or {}
        name = meta.get("name", "")
        namespace = meta.get("namespace", "") if kind.namespaced else ""
        if (kind.group, kind.plural) == ("", "namespaces"):
            namespace = name
        return Attributes(kind.group, kind.version, kind.plural, kind.kind,
                          request.subresource, request.operation, namespace, name, obj, old)

    def _equivalents(self, kind: Kind) -> list[Equivalent]:
        prefix = kind.storage_prefix()
        return [Equivalent(k.group, k.version, k.plural, k.kind)
                for k in self.resources.registry.kinds()
                if not k.virtual and k.storage_prefix() == prefix]

    def _namespace_labels(self, name: str) -> dict[str, str] | None:
        ns_kind = self.resources.registry.resource("", "v1", "namespaces")
        assert ns_kind is not None
        ns = self.resources.cache(ns_kind).get(ns_kind.storage_key(None, name))
        return None if ns is None else ((ns.get("metadata") or {}).get("labels") or {})

    def _should_call(self, hook: Webhook, attrs: Attributes) -> Equivalent | None:
        """ShouldCallHook: rules (with equivalents), then the namespace and object
        selectors. Raises the API error kube answers for a selector it cannot apply."""
        kind = self.resources.registry.resource(attrs.group, attrs.version, attrs.resource)
        eqs = self._equivalents(kind) if kind is not None else []
        inv = invocation(hook, attrs, eqs)
        if inv is None:
            return None
        try:
            if not namespace_selector_applies(hook, attrs, self._namespace_labels):
                return None
            if not object_selector_matches(hook, attrs):
                return None
        except LookupError as exc:
            raise errors.NotFound(f'namespaces "{exc.args[0]}" not found',
                                  details={"name": exc.args[0], "kind": "namespaces"}) from None
        except ValueError as exc:
            raise _internal(str(exc)) from None
        return inv

    # -- one call ------------------------------------------------------------------------------
    def _versioned(self, obj: dict[str, Any] | None, attrs: Attributes, inv: Equivalent
                   ) -> dict[str, Any] | None:
        """The object in the version the webhook is called with."""
        if obj is None or (inv.group, inv.version) == (attrs.group, attrs.version):
            return obj
        stored = conversion.to_storage(attrs.group, attrs.kind, obj)
        out = dict(conversion.from_storage(inv.group, inv.kind, stored))
        out["apiVersion"] = f"{inv.group}/{inv.version}" if inv.group else inv.version
        return out

    def _unversioned(self, obj: dict[str, Any], attrs: Attributes, inv: Equivalent
                     ) -> dict[str, Any]:
        if (inv.group, inv.version) == (attrs.group, attrs.version):
            return obj
        stored = conversion.to_storage(inv.group, inv.kind, obj)
        out = dict(conversion.from_storage(attrs.group, attrs.kind, stored))
        out["apiVersion"] = f"{attrs.group}/{attrs.version}" if attrs.group else attrs.version
        return out

    async def _call(self, hook: Webhook, inv: Equivalent, attrs: Attributes,
                    request: "Request") -> admissionreview.Response:
        """Send the review; the verified response. Raises CallingError or an ApiError."""
        opts = request.opts
        if opts.dry_run and hook.side_effects not in _NO_SIDE_EFFECTS:
            if hook.side_effects is None:
                raise CallingError(hook.name, "Webhook SideEffects is nil", 400)
            raise errors.BadRequest(f'admission webhook "{hook.name}" does not support dry run')
        user = opts.user.to_api() if opts.user is not None else {"username": ""}
        try:
            uid, body = admissionreview.review(
                hook.review_versions, kind=(inv.group, inv.version, inv.kind),
                resource=(inv.group, inv.version, inv.resource), subresource=attrs.subresource,
                request_kind=(attrs.group, attrs.version, attrs.kind),
                request_resource=(attrs.group, attrs.version, attrs.resource),
                request_subresource=attrs.subresource, name=attrs.name,
                namespace=attrs.namespace, operation=attrs.operation, user=user,
                obj=self._versioned(attrs.obj, attrs, inv),
                old=self._versioned(attrs.old, attrs, inv), dry_run=opts.dry_run,
                options=admissionreview.operation_options(
                    attrs.operation, opts.dry_run, opts.field_manager,
                    opts.field_validation, request.options))
        except ReviewUnsupported as exc:
            raise CallingError(hook.name, f"could not create admission objects: {exc}",
                               400) from None
        try:
            reply = await self.client.post(hook.client_config, body, hook.timeout_seconds)
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
            raise _denied(hook.name, result.status)
        return result

    def _observe(self, hook: Webhook, kind: str, operation: str, started: float,
                 error: BaseException | None) -> None:
        if self.metrics is None:
            return
        if error is None:
            self.metrics.observe(hook.name, kind, operation, False, 200,
                                 time.monotonic() - started)
            return
        calling = isinstance(error, CallingError)
        rejected = not calling or hook.failure_policy != "Ignore"
        code = error.code if isinstance(error, (CallingError, errors.ApiError)) else 0
        error_type = ("calling_webhook_error" if calling else "no_error"
                      if isinstance(error, errors.ApiError) else "apiserver_internal_error")
        if rejected:
            self.metrics.rejection(hook.name, kind, operation, error_type, code)
        elif calling:
            self.metrics.fail_open(hook.name, kind)
        self.metrics.observe(hook.name, kind, operation, rejected, code,
                             time.monotonic() - started)

    # -- mutating ------------------------------------------------------------------------------
    async def admit(self, request: "Request") -> dict[str, Any]:
        """Run the mutating webhooks; the object as they left it (`request.obj` itself when
        none matched or changed it). Raises the API error that stops the request."""
        kind = request.kind
        if is_exempt(kind.group, kind.plural):
            return request.obj
        hooks = self.hooks(True)
        if not hooks:
            return request.obj
        obj: dict[str, Any] | None = request.obj if request.operation != "DELETE" else None
        old = request.old if request.operation == "UPDATE" else None
        previously: set[str] = set()
        reinvoke: set[str] = set()
        again = False
        for round_ in (0, 1):
            if round_ == 1 and not again:
                break
            for i, hook in enumerate(hooks):
                attrs = self._attributes(request, obj, old)
                inv = self._should_call(hook, attrs)
                if inv is None or (round_ == 1 and hook.uid not in reinvoke):
                    continue
                changed, obj = await self._mutate_once(hook, inv, attrs, request, round_, i)
                if changed:
                    reinvoke |= previously
                    previously = set()
                    again = True
                if hook.reinvocation_policy == "IfNeeded":
                    previously.add(hook.uid)
        return obj if obj is not None else request.obj

    async def _mutate_once(self, hook: Webhook, inv: Equivalent, attrs: Attributes,
                           request: "Request", round_: int, index: int
                           ) -> tuple[bool, dict[str, Any] | None]:
        started = time.monotonic()
        obj = attrs.obj
        changed = False
        try:
            result = await self._call(hook, inv, attrs, request)
            if result.patch:
                obj, changed = self._apply(hook, inv, attrs, result)
        except CallingError as exc:
            self._observe(hook, "admit", attrs.operation, started, exc)
            self._annotate_mutation(hook, round_, index, False)
            if hook.failure_policy == "Ignore":
                log.warning("failed calling webhook, failing open",
                            extra={"webhook": hook.name, "error": str(exc)})
                admissionnotes.annotate(
                    f"failed-open.mutation.webhook.admission.k8s.io/round_{round_}_index_"
                    f"{index}", hook.name)
                return False, obj
            raise _internal(str(exc)) from None
        except errors.ApiError as exc:
            self._observe(hook, "admit", attrs.operation, started, exc)
            self._annotate_mutation(hook, round_, index, False)
            raise
        self._observe(hook, "admit", attrs.operation, started, None)
        self._annotate_mutation(hook, round_, index, changed)
        return changed, obj

    @staticmethod
    def _annotate_mutation(hook: Webhook, round_: int, index: int, mutated: bool) -> None:
        admissionnotes.annotate(
            f"mutation.webhook.admission.k8s.io/round_{round_}_index_{index}",
            orjson.dumps({"configuration": hook.configuration, "webhook": hook.name,
                          "mutated": mutated}).decode())

    def _apply(self, hook: Webhook, inv: Equivalent, attrs: Attributes,
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
            raise _internal(f'admission webhook "{hook.name}" attempted to modify the object, '
                            f"which is not supported for this operation")
        if result.patch_type != "JSONPatch":
            raise CallingError(hook.name, f'unsupported patch type "{result.patch_type}"', 500)
        versioned = self._versioned(attrs.obj, attrs, inv)
        assert versioned is not None
        try:
            patched = patch.json_patch(versioned, ops)
        except errors.ApiError as exc:
            raise _internal(exc.message) from None
        if not isinstance(patched, dict) or (patched.get("apiVersion"), patched.get("kind")) \
                != (versioned.get("apiVersion"), versioned.get("kind")):
            raise _internal(f'admission webhook "{hook.name}" changed the object\'s apiVersion '
                            f"or kind")
        kind = self.resources.registry.resource(inv.group, inv.version, inv.resource)
        if kind is not None and kind.schema_name:
            patched = fieldvalidation.prune(patched, kind.schema_name)
        apply_defaults(inv.group, inv.kind, patched)
        changed = patched != versioned
        return self._unversioned(patched, attrs, inv), changed

    # -- validating ----------------------------------------------------------------------------
    async def validate(self, resources: "Resources", request: "Request") -> None:
        """The validating plugin (a `Resources.validators` entry): every matching webhook
        at once; the first failure, in webhook order, is the answer."""
        kind = request.kind
        if is_exempt(kind.group, kind.plural):
            return
        hooks = self.hooks(False)
        if not hooks:
            return
        if request.operation == "DELETE":
            obj, old = None, request.old
        else:
            obj, old = request.obj, request.old if request.operation == "UPDATE" else None
        attrs = self._attributes(request, obj, old)
        calls = []
        for i, hook in enumerate(hooks):
            inv = self._should_call(hook, attrs)
            if inv is not None:
                calls.append(self._validate_once(hook, inv, attrs, request, i))
        if not calls:
            return
        results = await asyncio.gather(*calls, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _validate_once(self, hook: Webhook, inv: Equivalent, attrs: Attributes,
                             request: "Request", index: int) -> None:
        started = time.monotonic()
        try:
            await self._call(hook, inv, attrs, request)
        except CallingError as exc:
            self._observe(hook, "validating", attrs.operation, started, exc)
            if hook.failure_policy == "Ignore":
                log.warning("failed calling webhook, failing open",
                            extra={"webhook": hook.name, "error": str(exc)})
                admissionnotes.annotate(
                    f"failed-open.validating.webhook.admission.k8s.io/round_0_index_{index}",
                    hook.name)
                return
            raise _internal(str(exc)) from None
        except errors.ApiError as exc:
            self._observe(hook, "validating", attrs.operation, started, exc)
            raise
        self._observe(hook, "validating", attrs.operation, started, None)
