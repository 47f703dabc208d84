"""The isolated process runtime on the real kernel (root): pod network, namespaces, limits,
stop semantics, exec, volumes and logs (issue 7).

All traffic stays inside namespaces the test made: the runtime's bridge lives in the lab's
node netns (no route out) and clients connect from there.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import pytest

from navio.runtime import mounts
from navio.runtime.logs import read_records, rotated_files
from navio.runtime.process import ProcessRuntime
from navio.runtime.protocol import ContainerStatus, Mount, Resources, RuntimeFailure
from runtime_lab import RuntimeLab, alive, config, pod, wait_until

PY = sys.executable
SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8080)); s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(socket.gethostname().encode()); c.close()
"""


async def started(rt: ProcessRuntime, name: str, *argv: str, sandbox: str | None = None,
                  **kw: object) -> tuple[str, str]:
    """(sandbox id, container id) of a new running container."""
    if sandbox is None:
        sandbox = (await rt.run_sandbox(pod(name))).id
    cid = await rt.create_container(sandbox, {"name": "main"}, config("main", *argv, **kw))
    await rt.start_container(cid)
    return sandbox, cid


async def exited(rt: ProcessRuntime, cid: str, timeout: float = 20.0) -> ContainerStatus:
    async def check() -> bool:
        status = await rt.container_status(cid)
        return status is not None and status.state == "exited"
    await wait_until(check, timeout=timeout, what=f"container {cid[:8]} to exit")
    status = await rt.container_status(cid)
    assert status is not None
    return status


async def log_text(rt: ProcessRuntime, cid: str) -> str:
    path = await rt.log_path(cid)
    assert path
    return "\n".join(r.content.decode() for r in read_records(path))


async def wait_log(rt: ProcessRuntime, cid: str, text: str) -> None:
    async def check() -> bool:
        return text in await log_text(rt, cid)
    await wait_until(check, timeout=15, what=f"{text!r} in the log of {cid[:8]}")


async def test_two_pods_both_listen_on_8080_and_answer_at_their_own_ips(
        lab: RuntimeLab, runtime: ProcessRuntime) -> None:
    ips = {}
    for name in ("web-0", "web-1"):
        sandbox = await runtime.run_sandbox(pod(name))
        await started(runtime, name, PY, "-c", SERVER, "0.0.0.0", sandbox=sandbox.id)
        ips[name] = sandbox.ip
    assert len(set(ips.values())) == 2
    lab.assert_no_route_out()
    for name, ip in ips.items():
        replies: list[bytes] = []

        async def answered() -> bool:
            try:
                replies.append(await asyncio.to_thread(lab.node_socket_connect, ip, 8080))
                return True
            except OSError:
                return False
        await wait_until(answered, timeout=15, what=f"{name} to answer on {ip}:8080")
        assert replies[-1] == name.encode()   # UTS namespace: hostname = pod name


async def test_port_forward_reaches_the_pods_loopback(runtime: ProcessRuntime) -> None:
    sandbox, cid = await started(runtime, "web-0", PY, "-c", SERVER, "127.0.0.1")
    await wait_log(runtime, cid, "listening")
    reader, writer = await runtime.port_forward(sandbox, 8080)
    try:
        assert await asyncio.wait_for(reader.read(), 10) == b"web-0"
    finally:
        writer.close()


async def test_spec_hostname_overrides_the_pod_name(runtime: ProcessRuntime) -> None:
    sandbox = await runtime.run_sandbox(pod("web-0", hostname="custom"))
    _, cid = await started(runtime, "", "sleep", "300", sandbox=sandbox.id)
    assert await runtime.exec_sync(cid, ["hostname"], 10) == (0, b"custom\n", b"")


async def test_a_host_network_pod_uses_the_node_namespace(lab: RuntimeLab,
                                                          runtime: ProcessRuntime) -> None:
    sandbox = await runtime.run_sandbox(pod("agent", hostNetwork=True))
    assert sandbox.host_network and sandbox.ip == "127.0.0.1"
    _, cid = await started(runtime, "", "sleep", "300", sandbox=sandbox.id)
    status = await runtime.container_status(cid)
    assert status is not None
    node_ns = os.stat(f"/run/netns/{lab.node}").st_ino
    assert os.stat(f"/proc/{status.pid}/ns/net").st_ino == node_ns


async def test_exceeding_the_memory_limit_is_oomkilled(runtime: ProcessRuntime) -> None:
    _, cid = await started(runtime, "hog", PY, "-c", "x = b'x' * (256 << 20)",
                           resources=Resources(memory_limit=32 << 20))
    status = await exited(runtime, cid)
    assert (status.exit_code, status.reason) == (137, "OOMKilled")


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.strip().split(":", 2)
            if controller in controllers.split(","):
                return Path(f"/sys/fs/cgroup/{controller}{path}/{name}").read_text().strip()
    raise AssertionError(f"{pid} has no {controller} cgroup")


