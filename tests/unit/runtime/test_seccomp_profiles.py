"""resolve_profile: which profile a container gets, as the kubelet with --seccomp-default
over containerd."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from navio.runtime.seccomp.profiles import SeccompProfileError, resolve_profile, runtime_default


def pod(profile: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"spec": {"securityContext": {"seccompProfile": profile} if profile else {}}}


def ctr(profile: dict[str, Any] | None = None, **ctx: Any) -> dict[str, Any]:
    sc = dict(ctx, **({"seccompProfile": profile} if profile else {}))
    return {"name": "c", "securityContext": sc}


def test_unset_is_runtime_default_for_this_machine(tmp_path: Path) -> None:
    got = resolve_profile(pod(), ctr(), str(tmp_path))
    assert got == runtime_default()
    assert got["defaultAction"] == "SCMP_ACT_ERRNO" and got["defaultErrnoRet"] == 1
    assert "SCMP_ARCH_X86_64" in got["architectures"] or "SCMP_ARCH_AARCH64" in got[
        "architectures"]
    allowed = {n for s in got["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" and not s.get("args")
               for n in s["names"]}
    assert {"read", "execve", "socketpair", "chroot"} <= allowed
    assert not {"mount", "unshare", "setns", "keyctl", "bpf", "io_uring_setup",
                "kexec_load", "init_module"} & allowed


def test_container_overrides_pod_and_unconfined_is_none(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert resolve_profile(pod({"type": "Unconfined"}), ctr(), root) is None
    assert resolve_profile(pod(), ctr({"type": "Unconfined"}), root) is None
    assert resolve_profile(pod({"type": "Unconfined"}), ctr({"type": "RuntimeDefault"}),
                           root) == runtime_default()
    assert resolve_profile(pod({"type": "RuntimeDefault"}), ctr({"type": "Unconfined"}),
                           root) is None


def test_privileged_containers_are_unconfined_as_with_containerd(tmp_path: Path) -> None:
    assert resolve_profile(pod({"type": "RuntimeDefault"}), ctr(privileged=True),
                           str(tmp_path)) is None


def test_localhost_reads_the_file_under_the_root(tmp_path: Path) -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["chdir"], "action": "SCMP_ACT_ERRNO"}]}
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "p.json").write_text(json.dumps(profile))
    local = {"type": "Localhost", "localhostProfile": "profiles/p.json"}
    assert resolve_profile(pod(local), ctr(), str(tmp_path)) == profile
    assert resolve_profile(pod(), ctr(local), str(tmp_path)) == profile


@pytest.mark.parametrize("name,content,words", [
    ("missing.json", None, "no such file"),
    ("bad.json", "{", "decoding"),
    ("wrong.json", json.dumps({"defaultAction": "SCMP_ACT_DANCE"}), "unknown seccomp action"),
    ("../outside.json", "{}", "inside"),
    ("/etc/passwd", None, "inside"),
    ("", None, "needs localhostprofile"),
])
def test_unusable_localhost_profiles_raise(tmp_path: Path, name: str, content: str | None,
                                           words: str) -> None:
    root = tmp_path / "seccomp"
    root.mkdir()
    if content is not None:
        (root / name).write_text(content)
    with pytest.raises(SeccompProfileError) as err:
        resolve_profile(pod(), ctr({"type": "Localhost", "localhostProfile": name}), str(root))
    assert words in str(err.value).lower()


def test_unknown_type_raises(tmp_path: Path) -> None:
    with pytest.raises(SeccompProfileError):
        resolve_profile(pod(), ctr({"type": "Bogus"}), str(tmp_path))
