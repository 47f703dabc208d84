"""navio's cluster DNS: Kubernetes' DNS specification served from informer caches.

    RecordSet     the record table, updated incrementally from API events (records.py,
                  service_records.py, reverse.py)
    Responder     query bytes → response bytes, truncation, answer cache (responder.py)
    Forwarder     other names to the host's resolvers (forward.py)
    DnsServer     UDP + TCP sockets; `run(config)` / `serve(config)` entry points (server.py)
    DnsCache      the informers feeding the RecordSet (cache.py)
    DnsConfig     the component's frozen configuration (config.py)
    pod_dns       the resolv.conf a pod gets for its dnsPolicy and dnsConfig (resolvconf.py)

Names are imported lazily, so that `navio.dns.resolvconf` (pure, used by the kubelet) loads
without the server, the API client or dnspython.
"""

from importlib import import_module
from typing import Any

__all__ = [
    "RecordSet", "Answer", "Responder", "Forwarder", "DnsServer", "DnsCache", "DnsConfig",
    "DEFAULT_DNS_IP", "run", "serve", "ResolvConf", "PodDns", "parse_resolv_conf", "pod_dns",
    "pod_resolv_conf",
]

_WHERE = {
    "RecordSet": "records", "Answer": "records", "Responder": "responder",
    "Forwarder": "forward", "DnsServer": "server", "run": "server", "serve": "server",
    "DnsCache": "cache", "DnsConfig": "config", "DEFAULT_DNS_IP": "config",
    "ResolvConf": "resolvconf", "PodDns": "resolvconf", "parse_resolv_conf": "resolvconf",
    "pod_dns": "resolvconf", "pod_resolv_conf": "resolvconf",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'navio.dns' has no attribute {name!r}")
    return getattr(import_module(f"navio.dns.{_WHERE[name]}"), name)
