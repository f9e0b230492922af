"""``LocalOrg``: a local Salesforce org over HTTPS on 127.0.0.1.

Two TLS listeners with ephemeral ports: the *login host* (``login_url``: token endpoint,
identity, userinfo, revoke) and the *instance host* (``instance_url``: REST, Tooling, Apex
REST, and the Bulk/SOAP routes that ``bulk.py`` registers). A client that ignores
``instance_url`` gets 404 from the login host for ``/services/data``.

Routes are registered on an ``http.Router`` (``org.router``); ``bulk.py`` adds its own
through ``register(router, org)`` and checks tokens with ``org.require_session(request,
api="bulk1" | "bulk2" | "soap" | "rest")``.

This module imports nothing of the sfjwt_ext client.
"""
from __future__ import annotations

import base64
import binascii
import collections
import json
import logging
import math
import os
import re
import secrets
import shutil
import string
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple
from xml.sax.saxutils import escape as xml_escape

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import bulk, sample, tls
from .http import (
    SOAP_CONTENT_TYPE,
    HTTPError,
    Request,
    Response,
    Router,
    ServerThread,
    empty_response,
    json_response,
    text_response,
    xml_response,
)
from .ids import random_id
from .records import Store
from .soql import SoqlError

__all__ = ["LocalOrg", "OrgCredentials", "RequestRecord", "ApexRequest", "Session", "ConnectedApp",
           "OrgUser"]

log = logging.getLogger("sfjwt_ext.testing.server")

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
_TOKEN_ALPHABET = string.ascii_letters + string.digits + "._"
_V = r"/services/data/v(?P<version>\d+\.\d)"
_RECORD_ID = r"(?P<record_id>[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?)"
_SOBJECT = r"(?P<sobject>\w+)"
_NUMERIC_EXP = re.compile(r"[+-]?\d+(?:\.\d+)?")


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _version_label(version: str) -> str:
    v = int(float(version))
    k = 62 - v
    season = ("Winter", "Summer", "Spring")[k % 3]
    year = 25 - (k + 2) // 3
    return f"{season} '{year:02d}"


@dataclass(frozen=True)
class RequestRecord:
    host: str      # "login" | "instance"
    method: str
    path: str
    status: int    # 0 when the connection was dropped


@dataclass
class ConnectedApp:
    consumer_key: str
    name: str
    public_key: rsa.RSAPublicKey


@dataclass
class OrgUser:
    user_id: str
    username: str
    approved: bool = True
    active: bool = True
    app_access: bool = True
    name: str = ""
    email: str = ""


@dataclass
class Session:
    token: str = field(repr=False)
    user_id: str
    consumer_key: str
    issued_at: float
    last_used: float
    valid: bool = True


@dataclass
class ApexRequest:
    """What an Apex REST handler receives (see ``LocalOrg.register_apex_route``)."""

    method: str
    path: str                  # after /services/apexrest, e.g. "/Accounts/001..."
    params: Dict[str, str]
    headers: Any
    body: bytes
    json: Any                  # parsed JSON body, or None
    user_id: str
    username: str
    match: Optional["re.Match[str]"] = None


@dataclass
class _Fault:
    status: Optional[int]
    body: bytes
    content_type: Optional[str]
    headers: Dict[str, str]
    drop: bool
    delay: float


@dataclass
class _Cursor:
    records: List[dict]
    total_size: int
    batch: int
    created: float


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


class _TokenError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(error)
        self.error = error
        self.description = description


