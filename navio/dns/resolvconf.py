"""The resolv.conf a pod gets, from its dnsPolicy and dnsConfig, as the kubelet makes it (pure).

Why: the cluster DNS is reached through each pod's resolv.conf; the kubelet writes it, and
this module is the one place that decides its content, following the kubelet's
pkg/kubelet/network/dns/dns.go (GetPodDNS) and containerd's file layout.

What is guaranteed:
- dnsPolicy ClusterFirst (the API default), and ClusterFirstWithHostNet: the cluster DNS
  addresses as nameservers, search `<ns>.svc.<zone> svc.<zone> <zone>` followed by the host's
  search domains (duplicates dropped), and `options ndots:5` (host options are not used).
  A hostNetwork pod with ClusterFirst gets Default instead; with no cluster DNS configured
  ClusterFirst falls back to Default and a MissingClusterDNS warning is returned.
- Default: the host's resolv.conf (nameservers accumulate, the last `search` and `options`
  lines win, search domains lose a trailing dot). Without a host file (kubelet
  `--resolv-conf=""`): nameserver 127.0.0.1 (::1 for IPv6 nodes), search `.`.
- None: nothing but the pod's dnsConfig.
- dnsConfig is then merged: nameservers and searches appended without duplicates, options
  merged by name with the pod's value winning.
- Limits, as the kubelet applies them (with ExpandedDNSConfig, GA since 1.28): at most 3
  nameservers; at most 32 search domains, none longer than 253 characters, and a search line
  of at most 2048 characters (domains cut from the end). Each cut returns a DNSConfigForming
  warning for the kubelet to record as an event on the pod.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

__all__ = [
    "ResolvConf", "PodDns", "parse_resolv_conf", "pod_dns", "pod_resolv_conf",
    "CLUSTER_FIRST", "CLUSTER_FIRST_WITH_HOST_NET", "DEFAULT", "NONE",
    "MAX_NAMESERVERS", "MAX_SEARCH_PATHS", "MAX_SEARCH_LINE_CHARS", "DEFAULT_OPTIONS",
]

CLUSTER_FIRST = "ClusterFirst"
CLUSTER_FIRST_WITH_HOST_NET = "ClusterFirstWithHostNet"
DEFAULT = "Default"
NONE = "None"
MAX_NAMESERVERS = 3              # validation.MaxDNSNameservers
MAX_SEARCH_PATHS = 32            # validation.MaxDNSSearchPathsExpanded
MAX_SEARCH_LINE_CHARS = 2048     # validation.MaxDNSSearchListCharsExpanded
MAX_DOMAIN_CHARS = 253           # DNS1123SubdomainMaxLength (glibc aborts on longer ones)
DEFAULT_OPTIONS = ("ndots:5",)
_MAX_FILE = 10 << 20             # the kubelet reads at most 10 MB of resolv.conf


@dataclass(frozen=True, slots=True)
class ResolvConf:
    """Nameservers, search domains and options: the CRI's DNSConfig."""
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def render(self) -> str:
        """The file's text, laid out as containerd writes it."""
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines.extend(f"nameserver {ns}" for ns in self.nameservers)
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(line + "\n" for line in lines)


@dataclass(frozen=True, slots=True)
class PodDns:
    """A pod's resolver configuration and the Warning events (reason, message) it caused."""
    config: ResolvConf
    events: tuple[tuple[str, str], ...] = ()


