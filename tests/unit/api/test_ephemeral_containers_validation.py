"""pods/ephemeralcontainers: kube's strategy (only spec.ephemeralContainers is taken from the
write) and ValidatePodEphemeralContainersUpdate."""

from __future__ import annotations

import copy
from typing import Any

from navio.api import validation
from navio.api.defaults import apply_defaults
from navio.apiserver.strategy import prepare_ephemeral_containers_update


def pod(**spec: Any) -> dict[str, Any]:
    obj = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "d", "uid": "u", "resourceVersion": "5",
                        "labels": {"a": "b"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}
    apply_defaults("", "Pod", obj)
    return obj


def with_ephemeral(base: dict[str, Any], *containers: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(base)
    new["spec"]["ephemeralContainers"] = [
        *(base["spec"].get("ephemeralContainers") or []), *containers]
    apply_defaults("", "Pod", new)
    return new


def errors(new: dict[str, Any], old: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["field"], c["message"].split("\n")[0])
            for c in validation.validate_ephemeral_containers_update(new, old)]


def test_only_ephemeral_containers_are_taken_from_the_write() -> None:
    old = pod()
    new = with_ephemeral(old, {"name": "dbg", "image": "busybox"})
    new["metadata"]["labels"] = {"changed": "yes"}
    new["spec"]["containers"][0]["image"] = "other"
    out = prepare_ephemeral_containers_update(new, old)
    assert out["metadata"]["labels"] == {"a": "b"}
    assert out["spec"]["containers"] == old["spec"]["containers"]
    assert [c["name"] for c in out["spec"]["ephemeralContainers"]] == ["dbg"]
    assert errors(out, old) == []


def test_additions_only_and_names_unique() -> None:
    old = with_ephemeral(pod(), {"name": "dbg", "image": "busybox"})
    changed = copy.deepcopy(old)
    changed["spec"]["ephemeralContainers"][0]["image"] = "x"
    assert errors(changed, old) == [("spec.ephemeralContainers[dbg]",
                                     'Forbidden: existing ephemeral containers "dbg" may not be '
                                     "changed")]
    removed = copy.deepcopy(old)
    removed["spec"]["ephemeralContainers"] = []
    assert errors(removed, old) == [("spec.ephemeralContainers",
                                     'Forbidden: existing ephemeral containers "dbg" may not be '
                                     "removed")]
    dup = with_ephemeral(old, {"name": "c", "image": "x"})
    assert ("spec.ephemeralContainers[1].name", 'Duplicate value: "c"') in errors(dup, old)


def test_no_ports_probes_or_resources() -> None:
    old = pod()
    new = with_ephemeral(old, {"name": "e", "image": "x", "ports": [{"containerPort": 80}],
                               "readinessProbe": {"exec": {"command": ["true"]}},
                               "resources": {"limits": {"cpu": "1"}}})
    fields = {f for f, _ in errors(new, old)}
    assert {"spec.ephemeralContainers[0].ports", "spec.ephemeralContainers[0].readinessProbe",
            "spec.ephemeralContainers[0].resources"} <= fields


def test_static_pods_have_none() -> None:
    old = pod()
    old["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    new = with_ephemeral(old, {"name": "e", "image": "x"})
    assert errors(new, old) == [("", "Forbidden: static pods do not support ephemeral "
                                     "containers")]