class LocalOrg:
    """A local Salesforce org for tests and demos. Use as a context manager or start()/stop().

    See docs/architecture.md for the contract. Beyond it: ``router`` (the ``http.Router``),
    ``require_session(request, api=...)`` (token check for route handlers), ``users``,
    ``apps``, ``exp_leeway`` (seconds of clock skew tolerated on ``exp``, default 5).
    """

    exp_leeway: float = 5.0

    def __init__(self, *, audiences: Optional[Iterable[str]] = None, page_size: int = 2000,
                 login_rate_limit: Optional[int] = None, api_version: str = "62.0",
                 login_port: int = 0, instance_port: int = 0, name: str = "sfjwt local org") -> None:
        self.api_version = api_version
        self.page_size = page_size
        self.login_rate_limit = login_rate_limit
        self.name = name
        self.org_id = random_id("00D")
        self._extra_audiences = list(audiences) if audiences is not None else None
        self._ports = (login_port, instance_port)
        self._lock = threading.RLock()
        self.apps: Dict[str, ConnectedApp] = {}
        self.users: Dict[str, OrgUser] = {}          # by username (lower-cased)
        self._users_by_id: Dict[str, OrgUser] = {}
        self._sessions: Dict[str, Session] = {}
        self._session_by_login: Dict[Tuple[str, str], Session] = {}
        self._logins: Dict[str, Deque[float]] = collections.defaultdict(collections.deque)
        self._faults: Dict[str, Deque[_Fault]] = {"token": collections.deque(), "api": collections.deque(),
                                                  "identity": collections.deque()}
        self._cursors: Dict[str, _Cursor] = {}
        self.inactivity_timeout: Optional[float] = None
        self.reject_sessions: bool = False
        self.requests: List[RequestRecord] = []
        self.assertions: List[Tuple[dict, dict]] = []
        self.token_requests = 0
        self.api_requests = 0
        self._tmpdir: Optional[str] = None
        self._servers: List[ServerThread] = []
        self._stopping = threading.Event()  # set by stop(): wakes handlers sleeping in an injected delay
        self.login_url = ""
        self.instance_url = ""
        self.token_url = ""
        self.ca_file = ""
        self.credentials: Optional[OrgCredentials] = None
        # the Store creates the Organization record itself (Id = org_id, Name, IsSandbox false, ...)
        self.store = Store(org_id=self.org_id, api_version=api_version, org_name=name)
        self.router = Router()
        self._register_routes()
        self.bulk = bulk.register(self.router, self)

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
    def create_app(self, *, certificate: Any = None, public_key: Any = None, name: str = "sfjwt test app") -> str:
        """Register a Connected App with "Use digital signatures"; returns its consumer key.

        ``certificate``: an ``x509.Certificate`` or PEM (str/bytes); ``public_key``: an RSA
        public key object or PEM.
        """
        if certificate is not None:
            if not isinstance(certificate, x509.Certificate):
                data = certificate.encode() if isinstance(certificate, str) else bytes(certificate)
                certificate = x509.load_pem_x509_certificate(data)
            key = certificate.public_key()
        elif public_key is not None:
            if isinstance(public_key, (str, bytes)):
                data = public_key.encode() if isinstance(public_key, str) else public_key
                public_key = serialization.load_pem_public_key(data)
            key = public_key
        else:
            raise ValueError("create_app needs certificate= or public_key= (the app's 'Use digital signatures' cert)")
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("Salesforce Connected Apps need an RSA certificate for RS256")
        consumer_key = "3MVG9" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(80))
        with self._lock:
            self.apps[consumer_key] = ConnectedApp(consumer_key, name, key)
        return consumer_key

    def add_user(self, username: str, *, approved: bool = True, active: bool = True, app_access: bool = True,
                 name: Optional[str] = None, email: Optional[str] = None) -> str:
        """Add a user (and a User record in the store); returns its 005 id."""
        display = name or username.split("@")[0].replace(".", " ").title()
        mail = email or (username if "@" in username else f"{username}@example.com")
        user_id = None
        if self.store is not None:
            first, _, last = display.rpartition(" ")
            record = {"Username": username, "FirstName": first or None, "LastName": last or display,
                      "Email": mail, "IsActive": active}
            profile = getattr(self.store, "admin_profile_id", None)
            if profile:
                record["ProfileId"] = profile
            user_id = self.store.insert("User", [record])[0]
        if not user_id:
            user_id = random_id("005")
        user = OrgUser(user_id, username, approved, active, app_access, display, mail)
        with self._lock:
            self.users[username.lower()] = user
            self._users_by_id[user_id] = user
            self._users_by_id[user_id[:15]] = user
        return user_id

    def set_user(self, username: str, **changes: Any) -> None:
        """Change ``approved`` / ``active`` / ``app_access`` of an existing user."""
        with self._lock:
            user = self.users[username.lower()]
            for key, value in changes.items():
                if not hasattr(user, key):
                    raise AttributeError(key)
                setattr(user, key, value)

    def new_app_with_key(self, folder: Any, *, username: str = "user@example.com",
                         fresh_key: bool = False) -> OrgCredentials:
        """Write ``salesforce.key`` (0600) and ``salesforce.crt`` into ``folder``, register an
        app with that certificate and an approved user; returns the credentials. The RSA key
        pair is shared by the whole process unless ``fresh_key=True``."""
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
        consumer_key = self.create_app(certificate=cert)
        existing = self.users.get(username.lower())
        user_id = existing.user_id if existing else self.add_user(username)
        if not self.login_url:
            raise RuntimeError("start the org before new_app_with_key (login_url and ca_file are not known yet)")
        return OrgCredentials(username=username, consumer_key=consumer_key, private_key_file=key_file,
                              certificate_file=cert_file, login_url=self.login_url, ca_file=self.ca_file,
                              user_id=user_id)

    def insert(self, sobject: str, records: List[dict]) -> List[str]:
        return self._require_store().insert(sobject, records)

    def load_sample_data(self) -> Dict[str, int]:
        return sample.load_sample_data(self.store)

    def register_apex_route(self, method: str, path: str, handler: Callable[[ApexRequest], Tuple[int, Any]]) -> None:
        """Serve ``method`` ``/services/apexrest<path>``. ``path`` may end in ``*`` (any rest,
        like Apex's urlMapping). ``handler(ApexRequest) -> (status, data)``: data is JSON
        serialised unless it is str/bytes (sent as text) or None (empty body)."""
        if not path.startswith("/"):
            path = "/" + path
        regex = "/services/apexrest" + re.escape(path).replace(r"\*", ".*")

        def serve(request: Request) -> Response:
            session = self.require_session(request, api="rest")
            user = self._users_by_id.get(session.user_id)
            parsed = None
            if request.body:
                try:
                    parsed = json.loads(request.body.decode("utf-8"))
                except ValueError:
                    parsed = None
            apex = ApexRequest(method=request.method, path=request.path[len("/services/apexrest"):],
                               params=dict(request.query), headers=request.headers, body=request.body,
                               json=parsed, user_id=session.user_id, username=user.username if user else "",
                               match=request.match)
            status, data = handler(apex)
            if data is None:
                return empty_response(status)
            if isinstance(data, (bytes, str)):
                return text_response(data, status=status)
            return json_response(data, status=status)

        self.router.add("instance", method, regex, serve)

    # ------------------------------------------------------------------ controls
    def expire_all_sessions(self) -> None:
        with self._lock:
            for s in self._sessions.values():
                s.valid = False

    def revoke(self, access_token: str) -> None:
        with self._lock:
            s = self._sessions.get(access_token)
            if s is not None:
                s.valid = False

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
        with self._lock:
            return list(self._sessions.values())

    # ------------------------------------------------------------------ sessions
    def _session_state(self, token: Optional[str]) -> Optional[Session]:
        """The live session for ``token`` (timer reset), or None."""
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            s = self._sessions.get(token)
            if s is None or not s.valid:
                return None
            timeout = self.inactivity_timeout
            if timeout is not None and now - s.last_used > timeout:
                s.valid = False
                return None
            s.last_used = now
            return s

    def is_session_valid(self, access_token: str) -> bool:
        """Whether ``access_token`` would be accepted now (does not reset the inactivity timer)."""
        with self._lock:
            s = self._sessions.get(access_token)
            if s is None or not s.valid:
                return False
            timeout = self.inactivity_timeout
            return timeout is None or time.monotonic() - s.last_used <= timeout

    @staticmethod
    def _bearer(request: Request) -> Optional[str]:
        auth = request.headers.get("Authorization") or ""
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() in ("bearer", "oauth") and value.strip():
            return value.strip()
        return None

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
                token = request.headers.get("X-SFDC-Session") or self._bearer(request)
            elif api == "soap":
                m = re.search(rb"<(?:\w+:)?sessionId>\s*([^<\s]+)\s*</(?:\w+:)?sessionId>", request.body)
                token = m.group(1).decode("utf-8", "replace") if m else None
            else:
                token = self._bearer(request)
        if self.reject_sessions:
            raise HTTPError(self._session_error(request, api, "This session is not valid for use with the REST API"))
        session = self._session_state(token)
        if session is None:
            raise HTTPError(self._session_error(request, api, "Session expired or invalid"))
        with self._lock:
            self.api_requests += 1
        return session

    def _session_error(self, request: Request, api: str, message: str) -> Response:
        if api == "bulk1":
            wants_json = "json" in request.content_type or (
                "json" in (request.headers.get("Accept") or "") and "xml" not in request.content_type)
            text = "Invalid session id" if message.startswith("Session expired") else message
            if wants_json:
                return json_response({"exceptionCode": "InvalidSessionId", "exceptionMessage": text}, status=400)
            return xml_response(
                '<?xml version="1.0" encoding="UTF-8"?><error xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
                f"<exceptionCode>InvalidSessionId</exceptionCode><exceptionMessage>{xml_escape(text)}"
                "</exceptionMessage></error>", status=400)
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
        if request.role == "login" and path == "/services/oauth2/token":
            return "token"
        if path.startswith("/id/") or path == "/services/oauth2/userinfo":
            return "identity"
        if request.role == "instance":
            return "api"
        return None

    def _app(self, request: Request) -> Response:
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
        if fault is not None:
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
                                               0 if response.drop else response.status))
        return response

    def _record_assertion(self, assertion: Optional[str]) -> None:
        header: dict = {}
        claims: dict = {}
        if assertion:
            parts = assertion.split(".")
            try:
                header = json.loads(_b64url_decode(parts[0]))
            except (ValueError, binascii.Error, IndexError):
                header = {}
            try:
                claims = json.loads(_b64url_decode(parts[1]))
            except (ValueError, binascii.Error, IndexError):
                claims = {}
        with self._lock:
            self.assertions.append((header if isinstance(header, dict) else {},
                                    claims if isinstance(claims, dict) else {}))

    # ------------------------------------------------------------------ routes
    def _register_routes(self) -> None:
        add = self.router.add
        add("login", "POST", r"/services/oauth2/token/?", self._token)
        add("*", "POST", r"/services/oauth2/revoke/?", self._revoke_endpoint)
        add("*", "GET", r"/services/oauth2/revoke/?", self._revoke_endpoint)
        add("login", "GET", r"/id/(?P<org>\w+)/(?P<user>\w+)/?", self._identity)
        add("*", "GET", r"/services/oauth2/userinfo/?", self._userinfo)
        add("instance", "GET", r"/services/data/?", self._versions)
        add("instance", "GET", _V + r"/?", self._resources)
        add("instance", "GET", _V + r"/limits/?", self._limits)
        add("instance", "GET", _V + r"/(?P<kind>query|queryAll)/?", self._query)
        add("instance", "GET", _V + r"/(?:query|queryAll)/(?P<cursor>01g\w{15})-(?P<offset>\d+)/?", self._query_more)
        add("instance", "GET", _V + r"/tooling/(?P<kind>query|queryAll)/?", self._query)
        add("instance", "GET", _V + r"/tooling/(?:query|queryAll)/(?P<cursor>01g\w{15})-(?P<offset>\d+)/?",
            self._query_more)
        add("instance", "GET", _V + r"/sobjects/?", self._describe_global)
        add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + r"/?", self._sobject_info)
        add("instance", "POST", _V + r"/sobjects/" + _SOBJECT + r"/?", self._create)
        add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + r"/describe/?", self._describe)
        add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + "/" + _RECORD_ID + r"/?", self._get)
        add("instance", "PATCH", _V + r"/sobjects/" + _SOBJECT + "/" + _RECORD_ID + r"/?", self._update)
        add("instance", "DELETE", _V + r"/sobjects/" + _SOBJECT + "/" + _RECORD_ID + r"/?", self._delete)

    # token endpoint ----------------------------------------------------------
    def _token(self, request: Request) -> Response:
        form = request.form()
        try:
            session = self._login(form)
        except _TokenError as exc:
            return json_response({"error": exc.error, "error_description": exc.description}, status=400)
        user = self._users_by_id[session.user_id]
        return json_response({
            "access_token": session.token,
            "scope": "api full",
            "instance_url": self.instance_url,
            "id": f"{self.login_url}/id/{self.org_id}/{user.user_id}",
            "token_type": "Bearer",
        })

    def _login(self, form: Dict[str, str]) -> Session:
        if form.get("grant_type") != JWT_BEARER:
            raise _TokenError("unsupported_grant_type", "grant type not supported")
        assertion = form.get("assertion") or ""
        parts = assertion.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not a JWS")
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("not objects")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _TokenError("invalid_grant", "invalid assertion") from None
        with self._lock:
            app = self.apps.get(str(claims.get("iss") or ""))
        if app is None:
            raise _TokenError("invalid_client_id", "client identifier invalid")
        if header.get("alg") != "RS256":
            raise _TokenError("invalid_grant", "invalid assertion")
        try:
            app.public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"),
                                  padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError, UnicodeEncodeError):
            raise _TokenError("invalid_grant", "invalid assertion") from None
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        accepted = self.audiences
        if not any(isinstance(a, str) and a.rstrip("/") in accepted for a in auds):
            raise _TokenError("invalid_grant", "audience is invalid")
        exp = self._parse_exp(claims.get("exp"))
        if exp is None:
            raise _TokenError("invalid_grant", "invalid assertion")
        if exp + self.exp_leeway < time.time():
            raise _TokenError("invalid_grant", "expired authorization code")
        with self._lock:
            user = self.users.get(str(claims.get("sub") or "").lower())
            if user is None:
                raise _TokenError("invalid_grant", "invalid user")
            if not user.active:
                raise _TokenError("invalid_grant", "inactive user")
            if not user.approved:
                raise _TokenError("invalid_grant", "user hasn't approved this consumer")
            if not user.app_access:
                raise _TokenError("invalid_app_access", "user is not admin approved to access this app")
            now_wall = time.time()
            if self.login_rate_limit is not None:
                logins = self._logins[user.user_id]
                while logins and logins[0] < now_wall - 3600:
                    logins.popleft()
                if len(logins) >= self.login_rate_limit:
                    raise _TokenError("rate_limit_exceeded", "number of logins exceeded")
                logins.append(now_wall)
            key = (user.user_id, app.consumer_key)
            existing = self._session_by_login.get(key)
            if existing is not None and self._session_state(existing.token) is not None:
                return existing
            token = self.org_id[:15] + "!" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(96))
            now = time.monotonic()
            session = Session(token=token, user_id=user.user_id, consumer_key=app.consumer_key,
                              issued_at=now_wall, last_used=now)
            self._sessions[token] = session
            self._session_by_login[key] = session
            return session

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
        value = float(value)
        if not math.isfinite(value):
            return None
        if value > 10 ** 11:
            value /= 1000.0
        return value

    def _revoke_endpoint(self, request: Request) -> Response:
        token = request.form().get("token") or request.query.get("token")
        with self._lock:
            known = token in self._sessions
        if not known:
            return json_response({"error": "unsupported_token_type", "error_description": "this token type is not supported"},
                                 status=400)
        self.revoke(token or "")
        return empty_response(200)

    # identity ----------------------------------------------------------------
    def _identity_session(self, request: Request) -> Session:
        token = self._bearer(request) or request.query.get("oauth_token")
        if self.reject_sessions:
            raise HTTPError(self._session_error(request, "rest", "This session is not valid for use with the REST API"))
        session = self._session_state(token)
        if session is None:
            raise HTTPError(json_response([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                                          status=401))
        return session

    def _identity_body(self, user: OrgUser) -> Dict[str, Any]:
        first, _, last = user.name.rpartition(" ")
        base = self.instance_url
        return {
            "id": f"{self.login_url}/id/{self.org_id}/{user.user_id}",
            "asserted_user": True,
            "user_id": user.user_id,
            "organization_id": self.org_id,
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
                "enterprise": f"{base}/services/Soap/c/{{version}}/{self.org_id[:15]}",
                "metadata": f"{base}/services/Soap/m/{{version}}/{self.org_id[:15]}",
                "partner": f"{base}/services/Soap/u/{{version}}/{self.org_id[:15]}",
                "rest": f"{base}/services/data/v{{version}}/",
                "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
                "search": f"{base}/services/data/v{{version}}/search/",
                "query": f"{base}/services/data/v{{version}}/query/",
                "recent": f"{base}/services/data/v{{version}}/recent/",
                "tooling_soap": f"{base}/services/Soap/T/{{version}}/{self.org_id[:15]}",
                "tooling_rest": f"{base}/services/data/v{{version}}/tooling/",
                "profile": f"{base}/{user.user_id}",
                "custom_domain": base,
            },
        }

    def _identity(self, request: Request) -> Response:
        self._identity_session(request)
        assert request.match is not None
        user = self._users_by_id.get(request.match.group("user"))
        if user is None or request.match.group("org") not in (self.org_id, self.org_id[:15]):
            return json_response([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                                 status=404)
        return json_response(self._identity_body(user))

    def _userinfo(self, request: Request) -> Response:
        session = self._identity_session(request)
        user = self._users_by_id[session.user_id]
        body = self._identity_body(user)
        body.update({"sub": body["id"], "preferred_username": user.username, "nickname": body["nick_name"],
                     "name": user.name, "given_name": body["first_name"], "family_name": body["last_name"],
                     "zoneinfo": body["timezone"]})
        return json_response(body)

    # REST ----------------------------------------------------------------------
    def _version(self, request: Request) -> str:
        assert request.match is not None
        version = request.match.group("version")
        if not (20.0 <= float(version) <= float(self.api_version)):
            raise HTTPError(json_response([{"errorCode": "NOT_FOUND",
                                            "message": "The requested resource does not exist"}], status=404))
        return version

    def _require_store(self) -> Store:
        return self.store

    def _store_call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SoqlError as exc:
            raise HTTPError(json_response(exc.to_json(), status=exc.status)) from None

    def _versions(self, request: Request) -> Response:
        self.require_session(request)
        top = int(float(self.api_version))
        return json_response([{"label": _version_label(f"{v}.0"), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                              for v in range(31, top + 1)])

    def _resources(self, request: Request) -> Response:
        self.require_session(request)
        v = self._version(request)
        names = ["tooling", "metadata", "eclair", "folders", "prechatForms", "jsonxform", "chatter", "tabs",
                 "appMenu", "quickActions", "queryAll", "commerce", "wave", "iot", "analytics", "search",
                 "identity", "composite", "parameterizedSearch", "fingerprint", "theme", "nouns", "domino",
                 "event", "serviceTemplates", "recent", "connect", "licensing", "limits", "process",
                 "async-queries", "query", "match", "emailConnect", "compactLayouts", "knowledgeManagement",
                 "sobjects", "actions", "support", "jobs"]
        body = {n: f"/services/data/v{v}/{n}" for n in names}
        body["identity"] = f"{self.login_url}/id/{self.org_id}/{self._require_session_user(request)}"
        return json_response(body)

    def _require_session_user(self, request: Request) -> str:
        token = self._bearer(request)
        with self._lock:
            s = self._sessions.get(token or "")
            return s.user_id if s else ""

    def _limits(self, request: Request) -> Response:
        self.require_session(request)
        self._version(request)
        used = self.api_requests

        def lim(mx: int, used_: int = 0) -> Dict[str, int]:
            return {"Max": mx, "Remaining": max(mx - used_, 0)}

        return json_response({
            "ActiveScratchOrgs": lim(3), "AnalyticsExternalDataSizeMB": lim(40960),
            "ConcurrentAsyncGetReportInstances": lim(200), "ConcurrentSyncReportRuns": lim(20),
            "DailyAnalyticsDataflowJobExecutions": lim(60), "DailyApiRequests": lim(15000, used),
            "DailyAsyncApexExecutions": lim(250000), "DailyBulkApiBatches": lim(15000),
            "DailyBulkV2QueryFileStorageMB": lim(976562), "DailyBulkV2QueryJobs": lim(10000),
            "DailyGenericStreamingApiEvents": lim(10000), "DailyStreamingApiEvents": lim(10000),
            "DailyWorkflowEmails": lim(405), "DataStorageMB": lim(5), "FileStorageMB": lim(20),
            "HourlyAsyncReportRuns": lim(1200), "HourlyDashboardRefreshes": lim(200),
            "HourlyODataCallout": lim(10000), "HourlySyncReportRuns": lim(500),
            "MassEmail": lim(10), "SingleEmail": lim(15), "StreamingApiConcurrentClients": lim(20),
        })

    def _batch_size(self, request: Request) -> int:
        size = self.page_size
        options = request.headers.get("Sforce-Query-Options") or ""
        m = re.search(r"batchSize\s*=\s*(\d+)", options)
        if m:
            size = min(max(int(m.group(1)), 200), 2000, self.page_size)
        return max(size, 1)

    def _query(self, request: Request) -> Response:
        self.require_session(request)
        v = self._version(request)
        store = self._require_store()
        q = request.query.get("q")
        if not q:
            return json_response([{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}],
                                 status=400)
        tooling: Dict[str, Any] = {"tooling": True} if "/tooling/" in request.path else {}
        if (request.query.get("columns") or "").lower() == "true":
            return json_response(self._store_call(store.column_metadata, q, **tooling))
        assert request.match is not None
        include_deleted = request.match.group("kind") == "queryAll"
        result = self._store_call(store.query, q, include_deleted=include_deleted, **tooling)
        records = list(result.records)
        return self._page(v, "/tooling" if "/tooling/" in request.path else "",
                          _Cursor(records, int(result.total_size), self._batch_size(request), time.monotonic()), 0)

    def _page(self, version: str, prefix: str, cursor: _Cursor, offset: int, cursor_id: Optional[str] = None) -> Response:
        end = offset + cursor.batch
        page = cursor.records[offset:end]
        body: Dict[str, Any] = {"totalSize": cursor.total_size, "done": end >= len(cursor.records)}
        if not body["done"]:
            if cursor_id is None:
                cursor_id = random_id("01g")
                with self._lock:
                    self._cursors[cursor_id] = cursor
            body["nextRecordsUrl"] = f"/services/data/v{version}{prefix}/query/{cursor_id}-{end}"
        elif cursor_id is not None:
            with self._lock:
                self._cursors.pop(cursor_id, None)
        body["records"] = page
        return json_response(body)

    def _query_more(self, request: Request) -> Response:
        self.require_session(request)
        v = self._version(request)
        assert request.match is not None
        cursor_id = request.match.group("cursor")
        offset = int(request.match.group("offset"))
        with self._lock:
            cursor = self._cursors.get(cursor_id)
        if cursor is None or offset > len(cursor.records):
            return json_response([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}],
                                 status=400)
        return self._page(v, "/tooling" if "/tooling/" in request.path else "", cursor, offset, cursor_id)

    def _sobject_name(self, request: Request) -> str:
        assert request.match is not None
        name = request.match.group("sobject")
        store = self._require_store()
        if not store.has_object(name):
            raise HTTPError(json_response([{"errorCode": "NOT_FOUND",
                                            "message": "The requested resource does not exist"}], status=404))
        return name

    def _describe_global(self, request: Request) -> Response:
        self.require_session(request)
        self._version(request)
        return json_response(self._store_call(self._require_store().describe_global))

    def _describe(self, request: Request) -> Response:
        self.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        return json_response(self._store_call(self._require_store().describe, name))

    def _sobject_info(self, request: Request) -> Response:
        self.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        full = self._store_call(self._require_store().describe, name)
        basic = {k: v for k, v in full.items() if k not in ("fields", "childRelationships", "recordTypeInfos",
                                                             "supportedScopes", "namedLayoutInfos",
                                                             "actionOverrides")}
        return json_response({"objectDescribe": basic, "recentItems": []})

    def _create(self, request: Request) -> Response:
        self.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        values = request.json()
        if not isinstance(values, dict):
            return json_response([{"message": "Can not deserialize SObject out of START_ARRAY token",
                                   "errorCode": "JSON_PARSER_ERROR"}], status=400)
        values.pop("attributes", None)
        new_id = self._store_call(self._require_store().insert, name, [values])[0]
        return json_response({"id": new_id, "success": True, "errors": []}, status=201,
                             headers={"Location": f"{request.path.rstrip('/')}/{new_id}"})

    def _get(self, request: Request) -> Response:
        self.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        assert request.match is not None
        fields_param = request.query.get("fields")
        fields = [f.strip() for f in fields_param.split(",") if f.strip()] if fields_param else None
        return json_response(self._store_call(self._require_store().get, name, request.match.group("record_id"),
                                              fields))

    def _update(self, request: Request) -> Response:
        self.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        values = request.json()
        if not isinstance(values, dict):
            return json_response([{"message": "Can not deserialize SObject", "errorCode": "JSON_PARSER_ERROR"}],
                                 status=400)
        values.pop("attributes", None)
        assert request.match is not None
        self._store_call(self._require_store().update, name, request.match.group("record_id"), values)
        return empty_response(204)

    def _delete(self, request: Request) -> Response:
        self.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        assert request.match is not None
        self._store_call(self._require_store().delete, name, request.match.group("record_id"))
        return empty_response(204)

