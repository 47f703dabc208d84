"""The sandbox's "pause" process: holds a pod's namespaces and is PID 1 of its PID namespace.

Why: containers come and go (restarts), but the pod's network, hostname, IPC and PID
namespaces must live as long as the pod, exactly as the pause container does under containerd.
Containers join them with setns through /proc/<pause pid>/ns/*. As PID 1 it also reaps
orphaned processes of the pod, and when it exits the kernel kills everything left in the pod's
PID namespace, so stopping the sandbox cannot leave orphans.

Run as `python -m navio.runtime.pause --log FILE [--pidfile FILE] [--netns PATH]
[--hostname NAME] [--uts] [--ipc] [--pid] [--cgroup-procs FILE ...]`; it prints one JSON report
({"ok": true, "pid": <host pid>, "starttime": ...}) and exits while the pause keeps running
(launch.py). The pause exits 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket

from navio.runtime import namespaces as ns
from navio.runtime.launch import Report, detach

__all__ = ["main"]


def _serve(report: Report) -> None:
    wanted = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    report({"ok": True})
    while True:
        sig = signal.sigwait(wanted)
        if sig == signal.SIGCHLD:
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
        elif sig in (signal.SIGTERM, signal.SIGINT):
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="navio.runtime.pause")
    parser.add_argument("--log", required=True)
    parser.add_argument("--pidfile")
    parser.add_argument("--netns")
    parser.add_argument("--hostname")
    parser.add_argument("--uts", action="store_true")
    parser.add_argument("--ipc", action="store_true")
    parser.add_argument("--pid", action="store_true")
    parser.add_argument("--cgroup-procs", nargs="*", default=[])
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args(argv)

    for procs in args.cgroup_procs:   # children inherit the pod cgroup
        with open(procs, "w") as f:
            f.write("0")
    if args.netns:
        ns.setns_path(args.netns, ns.CLONE_NEWNET)
    flags = ((ns.CLONE_NEWUTS if args.uts else 0) | (ns.CLONE_NEWIPC if args.ipc else 0)
             | (ns.CLONE_NEWPID if args.pid else 0))
    if flags:
        ns.unshare(flags)
    if args.uts and args.hostname:
        socket.sethostname(args.hostname)
    detach(_serve, log_path=args.log, timeout=args.timeout, pidfile=args.pidfile)


if __name__ == "__main__":
    main()
