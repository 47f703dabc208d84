"""Label and field selectors parse, match and fail as Kubernetes' do.

Cases ported from k8s.io/apimachinery/pkg/labels/selector_test.go (TestSelectorParse,
TestSelectorMatches, TestSetSelectorParser, TestToString, TestRequirementConstructor),
fields/selector_test.go and meta/v1 helpers_test.go; the per-kind rules from
pkg/apis/core/v1/conversion.go and the registry strategies.
"""

import pytest

from navio.api.errors import BadRequest
from navio.api.selectors import (
    EVERYTHING, NOTHING, check_field_selector, escape_field_value, field_selector_matches,
    format_label_selector, format_labels, label_selector_from_spec, new_requirement,
    one_term_selector, parse_field_selector, parse_label_selector, selectable_fields,
    selector_from_set, supported_field_labels)

LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")

GOOD = ["x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1",
        "x>1,z<5"]


@pytest.mark.parametrize("text", GOOD, ids=[f"{t!r} parses and prints back" for t in GOOD])
def test_good_label_selector_round_trips_without_spaces(text):
    assert str(parse_label_selector(text)) == text.replace(" ", "")


RESTRING = [
    ("x notin (abc,def),bar,z in (),w", "bar,w,x notin (abc,def),z in ()"),
    ("x in (abc,)", "x in (,abc)"),
    ("x in (def,abc,abc)", "x in (abc,def)"),
    ("\rx", "x"),
    ("foo  in\t (abc)", "foo in (abc)"),
    ("x  notin\t\t\t(abc,def)", "x notin (abc,def)"),
    ("this-is-another-dns.domain.com/key-with-dash in (so,what)",
     "this-is-another-dns.domain.com/key-with-dash in (so,what)"),
    ("0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
     "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)"),
    ("x=a,a=x", "a=x,x=a"),
    ("notin=in", "notin=in"),
    ("x in (in)", "x in (in)"),
    ("x==a", "x==a"),
]


@pytest.mark.parametrize("text,expect", RESTRING, ids=[
    f"{t!r} is normalised to {e!r}" for t, e in RESTRING])
def test_label_selector_string_is_sorted_and_normalised(text, expect):
    assert str(parse_label_selector(text)) == expect


