"""The runtime contract (protocol.py), run against every runtime (STYLE §8).

`process` is the isolated process runtime (root: netns, cgroups, mounts), `oci` runs the same
containers from a busybox image with runc (containers naming no image get it), `process-host` its
unprivileged fallback (forced with isolation=False), `sim` the simulated one. Containers that
must end by themselves run `sh -c 'exit N'`; for `sim`, which runs nothing, the fixture ends
them through `SimRuntime.terminate`.
"""

from __future__ import annotations

import ipaddress

import pytest

from navio.runtime.protocol import InvalidState, NotFound, RuntimeFailure
from runtime_lab import POD_CIDR, RuntimeUnderTest, alive, config, pod, wait_until

LONG = ("sleep", "300")


async def wait_state(rut: RuntimeUnderTest, cid: str, state: str, timeout: float = 15.0) -> None:
    async def check() -> bool:
        status = await rut.rt.container_status(cid)
        return status is not None and status.state == state
    await wait_until(check, timeout=timeout, what=f"container {cid[:8]} to be {state}")


async def test_a_sandbox_becomes_ready_with_a_pod_ip(rut: RuntimeUnderTest) -> None:
    sandbox = await rut.rt.run_sandbox(pod("web-0"))
    assert sandbox.state == "ready"
    assert sandbox.name == "web-0" and sandbox.namespace == "default"
    if rut.kind == "process-host":
        assert sandbox.ip == "127.0.0.1"
        assert not rut.rt.capabilities.pod_network and rut.rt.capabilities.notes
    else:
        assert ipaddress.IPv4Address(sandbox.ip) in ipaddress.IPv4Network(POD_CIDR)
    assert await rut.rt.sandbox_status(sandbox.id) == sandbox
    assert [s.id for s in await rut.rt.list_sandboxes()] == [sandbox.id]


async def test_running_a_sandbox_twice_for_one_pod_returns_the_same_sandbox(
        rut: RuntimeUnderTest) -> None:
    spec = pod("web-0")
    first = await rut.rt.run_sandbox(spec)
    again = await rut.rt.run_sandbox(spec)
    assert again.id == first.id and again.ip == first.ip
    assert len(await rut.rt.list_sandboxes()) == 1


async def test_two_sandboxes_get_different_ips(rut: RuntimeUnderTest) -> None:
    a = await rut.rt.run_sandbox(pod("a"))
    b = await rut.rt.run_sandbox(pod("b"))
    assert a.id != b.id
    if rut.kind != "process-host":
        assert a.ip != b.ip


async def test_a_container_goes_created_running_exited_and_is_removed(
        rut: RuntimeUnderTest) -> None:
    sandbox = await rut.rt.run_sandbox(pod("web-0"))
    cid = await rut.rt.create_container(sandbox.id, {"name": "main"},
                                        config("main", *LONG, labels=(("hash", "abc"),)))
    status = await rut.rt.container_status(cid)
    assert status is not None and status.state == "created" and status.name == "main"
    assert status.labels == (("hash", "abc"),)
    await rut.rt.start_container(cid)
    await rut.rt.start_container(cid)   # idempotent
    status = await rut.rt.container_status(cid)
    assert status is not None and status.state == "running" and status.started_at
    if rut.runs_processes:
        assert status.pid
    assert [c.id for c in await rut.rt.list_containers(sandbox.id)] == [cid]
    await rut.rt.stop_container(cid, 5.0)
    status = await rut.rt.container_status(cid)
    assert status is not None and status.state == "exited" and status.exit_code is not None
    assert status.finished_at is not None and status.finished_at >= status.started_at
    await rut.rt.remove_container(cid)
    assert await rut.rt.container_status(cid) is None
    assert await rut.rt.list_containers() == []


async def test_stop_and_remove_are_idempotent(rut: RuntimeUnderTest) -> None:
    sandbox = await rut.rt.run_sandbox(pod("web-0"))
    cid = await rut.rt.create_container(sandbox.id, {"name": "main"}, config("main", *LONG))
    await rut.rt.start_container(cid)
    for _ in range(2):
        await rut.rt.stop_container(cid, 1.0)
    for _ in range(2):
        await rut.rt.remove_container(cid)
    for _ in range(2):
        await rut.rt.stop_sandbox(sandbox.id)
    assert (await rut.rt.sandbox_status(sandbox.id)).state == "notready"
    for _ in range(2):
        await rut.rt.remove_sandbox(sandbox.id)
    assert await rut.rt.sandbox_status(sandbox.id) is None
    # Ids never seen: not errors either.
    await rut.rt.stop_container("0" * 32, 1.0)
    await rut.rt.remove_container("0" * 32)
    await rut.rt.stop_sandbox("0" * 32)
    await rut.rt.remove_sandbox("0" * 32)
    assert await rut.rt.container_status("0" * 32) is None


@pytest.mark.parametrize(("code", "reason"), [(0, "Completed"), (3, "Error")],
                         ids=["exit 0 is Completed", "exit 3 is Error"])
