"""Cluster IP and node port allocation for Services.

The allocators are in memory and rebuilt from the stored Services at start, so they never
disagree with the store for long: an allocation is reserved before the Service is written and
released if the write fails or the Service is deleted.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Iterable

from navio.api import errors

__all__ = ["IPAllocator", "PortAllocator"]


class IPAllocator:
    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        # The network address and the broadcast address are never handed out.
        self._first = int(self.network.network_address) + 1
        self._last = int(self.network.broadcast_address) - 1
        self._used: set[int] = set()
        # Like kube-apiserver, hand out dynamic addresses above a low band kept for
        # well-known static ones (kubernetes = .1, kube-dns = .10).
        size = self._last - self._first + 1
        self._next = self._first + min(max(16, size // 16), 256, size - 1)
        self._next_floor = self._next

    def contains(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self.network
        except ValueError:
            return False

    def reserve(self, ip: str) -> None:
        """Claim a specific address; Invalid if outside the range or taken."""
        addr = int(ipaddress.ip_address(ip))
        if not self._first <= addr <= self._last:
            raise ValueError(f"the provided IP ({ip}) is not in the valid range. "
                             f"The range of valid IPs is {self.network}")
        if addr in self._used:
            raise ValueError(f"failed to allocate IP {ip}: provided IP is already allocated")
        self._used.add(addr)

    def allocate(self) -> str:
        size = self._last - self._first + 1
        if len(self._used) >= size:
            raise errors.InternalError("failed to allocate a serviceIP: range is full")
        addr = self._next
        while addr in self._used:
            addr = addr + 1 if addr < self._last else self._first
        self._used.add(addr)
        self._next = addr + 1 if addr < self._last else self._first
        return str(ipaddress.ip_address(addr))

    def scatter(self) -> None:
        """Continue from a random address of the dynamic band: another API server is handing
        out the addresses that follow the last one tried."""
        self._next = random.randint(self._next_floor, self._last)

    def release(self, ip: str | None) -> None:
        if ip and ip != "None":
            try:
                self._used.discard(int(ipaddress.ip_address(ip)))
            except ValueError:
                pass

    def rebuild(self, ips: Iterable[str]) -> None:
        self._used.clear()
        for ip in ips:
            if self.contains(ip):
                self._used.add(int(ipaddress.ip_address(ip)))


class PortAllocator:
    def __init__(self, first: int = 30000, last: int = 32767, seed: int | None = None) -> None:
        self.first, self.last = first, last
        self._used: set[int] = set()
        self._rand = random.Random(seed)

    def reserve(self, port: int) -> None:
        if not self.first <= port <= self.last:
            raise ValueError(f"provided port is not in the valid range. "
                             f"The range of valid ports is {self.first}-{self.last}")
        if port in self._used:
            raise ValueError("provided port is already allocated")
        self._used.add(port)

    def allocate(self) -> int:
        free = self.last - self.first + 1 - len(self._used)
        if free <= 0:
            raise errors.InternalError("failed to allocate a nodePort: range is full")
        while True:
            port = self._rand.randint(self.first, self.last)
            if port not in self._used:
                self._used.add(port)
                return port

    def release(self, port: int | None) -> None:
        if port:
            self._used.discard(port)

    def rebuild(self, ports: Iterable[int]) -> None:
        self._used = {p for p in ports if self.first <= p <= self.last}
