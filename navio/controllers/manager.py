"""`navio controller-manager`: runs the enabled controllers, with leader election.

Controllers are registered by name in `CONTROLLERS`; each module adds itself there with a
factory. The manager builds one client and one set of shared informers, creates the
controllers (which register the informers they need; each records events under its own kube
source name, e.g. `job-controller`), starts the informers, waits for them to sync, then
runs every controller until cancelled. With leader election on, all of this happens only
while this process holds the `kube-controller-manager` Lease.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from navio.client import (Client, EventRecorder, LeaderElectionConfig, LeaderElector,
                          default_identity)
from navio.controllers.base import Controller, ControllerContext, SharedInformers

__all__ = ["ControllerManagerConfig", "CONTROLLERS", "register", "run"]

log = logging.getLogger(__name__)

Factory = Callable[[ControllerContext], Controller]
CONTROLLERS: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        CONTROLLERS[name] = factory
        return factory
    return deco


@dataclass(frozen=True)
class ControllerManagerConfig:
    kubeconfig: Path
    leader_elect: bool = True
    controllers: tuple[str, ...] = ("*",)
    qps: float = 200.0
    burst: int = 400
    options: dict[str, Any] = field(default_factory=dict)
    identity: str = field(default_factory=default_identity)
    # kube-controller-manager's --leader-elect-* defaults (kube-system/kube-controller-manager)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def enabled(self, name: str) -> bool:
        if f"-{name}" in self.controllers:
            return False
        return "*" in self.controllers or name in self.controllers


def _load_all() -> None:
    """Import every controller module so that each registers itself."""
    import importlib
    import pkgutil

    import navio.controllers as pkg
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("base", "manager"):
            importlib.import_module(f"navio.controllers.{mod.name}")


async def _run_controllers(config: ControllerManagerConfig, client: Client) -> None:
    _load_all()
    informers = SharedInformers(client)
    recorder = EventRecorder(client, "controller-manager")
    recorder.start()
    ctx = ControllerContext(client, informers, recorder, dict(config.options),
                            recorder_factory=lambda source: EventRecorder(client, source))
    controllers = [factory(ctx) for name, factory in sorted(CONTROLLERS.items())
                   if config.enabled(name)]
    informers.start()
    try:        # stopped even when cancelled while syncing: no watch outlives the client
        if not await informers.wait_synced(120):
            log.warning("informers not synced in time; starting anyway")
        log.info("controllers starting", extra={"controllers": ",".join(c.name
                                                                       for c in controllers)})
        # Controllers run until cancelled; with none enabled, the manager still idles.
        await asyncio.gather(*(c.run() for c in controllers), asyncio.Event().wait())
    finally:
        await informers.stop()
        await recorder.stop()
        await ctx.stop_recorders()


async def run(config: ControllerManagerConfig) -> None:
    async with Client.from_kubeconfig(config.kubeconfig, component="controller-manager",
                                      qps=config.qps, burst=config.burst) as client:
        if not config.leader_elect:
            await _run_controllers(config, client)
            return
        elector = LeaderElector(client, LeaderElectionConfig(
            name="kube-controller-manager", identity=config.identity,
            lease_duration=config.lease_duration, renew_deadline=config.renew_deadline,
            retry_period=config.retry_period))
        # Like kube-controller-manager, campaign again whenever leadership is lost.
        while True:
            await elector.run(lambda: _run_controllers(config, client), lambda: None)