async def test_a_container_that_exits_reports_its_exit_code(
        rut: RuntimeUnderTest, code: int, reason: str) -> None:
    sandbox = await rut.rt.run_sandbox(pod("job-0"))
    cid = await rut.rt.create_container(sandbox.id, {"name": "main"},
                                        config("main", "sh", "-c", f"exit {code}"))
    await rut.rt.start_container(cid)
    await rut.exit_with(cid, code)
    await wait_state(rut, cid, "exited")
    status = await rut.rt.container_status(cid)
    assert status is not None
    assert (status.exit_code, status.reason) == (code, reason)


async def test_a_container_killed_from_outside_reports_137(rut: RuntimeUnderTest) -> None:
    sandbox = await rut.rt.run_sandbox(pod("web-0"))
    cid = await rut.rt.create_container(sandbox.id, {"name": "main"}, config("main", *LONG))
    await rut.rt.start_container(cid)
    await rut.kill_from_outside(cid)
    await wait_state(rut, cid, "exited")
    status = await rut.rt.container_status(cid)
    assert status is not None and (status.exit_code, status.reason) == (137, "Error")


async def test_create_container_is_idempotent_per_name_and_attempt(rut: RuntimeUnderTest) -> None:
    sandbox = await rut.rt.run_sandbox(pod("web-0"))
    first = await rut.rt.create_container(sandbox.id, {"name": "main"}, config("main", *LONG))
    again = await rut.rt.create_container(sandbox.id, {"name": "main"}, config("main", *LONG))
    retry = await rut.rt.create_container(sandbox.id, {"name": "main"},
                                          config("main", *LONG, attempt=1))
    assert first == again and retry != first
    assert len(await rut.rt.list_containers(sandbox.id)) == 2


async def test_removing_a_sandbox_kills_and_removes_its_containers(rut: RuntimeUnderTest) -> None:
    sandbox = await rut.rt.run_sandbox(pod("web-0"))
    other = await rut.rt.run_sandbox(pod("web-1"))
    cids = [await rut.rt.create_container(sandbox.id, {"name": n}, config(n, *LONG))
            for n in ("a", "b")]
    keep = await rut.rt.create_container(other.id, {"name": "a"}, config("a", *LONG))
    for cid in (*cids, keep):
        await rut.rt.start_container(cid)
    pids = [(await rut.rt.container_status(c)).pid for c in cids]
    await rut.rt.remove_sandbox(sandbox.id)
    assert [c.id for c in await rut.rt.list_containers()] == [keep]
    assert (await rut.rt.container_status(keep)).state == "running"
    if rut.runs_processes:
        assert not any(alive(pid) for pid in pids)


async def test_a_stopped_sandbox_is_notready_and_takes_no_containers(rut: RuntimeUnderTest) -> None:
    sandbox = await rut.rt.run_sandbox(pod("web-0"))
    cid = await rut.rt.create_container(sandbox.id, {"name": "main"}, config("main", *LONG))
    await rut.rt.start_container(cid)
    await rut.rt.stop_sandbox(sandbox.id)
    assert (await rut.rt.container_status(cid)).state == "exited"
    with pytest.raises(InvalidState):
        await rut.rt.create_container(sandbox.id, {"name": "x"}, config("x", *LONG))
    # A new sandbox for the same pod is a new one.
    again = await rut.rt.run_sandbox(pod("web-0", uid=sandbox.uid))
    assert again.id != sandbox.id and again.state == "ready"


async def test_unknown_sandboxes_and_containers_are_not_found(rut: RuntimeUnderTest) -> None:
    with pytest.raises(NotFound):
        await rut.rt.create_container("0" * 32, {"name": "x"}, config("x", *LONG))
    with pytest.raises(NotFound):
        await rut.rt.start_container("0" * 32)
    with pytest.raises(RuntimeFailure):
        await rut.rt.exec_sync("0" * 32, ["true"], 5.0)


async def test_exec_sync_runs_in_a_running_container_only(rut: RuntimeUnderTest) -> None:
    sandbox = await rut.rt.run_sandbox(pod("web-0"))
    cid = await rut.rt.create_container(sandbox.id, {"name": "main"}, config("main", *LONG))
    await rut.rt.start_container(cid)
    code, out, err = await rut.rt.exec_sync(cid, ["sh", "-c", "echo hi; echo oops >&2"], 10.0)
    assert code == 0
    if rut.runs_processes:
        assert (out, err) == (b"hi\n", b"oops\n")
        code, _, _ = await rut.rt.exec_sync(cid, ["sh", "-c", "exit 7"], 10.0)
        assert code == 7
    await rut.rt.stop_container(cid, 0.0)
    with pytest.raises(InvalidState):
        await rut.rt.exec_sync(cid, ["true"], 5.0)


async def test_stats_and_log_path_of_a_running_container(rut: RuntimeUnderTest) -> None:
    sandbox = await rut.rt.run_sandbox(pod("web-0"))
    cid = await rut.rt.create_container(sandbox.id, {"name": "main"}, config("main", *LONG))
    assert await rut.rt.stats(cid) is None
    await rut.rt.start_container(cid)
    stats = await rut.rt.stats(cid)
    assert stats is not None and stats.container_id == cid
    path = await rut.rt.log_path(cid)
    assert path is not None and path.endswith("0.log")
    assert await rut.rt.log_path("0" * 32) is None
