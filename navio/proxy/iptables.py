"""iptables rules for service ports, in kube-proxy's iptables layout, as `iptables-restore` input.

Why: the fallback where nftables is missing (pkg/proxy/iptables/proxier.go). Pure, so it can be
tested without a kernel; `iptables_backend.py` loads it with `iptables-restore --noflush`
(iptables-nft or iptables-legacy, whichever `iptables-restore` is).

Layout (kube-proxy's, with navio's prefix so that it never touches a real kube-proxy's chains):
nat `NAVIO-SERVICES` matches `-d clusterIP -p proto --dport port` (and external / LB IPs) and
jumps to the per-port chain `NAVIO-SVC-…` (Cluster policy), `NAVIO-SVL-…` (Local) or, for
external traffic, `NAVIO-EXT-…`; its last rule sends local destinations to `NAVIO-NODEPORTS`.
A policy chain masquerades off-cluster sources, then after ClientIP-affinity checks
(`-m recent --rcheck`) picks an endpoint chain `NAVIO-SEP-…` with `-m statistic --mode random
--probability 1/(n-i)` (equal probability overall); the endpoint chain marks hairpin traffic,
records affinity (`-m recent --set`) and DNATs. Filter `NAVIO-SERVICES` rejects ports without
endpoints (TCP with a reset, see nftables.py) and any other port of a cluster IP (the filter
table sees addresses after DNAT, so only traffic no service rule took is left with a cluster
IP), `NAVIO-EXTERNAL-SERVICES` the NodePorts of ports without endpoints.

What is guaranteed:
- Equal inputs render equal text. `restore_input(frags, changed, existing)` is one transaction
  for `iptables-restore --noflush`: it rewrites the shared chains (NAVIO-SERVICES,
  NAVIO-NODEPORTS, the filter chains) from every service, rewrites only the chains of the
  `changed` services, and deletes (`-X`) chains in `existing` that no service needs any more.
  Chains of unchanged services are left as they are: updates are incremental.
- The base-chain jumps (`JUMPS`) are not part of the restore input (a `--noflush` append
  would duplicate them); the backend checks and inserts them once.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from navio.proxy.model import Endpoint, ServicePort
from navio.proxy.nftables import RuleOptions

__all__ = ["Fragment", "render_service", "restore_input", "cleanup_input", "JUMPS",
           "FIXED_CHAINS", "PREFIX"]

PREFIX = "NAVIO-"
SERVICES = "NAVIO-SERVICES"
NODEPORTS = "NAVIO-NODEPORTS"
EXTERNAL_SERVICES = "NAVIO-EXTERNAL-SERVICES"
MARK_MASQ = "NAVIO-MARK-MASQ"
POSTROUTING = "NAVIO-POSTROUTING"

# (table, chain) of navio's fixed chains, created on every restore.
FIXED_CHAINS = (("nat", SERVICES), ("nat", NODEPORTS), ("nat", MARK_MASQ),
                ("nat", POSTROUTING), ("filter", SERVICES), ("filter", EXTERNAL_SERVICES))
# (table, base chain, rule spec) jumps into them.
JUMPS = (
    ("nat", "PREROUTING", ["-j", SERVICES]),
    ("nat", "OUTPUT", ["-j", SERVICES]),
    ("nat", "POSTROUTING", ["-j", POSTROUTING]),
    ("filter", "INPUT", ["-m", "conntrack", "--ctstate", "NEW", "-j", SERVICES]),
    ("filter", "FORWARD", ["-m", "conntrack", "--ctstate", "NEW", "-j", SERVICES]),
    ("filter", "OUTPUT", ["-m", "conntrack", "--ctstate", "NEW", "-j", SERVICES]),
    ("filter", "INPUT", ["-m", "conntrack", "--ctstate", "NEW", "-j", EXTERNAL_SERVICES]),
)


@dataclass(frozen=True, slots=True)
class Fragment:
    """Everything one Service puts in the tables. Treat the mappings as read-only.

    chains: nat chain name → its rules; services / nodeports: its rules in the shared nat
    chains; rejects / external_rejects: its rules in the filter chains."""

    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    services: tuple[str, ...] = ()
    nodeports: tuple[str, ...] = ()
    rejects: tuple[str, ...] = ()
    external_rejects: tuple[str, ...] = ()


def _hash(text: str) -> str:
    """kube-proxy's portProtoHash: 16 characters of base32(sha256)."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def _port_hash(sp: ServicePort) -> str:
    return _hash(f"{sp.namespace}/{sp.name}:{sp.port_name}{sp.protocol.lower()}")


