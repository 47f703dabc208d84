"""CustomResourceDefinitions with the real kubectl: issue 4's "Shown by" for CRDs.

Each test defines its own group (the server is shared by the session), applies a CRD with a
structural schema, and drives custom objects through kubectl: validation errors worded as
kube's, pruning, defaults, printer columns, the status and scale subresources, categories,
several versions, and deletion of the CRD with its objects.
"""

from __future__ import annotations

import itertools
import json
import time

import yaml

from cluster import Kubectl, wait_for

_groups = itertools.count()


def _crd(group: str, *, versions: list[dict] | None = None, scope: str = "Namespaced",
         kind: str = "CronTab", plural: str = "crontabs", **names: object) -> dict:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "description": "spec is what the cron tab should run.",
                "required": ["cronSpec"],
                "x-kubernetes-validations": [
                    {"rule": "self.replicas <= 8 || self.image != 'busy'",
                     "message": "busy images need at most 8 replicas"},
                    {"rule": "!has(self.until) || self.until.startsWith('20')",
                     "messageExpression": "'until must be this century, not ' + self.until",
                     "fieldPath": ".until", "reason": "FieldValueForbidden"},
                    {"rule": "self.image == oldSelf.image || !oldSelf.image.startsWith('x-')",
                     "message": "an x- image cannot be replaced"},
                ],
                "properties": {
                    "cronSpec": {"type": "string", "description": "cronSpec says when.",
                                 "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                    "image": {"type": "string", "minLength": 1},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10,
                                 "default": 1},
                    "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                    "until": {"type": "string"},
                    "port": {"x-kubernetes-int-or-string": True},
                    "tags": {"type": "array", "maxItems": 3,
                             "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "email": {"type": "string", "format": "email", "nullable": True},
                },
            },
            "status": {"type": "object", "properties": {
                "replicas": {"type": "integer"}, "selector": {"type": "string"},
                "phase": {"type": "string"}}},
        },
    }
    version = {"name": "v1", "served": True, "storage": True,
               "schema": {"openAPIV3Schema": schema},
               "subresources": {"status": {}, "scale": {
                   "specReplicasPath": ".spec.replicas",
                   "statusReplicasPath": ".status.replicas",
                   "labelSelectorPath": ".status.selector"}},
               "additionalPrinterColumns": [
                   {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                   {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                   {"name": "Phase", "type": "string", "jsonPath": ".status.phase",
                    "priority": 1},
                   {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope, "versions": versions or [version],
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                               **names}}}


def _apply(kubectl: Kubectl, *objs: dict, **kw: object) -> str:
    return kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs), **kw)


def _established(kubectl: Kubectl, name: str) -> None:
    def ok() -> bool:
        crd = kubectl.json("get", "crd", name)
        conds = {c["type"]: c["status"] for c in crd["status"].get("conditions", ())}
        return conds.get("Established") == "True"
    wait_for(ok, 10, f"CRD {name} Established")


def _raw(kubectl: Kubectl, path: str) -> dict:
    return json.loads(kubectl("get", "--raw", path))


def _new_group() -> str:
    return f"t{next(_groups)}-{int(time.time() * 1000) % 100000}.example.com"


