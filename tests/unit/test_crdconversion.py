"""CRD webhook conversion (navio/apiserver/crdconversion.py): the ConversionReview sent and
kube's checks of the answer, against a fake webhook client; and CRD validation of the
conversion stanza."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from navio.api import errors
from navio.api.crd.customresource import ConversionFailed, CustomResource, WebhookConversion
from navio.api.crd.definition import validate_crd
from navio.apiserver.crdconversion import ConversionWebhooks, Unconverted, resolve
from navio.apiserver.webhookclient import WebhookCallError

G = "conv.example.com"


def _crd(**webhook: Any) -> dict[str, Any]:
    hook = {"clientConfig": {"url": "https://127.0.0.1:9/convert"},
            "conversionReviewVersions": ["v1"], **webhook}
    schema = {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}
    return {"metadata": {"name": f"widgets.{G}"},
            "spec": {"group": G, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                               "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": schema},
                                  {"name": "v2", "served": True, "storage": False,
                                   "schema": schema}],
                     "conversion": {"strategy": "Webhook", "webhook": hook}}}


class FakeClient:
    def __init__(self, answer: Callable[[dict[str, Any]], Any]) -> None:
        self.answer = answer
        self.sent: list[dict[str, Any]] = []

    async def post(self, client_config: dict[str, Any], body: Any, timeout: float) -> Any:
        self.sent.append(copy.deepcopy(body))
        return self.answer(body)


def _good(review: dict[str, Any]) -> dict[str, Any]:
    req = review["request"]
    out = []
    for o in req["objects"]:
        c = copy.deepcopy(o)
        c["apiVersion"] = req["desiredAPIVersion"]
        c["spec"] = {"converted": True}
        c["metadata"]["labels"] = {"l": "new"}
        c["metadata"]["generation"] = 99          # not the webhook's to change: restored
        out.append(c)
    return {"apiVersion": review["apiVersion"], "kind": "ConversionReview",
            "response": {"uid": req["uid"], "result": {"status": "Success"},
                         "convertedObjects": out}}


def _obj(name: str, version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": f"{G}/{version}", "kind": "Widget",
            "metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "generation": 1,
                         "labels": {"l": "old"}},
            "spec": {"a": 1}}


async def _convert(answer: Callable[[dict[str, Any]], Any], objs: list[dict[str, Any]],
                   **webhook: Any) -> tuple[list[dict[str, Any]], FakeClient]:
    client = FakeClient(answer)
    cr = CustomResource.from_crd(_crd(**webhook))
    out = await ConversionWebhooks(client).convert(cr, objs, f"{G}/v2")  # type: ignore[arg-type]
    return out, client


async def test_review_sent_and_answer_taken() -> None:
    already = _obj("b", "v2")
    out, client = await _convert(_good, [_obj("a"), already])
    (review,) = client.sent
    assert review["apiVersion"] == "apiextensions.k8s.io/v1"
    assert review["kind"] == "ConversionReview"
    assert review["request"]["desiredAPIVersion"] == f"{G}/v2"
    assert [o["metadata"]["name"] for o in review["request"]["objects"]] == ["a"]
    assert out[1] is already
    assert out[0]["spec"] == {"converted": True} and out[0]["apiVersion"] == f"{G}/v2"
    assert out[0]["metadata"]["labels"] == {"l": "new"}
    assert out[0]["metadata"]["generation"] == 1


async def test_nothing_to_convert_makes_no_call() -> None:
    out, client = await _convert(_good, [_obj("a", "v2")])
    assert client.sent == [] and out[0]["metadata"]["name"] == "a"


async def test_v1beta1_reviews_when_listed_first() -> None:
    _, client = await _convert(_good, [_obj("a")],
                               conversionReviewVersions=["v9", "v1beta1", "v1"])
    assert client.sent[0]["apiVersion"] == "apiextensions.k8s.io/v1beta1"


def _broken(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], Any]:
    def answer(review: dict[str, Any]) -> Any:
        out = _good(review)
        change(out)
        return out
    return answer


@pytest.mark.parametrize("change, message", [
    (lambda a: a["response"].update(uid="other"), 'failed: expected response.uid="'),
    (lambda a: a["response"].update(result={"status": "Failure", "message": "nope"}),
     "failed: nope"),
    (lambda a: a["response"].update(result={"status": "Failure"}),
     "failed: response.result.status was 'Failure', not 'Success'"),
    (lambda a: a.pop("response"), "failed: no response provided"),
    (lambda a: a.update(kind="AdmissionReview"),
     "failed: expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, "
     "got apiextensions.k8s.io/v1, Kind=AdmissionReview"),
    (lambda a: a["response"]["convertedObjects"].append({}), "returned 2 objects, expected 1"),
    (lambda a: a["response"]["convertedObjects"][0].update(apiVersion=f"{G}/v1"),
     f"returned invalid object at index 0: invalid groupVersion (expected {G}/v2, "
     f"received {G}/v1)"),
    (lambda a: a["response"]["convertedObjects"][0]["metadata"].update(name="x"),
     "returned invalid object at index 0: must have the same name: a != x"),
    (lambda a: a["response"]["convertedObjects"][0]["metadata"].update(uid="x"),
     "returned invalid object at index 0: must have the same UID: u-a != x"),
    (lambda a: a["response"]["convertedObjects"][0]["metadata"].update(labels={"-": "x"}),
     "returned invalid metadata: metadata.labels"),
])
async def test_bad_answers_fail_with_kubes_message(change: Callable[[dict[str, Any]], None],
                                                   message: str) -> None:
    with pytest.raises(ConversionFailed) as exc:
        await _convert(_broken(change), [_obj("a")])
    assert exc.value.message.startswith(f"conversion webhook for {G}/v1, Kind=Widget ")
    assert message in exc.value.message
    status = errors.to_status(exc.value)
    assert status["code"] == 500 and "reason" not in status


async def test_unreachable_webhook() -> None:
    def down(review: dict[str, Any]) -> Any:
        raise WebhookCallError('Post "https://127.0.0.1:9/convert?timeout=30s": dial tcp '
                               '127.0.0.1:9: connect: connection refused')
    with pytest.raises(ConversionFailed) as exc:
        await _convert(down, [_obj("a")])
    assert exc.value.message == (
        f'conversion webhook for {G}/v1, Kind=Widget failed: Post "https://127.0.0.1:9/'
        f'convert?timeout=30s": dial tcp 127.0.0.1:9: connect: connection refused')


async def test_resolve_converts_unconverted_and_notes_failures() -> None:
    cr = CustomResource.from_crd(_crd())
    pending = Unconverted(_obj("a"))
    served = _obj("b", "v2")
    out = await resolve(ConversionWebhooks(FakeClient(_good)),  # type: ignore[arg-type]
                        cr, "v2", [pending, served])
    assert out[0]["spec"] == {"converted": True} and out[1] is served
    assert not isinstance(out[0], Unconverted)
    failing = ConversionWebhooks(FakeClient(_broken(  # type: ignore[arg-type]
        lambda a: a["response"].update(result={"status": "Failure", "message": "down"}))))
    with pytest.raises(ConversionFailed):
        await resolve(failing, cr, "v2", [pending])
    assert "down" in pending.error


def test_webhook_conversion_is_chosen_and_never_guesses() -> None:
    cr = CustomResource.from_crd(_crd())
    assert isinstance(cr.webhook, WebhookConversion)
    assert cr.needs_webhook(_obj("a"), f"{G}/v2")
    assert not cr.needs_webhook(_obj("a"), f"{G}/v1")
    with pytest.raises(ConversionFailed):
        cr.from_storage(_obj("a"), "v2")
    crd = _crd()
    crd["spec"]["conversion"] = {"strategy": "None"}
    assert CustomResource.from_crd(crd).webhook is None
    # A CRD whose conversion changed is a different CustomResource (its kinds re-register).
    assert CustomResource.from_crd(_crd()) != CustomResource.from_crd(
        _crd(clientConfig={"url": "https://127.0.0.1:10/convert"}))
    assert CustomResource.from_crd(_crd()) == CustomResource.from_crd(_crd())


def _causes(crd: dict[str, Any]) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in validate_crd(crd)
            if c["field"].startswith("spec.conversion")]


def test_conversion_stanza_validation() -> None:
    assert _causes(_crd()) == []
    crd = _crd()
    del crd["spec"]["conversion"]["webhook"]["conversionReviewVersions"]
    assert _causes(crd) == ["spec.conversion.conversionReviewVersions: Required value"]
    crd = _crd(clientConfig={})
    assert _causes(crd) == ["spec.conversion.webhookClientConfig: Required value: exactly one "
                            "of url or service is required"]
    crd = _crd()
    del crd["spec"]["conversion"]["webhook"]
    assert _causes(crd) == [
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set "
        "to Webhook", "spec.conversion.conversionReviewVersions: Required value"]
    crd = _crd(conversionReviewVersions=["v9", "v9"])
    assert _causes(crd) == [
        'spec.conversion.conversionReviewVersions[1]: Invalid value: "v9": duplicate version',
        'spec.conversion.conversionReviewVersions: Invalid value: []string{"v9", "v9"}: must '
        'include at least one of v1, v1beta1']
    crd = _crd(clientConfig={"url": "http://127.0.0.1/x"})
    assert any("webhookClientConfig.url" in c for c in _causes(crd))
    crd = _crd()
    crd["spec"]["conversion"]["strategy"] = "None"
    assert _causes(crd) == [
        "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is "
        "not set to Webhook",
        "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy "
        "is not set to Webhook"]
