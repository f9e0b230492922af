"""The search handlers of the local org: ``GET /search?q=<SOSL>`` and ``/parameterizedSearch``
(GET and POST); the language itself is :mod:`.sosl`."""
from __future__ import annotations

from typing import Callable

from ..core.http import Request, Response, json_response
from ..core.soql import SoqlError
from ..core.versions import with_api_version
from ..services import OrgServices
from .sosl import Search, parameterized, parse_sosl, run_search

__all__ = ["SearchRoutes"]


class SearchRoutes:
    """The search handlers of one org."""

    def __init__(self, org: OrgServices) -> None:
        self.org = org

    def _answer(self, request: Request, make: Callable[[], Search]) -> Response:
        self.org.require_session(request)
        try:
            found = run_search(self.org.store, make())
            assert request.match is not None
            return json_response(with_api_version(found, self.org.store.api_version, request.match.group("version")))
        except SoqlError as exc:
            return json_response(exc.to_json(), status=exc.status)

    def sosl(self, request: Request) -> Response:
        text = request.query.get("q") or ""
        return self._answer(request, lambda: parse_sosl(text))

    def parameterized(self, request: Request) -> Response:
        body = request.json() if request.method == "POST" else None
        return self._answer(request, lambda: parameterized(request.query, request.query_lists, body))


