"""StatefulSet adoption and release of pods (ControllerRefManager semantics, issue 13).

On the session server (no kubelet: pods stay Pending, which is all this needs): an orphan pod
named and labelled as a member is adopted instead of replaced, and a member whose labels stop
matching is released (its controller reference removed) and replaced.
"""

from __future__ import annotations

import json

import yaml

from cluster import Kubectl, wait_for


def _owner_uid(kubectl: Kubectl, ns: str, pod: str) -> str:
    refs = json.loads(kubectl("get", "pod", pod, "-n", ns, "-o",
                              "jsonpath={.metadata.ownerReferences}") or "[]")
    return next((r["uid"] for r in refs if r.get("controller")), "")


def test_orphans_are_adopted_and_non_matching_pods_released(kubectl: Kubectl, ns: str) -> None:
    kubectl("run", "web-0", "-n", ns, "--image=x", "--labels=app=web", "--restart=Never")
    orphan_uid = kubectl("get", "pod", "web-0", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"serviceName": "web", "replicas": 1,
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
    set_uid = kubectl("get", "sts", "web", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    wait_for(lambda: _owner_uid(kubectl, ns, "web-0") == set_uid, 30,
             "the orphan web-0 to be adopted")
    assert kubectl("get", "pod", "web-0", "-n", ns, "-o",
                   "jsonpath={.metadata.uid}") == orphan_uid
    kubectl("label", "pod", "web-0", "-n", ns, "app=other", "--overwrite")
    wait_for(lambda: _owner_uid(kubectl, ns, "web-0") == "", 30,
             "web-0 to be released once its labels stop matching")
