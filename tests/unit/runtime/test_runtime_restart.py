"""Agent restart (issue 7: "the agent reconciles running processes it started before — no
duplicates, no orphans").

A child process plays the agent: it opens a process runtime, starts a pod whose container
ticks into its log, prints the ids, and is then SIGKILLed. A new runtime over the same state
dir must report the same container running with the same pid, re-use (not duplicate) the
sandbox and container, exec into it, stop it, and leave no process behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from navio.runtime.forkserver import ForkServer
from navio.runtime.process_records import pod_meta
from navio.runtime.state import StateDir
from runtime_lab import ROOT, RuntimeLab, alive, config, pod, wait_until

AGENT = r"""
import asyncio, json, sys
from pathlib import Path
from navio.runtime.process import ProcessRuntime, ProcessRuntimeConfig
from navio.runtime.protocol import ContainerConfig

async def main():
    values = json.loads(sys.argv[1])
    for key in ("state_dir", "log_dir"):
        values[key] = Path(values[key])
    rt = ProcessRuntime(ProcessRuntimeConfig(**values))
    pod = json.loads(sys.argv[2])
    sandbox = await rt.run_sandbox(pod)
    tick = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done"
    cid = await rt.create_container(sandbox.id, {"name": "ticker"}, ContainerConfig(
        name="ticker", log_path="ticker/0.log", command=("sh", "-c", tick)))
    await rt.start_container(cid)
    status = await rt.container_status(cid)
    print(json.dumps({"sandbox": sandbox.id, "ip": sandbox.ip, "container": cid,
                      "pid": status.pid, "pause": sandbox.pid}), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def run_agent_and_kill_it(lab: RuntimeLab, spec: dict) -> dict:
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(lab.config()).items()}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", AGENT, json.dumps(cfg), json.dumps(spec), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
        if not line:
            raise AssertionError(f"agent failed: {(await proc.stderr.read()).decode()[-2000:]}")
        return json.loads(line)
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            await proc.communicate()
        assert proc.returncode is not None


async def test_a_new_runtime_adopts_containers_of_a_killed_agent(lab: RuntimeLab) -> None:
    spec = pod("ticker-0")
    before = await run_agent_and_kill_it(lab, spec)
    assert alive(before["pid"]) and alive(before["pause"])

    rt = lab.runtime()   # same state dir, as after a restart
    containers = await rt.list_containers()
    assert [(c.id, c.state, c.pid) for c in containers] == [
        (before["container"], "running", before["pid"])]
    sandbox = await rt.run_sandbox(spec)   # no duplicate sandbox
    assert (sandbox.id, sandbox.ip, sandbox.pid) == (before["sandbox"], before["ip"],
                                                     before["pause"])
    again = await rt.create_container(sandbox.id, {"name": "ticker"}, config("ticker", "true"))
    assert again == before["container"]   # no duplicate container

    path = await rt.log_path(before["container"])
    assert path is not None

    async def still_logging() -> bool:   # the supervisor kept capturing while no agent ran
        lines = Path(path).read_text().splitlines()
        return len(lines) > 5 and lines[-1].endswith(f"tick {len(lines) - 1}")
    await wait_until(still_logging, timeout=10, what="the ticker to keep logging")
    assert await rt.exec_sync(before["container"], ["hostname"], 10) == (0, b"ticker-0\n", b"")

    status = (await rt.container_status(before["container"]))
    assert status is not None
    supervisor = StateDir(lab.config().state_dir).load_status(before["container"])
    assert supervisor is not None and alive(supervisor["supervisor_pid"])
    await rt.stop_container(before["container"], 5.0)
    status = await rt.container_status(before["container"])
    assert status is not None and (status.state, status.exit_code) == ("exited", 143)
    assert not alive(before["pid"]) and not alive(supervisor["supervisor_pid"])
    await rt.remove_sandbox(before["sandbox"])
    assert not alive(before["pause"])
    assert await rt.list_sandboxes() == [] and await rt.list_containers() == []


async def test_restart_cleans_up_what_a_crash_left_half_made(lab: RuntimeLab) -> None:
    rt = lab.runtime()
    done = await rt.run_sandbox(pod("kept"))
    await rt.close()
    # A crash between writing the record and finishing the sandbox: an IP taken, no pause.
    state = StateDir(lab.config().state_dir)
    half = {"id": "f" * 32, **pod_meta(pod("half")), "phase": "creating", "created_at": 0.0,
            "ip": "10.250.0.99", "netns": None, "own_netns": True, "namespaces": [],
            "pause": None, "cgroup": {}, "shm": None}
    state.save_sandbox(half)
    directory = state.sandbox_dir(half["id"])
    forks = ForkServer(directory)
    try:   # ... and its pause started, but never recorded
        pause = await forks.spawn("navio.runtime.pause", [
            "--log", str(directory / "pause.log"), "--pid", "--pidfile",
            str(directory / "pause.json")], timeout=10)
    finally:
        await forks.close()
    assert alive(pause["pid"])
    ipam = json.loads((state.root / "ipam.json").read_text())
    ipam["allocations"]["10.250.0.99"] = half["id"]
    (state.root / "ipam.json").write_text(json.dumps(ipam))
    # And a container record whose sandbox is gone.
    state.save_container({"id": "e" * 32, "sandbox_id": "d" * 32, "name": "lost", "attempt": 0,
                          "created_at": 0.0, "log_path": "/dev/null", "mountpoints": [],
                          "targets": [], "cgroup": {}, "cwd": "/"})

    rt = lab.runtime()
    assert [s.id for s in await rt.list_sandboxes()] == [done.id]
    assert await rt.list_containers() == []
    ipam = json.loads((state.root / "ipam.json").read_text())
    assert ipam["allocations"] == {done.ip: done.id}
    assert not alive(pause["pid"])


async def test_only_one_runtime_owns_a_state_dir(lab: RuntimeLab) -> None:
    import pytest
    from navio.runtime.state import StateLocked
    lab.runtime()
    with pytest.raises(StateLocked):
        lab.runtime()
