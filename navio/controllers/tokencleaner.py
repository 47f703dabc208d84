"""The token cleaner: deletes bootstrap tokens once they expire (kube's tokencleaner
controller, pkg/controller/bootstrap/tokencleaner.go).

An expired token already fails authentication; removing its Secret keeps `navio token list`
and the store free of dead credentials. A token not yet expired is looked at again when it
does expire. The delete is conditioned on the Secret's uid, so a replacement of the same name
is never removed by mistake.
"""

from __future__ import annotations

import datetime as dt
import logging

from navio.api import bootstraptoken as bt
from navio.api import errors
from navio.client import SECRETS
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register

__all__ = ["TokenCleaner", "NAME"]

log = logging.getLogger(__name__)

NAME = "tokencleaner"


class TokenCleaner(Controller):
    name = NAME
    workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.secrets = ctx.informers.get(SECRETS, bt.NAMESPACE)
        self.secrets.add_handler(on_add=self._seen, on_update=lambda old, new: self._seen(new))

    def _seen(self, secret: dict) -> None:
        if secret.get("type") == bt.SECRET_TYPE:
            self.enqueue(secret)

    async def reconcile(self, key: str) -> None:
        secret = self.secrets.get(key)
        if secret is None or secret.get("type") != bt.SECRET_TYPE:
            return
        fields = bt.token_fields(secret)
        now = dt.datetime.now(dt.timezone.utc)
        if not bt.expired(fields, now):
            if fields.get("expiration"):
                when = dt.datetime.fromisoformat(fields["expiration"].replace("Z", "+00:00"))
                self.queue.add_after(key, max(1.0, (when - now).total_seconds() + 1.0))
            return
        meta = secret["metadata"]
        try:
            await self.client.delete(SECRETS, meta["name"], bt.NAMESPACE,
                                     preconditions={"uid": meta["uid"]})
        except (errors.NotFound, errors.Conflict):
            return
        log.info("expired bootstrap token deleted",
                 extra={"token_id": fields.get("token-id", "")})


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return TokenCleaner(ctx)
