"""The kubelet's service-account token manager and client-certificate rotation timing."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from navio.api import errors
from navio.kubelet.bootstrap import rotation_deadline
from navio.kubelet.projected import ServiceAccountTokens, TokenError

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
       "spec": {"serviceAccountName": "robot"}}


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = False

    async def create_subresource(self, resource: Any, name: str, sub: str,
                                 body: dict[str, Any], namespace: str) -> dict[str, Any]:
        if self.fail:
            raise errors.ServiceUnavailable("down")
        self.calls.append((namespace, name, body))
        return {"status": {"token": f"tok{len(self.calls)}"}}


async def test_tokens_are_bound_to_the_pod_cached_and_refreshed_at_80_percent():
    client, now = FakeClient(), [1000.0]
    tokens = ServiceAccountTokens(client, clock=lambda: now[0])  # type: ignore[arg-type]
    proj = {"path": "token", "expirationSeconds": 3607}
    assert await tokens.token(POD, proj) == b"tok1"
    ns, name, body = client.calls[0]
    assert (ns, name) == ("ns", "robot")
    assert body["spec"] == {"audiences": [], "expirationSeconds": 3607, "boundObjectRef": {
        "apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}}
    now[0] += 0.79 * 3607
    assert await tokens.token(POD, proj) == b"tok1"
    now[0] += 0.02 * 3607
    assert await tokens.token(POD, proj) == b"tok2"
    assert await tokens.token(POD, dict(proj, audience="vault")) == b"tok3"
    assert client.calls[2][2]["spec"]["audiences"] == ["vault"]
    # A failed refresh keeps serving a token that is still valid; none at all is an error.
    now[0] += 0.9 * 3607
    client.fail = True
    assert await tokens.token(POD, proj) == b"tok2"
    tokens.forget("u1")
    with pytest.raises(TokenError, match="failed to fetch token"):
        await tokens.token(POD, proj)


def test_rotation_happens_between_70_and_90_percent_of_the_lifetime():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "n")])
    start = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=10)).sign(key, hashes.SHA256()))
    rng = random.Random(7)
    for _ in range(50):
        at = rotation_deadline(cert, rng)
        assert start + dt.timedelta(days=7) <= at <= start + dt.timedelta(days=9)
