"""Service-account tokens and bootstrap tokens: signing, claims and every refusal reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from navio.api import bootstraptoken as bt
from navio.api.registry import default_registry
from navio.apiserver.authn import TokenRejected, authenticate_token
from navio.apiserver.bootstraptokens import BootstrapTokenAuthenticator
from navio.apiserver.tokens import Bound, TokenAuthority
from navio.pki import jwt


class _Cache:
    def __init__(self, objs: dict[str, dict[str, Any]]) -> None:
        self.objs = objs

    def get(self, key: str) -> dict[str, Any] | None:
        return self.objs.get(key)


class FakeResources:
    def __init__(self) -> None:
        self.registry = default_registry()
        self.objs: dict[str, dict[str, Any]] = {}

    def put(self, plural: str, ns: str, name: str, uid: str, **extra: Any) -> dict[str, Any]:
        kind = self.registry.resource("", "v1", plural)
        assert kind is not None
        obj = {"metadata": {"name": name, "namespace": ns, "uid": uid}, **extra}
        self.objs[kind.storage_key(ns, name)] = obj
        return obj

    def drop(self, plural: str, ns: str, name: str) -> None:
        kind = self.registry.resource("", "v1", plural)
        assert kind is not None
        del self.objs[kind.storage_key(ns, name)]

    def cache(self, kind: Any) -> _Cache:
        return _Cache(self.objs)


@pytest.fixture
def setup() -> tuple[FakeResources, TokenAuthority, list[float]]:
    res = FakeResources()
    now = [1_800_000_000.0]
    key = jwt.SigningKey(ec.generate_private_key(ec.SECP256R1()))
    return res, TokenAuthority(key, res, clock=lambda: now[0]), now  # type: ignore[arg-type]


def test_jws_round_trip_and_refusals():
    key = jwt.SigningKey(ec.generate_private_key(ec.SECP256R1()))
    token = jwt.sign({"a": 1}, key)
    assert jwt.verify(token, [key.public_key]) == {"a": 1}
    other = jwt.SigningKey(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(jwt.JWTError):
        jwt.verify(token, [other.public_key])
    head, body, sig = token.split(".")
    none_alg = jwt._b64e(b'{"alg":"none"}')
    for bad in (f"{none_alg}.{body}.{sig}", f"{head}.{body}.", "a.b", f"{head}.{body}.AAAA",
                f"{head}.{jwt._b64e(b'[1]')}.{sig}"):
        with pytest.raises(jwt.JWTError):
            jwt.verify(bad, [key.public_key])


def test_signing_key_is_created_0600_and_reused(tmp_path):
    path = tmp_path / "pki" / "sa.key"
    first = jwt.load_or_create_signing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert jwt.load_or_create_signing_key(path).kid == first.kid


def test_service_account_token_authenticates_with_kube_claims(setup):
    res, authority, now = setup
    sa = res.put("serviceaccounts", "ns1", "robot", "sa-uid")
    res.put("pods", "ns1", "p", "pod-uid")
    res.put("nodes", "", "n1", "node-uid")
    token = authority.issue(sa, list(authority.audiences), 3600,
                            Bound(pod=("p", "pod-uid"), node=("n1", "node-uid")))
    claims = jwt.unverified_claims(token)
    assert claims["kubernetes.io"] == {
        "namespace": "ns1", "serviceaccount": {"name": "robot", "uid": "sa-uid"},
        "pod": {"name": "p", "uid": "pod-uid"}, "node": {"name": "n1", "uid": "node-uid"}}
    user = authority(token)
    assert user is not None
    assert user.name == "system:serviceaccount:ns1:robot" and user.uid == "sa-uid"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns1",
                           "system:authenticated")
    extra = dict(user.extra)
    assert extra["authentication.kubernetes.io/pod-name"] == ("p",)
    assert extra["authentication.kubernetes.io/node-uid"] == ("node-uid",)
    # expiry
    now[0] += 3600
    with pytest.raises(TokenRejected, match="expired"):
        authority(token)
    now[0] -= 3600
    # pod replaced (same name, new uid)
    res.put("pods", "ns1", "p", "other-uid")
    with pytest.raises(TokenRejected, match="pod p"):
        authority(token)


def test_audience_issuer_and_account_checks(setup):
    res, authority, _ = setup
    sa = res.put("serviceaccounts", "ns1", "robot", "sa-uid")
    vault = authority.issue(sa, ["vault"], 600)
    with pytest.raises(TokenRejected, match="audiences"):
        authority(vault)
    assert authority(vault, ("vault",)) is not None
    other = TokenAuthority(authority.key, res, issuer="https://elsewhere")  # type: ignore[arg-type]
    assert authority(other.issue(sa, ["x"], 600)) is None, "another issuer's token is not ours"
    good = authority.issue(sa, list(authority.audiences), 600)
    res.put("serviceaccounts", "ns1", "robot", "new-uid")
    with pytest.raises(TokenRejected, match="does not match"):
        authority(good)
    res.drop("serviceaccounts", "ns1", "robot")
    with pytest.raises(TokenRejected, match="deleted"):
        authority(good)


def _bootstrap(res: FakeResources, token: str, **kw: Any) -> None:
    secret = bt.secret_for(token, now=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc), **kw)
    res.put("secrets", "kube-system", secret["metadata"]["name"], "u",
            type=secret["type"], data=secret["data"])


def test_bootstrap_tokens():
    res = FakeResources()
    clock = [dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)]
    check = BootstrapTokenAuthenticator(res, clock=lambda: clock[0])  # type: ignore[arg-type]
    token = bt.generate()
    assert bt.parse(token) is not None and len(token) == 23
    with pytest.raises(TokenRejected):
        check(token)  # no secret yet
    _bootstrap(res, token, ttl_seconds=3600)
    user = check(token)
    assert user is not None and user.name == f"system:bootstrap:{token[:6]}"
    assert user.groups == ("system:bootstrappers",
                           "system:bootstrappers:kubeadm:default-node-token",
                           "system:authenticated")
    assert check("abcdef") is None, "not a bootstrap token: not this authenticator's"
    with pytest.raises(TokenRejected):
        check(token[:7] + "0" * 16)
    clock[0] += dt.timedelta(hours=2)
    with pytest.raises(TokenRejected):
        check(token)
    other = bt.generate()
    _bootstrap(res, other, ttl_seconds=None, usages=("signing",))
    with pytest.raises(TokenRejected):
        check(other)


def test_union_authenticator_reports_the_reason():
    def no(token, auds):
        raise TokenRejected("nope")

    with pytest.raises(TokenRejected, match="nope"):
        authenticate_token([lambda t, a: None, no], "x")
    with pytest.raises(TokenRejected, match="invalid bearer token"):
        authenticate_token([], "x")


def test_bootstrap_secret_refuses_bad_groups():
    with pytest.raises(ValueError, match="system:bootstrappers:"):
        bt.secret_for(bt.generate(), ttl_seconds=1, now=dt.datetime.now(dt.timezone.utc),
                      extra_groups=("system:masters",))
    with pytest.raises(ValueError):
        bt.secret_for("short.x", ttl_seconds=1, now=dt.datetime.now(dt.timezone.utc))
