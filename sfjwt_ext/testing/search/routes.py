"""The search routes of the local org: SOSL (``search``) and ``parameterizedSearch``."""
from __future__ import annotations

from ..core.http import Router
from ..services import OrgServices
from .handlers import SearchRoutes

__all__ = ["register"]

_V = r"/services/data/v(?P<version>\d+\.\d+)"


def register(router: Router, org: OrgServices) -> SearchRoutes:
    """Add the search routes for ``org`` to ``router``."""
    routes = SearchRoutes(org)
    router.add("instance", "GET", _V + r"/search/?", routes.sosl)
    router.add("instance", "GET", _V + r"/parameterizedSearch/?", routes.parameterized)
    router.add("instance", "POST", _V + r"/parameterizedSearch/?", routes.parameterized)
    return routes
