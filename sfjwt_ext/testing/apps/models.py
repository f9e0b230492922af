"""The local org's apps: External Client Apps (ECAs, what Salesforce creates since Spring '26)
and legacy Connected Apps, their OAuth policies, and who they pre-authorize.

State only, no HTTP: the token endpoint (``oauth/handlers.py``) asks :meth:`AppRegistry.refusal` whether
a user may log in through an app; the Metadata API (``metadata/``) deploys ECAs through
:meth:`AppRegistry.apply_eca`; Connect REST (``apps/handlers.py``) lists them. Every read and write
holds the org's lock (the registry is handed it), so one lock guards apps, users and sessions.

Who may log in (the checks Salesforce makes, in its order; see docs/testing-apps.md):
an unknown consumer key, or an app saved less than ``org.app_propagation_delay`` seconds ago ->
``invalid_client_id`` "client identifier invalid"; an ECA not installed or disabled ->
``app_not_found`` "External client app is not installed in this org"; then, for the user, the
policy: ``AdminApprovedPreAuthorized`` wants the user's profile or one of the user's assigned
permission sets (API name or Id) among the app's, else ``invalid_app_access`` "user is not admin
approved to access this app"; ``AllSelfAuthorized`` wants a prior approval (the user's
``approved`` flag), else ``invalid_grant`` "user hasn't approved this consumer".
"""
from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..core.ids import random_id
from ..core.store import Store

__all__ = ["OrgApp", "AppRegistry", "ECA", "CONNECTED_APP", "ADMIN_APPROVED", "SELF_AUTHORIZED",
           "new_consumer_key", "load_public_key", "PROFILE_ALIASES"]

ECA = "eca"
CONNECTED_APP = "connected_app"
ADMIN_APPROVED = "AdminApprovedPreAuthorized"
SELF_AUTHORIZED = "AllSelfAuthorized"
CONSUMER_KEY_ALPHABET = string.ascii_letters + string.digits + "._"
#: Metadata API scope names (commaSeparatedOauthScopes) -> OAuth scope values (a token's ``scp``)
SCOPE_VALUES = {"api": "api", "refreshtoken": "refresh_token", "full": "full", "web": "web", "basic": "id",
                "openid": "openid", "chatter": "chatter_api", "offlineaccess": "offline_access"}
#: Metadata API names of standard profiles (a policy may name them either way)
PROFILE_ALIASES = {"admin": "system administrator", "standard": "standard user"}


def new_consumer_key() -> str:
    """A consumer key in Salesforce's shape: ``3MVG9`` and 80 characters of ``[A-Za-z0-9._]``."""
    return "3MVG9" + "".join(secrets.choice(CONSUMER_KEY_ALPHABET) for _ in range(80))


def load_public_key(certificate: Any = None, public_key: Any = None) -> Tuple[rsa.RSAPublicKey, str]:
    """(RSA public key, certificate PEM or "") from an ``x509.Certificate`` / PEM certificate, or
    from a public key object / PEM. ValueError names what is wrong."""
    pem = ""
    if certificate is not None:
        if not isinstance(certificate, x509.Certificate):
            data = certificate.encode() if isinstance(certificate, str) else bytes(certificate)
            certificate = x509.load_pem_x509_certificate(data)
        key = certificate.public_key()
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    elif public_key is not None:
        if isinstance(public_key, (str, bytes)):
            public_key = serialization.load_pem_public_key(
                public_key.encode() if isinstance(public_key, str) else public_key)
        key = public_key
    else:
        raise ValueError("create_app needs certificate= or public_key= (the app's certificate: ECA 'Enable "
                         "JWT Bearer Flow' > 'Upload Files'; Connected App 'Use digital signatures')")
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("Salesforce apps need an RSA certificate for RS256")
    return key, pem


