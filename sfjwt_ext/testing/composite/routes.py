"""The Composite API routes of the local org: composite, batch, tree and sObject Collections."""
from __future__ import annotations

from ..core.http import Router
from ..services import OrgServices
from .handlers import CompositeService

__all__ = ["register"]

_V = r"/services/data/v(?P<version>\d+\.\d+)/composite"


def register(router: Router, org: OrgServices) -> CompositeService:
    """Add the Composite API routes for ``org`` to ``router``."""
    service = CompositeService(org)
    router.add("instance", "POST", _V + r"/?", service.composite)
    router.add("instance", "POST", _V + r"/batch/?", service.batch)
    router.add("instance", "POST", _V + r"/tree/(?P<sobject>\w+)/?", service.tree)
    router.add("instance", "POST", _V + r"/sobjects/?", service.collection_create)
    router.add("instance", "PATCH", _V + r"/sobjects/?", service.collection_update)
    router.add("instance", "DELETE", _V + r"/sobjects/?", service.collection_delete)
    router.add("instance", "GET", _V + r"/sobjects/(?P<sobject>\w+)/?", service.collection_retrieve)
    router.add("instance", "POST", _V + r"/sobjects/(?P<sobject>\w+)/?", service.collection_retrieve)
    router.add("instance", "PATCH", _V + r"/sobjects/(?P<sobject>\w+)/(?P<field>\w+)/?", service.collection_upsert)
    return service
