"""The warning every NetworkPolicy write carries while some node does not enforce policies.

Why: issue 14 — a policy the API accepts is enforced, or the user is told plainly that it is
not. Each agent reports the Node condition `NetworkPolicyEnforced` (navio/netpol); a write of
a NetworkPolicy gets one `Warning` header (kubectl prints "Warning: …") naming the nodes whose
condition is not True — reported False (not root, no nft, a simulated node) or never reported
(an agent without enforcement, a Node created by hand). Read from the Node watch cache: no
storage round trip on the write path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["CONDITION_TYPE", "unenforced_warnings"]

CONDITION_TYPE = "NetworkPolicyEnforced"
_SHOWN = 5


def unenforced_warnings(nodes: Iterable[dict[str, Any]]) -> list[str]:
    """[] when every node enforces, else one warning naming the ones that do not."""
    bad: list[str] = []
    for node in nodes:
        name = (node.get("metadata") or {}).get("name", "")
        cond = next((c for c in (node.get("status") or {}).get("conditions") or ()
                     if c.get("type") == CONDITION_TYPE), None)
        if cond is None:
            bad.append(f"{name} (not reported)")
        elif cond.get("status") != "True":
            bad.append(f"{name} ({cond.get('reason') or 'NotEnforced'})")
    if not bad:
        return []
    shown = ", ".join(sorted(bad)[:_SHOWN])
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    return [f"NetworkPolicy is not enforced on {len(bad)} node(s): {shown}{more}; traffic "
            "to and from pods on those nodes is not filtered"]
