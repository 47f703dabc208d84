"""JSON patch and JSON merge patch, as kube-apiserver applies them.

Expected results come from RFC 6902 / RFC 7386 (appendix A examples) and, where evanphx/json-patch
v4 departs from them, from what `kubectl patch --local` (the same vendored library, v1.32)
printed for the same input. The kubectl bodies are the ones in shared/kubectl-compat.md."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from navio.api import errors
from navio.api.patch import (MAX_JSON_PATCH_OPERATIONS, UnprocessablePatch, json_equal,
                             json_patch, merge_patch)

DOC = {"metadata": {"name": "x", "annotations": {"a": "1"}},
       "a": {"b": [1, 2, 3], "c": "d", "n": None, "t": True}}


def _with(**changes: Any) -> dict[str, Any]:
    """DOC with top-level key "a" updated by `changes`."""
    doc = copy.deepcopy(DOC)
    doc["a"].update(changes)
    return doc


# ---------------------------------------------------------------------------- JSON patch

JSON_PATCH_CASES = [
    # RFC 6902 appendix A
    ("adding an object member", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ("adding an array element", {"foo": ["bar", "baz"]},
     [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ("removing an object member", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}],
     {"foo": "bar"}),
    ("removing an array element", {"foo": ["bar", "qux", "baz"]},
     [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ("replacing a value", {"baz": "qux", "foo": "bar"},
     [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    ("moving a value", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("moving an array element", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ("testing a value then adding", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2},
      {"op": "add", "path": "/x", "value": 1}], {"baz": "qux", "foo": ["a", 2, "c"], "x": 1}),
    ("adding a nested member object", {"foo": "bar"},
     [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("ignoring unrecognized elements", {"foo": "bar"},
     [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
    ("escape ordering ~01 is ~1", {"/": 9, "~1": 10},
     [{"op": "test", "path": "/~01", "value": 10}, {"op": "remove", "path": "/~1"}], {"~1": 10}),
    ("comparing strings and numbers", {"/": 9, "~1": 10},
     [{"op": "add", "path": "/~01", "value": "10"}], {"/": 9, "~1": "10"}),
    ("adding an array value", {"foo": ["bar"]},
     [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], {"foo": ["bar", ["abc", "def"]]}),
    ("copying a subtree", {"a": {"b": [1]}}, [{"op": "copy", "from": "/a", "path": "/c"}],
     {"a": {"b": [1]}, "c": {"b": [1]}}),
    ("adding at the array end by index", {"a": [1]}, [{"op": "add", "path": "/a/1", "value": 2}],
     {"a": [1, 2]}),
    # evanphx/json-patch v4 behaviour kube-apiserver keeps
    ("replace of a missing member adds it", DOC,
     [{"op": "replace", "path": "/a/zz", "value": 1}], _with(zz=1)),
    ("add at index -1 inserts before the end", DOC,
     [{"op": "add", "path": "/a/b/-1", "value": 9}], _with(b=[1, 2, 3, 9])),
    ("add at index -4 inserts at the start", DOC,
     [{"op": "add", "path": "/a/b/-4", "value": 9}], _with(b=[9, 1, 2, 3])),
    ("remove at index -1 removes the last element", DOC,
     [{"op": "remove", "path": "/a/b/-1"}], _with(b=[1, 2])),
    ("an index with a leading zero or plus is accepted", DOC,
     [{"op": "add", "path": "/a/b/01", "value": 7}, {"op": "add", "path": "/a/b/+0", "value": 6}],
     _with(b=[6, 1, 7, 2, 3])),
    ("copy from a missing member copies null", DOC,
     [{"op": "copy", "from": "/a/zz", "path": "/a/e"}], _with(e=None)),
    ("test of a missing member against null passes", DOC,
     [{"op": "test", "path": "/a/zz", "value": None}], DOC),
    ("test compares numbers by value", DOC, [{"op": "test", "path": "/a/b/0", "value": 1.0}], DOC),
    ("test of a whole object", DOC,
     [{"op": "test", "path": "/a", "value": {"b": [1, 2, 3], "c": "d", "n": None, "t": True}}],
     DOC),
    ("add without a value adds null", DOC, [{"op": "add", "path": "/a/q"}], _with(q=None)),
    ("replace of the root replaces the document", DOC,
     [{"op": "replace", "path": "", "value": {"k": 1}}], {"k": 1}),
    ("move to the same path changes nothing", DOC,
     [{"op": "move", "from": "/a/c", "path": "/a/c"}], DOC),
    ("an empty patch changes nothing", DOC, [], DOC),
    ("a null patch changes nothing", DOC, None, DOC),
]


@pytest.mark.parametrize("doc, ops, want", [c[1:] for c in JSON_PATCH_CASES],
                         ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch_applies(doc, ops, want):
    assert json_patch(doc, ops) == want


JSON_PATCH_ERRORS = [
    ("a patch that is an object is a bad request", {"op": "add"}, errors.BadRequest),
    ("a patch that is a string is a bad request", "[]", errors.BadRequest),
    ("an operation that is not an object is a bad request", ["add"], errors.BadRequest),
    ("a non-string op is a bad request", [{"op": 1, "path": "/a"}], errors.BadRequest),
    ("a non-string path is a bad request", [{"op": "add", "path": 5}], errors.BadRequest),
    ("an unknown op is unprocessable", [{"op": "frob", "path": "/a"}], UnprocessablePatch),
    ("a missing op is unprocessable", [{"path": "/a"}], UnprocessablePatch),
    ("a null operation is unprocessable", [None], UnprocessablePatch),
    ("a missing path is unprocessable", [{"op": "add", "value": 1}], UnprocessablePatch),
    ("removing a missing member is unprocessable", [{"op": "remove", "path": "/a/zz"}],
     UnprocessablePatch),
    ("adding under a missing parent is unprocessable",
     [{"op": "add", "path": "/x/y", "value": 1}], UnprocessablePatch),
    ("adding under a scalar is unprocessable", [{"op": "add", "path": "/a/c/x", "value": 1}],
     UnprocessablePatch),
    ("adding under null is unprocessable", [{"op": "add", "path": "/a/n/x", "value": 1}],
     UnprocessablePatch),
    ("adding past the array end is unprocessable", [{"op": "add", "path": "/a/b/4", "value": 1}],
     UnprocessablePatch),
    ("adding before the array start is unprocessable",
     [{"op": "add", "path": "/a/b/-5", "value": 1}], UnprocessablePatch),
    ("a non-numeric array index is unprocessable", [{"op": "add", "path": "/a/b/x", "value": 1}],
     UnprocessablePatch),
    ("replacing past the array end is unprocessable",
     [{"op": "replace", "path": "/a/b/3", "value": 1}], UnprocessablePatch),
    ("adding at the root is unprocessable", [{"op": "add", "path": "", "value": {}}],
     UnprocessablePatch),
    ("removing the root is unprocessable", [{"op": "remove", "path": ""}], UnprocessablePatch),
    # navio refuses these two where evanphx v4 ignores the text before the first "/" and
    # (through a nil error) silently skips a root replace by a scalar.
    ("a pointer without a leading slash is unprocessable",
     [{"op": "add", "path": "a/q", "value": 1}], UnprocessablePatch),
    ("a failed test is unprocessable", [{"op": "test", "path": "/a/c", "value": "e"}],
     UnprocessablePatch),
    ("true does not test equal to 1", [{"op": "test", "path": "/a/t", "value": 1}],
     UnprocessablePatch),
    ("a test without a value is unprocessable", [{"op": "test", "path": "/a/c"}],
     UnprocessablePatch),
    ("moving from a missing member is unprocessable",
     [{"op": "move", "from": "/a/zz", "path": "/a/e"}], UnprocessablePatch),
    ("replacing the root with a scalar is unprocessable",
     [{"op": "replace", "path": "", "value": 1}], UnprocessablePatch),
    ("moving a member into itself is unprocessable",
     [{"op": "move", "from": "/a", "path": "/a/q"}], UnprocessablePatch),
    ("a later failure undoes earlier operations",
     [{"op": "add", "path": "/z", "value": 1}, {"op": "remove", "path": "/nope"}],
     UnprocessablePatch),
]


@pytest.mark.parametrize("ops, error", [c[1:] for c in JSON_PATCH_ERRORS],
                         ids=[c[0] for c in JSON_PATCH_ERRORS])
def test_json_patch_errors(ops, error):
    before = copy.deepcopy(DOC)
    with pytest.raises(error) as caught:
        json_patch(DOC, ops)
    assert DOC == before
    if error is UnprocessablePatch:
        # handlers/patch.go: NewGenericServerResponse(422, …) sends a fixed message, no causes.
        assert (caught.value.code, caught.value.reason) == (422, "Invalid")
        assert caught.value.message == ("the server rejected our request due to an error in "
                                        "our request")
        assert caught.value.details == {} and caught.value.cause
    else:
        assert caught.value.code == 400


def test_json_patch_refuses_more_operations_than_kube_apiserver():
    ops = [{"op": "test", "path": "/a/c", "value": "d"}] * (MAX_JSON_PATCH_OPERATIONS + 1)
    with pytest.raises(errors.TooLarge) as caught:
        json_patch(DOC, ops)
    assert caught.value.code == 413
    assert json_patch(DOC, ops[:MAX_JSON_PATCH_OPERATIONS]) == DOC


def test_json_patch_from_rollout_undo_replaces_template_and_annotations():
    """kubectl rollout undo: typed PATCH, application/json-patch+json (kubectl-compat §4.6)."""
    live = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d2", "annotations": {"deployment.kubernetes.io/revision": "2"}},
            "spec": {"replicas": 2, "template": {
                "metadata": {"labels": {"app": "d2"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}}
    old_template = {"metadata": {"labels": {"app": "d2"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}
    body = [{"op": "replace", "path": "/spec/template", "value": old_template},
            {"op": "replace", "path": "/metadata/annotations",
             "value": {"deployment.kubernetes.io/revision": "1"}}]
    got = json_patch(live, body)
    assert got["spec"]["template"] == old_template
    assert got["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}
    assert got["spec"]["replicas"] == 2
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"


def test_json_patch_result_shares_nothing_with_its_inputs():
    value = {"deep": [1]}
    ops = [{"op": "add", "path": "/v", "value": value}, {"op": "copy", "from": "/v", "path": "/w"}]
    got = json_patch(DOC, ops)
    got["v"]["deep"].append(2)
    got["a"]["b"].append(4)
    assert value == {"deep": [1]} and got["w"] == {"deep": [1]} and DOC["a"]["b"] == [1, 2, 3]


# ---------------------------------------------------------------------------- merge patch

MERGE_PATCH_CASES = [
    # RFC 7386 appendix A
    ("replace a member", {"a": "b"}, {"a": "c"}, {"a": "c"}),
    ("add a member", {"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ("null removes a member", {"a": "b"}, {"a": None}, {}),
    ("null removes only that member", {"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ("an array replaces a scalar", {"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ("a scalar replaces an array", {"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ("objects merge recursively", {"a": {"b": "c"}}, {"a": {"b": "d", "c": None}},
     {"a": {"b": "d"}}),
    ("arrays are replaced whole", {"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ("nested nulls in a new object are dropped", {"e": None}, {"a": 1, "b": {"c": None}},
     {"e": None, "a": 1, "b": {}}),
    ("an empty patch is a no-op", {"a": {"b": 1}}, {}, {"a": {"b": 1}}),
    # evanphx/json-patch MergePatch pruning
    ("nulls inside array objects are pruned where no object was", {"a": 1},
     {"a": [{"y": None}, None]}, {"a": [{}, None]}),
    ("nulls inside array objects are kept over an object", {"a": {"x": 1}},
     {"a": [{"y": None}]}, {"a": [{"y": None}]}),
    ("an object replaces a null member", {"n": None}, {"n": {"q": None, "r": 1}}, {"n": {"r": 1}}),
    ("deleting a missing member is a no-op", {"a": 1}, {"b": None}, {"a": 1}),
]


@pytest.mark.parametrize("doc, patch, want", [c[1:] for c in MERGE_PATCH_CASES],
                         ids=[c[0] for c in MERGE_PATCH_CASES])
def test_merge_patch_applies(doc, patch, want):
    before = copy.deepcopy((doc, patch))
    assert merge_patch(doc, patch) == want
    assert (doc, patch) == before


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "labels": {"app": "web", "x": "1"}},
       "spec": {"containers": [{"name": "c", "image": "nginx"}]}}

KUBECTL_MERGE_BODIES = [
    ("label pod web tier=fe adds the label", {"metadata": {"labels": {"tier": "fe"}}},
     {"app": "web", "x": "1", "tier": "fe"}, None),
    ("label pod web x- removes the label", {"metadata": {"labels": {"x": None}}},
     {"app": "web"}, None),
    ("label of an absent label sends an empty patch", {}, {"app": "web", "x": "1"}, None),
    ("annotate pod web note=hi adds the annotation", {"metadata": {"annotations": {"note": "hi"}}},
     {"app": "web", "x": "1"}, {"note": "hi"}),
]


@pytest.mark.parametrize("body, labels, annotations", [c[1:] for c in KUBECTL_MERGE_BODIES],
                         ids=[c[0] for c in KUBECTL_MERGE_BODIES])
def test_merge_patch_bodies_kubectl_sends(body, labels, annotations):
    got = merge_patch(POD, body)
    assert got["metadata"]["labels"] == labels
    assert got["metadata"].get("annotations") == annotations
    assert got["spec"] == POD["spec"]


def test_merge_patch_from_scale_sets_replicas():
    scale = {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "d2"},
             "spec": {"replicas": 1}, "status": {"replicas": 1, "selector": "app=d2"}}
    got = merge_patch(scale, {"spec": {"replicas": 5}})
    assert got["spec"] == {"replicas": 5} and got["status"] == scale["status"]


@pytest.mark.parametrize("patch", [None, [1], "s", 5],
                         ids=["null body", "array body", "string body", "number body"])
def test_merge_patch_body_must_be_an_object(patch):
    with pytest.raises(errors.BadRequest):
        merge_patch({"a": 1}, patch)


def test_merge_patch_result_shares_nothing_with_its_inputs():
    patch = {"new": {"list": [1]}, "a": {"b": {"c": 1}}}
    doc = {"a": {"b": {"d": 2}}, "keep": [1]}
    got = merge_patch(doc, patch)
    got["new"]["list"].append(2)
    got["keep"].append(2)
    got["a"]["b"]["e"] = 3
    assert patch == {"new": {"list": [1]}, "a": {"b": {"c": 1}}}
    assert doc == {"a": {"b": {"d": 2}}, "keep": [1]}


@pytest.mark.parametrize("a, b, equal", [
    (1, 1.0, True), (True, 1, False), (False, 0, False), ({"a": [1]}, {"a": [1.0]}, True),
    ({"a": None}, {}, False), ([1, 2], [2, 1], False), ("1", 1, False), (None, None, True),
], ids=["int and float", "true and 1", "false and 0", "nested numbers", "null member and absent",
        "array order", "string and number", "null and null"])
def test_json_equal_follows_json_not_python(a, b, equal):
    assert json_equal(a, b) is equal
