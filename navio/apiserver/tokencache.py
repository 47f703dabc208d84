"""Caching token authentication results, as kube-apiserver's cached token authenticator.

Why: checking a service-account token costs an ES256 signature verification, measured at
0.25-0.34 ms of CPU per request on the reference machine — several times what the rest of a
cached GET costs — and every in-cluster client (pods, controllers) authenticates that way on
every request. kube-apiserver wraps its union of token authenticators in a cache
(k8s.io/apiserver/pkg/authentication/token/cache) with `TokenSuccessCacheTTL` 10 s and
`TokenFailureCacheTTL` 0 by default; navio does the same.

Guarantees:
- Only successes are cached, for at most `ttl` seconds (10): a token of a deleted
  ServiceAccount, bound object or bootstrap token is refused at most `ttl` seconds after the
  deletion — kube's guarantee too — and a refused token is checked afresh every time.
- Keys are HMAC-SHA256 of (audiences, token) under a random key made at start (kube's
  keyFunc), so neither the raw token nor a plain hash an offline attacker could test guesses
  against is ever kept in memory by the cache.
- At most `max_entries` (4096) results, least recently used evicted first.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import OrderedDict
from typing import Callable

from navio.apiserver.authn import TokenAuthenticator, UserInfo, authenticate_token

__all__ = ["CachedTokenAuthenticator", "SUCCESS_TTL", "MAX_ENTRIES"]

SUCCESS_TTL = 10.0
MAX_ENTRIES = 4096


class CachedTokenAuthenticator:
    """A token authenticator (authn.BEARER) over the union of `authenticators`."""

    def __init__(self, authenticators: list[TokenAuthenticator], *, ttl: float = SUCCESS_TTL,
                 max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.authenticators = authenticators
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._secret = os.urandom(32)
        self._entries: OrderedDict[bytes, tuple[float, UserInfo]] = OrderedDict()

    def _key(self, token: str, audiences: tuple[str, ...] | None) -> bytes:
        mac = hmac.new(self._secret, digestmod=hashlib.sha256)
        for aud in audiences or ():
            mac.update(len(aud).to_bytes(4, "big") + aud.encode())
        mac.update(b"\0" + token.encode())
        return mac.digest()

    def __call__(self, token: str, audiences: tuple[str, ...] | None = None) -> UserInfo:
        key = self._key(token, audiences)
        now = self._clock()
        hit = self._entries.get(key)
        if hit is not None:
            if hit[0] > now:
                self._entries.move_to_end(key)
                return hit[1]
            del self._entries[key]
        user = authenticate_token(self.authenticators, token, audiences)  # raises when refused
        if self.ttl > 0:
            self._entries[key] = (now + self.ttl, user)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return user

    def __len__(self) -> int:
        return len(self._entries)