def _sep(sp: ServicePort, ep: Endpoint) -> str:
    return PREFIX + "SEP-" + _hash(f"{sp.namespace}/{sp.name}:{sp.port_name}"
                                   f"{sp.protocol.lower()}{ep}")


def _comment(text: str) -> str:
    return f'-m comment --comment "{text}"'


def _reject(proto: str) -> str:
    return "-j REJECT --reject-with tcp-reset" if proto == "tcp" else "-j REJECT"


def _pick(chain: str, sp: ServicePort, eps: tuple[Endpoint, ...], comment: str
          ) -> list[str]:
    rules = []
    if sp.affinity_timeout:
        for ep in eps:
            sep = _sep(sp, ep)
            rules.append(f"-A {chain} {comment} -m recent --name {sep} --rcheck --seconds "
                         f"{sp.affinity_timeout} --reap -j {sep}")
    n = len(eps)
    for i, ep in enumerate(eps):
        stat = "" if i == n - 1 else \
            f"-m statistic --mode random --probability {1.0 / (n - i):.10f} "
        rules.append(f"-A {chain} {comment} {stat}-j {_sep(sp, ep)}")
    return rules


def render_service(ports: Iterable[ServicePort], opts: RuleOptions) -> Fragment:
    """The chains and shared-chain rules of one Service's ports."""
    chains: dict[str, tuple[str, ...]] = {}
    services: list[str] = []
    nodeports: list[str] = []
    rejects: list[str] = []
    external_rejects: list[str] = []
    tail: list[str] = []
    for sp in ports:
        proto = sp.protocol.lower()
        h = _port_hash(sp)
        svc, svl, ext = PREFIX + "SVC-" + h, PREFIX + "SVL-" + h, PREFIX + "EXT-" + h
        c = _comment(str(sp))
        has_eps = sp.has_endpoints
        internal = svl if sp.internal_policy_local else svc
        has_internal = has_eps and (not sp.internal_policy_local or bool(sp.local_endpoints))
        has_external = has_eps and (not sp.external_policy_local or bool(sp.local_endpoints))
        match = f"-p {proto} -m {proto} --dport {sp.port}"
        if has_internal:
            services.append(f"-A {SERVICES} {_comment(f'{sp} cluster IP')} "
                            f"-d {sp.cluster_ip}/32 {match} -j {internal}")
        else:
            rejects.append(f"-A {SERVICES} {_comment(f'{sp} has no endpoints')} "
                           f"-d {sp.cluster_ip}/32 {match} {_reject(proto)}")
        for ip in sp.external_ips + sp.load_balancer_ips:
            if has_external:
                services.append(f"-A {SERVICES} {_comment(f'{sp} external IP')} "
                                f"-d {ip}/32 {match} -j {ext}")
            else:
                rejects.append(f"-A {SERVICES} {_comment(f'{sp} has no endpoints')} "
                               f"-d {ip}/32 {match} {_reject(proto)}")
        if sp.node_port:
            np_match = f"-p {proto} -m {proto} --dport {sp.node_port}"
            if has_external:
                nodeports.append(f"-A {NODEPORTS} {c} {np_match} -j {ext}")
            else:
                external_rejects.append(
                    f"-A {EXTERNAL_SERVICES} {_comment(f'{sp} has no endpoints')} "
                    f"-m addrtype --dst-type LOCAL {np_match} {_reject(proto)}")
        uses_cluster = bool(sp.cluster_endpoints) and sp.uses_cluster_endpoints
        uses_local = bool(sp.local_endpoints) and sp.uses_local_endpoints
        if uses_cluster:
            rules = []
            if opts.masquerade_all:
                rules.append(f"-A {svc} {c} -d {sp.cluster_ip}/32 {match} -j {MARK_MASQ}")
            elif opts.cluster_cidr:
                rules.append(f"-A {svc} {c} ! -s {opts.cluster_cidr} -d {sp.cluster_ip}/32 "
                             f"{match} -j {MARK_MASQ}")
            chains[svc] = tuple(rules + _pick(svc, sp, sp.cluster_endpoints, c))
        if uses_local:
            chains[svl] = tuple(_pick(svl, sp, sp.local_endpoints, c))
        if has_eps and sp.externally_accessible:
            rules = []
            if not sp.external_policy_local:
                rules.append(f"-A {ext} {c} -j {MARK_MASQ}")
            else:
                if opts.cluster_cidr and svc in chains:
                    rules.append(f'-A {ext} -m comment --comment "short-circuit pod traffic" '
                                 f"-s {opts.cluster_cidr} -j {svc}")
                rules.append(f'-A {ext} -m comment --comment "masquerade local traffic" '
                             f"-m addrtype --src-type LOCAL -j {MARK_MASQ}")
                if svc in chains:
                    rules.append(f'-A {ext} -m comment --comment "short-circuit local '
                                 f'traffic" -m addrtype --src-type LOCAL -j {svc}')
            if has_external:
                rules.append(f"-A {ext} {c} -j {svl if sp.external_policy_local else svc}")
            chains[ext] = tuple(rules)
        vip_rejects = (f"-A {SERVICES} {_comment(f'{sp.cluster_ip} unserved port')} "
                       f"-d {sp.cluster_ip}/32 -p tcp -j REJECT --reject-with tcp-reset",
                       f"-A {SERVICES} {_comment(f'{sp.cluster_ip} unserved port')} "
                       f"-d {sp.cluster_ip}/32 -j REJECT")
        for rule in vip_rejects:        # (after DNAT: only traffic no port rule took)
            if rule not in tail:
                tail.append(rule)
        for ep in sp.reachable_endpoints:
            sep = _sep(sp, ep)
            recent = f"-m recent --name {sep} --set " if sp.affinity_timeout else ""
            chains[sep] = (f"-A {sep} {c} -s {ep.ip}/32 -j {MARK_MASQ}",
                           f"-A {sep} {c} -p {proto} {recent}-m {proto} -j DNAT "
                           f"--to-destination {ep.ip}:{ep.port}")
    return Fragment(chains, tuple(services), tuple(nodeports), tuple(rejects + tail),
                    tuple(external_rejects))