def test_crd_lifecycle_validation_pruning_defaults_columns(kubectl: Kubectl, ns: str) -> None:
    group = _new_group()
    crd = _crd(group, shortNames=["ct"], categories=["all"])
    start = time.monotonic()
    _apply(kubectl, crd)
    _established(kubectl, f"crontabs.{group}")
    assert time.monotonic() - start < 10
    # The kind is served at once: create right after Established.
    crd_obj = kubectl.json("get", "crd", f"crontabs.{group}")
    assert crd_obj["status"]["acceptedNames"]["kind"] == "CronTab"
    conds = {c["type"]: c for c in crd_obj["status"]["conditions"]}
    assert conds["NamesAccepted"]["reason"] == "NoConflicts"
    assert conds["Established"]["reason"] == "InitialNamesAccepted"
    assert crd_obj["status"]["storedVersions"] == ["v1"]
    assert f"crontabs.{group}" in kubectl("get", "crd")

    explained = kubectl("explain", f"crontabs.{group}.spec")
    assert "cronSpec" in explained and "cronSpec says when." in explained
    assert "-required-" in explained
    # The Swagger 2.0 document kubectl reads in protobuf describes the kind as well.
    explained = kubectl("explain", f"crontabs.{group}.spec", "--output=plaintext-openapiv2")
    assert "cronSpec says when." in explained and f"VERSION:  {group}/v1" in explained

    good = {"apiVersion": f"{group}/v1", "kind": "CronTab",
            "metadata": {"name": "good", "namespace": ns},
            "spec": {"cronSpec": "* * * * */5", "image": "img", "unknown": "x",
                     "extra": {"anything": {"goes": 1}}, "port": "http"}}
    # kubectl validates strictly by default: unknown fields are errors, as on kube.
    r = kubectl.run("apply", "-f", "-", input=json.dumps(good), check=False)
    assert r.returncode != 0
    assert 'strict decoding error: unknown field "spec.unknown"' in r.stderr
    r = kubectl.run("apply", "--validate=warn", "-f", "-", input=json.dumps(good))
    assert 'Warning: unknown field "spec.unknown"' in r.stderr
    obj = kubectl.json("get", f"crontabs.{group}", "good", "-n", ns)
    assert "unknown" not in obj["spec"]                           # pruned
    assert obj["spec"]["extra"] == {"anything": {"goes": 1}}      # preserved
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["mode"] == "fast"   # defaulted
    assert obj["metadata"]["generation"] == 1

    bad = {"apiVersion": f"{group}/v1", "kind": "CronTab",
           "metadata": {"name": "bad", "namespace": ns},
           "spec": {"cronSpec": "* * * *", "image": "busy", "replicas": 15, "mode": "odd",
                    "tags": ["a", "a"], "until": "1999", "port": True, "email": "nope"}}
    r = kubectl.run("create", "-f", "-", input=json.dumps(bad), check=False)
    assert r.returncode != 0
    err = r.stderr
    assert 'The CronTab "bad" is invalid' in err
    assert ("spec.cronSpec: Invalid value: \"* * * *\": spec.cronSpec in body should match "
            "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'") in err
    assert "spec.replicas: Invalid value: 15: spec.replicas in body should be less than or " \
           "equal to 10" in err
    assert 'spec.mode: Unsupported value: "odd": supported values: "fast", "slow"' in err
    assert 'spec.tags[1]: Duplicate value: "a"' in err
    assert 'spec.port: Invalid value: "boolean": spec.port in body must be of type ' \
           'integer,string: "boolean"' in err
    assert 'spec.email: Invalid value: "nope": spec.email in body must be of type email: ' \
           '"nope"' in err
    assert 'spec: Invalid value: "object": busy images need at most 8 replicas' in err
    assert "spec.until: Forbidden: until must be this century, not 1999" in err
    r = kubectl.run("create", "-f", "-", check=False, input=json.dumps(
        {**bad, "spec": {"image": "x", "replicas": "3"}}))
    assert "spec.cronSpec: Required value" in r.stderr
    assert 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type ' \
           'integer: "string"' in r.stderr

    # Printer columns (priority 1 only with -o wide), short name, category `all`.
    out = kubectl("get", "ct", "-n", ns)
    header = out.splitlines()[0].split()
    assert header == ["NAME", "SPEC", "REPLICAS", "AGE"]
    row = out.splitlines()[1].split()
    assert row[:5] == ["good", "*", "*", "*", "*"] and row[6] == "1"
    assert "PHASE" in kubectl("get", "ct", "-n", ns, "-o", "wide").splitlines()[0]
    assert f"crontab.{group}/good" in kubectl("get", "all", "-n", ns)
    assert "good" in kubectl("get", "ct", "-n", ns, "--field-selector", "metadata.name=good")
    assert "good" not in kubectl("get", "ct", "-n", ns, "--field-selector",
                                 "metadata.name=other")

    # Transition rule: an x- image cannot be replaced.
    kubectl("patch", "ct", "good", "-n", ns, "--type=merge", "-p",
            '{"spec":{"image":"x-1"}}')
    r = kubectl.run("patch", "ct", "good", "-n", ns, "--type=merge", "-p",
                    '{"spec":{"image":"y"}}', check=False)
    assert 'spec: Invalid value: "object": an x- image cannot be replaced' in r.stderr
    assert kubectl.json("get", "ct", "good", "-n", ns)["metadata"]["generation"] == 2

    # Strategic merge patch is refused for custom kinds, as kube does (415).
    r = kubectl.run("patch", "ct", "good", "-n", ns, "--type=strategic", "-p",
                    '{"spec":{"image":"z"}}', check=False)
    assert r.returncode != 0
    assert "the body of the request was in an unknown format" in r.stderr

    # status and scale subresources.
    kubectl("patch", "ct", "good", "-n", ns, "--subresource=status", "--type=merge", "-p",
            '{"status":{"replicas":2,"selector":"app=cron","phase":"Running"},'
            '"spec":{"image":"ignored"},"metadata":{"labels":{"via":"status"}}}')
    obj = kubectl.json("get", "ct", "good", "-n", ns)
    assert obj["status"]["phase"] == "Running" and obj["spec"]["image"] == "x-1"
    assert "via" not in (obj["metadata"].get("labels") or {})   # /status sets status only
    kubectl("scale", "ct", "good", "-n", ns, "--replicas=4")
    obj = kubectl.json("get", "ct", "good", "-n", ns)
    assert obj["spec"]["replicas"] == 4 and obj["status"]["replicas"] == 2
    scale = _raw(kubectl,
                         f"/apis/{group}/v1/namespaces/{ns}/crontabs/good/scale")
    assert scale["spec"] == {"replicas": 4}
    assert scale["status"] == {"replicas": 2, "selector": "app=cron"}
    # A main-resource write cannot change status.
    kubectl("patch", "ct", "good", "-n", ns, "--type=merge", "-p",
            '{"status":{"phase":"Hacked"}}')
    assert kubectl.json("get", "ct", "good", "-n", ns)["status"]["phase"] == "Running"

    # Server-side apply works on custom kinds.
    ssa = {"apiVersion": f"{group}/v1", "kind": "CronTab",
           "metadata": {"name": "applied", "namespace": ns},
           "spec": {"cronSpec": "0 * * * *", "image": "a", "tags": ["x"]}}
    kubectl("apply", "--server-side", "--field-manager=me", "-f", "-", input=json.dumps(ssa))
    obj = kubectl.json("get", "ct", "applied", "-n", ns, "--show-managed-fields")
    assert obj["spec"]["tags"] == ["x"]
    assert any(m["manager"] == "me" for m in obj["metadata"]["managedFields"])

    # Deleting the CRD deletes its objects first, then the kind is no longer served.
    kubectl("delete", "crd", f"crontabs.{group}", timeout=30)
    r = kubectl.run("get", f"crontabs.{group}", "-n", ns, check=False)
    assert r.returncode != 0
    assert kubectl("get", "crd", "-o", "name").count(f"crontabs.{group}") == 0