@dataclass
class OrgApp:
    """One app of the org. ``kind`` is ``"eca"`` or ``"connected_app"``."""

    consumer_key: str
    name: str                                   # the label
    public_key: Optional[rsa.RSAPublicKey]      # None: no certificate (JWT bearer flow off)
    kind: str = ECA
    developer_name: str = ""
    app_id: str = ""                            # 0xI... (ECA) / 0H4... (Connected App)
    consumer_id: str = ""                       # 888...: the OAuth consumer (Connect REST)
    consumer_secret: str = field(default_factory=lambda: secrets.token_hex(32).upper(), repr=False)
    certificate_pem: str = ""
    jwt_access_tokens: bool = False             # "Issue JWT-based access tokens" (isNamedUserJwtEnabled)
    permitted_users: str = ADMIN_APPROVED
    permission_sets: Tuple[str, ...] = ()       # API names or Ids
    profiles: Tuple[str, ...] = ()              # names (or Metadata names Admin/Standard) or Ids
    scopes: Tuple[str, ...] = ("Api", "RefreshToken")
    callback_url: str = "http://localhost:1717/OauthRedirect"
    ip_relaxation: str = "ENFORCE"
    contact_email: str = ""
    enabled: bool = True                        # ExtlClntAppConfigurablePolicies isEnabled
    oauth_enabled: bool = True                  # ... isOauthPluginEnabled
    installed: bool = True
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    available_at: float = 0.0                   # time.monotonic() from which the token endpoint knows it
    components: Dict[str, str] = field(default_factory=dict)   # Metadata type -> deployed component fullName

    @property
    def is_eca(self) -> bool:
        return self.kind == ECA

    def scope_values(self) -> List[str]:
        """The app's scopes as a token names them (``Api, RefreshToken`` -> ``api refresh_token``)."""
        return [SCOPE_VALUES.get(s.lower(), s.lower()) for s in self.scopes] or ["api"]


@dataclass(frozen=True)
class UserGrants:
    """What a user brings to an app's policy: the profile and the assigned permission sets."""

    profile_id: str
    profile_name: str
    permission_sets: Tuple[Tuple[str, str], ...]     # (Id, Name)

    def names(self) -> List[str]:
        return [name for _id, name in self.permission_sets]


def _same_id(a: str, b: str) -> bool:
    return len(a) >= 15 and len(b) >= 15 and a[:15] == b[:15]


