"""The local org's OAuth endpoints on the login host: the JWT bearer token endpoint,
revoke, the identity URL (``/id/<org>/<user>``) and ``/services/oauth2/userinfo``.

The session table itself belongs to the org (``core/sessions.py``: ``org.session_table``,
``org.require_session``, ``org.expire_all_sessions``): every API checks tokens there.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import string
import time
from typing import Any, Dict, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ..core.http import HTTPError, Request, Response, empty_response, json_response
from ..core.sessions import OrgUser, Session, bearer

from ..apps.models import OrgApp
from ..services import OrgServices

__all__ = ["OAuthService", "Session", "JWT_BEARER", "TOKEN_ALPHABET", "b64url_decode"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_ALPHABET = string.ascii_letters + string.digits + "._"
_NUMERIC_EXP = re.compile(r"[+-]?\d+(?:\.\d+)?")


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class _TokenError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(error)
        self.error = error
        self.description = description


class OAuthService:
    """The token, revoke, identity and userinfo handlers of one org."""

    def __init__(self, org: OrgServices) -> None:
        self.org = org

    def token(self, request: Request) -> Response:
        form = request.form()
        try:
            session = self._login(form)
        except _TokenError as exc:
            return json_response({"error": exc.error, "error_description": exc.description}, status=400)
        body = {
            "access_token": session.token,
            "scope": "api full",
            "instance_url": self.org.instance_url,
            "id": f"{self.org.login_url}/id/{self.org.org_id}/{session.user_id}",
            "token_type": "Bearer",
        }
        if session.token_format == "jwt":
            body["token_format"] = "jwt"
        return json_response(body)

    def _login(self, form: Dict[str, str]) -> Session:
        if form.get("grant_type") != JWT_BEARER:
            raise _TokenError("unsupported_grant_type", "grant type not supported")
        assertion = form.get("assertion") or ""
        parts = assertion.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not a JWS")
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("not objects")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _TokenError("invalid_grant", "invalid assertion") from None
        app = self.org.app_registry.get(str(claims.get("iss") or ""))
        refused = self.org.app_registry.app_refusal(app)
        if refused is not None or app is None:
            raise _TokenError(*(refused or ("invalid_client_id", "client identifier invalid")))
        if header.get("alg") != "RS256" or app.public_key is None:   # no certificate: JWT bearer flow off
            raise _TokenError("invalid_grant", "invalid assertion")
        try:
            app.public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"),
                                  padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError, UnicodeEncodeError):
            raise _TokenError("invalid_grant", "invalid assertion") from None
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        accepted = self.org.audiences
        if not any(isinstance(a, str) and a.rstrip("/") in accepted for a in auds):
            raise _TokenError("invalid_grant", "audience is invalid")
        exp = self._parse_exp(claims.get("exp"))
        if exp is None:
            raise _TokenError("invalid_grant", "invalid assertion")
        if exp + self.org.exp_leeway < time.time():
            raise _TokenError("invalid_grant", "expired authorization code")
        with self.org.session_table.lock:
            user = self.org.users.get(str(claims.get("sub") or "").lower())
            if user is None:
                raise _TokenError("invalid_grant", "invalid user")
            if not user.active:
                raise _TokenError("invalid_grant", "inactive user")
            if not user.approved:
                raise _TokenError("invalid_grant", "user hasn't approved this consumer")
            if not user.app_access:
                raise _TokenError("invalid_app_access", "user is not admin approved to access this app")
            policy = self.org.app_registry.refusal(app, user.user_id, user.approved)
            if policy is not None:
                raise _TokenError(*policy)
            now_wall = time.time()
            if not self.org.session_table.count_login(user.user_id, self.org.login_rate_limit, now_wall):
                raise _TokenError("rate_limit_exceeded", "number of logins exceeded")
            return self._session_for(user, app, now_wall)

    def _session_for(self, user: OrgUser, app: OrgApp, now_wall: float) -> Session:
        """The live session of this user and app (Salesforce reuses it), else a new one: an opaque
        ``00D...!...`` token, or a JWT-based one when the app issues them. Under the org's lock."""
        def new_session() -> Session:
            if app.jwt_access_tokens:
                token = self.org.token_signer.mint(user_id=user.user_id, consumer_key=app.consumer_key,
                                                   instance_url=self.org.instance_url, scopes=app.scope_values())
            else:
                token = self.org.org_id[:15] + "!" + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(96))
            return Session(token=token, user_id=user.user_id, consumer_key=app.consumer_key, issued_at=now_wall,
                           last_used=time.monotonic(), token_format="jwt" if app.jwt_access_tokens else "opaque")

        return self.org.session_table.reuse_or_add(user.user_id, app.consumer_key, new_session)

    @staticmethod
    def _parse_exp(value: Any) -> Optional[float]:
        """``exp`` as seconds since the epoch: an int, a float, a numeric string or
        milliseconds (either form); None for anything else, including NaN and infinities
        (JSON ``NaN`` / ``Infinity`` or the strings "nan" / "inf" must not mean "never expires")."""
        if isinstance(value, bool):
            return None
        if isinstance(value, str):
            text = value.strip()
            if not _NUMERIC_EXP.fullmatch(text):
                return None
            value = float(text)
        if not isinstance(value, (int, float)):
            return None
        seconds = float(value)
        if not math.isfinite(seconds):
            return None
        return seconds / 1000.0 if seconds > 10 ** 11 else seconds

    def revoke(self, request: Request) -> Response:
        token = request.form().get("token") or request.query.get("token")
        if not self.org.session_table.known(token):
            return json_response({"error": "unsupported_token_type", "error_description": "this token type is not supported"},
                                 status=400)
        self.org.revoke(token or "")
        return empty_response(200)

    def _identity_session(self, request: Request) -> Session:
        token = bearer(request) or request.query.get("oauth_token")
        if self.org.reject_sessions:
            raise HTTPError(self.org.session_error(request, "rest", "This session is not valid for use with the REST API"))
        session = self.org.session_table.live(token)
        if session is None:
            raise HTTPError(json_response([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                                          status=401))
        return session

    def _identity_body(self, user: OrgUser) -> Dict[str, Any]:
        first, _, last = user.name.rpartition(" ")
        base = self.org.instance_url
        return {
            "id": f"{self.org.login_url}/id/{self.org.org_id}/{user.user_id}",
            "asserted_user": True,
            "user_id": user.user_id,
            "organization_id": self.org.org_id,
            "username": user.username,
            "nick_name": user.username.split("@")[0],
            "display_name": user.name,
            "email": user.email,
            "email_verified": True,
            "first_name": first or None,
            "last_name": last or user.name,
            "timezone": "America/Los_Angeles",
            "photos": {"picture": f"{base}/profilephoto/005/F", "thumbnail": f"{base}/profilephoto/005/T"},
            "active": user.active,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": -28800000,
            "is_app_installed": True,
            "urls": {
                "enterprise": f"{base}/services/Soap/c/{{version}}/{self.org.org_id[:15]}",
                "metadata": f"{base}/services/Soap/m/{{version}}/{self.org.org_id[:15]}",
                "partner": f"{base}/services/Soap/u/{{version}}/{self.org.org_id[:15]}",
                "rest": f"{base}/services/data/v{{version}}/",
                "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
                "search": f"{base}/services/data/v{{version}}/search/",
                "query": f"{base}/services/data/v{{version}}/query/",
                "recent": f"{base}/services/data/v{{version}}/recent/",
                "tooling_soap": f"{base}/services/Soap/T/{{version}}/{self.org.org_id[:15]}",
                "tooling_rest": f"{base}/services/data/v{{version}}/tooling/",
                "profile": f"{base}/{user.user_id}",
                "custom_domain": base,
            },
        }

    def identity(self, request: Request) -> Response:
        self._identity_session(request)
        assert request.match is not None
        user = self.org.user_by_id(request.match.group("user"))
        if user is None or request.match.group("org") not in (self.org.org_id, self.org.org_id[:15]):
            return json_response([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                                 status=404)
        return json_response(self._identity_body(user))

    def userinfo(self, request: Request) -> Response:
        """OpenID Connect claims (``sub`` is the identity URL), not the identity body: the
        identity's own names (``id``, ``username``, ``display_name``, ``first_name``...) are absent."""
        session = self._identity_session(request)
        user = self.org.user_by_id(session.user_id)
        assert user is not None   # users are never removed
        identity = self._identity_body(user)
        updated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session.issued_at))
        return json_response({
            "sub": identity["id"],
            "user_id": user.user_id,
            "organization_id": self.org.org_id,
            "preferred_username": user.username,
            "nickname": identity["nick_name"],
            "name": user.name,
            "email": user.email,
            "email_verified": True,
            "given_name": identity["first_name"],
            "family_name": identity["last_name"],
            "zoneinfo": identity["timezone"],
            "photos": identity["photos"],
            "profile": identity["urls"]["profile"],
            "picture": identity["photos"]["picture"],
            "address": {"country": "US"},
            "is_salesforce_integration_user": False,
            "urls": identity["urls"],
            "active": user.active,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": identity["utcOffset"],
            "updated_at": updated,
            "is_app_installed": True,
        })