def test_crd_delete_waits_for_object_finalizers(kubectl: Kubectl, ns: str) -> None:
    group = _new_group()
    _apply(kubectl, _crd(group, scope="Cluster"))
    _established(kubectl, f"crontabs.{group}")
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": f"{group}/v1", "kind": "CronTab",
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        "spec": {"cronSpec": "* * * * *"}}))
    kubectl("delete", "crd", f"crontabs.{group}", "--wait=false")

    def terminating() -> bool:
        crd = kubectl.json("get", "crd", f"crontabs.{group}")
        conds = {c["type"]: c for c in crd["status"].get("conditions", ())}
        return conds.get("Terminating", {}).get("reason") == "InstanceDeletionInProgress"
    wait_for(terminating, 10, "CRD Terminating")
    crd = kubectl.json("get", "crd", f"crontabs.{group}")
    assert crd["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    held = kubectl.json("get", f"crontabs.{group}", "held")
    assert held["metadata"].get("deletionTimestamp")
    r = kubectl.run("create", "-f", "-", check=False, input=json.dumps({
        "apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": "late"},
        "spec": {"cronSpec": "* * * * *"}}))
    assert "create not allowed while custom resource definition is terminating" in r.stderr
    kubectl("patch", f"crontabs.{group}", "held", "--type=merge", "-p",
            '{"metadata":{"finalizers":null}}')
    wait_for(lambda: f"crontabs.{group}" not in kubectl("get", "crd", "-o", "name"), 10,
             "CRD gone after its last object")