class AppRegistry:
    """The apps of one org, by consumer key; guarded by the org's lock (``lock``)."""

    def __init__(self, lock: threading.RLock, store: Store) -> None:
        self._lock = lock
        self.store = store
        self.by_key: Dict[str, OrgApp] = {}
        #: seconds a new or changed app answers invalid_client_id (Salesforce: up to ~10 minutes)
        self.propagation_delay: float = 0.0
        #: False: the org cannot deploy ECA components (the feature is off)
        self.ecas_enabled: bool = True

    # ------------------------------------------------------------------ lookups
    def get(self, consumer_key: str) -> Optional[OrgApp]:
        with self._lock:
            return self.by_key.get(consumer_key)

    def named(self, developer_name: str) -> Optional[OrgApp]:
        """The app whose API name (developer name) is ``developer_name`` (case-insensitive)."""
        wanted = developer_name.lower()
        with self._lock:
            return next((a for a in self.by_key.values() if a.developer_name.lower() == wanted), None)

    def find(self, identifier: str) -> Optional[OrgApp]:
        """By app id (15 or 18), developer name or consumer key."""
        with self._lock:
            for app in self.by_key.values():
                if _same_id(app.app_id, identifier) or app.consumer_key == identifier:
                    return app
        return self.named(identifier)

    def all(self, kind: Optional[str] = None) -> List[OrgApp]:
        with self._lock:
            return [a for a in self.by_key.values() if kind is None or a.kind == kind]

    # ------------------------------------------------------------------ changes
    def add(self, app: OrgApp) -> OrgApp:
        """Register ``app`` (ids filled in); it propagates for ``propagation_delay`` seconds."""
        if not app.app_id:
            app.app_id = random_id("0xI" if app.is_eca else "0H4")
        if not app.consumer_id:
            app.consumer_id = random_id("888")
        if not app.developer_name:
            app.developer_name = "".join(c if c.isalnum() else "_" for c in app.name).strip("_") or "App"
        app.available_at = time.monotonic() + self.propagation_delay
        with self._lock:
            if app.consumer_key in self.by_key:
                raise ValueError(f"consumer key already taken by {self.by_key[app.consumer_key].developer_name}")
            self.by_key[app.consumer_key] = app
        return app

    def change(self, app: OrgApp, **changes: Any) -> OrgApp:
        """Apply ``changes`` to ``app`` (a new consumer key re-keys it); it propagates again."""
        with self._lock:
            updated = replace(app, **changes, modified=time.time(),
                              available_at=time.monotonic() + self.propagation_delay)
            self.by_key.pop(app.consumer_key, None)
            self.by_key[updated.consumer_key] = updated
            return updated

    def remove(self, app: OrgApp) -> None:
        with self._lock:
            self.by_key.pop(app.consumer_key, None)

    # ------------------------------------------------------------------ policy
    def grants(self, user_id: str, *, profile: bool = True, permission_sets: bool = True) -> UserGrants:
        """The user's profile and assigned permission sets, read from the store's records (each part
        only when asked: a login reads what the app's policy names)."""
        profile_id = profile_name = ""
        if profile:
            user = self.store.query(f"SELECT ProfileId, Profile.Name FROM User WHERE Id = '{user_id}'").records
            if user:
                profile_id = str(user[0].get("ProfileId") or "")
                profile_name = str((user[0].get("Profile") or {}).get("Name") or "")
        sets: Tuple[Tuple[str, str], ...] = ()
        if permission_sets:
            rows = self.store.query("SELECT PermissionSetId, PermissionSet.Name FROM PermissionSetAssignment "
                                    f"WHERE AssigneeId = '{user_id}'").records
            sets = tuple((str(r["PermissionSetId"]), str((r.get("PermissionSet") or {}).get("Name") or ""))
                         for r in rows)
        return UserGrants(profile_id, profile_name, sets)

    def pre_authorizes(self, app: OrgApp, grants: UserGrants) -> bool:
        """Whether ``app``'s policy lists the user's profile or one of the user's permission sets."""
        profile = grants.profile_name.lower()
        for named in app.profiles:
            low = named.strip().lower()
            if low and (low == profile or PROFILE_ALIASES.get(low) == profile or _same_id(named, grants.profile_id)):
                return True
        for named in app.permission_sets:
            low = named.strip().lower()
            if any(low == name.lower() or _same_id(named.strip(), pid) for pid, name in grants.permission_sets):
                return True
        return False

    def refusal(self, app: OrgApp, user_id: str, approved: bool) -> Optional[Tuple[str, str]]:
        """(error, error_description) the token endpoint answers for this user and app, or None."""
        if app.permitted_users == SELF_AUTHORIZED:
            return None if approved else ("invalid_grant", "user hasn't approved this consumer")
        grants = self.grants(user_id, profile=bool(app.profiles), permission_sets=bool(app.permission_sets))
        if self.pre_authorizes(app, grants):
            return None
        return ("invalid_app_access", "user is not admin approved to access this app")

    def app_refusal(self, app: Optional[OrgApp]) -> Optional[Tuple[str, str]]:
        """What the token endpoint answers for the app itself before it looks at the user."""
        if app is None or time.monotonic() < app.available_at:
            return ("invalid_client_id", "client identifier invalid")
        if app.is_eca and not (app.installed and app.enabled and app.oauth_enabled):
            return ("app_not_found", "External client app is not installed in this org")
        return None


def split_list(text: Optional[str]) -> Tuple[str, ...]:
    """``"A, B,,C"`` -> ("A", "B", "C"): the Metadata API's comma-separated fields."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def join_list(values: Iterable[str]) -> str:
    return ", ".join(values)
