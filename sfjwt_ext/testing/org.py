"""``LocalOrg``: a local Salesforce org over HTTPS on 127.0.0.1.

Two TLS listeners with ephemeral ports: the *login host* (``login_url``: token endpoint,
identity, userinfo, revoke) and the *instance host* (``instance_url``: REST, Tooling, Apex
REST, Bulk and SOAP Metadata; and the token endpoint, as a My Domain answers it). A client that
ignores ``instance_url`` gets 404 from the login host for ``/services/data``.

This module holds the org's lifecycle (listeners), its users and apps (state in
``apps/models.py``: External Client Apps and legacy Connected Apps), its sessions
(``core/sessions.py``; ``require_session``), the test controls (faults, expiry, revocation)
and what tests observe (requests, assertions, counters). Each API is a folder whose
``routes.register(router, org, ...)`` adds its routes: ``oauth/``, ``rest/``, ``bulk2/``,
``bulk1/``, ``metadata/``, ``composite/``, ``search/``, ``apps/``. Their handlers see the org
as :class:`~.services.OrgServices` and check tokens with
``org.require_session(request, api="bulk1" | "bulk2" | "soap" | "rest")``. The async APIs'
jobs and test controls are on ``org.bulk`` (:class:`AsyncJobs`).

This module imports nothing of the sfjwt_ext client.
"""
from __future__ import annotations

import binascii
import collections
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple
from xml.sax.saxutils import escape as xml_escape

from cryptography.hazmat.primitives import serialization

from . import sample
from .apps import routes as apps_routes
from .bulk1 import routes as bulk1_routes
from .bulk1.formats import bulk1_error_response
from .bulk1.models import Bulk1Job, Bulk1Jobs
from .bulk2 import routes as bulk2_routes
from .bulk2.models import Bulk2Job, Bulk2Jobs
from .composite import routes as composite_routes
from .core import tls
from .core.jobs import JobControls
from .metadata import routes as metadata_routes
from .metadata.models import MetadataJobs
from .oauth import routes as oauth_routes
from .rest import routes as rest_routes
from .search import routes as search_routes
from .oauth.tokens import TokenSigner, soap_refuses
from .apps.models import ADMIN_APPROVED, CONNECTED_APP, ECA, SELF_AUTHORIZED, AppRegistry, OrgApp, load_public_key, \
    new_consumer_key
from .core.http import (
    SOAP_CONTENT_TYPE,
    HTTPError,
    Request,
    Response,
    Router,
    ServerThread,
    json_response,
    xml_response,
)
from .core.ids import random_id
from .oauth.handlers import b64url_decode
from .core.sessions import OrgUser, Session, SessionTable, UserDirectory, bearer
from .core.store import Store
from .core.schema import FieldDef, ObjectDef
from .rest.handlers import ApexRequest

__all__ = ["LocalOrg", "OrgCredentials", "RequestRecord", "ApexRequest", "Session", "ConnectedApp", "OrgApp",
           "OrgUser"]

log = logging.getLogger("sfjwt_ext.testing.org")

#: the newest API version the org serves (Winter '27); older ones down to 20.0 are served too
LATEST_API_VERSION = "68.0"
DEFAULT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass(frozen=True)
class RequestRecord:
    host: str      # "login" | "instance"
    method: str
    path: str
    status: int    # 0 when the connection was dropped
    #: time.monotonic() when the org got the request (before api_latency) and answered it
    started: float = field(default=0.0, compare=False)
    ended: float = field(default=0.0, compare=False)


#: the name apps had before External Client Apps (an app of either kind is an ``OrgApp``)
ConnectedApp = OrgApp


