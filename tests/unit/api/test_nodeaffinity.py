"""Required node affinity, as component-helpers' nodeaffinity matches it."""

import pytest

from navio.api.nodeaffinity import required_matches

NODE = {"metadata": {"name": "n1", "labels": {"zone": "a", "gpus": "4", "disk": "ssd"}}}


def _terms(*terms):
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}}


@pytest.mark.parametrize("spec,want", [
    ({}, True),
    ({"nodeSelector": {"zone": "a"}}, True),
    ({"nodeSelector": {"zone": "b"}}, False),
    (_terms({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}),
     True),
    (_terms({"matchExpressions": [{"key": "absent", "operator": "NotIn", "values": ["x"]}]}),
     True),
    (_terms({"matchExpressions": [{"key": "gpus", "operator": "Gt", "values": ["3"]}]}), True),
    (_terms({"matchExpressions": [{"key": "gpus", "operator": "Lt", "values": ["3"]}]}), False),
    (_terms({"matchExpressions": [{"key": "gpus", "operator": "Gt", "values": ["x"]}]}), False),
    (_terms({}), False),
    (_terms({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}),
     True),
    (_terms({"matchFields": [{"key": "metadata.name", "operator": "NotIn",
                              "values": ["n1"]}]}), False),
    (_terms({"matchExpressions": [{"key": "zone", "operator": "Bogus"}]}), False),
], ids=["no constraints match", "nodeSelector pair matches", "nodeSelector pair differs",
        "In matches", "NotIn matches an absent label", "Gt compares integers",
        "Lt compares integers", "Gt with a non-integer operand matches nothing",
        "an empty term matches nothing", "terms are ORed", "NotIn on the node's own name",
        "an unknown operator matches nothing"])
def test_required_node_affinity(spec, want):
    assert required_matches(spec, NODE) is want
