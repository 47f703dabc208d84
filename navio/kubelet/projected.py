"""serviceAccountToken projections: the kubelet's token manager (pkg/kubelet/token).

Why: a pod's `kube-api-access-*` volume carries a token bound to the pod, which the kubelet
requests with TokenRequest (`serviceaccounts/NAME/token`, boundObjectRef = the pod) under its
own node identity, and refreshes before it expires so the running pod always reads a valid
token from its file.

Guarantees: one token per (namespace, service account, audience, expirationSeconds, pod uid),
reused until 80% of its lifetime has passed or it is older than 24 h (kube's
`requiresRefresh`), then requested again; the pod's next volume sync writes the new token
atomically. Tokens live in memory and in the pod's volume only; they are never logged. A
request that fails while a still-valid token is cached keeps serving the cached one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from navio.api import errors
from navio.client import SERVICEACCOUNTS, Client, TransportError

__all__ = ["ServiceAccountTokens", "TokenError"]

_MAX_TTL = 24 * 3600.0
_REFRESH_AT = 0.8


class TokenError(Exception):
    """No token could be had; the message is the kubelet's (no token in it)."""


@dataclass(frozen=True, slots=True)
class _Cached:
    token: str
    issued: float
    expires: float


class ServiceAccountTokens:
    def __init__(self, client: Client, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self._cache: dict[tuple[str, str, str, int, str], _Cached] = {}

    def _fresh(self, entry: _Cached | None) -> bool:
        if entry is None:
            return False
        now = self.clock()
        lifetime = entry.expires - entry.issued
        return now < entry.issued + _REFRESH_AT * lifetime and now - entry.issued < _MAX_TTL

    async def token(self, pod: Mapping[str, Any], projection: Mapping[str, Any]) -> bytes:
        """The token for one `serviceAccountToken` projection of `pod`."""
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        ns, uid = str(meta.get("namespace") or "default"), str(meta.get("uid") or "")
        sa = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
        audience = str(projection.get("audience") or "")
        seconds = int(projection.get("expirationSeconds") or 3600)
        key = (ns, sa, audience, seconds, uid)
        cached = self._cache.get(key)
        if self._fresh(cached):
            assert cached is not None
            return cached.token.encode()
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else [],
                         "expirationSeconds": seconds,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                            "name": meta.get("name"), "uid": uid}}}
        now = self.clock()
        try:
            answer = await self.client.create_subresource(SERVICEACCOUNTS, sa, "token", body, ns)
        except (errors.ApiError, TransportError) as exc:
            if cached is not None and now < cached.expires:
                return cached.token.encode()
            raise TokenError(f'failed to fetch token: {exc}') from None
        token = str((answer.get("status") or {}).get("token") or "")
        if not token:
            raise TokenError("failed to fetch token: the TokenRequest answer has no token")
        self._cache[key] = _Cached(token, now, now + seconds)
        return token.encode()

    def forget(self, uid: str) -> None:
        """Drop the tokens of a pod that is gone."""
        for key in [k for k in self._cache if k[4] == uid]:
            del self._cache[key]