async def test_limits_are_written_to_the_containers_cgroups(runtime: ProcessRuntime) -> None:
    res = Resources(memory_limit=64 << 20, cpu_limit_millis=250, cpu_request_millis=100,
                    pids_limit=64)
    _, cid = await started(runtime, "limited", "sleep", "300", resources=res)
    pid = (await runtime.container_status(cid)).pid
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "25000"
    assert _cgroup_file(pid, "cpu", "cpu.shares") == "102"
    assert _cgroup_file(pid, "pids", "pids.max") == "64"


async def test_stop_kills_a_process_ignoring_sigterm_after_the_grace_period(
        runtime: ProcessRuntime) -> None:
    ignore = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "print('ready', flush=True); time.sleep(300)")
    _, stubborn = await started(runtime, "stubborn", PY, "-c", ignore)
    _, polite = await started(runtime, "polite", "sleep", "300")
    await wait_log(runtime, stubborn, "ready")
    t0 = time.monotonic()
    await runtime.stop_container(stubborn, 1.0)
    took = time.monotonic() - t0
    assert 1.0 <= took < 10
    assert (await runtime.container_status(stubborn)).exit_code == 137
    t0 = time.monotonic()
    await runtime.stop_container(polite, 30.0)
    assert time.monotonic() - t0 < 10   # SIGTERM was enough: no waiting out the grace
    assert (await runtime.container_status(polite)).exit_code == 143


async def test_exec_runs_in_the_containers_namespaces_and_cgroup(runtime: ProcessRuntime) -> None:
    _, cid = await started(runtime, "web-0", "sleep", "300", env={"GREETING": "hello"})
    pid = (await runtime.container_status(cid)).pid
    script = ("for n in net uts ipc pid mnt; do readlink /proc/self/ns/$n; done; "
              "cat /proc/self/cgroup | grep memory; echo $GREETING; cat /proc/1/comm")
    code, out, _ = await runtime.exec_sync(cid, ["sh", "-c", script], 10)
    assert code == 0
    lines = out.decode().splitlines()
    assert lines[:5] == [os.readlink(f"/proc/{pid}/ns/{n}") for n in ("net", "uts", "ipc",
                                                                      "pid", "mnt")]
    assert lines[5] == _own_cgroup_line(pid, "memory")
    assert lines[6] == "hello"
    assert lines[7].startswith("python")   # PID 1 of the pod is the pause


def _own_cgroup_line(pid: int, controller: str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line.strip() for line in f if f":{controller}:" in line)


async def test_an_interactive_exec_with_a_tty_loses_no_output(runtime: ProcessRuntime) -> None:
    _, cid = await started(runtime, "web-0", "sleep", "300")
    for _ in range(8):   # output written just before exit used to be lost now and then
        session = await runtime.exec(cid, ["sh"], stdin=True, tty=True)
        try:
            await session.resize(100, 30)
            assert session.stdin is not None and session.stderr is None
            session.stdin.write(b"stty size; echo $((6*7)); exit 5\n")
            await session.stdin.drain()
            output = await asyncio.wait_for(session.stdout.read(), 10)
            assert await asyncio.wait_for(session.wait(), 10) == 5
        finally:
            await session.kill()
        assert output.endswith(b"30 100\r\n42\r\n"), output


async def test_exec_sync_past_its_timeout_is_killed(runtime: ProcessRuntime) -> None:
    _, cid = await started(runtime, "web-0", "sleep", "300")
    pid = (await runtime.container_status(cid)).pid
    with pytest.raises(TimeoutError):
        await runtime.exec_sync(cid, ["sleep", "60"], 0.5)

    async def only_main_left() -> bool:
        procs = _cgroup_file(pid, "pids", "cgroup.procs").split()
        return procs == [str(pid)]
    await wait_until(only_main_left, timeout=10, what="the timed-out exec to be gone")


async def test_volumes_are_bind_mounted_where_the_spec_says_and_only_there(
        runtime: ProcessRuntime, tmp_path: Path) -> None:
    top = Path(f"/navio-test-{os.urandom(4).hex()}")
    ro, rw, single = tmp_path / "ro", tmp_path / "rw", tmp_path / "key"
    ro.mkdir(), rw.mkdir()
    (ro / "file").write_text("from the volume")
    single.write_text("a single file")
    vols = (Mount(str(ro), f"{top}/ro", read_only=True), Mount(str(rw), f"{top}/rw"),
            Mount(str(single), f"{top}/etc/key", read_only=True))
    try:
        _, cid = await started(runtime, "web-0", "sleep", "300", mounts=vols)
        script = (f"cat {top}/ro/file; echo; cat {top}/etc/key; echo; echo written > {top}/rw/out; "
                  f"touch {top}/ro/nope 2>/dev/null || echo read-only")
        code, out, _ = await runtime.exec_sync(cid, ["sh", "-c", script], 10)
        assert code == 0
        assert out.decode().splitlines() == ["from the volume", "a single file", "read-only"]
        assert (rw / "out").read_text() == "written\n"
        # The host sees empty mount points, never the volumes.
        assert os.listdir(top / "ro") == [] and (top / "etc" / "key").read_text() == ""
        await runtime.remove_container(cid)
        assert not top.exists()
    finally:
        if top.exists() and not os.path.ismount(top):
            import shutil
            shutil.rmtree(top, ignore_errors=True)


