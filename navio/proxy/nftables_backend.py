"""The nftables data plane: renders service maps with `nftables.py` and applies them with `nft`.

Why: there is no Python nftables binding on the platform, so rules go through `nft -f -`, one
atomic transaction per sync, optionally inside a network namespace (a named one through
`ip netns exec`, a path through `nsenter --net=`).

What is guaranteed:
- The first sync, any sync after a failure and any sync asked to be full load the whole table
  in one transaction; the others send only the difference for the services that changed
  (kube-proxy's partial sync). A failed delta is retried at once as a full load.
- Only what was applied is remembered: the backend's idea of the table never runs ahead of
  the kernel's.
- Every `nft` call is bounded by a timeout; `cleanup` deletes the table and is safe to repeat.
- Rendering a full map yields to the event loop every few hundred services.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping

from navio.proxy.model import ServicePort
from navio.proxy.nftables import (FAMILY, TABLE, Fragment, RuleOptions, cleanup_transaction,
                                  delta_transaction, full_transaction, render_service)

__all__ = ["NftablesBackend", "NftRunner", "NftError", "netns_prefix", "live_table"]

log = logging.getLogger(__name__)

_YIELD_EVERY = 200
_BR_NF_CALL_IPTABLES = "/proc/sys/net/bridge/bridge-nf-call-iptables"


class NftError(RuntimeError):
    """`nft` refused a transaction or could not be run; the message is its stderr."""


def netns_prefix(netns: str | None) -> list[str]:
    """The argv prefix that runs a command in `netns`: a name under /run/netns, or a path."""
    if not netns:
        return []
    if netns.startswith("/"):
        return ["nsenter", f"--net={netns}", "--"]
    return ["ip", "netns", "exec", netns]


class NftRunner:
    """Runs `nft` (in a network namespace when given one), each call bounded by `timeout`."""

    def __init__(self, netns: str | None = None, *, nft: str = "nft",
                 timeout: float = 60.0) -> None:
        self.netns = netns
        self.argv = [*netns_prefix(netns), nft]
        self.timeout = timeout

    async def run(self, *args: str, stdin: str | None = None) -> str:
        """`nft args…` with `stdin`; its stdout, or NftError with its stderr."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, *args, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise NftError(f"cannot run {self.argv[0]}: {exc.strerror}") from None
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise NftError(f"nft timed out after {self.timeout}s") from None
        if proc.returncode != 0:
            raise NftError(err.decode(errors="replace").strip()[:4000]
                           or f"nft exited with {proc.returncode}")
        return out.decode(errors="replace")

    async def apply(self, script: str, *, check: bool = False) -> None:
        """Load `script` as one transaction (`nft -f -`); `check` only validates it."""
        await self.run(*(["-c"] if check else []), "-f", "-", stdin=script)


class NftablesBackend:
    """Backend: the table `ip navio-proxy`, kept in step with the service map."""

    name = "nftables"

    def __init__(self, options: RuleOptions, runner: NftRunner) -> None:
        self.options = options
        self.runner = runner
        self._fragments: dict[str, Fragment] = {}
        self._need_full = True
        self.last_transaction_lines = 0

    async def sync(self, services: Mapping[str, tuple[ServicePort, ...]],
                   changed: Collection[str], *, full: bool) -> str:
        if full or self._need_full:
            await self._full(services)
            return "full"
        pairs: list[tuple[Fragment | None, Fragment | None]] = []
        fresh: dict[str, Fragment | None] = {}
        for key in changed:
            ports = services.get(key)
            new = render_service(ports, self.options) if ports else None
            old = self._fragments.get(key)
            if old != new:
                pairs.append((old, new))
                fresh[key] = new
        if not pairs:
            return "partial"
        script = delta_transaction(pairs)
        # Until the kernel confirms, the table's state is unknown: an interrupted apply
        # (cancellation, timeout) must lead to a full load next time.
        self._need_full = True
        try:
            if script:
                await self.runner.apply(script)
        except NftError as exc:
            log.warning("nftables partial sync failed, doing a full sync",
                        extra={"error": str(exc)[:500], "services": len(pairs)})
            await self._full(services)
            return "full"
        self._need_full = False
        self.last_transaction_lines = script.count("\n")
        for key, frag in fresh.items():
            if frag is None:
                self._fragments.pop(key, None)
            else:
                self._fragments[key] = frag
        return "partial"

    async def _full(self, services: Mapping[str, tuple[ServicePort, ...]]) -> None:
        self._need_full = True
        fragments: dict[str, Fragment] = {}
        for i, (key, ports) in enumerate(sorted(services.items())):
            fragments[key] = render_service(ports, self.options)
            if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
        script = full_transaction(fragments.values(), self.options)
        started = time.monotonic()
        await self.runner.apply(script)
        log.info("nftables full sync applied",
                 extra={"services": len(fragments), "lines": script.count("\n"),
                        "seconds": round(time.monotonic() - started, 3)})
        self.last_transaction_lines = script.count("\n")
        self._fragments = fragments
        self._need_full = False

    async def preflight(self) -> None:
        """Raise NftError unless `nft` runs and may read rules here (root, netns exists);
        warn, as kube-proxy does, when bridged pod traffic would bypass the rules."""
        await self.runner.run("list", "tables", FAMILY)
        try:
            proc = await asyncio.create_subprocess_exec(
                *netns_prefix(self.runner.netns), "cat", _BR_NF_CALL_IPTABLES,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            out, _ = await asyncio.wait_for(proc.communicate(), 10.0)
        except (OSError, TimeoutError):
            return
        if out.strip() != b"1":
            log.warning("bridge-nf-call-iptables is not 1: pod-to-service traffic on a bridge "
                        "may bypass the rules", extra={"netns": self.runner.netns})

    async def healthy(self) -> bool:
        if self._need_full:
            return False
        try:
            # `list tables` reads no chains: cheap even with thousands of services.
            tables = await self.runner.run("list", "tables", FAMILY)
        except NftError:
            return False
        return f"table {FAMILY} {TABLE}" in tables.splitlines()

    async def cleanup(self) -> None:
        await self.runner.apply(cleanup_transaction())
        self._fragments = {}
        self._need_full = True

    async def check(self, services: Mapping[str, tuple[ServicePort, ...]]) -> None:
        """Validate a full load of `services` with `nft -c` without changing anything."""
        frags = [render_service(p, self.options) for _, p in sorted(services.items())]
        await self.runner.apply(full_transaction(frags, self.options), check=True)

    async def live_rules(self) -> str:
        """The table as the kernel holds it (`nft list table`)."""
        return await self.runner.run("list", "table", FAMILY, TABLE)

    def describe(self) -> list[str]:
        chains = sum(len(f.chains) for f in self._fragments.values())
        sets = sum(len(f.sets) for f in self._fragments.values())
        elements = sum(len(f.elements) for f in self._fragments.values())
        where = f"netns {self.runner.netns}" if self.runner.netns else "host netns"
        return [f"table {FAMILY} {TABLE} in {where}: {chains} service chains, "
                f"{sets} affinity sets, {elements} map elements"
                + ("" if not self._need_full else " (full sync pending)")]


async def live_table(netns: str | None = None) -> str:
    """The proxy's table as the kernel holds it (`nft list table ip navio-proxy`), for
    `navio proxy rules --live`; NftError when it does not exist."""
    return await NftRunner(netns, timeout=30.0).run("list", "table", FAMILY, TABLE)
