"""A real `navio server` in a child process, and the real kubectl pointed at it."""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from etcdlab import EtcdCluster  # noqa: E402  (tests/etcdlab.py)

KUBECTL = "/usr/bin/kubectl"
# NAVIO_TEST_DATASTORE=etcd runs every test server on its own etcd (default: SQLite).
DEFAULT_DATASTORE = os.environ.get("NAVIO_TEST_DATASTORE", "sqlite")
_LISTENING = re.compile(r"listening on (https://\S+)")


@dataclass
class NavioServer:
    data_dir: Path
    extra_args: tuple[str, ...] = ("--no-agent",)
    port: int = 0
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    output: list[str] = field(default_factory=list)
    _log: Any = None
    # "sqlite" (the data dir's) or "etcd": a one-member etcd of this server's own, started
    # with it, kept across restarts (same data), stopped by stop_datastore() or at exit.
    datastore: str = DEFAULT_DATASTORE
    etcd: EtcdCluster | None = None
    command: str = "server"          # or "apiserver" (the API server alone)

    def datastore_args(self) -> tuple[str, ...]:
        if self.datastore != "etcd" or "--datastore" in self.extra_args:
            return ()
        if self.etcd is None:
            self.etcd = EtcdCluster(self.data_dir.parent / f"{self.data_dir.name}-etcd").start()
            atexit.register(self.etcd.stop)
        return ("--datastore", self.etcd.datastore)

    def stop_datastore(self) -> None:
        if self.etcd is not None:
            self.etcd.stop()

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    def launcher(self) -> tuple[str, ...]:
        """What the server command runs under (nothing; a subclass may enter a netns)."""
        return ()

    def start(self, timeout: float = 60.0) -> "NavioServer":
        self.output = []
        # The suite's pods run host programs: their node runs the process runtime unless a
        # test asks for another (`auto` would pick oci where runc is installed; issue 11).
        runtime = () if "--runtime" in self.extra_args or self.command != "server" \
            else ("--runtime", "process")
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        log = self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [*self.launcher(), sys.executable, "-m", "navio.cli.main", self.command, "--data-dir",
             str(self.data_dir), "--port", str(self.port), *runtime, *self.extra_args,
             *self.datastore_args()],
            stdout=subprocess.PIPE, stderr=log, text=True)
        found = threading.Event()

        def pump() -> None:
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                self.output.append(line)
                m = _LISTENING.search(line)
                if m:
                    self.url = m.group(1)
                    self.port = int(self.url.rsplit(":", 1)[1])
                if "kubeconfig written" in line:
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout) or not self.url:
            self.stop()
            raise AssertionError(f"navio server did not start within {timeout}s: "
                                 f"{''.join(self.output)}; see {log.name}")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rc = self.proc.returncode
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        return rc


@dataclass
class Kubectl:
    kubeconfig: Path
    home: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env.update(KUBECONFIG=str(self.kubeconfig), HOME=str(self.home),
                   KUBECACHEDIR=str(self.home / "cache"))
        return env

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60.0, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        full_env = self.env()
        full_env.update(env or {})
        proc = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                              timeout=timeout, env=full_env)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def __call__(self, *args: str, **kw: Any) -> str:
        return self.run(*args, **kw).stdout

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.run(*args, "-o", "json", **kw).stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([KUBECTL, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env())


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(interval)
