"""The container runtime contract the kubelet drives (CRI-shaped).

Why: the kubelet's pod workers must not care whether a pod's containers are host processes
(`process`), runc containers (`oci`) or nothing at all (`sim`); kwok keeps its simulation
behind the same boundary as the real thing, and so do we. The shape follows
k8s.io/cri-api/pkg/apis/runtime/v1/api.proto: a pod is a *sandbox* (namespaces, network, IP)
holding *containers*; ids are opaque strings.

Guarantees every implementation gives (checked by tests/unit/runtime/test_runtime_contract.py):
- Every call is a coroutine and finishes within the runtime's call timeout (`stop_container`
  within `grace` plus that timeout) or raises `TimeoutError`.
- Calls are idempotent as CRI asks: stopping a stopped container or sandbox, removing a removed
  one, or either on an id never seen, is not an error. `run_sandbox` for a pod uid whose
  sandbox is still ready returns that sandbox; `create_container` for the same
  (sandbox, name, attempt) returns the existing container. `start_container` on a container
  that already started is a no-op.
- `stop_sandbox` forcibly stops the sandbox's containers and releases its network (IP);
  `remove_sandbox` also removes its containers. `remove_container` kills a running container.
- Status and list calls never block on a container: `container_status` of an unknown id is
  None.
- Containers outlive the process that created them: a new runtime over the same state reports
  them with the same ids and pids (process runtime: see process.py).

Exceptions (all `RuntimeFailure`):

    RuntimeFailure            the runtime could not do what was asked (message says why)
    ├── NotFound              the sandbox or container does not exist (for calls that need it)
    ├── InvalidState          e.g. exec in a container that is not running
    └── Unsupported           the runtime cannot do this at all (e.g. port-forward in `sim`)

Times are UNIX seconds as floats (the kubelet formats them as RFC 3339).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Mapping, Protocol, Sequence

if TYPE_CHECKING:   # helpers (supervisor, pause) import this module and stay asyncio-free
    import asyncio

__all__ = [
    "AttachSession", "ByteSink", "Capabilities", "ContainerConfig", "ContainerState",
    "ContainerConfigFailure", "ContainerStats", "ContainerStatus",
    "ExecSession", "ImageInfo", "ImagePullFailure", "ImageService", "InvalidImage",
    "InvalidState", "Mount", "NotFound", "Resources", "Runtime", "RuntimeFailure",
    "SandboxInfo", "SandboxState", "Unsupported", "INIT_LABEL", "REASON_COMPLETED", "REASON_ERROR",
    "REASON_OOM_KILLED", "REASON_START_ERROR", "REASON_UNKNOWN",
]

ContainerState = Literal["created", "running", "exited", "unknown"]
SandboxState = Literal["ready", "notready"]

# Reasons as containerd's CRI plugin reports them (kubectl shows them as the terminated reason).
REASON_COMPLETED = "Completed"
# The label the kubelet puts on an init container that must run to completion (not on a
# sidecar, an init container with restartPolicy Always): lets a runtime tell them apart.
INIT_LABEL = "navio.io/init-container"
REASON_ERROR = "Error"
REASON_OOM_KILLED = "OOMKilled"
REASON_START_ERROR = "StartError"
REASON_UNKNOWN = "Unknown"


class RuntimeFailure(Exception):
    """The runtime could not carry out a call."""


class NotFound(RuntimeFailure):
    """The sandbox or container named does not exist."""


class InvalidState(RuntimeFailure):
    """The object exists but is not in a state that allows the call."""


class Unsupported(RuntimeFailure):
    """This runtime does not implement the call."""


class ImagePullFailure(RuntimeFailure):
    """The image could not be pulled (the kubelet's ErrImagePull; message says why)."""


class ContainerConfigFailure(RuntimeFailure):
    """The container's configuration cannot work with its image, e.g. runAsNonRoot with an
    image running as root (the kubelet's CreateContainerConfigError)."""


class InvalidImage(RuntimeFailure):
    """The image reference cannot be parsed (the kubelet's InvalidImageName)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What isolation a runtime provides on this machine, for the Node's status and events.

    `pod_network`: each pod has its own network namespace and IP (else: host network).
    `namespaces`: pid/uts/ipc namespaces per pod (hostname = pod name).
    `cgroups`: memory/cpu/pids limits are enforced (memory limit -> OOMKilled).
    `mounts`: volumes are bind-mounted at their container paths (else: not mounted at all;
    containers see the host filesystem and only their env and working dir are applied).
    `notes`: human-readable explanations of anything missing, for the Node's conditions."""

    pod_network: bool
    namespaces: bool
    cgroups: bool
    mounts: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Mount:
    """A volume as the runtime sees it: `host_path` (a directory or file the kubelet
    prepared) appears at `container_path`."""

    host_path: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Resources:
    """Resolved limits: bytes, millicores, a process count. None = unlimited."""

    memory_limit: int | None = None
    cpu_limit_millis: int | None = None
    cpu_request_millis: int | None = None
    pids_limit: int | None = None


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """Everything needed to run one container, already resolved by the kubelet.

    `command` + `args` are the argv (no image entrypoint exists for host processes);
    `env` is the final environment (configMap/secret refs and $(VAR) already expanded);
    `log_path` is where the CRI-format log goes (relative paths are under the runtime's log
    dir). `attempt` is the restart count: (sandbox, name, attempt) identifies a container.
    `labels` are kept and reported back in ContainerStatus (the kubelet's own bookkeeping,
    such as the spec hash, survives its restarts this way, as with CRI labels).
    `seccomp` is the OCI `linux.seccomp` object to confine the container (and every exec in
    it) with, None = unconfined (the kubelet resolves it: navio.runtime.seccomp.profiles);
    `no_new_privs` sets PR_SET_NO_NEW_PRIVS (allowPrivilegeEscalation: false)."""

    name: str
    log_path: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    mounts: tuple[Mount, ...] = ()
    resources: Resources = field(default_factory=Resources)
    attempt: int = 0
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    run_as_user: int | None = None
    run_as_group: int | None = None
    labels: tuple[tuple[str, str], ...] = ()
    seccomp: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    no_new_privs: bool = False

    @property
    def argv(self) -> tuple[str, ...]:
        return self.command + self.args


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    """A pod sandbox. `ip` is the pod IP (the node IP for host-network pods)."""

    id: str
    name: str
    namespace: str
    uid: str
    state: SandboxState
    ip: str
    created_at: float
    hostname: str = ""
    host_network: bool = False
    netns: str | None = None
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    """A container as CRI's ContainerStatus reports it. `exit_code`, `finished_at` and
    `reason` are set once the state is "exited" (reason: Completed, Error, OOMKilled,
    StartError or Unknown)."""

    id: str
    sandbox_id: str
    name: str
    attempt: int
    state: ContainerState
    created_at: float
    log_path: str
    pid: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    image: str = ""       # the image reference it runs, normalised (runtimes with images)
    image_id: str = ""    # its repo digest (name@sha256:...), else the image ID


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """An image on the node, as CRI's Image: `id` is the config digest."""

    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    size: int = 0


class ImageService(Protocol):
    """CRI's ImageService, offered as `Runtime.images` by runtimes that run images (`oci`);
    runtimes without images (process, sim) have `images = None`."""

    async def pull_image(self, image: str,
                         credentials: Sequence[tuple[str, str]] = ()) -> ImageInfo:
        """Pull `image`, trying each (username, password) in turn (anonymous when none)."""
        ...

    async def image_status(self, image: str) -> ImageInfo | None: ...
    async def list_images(self) -> list[ImageInfo]: ...
    async def remove_image(self, image: str) -> None: ...

    async def garbage_collect(self, high: float, low: float) -> list[str]:
        """Remove unused images while disk usage >= `high` percent, until < `low`."""
        ...


@dataclass(frozen=True, slots=True)
class ContainerStats:
    """A usage sample: cumulative CPU time in nanoseconds and memory in bytes."""

    container_id: str
    timestamp: float
    cpu_usage_ns: int
    memory_usage_bytes: int
    memory_working_set_bytes: int
    pids: int


class ByteSink(Protocol):
    """Where an exec's stdin goes: the part of asyncio.StreamWriter the kubelet needs."""

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def close(self) -> None: ...
    def is_closing(self) -> bool: ...


class ExecSession(Protocol):
    """A command running in a container (kubectl exec). `stdin` is None unless asked for;
    with a tty, stderr is merged into stdout and `stderr` is None."""

    stdin: ByteSink | None
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader | None

    async def resize(self, cols: int, rows: int) -> None: ...
    async def wait(self) -> int: ...
    async def kill(self) -> None: ...


class AttachSession(Protocol):
    """An attachment to a running container's own stdin (kubectl attach -i; its output is
    the container's log). `stdin` is None unless asked for and the container keeps its stdin
    open (spec.stdin). Closing `stdin` ends this attachment's input: the container's stdin
    closes too when the container has stdinOnce. `close` detaches."""

    stdin: ByteSink | None

    async def resize(self, cols: int, rows: int) -> None: ...
    async def close(self) -> None: ...


class Runtime(Protocol):
    """One extension point: the kubelet's view of a container runtime."""

    @property
    def name(self) -> str: ...
    @property
    def capabilities(self) -> Capabilities: ...

    async def run_sandbox(self, pod: dict[str, Any], *,
                          ip_hint: str | None = None) -> SandboxInfo:
        """Create the pod's namespaces and network (an IP from the node's pod CIDR, `ip_hint`
        if it is free) and return the ready sandbox; the existing one if the pod has one."""
        ...

    async def stop_sandbox(self, sandbox_id: str) -> None:
        """Kill the sandbox's containers at once, release its network and IP."""
        ...

    async def remove_sandbox(self, sandbox_id: str) -> None: ...
    async def sandbox_status(self, sandbox_id: str) -> SandboxInfo | None: ...
    async def list_sandboxes(self) -> list[SandboxInfo]: ...

    async def create_container(self, sandbox_id: str, container: dict[str, Any],
                               config: ContainerConfig) -> str:
        """Prepare (not start) a container in a ready sandbox; `container` is the pod spec's
        entry, `config` the resolved values actually used."""
        ...

    async def start_container(self, container_id: str) -> None:
        """Start it; raises RuntimeFailure (and the status says StartError) if it cannot."""
        ...

    async def stop_container(self, container_id: str, grace: float) -> None:
        """SIGTERM, up to `grace` seconds, then SIGKILL; returns once it has exited."""
        ...

    async def remove_container(self, container_id: str) -> None:
        """Kill it if running and forget it; its log files stay (the kubelet owns them)."""
        ...

    async def container_status(self, container_id: str) -> ContainerStatus | None: ...
    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool,
                   tty: bool) -> ExecSession:
        """Start `cmd` inside the running container (its namespaces, cgroup, env, working
        dir); InvalidState if it is not running."""
        ...

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> AttachSession:
        """Attach to the running container's stdin (and terminal size, with a tty);
        InvalidState if it is not running."""
        ...

    async def exec_sync(self, container_id: str, cmd: list[str],
                        timeout: float) -> tuple[int, bytes, bytes]:
        """(exit code, stdout, stderr) of `cmd` run to completion (exec probes); after
        `timeout` seconds the command is killed and TimeoutError raised."""
        ...

    async def log_path(self, container_id: str) -> str | None:
        """The container's current CRI-format log file (logs.py); older ones are rotated."""
        ...

    async def port_forward(self, sandbox_id: str, port: int
                           ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to 127.0.0.1:`port` inside the pod's network namespace."""
        ...

    async def stats(self, container_id: str) -> ContainerStats | None: ...

    async def close(self) -> None:
        """Release the runtime's own resources; containers keep running."""
        ...
