"""The kubelet's image manager: pull policy, pull secrets, ErrImagePull back-off (issue 11)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from navio.kubelet.backoff import Backoff
from navio.kubelet.images import ImageManager, credentials_for
from navio.runtime.protocol import ImageInfo, ImagePullFailure


def _secret(auths: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps({"auths": auths}).encode()
    return {"type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(raw).decode()}}


@pytest.mark.parametrize("key,image,match", [
    ("127.0.0.1:5000", "127.0.0.1:5000/team/app:v1", True),
    ("http://127.0.0.1:5000/", "127.0.0.1:5000/team/app", True),
    ("127.0.0.1:5001", "127.0.0.1:5000/team/app", False),
    ("https://index.docker.io/v1/", "busybox", True),
    ("docker.io", "user/app:1", True),
    ("quay.io/team", "quay.io/team/app", True),
    ("quay.io/other", "quay.io/team/app", False),
    ("*.example.com", "reg.example.com/app", True),
    ("*.example.com", "a.b.example.com/app", False),
], ids=lambda v: str(v))
def test_pull_secret_keys_match_registries_like_the_kubelet_keyring(key, image, match) -> None:
    creds = credentials_for(image, [_secret({key: {"username": "u", "password": "p"}})])
    assert creds == ([("u", "p")] if match else [])


def test_auth_field_and_longest_key_first() -> None:
    auth = base64.b64encode(b"joe:pw:with:colons").decode()
    secrets = [_secret({"quay.io": {"auth": auth}}),
               _secret({"quay.io/team": {"username": "team", "password": "t"}})]
    assert credentials_for("quay.io/team/app", secrets) == [("team", "t"),
                                                            ("joe", "pw:with:colons")]


class FakeImages:
    def __init__(self) -> None:
        self.present: set[str] = set()
        self.fail = True
        self.pulls: list[tuple[str, list[tuple[str, str]]]] = []

    async def image_status(self, image: str) -> ImageInfo | None:
        return ImageInfo(id="sha256:1") if image in self.present else None

    async def pull_image(self, image: str, credentials=()) -> ImageInfo:
        self.pulls.append((image, list(credentials)))
        if self.fail:
            raise ImagePullFailure(f'failed to resolve reference "{image}": not found')
        self.present.add(image)
        return ImageInfo(id="sha256:1", size=123)


def _manager(now: list[float]):
    images, events = FakeImages(), []
    secrets = {"regcred": _secret({"reg.local:5000": {"username": "u", "password": "p"}})}

    async def secret(ns: str, name: str) -> dict[str, Any] | None:
        return secrets.get(name)

    mgr = ImageManager(images, event=lambda pod, kind, reason, msg: events.append((reason, msg)),
                       secret=secret, backoff=Backoff(clock=lambda: now[0]),
                       clock=lambda: now[0])
    return mgr, images, events


POD = {"metadata": {"uid": "u1", "namespace": "ns"},
       "spec": {"imagePullSecrets": [{"name": "regcred"}, {"name": "missing"}]}}


async def test_a_failed_pull_backs_off_then_retries() -> None:
    now = [1000.0]
    mgr, images, events = _manager(now)
    spec = {"image": "reg.local:5000/app:v1", "imagePullPolicy": "IfNotPresent"}
    reason, msg = await mgr.ensure(POD, spec)
    assert reason == "ErrImagePull" and "not found" in msg
    assert images.pulls == [("reg.local:5000/app:v1", [("u", "p")])]
    now[0] += 5
    assert await mgr.ensure(POD, spec) == ("ImagePullBackOff",
                                           'Back-off pulling image "reg.local:5000/app:v1"')
    assert mgr.retry_in(POD, spec) == pytest.approx(5.0)
    now[0] += 6
    images.fail = False
    assert await mgr.ensure(POD, spec) is None
    assert [r for r, _ in events] == ["Pulling", "Failed", "BackOff", "Pulling", "Pulled"]
    assert await mgr.ensure(POD, spec) is None   # present: no pull
    assert events[-1] == ("Pulled", 'Container image "reg.local:5000/app:v1" already present '
                                    "on machine")
    assert len(images.pulls) == 2


@pytest.mark.parametrize("image,policy,pulls_when_present", [
    ("a:latest", None, True), ("a", None, True), ("a:1", None, False),
    ("a:1", "Always", True), ("a:latest", "IfNotPresent", False),
])
async def test_pull_policy(image, policy, pulls_when_present) -> None:
    mgr, images, _ = _manager([0.0])
    images.present.add(image)
    images.fail = False
    spec = {"image": image, **({"imagePullPolicy": policy} if policy else {})}
    assert await mgr.ensure(POD, spec) is None
    assert bool(images.pulls) == pulls_when_present


async def test_pull_policy_never_without_the_image() -> None:
    mgr, images, events = _manager([0.0])
    reason, msg = await mgr.ensure(POD, {"image": "a:1", "imagePullPolicy": "Never"})
    assert reason == "ErrImageNeverPull" and images.pulls == []
    assert msg == 'Container image "a:1" is not present with pull policy of Never'
