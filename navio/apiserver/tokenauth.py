"""Installing token authentication on the API server's app.

One call made by `navio server` before the app starts: the service-account token authority
(signing key `<pki>/sa.key`, created 0600 on first start) serves TokenRequest and checks
service-account tokens; the bootstrap-token authenticator follows it (kube's order). Their
union is wrapped in a cache of successes (tokencache.py: 10 s, as kube-apiserver's
--token-success-cache-ttl default), since a signature check costs more than the rest of a GET.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from navio.apiserver.authn import BEARER
from navio.apiserver.authreviews import AUTHORITY
from navio.apiserver.bootstraptokens import BootstrapTokenAuthenticator
from navio.apiserver.resources import Resources
from navio.apiserver.tokencache import CachedTokenAuthenticator
from navio.apiserver.tokens import DEFAULT_ISSUER, TokenAuthority, load_authority

__all__ = ["install_token_authentication"]


def install_token_authentication(app: web.Application, resources: Resources, pki: Path, *,
                                 issuer: str = DEFAULT_ISSUER,
                                 audiences: tuple[str, ...] = ()) -> TokenAuthority:
    authority = load_authority(pki, resources, issuer=issuer, audiences=audiences)
    app[AUTHORITY] = authority
    app[BEARER] = [CachedTokenAuthenticator([authority, BootstrapTokenAuthenticator(resources)])]
    return authority
