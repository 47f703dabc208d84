"""Jobs (issue 6): the Job controller (`controller.py`, with `pods.py` and `tracking.py`),
its pod failure and success policies, Indexed-Job bookkeeping, and the TTL-after-finished
controller. Public names stay importable from `navio.controllers.job`."""

from navio.controllers.job.controller import JobController
from navio.controllers.job.indexes import (COMPLETION_INDEX, INDEX_FAILURE_COUNT,
                                           INDEX_IGNORED_FAILURE_COUNT, format_indexes,
                                           parse_indexes)
from navio.controllers.job.pod_failure_policy import match_pod_failure_policy
from navio.controllers.job.pods import TRACKING_FINALIZER
from navio.controllers.job.status import backoff_delay, finish_time, is_finished
from navio.controllers.job.success_policy import match_success_policy
from navio.controllers.job.ttl import TTLAfterFinishedController

__all__ = ["JobController", "TTLAfterFinishedController", "TRACKING_FINALIZER",
           "COMPLETION_INDEX", "INDEX_FAILURE_COUNT", "INDEX_IGNORED_FAILURE_COUNT",
           "format_indexes", "parse_indexes", "backoff_delay", "is_finished", "finish_time",
           "match_pod_failure_policy", "match_success_policy"]
