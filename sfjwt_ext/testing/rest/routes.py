"""The REST and Tooling routes of the local org, and the external-id routes (``sobjects/X/Field/value``)."""
from __future__ import annotations

from typing import Tuple

from ..core.http import Router
from ..services import OrgServices
from .extid import ExternalIdRoutes
from ..core.versions import retired_version
from .handlers import RestApi

__all__ = ["register"]

_V = r"/services/data/v(?P<version>\d+\.\d)"
_RECORD_ID = r"(?P<record_id>[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?)"
_SOBJECT = r"(?P<sobject>\w+)"
_EXTID_V = r"/services/data/v(?P<version>\d+\.\d+)"
_EXTID_PATH = _EXTID_V + r"/sobjects/(?P<sobject>\w+)/(?P<field>\w+)/(?P<value>[^/]+)/?"


def register(router: Router, org: OrgServices) -> Tuple[RestApi, ExternalIdRoutes]:
    """Add the REST, Tooling and external-id routes for ``org`` to ``router``."""
    api = RestApi(org)
    router.add_guard(retired_version)
    add = router.add
    add("instance", "GET", r"/services/data/?", api.versions)
    add("instance", "GET", _V + r"/?", api.resources)
    add("instance", "GET", _V + r"/limits/?", api.limits)
    add("instance", "GET", _V + r"/limits/recordCount/?", api.record_count)
    add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + r"/(?P<kind>updated|deleted)/?", api.replication)
    add("instance", "GET", _V + r"/(?P<kind>query|queryAll)/?", api.query)
    add("instance", "GET", _V + r"/(?:query|queryAll)/(?P<cursor>01g\w{15})-(?P<offset>\d+)/?", api.query_more)
    add("instance", "GET", _V + r"/tooling/(?P<kind>query|queryAll)/?", api.query)
    add("instance", "GET", _V + r"/tooling/(?:query|queryAll)/(?P<cursor>01g\w{15})-(?P<offset>\d+)/?",
        api.query_more)
    add("instance", "GET", _V + r"/sobjects/?", api.describe_global)
    add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + r"/?", api.sobject_info)
    add("instance", "POST", _V + r"/sobjects/" + _SOBJECT + r"/?", api.create)
    add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + r"/describe/?", api.describe)
    add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + "/" + _RECORD_ID + r"/?", api.get)
    add("instance", "PATCH", _V + r"/sobjects/" + _SOBJECT + "/" + _RECORD_ID + r"/?", api.update)
    add("instance", "DELETE", _V + r"/sobjects/" + _SOBJECT + "/" + _RECORD_ID + r"/?", api.delete)
    return api, _register_external_ids(router, org)


def _register_external_ids(router: Router, org: OrgServices) -> ExternalIdRoutes:
    routes = ExternalIdRoutes(org)
    router.add("instance", "GET", _EXTID_PATH, routes.get)
    router.add("instance", "PATCH", _EXTID_PATH, routes.patch)
    router.add("instance", "DELETE", _EXTID_PATH, routes.delete)
    router.add("instance", "POST", _EXTID_V + r"/sobjects/(?P<sobject>\w+)/Id/?", routes.post_on_id)
    return routes
