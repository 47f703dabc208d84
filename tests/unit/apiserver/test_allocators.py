"""Cluster IP and node port allocation."""

import pytest

from navio.apiserver.allocators import IPAllocator, PortAllocator


def test_dynamic_ips_skip_the_static_band_and_never_repeat() -> None:
    ips = IPAllocator("10.43.0.0/16")
    got = {ips.allocate() for _ in range(1000)}
    assert len(got) == 1000
    assert "10.43.0.1" not in got and "10.43.0.10" not in got


def test_reserving_a_taken_or_foreign_ip_fails() -> None:
    ips = IPAllocator("10.43.0.0/24")
    ips.reserve("10.43.0.10")
    with pytest.raises(ValueError, match="already allocated"):
        ips.reserve("10.43.0.10")
    with pytest.raises(ValueError, match="not in the valid range"):
        ips.reserve("10.44.0.1")


def test_a_full_range_is_an_error_not_a_loop() -> None:
    ips = IPAllocator("10.43.0.0/29")   # 6 usable addresses
    for _ in range(6):
        ips.allocate()
    with pytest.raises(Exception, match="range is full"):
        ips.allocate()


def test_rebuild_restores_allocations_after_restart() -> None:
    ips = IPAllocator("10.43.0.0/24")
    ips.rebuild(["10.43.0.1", "10.43.0.50", "192.168.0.1"])
    with pytest.raises(ValueError):
        ips.reserve("10.43.0.50")
    ips.release("10.43.0.50")
    ips.reserve("10.43.0.50")


def test_node_ports_are_unique_and_in_range() -> None:
    ports = PortAllocator(seed=1)
    got = {ports.allocate() for _ in range(500)}
    assert len(got) == 500 and all(30000 <= p <= 32767 for p in got)
    with pytest.raises(ValueError):
        ports.reserve(80)
