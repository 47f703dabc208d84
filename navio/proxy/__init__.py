"""Service routing on each node: a Service's cluster IP, NodePorts and external IPs reach its
ready endpoints (kube-proxy's job).

    model.py             Services + EndpointSlices → desired service ports and targets (pure)
    nftables.py          service ports → nftables transactions, full and delta (pure)
    nftables_backend.py  applies them with `nft -f -`, in a network namespace if asked
    iptables.py          the fallback where nft is missing: kube-proxy's iptables layout (pure)
    iptables_backend.py  applies it with `iptables-restore --noflush`
    conntrack.py         deletes UDP conntrack flows to removed endpoints
    userspace.py         the unprivileged fallback: listeners that forward TCP and UDP
    proxier.py           informers, coalescing sync loop, `run(config)`, `summary()`

Entry points for `cli/`: `run(ProxyConfig(...))` (until cancelled); for `navio proxy rules`:
`Proxier.summary()` in process, `read_rules(state_file)` from another process, and
`live_rules(netns)` for the kernel's own listing (nftables or iptables).
"""

from navio.proxy.config import MODES, ProxyConfig, select_mode
from navio.proxy.proxier import (Proxier, format_rules, live_rules, live_table, make_backend,
                                 read_rules, run)

__all__ = ["ProxyConfig", "MODES", "select_mode", "Proxier", "run", "make_backend",
           "format_rules", "read_rules", "live_table", "live_rules"]