def test_crd_versions_conversion_and_deprecation(kubectl: Kubectl, ns: str) -> None:
    group = _new_group()
    schema = {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"size": {"type": "integer", "default": 3}}}}}}
    versions = [
        {"name": "v1beta1", "served": True, "storage": False, "deprecated": True,
         "schema": schema, "additionalPrinterColumns": [
             {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]},
        {"name": "v1", "served": True, "storage": True, "schema": schema},
        {"name": "v1alpha1", "served": False, "storage": False, "schema": schema},
    ]
    _apply(kubectl, _crd(group, versions=versions, kind="Widget", plural="widgets"))
    _established(kubectl, f"widgets.{group}")
    r = kubectl.run("create", "-f", "-", input=json.dumps({
        "apiVersion": f"{group}/v1beta1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": ns}, "spec": {}}))
    assert f"Warning: {group}/v1beta1 Widget is deprecated" in r.stderr
    v1 = kubectl.json("get", f"widgets.v1.{group}", "w", "-n", ns)
    assert v1["apiVersion"] == f"{group}/v1" and v1["spec"] == {"size": 3}
    # Each version prints its own columns.
    assert kubectl("get", f"widgets.v1beta1.{group}", "-n", ns).split() == ["NAME", "SIZE",
                                                                         "w", "3"]
    assert kubectl("get", f"widgets.v1.{group}", "-n", ns).split()[:2] == ["NAME", "AGE"]
    beta = _raw(kubectl, f"/apis/{group}/v1beta1/namespaces/{ns}/widgets/w")
    assert beta["apiVersion"] == f"{group}/v1beta1"
    r = kubectl.run("get", "--raw", f"/apis/{group}/v1alpha1/namespaces/{ns}/widgets",
                    check=False)
    assert r.returncode != 0
    disc = _raw(kubectl, f"/apis/{group}")
    assert disc["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in disc["versions"]] == ["v1", "v1beta1"]
    v3 = _raw(kubectl, f"/openapi/v3/apis/{group}/v1")
    assert any(name.endswith(".v1.Widget") for name in v3["components"]["schemas"])
    kubectl("delete", "crd", f"widgets.{group}", timeout=30)


def test_crd_name_conflict_and_invalid_crd(kubectl: Kubectl) -> None:
    group = _new_group()
    _apply(kubectl, _crd(group, kind="Gadget", plural="gadgets", shortNames=["gd"]))
    _established(kubectl, f"gadgets.{group}")
    _apply(kubectl, _crd(group, kind="Gizmo", plural="gizmos", shortNames=["gd"]))

    def conflicted() -> bool:
        crd = kubectl.json("get", "crd", f"gizmos.{group}")
        conds = {c["type"]: c for c in crd["status"].get("conditions", ())}
        return conds.get("NamesAccepted", {}).get("status") == "False"
    wait_for(conflicted, 10, "NamesAccepted False on a name conflict")
    crd = kubectl.json("get", "crd", f"gizmos.{group}")
    conds = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conds["NamesAccepted"]["reason"] == "NameConflict"
    assert conds["NamesAccepted"]["message"] == '"gd" is already in use'
    assert conds["Established"]["status"] == "False"

    bad = _crd(group, kind="Thing", plural="things")
    bad["metadata"]["name"] = f"wrong.{group}"
    bad["spec"]["versions"][0]["storage"] = False
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["count"] = {"minimum": 1}
    r = kubectl.run("apply", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert r.returncode != 0
    assert 'metadata.name: Invalid value: "wrong.' in r.stderr
    assert 'must be spec.names.plural+"."+spec.group' in r.stderr
    assert "must have exactly one version marked as storage version" in r.stderr
    assert ("spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[count].type:"
            " Required value: must not be empty for specified object fields") in r.stderr
    for name in ("gadgets", "gizmos"):
        kubectl("delete", "crd", f"{name}.{group}", timeout=30)
