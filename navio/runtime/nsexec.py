"""Run a command inside a running container (kubectl exec, exec probes).

Why: an exec'd command must see what the container sees: the pod's network, hostname, IPC
and PID namespaces, the container's mount namespace (its volumes and /proc), its cgroups (so
its memory counts against the container's limit) and working directory, with the
container's environment. `nsenter(1)` does not join cgroups, and the environment must not
travel in argv or in the helper's own environment (it may hold secrets, and PYTHON* variables
would change this interpreter), so this helper reads it as JSON from an inherited pipe.

Run as `python -m navio.runtime.nsexec --pid P --starttime T [--cgroup-procs F ...]
[--cwd D] [--env-fd N] [--tty] [--seccomp-from CONFIG] -- argv...` with the desired stdio.
With --seccomp-from (the container's config.json), the command runs under the container's
seccomp filter and no_new_privs, as `runc exec` gives an exec'd process. It exits with the
command's exit status (128+signal if it was killed), 126/127 if it could not be run. It dies
with its parent (the agent) and the command dies with it (parent-death signals), and it
forwards SIGTERM/SIGINT/SIGHUP to the command.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import signal
import sys
import termios

from navio.runtime import namespaces as ns
from navio.runtime.launch import close_inherited_fds
from navio.runtime.seccomp.compiler import Program
from navio.runtime.seccomp.install import install as install_seccomp
from navio.runtime.seccomp.install import program_of, set_no_new_privs

__all__ = ["main"]

_NAMESPACES = (("ipc", ns.CLONE_NEWIPC), ("uts", ns.CLONE_NEWUTS), ("net", ns.CLONE_NEWNET),
               ("pid", ns.CLONE_NEWPID), ("mnt", ns.CLONE_NEWNS))


def _read_env(fd: int | None) -> dict[str, str]:
    if fd is None:
        return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    os.close(fd)
    env = json.loads(data or b"{}")
    return {str(k): str(v) for k, v in env.items()}


def _seccomp_of(config_path: str | None) -> tuple[Program | None, bool]:
    if not config_path:
        return None, False
    with open(config_path) as f:
        cfg = json.load(f)
    return program_of(cfg), bool(cfg.get("no_new_privs"))


def _enter(pid: int, starttime: int | None, cgroup_procs: list[str]) -> None:
    if not ns.process_alive(pid, starttime):
        raise ProcessLookupError("the container is not running")
    fds = []
    for name, flag in _NAMESPACES if os.path.isdir(f"/proc/{pid}/ns") else ():
        target, own = f"/proc/{pid}/ns/{name}", f"/proc/self/ns/{name}"
        if os.stat(target).st_ino != os.stat(own).st_ino:
            fds.append((os.open(target, os.O_RDONLY | os.O_CLOEXEC), flag))
    try:
        if not ns.process_alive(pid, starttime):
            raise ProcessLookupError("the container is not running")
        for procs in cgroup_procs:
            with open(procs, "w") as f:
                f.write("0")
        for fd, flag in fds:   # mnt last: the /proc paths above belong to the host view
            ns.setns(fd, flag)
    finally:
        for fd, _ in fds:
            os.close(fd)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="navio.runtime.nsexec")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--starttime", type=int)
    parser.add_argument("--cgroup-procs", nargs="*", default=[])
    parser.add_argument("--cwd")
    parser.add_argument("--env-fd", type=int)
    parser.add_argument("--tty", action="store_true")
    parser.add_argument("--seccomp-from")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")

    ns.set_parent_death_signal(signal.SIGKILL)
    close_inherited_fds(keep=(args.env_fd,) if args.env_fd is not None else ())
    env = _read_env(args.env_fd)
    try:
        seccomp, nnp = _seccomp_of(args.seccomp_from)
    except (OSError, ValueError) as exc:   # never run the command less confined than asked
        sys.stderr.write(f"exec failed: seccomp profile: {exc}\n")
        sys.exit(126)
    try:
        _enter(args.pid, args.starttime, args.cgroup_procs)
        os.chdir(args.cwd or "/")
    except OSError as exc:
        sys.stderr.write(f"exec failed: {exc}\n")
        sys.exit(126)

    child = os.fork()   # joining a PID namespace takes effect for children only
    if child == 0:
        try:
            ns.set_parent_death_signal(signal.SIGKILL)
            if args.tty:
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM,
                        signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            if seccomp is not None:
                install_seccomp(seccomp, no_new_privs=nnp)
            elif nnp:
                set_no_new_privs()
            os.execvpe(command[0], command, env)
        except OSError as exc:
            os.write(2, f"exec {command[0]!r} failed: {exc.strerror}\n".encode())
            os._exit(127 if exc.errno == errno.ENOENT else 126)
        except BaseException:
            os._exit(126)

    def forward(sig: int, _frame: object) -> None:
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    sys.exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    main()
