"""The org's users and sessions (state, no HTTP): who may log in, which tokens are live.

``SessionTable`` owns every session, the reuse of a live session per (user, app) and the
per-user login history of the hourly login limit; ``UserDirectory`` the users by username and
by id. Both work under the org's lock (``lock``), which the OAuth handler holds across its
user checks and the session it issues.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, List, Optional, Protocol, Tuple

from .http import Request, Response

__all__ = ["OrgUser", "Session", "SessionGate", "SessionTable", "UserDirectory", "bearer"]


@dataclass
class Session:
    token: str = field(repr=False)
    user_id: str
    consumer_key: str
    issued_at: float
    last_used: float
    valid: bool = True
    token_format: str = "opaque"    # "jwt": a JWT-based access token (oauth/tokens.py)


@dataclass
class OrgUser:
    user_id: str
    username: str
    approved: bool = True
    active: bool = True
    app_access: bool = True
    name: str = ""
    email: str = ""
    #: "Modify Metadata Through Metadata API Functions" / "Modify All Data": the Metadata API needs one
    modify_metadata: bool = True


class SessionGate(Protocol):
    """What checks a request's session (the org): raises ``HTTPError`` with the API's own refusal."""

    def require_session(self, request: Request, api: str = "rest", token: Optional[str] = None) -> Session: ...

    def session_error(self, request: Request, api: str, message: str) -> Response: ...


def bearer(request: Request) -> Optional[str]:
    """The token of an ``Authorization: Bearer|OAuth <token>`` header, or None."""
    auth = request.headers.get("Authorization") or ""
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return None


class UserDirectory:
    """The org's users by username (lower-cased: ``by_name``) and by 15- and 18-character id."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.by_name: Dict[str, OrgUser] = {}
        self._by_id: Dict[str, OrgUser] = {}

    def add(self, user: OrgUser) -> None:
        with self.lock:
            self.by_name[user.username.lower()] = user
            self._by_id[user.user_id] = user
            self._by_id[user.user_id[:15]] = user

    def by_id(self, user_id: str) -> Optional[OrgUser]:
        with self.lock:
            return self._by_id.get(user_id)


class SessionTable:
    """Every session of the org by token; ``inactivity_timeout`` (seconds, or None) ends idle ones."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.inactivity_timeout: Optional[float] = None
        self._by_token: Dict[str, Session] = {}
        self._by_login: Dict[Tuple[str, str], Session] = {}
        self._logins: Dict[str, Deque[float]] = collections.defaultdict(collections.deque)

    def all(self) -> List[Session]:
        with self.lock:
            return list(self._by_token.values())

    def known(self, token: Optional[str]) -> bool:
        with self.lock:
            return (token or "") in self._by_token

    def user_of(self, token: Optional[str]) -> str:
        """The user id of ``token``'s session (live or not), "" when unknown."""
        with self.lock:
            s = self._by_token.get(token or "")
            return s.user_id if s else ""

    def live(self, token: Optional[str]) -> Optional[Session]:
        """The live session for ``token`` (its inactivity timer reset), or None."""
        if not token:
            return None
        now = time.monotonic()
        with self.lock:
            s = self._by_token.get(token)
            if s is None or not s.valid:
                return None
            timeout = self.inactivity_timeout
            if timeout is not None and now - s.last_used > timeout:
                s.valid = False
                return None
            s.last_used = now
            return s

    def is_valid(self, token: str) -> bool:
        """Whether ``token`` would be accepted now (does not reset the inactivity timer)."""
        with self.lock:
            s = self._by_token.get(token)
            if s is None or not s.valid:
                return False
            timeout = self.inactivity_timeout
            return timeout is None or time.monotonic() - s.last_used <= timeout

    def invalidate(self, token: str) -> None:
        with self.lock:
            s = self._by_token.get(token)
            if s is not None:
                s.valid = False

    def expire_all(self) -> None:
        with self.lock:
            for s in self._by_token.values():
                s.valid = False

    def count_login(self, user_id: str, limit: Optional[int], now_wall: float) -> bool:
        """Record a login of ``user_id``; False (not recorded) when ``limit`` logins in the last
        hour were reached already."""
        if limit is None:
            return True
        with self.lock:
            logins = self._logins[user_id]
            while logins and logins[0] < now_wall - 3600:
                logins.popleft()
            if len(logins) >= limit:
                return False
            logins.append(now_wall)
            return True

    def reuse_or_add(self, user_id: str, consumer_key: str, make: Callable[[], Session]) -> Session:
        """The live session of this user and app (Salesforce reuses it), else ``make()``'s, kept."""
        key = (user_id, consumer_key)
        with self.lock:
            existing = self._by_login.get(key)
            if existing is not None and self.live(existing.token) is not None:
                return existing
            session = make()
            self._by_token[session.token] = session
            self._by_login[key] = session
            return session
