"""Dynamic admission: MutatingAdmissionWebhook and ValidatingAdmissionWebhook.

Mutating webhooks run after navio's built-in mutating admission (`admission.admit_create` /
`admit_update`), one after another in configuration-name order and, within a configuration,
in the order listed; each JSONPatch answer is applied, pruned to the kind's schema and
defaulted again, and the result goes through schema validation like any write. A webhook with
`reinvocationPolicy: IfNeeded` is called once more when a later webhook changed the object
after it ran (kube's webhookReinvokeContext); when any webhook changed it, the write path
(`resources.py`) re-runs the built-in pod plugins and the strategy's preparation. Validating
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

Subresources of another kind are sent as that kind: a deployments/scale update as an
autoscaling/v1 Scale (a patched spec.replicas goes back to the object), a pods/exec CONNECT
as a PodExecOptions (`connect`, called by nodeproxy; a patch of the options is not applied).

The configurations are read from the API server's watch caches and compiled once per change,
never from the store per request. matchConditions (CEL, `navio.api.matchconditions`) are
evaluated last, after the rules and selectors, over the object, old object and
AdmissionRequest the webhook would be sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from navio.api import errors
from navio.api import matchconditions
from navio.api.registry import Kind
from navio.api.webhookrules import (Attributes, Equivalent, Webhook, compile_configuration,
                                    invocation, is_exempt, namespace_selector_applies,
                                    object_selector_matches)
from navio.apiserver import admissionnotes
from navio.apiserver.webhookcall import (CallingError, apply_patch, call, internal_error,
                                        review_for)
from navio.apiserver.webhookclient import EndpointResolver, WebhookClient

if TYPE_CHECKING:
    from navio.apiserver.admission import Request
    from navio.apiserver.resources import Resources

__all__ = ["WebhookAdmission", "CallingError"]

log = logging.getLogger(__name__)

_GROUP = "admissionregistration.k8s.io"


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
                    old: dict[str, Any] | None, target: tuple[str, str] | None = None
                    ) -> Attributes:
        kind = request.kind
        meta = (request.obj or request.old or {}).get("metadata") or {}
        name = meta.get("name", "")
        namespace = meta.get("namespace", "") if kind.namespaced else ""
        if target is not None:      # CONNECT: the options object names nothing
            namespace, name = target
        if (kind.group, kind.plural) == ("", "namespaces"):
            namespace = name
        sub = kind.subresource(request.subresource) if request.subresource else None
        if sub is not None and sub.kind:
            return Attributes(kind.group, kind.version, kind.plural, sub.kind,
                              request.subresource, request.operation, namespace, name, obj,
                              old, sub.group, sub.version)
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

    def _should_call(self, hook: Webhook, attrs: Attributes, request: "Request"
                     ) -> Equivalent | None:
        """ShouldCallHook: rules (with equivalents), the namespace and object selectors, then
        matchConditions. Raises the API error kube answers for a selector it cannot apply or
        a condition that fails to evaluate under failurePolicy Fail."""
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
            raise internal_error(str(exc)) from None
        if hook.match_conditions and not self._conditions_match(hook, inv, attrs, request):
            return None
        return inv

    @staticmethod
    def _conditions_match(hook: Webhook, inv: Equivalent, attrs: Attributes,
                          request: "Request") -> bool:
        try:
            _, body = review_for(("v1",), inv, attrs, request)
        except Exception as exc:  # noqa: BLE001 - kube: NewInternalError
            raise internal_error(str(exc)) from None
        req = body["request"]
        result = matchconditions.match(hook.match_conditions, {
            "object": req.get("object"), "oldObject": req.get("oldObject"), "request": req},
            hook.failure_policy)
        if result.error is not None:
            log.warning("failed evaluating match conditions, failing closed",
                        extra={"webhook": hook.name, "error": result.error})
            resource = errors.qualified_resource(attrs.resource, attrs.group)
            named = f' "{attrs.name}"' if attrs.name else ""
            raise errors.Forbidden(f"{resource}{named} is forbidden: {result.error}",
                                   details={"name": attrs.name, "group": attrs.group,
                                            "kind": attrs.resource})
        return result.matches

    # -- one call ------------------------------------------------------------------------------
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

    @staticmethod
    def _view(request: "Request", obj: dict[str, Any] | None) -> dict[str, Any] | None:
        """What webhooks see of `obj`: the autoscaling/v1 Scale for the scale subresource,
        the object itself otherwise."""
        if request.subresource == "scale" and obj is not None \
                and obj.get("kind") == request.kind.kind:
            from navio.apiserver.subresources import to_scale
            return to_scale(request.kind, obj)
        return obj

    # -- mutating ------------------------------------------------------------------------------
    async def admit(self, request: "Request", target: tuple[str, str] | None = None
                    ) -> dict[str, Any]:
        """Run the mutating webhooks; the object as they left it (`request.obj` itself when
        none matched or changed it). Raises the API error that stops the request.
        `target` (namespace, name) names the object of a CONNECT."""
        kind = request.kind
        if is_exempt(kind.group, kind.plural):
            return request.obj
        hooks = self.hooks(True)
        if not hooks:
            return request.obj
        first = self._view(request, request.obj) if request.operation != "DELETE" else None
        obj = first
        old = self._view(request, request.old) if request.operation == "UPDATE" else None
        previously: set[str] = set()
        reinvoke: set[str] = set()
        again = False
        for round_ in (0, 1):
            if round_ == 1 and not again:
                break
            for i, hook in enumerate(hooks):
                attrs = self._attributes(request, obj, old, target)
                if round_ == 1 and hook.uid not in reinvoke:
                    continue
                inv = self._should_call(hook, attrs, request)
                if inv is None:
                    continue
                changed, obj = await self._mutate_once(hook, inv, attrs, request, round_, i)
                if changed:
                    reinvoke |= previously
                    previously = set()
                    again = True
                if hook.reinvocation_policy == "IfNeeded":
                    previously.add(hook.uid)
        if obj is None or obj is first:
            return request.obj
        if first is not request.obj:   # a Scale: only spec.replicas goes back to the object
            out = dict(request.obj, spec=dict(request.obj.get("spec") or {}))
            out["spec"]["replicas"] = (obj.get("spec") or {}).get("replicas", 0)
            return out
        return obj

    async def _mutate_once(self, hook: Webhook, inv: Equivalent, attrs: Attributes,
                           request: "Request", round_: int, index: int
                           ) -> tuple[bool, dict[str, Any] | None]:
        started = time.monotonic()
        obj = attrs.obj
        changed = False
        try:
            result = await call(self.client, hook, inv, attrs, request)
            if result.patch:
                obj, changed = apply_patch(hook, inv, attrs, result)
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
            raise internal_error(str(exc)) from None
        except errors.ApiError as exc:
            self._observe(hook, "admit", attrs.operation, started, exc)
            self._annotate_mutation(hook, round_, index, False)
            raise
        self._observe(hook, "admit", attrs.operation, started, None)
        self._annotate_mutation(hook, round_, index, changed)
        ops = orjson.loads(result.patch) if result.patch else None
        if ops:
            # PatchAuditAnnotationPrefix: the patch itself, at audit level Request or above.
            admissionnotes.annotate(
                f"patch.webhook.admission.k8s.io/round_{round_}_index_{index}",
                orjson.dumps({"configuration": hook.configuration, "webhook": hook.name,
                              "patch": ops, "patchType": "JSONPatch"}).decode(),
                request_level=True)
        return changed, obj

    @staticmethod
    def _annotate_mutation(hook: Webhook, round_: int, index: int, mutated: bool) -> None:
        admissionnotes.annotate(
            f"mutation.webhook.admission.k8s.io/round_{round_}_index_{index}",
            orjson.dumps({"configuration": hook.configuration, "webhook": hook.name,
                          "mutated": mutated}).decode())

    # -- validating ----------------------------------------------------------------------------
    async def validate(self, resources: "Resources", request: "Request",
                       target: tuple[str, str] | None = None) -> None:
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
        attrs = self._attributes(request, self._view(request, obj), self._view(request, old),
                                 target)
        calls = []
        for i, hook in enumerate(hooks):
            inv = self._should_call(hook, attrs, request)
            if inv is not None:
                calls.append(self._validate_once(hook, inv, attrs, request, i))
        if not calls:
            return
        results = await asyncio.gather(*calls, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def connect(self, kind: Kind, namespace: str, name: str, subresource: str,
                      options: dict[str, Any], opts: Any) -> None:
        """Admission of a CONNECT (pods/exec, attach, portforward): both webhook kinds see
        the options object (PodExecOptions, …). A mutation of the options is not applied."""
        from navio.apiserver.admission import Request
        request = Request(kind, "CONNECT", options, None, opts, subresource)
        await self.admit(request, (namespace, name))
        await self.validate(self.resources, request, (namespace, name))

    async def _validate_once(self, hook: Webhook, inv: Equivalent, attrs: Attributes,
                             request: "Request", index: int) -> None:
        started = time.monotonic()
        try:
            await call(self.client, hook, inv, attrs, request)
        except CallingError as exc:
            self._observe(hook, "validating", attrs.operation, started, exc)
            if hook.failure_policy == "Ignore":
                log.warning("failed calling webhook, failing open",
                            extra={"webhook": hook.name, "error": str(exc)})
                admissionnotes.annotate(
                    f"failed-open.validating.webhook.admission.k8s.io/round_0_index_{index}",
                    hook.name)
                return
            raise internal_error(str(exc)) from None
        except errors.ApiError as exc:
            self._observe(hook, "validating", attrs.operation, started, exc)
            raise
        self._observe(hook, "validating", attrs.operation, started, None)