class AsyncJobs(JobControls):
    """``org.bulk``: the async APIs' test controls (:class:`~.core.jobs.JobControls`) and their
    job stores, one per API: ``bulk2`` (query and ingest jobs), ``bulk1``, ``metadata``."""

    def __init__(self, org_id: str) -> None:
        super().__init__(org_id)
        self.bulk2 = Bulk2Jobs(self)
        self.bulk1 = Bulk1Jobs(self)
        self.metadata = MetadataJobs(self)

    @property
    def bulk2_jobs(self) -> Dict[str, Bulk2Job]:
        """Bulk API 2.0 query jobs by id."""
        return self.bulk2.query

    @property
    def bulk1_jobs(self) -> Dict[str, Bulk1Job]:
        """Bulk API 1.0 jobs by id."""
        return self.bulk1.jobs


@dataclass
class _Fault:
    status: Optional[int]
    body: bytes
    content_type: Optional[str]
    headers: Dict[str, str]
    drop: bool
    delay: float


@dataclass
class OrgCredentials:
    """Everything a client needs to log in to a ``LocalOrg`` as one user of one app."""

    username: str
    consumer_key: str
    private_key_file: str
    certificate_file: str
    login_url: str
    ca_file: str
    user_id: str

    def connect_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for ``connect_jwt``."""
        return {"username": self.username, "consumer_key": self.consumer_key,
                "private_key_file": self.private_key_file, "login_url": self.login_url,
                "verify": self.ca_file}

    def env(self) -> Dict[str, str]:
        """The ``SF_*`` environment variables for the same login."""
        return {"SF_USERNAME": self.username, "SF_CONSUMER_KEY": self.consumer_key,
                "SF_PRIVATE_KEY_FILE": self.private_key_file, "SF_LOGIN_URL": self.login_url,
                "SF_CA_BUNDLE": self.ca_file}


class LocalOrg:
    """A local Salesforce org for tests and demos. Use as a context manager or start()/stop().

    See docs/architecture.md for the contract. Beyond it: ``router`` (the ``http.Router``),
    ``require_session(request, api=...)`` (token check for route handlers), ``users``,
    ``apps``, ``exp_leeway`` (seconds of clock skew tolerated on ``exp``, default 5).
    """

    exp_leeway: float = 5.0

    def __init__(self, *, audiences: Optional[Iterable[str]] = None, page_size: int = 2000,
                 login_rate_limit: Optional[int] = None, api_version: str = LATEST_API_VERSION,
                 login_port: int = 0, instance_port: int = 0, name: str = "sfjwt local org",
                 app_propagation_delay: float = 0.0) -> None:
        self.api_version = api_version
        self.page_size = page_size
        self.login_rate_limit = login_rate_limit
        self.name = name
        self.org_id = random_id("00D")
        self._extra_audiences = list(audiences) if audiences is not None else None
        self._ports = (login_port, instance_port)
        self._lock = threading.RLock()
        self.user_directory = UserDirectory(self._lock)
        self.users: Dict[str, OrgUser] = self.user_directory.by_name   # by username (lower-cased)
        self.session_table = SessionTable(self._lock)
        self._faults: Dict[str, Deque[_Fault]] = {"token": collections.deque(), "api": collections.deque(),
                                                  "identity": collections.deque()}
        #: seconds every instance (API) request waits before it is answered, as a real org's
        #: round trip would; slept in the request's own thread with no lock held
        self.api_latency: float = 0.0
        self.reject_sessions: bool = False
        self.requests: List[RequestRecord] = []
        self.assertions: List[Tuple[Dict[str, Any], Dict[str, Any]]] = []
        self.token_requests = 0
        self.api_requests = 0
        self._tmpdir: Optional[str] = None
        self._servers: List[ServerThread] = []
        self._stopping = threading.Event()  # set by stop(): wakes handlers sleeping in an injected delay
        self.login_url = ""
        self.instance_url = ""
        self.token_url = ""
        self.ca_file = ""
        self._credentials: Optional[OrgCredentials] = None
        # the Store creates the Organization record itself (Id = org_id, Name, IsSandbox false, ...)
        self.store = Store(org_id=self.org_id, api_version=api_version, org_name=name)
        self.app_registry = AppRegistry(self._lock, self.store)
        self.app_registry.propagation_delay = float(app_propagation_delay)
        #: the apps (External Client Apps and Connected Apps) by consumer key
        self.apps: Dict[str, OrgApp] = self.app_registry.by_key
        self.token_signer = TokenSigner(self.org_id)
        self.router = Router()
        self.bulk = AsyncJobs(self.org_id)
        self.oauth = oauth_routes.register(self.router, self)
        self.rest, _ = rest_routes.register(self.router, self)
        self.bulk2, self.ingest = bulk2_routes.register(self.router, self, self.bulk.bulk2)
        bulk1_routes.register(self.router, self, self.bulk.bulk1)
        metadata_routes.register(self.router, self, self.bulk.metadata)
        composite_routes.register(self.router, self)
        search_routes.register(self.router, self)
        apps_routes.register(self.router, self)

    @classmethod
    def with_app(cls, folder: Any = None, *, username: str = "user@example.com", **options: Any) -> "LocalOrg":
        """A started org with one External Client App and one approved user, their ``OrgCredentials``
        in ``org.credentials`` (what the ``salesforce_org`` fixture gives a test). The key pair
        is written into ``folder`` (default: the org's own temp folder, removed by ``stop()``).
        ``options`` go to ``LocalOrg(...)``. Use it as a context manager, or call ``stop()``."""
        org = cls(**options)
        org.start()
        try:
            target = folder if folder is not None else os.path.join(str(org._tmpdir), "app")
            org.credentials = org.new_app_with_key(target, username=username)
        except BaseException:
            org.stop()
            raise
        return org

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "LocalOrg":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._servers else "stopped"
        return f"<LocalOrg {self.org_id} {state} login_url={self.login_url!r} instance_url={self.instance_url!r}>"

    @property
    def credentials(self) -> OrgCredentials:
        """The key, consumer key and user that ``with_app()`` (or the ``salesforce_org`` fixture)
        made; ``LookupError`` naming what to do for an org started without them."""
        if self._credentials is None:
            raise LookupError("this LocalOrg has no credentials yet: start it with LocalOrg.with_app(), or set "
                              "org.credentials = org.new_app_with_key(folder)")
        return self._credentials

    @credentials.setter
    def credentials(self, value: OrgCredentials) -> None:
        self._credentials = value

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def start(self) -> "LocalOrg":
        if self._servers:
            return self
        context = tls.server_ssl_context()
        self._stopping.clear()
        self._tmpdir = tempfile.mkdtemp(prefix="sfjwt-local-org-")
        self.ca_file = tls.write_ca_file(self._tmpdir)
        servers = []
        try:
            for role, port in zip(("login", "instance"), self._ports):
                servers.append(ServerThread(role=role, app=self._app, ssl_context=context, context=self, port=port))
        except BaseException:
            for s in servers:
                s.server.server_close()
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise
        for s in servers:
            s.start()
        self._servers = servers
        self.login_url = f"https://127.0.0.1:{servers[0].port}"
        self.instance_url = f"https://127.0.0.1:{servers[1].port}"
        self.token_url = self.login_url + "/services/oauth2/token"
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        self._stopping.set()  # a handler in an injected delay drops its connection now
        for s in servers:
            s.request_stop()
        for s in servers:
            s.stop()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @property
    def audiences(self) -> List[str]:
        base = list(self._extra_audiences) if self._extra_audiences is not None else list(DEFAULT_AUDIENCES)
        if self.login_url and self._extra_audiences is None:
            base.insert(0, self.login_url)
        return [a.rstrip("/") for a in base]

    # ------------------------------------------------------------------ setup
    def create_app(self, *, certificate: Any = None, public_key: Any = None, name: str = "sfjwt test app",
                   kind: str = ECA, developer_name: Optional[str] = None, consumer_key: Optional[str] = None,
                   jwt_access_tokens: bool = False, permitted_users: Optional[str] = None,
                   profiles: Optional[Iterable[str]] = None, permission_sets: Optional[Iterable[str]] = None) -> str:
        """Register an app whose JWT bearer flow takes this certificate; returns its consumer key.

        ``kind``: ``"eca"`` (an External Client App, the default: what Salesforce creates since
        Spring '26) or ``"connected_app"`` (a legacy one). ``certificate``: an ``x509.Certificate``
        or PEM; ``public_key``: an RSA public key object or PEM. ``jwt_access_tokens``: the app
        issues JWT-based access tokens. Policy: an ECA defaults to "Admin approved users are
        pre-authorized" with the System Administrator profile (every ``add_user`` user has it)
        unless ``profiles`` / ``permission_sets`` are given; a Connected App to "All users may
        self-authorize" (the user's ``approved`` flag). ``consumer_key``: default generated.
        """
        if kind not in (ECA, CONNECTED_APP):
            raise ValueError(f"kind must be {ECA!r} or {CONNECTED_APP!r}, not {kind!r}")
        key, pem = load_public_key(certificate, public_key)
        if permitted_users is None:
            permitted_users = ADMIN_APPROVED if kind == ECA else SELF_AUTHORIZED
        if kind == ECA and profiles is None and permission_sets is None:
            profiles = ("System Administrator",)
        app = OrgApp(consumer_key or new_consumer_key(), name, key, kind=kind, developer_name=developer_name or "",
                     certificate_pem=pem, jwt_access_tokens=jwt_access_tokens, permitted_users=permitted_users,
                     profiles=tuple(profiles or ()), permission_sets=tuple(permission_sets or ()))
        return self.app_registry.add(app).consumer_key

    def set_app(self, consumer_key: str, **changes: Any) -> OrgApp:
        """Change an app's settings (``OrgApp`` fields: ``installed``, ``enabled``,
        ``jwt_access_tokens``, ``profiles``, ``permission_sets``, ``permitted_users``...), as a
        Setup edit would: the app propagates again for ``app_propagation_delay`` seconds."""
        app = self.app_registry.get(consumer_key)
        if app is None:
            raise KeyError(f"no app with consumer key {consumer_key[:9]}...")
        return self.app_registry.change(app, **changes)

    @property
    def external_client_apps_enabled(self) -> bool:
        """False: a deploy of any ECA component fails ("Not available for deploy for this organization")."""
        return self.app_registry.ecas_enabled

    @external_client_apps_enabled.setter
    def external_client_apps_enabled(self, enabled: bool) -> None:
        self.app_registry.ecas_enabled = bool(enabled)

    @property
    def app_propagation_delay(self) -> float:
        """Seconds a new or changed app answers ``invalid_client_id`` (Salesforce: up to ~10 min)."""
        return self.app_registry.propagation_delay

    @app_propagation_delay.setter
    def app_propagation_delay(self, seconds: float) -> None:
        self.app_registry.propagation_delay = float(seconds)

    def create_permission_set(self, name: str, *, label: Optional[str] = None) -> str:
        """A PermissionSet record (as Setup or ``POST /sobjects/PermissionSet`` makes it); its 0PS id."""
        return self.store.insert("PermissionSet", [{"Name": name, "Label": label or name}])[0]

    def assign_permission_set(self, username: str, permission_set: str) -> str:
        """Assign the permission set named (API name or Id) ``permission_set`` to ``username``;
        returns the PermissionSetAssignment id."""
        user = self.users[username.lower()]
        found = self.store.query("SELECT Id, Name FROM PermissionSet").records
        ps = next((r["Id"] for r in found if r["Name"] == permission_set or r["Id"][:15] == permission_set[:15]), None)
        if ps is None:
            raise KeyError(f"no permission set {permission_set!r}: create_permission_set() first")
        return self.store.insert("PermissionSetAssignment", [{"AssigneeId": user.user_id, "PermissionSetId": ps}])[0]

    def add_user(self, username: str, *, approved: bool = True, active: bool = True, app_access: bool = True,
                 name: Optional[str] = None, email: Optional[str] = None) -> str:
        """Add a user (and a User record in the store); returns its 005 id."""
        display = name or username.split("@")[0].replace(".", " ").title()
        mail = email or (username if "@" in username else f"{username}@example.com")
        first, _, last = display.rpartition(" ")
        record = {"Username": username, "FirstName": first or None, "LastName": last or display,
                  "Email": mail, "IsActive": active, "ProfileId": self.store.admin_profile_id}
        user_id = self.store.insert("User", [record])[0]
        user = OrgUser(user_id, username, approved, active, app_access, display, mail)
        self.user_directory.add(user)
        return user_id

    def set_user(self, username: str, **changes: Any) -> None:
        """Change ``approved`` / ``active`` / ``app_access`` / ``modify_metadata`` of an existing
        user (``active`` is the User record's ``IsActive`` too)."""
        with self._lock:
            user = self.users[username.lower()]
            for key, value in changes.items():
                if not hasattr(user, key):
                    raise AttributeError(key)
                setattr(user, key, value)
        if "active" in changes:
            self.store.update("User", user.user_id, {"IsActive": bool(changes["active"])})

    def new_app_with_key(self, folder: Any, *, username: str = "user@example.com", fresh_key: bool = False,
                         jwt_access_tokens: bool = False, kind: str = ECA, **app_options: Any) -> OrgCredentials:
        """Write ``salesforce.key`` (0600) and ``salesforce.crt`` into ``folder``, register an
        app with that certificate and an approved user; returns the credentials. The RSA key
        pair is shared by the whole process unless ``fresh_key=True``. ``kind``,
        ``jwt_access_tokens`` and ``app_options`` go to ``create_app``."""
        key, cert = tls.new_app_key_pair() if fresh_key else tls.app_key_pair()
        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        key_file = os.path.join(folder, "salesforce.key")
        cert_file = os.path.join(folder, "salesforce.crt")
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.chmod(key_file, 0o600)
        with open(cert_file, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        consumer_key = self.create_app(certificate=cert, kind=kind, jwt_access_tokens=jwt_access_tokens,
                                       **app_options)
        existing = self.users.get(username.lower())
        user_id = existing.user_id if existing else self.add_user(username)
        if not self.login_url:
            raise RuntimeError("start the org before new_app_with_key (login_url and ca_file are not known yet)")
        return OrgCredentials(username=username, consumer_key=consumer_key, private_key_file=key_file,
                              certificate_file=cert_file, login_url=self.login_url, ca_file=self.ca_file,
                              user_id=user_id)

    def insert(self, sobject: str, records: List[Dict[str, Any]]) -> List[str]:
        return self.store.insert(sobject, records)

    def load_sample_data(self) -> Dict[str, int]:
        return sample.load_sample_data(self.store)

    # custom schema (p2-schema) -------------------------------------------------
    def add_field(self, sobject: str, name: str, *, type: str, **options: Any) -> FieldDef:
        """Add the custom field ``name`` to ``sobject`` (standard or custom), as Setup would.

        ``type``: string/text, textarea, longtextarea, email, phone, url, number/double (``precision``,
        ``scale``), int, currency, percent, date, datetime, boolean/checkbox, picklist (``values``),
        reference/lookup (``reference_to``; ``relationship_name`` defaults to ``X__r``,
        ``child_relationship`` to the object's plural). Also ``label``, ``length``, ``external_id``,
        ``unique``, ``case_sensitive``, ``required``, ``default``, ``description``.
        Raises ``SchemaError`` (a ValueError) naming the argument to fix.
        """
        return self.store.add_field(sobject, name, type=type, **options)

    def define_object(self, name: str, *, fields: Optional[Dict[str, Dict[str, Any]]] = None,
                      label: Optional[str] = None, plural_label: Optional[str] = None) -> ObjectDef:
        """Create the custom object ``name`` (``Widget__c``: Id, Name, OwnerId, audit fields) with
        ``fields``: field name -> ``add_field``'s keyword arguments."""
        return self.store.define_object(name, fields=fields, label=label, plural_label=plural_label)

    def register_apex_route(self, method: str, path: str, handler: Callable[[ApexRequest], Tuple[int, Any]]) -> None:
        """Serve ``method`` ``/services/apexrest<path>``. ``path`` may end in ``*`` (any rest,
        like Apex's urlMapping). ``handler(ApexRequest) -> (status, data)``: data is JSON
        serialised unless it is str/bytes (sent as text) or None (empty body)."""
        self.rest.add_apex_route(method, path, handler)

    # ------------------------------------------------------------------ controls
    def expire_all_sessions(self) -> None:
        self.session_table.expire_all()

    def revoke(self, access_token: str) -> None:
        self.session_table.invalidate(access_token)

    def inject_fault(self, endpoint: str, *, count: int = 1, status: Optional[int] = None, body: Any = b"",
                     content_type: Optional[str] = "text/html", headers: Optional[Dict[str, str]] = None,
                     drop: bool = False, delay: float = 0.0) -> None:
        """The next ``count`` requests of ``endpoint`` ("token" | "api" | "identity") get this
        fault: ``drop`` closes the connection unanswered; else ``status`` with ``body``;
        ``delay`` sleeps first (with neither status nor drop, the normal answer follows)."""
        if endpoint not in self._faults:
            raise ValueError(f"endpoint must be 'token', 'api' or 'identity', not {endpoint!r}")
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            if content_type == "text/html":
                content_type = "application/json;charset=UTF-8"
        elif isinstance(body, str):
            body = body.encode("utf-8")
        fault = _Fault(status, bytes(body or b""), content_type, dict(headers or {}), drop, float(delay))
        with self._lock:
            for _ in range(count):
                self._faults[endpoint].append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            for q in self._faults.values():
                q.clear()

    def reset_counters(self) -> None:
        with self._lock:
            self.requests = []
            self.assertions = []
            self.token_requests = 0
            self.api_requests = 0

    @property
    def sessions(self) -> List[Session]:
        return self.session_table.all()

    @property
    def inactivity_timeout(self) -> Optional[float]:
        """Seconds a session may stay unused before it ends (None: never)."""
        return self.session_table.inactivity_timeout

    @inactivity_timeout.setter
    def inactivity_timeout(self, seconds: Optional[float]) -> None:
        self.session_table.inactivity_timeout = seconds

    # ------------------------------------------------------------------ sessions
    def user_by_id(self, user_id: str) -> Optional[OrgUser]:
        """The user with this 15- or 18-character id, or None."""
        return self.user_directory.by_id(user_id)

    def is_session_valid(self, access_token: str) -> bool:
        """Whether ``access_token`` would be accepted now (does not reset the inactivity timer)."""
        return self.session_table.is_valid(access_token)

    def require_session(self, request: Request, api: str = "rest", token: Optional[str] = None) -> Session:
        """Check the request's token for an API flavour; raise ``HTTPError`` with the error
        Salesforce gives for that API when it is missing, unknown, expired or revoked.

        api: "rest" (also Tooling, Apex REST, Bulk 2.0) -> 401 JSON INVALID_SESSION_ID;
        "bulk1" -> 400 ``InvalidSessionId`` (token from ``X-SFDC-Session``), XML or JSON like
        the request; "soap" -> 500 SOAP fault INVALID_SESSION_ID (token from ``<sessionId>``
        in the envelope unless ``token=`` is given).
        """
        if token is None:
            if api == "bulk1":
                token = request.headers.get("X-SFDC-Session") or bearer(request)
            elif api == "soap":
                m = re.search(rb"<(?:\w+:)?sessionId>\s*([^<\s]+)\s*</(?:\w+:)?sessionId>", request.body)
                token = m.group(1).decode("utf-8", "replace") if m else None
            else:
                token = bearer(request)
        if self.reject_sessions:
            raise HTTPError(self.session_error(request, api, "This session is not valid for use with the REST API"))
        if api == "soap" and soap_refuses(token, request.path):
            # a JWT-based access token: the SOAP API takes it only from API 68.0 (Winter '27)
            raise HTTPError(self.session_error(request, api, "This session is not valid for use with the API"))
        session = self.session_table.live(token)
        if session is None:
            raise HTTPError(self.session_error(request, api, "Session expired or invalid"))
        with self._lock:
            self.api_requests += 1
        return session

    def session_error(self, request: Request, api: str, message: str) -> Response:
        """The answer of ``api`` ("rest" | "bulk1" | "soap") to a refused session."""
        if api == "bulk1":
            wants_json = "json" in request.content_type or (
                "json" in (request.headers.get("Accept") or "") and "xml" not in request.content_type)
            text = "Invalid session id" if message.startswith("Session expired") else message
            return bulk1_error_response("JSON" if wants_json else "XML", "InvalidSessionId", text)
        if api == "soap":
            text = ("INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session"
                    if message.startswith("Session expired") else f"INVALID_SESSION_ID: {message}")
            return xml_response(
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
                f"<faultcode>sf:INVALID_SESSION_ID</faultcode><faultstring>{xml_escape(text)}</faultstring>"
                '<detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault">'
                "<sf:exceptionCode>INVALID_SESSION_ID</sf:exceptionCode>"
                f"<sf:exceptionMessage>{xml_escape(text)}</sf:exceptionMessage>"
                "</sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>",
                status=500, content_type=SOAP_CONTENT_TYPE)
        return json_response([{"message": message, "errorCode": "INVALID_SESSION_ID"}], status=401,
                             headers={"WWW-Authenticate": 'Token'})

    # ------------------------------------------------------------------ request pipeline
    @staticmethod
    def _endpoint(request: Request) -> Optional[str]:
        path = request.path.rstrip("/")
        if path == "/services/oauth2/token":   # the login host, and the instance host as a My Domain
            return "token"
        if path.startswith("/id/") or path == "/services/oauth2/userinfo":
            return "identity"
        if request.role == "instance":
            return "api"
        return None

    def _app(self, request: Request) -> Response:
        started = time.monotonic()
        endpoint = self._endpoint(request)
        if endpoint == "token" and request.method == "POST":
            with self._lock:
                self.token_requests += 1
            self._record_assertion(request.form().get("assertion"))
        fault = None
        with self._lock:
            if endpoint is not None and self._faults[endpoint]:
                fault = self._faults[endpoint].popleft()
        response: Optional[Response] = None
        latency = self.api_latency if endpoint == "api" else 0.0
        if latency > 0 and self._stopping.wait(latency):
            response = Response.dropped()
        if fault is not None and response is None:
            # the injected latency itself; stop() cuts it short so no handler thread outlives the org
            if fault.delay > 0 and self._stopping.wait(fault.delay):
                response = Response.dropped()
            elif fault.drop:
                response = Response.dropped()
            elif fault.status is not None:
                response = Response(status=fault.status, body=fault.body, headers=dict(fault.headers),
                                    content_type=fault.content_type)
        if response is None:
            try:
                response = self.router.dispatch(request)
            except Exception:  # a bug in a handler (e.g. a test's Apex route): 500, and still observed
                log.exception("handler failed for %s %s", request.method, request.path)
                response = json_response([{"errorCode": "UNKNOWN_EXCEPTION",
                                           "message": "An unexpected error occurred in the local org"}], status=500)
        if endpoint == "api" and not response.drop:
            response.headers.setdefault("Sforce-Limit-Info", f"api-usage={self.api_requests}/15000")
        with self._lock:
            self.requests.append(RequestRecord(request.role, request.method, request.path,
                                               0 if response.drop else response.status, started, time.monotonic()))
        return response

    def _record_assertion(self, assertion: Optional[str]) -> None:
        header: Dict[str, Any] = {}
        claims: Dict[str, Any] = {}
        if assertion:
            parts = assertion.split(".")
            try:
                header = json.loads(b64url_decode(parts[0]))
            except (ValueError, binascii.Error, IndexError):
                header = {}
            try:
                claims = json.loads(b64url_decode(parts[1]))
            except (ValueError, binascii.Error, IndexError):
                claims = {}
        with self._lock:
            self.assertions.append((header if isinstance(header, dict) else {},
                                    claims if isinstance(claims, dict) else {}))



