"""A small CSI driver written for the tests (issue 13): Identity, Controller and Node services
on one unix socket, and the kubelet plugin-registration service on a socket in the kubelet's
plugins_registry directory.

Volumes are directories under `--state/volumes/<volume id>`; ControllerPublishVolume (attach)
answers a publish context naming a pretend device. NodeStageVolume makes the staging
directory; NodePublishVolume makes the target directory and bind-mounts the volume there (the
tests run as root); the Unstage/Unpublish calls undo that. Every call is appended to `--log`
as a JSON line {"method": ..., "request": {...}} so that a test can see what the kubelet and
the provisioner sent. Runs until SIGTERM.

Usage: python csi_driver.py --name N --registry DIR --socket PATH --state DIR --log FILE
                            --node-id ID
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import threading
from concurrent import futures
from typing import Any, Callable

import grpc
from google.protobuf.json_format import MessageToDict

from navio.kubelet.csi.messages import CSI, METHODS, REG

TOPOLOGY_KEY = "topology.navio.test/node"


class Driver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        os.makedirs(os.path.join(args.state, "volumes"), exist_ok=True)

    def record(self, method: str, request: Any) -> None:
        with self.lock, open(self.args.log, "a") as f:
            f.write(json.dumps({"method": method, "request": MessageToDict(request)}) + "\n")

    def volume_dir(self, volume_id: str) -> str:
        return os.path.join(self.args.state, "volumes", volume_id)

    # Identity
    def GetPluginInfo(self, req: Any) -> Any:
        return CSI.GetPluginInfoResponse(name=self.args.name, vendor_version="0.1.0")

    def GetPluginCapabilities(self, req: Any) -> Any:
        resp = CSI.GetPluginCapabilitiesResponse()
        resp.capabilities.add().service.type = 1          # CONTROLLER_SERVICE
        resp.capabilities.add().service.type = 2          # VOLUME_ACCESSIBILITY_CONSTRAINTS
        return resp

    def Probe(self, req: Any) -> Any:
        return CSI.ProbeResponse()

    # Controller
    def ControllerGetCapabilities(self, req: Any) -> Any:
        resp = CSI.ControllerGetCapabilitiesResponse()
        resp.capabilities.add().rpc.type = 1              # CREATE_DELETE_VOLUME
        resp.capabilities.add().rpc.type = 2              # PUBLISH_UNPUBLISH_VOLUME
        return resp

    def ControllerPublishVolume(self, req: Any) -> Any:
        return CSI.ControllerPublishVolumeResponse(
            publish_context={"device": f"/dev/navio-test/{req.volume_id}"})

    def ControllerUnpublishVolume(self, req: Any) -> Any:
        return CSI.ControllerUnpublishVolumeResponse()

    def CreateVolume(self, req: Any) -> Any:
        os.makedirs(self.volume_dir(req.name), exist_ok=True)
        vol = CSI.Volume(volume_id=req.name, capacity_bytes=req.capacity_range.required_bytes,
                         volume_context={"origin": "navio-test-driver"})
        vol.accessible_topology.add().segments[TOPOLOGY_KEY] = self.args.node_id
        return CSI.CreateVolumeResponse(volume=vol)

    def DeleteVolume(self, req: Any) -> Any:
        shutil.rmtree(self.volume_dir(req.volume_id), ignore_errors=True)
        return CSI.DeleteVolumeResponse()

    # Node
    def NodeGetCapabilities(self, req: Any) -> Any:
        resp = CSI.NodeGetCapabilitiesResponse()
        resp.capabilities.add().rpc.type = 1              # STAGE_UNSTAGE_VOLUME
        return resp

    def NodeGetInfo(self, req: Any) -> Any:
        resp = CSI.NodeGetInfoResponse(node_id=self.args.node_id)
        resp.accessible_topology.segments[TOPOLOGY_KEY] = self.args.node_id
        return resp

    def NodeStageVolume(self, req: Any) -> Any:
        os.makedirs(req.staging_target_path, exist_ok=True)
        return CSI.NodeStageVolumeResponse()

    def NodeUnstageVolume(self, req: Any) -> Any:
        shutil.rmtree(req.staging_target_path, ignore_errors=True)
        return CSI.NodeUnstageVolumeResponse()

    def NodePublishVolume(self, req: Any) -> Any:
        os.makedirs(req.target_path, exist_ok=True)
        if not _mounted(req.target_path):
            subprocess.run(["mount", "--bind", self.volume_dir(req.volume_id), req.target_path],
                           check=True)
        return CSI.NodePublishVolumeResponse()

    def NodeUnpublishVolume(self, req: Any) -> Any:
        if _mounted(req.target_path):
            subprocess.run(["umount", req.target_path], check=True)
        if os.path.isdir(req.target_path):
            os.rmdir(req.target_path)
        return CSI.NodeUnpublishVolumeResponse()

    # Registration (kubelet plugin watcher)
    def GetInfo(self, req: Any) -> Any:
        return REG.PluginInfo(type="CSIPlugin", name=self.args.name, endpoint=self.args.socket,
                              supported_versions=["1.0.0"])

    def NotifyRegistrationStatus(self, req: Any) -> Any:
        return REG.RegistrationStatusResponse()


def _mounted(path: str) -> bool:
    """A mount point in this mount namespace (os.path.ismount misses same-device binds)."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def _handler(driver: Driver, service: str) -> grpc.GenericRpcHandler:
    methods = {}
    for path, (req_cls, resp_cls) in METHODS.items():
        svc, name = path[1:].split("/")
        if svc != service:
            continue

        def call(req: Any, ctx: Any, name: str = name) -> Any:
            driver.record(name, req)
            fn: Callable[[Any], Any] = getattr(driver, name)
            return fn(req)
        methods[name] = grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=req_cls.FromString,
            response_serializer=resp_cls.SerializeToString)
    return grpc.method_handlers_generic_handler(service, methods)


def main() -> None:
    p = argparse.ArgumentParser()
    for flag in ("--name", "--registry", "--socket", "--state", "--log", "--node-id"):
        p.add_argument(flag, required=True)
    args = p.parse_args()
    driver = Driver(args)
    csi = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    csi.add_generic_rpc_handlers([_handler(driver, s) for s in
                                  ("csi.v1.Identity", "csi.v1.Controller", "csi.v1.Node")])
    csi.add_insecure_port("unix://" + os.path.abspath(args.socket))
    csi.start()
    reg = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    reg.add_generic_rpc_handlers([_handler(driver, "pluginregistration.Registration")])
    os.makedirs(args.registry, exist_ok=True)
    reg_sock = os.path.join(args.registry, f"{args.name}-reg.sock")
    reg.add_insecure_port("unix://" + reg_sock)
    reg.start()
    print("csi driver ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    reg.stop(1).wait()
    csi.stop(1).wait()
    for path in (reg_sock, args.socket):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    main()
