"""TTL after finished: delete finished Jobs `ttlSecondsAfterFinished` after they finished
(kube-controller-manager's "ttl-after-finished", pkg/controller/ttlafterfinished, v1.32).

Guarantee: a finished Job with `ttlSecondsAfterFinished` is deleted (foreground,
preconditioned on its resourceVersion) once that long has passed since its Complete or
Failed condition's lastTransitionTime; a Job changed meanwhile is looked at again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from navio.api import errors
from navio.client import JOBS
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.job.status import Now, Obj, finish_time, is_finished
from navio.controllers.manager import register

__all__ = ["TTLAfterFinishedController"]

log = logging.getLogger(__name__)


@register("ttl-after-finished")
class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.now: Now = ctx.options.get("job-now") or (lambda: datetime.now(timezone.utc))
        self.jobs = ctx.informers.get(JOBS)
        self.jobs.add_handler(on_add=self._maybe, on_update=lambda o, n: self._maybe(n))

    def _maybe(self, job: Obj) -> None:
        if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and \
                not job["metadata"].get("deletionTimestamp") and is_finished(job):
            self.enqueue(job)

    async def reconcile(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or job["metadata"].get("deletionTimestamp") or not is_finished(job):
            return
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        done = finish_time(job)
        if ttl is None or done is None:
            return
        left = (done + timedelta(seconds=int(ttl)) - self.now()).total_seconds()
        if left > 0:
            self.queue.add_after(key, left)
            return
        ns, _, name = key.partition("/")
        try:
            await self.client.delete(JOBS, name, ns, propagation_policy="Foreground",
                                     preconditions={"resourceVersion":
                                                    job["metadata"]["resourceVersion"]})
            log.info("finished job deleted after ttl", extra={"job": key})
        except (errors.NotFound, errors.Conflict):
            pass
