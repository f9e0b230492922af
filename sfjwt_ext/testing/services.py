"""What an API's handlers may use of the org: :class:`OrgServices`, which ``LocalOrg`` implements.

The handlers of every API folder (``oauth/``, ``rest/``, ``bulk2/`` ...) are typed against this
protocol, not against ``LocalOrg``: they see the org's identity and URLs, its users and
sessions, its apps, its record store and router, and its session check; never its lifecycle,
test controls or private state. A test (tests/test_testing_layout.py) keeps it that way, and
keeps the import graph of sfjwt_ext/testing free of cycles.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Protocol

from .apps.models import AppRegistry
from .core.http import Router
from .core.sessions import OrgUser, Session, SessionGate, SessionTable
from .core.store import Store
from .oauth.tokens import TokenSigner

__all__ = ["OrgServices"]


class OrgServices(SessionGate, Protocol):
    """The narrow face of the org its API handlers use (``require_session`` and
    ``session_error`` come from :class:`~.core.sessions.SessionGate`)."""

    org_id: str
    api_version: str            # the newest version the org serves
    page_size: int              # REST query page size
    login_url: str
    instance_url: str
    exp_leeway: float           # seconds of clock skew tolerated on a JWT's exp
    login_rate_limit: Optional[int]
    reject_sessions: bool       # test control: every API refuses every session
    api_requests: int           # API calls so far (Sforce-Limit-Info, /limits)
    users: Dict[str, OrgUser]   # by lower-cased username
    session_table: SessionTable
    app_registry: AppRegistry
    token_signer: TokenSigner
    store: Store
    router: Router

    @property
    def audiences(self) -> List[str]: ...

    @property
    def sessions(self) -> List[Session]: ...

    def user_by_id(self, user_id: str) -> Optional[OrgUser]: ...

    def revoke(self, access_token: str) -> None: ...
