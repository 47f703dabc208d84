"""Pod IP allocation from the node's pod CIDR, persisted in the runtime's state dir.

Why: a pod keeps its IP for its sandbox's life, also across agent restarts, and two pods never
share one (CNI host-local's job). The first address is the bridge (gateway); the network and
broadcast addresses are never handed out.

Guarantees: `allocate(owner)` is idempotent (an owner holding an IP gets the same one back);
allocations survive restarts (`ipam.json`, written atomically); `release(owner)` is idempotent.
New allocations go round-robin after the last one handed out, so a just-released IP is not
reused at once (a stale connection to a deleted pod does not reach its successor). A
`hint` is honoured when that address is free.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from navio.runtime.state import read_json, write_json

__all__ = ["IPAllocator", "PoolExhausted"]


class PoolExhausted(RuntimeError):
    """Every address of the pod CIDR is in use."""


class IPAllocator:
    def __init__(self, path: Path, cidr: str) -> None:
        self._path = Path(path)
        self.network = ipaddress.IPv4Network(cidr, strict=True)
        if self.network.num_addresses < 4:
            raise ValueError(f"pod CIDR {cidr} is too small")
        self.gateway = str(self.network.network_address + 1)
        data = read_json(self._path) or {}
        if data.get("cidr") == str(self.network):
            self._owners: dict[str, str] = dict(data.get("allocations", {}))
            self._last = str(data.get("last", self.gateway))
        else:  # first start, or the node's CIDR changed: old allocations mean nothing here
            self._owners, self._last = {}, self.gateway

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    def allocations(self) -> dict[str, str]:
        """ip -> owner."""
        return dict(self._owners)

    def owned_by(self, owner: str) -> str | None:
        return next((ip for ip, o in self._owners.items() if o == owner), None)

    def allocate(self, owner: str, hint: str | None = None) -> str:
        if (ip := self.owned_by(owner)) is not None:
            return ip
        if hint is not None and self._usable(hint) and hint not in self._owners:
            return self._take(hint, owner)
        first = int(self.network.network_address) + 2
        last = int(self.network.broadcast_address) - 1
        size = last - first + 1
        start = int(ipaddress.IPv4Address(self._last)) + 1
        for i in range(size):
            candidate = str(ipaddress.IPv4Address(first + (start - first + i) % size))
            if candidate not in self._owners:
                return self._take(candidate, owner)
        raise PoolExhausted(f"no free address in {self.network}")

    def release(self, owner: str) -> None:
        ips = [ip for ip, o in self._owners.items() if o == owner]
        for ip in ips:
            del self._owners[ip]
        if ips:
            self._save()

    def retain(self, owners: set[str]) -> None:
        """Release every allocation whose owner is not in `owners` (crash leftovers)."""
        stale = [ip for ip, o in self._owners.items() if o not in owners]
        for ip in stale:
            del self._owners[ip]
        if stale:
            self._save()

    def _usable(self, ip: str) -> bool:
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            return False
        return (addr in self.network and addr not in (self.network.network_address,
                                                      self.network.broadcast_address)
                and ip != self.gateway)

    def _take(self, ip: str, owner: str) -> str:
        self._owners[ip] = owner
        self._last = ip
        self._save()
        return ip

    def _save(self) -> None:
        write_json(self._path, {"cidr": str(self.network), "last": self._last,
                                "allocations": self._owners})
