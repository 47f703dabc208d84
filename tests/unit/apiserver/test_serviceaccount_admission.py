"""ServiceAccount admission's kube-api-access volume, and its opt-outs."""

from __future__ import annotations

import copy
from typing import Any

from navio.api.registry import default_registry
from navio.apiserver.serviceaccountadmission import MOUNT_PATH, mount_service_account_token


class _Resources:
    def __init__(self, accounts: dict[str, dict[str, Any]]) -> None:
        self.registry = default_registry()
        self.accounts = accounts

    def cache(self, kind: Any) -> Any:
        accounts = self.accounts

        class C:
            def get(self, key: str) -> Any:
                return accounts.get(key)
        return C()


POD = {"metadata": {"name": "p", "namespace": "ns"},
       "spec": {"serviceAccountName": "default",
                "initContainers": [{"name": "i"}],
                "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [
                    {"name": "own", "mountPath": MOUNT_PATH}]}],
                "volumes": [{"name": "own", "emptyDir": {}}]}}


def test_every_container_without_its_own_mount_gets_the_token_volume():
    pod = copy.deepcopy(POD)
    mount_service_account_token(_Resources({}), pod)  # type: ignore[arg-type]
    spec = pod["spec"]
    vol = spec["volumes"][-1]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == 21
    sources = vol["projected"]["sources"]
    assert vol["projected"]["defaultMode"] == 420
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == \
        "metadata.namespace"
    mount = {"name": vol["name"], "readOnly": True, "mountPath": MOUNT_PATH}
    assert spec["initContainers"][0]["volumeMounts"] == [mount]
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert spec["containers"][1]["volumeMounts"] == [{"name": "own", "mountPath": MOUNT_PATH}]


def test_opt_outs_on_the_pod_or_the_account():
    pod = copy.deepcopy(POD)
    pod["spec"]["automountServiceAccountToken"] = False
    mount_service_account_token(_Resources({}), pod)  # type: ignore[arg-type]
    assert pod == dict(POD, spec=dict(POD["spec"], automountServiceAccountToken=False))
    key = "/registry/core/serviceaccounts/ns/default"
    pod = copy.deepcopy(POD)
    mount_service_account_token(_Resources({key: {"automountServiceAccountToken": False}}),
                                pod)  # type: ignore[arg-type]
    assert pod == POD
    pod = copy.deepcopy(POD)
    pod["spec"]["automountServiceAccountToken"] = True
    mount_service_account_token(_Resources({key: {"automountServiceAccountToken": False}}),
                                pod)  # type: ignore[arg-type]
    assert len(pod["spec"]["volumes"]) == 2
