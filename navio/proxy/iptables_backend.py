"""The iptables backend: iptables.py's transactions loaded with `iptables-restore --noflush`.

Why: the proxy's fallback where nftables is missing. `iptables-restore` is whichever variant the
machine has (iptables-nft or iptables-legacy); every call runs in the node's network namespace
when one is configured, and is bounded in time.

What is guaranteed:
- A full sync reads which navio chains exist (`iptables-save`), makes sure the base-chain jumps
  are in place (`iptables -C` / `-I`, once each), and loads every service in one transaction
  that also deletes the chains nothing needs. A partial sync rewrites the shared chains and
  only the changed services' chains, in one transaction. A failed partial sync falls back to
  a full one; an interrupted one leaves the next sync full.
- `cleanup` removes the jumps and then every navio chain; safe to repeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping

from navio.proxy.iptables import (FIXED_CHAINS, JUMPS, PREFIX, Fragment, cleanup_input,
                                  render_service, restore_input)
from navio.proxy.model import ServicePort
from navio.proxy.nftables import RuleOptions
from navio.proxy.nftables_backend import netns_prefix

__all__ = ["IptablesBackend", "IptablesRunner", "IptablesError", "live_iptables"]

log = logging.getLogger(__name__)


class IptablesError(RuntimeError):
    """iptables refused a transaction or could not be run; the message is its stderr."""


class IptablesRunner:
    """Runs the iptables tools (in a network namespace when given one)."""

    def __init__(self, netns: str | None = None, *, timeout: float = 60.0) -> None:
        self.netns = netns
        self.prefix = netns_prefix(netns)
        self.timeout = timeout

    async def run(self, tool: str, *args: str, stdin: str | None = None,
                  check: bool = True) -> tuple[int, str]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.prefix, tool, *args, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise IptablesError(f"cannot run {tool}: {exc.strerror}") from None
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise IptablesError(f"{tool} timed out after {self.timeout}s") from None
        if check and proc.returncode != 0:
            raise IptablesError(err.decode(errors="replace").strip()[:4000]
                                or f"{tool} exited with {proc.returncode}")
        return int(proc.returncode or 0), out.decode(errors="replace")

    async def restore(self, text: str) -> None:
        await self.run("iptables-restore", "--noflush", "-w", "5", stdin=text)

    async def chains(self, table: str) -> set[str]:
        """navio's chains that exist in `table`."""
        _, out = await self.run("iptables-save", "-t", table)
        return {line[1:].split()[0] for line in out.splitlines()
                if line.startswith(f":{PREFIX}")}


class IptablesBackend:
    """Backend: navio's chains in the nat and filter tables, kept in step with the services."""

    name = "iptables"

    def __init__(self, options: RuleOptions, runner: IptablesRunner) -> None:
        self.options = options
        self.runner = runner
        self._fragments: dict[str, Fragment] = {}
        self._chains: set[str] = set()       # navio nat chains the kernel holds
        self._need_full = True
        self.last_transaction_lines = 0

    async def preflight(self) -> None:
        await self.runner.run("iptables-save", "-t", "nat")

    async def _ensure_jumps(self) -> None:
        for table, chain, spec in JUMPS:
            rc, _ = await self.runner.run("iptables", "-w", "5", "-t", table, "-C", chain,
                                          *spec, check=False)
            if rc != 0:
                await self.runner.run("iptables", "-w", "5", "-t", table, "-I", chain, "1",
                                      *spec)

    async def sync(self, services: Mapping[str, tuple[ServicePort, ...]],
                   changed: Collection[str], *, full: bool) -> str:
        if full or self._need_full:
            await self._full(services)
            return "full"
        fragments = dict(self._fragments)
        keys = []
        for key in changed:
            ports = services.get(key)
            new = render_service(ports, self.options) if ports else None
            if fragments.get(key) != new:
                keys.append(key)
                if new is None:
                    fragments.pop(key, None)
                else:
                    fragments[key] = new
        if not keys:
            return "partial"
        text = restore_input(fragments, keys, self._chains, self.options)
        self._need_full = True
        try:
            await self.runner.restore(text)
        except IptablesError as exc:
            log.warning("iptables partial sync failed, doing a full sync",
                        extra={"error": str(exc)[:500], "services": len(keys)})
            await self._full(services)
            return "full"
        self._commit(fragments, text)
        return "partial"

    def _commit(self, fragments: dict[str, Fragment], text: str) -> None:
        self._fragments = fragments
        self._chains = {n for f in fragments.values() for n in f.chains} | {
            n for t, n in FIXED_CHAINS if t == "nat"}
        self._need_full = False
        self.last_transaction_lines = text.count("\n")

    async def _full(self, services: Mapping[str, tuple[ServicePort, ...]]) -> None:
        self._need_full = True
        fragments = {key: render_service(ports, self.options)
                     for key, ports in sorted(services.items())}
        existing = await self.runner.chains("nat")
        text = restore_input(fragments, None, existing, self.options)
        started = time.monotonic()
        await self.runner.restore(text)
        await self._ensure_jumps()
        log.info("iptables full sync applied",
                 extra={"services": len(fragments), "lines": text.count("\n"),
                        "seconds": round(time.monotonic() - started, 3)})
        self._commit(fragments, text)

    async def healthy(self) -> bool:
        if self._need_full:
            return False
        try:
            rc, _ = await self.runner.run("iptables", "-w", "5", "-t", "nat", "-C",
                                          "PREROUTING", *JUMPS[0][2], check=False)
        except IptablesError:
            return False
        return rc == 0

    async def cleanup(self) -> None:
        for table, chain, spec in JUMPS:
            while True:
                rc, _ = await self.runner.run("iptables", "-w", "5", "-t", table, "-D", chain,
                                              *spec, check=False)
                if rc != 0:
                    break
        nat = await self.runner.chains("nat")
        flt = await self.runner.chains("filter")
        if nat or flt:
            await self.runner.restore(cleanup_input(nat, flt))
        self._fragments, self._chains, self._need_full = {}, set(), True

    def describe(self) -> list[str]:
        chains = sum(len(f.chains) for f in self._fragments.values())
        where = f"netns {self.runner.netns}" if self.runner.netns else "host netns"
        return [f"iptables (nat, filter) in {where}: {chains} service chains"
                + ("" if not self._need_full else " (full sync pending)")]


async def live_iptables(netns: str | None = None) -> str:
    """navio's rules as the kernel holds them (`iptables-save`, navio's lines only)."""
    runner = IptablesRunner(netns, timeout=30.0)
    out = []
    for table in ("nat", "filter"):
        _, text = await runner.run("iptables-save", "-t", table)
        lines = [ln for ln in text.splitlines() if PREFIX in ln]
        if lines:
            out += [f"*{table}", *lines]
    if not out:
        raise IptablesError("no navio iptables rules")
    return "\n".join(out) + "\n"
