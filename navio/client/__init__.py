"""navio's API client: the only way components reach the API server (over HTTPS).

    Client            REST calls and watches (rest.py), errors as navio.api.errors
    Informer          list + watch + local indexed cache + handlers (informer.py)
    WorkQueue         de-duplicating, delaying, rate-limited queue of keys (workqueue.py)
    LeaderElector     Lease-based leader election (leaderelection.py)
    EventRecorder     core/v1 Events with aggregation and rate limiting (events.py)
    load_kubeconfig   kubeconfig → ClientConfig → ssl.SSLContext (kubeconfig.py)
"""

from navio.client.clock import REAL_CLOCK, Clock, FakeClock, RealClock
from navio.client.events import NORMAL, WARNING, EventRecorder, object_reference
from navio.client.informer import NAMESPACE_INDEX, Informer, namespace_index
from navio.client.kubeconfig import (ClientConfig, KubeconfigError, in_cluster_config,
                                     load_kubeconfig)
from navio.client.leaderelection import LeaderElectionConfig, LeaderElector, default_identity
from navio.client.ratelimit import (BucketRateLimiter, ItemExponentialFailureRateLimiter,
                                    MaxOfRateLimiter, RateLimiter, TokenBucket,
                                    default_controller_rate_limiter)
from navio.client.resources import (CONFIGMAPS, CONTROLLERREVISIONS, CRONJOBS, DAEMONSETS,
                                    DEPLOYMENTS, ENDPOINTS, ENDPOINTSLICES, EVENTS, JOBS,
                                    LEASES, NAMESPACES, NODES, PDBS, PODS, PRIORITYCLASSES,
                                    REPLICASETS, SECRETS, SERVICEACCOUNTS, SERVICES,
                                    STATEFULSETS, ResourceRef, object_key, split_key)
from navio.client.rest import Client, PatchType, TransportError
from navio.client.status import error_from_status
from navio.client.watch import WatchEvent, WatchStream, WatchStreamError
from navio.client.workqueue import WorkQueue

__all__ = [
    "Client", "PatchType", "TransportError", "WatchEvent", "WatchStream", "WatchStreamError",
    "error_from_status",
    "ClientConfig", "KubeconfigError", "load_kubeconfig", "in_cluster_config",
    "Informer", "NAMESPACE_INDEX", "namespace_index",
    "WorkQueue", "RateLimiter", "TokenBucket", "ItemExponentialFailureRateLimiter",
    "BucketRateLimiter", "MaxOfRateLimiter", "default_controller_rate_limiter",
    "LeaderElector", "LeaderElectionConfig", "default_identity",
    "EventRecorder", "NORMAL", "WARNING", "object_reference",
    "Clock", "RealClock", "FakeClock", "REAL_CLOCK",
    "ResourceRef", "object_key", "split_key",
    "PODS", "NODES", "NAMESPACES", "SERVICES", "ENDPOINTS", "ENDPOINTSLICES", "CONFIGMAPS",
    "SECRETS", "EVENTS", "LEASES", "DEPLOYMENTS", "REPLICASETS", "DAEMONSETS", "STATEFULSETS",
    "JOBS", "CRONJOBS", "SERVICEACCOUNTS", "PRIORITYCLASSES", "PDBS", "CONTROLLERREVISIONS",
]
