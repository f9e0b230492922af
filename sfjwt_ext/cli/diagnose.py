"""Why a JWT login fails, read from the org with an admin's session (``sfjwt check --target-org``).

Salesforce's answers are vague ("user hasn't approved this consumer" has five causes). With
the admin's session this module reads the app whose consumer key is configured (an External
Client App through its metadata, else a legacy Connected App through ``ConnectedApp``
metadata) and the user, and names every cause that holds:

* no app with that consumer key in this org (wrong org, or a refreshed sandbox);
* the app has no certificate (the JWT bearer flow is not enabled);
* the certificate does not match the private key (both fingerprints shown);
* the user is unknown or inactive;
* the user is not pre-authorized (the permission sets and profiles the app allows, and those
  the user has).

Also :func:`login_client`: the token client of a real login (never a cache) for ``check`` and
``setup``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import List, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .._internal.redact import mask_token
from .admin import soql_quote, AdminApiError, AdminSession
from ..auth.target import resolve_login
from ..auth.token_client import TokenClient
from .keypair import fingerprint
from ..config import Settings, check_verify

__all__ = ["AppInfo", "UserInfo", "find_app_by_key", "read_user", "causes", "login_client",
           "PRE_AUTHORIZED"]

PRE_AUTHORIZED = "AdminApprovedPreAuthorized"
ECA_SCREEN = "Setup > External Client App Manager > {app}"
CONNECTED_APP_SCREEN = "Setup > App Manager > {app} > Manage"


def login_client(settings: Settings, key: rsa.RSAPrivateKey) -> TokenClient:
    """A token client for ``settings`` that makes a real token request on every ``fetch()``
    (no login cache, no token cache). TLS: ``ca_bundle`` (SF_CA_BUNDLE / the profile)."""
    settings.require()
    target = resolve_login(domain=settings.domain, login_url=settings.login_url, audience=settings.audience)
    bundle = settings.sources.get("ca_bundle")
    named = "SF_CA_BUNDLE" if bundle is None or bundle.source == "environment" else f"ca_bundle in {bundle.source}"
    verify = check_verify(bundle.value if bundle else True, named=named)
    return TokenClient(username=str(settings.username), consumer_key=str(settings.consumer_key), key=key,
                       target=target, verify=verify)


@dataclass(frozen=True)
class AppInfo:
    kind: str                      # "External Client App" | "Connected App"
    name: str
    certificate_pem: str
    permitted: str                 # AdminApprovedPreAuthorized, AllSelfAuthorized, ...
    permission_sets: List[str]     # API names or Ids, as the app lists them
    profiles: List[str]

    @property
    def screen(self) -> str:
        return (ECA_SCREEN if self.kind == "External Client App" else CONNECTED_APP_SCREEN).format(app=self.name)


@dataclass(frozen=True)
class UserInfo:
    id: str
    username: str
    active: bool
    profile: str
    permission_sets: List[str]     # API names
    permission_set_ids: List[str]


def _comma_list(text: str) -> List[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _ecas(admin: AdminSession, consumer_key: str) -> Optional[AppInfo]:
    for record in admin.read_all("ExtlClntAppGlobalOauthSettings"):
        if record.get("consumerKey") != consumer_key:
            continue
        app = record.get("externalClientApplication", "")
        policy = next((p for p in admin.read_all("ExtlClntAppOauthConfigurablePolicies")
                       if p.get("externalClientApplication") == app), {})
        return AppInfo("External Client App", app, record.get("certificate", ""),
                       policy.get("permittedUsersPolicyType", ""),
                       _comma_list(policy.get("commaSeparatedPermissionSet", "")),
                       _comma_list(policy.get("commaSeparatedProfile", "")))
    return None


def _connected_apps(admin: AdminSession, consumer_key: str) -> Optional[AppInfo]:
    try:
        records = admin.read_all("ConnectedApp")
    except AdminApiError:  # an org or API that cannot list them: nothing found there
        return None
    for record in records:
        if record.get("oauthConfig.consumerKey") != consumer_key:
            continue
        approved = record.get("oauthPolicy.isAdminApproved", record.get("oauthConfig.isAdminApproved", ""))
        permitted = PRE_AUTHORIZED if approved == "true" else "AllSelfAuthorized"
        return AppInfo("Connected App", record.get("fullName", ""), record.get("oauthConfig.certificate", ""),
                       permitted, _comma_list(record.get("permissionSetName", "")),
                       _comma_list(record.get("profileName", "")))
    return None


def find_app_by_key(admin: AdminSession, consumer_key: str) -> Optional[AppInfo]:
    """The External Client App (else Connected App) whose consumer key is ``consumer_key``."""
    return _ecas(admin, consumer_key) or _connected_apps(admin, consumer_key)


def read_user(admin: AdminSession, username: str) -> Optional[UserInfo]:
    rows = admin.query(f"SELECT Id, Username, IsActive, ProfileId FROM User WHERE Username = {soql_quote(username)}")
    if not rows:
        return None
    row = rows[0]
    user_id = str(row["Id"])
    profile = ""
    if row.get("ProfileId"):
        found = admin.query(f"SELECT Name FROM Profile WHERE Id = {soql_quote(str(row['ProfileId']))}")
        profile = str(found[0].get("Name") or "") if found else ""
    assigned = admin.query(f"SELECT PermissionSetId FROM PermissionSetAssignment WHERE AssigneeId = {soql_quote(user_id)}")
    ids = [str(a["PermissionSetId"]) for a in assigned if a.get("PermissionSetId")]
    names: List[str] = []
    if ids:
        listed = ", ".join(soql_quote(i) for i in ids)
        names = [str(p.get("Name") or "") for p in admin.query(f"SELECT Id, Name FROM PermissionSet WHERE Id IN ({listed})")]
    return UserInfo(user_id, str(row.get("Username") or username), row.get("IsActive") is not False, profile,
                    names, ids)


def _public_key_id(public_key: object) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _certificate_causes(app: AppInfo, key: rsa.RSAPrivateKey, cert: Optional[x509.Certificate]) -> List[str]:
    if not app.certificate_pem.strip():
        return [f"the {app.kind} {app.name!r} has no certificate, so the JWT bearer flow is not enabled. Fix: "
                f"{app.screen}: Settings > Flow Enablement > \"Enable JWT Bearer Flow\" and upload your .crt "
                f"(or `sfjwt setup --app-name {app.name}`)"]
    try:
        uploaded = x509.load_pem_x509_certificate(app.certificate_pem.encode("ascii"))
    except ValueError:
        return [f"the certificate of {app.name!r} cannot be read as PEM: upload your .crt again ({app.screen})"]
    ours = _public_key_id(key.public_key())
    if _public_key_id(uploaded.public_key()) == ours:
        return []
    given = f"; your --cert: SHA-256 {fingerprint(cert)}" if cert is not None else ""
    return [f"the certificate of {app.name!r} does not match your private key: the app's certificate is "
            f"SHA-256 {fingerprint(uploaded)} (public key {_public_key_id(uploaded.public_key())}), your key's "
            f"public key is {ours}{given}. Fix: upload the .crt made with this key ({app.screen}), or "
            f"`sfjwt setup --app-name {app.name} --key-file KEY` to rotate it"]


def _access_causes(app: AppInfo, user: UserInfo) -> List[str]:
    if app.permitted and app.permitted != PRE_AUTHORIZED:
        return [f"{app.name!r} lets users authorize themselves (Permitted Users: {app.permitted}), which a JWT "
                "login cannot do. Fix: " + app.screen + ": Policies > Permitted Users = \"Admin approved users "
                "are pre-authorized\""]
    allowed_sets = set(app.permission_sets)
    if allowed_sets & (set(user.permission_sets) | set(user.permission_set_ids)) or user.profile in app.profiles:
        return []
    return [f"{user.username} is not pre-authorized for {app.name!r}: the app allows permission sets "
            f"{_names(app.permission_sets)} and profiles {_names(app.profiles)}; the user has permission sets "
            f"{_names(user.permission_sets)} and the profile {user.profile or '?'!r}. Fix: assign one of those "
            f"permission sets (Setup > Users > {user.username} > Permission Set Assignments, or `sf org assign "
            f"permset --name {app.permission_sets[0] if app.permission_sets else 'NAME'} --on-behalf-of "
            f"{user.username}`), or add the user's profile or permission set on the app ({app.screen}: Policies)"]


def _names(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values) if values else "(none)"


def causes(admin: AdminSession, *, consumer_key: str, username: str, key: rsa.RSAPrivateKey,
           cert: Optional[x509.Certificate] = None) -> List[str]:
    """Every cause of a failing JWT login that holds in the admin's org (empty: none found)."""
    app = find_app_by_key(admin, consumer_key)
    if app is None:
        return [f"no app with consumer key {mask_token(consumer_key)} in this org ({admin.instance_url}): the key "
                "belongs to another org, or this sandbox was refreshed since the app was made. Fix: set the "
                "consumer key of this org's app (Setup > External Client App Manager > the app > Settings > "
                "OAuth Settings > Consumer Key and Secret), or make one: `sfjwt setup`"]
    found = _certificate_causes(app, key, cert)
    user = read_user(admin, username)
    if user is None:
        return found + [f"no user named {username!r} in this org ({admin.instance_url}): check the username "
                        "(sandbox usernames end with .sandboxname)"]
    if not user.active:
        found.append(f"the user {username!r} is inactive. Fix: Setup > Users > {username} > Edit > Active")
    return found + _access_causes(app, user)
