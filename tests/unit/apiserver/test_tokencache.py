"""The cached token authenticator: successes cached for the TTL under an HMAC key, failures
never, bounded size."""

from __future__ import annotations

import pytest

from navio.apiserver.authn import TokenRejected, UserInfo
from navio.apiserver.tokencache import CachedTokenAuthenticator


class Counting:
    def __init__(self) -> None:
        self.calls = 0
        self.valid = {"good-token", "other-token"} | {f"t{i}" for i in range(10)}

    def __call__(self, token: str, audiences: tuple[str, ...] | None = None) -> UserInfo | None:
        self.calls += 1
        if token not in self.valid:
            raise TokenRejected("token is gone")
        return UserInfo(f"user-{token}", ("system:authenticated",))


def test_success_is_cached_until_the_ttl_and_then_checked_again() -> None:
    now = [100.0]
    inner = Counting()
    cache = CachedTokenAuthenticator([inner], ttl=10, clock=lambda: now[0])
    assert cache("good-token").name == "user-good-token"
    assert cache("good-token").name == "user-good-token"
    assert inner.calls == 1
    inner.valid.discard("good-token")        # the ServiceAccount is deleted...
    now[0] += 9.9
    assert cache("good-token").name == "user-good-token"   # ...still cached, as in kube
    now[0] += 0.2
    with pytest.raises(TokenRejected, match="token is gone"):
        cache("good-token")                  # refused once the TTL is over
    with pytest.raises(TokenRejected):
        cache("good-token")
    assert inner.calls == 3                  # failures are never cached


def test_audiences_are_part_of_the_key_and_the_token_is_not_stored() -> None:
    inner = Counting()
    cache = CachedTokenAuthenticator([inner])
    cache("good-token", ("a",))
    cache("good-token", ("b",))
    cache("good-token", ("a",))
    assert inner.calls == 2
    for key in cache._entries:
        assert b"good-token" not in key and len(key) == 32


def test_bounded_least_recently_used_first() -> None:
    inner = Counting()
    cache = CachedTokenAuthenticator([inner], max_entries=3)
    for i in range(3):
        cache(f"t{i}")
    cache("t0")              # t0 used last: t1 is the oldest now
    cache("t3")
    assert len(cache) == 3
    calls = inner.calls
    cache("t0")
    cache("t2")
    cache("t3")
    assert inner.calls == calls
    cache("t1")
    assert inner.calls == calls + 1
