"""Conntrack cleanup for UDP: flows pinned to endpoints that are gone are deleted.

Why: the kernel NATs a flow once, on its first packet, and keeps the mapping while packets
keep coming. For TCP a removed endpoint ends the connection; a UDP client that keeps sending
from the same port (a DNS resolver, a metrics agent) would stay pinned to the removed endpoint
— or, if it sent while the service had no endpoints, to the reject verdict — forever. kube-proxy
therefore deletes such conntrack entries after each sync (pkg/proxy/conntrack/cleanup.go).

What is guaranteed:
- `stale_flows(old, new, keys)` is pure: for each UDP service port of the changed services, a
  filter per (service address, removed endpoint IP) — cluster IP, external and load-balancer
  IPs by `--orig-dst`, the NodePort by `--orig-port-dst` — and, for a port that had no
  endpoint before and has one now, a filter for every flow to it (they were being rejected).
- `ConntrackCleaner` runs `conntrack -D` (in a network namespace when given one) for each
  filter; "no entry matched" is not an error; failures are logged, never raised, since the
  rules themselves are already in place.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass

from navio.proxy.model import ServiceMap, ServicePort

__all__ = ["Flow", "stale_flows", "ConntrackCleaner"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Flow:
    """One `conntrack -D` filter over UDP flows."""

    orig_dst: str | None = None          # the service address the client sent to
    orig_port_dst: int | None = None     # or the NodePort it sent to
    dst_nat: str | None = None           # flows NATed to this endpoint only; None: all

    def argv(self) -> list[str]:
        out = ["-D", "-p", "udp"]
        if self.orig_dst:
            out += ["--orig-dst", self.orig_dst]
        if self.orig_port_dst:
            out += ["--orig-port-dst", str(self.orig_port_dst)]
        if self.dst_nat:
            out += ["--dst-nat", self.dst_nat]
        return out


def _addresses(sp: ServicePort) -> tuple[str, ...]:
    return (sp.cluster_ip, *sp.external_ips, *sp.load_balancer_ips)


def _targets(sp: ServicePort | None) -> set[str]:
    if sp is None:
        return set()
    return {e.ip for e in sp.reachable_endpoints}


def stale_flows(old: ServiceMap, new: ServiceMap, keys: Iterable[str]) -> list[Flow]:
    """The UDP flows to delete after the services `keys` went from `old` to `new`."""
    flows: list[Flow] = []
    for key in sorted(set(keys)):
        before = {(sp.port_name, sp.protocol): sp for sp in old.get(key, ())
                  if sp.protocol == "UDP"}
        after = {(sp.port_name, sp.protocol): sp for sp in new.get(key, ())
                 if sp.protocol == "UDP"}
        for pid, o in before.items():
            n = after.get(pid)
            gone = _targets(o) - _targets(n)
            for ip in sorted(gone):
                flows += [Flow(orig_dst=addr, dst_nat=ip) for addr in _addresses(o)]
                if o.node_port:
                    flows.append(Flow(orig_port_dst=o.node_port, dst_nat=ip))
        for pid, now in after.items():
            if _targets(now) and not _targets(before.get(pid)):
                flows += [Flow(orig_dst=addr) for addr in _addresses(now)]
                if now.node_port:
                    flows.append(Flow(orig_port_dst=now.node_port))
    return list(dict.fromkeys(flows))


class ConntrackCleaner:
    """Deletes conntrack entries with the `conntrack` tool, in `prefix` (a netns command)."""

    def __init__(self, prefix: list[str] | None = None, *, binary: str = "conntrack",
                 timeout: float = 10.0) -> None:
        self.argv = [*(prefix or []), binary]
        self.binary = binary
        self.timeout = timeout
        self.deleted = 0                 # filters run successfully, for tests and summaries

    @property
    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    async def delete(self, flows: Iterable[Flow]) -> None:
        for flow in flows:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self.argv, *flow.argv(), stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
                _, err = await asyncio.wait_for(proc.communicate(), self.timeout)
            except (OSError, TimeoutError) as exc:
                log.warning("conntrack cleanup failed", extra={"error": str(exc)[:200]})
                continue
            text = err.decode(errors="replace")
            # exit 1 with "0 flow entries have been deleted": nothing matched
            if proc.returncode == 0 or "0 flow entries" in text:
                self.deleted += 1
            else:
                log.warning("conntrack cleanup failed",
                            extra={"filter": " ".join(flow.argv()), "error": text[:300]})
