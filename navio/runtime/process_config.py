"""Configuration of the process runtime, and what isolation it can give on this machine.

Why: the kubelet builds one frozen config (STYLE §12) and shows the resulting capabilities on
its Node, so users learn when pods share the host network or run without limits.

Guarantees: the config is validated when built; `detect_capabilities` never promises
isolation the machine cannot give (namespaces and mounts need root on Linux, limits also need
the cgroup v1 memory, cpu and pids hierarchies).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from navio.runtime import cgroups
from navio.runtime import namespaces as ns
from navio.runtime.protocol import Capabilities, RuntimeFailure

__all__ = ["ProcessRuntimeConfig", "detect_capabilities"]

NO_ROOT_NOTE = ("process runtime without root: pods share the host network, have no "
                "PID/UTS/IPC namespaces and no resource limits; volumes are not mounted "
                "(only env and working dir apply)")
NO_CGROUPS_NOTE = "cgroup v1 memory/cpu/pids hierarchies not found: limits are not enforced"


@dataclass(frozen=True, slots=True)
class ProcessRuntimeConfig:
    """`state_dir`: records that let a restarted agent re-attach (keep it across restarts,
    e.g. /var/lib/navio/runtime). `log_dir`: where relative container log paths go.
    `pod_cidr`: this node's pod CIDR; its first address is the bridge's. `node_netns`: the
    named netns (under /run/netns) holding the bridge — None: the host's. `cgroup_parent`:
    absolute ("/navio") from each hierarchy's root, or relative to the agent's own cgroup.
    `isolation`: None = namespaces/cgroups/mounts whenever possible (root on Linux); False =
    the unprivileged fallback even as root. `node_ip`: the pod IP of host-network pods (and
    of every pod without isolation). `call_timeout` bounds each call (seconds)."""

    state_dir: Path
    log_dir: Path
    pod_cidr: str = "10.42.0.0/24"
    bridge: str = "navio0"
    node_netns: str | None = None
    cgroup_parent: str = "/navio"
    isolation: bool | None = None
    node_ip: str = "127.0.0.1"
    mtu: int = 0                      # pods' eth0 and veth MTU (0: the kernel's default)
    log_max_bytes: int = 10 << 20     # kubelet --container-log-max-size default
    log_max_files: int = 5            # kubelet --container-log-max-files default
    shm_size: int = 64 << 20          # each pod's /dev/shm, as Docker's default
    call_timeout: float = 30.0
    python: str = sys.executable

    @property
    def helper_timeout(self) -> float:
        """How long a helper (pause, supervisor) may take to get ready: well inside the call
        timeout, so an unready helper is killed by its launcher before the call gives up."""
        return self.call_timeout / 2

    def __post_init__(self) -> None:
        if not 0 < len(self.bridge) <= 15:
            raise ValueError("bridge name must have 1-15 characters")
        if self.node_netns is not None and ("/" in self.node_netns or not self.node_netns):
            raise ValueError("node_netns is a name under /run/netns")
        if self.call_timeout < 2:
            raise ValueError("call_timeout must be at least 2 seconds")
        if self.log_max_bytes < 1024 or self.log_max_files < 1:
            raise ValueError("log rotation needs log_max_bytes >= 1024 and log_max_files >= 1")


def detect_capabilities(config: ProcessRuntimeConfig) -> Capabilities:
    isolate = ns.available() if config.isolation is None else config.isolation
    if isolate and not ns.available():
        raise RuntimeFailure("isolation needs root on Linux")
    has_cgroups = isolate and cgroups.available()
    notes = () if has_cgroups else (NO_CGROUPS_NOTE,) if isolate else (NO_ROOT_NOTE,)
    return Capabilities(pod_network=isolate, namespaces=isolate, cgroups=has_cgroups,
                        mounts=isolate, notes=notes)
