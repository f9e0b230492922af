"""The SOAP Metadata API route of the local org (``POST /services/Soap/m/XX.X``)."""
from __future__ import annotations

from ..core.http import Router
from ..core.jobs import VERSION_RE
from ..services import OrgServices
from .handlers import MetadataApi
from .models import MetadataJobs

__all__ = ["register"]


def register(router: Router, org: OrgServices, jobs: MetadataJobs) -> MetadataApi:
    """Add the SOAP Metadata API route for ``org`` to ``router``; ``jobs`` keeps deploys and retrieves."""
    api = MetadataApi(org, jobs)
    router.add("instance", "POST", rf"/services/Soap/m/{VERSION_RE}(?:/.*)?", api.soap_metadata)
    return api
