"""node.k8s.io RuntimeClass validation (pkg/apis/node/validation, v1.32).

The handler is a DNS-1123 label and immutable; `overhead.podFixed` is checked as container
limits are; `scheduling` holds valid labels and tolerations unique by key, operator and
effect. Upstream validates the tolerations under `scheduling.tolerations.tolerations` (the
child name is added twice) while duplicates are reported under `scheduling.tolerations[i]`;
both paths are kept as kube-apiserver prints them.
"""

from __future__ import annotations

from typing import Any

from navio.api.validation import names
from navio.api.validation.affinity import validate_tolerations
from navio.api.validation.field import Cause, child, duplicate, index, invalid
from navio.api.validation.meta import (validate_immutable, validate_labels, validate_object_meta,
                                       validate_object_meta_update)
from navio.api.validation.resources import validate_resource_requirements

__all__ = ["validate_runtime_class", "validate_runtime_class_update"]


def validate_runtime_class(rc: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(rc.get("metadata") or {}, False, names.name_is_dns_subdomain)
    handler = rc.get("handler") or ""
    for msg in names.name_is_dns_label(handler, False):
        errs.append(invalid("handler", handler, msg))
    overhead = rc.get("overhead")
    if overhead is not None:
        errs += validate_resource_requirements({"limits": overhead.get("podFixed") or {}},
                                               "overhead", set())
    scheduling = rc.get("scheduling")
    if scheduling is not None:
        if scheduling.get("nodeSelector") is not None:
            errs += validate_labels(scheduling["nodeSelector"], "scheduling.nodeSelector")
        tolerations = scheduling.get("tolerations") or []
        path = child("scheduling", "tolerations")
        errs += validate_tolerations(tolerations, child(path, "tolerations"))
        seen: set[tuple[str, str, str]] = set()
        for i, t in enumerate(tolerations):
            k = (t.get("key", ""), t.get("operator", ""), t.get("effect", ""))
            if k in seen:
                errs.append(duplicate(index(path, i), t))
            seen.add(k)
    return errs


def validate_runtime_class_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + validate_immutable(new.get("handler"), old.get("handler"), "handler")
