"""navio's node agent: the kubelet. It registers its Node, heartbeats, and runs the pods bound
to it through a CRI-shaped runtime (navio.runtime); see agent.py for how the parts fit.

    agent.py        run(config): start-up, wiring, shutdown, orphan reconciliation
    config.py       AgentConfig, the frozen configuration `navio agent` builds
    node.py         Node registration and status;  lease.py  the kube-node-lease heartbeat
    podworkers.py   one task per pod;  sync.py  syncPod;  containers.py  start/kill one
    pleg.py         runtime cache + relist;  status.py  pod status writes;  podstatus.py
                    the status itself (pure)
    prober.py       probe workers;  probes.py  exec/httpGet/tcpSocket actions
    env.py, fieldref.py, volumes.py, atomicwriter.py, podfiles.py   what containers see
    server.py       the kubelet API (:10250);  logs.py  containerLogs;  streams/  exec/attach
                    channel protocol and SPDY/3.1 port-forward;  tls.py  who may call it

Only the API client reaches cluster state (STYLE §1); the runtime is imported only here.
"""

__all__: list[str] = []