BAD = [
    ("x=a||y=b", f'unable to parse requirement: values[0][x]: Invalid value: "a||y": '
                 f"{LABEL_VALUE_MSG}"),
    ("x==a==b", "found '==', expected: ',' or 'end of string'"),
    ("!x=a", "found '=', expected: ',' or 'end of string'"),
    ("x<a", 'unable to parse requirement: values[0]: Invalid value: "a": '
            "for 'Gt', 'Lt' operators, the value must be an integer"),
    ("x y", "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"),
    ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
    ("x in a", "unable to parse requirement: found 'a' expected: '('"),
    ("x,", "found '', expected: identifier after ','"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("-a", f'unable to parse requirement: <nil>: Invalid value: "-a": {NAME_PART_MSG}'),
    ("x=" + "a" * 64, 'unable to parse requirement: values[0][x]: Invalid value: "' + "a" * 64
     + '": must be no more than 63 characters'),
]


@pytest.mark.parametrize("text,message", BAD, ids=[
    f"{t[:20]!r} is rejected with Kubernetes' message" for t, _ in BAD])
def test_bad_label_selector_raises_bad_request_worded_as_kubernetes(text, message):
    with pytest.raises(BadRequest) as e:
        parse_label_selector(text)
    assert e.value.message == message
    assert e.value.code == 400


MATCHES = [
    ("", {"x": "y"}, True), ("x=y", {"x": "y"}, True), ("x=y,z=w", {"x": "y", "z": "w"}, True),
    ("x!=y,z!=w", {"x": "z", "z": "a"}, True), ("notin=in", {"notin": "in"}, True),
    ("x", {"x": "z"}, True), ("!x", {"y": "z"}, True), ("x>1", {"x": "2"}, True),
    ("x<1", {"x": "0"}, True), ("x=z", {}, False), ("x=y", {"x": "z"}, False),
    ("x=y,z=w", {"x": "w", "z": "w"}, False), ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
    ("x", {"y": "z"}, False), ("!x", {"x": "z"}, False), ("x>1", {"x": "0"}, False),
    ("x<1", {"x": "2"}, False), ("z>1", {"z": "v2"}, False),
    ("x notin (),y", {"y": ""}, True), ("x in ()", {"y": "baz"}, False),
    ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
    ("x,y in (a)", {"x": "1"}, False),
]


@pytest.mark.parametrize("text,labels,expect", MATCHES, ids=[
    f"{t!r} {'matches' if m else 'does not match'} {ls}" for t, ls, m in MATCHES])
def test_label_selector_matches_like_kubernetes(text, labels, expect):
    assert parse_label_selector(text).matches(labels) is expect


REQUIREMENTS = [
    ("x", "in", None, False), ("x", "notin", [], False), ("x", "in", ["foo"], True),
    ("x", "exists", None, True), ("1foo", "in", ["bar"], True), ("y", "gt", ["1"], True),
    ("foo", "gt", ["bar"], False), ("a" * 254, "exists", None, False),
    ("example.com/x", "=", ["y"], True), ("Example.com/x", "=", ["y"], False),
]


@pytest.mark.parametrize("key,op,values,ok", REQUIREMENTS, ids=[
    f"{k[:12]} {o} {v} is {'valid' if ok else 'invalid'}" for k, o, v, ok in REQUIREMENTS])
def test_requirement_constructor_validates_key_operator_and_values(key, op, values, ok):
    if ok:
        new_requirement(key, op, values)
    else:
        with pytest.raises(BadRequest):
            new_requirement(key, op, values)


def test_nil_spec_selects_nothing_and_empty_spec_selects_everything():
    assert label_selector_from_spec(None) is NOTHING
    assert not NOTHING.matches({})
    assert label_selector_from_spec({}) is EVERYTHING
    assert label_selector_from_spec({"matchLabels": {}, "matchExpressions": []}).matches({"a": "b"})


SPEC = [
    ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True),
    ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]},
     {"tier": "be"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]}, {}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": ""}, False),
]


@pytest.mark.parametrize("spec,labels,expect", SPEC, ids=[
    f"{s} {'selects' if m else 'does not select'} {ls}" for s, ls, m in SPEC])
def test_metav1_label_selector_matches(spec, labels, expect):
    assert label_selector_from_spec(spec).matches(labels) is expect


SPEC_ERRORS = [
    ({"matchExpressions": [{"key": "a", "operator": "In"}]},
     "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be "
     "empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     'values: Invalid value: []string{"x"}: values set must be empty for exists and does not '
     "exist"),
    ({"matchExpressions": [{"key": "a", "operator": "Foo"}]},
     '"Foo" is not a valid label selector operator'),
    ({"matchLabels": {"-a": "b"}}, f'key: Invalid value: "-a": {NAME_PART_MSG}'),
]


@pytest.mark.parametrize("spec,message", SPEC_ERRORS, ids=[
    "in without values", "exists with values", "unknown operator", "invalid key"])
def test_invalid_metav1_label_selector_is_rejected_with_go_wording(spec, message):
    with pytest.raises(BadRequest) as e:
        label_selector_from_spec(spec)
    assert e.value.message == message


FORMAT = [
    (None, "<none>"), ({}, "<none>"),
    ({"matchLabels": {"app": "web", "a": "b"}}, "a=b,app=web"),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]},
     "app=web,tier in (be,fe)"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "<error>"),
]


@pytest.mark.parametrize("spec,expect", FORMAT, ids=[
    f"{s} formats as {e}" for s, e in FORMAT])
def test_format_label_selector_matches_metav1(spec, expect):
    assert format_label_selector(spec) == expect


def test_format_labels_sorts_whole_pairs_as_go_does():
    assert format_labels({"a": "2", "a.b": "1"}) == "a.b=1,a=2"
    assert format_labels({}) == format_labels(None) == "<none>"


def test_selector_from_set_matches_exactly_and_is_everything_when_empty():
    assert selector_from_set({"app": "web"}).matches({"app": "web", "x": "1"})
    assert not selector_from_set({"app": "web"}).matches({"app": "db"})
    assert selector_from_set({}).empty()


