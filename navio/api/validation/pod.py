"""Pods, PodTemplates, ReplicationControllers and Bindings (core validation, v1.32).

Pod updates follow ValidatePodUpdate: only images, activeDeadlineSeconds (lowered or set
once), added tolerations (tolerationSeconds may change), removed scheduling gates, and a
terminationGracePeriodSeconds of 1 replacing a negative one may change; anything else is
`spec: Forbidden: pod updates may not change fields other than ...` followed by a diff. Go's
cmp.Diff of the internal struct cannot be rebuilt, so the diff lists the changed top-level
spec fields in the same -/+ form.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from navio.api.validation import names
from navio.api.validation.affinity import validate_tolerations
from navio.api.validation.field import (Cause, child, forbidden, index, invalid, key,
                                        not_supported, required)
from navio.api.validation.gorepr import go_map
from navio.api.validation.meta import (semantic_equal, selector_matches, validate_nonnegative,
                                       validate_object_meta, validate_object_meta_update)
from navio.api.validation.podspec import (MAX_INT32, validate_pod_annotations, validate_pod_spec,
                                          validate_pod_template_spec)

__all__ = ["validate_pod", "validate_pod_update", "validate_pod_ephemeral_containers_update",
           "validate_pod_template",
           "validate_pod_template_update", "validate_replication_controller",
           "validate_replication_controller_update", "validate_binding",
           "validate_pod_template_for_controller", "UPDATABLE_POD_FIELDS"]

UPDATABLE_POD_FIELDS = ("`spec.containers[*].image`,`spec.initContainers[*].image`,"
                        "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
                        "be set to 1 if it was previously negative)")
_MIRROR = "kubernetes.io/config.mirror"
_APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _metadata_and_spec(pod: dict[str, Any]) -> list[Cause]:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    errs = validate_object_meta(meta, True, names.name_is_dns_subdomain)
    errs += validate_pod_annotations(meta.get("annotations"), spec, "metadata.annotations")
    errs += validate_pod_spec(spec, "spec", meta.get("name") or None, is_pod=True)
    if not spec.get("serviceAccountName"):
        for vi, vol in enumerate(spec.get("volumes") or []):
            for si, src in enumerate((vol.get("projected") or {}).get("sources") or []):
                if src.get("serviceAccountToken") is not None:
                    p = child(index(child(index("spec.volumes", vi), "projected", "sources"), si),
                              "serviceAccountToken")
                    errs.append(forbidden(p, "must not be specified when serviceAccountName is "
                                             "not set"))
    for kind in ("containers", "initContainers"):
        for i, c in enumerate(spec.get(kind) or []):
            image = c.get("image", "")
            if len(image) != len(image.strip()):
                errs.append(invalid(child(index(child("spec", kind), i), "image"), image,
                                    "must not have leading or trailing whitespace"))
    return errs


def validate_pod(pod: dict[str, Any]) -> list[Cause]:
    """ValidatePodCreate."""
    errs = _metadata_and_spec(pod)
    spec = pod.get("spec") or {}
    if spec.get("ephemeralContainers"):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and spec.get("schedulingGates"):
        errs.append(forbidden("spec.nodeName", "cannot be set until all schedulingGates have "
                                               "been cleared"))
    return errs


def _annotation_updates(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    path = "metadata.annotations"
    na = (new.get("metadata") or {}).get("annotations") or {}
    oa = (old.get("metadata") or {}).get("annotations") or {}
    for k, v in oa.items():
        if k in na and na[k] == v:
            continue
        if k.startswith(_APPARMOR_PREFIX):
            errs.append(forbidden(key(path, k), "may not remove or update AppArmor annotations"))
        if k == _MIRROR:
            errs.append(forbidden(key(path, k), "may not remove or update mirror pod annotation"))
    for k in na:
        if k in oa:
            continue
        if k.startswith(_APPARMOR_PREFIX):
            errs.append(forbidden(key(path, k), "may not add AppArmor annotations"))
        if k == _MIRROR:
            errs.append(forbidden(key(path, k), "may not add mirror pod annotation"))
    return errs + validate_pod_annotations(na, new.get("spec") or {}, path)


def _container_updates(new: list[Any], old: list[Any], path: str) -> tuple[list[Cause], bool]:
    if len(new) != len(old):
        return [forbidden(path, "pod updates may not add or remove containers")], True
    errs: list[Cause] = []
    for i, c in enumerate(new):
        image = c.get("image", "")
        if not image:
            errs.append(required(child(index(path, i), "image")))
        if len(image.strip()) != len(image):
            errs.append(invalid(child(index(path, i), "image"), image,
                                "must not have leading or trailing whitespace"))
    return errs, False


def _go_field(name: str) -> str:
    return name[:1].upper() + name[1:]


def _spec_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    lines = ["  core.PodSpec{"]
    for k in sorted(set(old) | set(new)):
        if semantic_equal(old.get(k), new.get(k)):
            continue
        if k in old:
            lines.append(f"- \t{_go_field(k)}: {json.dumps(old[k], sort_keys=True)},")
        if k in new:
            lines.append(f"+ \t{_go_field(k)}: {json.dumps(new[k], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def _only_added_tolerations(new: list[Any], old: list[Any], path: str) -> list[Cause]:
    for o in old:
        # The old toleration, with the new one's tolerationSeconds, must still be present.
        if not any(semantic_equal({**o, "tolerationSeconds": None},
                                  {**n, "tolerationSeconds": None}) for n in new):
            return [forbidden(path, "existing toleration can not be modified except its "
                                    "tolerationSeconds")]
    return validate_tolerations(new, path)


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += _metadata_and_spec(new)
    errs += _annotation_updates(new, old)
    spec, ospec = new.get("spec") or {}, old.get("spec") or {}
    for kind in ("containers", "initContainers"):
        cerrs, stop = _container_updates(spec.get(kind) or [], ospec.get(kind) or [],
                                         child("spec", kind))
        errs += cerrs
        if stop:
            return errs
    new_ads, old_ads = spec.get("activeDeadlineSeconds"), ospec.get("activeDeadlineSeconds")
    if new_ads is not None:
        if new_ads < 0 or new_ads > MAX_INT32:
            return errs + [invalid("spec.activeDeadlineSeconds", new_ads,
                                   names.inclusive_range_error(0, MAX_INT32))]
        if old_ads is not None and old_ads < new_ads:
            return errs + [invalid("spec.activeDeadlineSeconds", new_ads,
                                   "must be less than or equal to previous value")]
    elif old_ads is not None:
        errs.append(invalid("spec.activeDeadlineSeconds", None,
                            "must not update from a positive integer to nil value"))
    errs += _only_added_tolerations(spec.get("tolerations") or [], ospec.get("tolerations") or [],
                                    "spec.tolerations")
    old_gates = {g.get("name") for g in ospec.get("schedulingGates") or []}
    for i, g in enumerate(spec.get("schedulingGates") or []):
        if g.get("name") not in old_gates:
            errs.append(forbidden(child(index("spec.schedulingGates", i), "name"),
                                  "only deletion is allowed, but found new scheduling gate "
                                  f"'{g.get('name', '')}'"))
    if semantic_equal(spec, ospec):
        return errs
    munged = copy.deepcopy(spec)
    for kind in ("containers", "initContainers"):
        for c, oc in zip(munged.get(kind) or [], ospec.get(kind) or []):
            c["image"] = oc.get("image")
    for f in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged.pop(f, None)
        if f in ospec:
            munged[f] = copy.deepcopy(ospec[f])
    old_tgp = ospec.get("terminationGracePeriodSeconds")
    if old_tgp is not None and old_tgp < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_tgp
    if ospec.get("schedulingGates"):
        ons, nns = ospec.get("nodeSelector") or {}, munged.get("nodeSelector") or {}
        if not semantic_equal(nns, ons):
            if any(nns.get(k) != v for k, v in ons.items()):
                errs.append(invalid("spec.nodeSelector", go_map(munged.get("nodeSelector")),
                                    "only additions to spec.nodeSelector are allowed (no "
                                    "mutations or deletions)"))
            munged["nodeSelector"] = copy.deepcopy(ospec.get("nodeSelector"))
    if not semantic_equal(munged, ospec):
        errs.append(forbidden("spec", "pod updates may not change fields other than "
                                      f"{UPDATABLE_POD_FIELDS}\n{_spec_diff(ospec, munged)}"))
    return errs


def validate_pod_ephemeral_containers_update(new: dict[str, Any],
                                             old: dict[str, Any]) -> list[Cause]:
    """ValidatePodEphemeralContainersUpdate (the pods/ephemeralcontainers subresource): the
    pod as a whole stays valid (so new ephemeral containers have unique names and no ports,
    probes or resources) and the ephemeral containers already there are neither removed nor
    changed."""
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += _metadata_and_spec(new)
    errs += _annotation_updates(new, old)
    if _MIRROR in ((old.get("metadata") or {}).get("annotations") or {}):
        return [forbidden("", "static pods do not support ephemeral containers")]
    path = "spec.ephemeralContainers"
    by_name = {c.get("name"): c for c in (new.get("spec") or {}).get("ephemeralContainers") or []}
    for o in (old.get("spec") or {}).get("ephemeralContainers") or []:
        name = o.get("name", "")
        n = by_name.get(name)
        if n is None:
            errs.append(forbidden(path, f'existing ephemeral containers "{name}" may not be '
                                        f"removed\n"))
        elif not semantic_equal(o, n):
            diff = "\n".join(
                line for k in sorted(set(o) | set(n)) if not semantic_equal(o.get(k), n.get(k))
                for line in ((f"- \t{_go_field(k)}: {json.dumps(o[k], sort_keys=True)},"
                              if k in o else None),
                             (f"+ \t{_go_field(k)}: {json.dumps(n[k], sort_keys=True)},"
                              if k in n else None)) if line)
            errs.append(forbidden(key(path, name), f'existing ephemeral containers "{name}" may '
                                                   f"not be changed\n{diff}\n"))
    return errs


def validate_pod_template(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    return errs + validate_pod_template_spec(obj.get("template"), "template")


def validate_pod_template_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + validate_pod_template_spec(new.get("template"), "template")


def validate_pod_template_for_controller(tmpl: Any, selector_ok: bool, matches: bool,
                                         path: str, kind: str) -> list[Cause]:
    """The ReplicaSet/RC/Deployment template rules: labels match the selector, a valid pod
    template, restartPolicy Always and no activeDeadlineSeconds."""
    if tmpl is None:
        return [required(path)]
    errs: list[Cause] = []
    labels = (tmpl.get("metadata") or {}).get("labels")
    if selector_ok and not matches:
        errs.append(invalid(child(path, "metadata", "labels"), go_map(labels),
                            "`selector` does not match template `labels`"))
    errs += validate_pod_template_spec(tmpl, path)
    spec = tmpl.get("spec") or {}
    if spec.get("restartPolicy", "") != "Always":
        errs.append(not_supported(child(path, "spec", "restartPolicy"),
                                  spec.get("restartPolicy", ""), ["Always"]))
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden(child(path, "spec", "activeDeadlineSeconds"),
                              f"activeDeadlineSeconds in {kind} is not Supported"))
    return errs


def _rc_spec(spec: dict[str, Any]) -> list[Cause]:
    errs = validate_nonnegative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    selector = spec.get("selector") or {}
    if not selector:
        errs.append(required("spec.selector"))
    errs += validate_nonnegative(spec.get("replicas", 0), "spec.replicas")
    tmpl = spec.get("template")
    matches = selector_matches({"matchLabels": selector},
                               ((tmpl or {}).get("metadata") or {}).get("labels"))
    errs += validate_pod_template_for_controller(tmpl, bool(selector), matches, "spec.template",
                                                 "ReplicationController")
    return errs


def validate_replication_controller(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    return errs + _rc_spec(obj.get("spec") or {})


def validate_replication_controller_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _rc_spec(new.get("spec") or {})


def validate_binding(obj: dict[str, Any]) -> list[Cause]:
    target = obj.get("target") or {}
    errs: list[Cause] = []
    if target.get("kind") and target["kind"] != "Node":
        errs.append(not_supported("target.kind", target["kind"], ["Node", "<empty>"]))
    if not target.get("name"):
        errs.append(required("target.name"))
    return errs
