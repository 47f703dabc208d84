"""The per-pod /etc/hosts, /etc/hostname and /etc/resolv.conf that containers see.

Why: without images a container sees the host's /etc; the kubelet (hosts) and the CRI runtime
(hostname, resolv.conf) give every pod its own copies, so `cat /etc/hostname` prints the pod's
name and DNS follows the pod's dnsPolicy. Content follows kubelet_pods.go
(managedHostsFileContent, nodeHostsFileContent) and navio.dns.resolvconf.

Guarantees: content functions are pure; `write_pod_files` writes each file atomically (temp +
rename, 0644) under the pod's directory and returns (container path, host path) pairs to
mount, plus the Warning events DNS configuration produced (MissingClusterDNS,
DNSConfigForming).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Mapping, Sequence

from navio.dns.resolvconf import ResolvConf, parse_resolv_conf, pod_dns

__all__ = ["hosts_file", "hostname_of", "write_pod_files", "load_host_resolv_conf"]

_HEADER = "# Kubernetes-managed hosts file.\n"
_HOST_NETWORK_HEADER = "# Kubernetes-managed hosts file (host network).\n"
_LOCAL = ("127.0.0.1\tlocalhost\n"
          "::1\tlocalhost ip6-localhost ip6-loopback\n"
          "fe00::0\tip6-localnet\n"
          "fe00::0\tip6-mcastprefix\n"
          "fe00::1\tip6-allnodes\n"
          "fe00::2\tip6-allrouters\n")


def hostname_of(pod: Mapping[str, Any]) -> str:
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        return socket.gethostname()
    name = spec.get("hostname") or (pod.get("metadata") or {}).get("name") or ""
    return str(name)[:63].rstrip("-.")


def _aliases(spec: Mapping[str, Any]) -> str:
    aliases = spec.get("hostAliases") or []
    if not aliases:
        return ""
    lines = ["\n# Entries added by HostAliases.\n"]
    for a in aliases:
        lines.append(f"{a.get('ip')}\t" + "\t".join(a.get("hostnames") or ()) + "\n")
    return "".join(lines)


def hosts_file(pod: Mapping[str, Any], pod_ips: Sequence[str], cluster_domain: str,
               host_hosts: str | None = None) -> str:
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        return _HOST_NETWORK_HEADER + (host_hosts or "") + _aliases(spec)
    name = hostname_of(pod)
    out = [_HEADER, _LOCAL]
    subdomain = spec.get("subdomain")
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    for ip in pod_ips:
        if subdomain:
            out.append(f"{ip}\t{name}.{subdomain}.{namespace}.svc.{cluster_domain}\t{name}\n")
        else:
            out.append(f"{ip}\t{name}\n")
    return "".join(out) + _aliases(spec)


def load_host_resolv_conf(path: Path | None) -> ResolvConf | None:
    """The node's parsed resolv.conf (None when disabled or missing)."""
    if path is None:
        return None
    try:
        return parse_resolv_conf(path.read_text(errors="replace"))
    except OSError:
        return None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_pod_files(pod_dir: Path, pod: Mapping[str, Any], pod_ips: Sequence[str], *,
                    cluster_dns: Sequence[str], cluster_domain: str,
                    host_resolv: ResolvConf | None,
                    node_ips: Sequence[str]) -> tuple[list[tuple[str, str]],
                                                      list[tuple[str, str]]]:
    """Write the files; returns ([(container path, host path)], [(reason, message)])."""
    pod_dir.mkdir(parents=True, exist_ok=True)
    host_hosts = None
    if (pod.get("spec") or {}).get("hostNetwork"):
        try:
            host_hosts = Path("/etc/hosts").read_text(errors="replace")
        except OSError:
            host_hosts = ""
    dns = pod_dns(pod, cluster_dns=cluster_dns, cluster_domain=cluster_domain,
                  host=host_resolv, node_ips=node_ips)
    files = {"/etc/hosts": ("etc-hosts", hosts_file(pod, pod_ips, cluster_domain, host_hosts)),
             "/etc/hostname": ("etc-hostname", hostname_of(pod) + "\n"),
             "/etc/resolv.conf": ("etc-resolv.conf", dns.config.render())}
    out = []
    for target, (name, text) in files.items():
        path = pod_dir / name
        try:
            if path.read_text() == text:
                out.append((target, str(path)))
                continue
        except OSError:
            pass
        _write(path, text)
        out.append((target, str(path)))
    return out, list(dns.events)
