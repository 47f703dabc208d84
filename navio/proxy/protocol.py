"""The contract between the proxier's sync loop and the thing that forwards traffic.

One extension point: a backend is told the whole desired service map and which services
changed since the last call; it makes the data plane match and can say what it holds.
Implementations: `nftables_backend.NftablesBackend` (kernel rules, root) and
`userspace.UserspaceBackend` (listeners that forward, no privileges).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from navio.proxy.model import ServicePort

__all__ = ["Backend"]


class Backend(Protocol):
    name: str

    async def sync(self, services: Mapping[str, tuple[ServicePort, ...]],
                   changed: Collection[str], *, full: bool) -> str:
        """Make the data plane match `services`; `changed` names the service keys that
        differ from the previous call, `full` asks to rebuild everything. Returns "full" or
        "partial" (what was done). Raises on failure; the next call should then be `full`.
        Safe to repeat."""
        ...

    async def healthy(self) -> bool:
        """True while the state last synced is still in place (the table still exists)."""
        ...

    async def cleanup(self) -> None:
        """Remove everything this backend installed; safe to repeat."""
        ...

    def describe(self) -> list[str]:
        """Backend-specific lines for `navio proxy rules`."""
        ...