async def test_pods_have_their_own_shm_shared_by_their_containers(runtime: ProcessRuntime) -> None:
    sandbox, a = await started(runtime, "web-0", "sleep", "300")
    _, b = await started(runtime, "", "sleep", "300", sandbox=sandbox)
    name = f"navio-{os.urandom(4).hex()}"
    assert (await runtime.exec_sync(a, ["sh", "-c", f"echo x > /dev/shm/{name}"], 10))[0] == 0
    assert (await runtime.exec_sync(b, ["cat", f"/dev/shm/{name}"], 10)) == (0, b"x\n", b"")
    assert not os.path.exists(f"/dev/shm/{name}")


async def test_logs_are_in_cri_format_and_rotated_by_size(lab: RuntimeLab) -> None:
    rt = lab.runtime("small-logs", log_max_bytes=4096, log_max_files=3)
    script = ("import sys\n"
              "for i in range(400): print(f'line {i}')\n"
              "sys.stdout.write('x' * 20000 + '\\n'); sys.stdout.flush()\n"
              "print('to stderr', file=sys.stderr)\n")
    _, cid = await started(rt, "chatty", PY, "-c", script)
    assert (await exited(rt, cid)).exit_code == 0
    path = await rt.log_path(cid)
    assert path is not None
    files = [*rotated_files(path), Path(path)]
    assert len(files) == 3   # at most max_files, and there was plenty to rotate
    stamp = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] ")
    for file in files:
        for line in file.read_bytes().splitlines():
            assert stamp.match(line), line[:80]
    records = list(read_records(path))
    long = [r for r in records if r.content.startswith(b"xxxx")]
    assert [r.partial for r in long] == [True, False]   # split at 16 KiB
    assert sum(len(r.content) for r in long) == 20000
    assert any(r.stream == "stderr" and r.content == b"to stderr" for r in records)


async def test_a_missing_program_is_a_start_error(runtime: ProcessRuntime) -> None:
    sandbox = await runtime.run_sandbox(pod("web-0"))
    cid = await runtime.create_container(sandbox.id, {"name": "main"},
                                         config("main", "/nonexistent/program"))
    with pytest.raises(RuntimeFailure):
        await runtime.start_container(cid)
    status = await runtime.container_status(cid)
    assert status is not None and status.state == "exited"
    assert (status.exit_code, status.reason) == (128, "StartError")
    assert "No such file" in status.message


async def test_a_container_without_command_is_refused(runtime: ProcessRuntime) -> None:
    sandbox = await runtime.run_sandbox(pod("web-0"))
    with pytest.raises(RuntimeFailure):
        await runtime.create_container(sandbox.id, {"name": "main"}, config("main"))


async def test_a_memory_emptydir_is_a_sized_tmpfs(root: None, tmp_path: Path) -> None:
    target = str(tmp_path / "cache")
    mounts.mount_tmpfs(target, 1 << 20)
    try:
        mounts.mount_tmpfs(target, 1 << 20)   # idempotent
        st = os.statvfs(target)
        assert st.f_blocks * st.f_frsize == 1 << 20
    finally:
        mounts.unmount(target)
    assert not os.path.ismount(target)


async def test_removing_a_sandbox_leaves_no_process_netns_or_cgroup(
        lab: RuntimeLab, runtime: ProcessRuntime) -> None:
    sandbox, cid = await started(runtime, "web-0", "sleep", "300")
    pause = sandbox_pid = (await runtime.sandbox_status(sandbox)).pid
    pid = (await runtime.container_status(cid)).pid
    netns = (await runtime.sandbox_status(sandbox)).netns
    assert netns and os.path.exists(netns) and alive(sandbox_pid)
    await runtime.remove_sandbox(sandbox)
    assert not alive(pid) and not alive(pause)
    assert not os.path.exists(netns)
    from runtime_lab import cgroup_dirs
    for directory in cgroup_dirs(lab.cgroup_parent):
        assert [p for p in Path(directory).iterdir() if p.is_dir()] == []


async def test_these_tests_run_on_the_kubelets_event_loop() -> None:
    import uvloop
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


async def test_a_sandbox_whose_pause_dies_is_notready_and_its_containers_exit(
        runtime: ProcessRuntime) -> None:
    sandbox, cid = await started(runtime, "web-0", "sleep", "300")
    pause = (await runtime.sandbox_status(sandbox)).pid
    assert pause
    os.kill(pause, 9)   # our own pause, by PID: its PID namespace goes with it
    status = await exited(runtime, cid)
    assert status.exit_code == 137
    assert (await runtime.sandbox_status(sandbox)).state == "notready"
    again = await runtime.run_sandbox(pod("web-0", uid=(await runtime.sandbox_status(sandbox)).uid))
    assert again.id != sandbox and again.state == "ready"