def _fixed_nat(opts: RuleOptions) -> list[str]:
    mark = f"{1 << opts.masquerade_bit:#x}"
    return [f"-A {MARK_MASQ} -j MARK --or-mark {mark}",
            f"-A {POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN",
            f"-A {POSTROUTING} -j MARK --xor-mark {mark}",
            f'-A {POSTROUTING} -m comment --comment "navio service traffic requiring SNAT" '
            "-j MASQUERADE --random-fully"]


def restore_input(fragments: Mapping[str, Fragment], changed: Iterable[str] | None,
                  existing: Iterable[str], opts: RuleOptions) -> str:
    """One `iptables-restore --noflush` transaction: shared chains rewritten from all
    `fragments`, per-service chains of `changed` keys (None: all) rewritten, and chains in
    `existing` (navio nat chains now in the kernel) that nothing needs deleted."""
    keys = sorted(fragments) if changed is None else sorted(set(changed) & set(fragments))
    wanted = {name for f in fragments.values() for name in f.chains}
    nat_decl = [f":{name} - [0:0]" for table, name in FIXED_CHAINS if table == "nat"]
    nat_rules = _fixed_nat(opts)
    ordered = sorted(fragments)
    for key in ordered:
        nat_rules += fragments[key].services
    nat_rules.append(f'-A {SERVICES} -m comment --comment "navio service nodeports; NOTE: '
                     f'this must be the last rule in this chain" -m addrtype --dst-type LOCAL '
                     f"! -d 127.0.0.0/8 -j {NODEPORTS}")
    for key in ordered:
        nat_rules += fragments[key].nodeports
    for key in keys:
        for name, rules in sorted(fragments[key].chains.items()):
            nat_decl.append(f":{name} - [0:0]")
            nat_rules += rules
    stale = sorted(set(existing) - wanted - {n for _, n in FIXED_CHAINS})
    # a stale chain is emptied (declared) before any chain is deleted: they may jump to
    # each other
    nat_decl += [f":{name} - [0:0]" for name in stale]
    filter_decl = [f":{name} - [0:0]" for table, name in FIXED_CHAINS if table == "filter"]
    filter_rules: list[str] = []
    for key in ordered:
        filter_rules += fragments[key].rejects
    for key in ordered:
        filter_rules += fragments[key].external_rejects
    out = ["*nat", *nat_decl, *nat_rules, *(f"-X {name}" for name in stale), "COMMIT",
           "*filter", *filter_decl, *filter_rules, "COMMIT"]
    return "\n".join(out) + "\n"


def cleanup_input(nat_chains: Iterable[str], filter_chains: Iterable[str]) -> str:
    """Flush and delete the given navio chains (the base-chain jumps must be gone first)."""
    nat, flt = sorted(set(nat_chains)), sorted(set(filter_chains))
    return "\n".join(["*nat", *(f":{c} - [0:0]" for c in nat), *(f"-X {c}" for c in nat),
                      "COMMIT", "*filter", *(f":{c} - [0:0]" for c in flt),
                      *(f"-X {c}" for c in flt), "COMMIT"]) + "\n"
