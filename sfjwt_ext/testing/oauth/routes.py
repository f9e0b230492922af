"""The OAuth routes of the local org: token, revoke, identity, userinfo."""
from __future__ import annotations

from ..core.http import Router
from ..services import OrgServices
from .handlers import OAuthService

__all__ = ["register"]


def register(router: Router, org: OrgServices) -> OAuthService:
    """Add the OAuth routes (token, revoke, identity, userinfo) for ``org`` to ``router``."""
    api = OAuthService(org)
    add = router.add
    add("*", "POST", r"/services/oauth2/token/?", api.token)   # login host, and the instance as a My Domain
    add("*", "POST", r"/services/oauth2/revoke/?", api.revoke)
    add("*", "GET", r"/services/oauth2/revoke/?", api.revoke)
    add("login", "GET", r"/id/(?P<org>\w+)/(?P<user>\w+)/?", api.identity)
    add("*", "GET", r"/services/oauth2/userinfo/?", api.userinfo)
    return api
