"""Connect REST's OAuth resources for External Client Apps, on the instance host:

- ``GET /services/data/vXX.X/apps/oauth/usage`` (59.0+): the ECAs, paged (``page`` from 0,
  ``pageSize`` default 100): ``{"apps": [{"developerName", "identifier", "name", "userCount",
  "usersUrl"}], "currentPageUrl", "nextPageUrl"}`` (App OAuth Usage Collection).
- ``GET .../apps/oauth/usage/{app}/users`` (59.0+): the users holding a session of the app.
- ``GET .../apps/oauth/credentials/{app}`` (60.0+): ``{"consumers": [App Oauth Credentials]}``.
- ``GET .../apps/oauth/credentials/{app}/{consumer}?part=key|secret|keyandsecret`` (60.0+): one
  App Oauth Credentials: ``id`` (888...), ``key`` (the consumer key in effect), ``name``, ``url``,
  ``secret`` only when ``part`` asks for it, ``stagedCredentialsUrl`` from 65.0.

``{app}`` is the app's identifier (0xI..., 15 or 18 characters) or its API name. An unknown app
or consumer, or a version below the resource's, is 404 NOT_FOUND as Salesforce answers.
"""
from __future__ import annotations

from typing import Any, Dict, List, Set

from .models import ECA, OrgApp
from ..core.http import HTTPError, Request, Response, json_response
from ..services import OrgServices


__all__ = ["ConnectAppsApi"]

_PARTS = ("key", "secret", "keyandsecret")


def _not_found() -> HTTPError:
    return HTTPError(json_response([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                                   status=404))


class ConnectAppsApi:
    """The ``apps/oauth`` handlers of one org."""

    def __init__(self, org: OrgServices) -> None:
        self.org = org

    def _version(self, request: Request, minimum: float) -> str:
        assert request.match is not None
        version = request.match.group("version")
        if not minimum <= float(version) <= float(self.org.api_version):
            raise _not_found()
        return version

    def _app(self, identifier: str) -> OrgApp:
        app = self.org.app_registry.find(identifier)
        if app is None or app.kind != ECA:
            raise _not_found()
        return app

    def _int_param(self, request: Request, name: str, default: int) -> int:
        text = request.query.get(name)
        if text is None or text == "":
            return default
        if not text.isdigit():
            raise HTTPError(json_response([{"errorCode": "INVALID_PARAMETER_VALUE",
                                            "message": f"Invalid value for parameter {name}: {text}"}], status=400))
        return int(text)

    def usage(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request, 59.0)
        page, size = self._int_param(request, "page", 0), max(self._int_param(request, "pageSize", 100), 1)
        apps = sorted(self.org.app_registry.all(ECA), key=lambda a: a.created)
        users: Dict[str, Set[str]] = {}
        for session in self.org.sessions:
            users.setdefault(session.consumer_key, set()).add(session.user_id)
        base = f"/services/data/v{v}/apps/oauth"
        body: List[Dict[str, Any]] = [
            {"developerName": a.developer_name, "identifier": a.app_id, "name": a.name,
             "userCount": len(users.get(a.consumer_key, ())), "usersUrl": f"{base}/usage/{a.app_id}/users"}
            for a in apps[page * size:(page + 1) * size]]
        return json_response({"apps": body, "currentPageUrl": f"{base}/usage?page={page}&pageSize={size}",
                              "nextPageUrl": f"{base}/usage?page={page + 1}&pageSize={size}"})

    def users(self, request: Request) -> Response:
        """``GET .../apps/oauth/usage/{app}/users``: who holds a session of the app (App OAuth Usage
        User Collection; each user as ``userIdentifier`` and ``username``, the names the usage
        token resource uses)."""
        self.org.require_session(request)
        v = self._version(request, 59.0)
        assert request.match is not None
        app = self._app(request.match.group("app"))
        page, size = self._int_param(request, "page", 0), max(self._int_param(request, "pageSize", 100), 1)
        ids = sorted({s.user_id for s in self.org.sessions if s.consumer_key == app.consumer_key})
        by_id = {u.user_id: u.username for u in self.org.users.values()}
        base = f"/services/data/v{v}/apps/oauth/usage/{app.app_id}/users"
        return json_response({"users": [{"userIdentifier": i, "username": by_id.get(i, "")}
                                        for i in ids[page * size:(page + 1) * size]],
                              "currentPageUrl": f"{base}?page={page}&pageSize={size}",
                              "nextPageUrl": f"{base}?page={page + 1}&pageSize={size}"})

    def _credentials(self, app: OrgApp, version: str, part: str = "key") -> Dict[str, Any]:
        url = f"/services/data/v{version}/apps/oauth/credentials/{app.app_id}/{app.consumer_id}"
        out: Dict[str, Any] = {"id": app.consumer_id, "name": app.name, "url": url}
        if part in ("key", "keyandsecret"):
            out["key"] = app.consumer_key
        if part in ("secret", "keyandsecret"):
            out["secret"] = app.consumer_secret
        if float(version) >= 65.0:
            out["stagedCredentialsUrl"] = url + "/staged"
        return out

    def consumers(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request, 60.0)
        assert request.match is not None
        app = self._app(request.match.group("app"))
        return json_response({"consumers": [self._credentials(app, v)]})

    def consumer(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request, 60.0)
        assert request.match is not None
        app = self._app(request.match.group("app"))
        consumer = request.match.group("consumer")
        if consumer[:15] != app.consumer_id[:15]:
            raise _not_found()
        part = (request.query.get("part") or "key").lower()
        if part not in _PARTS:
            raise HTTPError(json_response([{"errorCode": "INVALID_PARAMETER_VALUE",
                                            "message": f"Invalid value for parameter part: {part}. Valid values "
                                                       "are key, secret, keyandsecret"}], status=400))
        return json_response(self._credentials(app, v, part))


