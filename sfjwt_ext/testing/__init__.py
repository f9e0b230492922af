"""The local Salesforce org: a real HTTPS server on 127.0.0.1 for tests and demos.

    from sfjwt_ext.testing import LocalOrg

    with LocalOrg.with_app() as org:      # started, one External Client App and one approved user
        creds = org.credentials
        # creds.connect_kwargs() -> connect_jwt(**...), creds.env() -> SF_* variables

Names are imported on first use so that the pytest plugin (loaded for every pytest run)
stays cheap. This package imports nothing of the sfjwt_ext client.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "LocalOrg": "org",
    "OrgCredentials": "org",
    "RequestRecord": "org",
    "OrgApp": "apps.models",
    "ApexRequest": "rest.handlers",
    "Session": "core.sessions",
    "Request": "core.http",
    "Response": "core.http",
    "HTTPError": "core.http",
    "Router": "core.http",
}

# Written out (not list(_EXPORTS)) so that type checkers read it; tests/test_public_names.py
# keeps the two equal.
__all__ = [
    "LocalOrg",
    "OrgCredentials",
    "RequestRecord",
    "OrgApp",
    "ApexRequest",
    "Session",
    "Request",
    "Response",
    "HTTPError",
    "Router",
]


def __getattr__(name: str) -> Any:
    try:
        module_name = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'sfjwt_ext.testing' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from .apps.models import OrgApp
    from .core.http import HTTPError, Request, Response, Router
    from .core.sessions import Session
    from .org import LocalOrg, OrgCredentials, RequestRecord
    from .rest.handlers import ApexRequest
