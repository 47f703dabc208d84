"""audit.k8s.io/v1 Policy evaluation: first match wins, kube's matching rules, secret cap."""

from __future__ import annotations

import pytest

from navio.apiserver.auditpolicy import default_policy, parse_policy
from navio.apiserver.requestinfo import parse_request

ADMIN = ("admin", ("system:masters", "system:authenticated"))


def info(method: str, path: str, **query: str):
    return parse_request(method, path, query)


def policy(*rules: dict, **top):
    return parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                         "rules": list(rules), **top})


def test_default_is_metadata_for_everything() -> None:
    assert default_policy().evaluate(*ADMIN, info("GET", "/api/v1/pods"))[0] == "Metadata"
    assert default_policy().evaluate(*ADMIN, info("GET", "/version")) == (
        "Metadata", {"RequestReceived"})


def test_first_matching_rule_wins_and_no_match_is_none() -> None:
    p = policy({"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]},
               {"level": "RequestResponse", "resources": [{"group": "",
                                                           "resources": ["pods/log"]}]},
               {"level": "Request", "resources": [{"group": "apps"}],
                "namespaces": ["prod"]},
               {"level": "Metadata", "nonResourceURLs": ["/healthz*", "/version"]},
               {"level": "Metadata", "userGroups": ["system:nodes"]})
    proxy = ("system:kube-proxy", ("system:authenticated",))
    assert p.evaluate(*proxy, info("GET", "/api/v1/pods", watch="true"))[0] == "None"
    assert p.evaluate(*proxy, info("GET", "/api/v1/pods"))[0] == "None"   # no rule matches
    assert p.evaluate(*ADMIN, info("GET", "/api/v1/namespaces/a/pods/x/log"))[0] == \
        "RequestResponse"
    assert p.evaluate(*ADMIN, info("POST", "/apis/apps/v1/namespaces/prod/deployments")
                      )[0] == "Request"
    assert p.evaluate(*ADMIN, info("POST", "/apis/apps/v1/namespaces/dev/deployments")
                      )[0] == "None"
    assert p.evaluate(*ADMIN, info("GET", "/healthz/etcd"))[0] == "Metadata"
    assert p.evaluate("n", ("system:nodes",), info("GET", "/api/v1/nodes"))[0] == "Metadata"


@pytest.mark.parametrize("path,method", [
    ("/api/v1/namespaces/a/secrets/s", "GET"),
    ("/api/v1/namespaces/a/secrets", "POST"),
    ("/api/v1/namespaces/a/serviceaccounts/default/token", "POST"),
    ("/apis/authentication.k8s.io/v1/tokenreviews", "POST"),
])
def test_credential_bodies_are_capped_at_metadata(path: str, method: str) -> None:
    p = policy({"level": "RequestResponse"})
    assert p.evaluate(*ADMIN, info(method, path))[0] == "Metadata"
    assert p.evaluate(*ADMIN, info("GET", "/api/v1/namespaces/a/configmaps"))[0] == \
        "RequestResponse"


def test_omit_stages_add_up() -> None:
    p = policy({"level": "Metadata", "omitStages": ["ResponseStarted"]},
               omitStages=["RequestReceived"])
    assert p.evaluate(*ADMIN, info("GET", "/api/v1/pods"))[1] == {"RequestReceived",
                                                                 "ResponseStarted"}


@pytest.mark.parametrize("doc,message", [
    ({"kind": "Policy", "apiVersion": "v1"}, "audit.k8s.io/v1 Policy"),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1", "rules": [{"level": "All"}]},
     "rules[0].level"),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1",
      "rules": [{"level": "None", "users": "bob"}]}, "rules[0].users"),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1",
      "rules": [{"level": "None", "omitStages": ["Never"]}]}, "unknown stage"),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1",
      "rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}]},
     "cannot be combined"),
])
def test_invalid_policies_are_refused(doc: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(doc)
