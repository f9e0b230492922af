"""The Bulk API 2.0 routes of the local org: query jobs (``jobs/query``) and ingest jobs (``jobs/ingest``)."""
from __future__ import annotations

from typing import Tuple

from ..core.http import Router
from ..core.jobs import ID_RE, VERSION_RE
from ..services import OrgServices
from .ingest import IngestService
from .models import Bulk2Jobs
from .query import Bulk2Api

__all__ = ["register"]

_QUERY = rf"/services/data/v{VERSION_RE}/jobs/query"
_QUERY_JOB = _QUERY + rf"/(?P<job>{ID_RE})"
_INGEST = r"/services/data/v(?P<version>\d+\.\d+)/jobs/ingest"
_INGEST_JOB = _INGEST + r"/(?P<job>[A-Za-z0-9]{15,18})"


def register(router: Router, org: OrgServices, jobs: Bulk2Jobs) -> Tuple[Bulk2Api, IngestService]:
    """Add the Bulk API 2.0 query and ingest routes for ``org`` to ``router``; ``jobs`` keeps both kinds."""
    api = Bulk2Api(org, jobs)
    router.add("instance", "POST", _QUERY, api.bulk2_create)
    router.add("instance", "GET", _QUERY, api.bulk2_list)
    router.add("instance", "GET", _QUERY_JOB, api.bulk2_status)
    router.add("instance", "PATCH", _QUERY_JOB, api.bulk2_patch)
    router.add("instance", "DELETE", _QUERY_JOB, api.bulk2_delete)
    router.add("instance", "GET", _QUERY_JOB + "/results", api.bulk2_results)
    router.add("instance", "GET", _QUERY_JOB + "/resultPages", api.bulk2_result_pages)
    return api, _register_ingest(router, org, jobs)


def _register_ingest(router: Router, org: OrgServices, jobs: Bulk2Jobs) -> IngestService:
    service = IngestService(org, jobs)
    router.add("instance", "POST", _INGEST + r"/?", service.create)
    router.add("instance", "GET", _INGEST + r"/?", service.listing)
    router.add("instance", "GET", _INGEST_JOB + r"/?", service.status)
    router.add("instance", "PATCH", _INGEST_JOB + r"/?", service.patch)
    router.add("instance", "DELETE", _INGEST_JOB + r"/?", service.delete)
    router.add("instance", "PUT", _INGEST_JOB + r"/batches/?", service.upload)
    router.add("instance", "GET", _INGEST_JOB + r"/(?P<kind>successfulResults|failedResults|unprocessed[Rr]ecords)/?",
               service.results)
    return service
