"""The ``apps/oauth`` routes of the local org: app usage, its users, its consumer credentials."""
from __future__ import annotations

from ..core.http import Router
from ..services import OrgServices
from .handlers import ConnectAppsApi

__all__ = ["register"]

_V = r"/services/data/v(?P<version>\d+\.\d)"


def register(router: Router, org: OrgServices) -> ConnectAppsApi:
    """Add the ``apps/oauth`` routes for ``org`` to ``router``."""
    api = ConnectAppsApi(org)
    router.add("instance", "GET", _V + r"/apps/oauth/usage/?", api.usage)
    router.add("instance", "GET", _V + r"/apps/oauth/usage/(?P<app>\w+)/users/?", api.users)
    router.add("instance", "GET", _V + r"/apps/oauth/credentials/(?P<app>\w+)/?", api.consumers)
    router.add("instance", "GET", _V + r"/apps/oauth/credentials/(?P<app>\w+)/(?P<consumer>\w+)/?", api.consumer)
    return api
