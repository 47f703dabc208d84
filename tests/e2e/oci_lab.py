"""Test images and a local registry for the `oci` runtime (issue 11), without Docker.

`build_image` writes a small image from Debian's busybox-static: one gzip layer holding
/bin/busybox and its applets as symlinks, /etc/passwd and /etc/group, plus an OCI config and
manifest. `Registry` runs Debian's docker-registry on a loopback port (optionally behind
htpasswd basic auth), and `push` uploads an image with the distribution API's monolithic
blob upload. `docker_save` writes the same image as a `docker save` tarball.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "ps", "cat", "sleep", "echo", "ls", "id", "hostname", "head", "dd", "touch",
           "ip", "wget", "env", "pwd", "true", "false", "grep", "mkdir", "rm", "nc", "tail",
           "yes", "awk", "seq", "uname", "httpd", "md5sum", "whoami")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class TestImage:
    config: bytes
    layers: tuple[bytes, ...]     # gzip blobs
    manifest: bytes

    @property
    def digest(self) -> str:
        return _digest(self.manifest)

    @property
    def config_digest(self) -> str:
        return _digest(self.config)


def _add(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, mode: int = 0o644,
         link: str | None = None, directory: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    elif link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, link, 0o777
        tar.addfile(info)
    else:
        info.size, info.mode = len(data or b""), mode
        tar.addfile(info, io.BytesIO(data or b""))


def layer_tar(files: dict[str, bytes | str | None]) -> bytes:
    """A tar of `files`: bytes = a file, str = a symlink target, None = a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            if content is None:
                _add(tar, name, directory=True)
            elif isinstance(content, str):
                _add(tar, name, link=content)
            else:
                _add(tar, name, data=content, mode=0o755 if name.startswith("bin/") else 0o644)
    return buf.getvalue()


def build_image(*, marker: str = "navio", extra: dict[str, bytes | str | None] | None = None,
                entrypoint: list[str] | None = None, cmd: list[str] | None = None,
                env: list[str] | None = None, user: str = "") -> TestImage:
    files: dict[str, bytes | str | None] = {
        "bin": None, "etc": None, "tmp": None, "proc": None, "sys": None, "dev": None,
        "bin/busybox": Path(BUSYBOX).read_bytes(),
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"
                      b"app:x:1000:1000:app:/home/app:/bin/sh\n",
        "etc/group": b"root:x:0:\nnogroup:x:65534:\napp:x:1000:\n",
        "etc/marker": marker.encode() + b"\n",
        "www": None, "www/index.html": f"hello from {marker}\n".encode(),
    }
    files.update({f"bin/{a}": "busybox" for a in APPLETS})
    files.update(extra or {})
    raw = layer_tar(files)
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": env or ["PATH=/bin", "IMAGE_VAR=from-image"],
                   "Entrypoint": entrypoint, "Cmd": cmd if cmd is not None else ["sh"],
                   "WorkingDir": "/", "User": user},
        "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": _digest(layer), "size": len(layer)}],
    }).encode()
    return TestImage(config, (layer,), manifest)


def docker_save(image: TestImage, path: Path, tags: list[str]) -> None:
    """Write `image` as `docker save` does (manifest.json, <id>.json, <n>/layer.tar)."""
    with tarfile.open(path, "w") as tar:
        cfg_name = _digest(image.config).split(":")[1] + ".json"
        names = []
        for i, layer in enumerate(image.layers):
            name = f"{i}/layer.tar"
            info = tarfile.TarInfo(name)
            raw = gzip.decompress(layer)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
            names.append(name)
        for name, data in ((cfg_name, image.config), ("manifest.json", json.dumps(
                [{"Config": cfg_name, "RepoTags": tags, "Layers": names}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """docker-registry on 127.0.0.1:<free port>, storage in `root`; with `user`, every
    request needs basic auth (htpasswd, bcrypt)."""

    def __init__(self, root: Path, *, user: tuple[str, str] | None = None) -> None:
        self.root = root
        self.user = user
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Registry":
        self.root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.user:
            out = subprocess.run(["htpasswd", "-Bbn", *self.user], check=True,
                                 capture_output=True).stdout
            (self.root / "htpasswd").write_bytes(out)
            auth = (f"auth:\n  htpasswd:\n    realm: navio-test\n"
                    f"    path: {self.root / 'htpasswd'}\n")
        (self.root / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n{auth}")
        with open(self.root / "registry.log", "ab") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve",
                                          str(self.root / "config.yml")],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._request("GET", "/v2/")
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError("docker-registry exited: "
                                         + (self.root / "registry.log").read_text())
                time.sleep(0.1)
        raise AssertionError("docker-registry did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def _request(self, method: str, path: str, data: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(f"http://{self.host}{path}", data=data, method=method,
                                     headers=dict(headers or {}))
        if self.user:
            token = base64.b64encode(f"{self.user[0]}:{self.user[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()

    def push(self, repo: str, tag: str, image: TestImage) -> str:
        """Upload the blobs and the manifest; returns the manifest digest."""
        for blob in (image.config, *image.layers):
            _, headers, _ = self._request("POST", f"/v2/{repo}/blobs/uploads/", b"")
            location = headers["Location"]
            if location.startswith("http"):
                location = location.split(self.host, 1)[1]
            sep = "&" if "?" in location else "?"
            self._request("PUT", f"{location}{sep}digest={_digest(blob)}", blob,
                          {"Content-Type": "application/octet-stream"})
        self._request("PUT", f"/v2/{repo}/manifests/{tag}", image.manifest,
                      {"Content-Type": OCI_MANIFEST})
        return image.digest

    def push_index(self, repo: str, tag: str, manifests: list[tuple[str, TestImage]]) -> str:
        """An OCI index of already-pushed images, one per "os/arch"."""
        index = json.dumps({"schemaVersion": 2,
                            "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [{"mediaType": OCI_MANIFEST, "digest": img.digest,
                                           "size": len(img.manifest),
                                           "platform": {"os": plat.split("/")[0],
                                                        "architecture": plat.split("/")[1]}}
                                          for plat, img in manifests]}).encode()
        for _, img in manifests:
            self._request("PUT", f"/v2/{repo}/manifests/{img.digest}", img.manifest,
                          {"Content-Type": OCI_MANIFEST})
        self._request("PUT", f"/v2/{repo}/manifests/{tag}", index,
                      {"Content-Type": "application/vnd.oci.image.index.v1+json"})
        return _digest(index)


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["Registry", "TestImage", "build_image", "docker_save", "layer_tar", "os"]
