"""The OCI runtime spec built from the pod, the container config and the image (issue 11)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from navio.runtime.oci.spec import (DEFAULT_CAPABILITIES, MASKED_PATHS, SpecError, argv_of,
                                    build_spec)
from navio.runtime.protocol import ContainerConfig, Mount, Resources

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["--serve"], "Env": ["PATH=/img/bin", "A=image"],
         "WorkingDir": "/srv", "User": "app"}


@pytest.mark.parametrize("command,args,expected", [
    ((), (), ["/entry", "--serve"]),
    ((), ("--debug",), ["/entry", "--debug"]),
    (("/bin/sh",), (), ["/bin/sh"]),
    (("/bin/sh",), ("-c", "x"), ["/bin/sh", "-c", "x"]),
], ids=["image-entrypoint-and-cmd", "args-replace-cmd", "command-drops-cmd",
        "command-and-args"])
def test_argv_follows_kubernetes_command_and_args_rules(command, args, expected) -> None:
    cfg = ContainerConfig(name="c", log_path="l", command=command, args=args)
    assert argv_of(cfg, IMAGE) == expected


def _rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nstaff:x:50:\n")
    return tmp_path


def _spec(tmp_path: Path, *, pod_spec: dict[str, Any] | None = None,
          container: dict[str, Any] | None = None, image: dict[str, Any] | None = None,
          namespaces=("net", "uts", "ipc", "pid"), **cfg: Any) -> dict[str, Any]:
    config = ContainerConfig(name="c", log_path="l", **cfg)
    return build_spec(pod={"metadata": {"name": "p"}, "spec": pod_spec or {}},
                      container=container or {"name": "c"}, config=config,
                      image=IMAGE if image is None else image, rootfs=_rootfs(tmp_path),
                      hostname="p", netns="/run/netns/x", pause_pid=42,
                      namespaces=namespaces, shm="/shm", cgroups_path="/navio/podX/c1",
                      etc_files={})


def test_env_workdir_and_user_come_from_the_image_unless_the_pod_says(tmp_path: Path) -> None:
    spec = _spec(tmp_path, env=(("A", "pod"), ("B", "b")))
    env = spec["process"]["env"]
    assert "PATH=/img/bin" in env and "A=pod" in env and "B=b" in env and "HOSTNAME=p" in env
    assert spec["process"]["cwd"] == "/srv"
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [1001]}
    spec = _spec(tmp_path, working_dir="/w", run_as_user=7, run_as_group=8,
                 pod_spec={"securityContext": {"fsGroup": 2000, "supplementalGroups": [3]}})
    assert spec["process"]["cwd"] == "/w"
    assert spec["process"]["user"] == {"uid": 7, "gid": 8, "additionalGids": [8, 3, 2000]}


def test_an_unknown_image_user_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="unable to find user nobody"):
        _spec(tmp_path, image={**IMAGE, "User": "nobody"})
    assert _spec(tmp_path, image={**IMAGE, "User": "5:staff"})["process"]["user"]["gid"] == 50


def test_an_image_without_a_command_and_no_command_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no command specified"):
        _spec(tmp_path, image={})


def test_the_pod_namespaces_are_joined_and_the_pid_namespace_is_the_containers(
        tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    kinds = {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}
    assert kinds == {"mount": None, "network": "/run/netns/x", "uts": "/proc/42/ns/uts",
                     "ipc": "/proc/42/ns/ipc", "pid": None}
    assert spec["hostname"] == "p"
    shared = _spec(tmp_path, pod_spec={"shareProcessNamespace": True})
    assert {"type": "pid", "path": "/proc/42/ns/pid"} in shared["linux"]["namespaces"]
    host = _spec(tmp_path, namespaces=())   # hostNetwork/hostPID/hostIPC: nothing unshared
    assert [n["type"] for n in host["linux"]["namespaces"]] == ["mount"]
    assert "hostname" not in host


def test_default_security_and_its_knobs(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    assert spec["process"]["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
    assert spec["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert spec["process"]["noNewPrivileges"] is False and spec["root"]["readonly"] is False
    ctx = {"capabilities": {"add": ["NET_ADMIN"], "drop": ["KILL", "CAP_CHOWN"]},
           "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
    spec = _spec(tmp_path, container={"name": "c", "securityContext": ctx})
    caps = spec["process"]["capabilities"]["effective"]
    assert "CAP_NET_ADMIN" in caps and "CAP_KILL" not in caps and "CAP_CHOWN" not in caps
    assert spec["root"]["readonly"] is True and spec["process"]["noNewPrivileges"] is True
    dropped = _spec(tmp_path, container={"name": "c", "securityContext": {
        "capabilities": {"drop": ["ALL"]}}})
    assert dropped["process"]["capabilities"]["bounding"] == []
    priv = _spec(tmp_path, container={"name": "c", "securityContext": {"privileged": True}})
    assert "CAP_SYS_ADMIN" in priv["process"]["capabilities"]["bounding"]
    assert priv["linux"]["maskedPaths"] == [] and priv["linux"]["readonlyPaths"] == []
    assert priv["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


def test_limits_volumes_and_cgroup_path(tmp_path: Path) -> None:
    spec = _spec(tmp_path, resources=Resources(memory_limit=64 << 20, cpu_limit_millis=500,
                                               cpu_request_millis=250, pids_limit=100),
                 mounts=(Mount("/host/data", "/data", read_only=True),))
    res = spec["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20} and res["pids"] == {"limit": 100}
    assert res["cpu"] == {"shares": 256, "quota": 50000, "period": 100000}
    assert spec["linux"]["cgroupsPath"] == "/navio/podX/c1"
    data = next(m for m in spec["mounts"] if m["destination"] == "/data")
    assert data["source"] == "/host/data" and "ro" in data["options"]
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")
    assert shm["source"] == "/shm"


@pytest.mark.parametrize("image_user,run_as_user,message", [
    ("", None, "image will run as root"),
    ("0", None, "image will run as root"),
    ("app", None, "non-numeric user (app)"),
    ("1000", 0, "runAsUser breaks non-root policy"),
    ("1000", None, None),
    ("", 7, None),
])
def test_run_as_non_root_is_verified_as_the_kubelet_does(tmp_path: Path, image_user,
                                                         run_as_user, message) -> None:
    from navio.runtime.oci.spec import NonRootError
    kwargs = dict(pod_spec={"securityContext": {"runAsNonRoot": True}},
                  image={**IMAGE, "User": image_user}, run_as_user=run_as_user)
    if message is None:
        _spec(tmp_path, **kwargs)
    else:
        with pytest.raises(NonRootError, match=message.replace("(", r"\(").replace(")", r"\)")):
            _spec(tmp_path, **kwargs)