def test_requires_exact_match_finds_pinned_values():
    assert parse_label_selector("app=web,x in (a,b)").requires_exact_match("app") == "web"
    assert parse_label_selector("x in (a,b)").requires_exact_match("x") is None
    assert parse_field_selector("metadata.name=web").requires_exact_match("metadata.name") == "web"


# --- field selectors ---------------------------------------------------------------------------

FIELDS = [
    ("metadata.name=web", "metadata.name=web"), ("a=b,c!=d", "a=b,c!=d"), ("a==b", "a=b"),
    ("c=d,a=b", "a=b,c=d"), ("a=b\\,c", "a=b\\,c"), ("a=b\\=c\\\\", "a=b\\=c\\\\"),
    ("metadata.name=web,,", "metadata.name=web"), ("", ""), ("a=", "a="),
]


@pytest.mark.parametrize("text,expect", FIELDS, ids=[f"{t!r} parses as {e!r}" for t, e in FIELDS])
def test_field_selector_parses_and_prints(text, expect):
    assert str(parse_field_selector(text)) == expect


FIELD_ERRORS = [
    ("a", "invalid selector: 'a'; can't understand 'a'"),
    ("x=1,b", "invalid selector: 'x=1,b'; can't understand 'b'"),
    ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
    ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
]


@pytest.mark.parametrize("text,message", FIELD_ERRORS, ids=[
    f"{t!r} is rejected" for t, _ in FIELD_ERRORS])
def test_bad_field_selector_raises_bad_request(text, message):
    with pytest.raises(BadRequest) as e:
        parse_field_selector(text)
    assert e.value.message == message


FIELD_MATCHES = [
    ("metadata.name=web", {"metadata.name": "web"}, True),
    ("metadata.name!=web", {"metadata.name": "web"}, False),
    ("spec.nodeName=", {"metadata.name": "web"}, True),
    ("a=b\\,c", {"a": "b,c"}, True),
    ("a=1,b=2", {"a": "1", "b": "3"}, False),
    ("", {}, True),
]


@pytest.mark.parametrize("text,fields,expect", FIELD_MATCHES, ids=[
    f"{t!r} {'matches' if m else 'does not match'} {f}" for t, f, m in FIELD_MATCHES])
def test_field_selector_matches_missing_fields_as_empty(text, fields, expect):
    assert field_selector_matches(parse_field_selector(text), fields) is expect


CHECKS = [
    ("", "Pod", "spec.host=n1,status.phase=Running", "spec.nodeName=n1,status.phase=Running"),
    ("", "Pod", "status.podIPs=", "status.podIPs="),
    ("", "Event", "involvedObject.name=web,involvedObject.uid=u1",
     "involvedObject.name=web,involvedObject.uid=u1"),
    ("events.k8s.io", "Event", "regarding.name=web,reportingController=kubelet",
     "involvedObject.name=web,reportingComponent=kubelet"),
    ("", "Secret", "type=Opaque", "type=Opaque"),
    ("", "Node", "spec.unschedulable=true", "spec.unschedulable=true"),
    ("", "Namespace", "status.phase=Active", "status.phase=Active"),
    ("", "ReplicationController", "status.replicas=1", "status.replicas=1"),
    ("batch", "Job", "status.successful=1", "status.successful=1"),
    ("apps", "Deployment", "metadata.name=d,metadata.namespace=x",
     "metadata.name=d,metadata.namespace=x"),
    ("scheduling.k8s.io", "PriorityClass", "metadata.namespace=", "metadata.namespace="),
]


@pytest.mark.parametrize("group,kind,text,expect", CHECKS, ids=[
    f"{k} accepts {t}" for _, k, t, _ in CHECKS])
def test_supported_field_labels_are_accepted_and_canonicalised(group, kind, text, expect):
    assert str(check_field_selector(group, kind, text)) == expect