def parse_resolv_conf(text: str) -> ResolvConf:
    """Parse resolv.conf as the kubelet's parseResolvConf does."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text[:_MAX_FILE].split("\n"):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        fields = stripped.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            nameservers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            options = fields[1:]
    return ResolvConf(tuple(nameservers), tuple(searches), tuple(options))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _merge_options(existing: Iterable[str], extra: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    merged: dict[str, str] = {}
    for op in existing:
        name, _, value = op.partition(":")
        merged[name] = value
    for option in extra:
        name = str(option.get("name") or "")
        if name:
            raw = option.get("value")
            merged[name] = "" if raw is None else str(raw)
    return tuple(f"{k}:{v}" if v else k for k, v in merged.items())


def _fit_searches(searches: Sequence[str], events: list[tuple[str, str]]) -> tuple[str, ...]:
    kept = list(searches)
    exceeded = False
    if len(kept) > MAX_SEARCH_PATHS:
        kept, exceeded = kept[:MAX_SEARCH_PATHS], True
    short = [s for s in kept if len(s) <= MAX_DOMAIN_CHARS]
    exceeded |= len(short) != len(kept)
    kept = short
    while kept and len(" ".join(kept)) > MAX_SEARCH_LINE_CHARS:
        kept.pop()
        exceeded = True
    if exceeded:
        events.append(("DNSConfigForming", "Search Line limits were exceeded, some search paths "
                       "have been omitted, the applied search line is: " + " ".join(kept)))
    return tuple(kept)


def _fit_nameservers(servers: Sequence[str], events: list[tuple[str, str]]) -> tuple[str, ...]:
    if len(servers) <= MAX_NAMESERVERS:
        return tuple(servers)
    kept = tuple(servers[:MAX_NAMESERVERS])
    events.append(("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have "
                   "been omitted, the applied nameserver line is: " + " ".join(kept)))
    return kept


def _host_config(host: ResolvConf | None, node_ips: Sequence[str]) -> ResolvConf:
    if host is not None:
        return host
    # kubelet --resolv-conf="": "the nameserver on the local machine", and no search path.
    servers = _unique("::1" if ":" in ip else "127.0.0.1" for ip in node_ips) or ("127.0.0.1",)
    return ResolvConf(servers, (".",), ())


def pod_dns(pod: Mapping[str, Any], *, cluster_dns: Sequence[str], cluster_domain: str,
            host: ResolvConf | None, node_ips: Sequence[str] = ()) -> PodDns:
    """The resolver configuration of `pod`; `host` is the node's parsed resolv.conf, or None
    when the kubelet runs with `--resolv-conf=""`."""
    spec = pod.get("spec") or {}
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    policy = spec.get("dnsPolicy") or CLUSTER_FIRST
    host_network = bool(spec.get("hostNetwork"))
    events: list[tuple[str, str]] = []
    if policy == NONE:
        config = ResolvConf()
    else:
        # An unknown policy cannot pass validation; the kubelet treats it as ClusterFirst.
        cluster = policy == CLUSTER_FIRST_WITH_HOST_NET or (
            policy != DEFAULT and not (policy == CLUSTER_FIRST and host_network))
        if cluster and not cluster_dns:
            events.append(("MissingClusterDNS", "kubelet does not have ClusterDNS IP configured "
                           f'and cannot create Pod using "{CLUSTER_FIRST}" policy. Falling '
                           f'back to "{DEFAULT}" policy.'))
            cluster = False
        if cluster:
            searches = host.searches if host is not None else ()
            if cluster_domain:
                searches = _unique((f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}",
                                    cluster_domain, *searches))
            config = ResolvConf(tuple(cluster_dns), searches, DEFAULT_OPTIONS)
        else:
            config = _host_config(host, node_ips)
    extra = spec.get("dnsConfig")
    if extra:
        config = ResolvConf(
            _unique((*config.nameservers, *map(str, extra.get("nameservers") or ()))),
            _unique((*config.searches, *map(str, extra.get("searches") or ()))),
            _merge_options(config.options, extra.get("options") or ()))
    config = ResolvConf(_fit_nameservers(config.nameservers, events),
                        _fit_searches(config.searches, events), config.options)
    return PodDns(config, tuple(events))


def pod_resolv_conf(pod: Mapping[str, Any], *, cluster_dns: Sequence[str],
                    cluster_domain: str, host: ResolvConf | None,
                    node_ips: Sequence[str] = ()) -> str:
    """The text of `pod`'s /etc/resolv.conf (see `pod_dns` for the events to record)."""
    return pod_dns(pod, cluster_dns=cluster_dns, cluster_domain=cluster_domain, host=host,
                   node_ips=node_ips).config.render()
