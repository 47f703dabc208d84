"""The process runtime installs a container's seccomp filter (and no_new_privs) on the
container and on every exec in it, on the real kernel (root)."""

from __future__ import annotations

import sys

import pytest

from navio.runtime.process import ProcessRuntime
from navio.runtime.protocol import RuntimeFailure
from navio.runtime.seccomp.profiles import runtime_default
from runtime_lab import RuntimeLab, config, pod, wait_until

PY = sys.executable
STATUS = ("echo STATUS $(grep ^Seccomp: /proc/self/status | cut -f2) "
          "$(grep ^NoNewPrivs: /proc/self/status | cut -f2) $(id -u); exec sleep 300")


async def _status_line(rt: ProcessRuntime, cid: str) -> list[str]:
    from navio.runtime.logs import read_records
    found: list[str] = []

    async def check() -> bool:
        path = await rt.log_path(cid)
        for rec in read_records(path or ""):
            if rec.content.startswith(b"STATUS"):
                found[:] = rec.content.decode().split()[1:]
                return True
        return False
    await wait_until(check, timeout=20, what="the container's status line")
    return found


@pytest.mark.parametrize("user,nnp", [(None, False), (1000, False), (1000, True)])
async def test_container_and_exec_run_under_the_filter(lab: RuntimeLab, runtime: ProcessRuntime,
                                                       user: int | None, nnp: bool) -> None:
    sandbox = await runtime.run_sandbox(pod(f"sc-{user}-{nnp}"))
    cfg = config("main", "sh", "-c", STATUS, seccomp=runtime_default(), no_new_privs=nnp,
                 run_as_user=user, run_as_group=user)
    cid = await runtime.create_container(sandbox.id, {"name": "main"}, cfg)
    await runtime.start_container(cid)
    # installed without no_new_privs unless asked (allowPrivilegeEscalation: false), also
    # after dropping to a non-root user
    assert await _status_line(runtime, cid) == ["2", "1" if nnp else "0", str(user or 0)]
    code, out, _ = await runtime.exec_sync(cid, ["cat", "/proc/self/status"], 20)
    assert code == 0 and b"Seccomp:\t2" in out
    assert (b"NoNewPrivs:\t1" in out) == nnp
    code, _, err = await runtime.exec_sync(cid, ["unshare", "-U", "true"], 20)
    assert code != 0 and b"Operation not permitted" in err


async def test_unconfined_container_and_a_bad_profile(lab: RuntimeLab,
                                                      runtime: ProcessRuntime) -> None:
    sandbox = await runtime.run_sandbox(pod("sc-free"))
    cid = await runtime.create_container(sandbox.id, {"name": "main"},
                                         config("main", "sh", "-c", STATUS))
    await runtime.start_container(cid)
    assert (await _status_line(runtime, cid))[:2] == ["0", "0"]
    code, out, _ = await runtime.exec_sync(cid, ["cat", "/proc/self/status"], 20)
    assert b"Seccomp:\t0" in out
    with pytest.raises(RuntimeFailure, match="seccomp profile: unknown seccomp action"):
        await runtime.create_container(sandbox.id, {"name": "bad"}, config(
            "bad", PY, "-c", "pass", seccomp={"defaultAction": "SCMP_ACT_MAYBE"}))