REJECTS = [
    ("", "Pod", "foo=bar", "field label not supported: foo"),
    ("", "Node", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("", "Namespace", "name=x", "field label not supported: name"),
    ("batch", "Job", "status.succeeded=1", 'field label "status.succeeded" not supported for Job'),
    ("apps", "ReplicaSet", "status.replicas=1",
     '"status.replicas" is not a known field selector: only "metadata.name", '
     '"metadata.namespace"'),
    ("events.k8s.io", "Event", "involvedObject.name=x",
     "field label not supported: involvedObject.name"),
]


@pytest.mark.parametrize("group,kind,text,message", REJECTS, ids=[
    f"{k} rejects {t}" for _, k, t, _ in REJECTS])
def test_unsupported_field_labels_are_rejected_with_the_kinds_wording(group, kind, text, message):
    with pytest.raises(BadRequest) as e:
        check_field_selector(group, kind, text)
    assert e.value.message == message


POD = {"metadata": {"name": "web", "namespace": "default"},
       "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                "serviceAccountName": "default"},
       "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]}}
EVENT = {"metadata": {"name": "e", "namespace": "default"}, "reason": "Pulled", "type": "Normal",
         "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u1"},
         "reportingComponent": "kubelet", "source": {}}

SELECTABLE = [
    ("", "Pod", POD, {"metadata.name": "web", "metadata.namespace": "default",
                      "spec.nodeName": "n1", "spec.restartPolicy": "Always",
                      "spec.schedulerName": "default-scheduler",
                      "spec.serviceAccountName": "default", "spec.hostNetwork": "false",
                      "status.phase": "Running", "status.podIP": "10.0.0.5",
                      "status.nominatedNodeName": ""}),
    ("", "Node", {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}},
     {"metadata.name": "n1", "metadata.namespace": "", "spec.unschedulable": "true"}),
    ("", "Namespace", {"metadata": {"name": "ns"}, "status": {"phase": "Active"}},
     {"metadata.name": "ns", "metadata.namespace": "", "status.phase": "Active", "name": "ns"}),
    ("batch", "Job", {"metadata": {"name": "j", "namespace": "d"}, "status": {"succeeded": 2}},
     {"metadata.name": "j", "metadata.namespace": "d", "status.successful": "2"}),
    ("", "Secret", {"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque"},
     {"metadata.name": "s", "metadata.namespace": "d", "type": "Opaque"}),
]


@pytest.mark.parametrize("group,kind,obj,expect", SELECTABLE, ids=[
    f"a {k} offers its selectable fields" for _, k, _, _ in SELECTABLE])
def test_selectable_fields_follow_the_registry_strategies(group, kind, obj, expect):
    assert selectable_fields(group, kind, obj) == expect


def test_event_source_falls_back_to_reporting_component():
    fields = selectable_fields("", "Event", EVENT)
    assert fields["source"] == "kubelet"
    assert fields["involvedObject.uid"] == "u1"
    sel = check_field_selector("", "Event", "involvedObject.name=web,involvedObject.namespace="
                                            "default,involvedObject.uid=u1")
    assert field_selector_matches(sel, fields)


def test_events_k8s_io_selector_matches_through_regarding():
    ev = {"metadata": {"name": "e", "namespace": "d"}, "regarding": {"name": "web"},
          "reportingController": "kubelet", "reason": "Pulled"}
    sel = check_field_selector("events.k8s.io", "Event", "regarding.name=web,source=kubelet")
    assert field_selector_matches(sel, selectable_fields("events.k8s.io", "Event", ev))


def test_pod_ips_is_accepted_but_never_set_so_only_empty_matches():
    fields = selectable_fields("", "Pod", POD)
    assert field_selector_matches(check_field_selector("", "Pod", "status.podIPs="), fields)
    assert not field_selector_matches(
        check_field_selector("", "Pod", "status.podIPs=10.0.0.5"), fields)


def test_supported_field_labels_list_what_a_client_may_send():
    assert "spec.host" in supported_field_labels("", "Pod")
    assert supported_field_labels("apps", "Deployment") == ["metadata.name", "metadata.namespace"]


def test_escaped_values_round_trip_through_the_parser():
    value = "a,b=c\\d"
    sel = parse_field_selector(str(one_term_selector("metadata.name", value)))
    assert sel.requires_exact_match("metadata.name") == value
    assert escape_field_value(value) == "a\\,b\\=c\\\\d"
