"""Service-account tokens: issuing bound JWTs and authenticating them.

Why: pods, controllers and `kubectl create token` authenticate as a ServiceAccount with a
short-lived token kube-apiserver signs (pkg/serviceaccount/claims.go and jwt.go). navio issues
the same claims (`iss`, `sub=system:serviceaccount:NS:NAME`, `aud`, `exp`, `iat`, `nbf`, `jti`
and the private `kubernetes.io` claim naming the namespace, the service account and the object
the token is bound to — a Pod (with its Node), a Secret or a Node), signed ES256 with the key in
`<data dir>/pki/sa.key`.

Guarantees of `authenticate`: a token is accepted only when its signature verifies, its issuer
is ours, one of its audiences is one of the API server's, it is within [nbf, exp), and the
ServiceAccount — and the Pod, Secret or Node it is bound to — still exists with the same uid
(a bound Pod being deleted past its deletion time invalidates it, as in kube). The user is
`system:serviceaccount:NS:NAME` in groups `system:serviceaccounts`,
`system:serviceaccounts:NS` and `system:authenticated`, with kube's `extra` keys. Reasons for
refusal are for TokenReview's `status.error` and never include the token.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from navio.apiserver.authn import TokenRejected, UserInfo
from navio.pki import jwt

if TYPE_CHECKING:
    from navio.apiserver.resources import Resources

__all__ = ["DEFAULT_ISSUER", "TokenAuthority", "TokenInvalid", "SA_PREFIX", "sa_username",
           "load_authority"]

# kube-apiserver's --service-account-issuer in kubeadm/kind clusters; --api-audiences
# defaults to the issuer.
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SA_PREFIX = "system:serviceaccount:"
_PRIVATE = "kubernetes.io"


class TokenInvalid(TokenRejected):
    """A token that is ours but not valid (any more); the message is safe to show."""


def sa_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


@dataclass(frozen=True, slots=True)
class Bound:
    """What a token is bound to besides its ServiceAccount: {kind: (name, uid)}."""

    pod: tuple[str, str] | None = None
    secret: tuple[str, str] | None = None
    node: tuple[str, str] | None = None


class TokenAuthority:
    """Issues and checks service-account tokens for one API server."""

    def __init__(self, key: jwt.SigningKey, resources: "Resources", *,
                 issuer: str = DEFAULT_ISSUER, audiences: tuple[str, ...] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.resources = resources
        self.issuer = issuer
        self.audiences = audiences or (issuer,)
        self.clock = clock

    # -- issuing ----------------------------------------------------------------------------
    def issue(self, sa: dict[str, Any], audiences: list[str], expiration_seconds: int,
              bound: Bound = Bound(), now: float | None = None) -> str:
        """A signed token for ServiceAccount `sa` (kube's serviceaccount.Claims)."""
        meta = sa.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        now = int(self.clock() if now is None else now)
        private: dict[str, Any] = {
            "namespace": ns, "serviceaccount": {"name": name, "uid": str(meta.get("uid", ""))}}
        for field, ref in (("pod", bound.pod), ("secret", bound.secret), ("node", bound.node)):
            if ref is not None:
                private[field] = {"name": ref[0], "uid": ref[1]}
        claims = {"iss": self.issuer, "sub": sa_username(ns, name), "aud": list(audiences),
                  "exp": now + int(expiration_seconds), "iat": now, "nbf": now,
                  "jti": str(uuid.uuid4()), _PRIVATE: private}
        return jwt.sign(claims, self.key)

    # -- authenticating ---------------------------------------------------------------------
    def is_ours(self, token: str) -> bool:
        """Whether `token` looks like a JWT from this issuer (others are not ours to judge)."""
        try:
            return jwt.unverified_claims(token).get("iss") == self.issuer
        except jwt.JWTError:
            return False

    def __call__(self, token: str, audiences: tuple[str, ...] | None = None
                 ) -> UserInfo | None:
        """A token authenticator (authn.BEARER): None for tokens of another issuer."""
        if not self.is_ours(token):
            return None
        return self.authenticate(token, audiences)[0]

    def authenticate(self, token: str, audiences: tuple[str, ...] | None = None
                     ) -> tuple[UserInfo, list[str]]:
        """The user `token` authenticates and the audiences it was accepted for; raises
        TokenInvalid with kube's reason otherwise."""
        try:
            claims = jwt.verify(token, [self.key.public_key])
        except jwt.JWTError:
            raise TokenInvalid("invalid bearer token, square/go-jose: error in cryptographic "
                               "primitive") from None
        if claims.get("iss") != self.issuer:
            raise TokenInvalid("invalid bearer token, token issuer is not trusted")
        wanted = audiences or self.audiences
        token_aud = claims.get("aud")
        token_aud = [token_aud] if isinstance(token_aud, str) else list(token_aud or ())
        matched = [a for a in wanted if a in token_aud]
        if not matched:
            raise TokenInvalid("invalid bearer token, token audiences "
                               f"{_go_list(token_aud)} is invalid for the target audiences "
                               f"{_go_list(list(wanted))}")
        now = self.clock()
        try:
            exp, nbf = float(claims["exp"]), float(claims.get("nbf", claims.get("iat", 0)))
        except (KeyError, TypeError, ValueError):
            raise TokenInvalid("invalid bearer token, token has no expiry") from None
        if now >= exp:
            raise TokenInvalid("invalid bearer token, service account token has expired")
        if now < nbf:
            raise TokenInvalid("invalid bearer token, service account token is not valid yet")
        private = claims.get(_PRIVATE)
        if not isinstance(private, dict):
            raise TokenInvalid("invalid bearer token, token lacks the kubernetes.io claim")
        return self._validate(claims, private), matched

    def _validate(self, claims: dict[str, Any], private: dict[str, Any]) -> UserInfo:
        ns = str(private.get("namespace", ""))
        sa_ref = private.get("serviceaccount") or {}
        name, sa_uid = str(sa_ref.get("name", "")), str(sa_ref.get("uid", ""))
        if claims.get("sub") != sa_username(ns, name):
            raise TokenInvalid("invalid bearer token, subject does not match the service "
                               "account")
        sa = self._lookup("serviceaccounts", ns, name)
        if sa is None:
            raise TokenInvalid(f'service account {ns}/{name} has been deleted')
        if str(sa["metadata"].get("uid")) != sa_uid:
            raise TokenInvalid(f"service account UID ({sa_uid}) does not match claim "
                               f"({sa['metadata'].get('uid')})")
        if sa["metadata"].get("deletionTimestamp"):
            raise TokenInvalid(f"service account {ns}/{name} has been deleted")
        extra: list[tuple[str, tuple[str, ...]]] = []
        for field, plural, namespaced in (("pod", "pods", True), ("secret", "secrets", True),
                                          ("node", "nodes", False)):
            ref = private.get(field)
            if not isinstance(ref, dict):
                continue
            obj_name, obj_uid = str(ref.get("name", "")), str(ref.get("uid", ""))
            obj = self._lookup(plural, ns if namespaced else "", obj_name)
            if obj is None or str(obj["metadata"].get("uid")) != obj_uid:
                raise TokenInvalid(f"{field} {obj_name} bound to the token has been deleted "
                                   "or recreated")
            deleted = obj["metadata"].get("deletionTimestamp")
            if deleted and (field != "pod" or _before(deleted, self.clock())):
                raise TokenInvalid("service account token has been invalidated")
            if field in ("pod", "node"):
                extra += [(f"authentication.kubernetes.io/{field}-name", (obj_name,)),
                          (f"authentication.kubernetes.io/{field}-uid", (obj_uid,))]
        if claims.get("jti"):
            extra.append(("authentication.kubernetes.io/credential-id",
                          (f"JTI={claims['jti']}",)))
        return UserInfo(sa_username(ns, name),
                        ("system:serviceaccounts", f"system:serviceaccounts:{ns}",
                         "system:authenticated"),
                        uid=sa_uid, extra=tuple(sorted(extra)))

    def _lookup(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        kind = self.resources.registry.resource("", "v1", plural)
        if kind is None:
            return None
        return self.resources.cache(kind).get(kind.storage_key(namespace, name))


def _before(timestamp: str, now: float) -> bool:
    try:
        t = dt.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return True
    return t.timestamp() < now


def _go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


def load_authority(pki: Path, resources: "Resources", *, issuer: str = DEFAULT_ISSUER,
                   audiences: tuple[str, ...] = ()) -> TokenAuthority:
    """The authority signing with `<pki>/sa.key`, created on first start (0600)."""
    key = jwt.load_or_create_signing_key(pki / "sa.key")
    return TokenAuthority(key, resources, issuer=issuer, audiences=audiences)
