"""The fork server (forkserver.py) and fork-free pod networks: a pod costs no interpreter
start and the agent never forks (issue 7: pod startup SLO; a fork's signals reached the
agent's loop), while helpers still outlive the agent (root)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from navio.runtime import namespaces as ns
from navio.runtime.forkserver import ForkServer
from navio.runtime.process import ProcessRuntime
from navio.runtime.protocol import RuntimeFailure
from runtime_lab import RuntimeLab, alive, config, pod, wait_until

ROOT = Path(__file__).resolve().parents[3]


def _forkserver_pid(state_dir: Path) -> int:
    rec = json.loads((state_dir / "forkserver.json").read_text())
    assert ns.process_alive(rec["pid"], rec["starttime"])
    return int(rec["pid"])


async def test_a_pod_is_made_without_forking_the_agent(
        lab: RuntimeLab, runtime: ProcessRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork(*args: object, **kwargs: object) -> None:
        raise AssertionError("the agent forked")
    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(multiprocessing.Process, "start", no_fork)
    sandbox = await runtime.run_sandbox(pod("web-0"))
    cid = await runtime.create_container(sandbox.id, {"name": "main"},
                                         config("main", "sleep", "300"))
    await runtime.start_container(cid)
    assert sandbox.netns and os.path.exists(sandbox.netns)
    code, out, _ = await runtime.exec_sync(cid, ["cat", "/proc/net/dev"], 10)
    assert code == 0 and b"eth0" in out
    await runtime.remove_sandbox(sandbox.id)
    assert not os.path.exists(sandbox.netns)


async def test_a_dead_fork_server_is_replaced_and_its_pods_live_on(
        lab: RuntimeLab, runtime: ProcessRuntime) -> None:
    first = await runtime.run_sandbox(pod("a"))
    old = _forkserver_pid(lab.config().state_dir)
    os.kill(old, signal.SIGKILL)   # (our runtime's own fork server, by pid)
    await wait_until(lambda: _gone(old), timeout=10, what="the fork server to die")
    second = await runtime.run_sandbox(pod("b"))
    assert second.state == "ready" and alive(first.pid) and alive(second.pid)
    assert _forkserver_pid(lab.config().state_dir) != old


async def _gone(pid: int) -> bool:
    return not alive(pid)


async def test_a_helper_failure_is_reported_with_its_error(tmp_path: Path, root: None) -> None:
    forks = ForkServer(tmp_path)
    try:
        with pytest.raises(RuntimeFailure, match="No such file"):
            await forks.spawn("navio.runtime.pause", [
                "--log", str(tmp_path / "pause.log"), "--netns", str(tmp_path / "missing")],
                timeout=10)
        with pytest.raises(RuntimeFailure, match="required: --log"):   # argparse
            await forks.spawn("navio.runtime.pause", ["--bogus"], timeout=10)
    finally:
        await forks.close()


AGENT = """
import asyncio, json, sys
from pathlib import Path
from navio.runtime.forkserver import ForkServer

async def main():
    d = Path(sys.argv[1])
    forks = ForkServer(d)
    report = await forks.spawn("navio.runtime.pause", ["--log", str(d / "pause.log"), "--pid"],
                               timeout=10)
    print(json.dumps({"pause": report["pid"],
                      "forkserver": json.loads((d / "forkserver.json").read_text())["pid"]}),
          flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


async def test_the_fork_server_dies_with_its_agent_and_the_helpers_do_not(
        tmp_path: Path, root: None) -> None:
    agent = subprocess.Popen([sys.executable, "-c", AGENT, str(tmp_path)], cwd=ROOT,
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    pause = 0
    try:
        assert agent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(agent.stdout.readline), 30)
        pids = json.loads(line)
        pause = pids["pause"]
        assert alive(pids["forkserver"]) and alive(pause)
        agent.kill()   # kill -9 of the agent
        agent.wait(10)
        await wait_until(lambda: _gone(pids["forkserver"]), timeout=10,
                         what="the fork server to exit after its agent")
        assert alive(pause)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
        if agent.stdout:
            agent.stdout.close()
        if pause and alive(pause):
            os.kill(pause, signal.SIGKILL)
