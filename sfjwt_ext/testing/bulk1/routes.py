"""The Bulk API 1.0 routes of the local org (``/services/async/XX.X/job``)."""
from __future__ import annotations

from ..core.http import Router
from ..core.jobs import ID_RE, VERSION_RE
from ..services import OrgServices
from .handlers import Bulk1Api, retired_version
from .models import Bulk1Jobs

__all__ = ["register"]


def register(router: Router, org: OrgServices, jobs: Bulk1Jobs) -> Bulk1Api:
    """Add the Bulk API 1.0 routes for ``org`` to ``router``; ``jobs`` keeps its jobs."""
    api = Bulk1Api(org, jobs)
    router.add_guard(retired_version)
    v1 = rf"/services/async/{VERSION_RE}/job"
    job1 = v1 + rf"/(?P<job>{ID_RE})"
    batch1 = job1 + rf"/batch/(?P<batch>{ID_RE})"
    router.add("instance", "POST", v1, api.create_job)
    router.add("instance", "GET", job1, api.job)
    router.add("instance", "POST", job1, api.job)
    router.add("instance", "POST", job1 + "/batch", api.add_batch)
    router.add("instance", "GET", job1 + "/batch", api.batches)
    router.add("instance", "GET", batch1, api.batch)
    router.add("instance", "GET", batch1 + "/request", api.batch_request)
    router.add("instance", "GET", batch1 + "/result", api.result_list)
    router.add("instance", "GET", batch1 + rf"/result/(?P<result>{ID_RE})", api.result)
    return api
