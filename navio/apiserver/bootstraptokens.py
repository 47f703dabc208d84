"""The bootstrap-token authenticator (kube's plugin/pkg/auth/authenticator/token/bootstrap).

A token `<id>.<secret>` authenticates as `system:bootstrap:<id>` in `system:bootstrappers`
plus the Secret's `auth-extra-groups`, while Secret `kube-system/bootstrap-token-<id>` of type
`bootstrap.kubernetes.io/token` exists, is not being deleted, holds the same secret (compared
in constant time), allows `usage-bootstrap-authentication` and has not expired. The Secret is
read from the API server's watch cache, so a deleted or expired token stops working at once.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import TYPE_CHECKING, Callable

from navio.api import bootstraptoken as bt
from navio.apiserver.authn import TokenRejected, UserInfo

if TYPE_CHECKING:
    from navio.apiserver.resources import Resources

__all__ = ["BootstrapTokenAuthenticator"]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class BootstrapTokenAuthenticator:
    def __init__(self, resources: "Resources", clock: Callable[[], dt.datetime] = _utcnow
                 ) -> None:
        self.resources = resources
        self.clock = clock

    def __call__(self, token: str, audiences: tuple[str, ...] | None = None
                 ) -> UserInfo | None:
        parsed = bt.parse(token)
        if parsed is None:
            return None
        token_id, token_secret = parsed
        kind = self.resources.registry.resource("", "v1", "secrets")
        assert kind is not None
        secret = self.resources.cache(kind).get(
            kind.storage_key(bt.NAMESPACE, bt.SECRET_PREFIX + token_id))
        rejected = TokenRejected("invalid bearer token")
        if secret is None or secret.get("type") != bt.SECRET_TYPE or \
                (secret.get("metadata") or {}).get("deletionTimestamp"):
            raise rejected
        fields = bt.token_fields(secret)
        if fields.get("token-id") != token_id or not hmac.compare_digest(
                fields.get("token-secret", "").encode(), token_secret.encode()):
            raise rejected
        if fields.get("usage-bootstrap-authentication") != "true" or \
                bt.expired(fields, self.clock()):
            raise rejected
        extra = bt.extra_groups(fields)
        if extra is None:
            raise rejected
        return UserInfo(bt.USER_PREFIX + token_id,
                        (bt.GROUP, *extra, "system:authenticated"))
