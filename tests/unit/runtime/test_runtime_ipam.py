"""Pod IP allocation (ipam.py): idempotent, persistent, round-robin, bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from navio.runtime.ipam import IPAllocator, PoolExhausted


def test_the_first_address_is_the_gateway_and_is_never_handed_out(tmp_path: Path) -> None:
    ipam = IPAllocator(tmp_path / "ipam.json", "10.42.0.0/24")
    assert ipam.gateway == "10.42.0.1" and ipam.prefixlen == 24
    assert ipam.allocate("a") == "10.42.0.2"


def test_allocating_twice_for_one_owner_returns_the_same_address(tmp_path: Path) -> None:
    ipam = IPAllocator(tmp_path / "ipam.json", "10.42.0.0/24")
    assert ipam.allocate("a") == ipam.allocate("a")
    assert ipam.allocate("b") != ipam.allocate("a")


def test_allocations_survive_a_restart(tmp_path: Path) -> None:
    first = IPAllocator(tmp_path / "ipam.json", "10.42.0.0/24")
    ip = first.allocate("a")
    again = IPAllocator(tmp_path / "ipam.json", "10.42.0.0/24")
    assert again.owned_by("a") == ip
    assert again.allocate("b") != ip


def test_a_released_address_is_not_reused_at_once(tmp_path: Path) -> None:
    ipam = IPAllocator(tmp_path / "ipam.json", "10.42.0.0/24")
    ip = ipam.allocate("a")
    ipam.release("a")
    ipam.release("a")   # idempotent
    assert ipam.allocate("b") != ip


@pytest.mark.parametrize(("hint", "honoured"), [
    ("10.42.0.77", True), ("10.42.0.1", False), ("10.42.0.255", False), ("10.9.9.9", False),
    ("not-an-ip", False)],
    ids=["a free address", "the gateway", "broadcast", "outside the CIDR", "garbage"])
def test_a_hint_is_honoured_only_when_usable(tmp_path: Path, hint: str, honoured: bool) -> None:
    ipam = IPAllocator(tmp_path / "ipam.json", "10.42.0.0/24")
    assert (ipam.allocate("a", hint) == hint) is honoured


def test_a_full_pool_raises_and_wraps_around_after_release(tmp_path: Path) -> None:
    ipam = IPAllocator(tmp_path / "ipam.json", "10.42.0.0/29")   # .2 .. .6
    ips = [ipam.allocate(str(i)) for i in range(5)]
    assert ips == [f"10.42.0.{n}" for n in range(2, 7)]
    with pytest.raises(PoolExhausted):
        ipam.allocate("late")
    ipam.release("1")
    assert ipam.allocate("late") == "10.42.0.3"


def test_retain_releases_allocations_of_unknown_owners(tmp_path: Path) -> None:
    ipam = IPAllocator(tmp_path / "ipam.json", "10.42.0.0/24")
    keep = ipam.allocate("keep")
    ipam.allocate("gone")
    ipam.retain({"keep"})
    assert ipam.allocations() == {keep: "keep"}


def test_a_changed_cidr_starts_afresh(tmp_path: Path) -> None:
    IPAllocator(tmp_path / "ipam.json", "10.42.0.0/24").allocate("a")
    ipam = IPAllocator(tmp_path / "ipam.json", "10.43.0.0/24")
    assert ipam.allocations() == {} and ipam.allocate("a") == "10.43.0.2"
