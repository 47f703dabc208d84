"""The OCI runtime spec (runc's config.json) of one container, from the pod, the resolved
container config and the image config — what containerd's CRI plugin builds.

Why: every field users set on a container has to land where runc applies it, with
Kubernetes' defaults where they set nothing:
- argv (kuberuntime's `getCommand`): `command` replaces the image Entrypoint and then drops
  its Cmd; `args` alone replace Cmd; neither: Entrypoint + Cmd.
- env: the image's Env, overridden by the container's (and HOSTNAME, PATH defaulted);
  working dir: workingDir, else the image's WorkingDir, else "/".
- user: runAsUser/runAsGroup over the image's `User` (names looked up in the image's
  /etc/passwd and /etc/group); supplementalGroups and fsGroup as additional groups.
- namespaces: the pod's network, IPC and UTS namespaces (held by the sandbox), a PID
  namespace of its own (the pod's with shareProcessNamespace, the host's with hostPID) and a
  mount namespace over the image's root filesystem.
- security: containerd's default capability set with add/drop (privileged: all), no_new_privs
  unless allowPrivilegeEscalation, masked and read-only /proc paths (none when privileged),
  readOnlyRootFilesystem, and the seccomp profile the kubelet resolved (`config.seccomp`).
- cgroup v1 limits (memory, cpu shares/quota, pids) at the container's cgroup.

Guarantees: `build_spec` is pure (given the same inputs, the same dict) except for reading
the image's passwd/group files, and raises `SpecError` (the kubelet's
CreateContainerConfigError) for a user name the image does not know.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from navio.runtime.protocol import ContainerConfig

__all__ = ["DEFAULT_CAPABILITIES", "MASKED_PATHS", "NonRootError", "READONLY_PATHS",
           "SpecError", "argv_of",
           "build_spec"]

# containerd pkg/oci/spec.go defaultUnixCaps (what Docker and CRI-O give too).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE")
# containerd pkg/oci defaults (and the kubelet's ProcMountType Default).
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CFS_PERIOD = 100_000


class SpecError(ValueError):
    """The container cannot be configured (CreateContainerError)."""


class NonRootError(SpecError):
    """runAsNonRoot cannot be honoured (kubelet's verifyRunAsNonRoot:
    CreateContainerConfigError)."""


def argv_of(config: ContainerConfig, image: Mapping[str, Any]) -> list[str]:
    """kuberuntime_container.go / kubecontainer.ExpandContainerCommandAndArgs order."""
    entrypoint = list(image.get("Entrypoint") or ())
    cmd = list(image.get("Cmd") or ())
    if config.command:
        return [*config.command, *config.args]
    return [*entrypoint, *(config.args or cmd)]


def _env(config: ContainerConfig, image: Mapping[str, Any], hostname: str) -> list[str]:
    env: dict[str, str] = {}
    for item in image.get("Env") or ():
        key, _, value = str(item).partition("=")
        env[key] = value
    env.setdefault("PATH", _DEFAULT_PATH)
    env["HOSTNAME"] = hostname
    env.update(dict(config.env))
    return [f"{k}={v}" for k, v in env.items()]


def _lookup(path: Path, name: str, field: int) -> list[str] | None:
    try:
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split(":")
            if len(parts) > field and (parts[0] == name or parts[2] == name):
                return parts
    except OSError:
        pass
    return None


def _user(config: ContainerConfig, image: Mapping[str, Any], rootfs: Path,
          extra_groups: Sequence[int]) -> dict[str, Any]:
    spec_user = str(image.get("User") or "")
    name, _, group = spec_user.partition(":")
    uid, gid = 0, None
    if config.run_as_user is not None:
        uid = config.run_as_user
        entry = _lookup(rootfs / "etc/passwd", str(uid), 3)
        gid = int(entry[3]) if entry else 0
    elif name:
        entry = _lookup(rootfs / "etc/passwd", name, 3)
        if name.isdigit():
            uid, gid = int(name), int(entry[3]) if entry else 0
        elif entry is None:
            raise SpecError(f'unable to find user {name}: no matching entries in passwd file')
        else:
            uid, gid = int(entry[2]), int(entry[3])
    else:
        gid = 0
    if config.run_as_group is not None:
        gid = config.run_as_group
    elif group:
        entry = _lookup(rootfs / "etc/group", group, 2)
        if group.isdigit():
            gid = int(group)
        elif entry is None:
            raise SpecError(f'unable to find group {group}: no matching entries in group file')
        else:
            gid = int(entry[2])
    additional = list(dict.fromkeys([gid or 0, *extra_groups]))
    return {"uid": uid, "gid": gid or 0, "additionalGids": additional}


def _verify_non_root(pod: Mapping[str, Any], container: Mapping[str, Any],
                     config: ContainerConfig, image: Mapping[str, Any]) -> None:
    """kubelet kuberuntime_container_linux.go verifyRunAsNonRoot, in its words."""
    ctx = container.get("securityContext") or {}
    pod_ctx = (pod.get("spec") or {}).get("securityContext") or {}
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    if not non_root:
        return
    meta = pod.get("metadata") or {}
    where = (f"(pod: \"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})\", "
             f"container: {container.get('name')})")
    if config.run_as_user is not None:
        if config.run_as_user == 0:
            raise NonRootError(f"container's runAsUser breaks non-root policy {where}")
        return
    user = str(image.get("User") or "").partition(":")[0]
    if not user.isdigit() and user:
        raise NonRootError(f"container has runAsNonRoot and image has non-numeric user "
                           f"({user}), cannot verify user is non-root {where}")
    if not user or int(user) == 0:
        raise NonRootError(f"container has runAsNonRoot and image will run as root {where}")


def _capabilities(ctx: Mapping[str, Any], privileged: bool) -> dict[str, list[str]]:
    if privileged:
        caps = list(ALL_CAPABILITIES)
    else:
        wanted = (ctx.get("capabilities") or {})
        add = ["CAP_" + str(c).upper().removeprefix("CAP_") for c in wanted.get("add") or ()]
        drop = ["CAP_" + str(c).upper().removeprefix("CAP_") for c in wanted.get("drop") or ()]
        base = list(ALL_CAPABILITIES) if "CAP_ALL" in add else list(DEFAULT_CAPABILITIES)
        base += [c for c in add if c != "CAP_ALL" and c not in base]
        caps = [] if "CAP_ALL" in drop else [c for c in base if c not in drop]
    return {"bounding": caps, "effective": caps, "permitted": caps}


def _mount(dest: str, source: str, *, read_only: bool = False, kind: str = "bind",
           options: Sequence[str] = ()) -> dict[str, Any]:
    opts = ["rbind", "rprivate", "ro" if read_only else "rw"] if kind == "bind" else []
    return {"destination": dest, "type": kind, "source": source, "options": [*opts, *options]}


def build_spec(*, pod: Mapping[str, Any], container: Mapping[str, Any],
               config: ContainerConfig, image: Mapping[str, Any], rootfs: Path,
               hostname: str, netns: str | None, pause_pid: int | None,
               namespaces: Sequence[str], shm: str | None, cgroups_path: str | None,
               etc_files: Mapping[str, str]) -> dict[str, Any]:
    """config.json for runc: `rootfs` is the mounted root, `namespaces` the sandbox's
    ("net", "uts", "ipc", "pid") held by the pause `pause_pid`, `etc_files` the generated
    /etc/hosts, /etc/resolv.conf (target → host file) unless the pod mounts its own."""
    pod_spec = pod.get("spec") or {}
    pod_ctx = pod_spec.get("securityContext") or {}
    ctx = container.get("securityContext") or {}
    privileged = bool(ctx.get("privileged"))
    argv = argv_of(config, image)
    if not argv:
        raise SpecError("no command specified: the image has no Entrypoint or Cmd and the "
                        "container sets no command")
    _verify_non_root(pod, container, config, image)
    groups = [int(g) for g in pod_ctx.get("supplementalGroups") or ()]
    if pod_ctx.get("fsGroup") is not None:
        groups.append(int(pod_ctx["fsGroup"]))
    # (kubelet's AddNoNewPrivileges: only an explicit allowPrivilegeEscalation: false)
    no_new_privs = not privileged and ctx.get("allowPrivilegeEscalation") is False
    process: dict[str, Any] = {
        "terminal": False, "args": argv, "env": _env(config, image, hostname),
        "cwd": config.working_dir or str(image.get("WorkingDir") or "/"),
        "user": _user(config, image, rootfs, groups),
        "capabilities": _capabilities(ctx, privileged),
        "noNewPrivileges": no_new_privs,
    }
    ns_list: list[dict[str, str]] = [{"type": "mount"}]
    proc_of = (lambda kind: f"/proc/{pause_pid}/ns/{kind}") if pause_pid else None
    if "net" in namespaces and netns:
        ns_list.append({"type": "network", "path": netns})
    if "uts" in namespaces and proc_of:
        ns_list.append({"type": "uts", "path": proc_of("uts")})
    if "ipc" in namespaces and proc_of:
        ns_list.append({"type": "ipc", "path": proc_of("ipc")})
    if "pid" in namespaces:
        if pod_spec.get("shareProcessNamespace") and proc_of:
            ns_list.append({"type": "pid", "path": proc_of("pid")})
        else:
            ns_list.append({"type": "pid"})
    has_uts = any(n["type"] == "uts" for n in ns_list)
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro" if not privileged else "rw"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]
    if shm:
        mounts.append(_mount("/dev/shm", shm))
    else:
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
    taken = {os.path.normpath(m.container_path) for m in config.mounts}
    for target, host in etc_files.items():
        if target not in taken:
            mounts.append(_mount(target, host))
    for m in config.mounts:
        mounts.append(_mount(m.container_path, m.host_path, read_only=m.read_only))
    linux: dict[str, Any] = {
        "namespaces": ns_list,
        "maskedPaths": [] if privileged else list(MASKED_PATHS),
        "readonlyPaths": [] if privileged else list(READONLY_PATHS),
        "resources": _resources(config, privileged),
    }
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    if config.seccomp is not None:      # the kubelet's choice (None for privileged/Unconfined)
        linux["seccomp"] = dict(config.seccomp)
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2", "process": process,
        "root": {"path": str(rootfs), "readonly": bool(ctx.get("readOnlyRootFilesystem"))},
        "mounts": mounts, "linux": linux,
        "annotations": {"io.kubernetes.cri.container-name": config.name},
    }
    if has_uts:
        spec["hostname"] = hostname
    return spec


def _resources(config: ContainerConfig, privileged: bool) -> dict[str, Any]:
    res = config.resources
    out: dict[str, Any] = {"devices": [{"allow": privileged, "access": "rwm"}]}
    if res.memory_limit:
        out["memory"] = {"limit": res.memory_limit}
    cpu: dict[str, Any] = {}
    if res.cpu_request_millis is not None:
        cpu["shares"] = max(2, res.cpu_request_millis * 1024 // 1000)
    if res.cpu_limit_millis:
        cpu["quota"] = max(1000, res.cpu_limit_millis * _CFS_PERIOD // 1000)
        cpu["period"] = _CFS_PERIOD
    if cpu:
        out["cpu"] = cpu
    if res.pids_limit:
        out["pids"] = {"limit": res.pids_limit}
    return out
