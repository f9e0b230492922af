"""``sfjwt setup``: from an admin's session to a working JWT profile in one command.

The steps, each its own function: the key and certificate (:func:`key_and_certificate`),
the user and the permission set (REST: :func:`find_user`, :func:`ensure_permission_set`,
:func:`ensure_assignment`), the External Client App as a Metadata API package
(:func:`package_files`: ``package.xml`` and the five ECA components, plus the
``PermissionSet`` in a ``--dry-run`` package), its deploy (:func:`deploy`), the consumer key in
effect (:func:`read_consumer_key`), the profile (:func:`write_profile`, atomic, 0600, other
sections kept byte for byte) and the wait for a JWT login that works (:func:`wait_for_login`,
attempts 5 s apart doubling to 60 s, never from a cache). :func:`run_setup` composes them.

Running it again with the same app name updates that app (its components keep their names,
its consumer key is kept); a new ``--key-file`` rotates the certificate. Nothing secret is
printed or written into the package: the consumer key is a client id, the certificate public.
"""
from __future__ import annotations

import base64
import io
import os
import re
import secrets
import string
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Dict, Iterator, List, Mapping, Optional, Tuple
from xml.etree import ElementTree as ET

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .._internal.redact import redact
from .admin import soql_quote, METADATA_NS, AdminApiError, AdminSession, admin_session
from ..errors import (
    AppAccessError,
    AuthenticationError,
    ConfigurationError,
    ConsumerNotApprovedError,
    InvalidAssertionError,
    InvalidClientIdError,
    SfJwtError,
)
from .diagnose import causes
from .._internal.backoff import backoff_delays
from ..auth.target import resolve_login
from ..auth.token_client import TokenClient, TokenResponse
from ..auth.keys import load_private_key
from .keypair import key_matches_certificate, load_certificate, self_signed_certificate, write_atomic, write_key_pair
from ..config import check_verify, config_path, read_profile_file

__all__ = [
    "SetupOptions", "SetupResult", "SetupError", "WaitTimeout", "AppComponents", "AppPlan",
    "run_setup", "package_files", "write_package", "new_consumer_key", "check_api_name",
    "write_profile", "wait_for_login", "deploy", "find_app", "read_consumer_key",
    "DEFAULT_APP_NAME", "DEFAULT_WAIT", "PACKAGE_VERSION", "SCOPES", "CALLBACK_URL",
]

DEFAULT_APP_NAME = "sfjwt"
DEFAULT_WAIT = 900.0
PACKAGE_VERSION = "62.0"          # a --dry-run package's version (ECA certificates need 60.0+)
SCOPES = "Api, RefreshToken"      # "Manage user data via APIs (api)", "Perform requests at any time"
CALLBACK_URL = "http://localhost:1717/OauthRedirect"   # required by Salesforce, unused by JWT
WAIT_FIRST_DELAY = 5.0
WAIT_MAX_DELAY = 60.0
DEPLOY_TIMEOUT = 600.0
_KEY_ALPHABET = string.ascii_letters + string.digits + "._"
_API_NAME_RE = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*$")
#: what a JWT login answers while a new app, certificate or assignment propagates
_PROPAGATING = (InvalidClientIdError, ConsumerNotApprovedError, AppAccessError, InvalidAssertionError)

ECA_TYPES = {  # type -> (folder, suffix, component name suffix)
    "ExternalClientApplication": ("externalClientApps", "eca", ""),
    "ExtlClntAppGlobalOauthSettings": ("extlClntAppGlobalOauthSets", "ecaGlblOauth", "_glbloauth"),
    "ExtlClntAppOauthSettings": ("extlClntAppOauthSettings", "ecaOauth", "_oauth"),
    "ExtlClntAppOauthConfigurablePolicies": ("extlClntAppOauthPolicies", "ecaOauthPlcy", "_oauthPlcy"),
    "ExtlClntAppConfigurablePolicies": ("extlClntAppPolicies", "ecaPlcy", "_plcy"),
}


class SetupError(SfJwtError):
    """The org refused a step of the setup (the message quotes Salesforce and names the fix)."""


class WaitTimeout(SfJwtError):
    """The JWT login still failed when ``--wait`` ran out (exit 5)."""

    def __init__(self, message: str, last: Optional[AuthenticationError], attempts: int) -> None:
        super().__init__(message)
        self.last = last
        self.attempts = attempts


# ---------------------------------------------------------------------------------------
# names and the consumer key
# ---------------------------------------------------------------------------------------
def check_api_name(value: str, option: str, limit: int = 40) -> str:
    """A Salesforce API name: a letter first, then letters, digits and single underscores,
    not ending with one, at most ``limit`` characters."""
    if not value or len(value) > limit or not _API_NAME_RE.match(value) or value.endswith("_"):
        raise ConfigurationError(
            f"{option} {value!r} is not a Salesforce API name: start with a letter, then letters, digits "
            f"and single underscores (not at the end), at most {limit} characters (e.g. {option} sfjwt_etl)")
    return value


def new_consumer_key() -> str:
    """A consumer key in Salesforce's shape: ``3MVG9`` and 80 characters of [A-Za-z0-9._]."""
    return "3MVG9" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(80))


# ---------------------------------------------------------------------------------------
# the package
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AppComponents:
    """The fullName of each ECA component of one app (an existing app keeps its own)."""

    app: str
    names: Mapping[str, str]

    @classmethod
    def default(cls, app: str) -> "AppComponents":
        return cls(app, {t: app + suffix for t, (_f, _s, suffix) in ECA_TYPES.items()})


@dataclass(frozen=True)
class AppPlan:
    components: AppComponents
    permission_set: str
    contact_email: str
    certificate_pem: str
    consumer_key: Optional[str]
    org_scoped: Optional[str] = None
    include_permission_set: bool = False
    api_version: str = PACKAGE_VERSION


def _x(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _component(type_name: str, fields: List[Tuple[str, Optional[str]]]) -> bytes:
    inner = "".join(f"\n    <{k}>{_x(v)}</{k}>" for k, v in fields if v is not None)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{type_name} xmlns="{METADATA_NS}">{inner}\n'
            f"</{type_name}>\n").encode("utf-8")


def _component_fields(plan: AppPlan) -> Dict[str, List[Tuple[str, Optional[str]]]]:
    app = plan.components.app
    return {
        "ExternalClientApplication": [
            ("contactEmail", plan.contact_email), ("description", "JWT bearer logins (made by sfjwt setup)"),
            ("distributionState", "Local"), ("isProtected", "false"), ("label", app),
            ("orgScopedExternalApp", plan.org_scoped)],
        "ExtlClntAppGlobalOauthSettings": [
            ("callbackUrl", CALLBACK_URL), ("certificate", plan.certificate_pem),
            ("consumerKey", plan.consumer_key), ("externalClientApplication", app),
            ("isNamedUserJwtEnabled", "false"), ("label", f"{app} global OAuth settings")],
        "ExtlClntAppOauthSettings": [
            ("commaSeparatedOauthScopes", SCOPES), ("externalClientApplication", app),
            ("label", f"{app} OAuth settings")],
        "ExtlClntAppOauthConfigurablePolicies": [
            ("commaSeparatedPermissionSet", plan.permission_set), ("externalClientApplication", app),
            ("ipRelaxationPolicyType", "Enforce"), ("label", f"{app} OAuth policies"),
            ("permittedUsersPolicyType", "AdminApprovedPreAuthorized")],
        "ExtlClntAppConfigurablePolicies": [
            ("externalClientApplication", app), ("isEnabled", "true"), ("isOauthPluginEnabled", "true"),
            ("label", f"{app} policies")],
    }


def package_files(plan: AppPlan) -> Dict[str, bytes]:
    """``package.xml`` and every component file, by path, in Metadata API format."""
    files: Dict[str, bytes] = {}
    members: Dict[str, List[str]] = {}
    for type_name, fields in _component_fields(plan).items():
        folder, suffix, _ = ECA_TYPES[type_name]
        name = plan.components.names[type_name]
        files[f"{folder}/{name}.{suffix}"] = _component(type_name, fields)
        members[type_name] = [name]
    if plan.include_permission_set:
        files[f"permissionsets/{plan.permission_set}.permissionset"] = _component("PermissionSet", [
            ("description", f"Users who may log in by JWT through {plan.components.app}"),
            ("hasActivationRequired", "false"), ("label", _permission_set_label(plan.permission_set))])
        members["PermissionSet"] = [plan.permission_set]
    types = "".join(
        "\n    <types>" + "".join(f"\n        <members>{_x(m)}</members>" for m in names)
        + f"\n        <name>{t}</name>\n    </types>" for t, names in sorted(members.items()))
    files["package.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Package xmlns="{METADATA_NS}">{types}'
                            f"\n    <version>{plan.api_version}</version>\n</Package>\n").encode("utf-8")
    return files


def _permission_set_label(name: str) -> str:
    return f"{name} (JWT login)"[:80]


def write_package(folder: Path, files: Mapping[str, bytes]) -> None:
    """The package as files under ``folder`` (what ``sf project deploy start --metadata-dir``
    reads), each written to a temp file and renamed."""
    for relative, content in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, content, 0o644)


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative, content in sorted(files.items()):
            archive.writestr(relative, content)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------
# the key
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyMaterial:
    key_file: Path
    certificate: x509.Certificate
    certificate_file: Optional[Path]
    created: bool


def key_and_certificate(key_file: Optional[str], out: Path, name: str,
                        environ: Mapping[str, str]) -> KeyMaterial:
    """``--key-file`` (its ``.crt`` beside it when it matches, else a new self-signed one
    written there if that file does not exist), else ``out/<name>.key`` (reused when it
    exists, else made with its ``.crt`` as ``sfjwt keygen`` does)."""
    if key_file is None:
        path = out / f"{name}.key"
        if not path.exists():
            key_path, cert_path = write_key_pair(out, name)
            return KeyMaterial(key_path.resolve(), load_certificate(cert_path), cert_path.resolve(), True)
    else:
        path = Path(os.path.expanduser(key_file))
    key = load_private_key(private_key_file=str(path), passphrase=environ.get("SF_PRIVATE_KEY_PASSPHRASE") or None)
    cert_path = path.with_suffix(".crt")
    if cert_path.exists():
        cert = load_certificate(cert_path)
        if key_matches_certificate(key, cert):
            return KeyMaterial(path.resolve(), cert, cert_path.resolve(), False)
        return KeyMaterial(path.resolve(), self_signed_certificate(key), None, False)
    cert = self_signed_certificate(key)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return KeyMaterial(path.resolve(), cert, cert_path.resolve(), False)


# ---------------------------------------------------------------------------------------
# the org: user, permission set, app, deploy, consumer key
# ---------------------------------------------------------------------------------------
def find_user(admin: AdminSession, username: str) -> Dict[str, object]:
    rows = admin.query(f"SELECT Id, Username, Email, IsActive FROM User WHERE Username = {soql_quote(username)}")
    if not rows:
        raise ConfigurationError(f"--username {username!r}: no such user in {admin.instance_url} (Setup > Users)")
    if rows[0].get("IsActive") is False:
        raise ConfigurationError(f"--username {username!r} is inactive: activate the user first "
                                 "(Setup > Users > Edit > Active)")
    return rows[0]


def ensure_permission_set(admin: AdminSession, name: str) -> Tuple[str, bool]:
    """The permission set's Id, created (REST) when missing; (id, created)."""
    rows = admin.query(f"SELECT Id FROM PermissionSet WHERE Name = {soql_quote(name)}")
    if rows:
        return str(rows[0]["Id"]), False
    created = admin.rest("POST", "sobjects/PermissionSet", body={
        "Name": name, "Label": _permission_set_label(name),
        "Description": "Users who may log in by JWT (made by sfjwt setup)"})
    return str(created["id"]), True


def ensure_assignment(admin: AdminSession, user_id: str, permission_set_id: str) -> bool:
    """Assign the permission set to the user (REST) unless it is; True when it was created."""
    rows = admin.query("SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = "
                       f"{soql_quote(user_id)} AND PermissionSetId = {soql_quote(permission_set_id)}")
    if rows:
        return False
    admin.rest("POST", "sobjects/PermissionSetAssignment",
               body={"AssigneeId": user_id, "PermissionSetId": permission_set_id})
    return True


@dataclass(frozen=True)
class ExistingApp:
    components: AppComponents
    consumer_key: str
    org_scoped: Optional[str]


def find_app(admin: AdminSession, app: str) -> Optional[ExistingApp]:
    """The ECA named ``app`` with its components' names and consumer key, or None."""
    if app not in admin.list_metadata("ExternalClientApplication"):
        return None
    names = dict(AppComponents.default(app).names)
    consumer_key = ""
    for type_name in ECA_TYPES:
        if type_name == "ExternalClientApplication":
            continue
        for record in admin.read_all(type_name):
            if record.get("externalClientApplication") == app:
                names[type_name] = record["fullName"]
                consumer_key = consumer_key or record.get("consumerKey", "")
    header = admin.read_metadata("ExternalClientApplication", [app])
    org_scoped = header[0].get("orgScopedExternalApp") or None if header else None
    return ExistingApp(AppComponents(app, names), consumer_key, org_scoped)


def _deploy_fix(problems: str) -> str:
    text = problems.lower()
    if any(word in text for word in ("insufficient_access", "insufficient access", "insufficient privileges",
                                     "don't have permission", "do not have permission", "not authorized")):
        return ("the admin needs the permissions \"Customize Application\" and \"Create, edit, and delete "
                "External Client Apps\" (Setup > Users > the admin's profile or a permission set)")
    if "unknown type" in text or "not available" in text or "not enabled" in text:
        return "turn External Client Apps on: Setup > Quick Find \"External Client App Settings\""
    return "fix what Salesforce names above (Setup > Deployment Status shows the same), then run setup again"


def _deploy_error(result: ET.Element) -> SetupError:
    ns = f"{{{METADATA_NS}}}"
    lines = []
    for failure in result.iter(f"{ns}componentFailures"):
        lines.append(f"{failure.findtext(ns + 'componentType') or '?'} {failure.findtext(ns + 'fullName') or '?'}: "
                     f"{failure.findtext(ns + 'problem') or '?'}")
    message = result.findtext(f"{ns}errorMessage")
    if message:
        lines.append(message)
    quoted = "; ".join(lines) or f"status {result.findtext(ns + 'status')}"
    return SetupError(f"Salesforce refused the deploy: {quoted}. Fix: {_deploy_fix(quoted)}")


def deploy(admin: AdminSession, files: Mapping[str, bytes], *, timeout: float = DEPLOY_TIMEOUT) -> str:
    """Deploy the package (singlePackage, rollbackOnError) and poll checkDeployStatus until
    done; returns the deploy id, raises :class:`SetupError` quoting Salesforce on failure."""
    ns = f"{{{METADATA_NS}}}"
    archive = base64.b64encode(_zip(files)).decode("ascii")
    try:
        started = admin.metadata("deploy", f"<met:ZipFile>{archive}</met:ZipFile><met:DeployOptions>"
                                           "<met:rollbackOnError>true</met:rollbackOnError>"
                                           "<met:singlePackage>true</met:singlePackage></met:DeployOptions>")
    except AdminApiError as exc:
        raise SetupError(f"{exc}. Fix: {_deploy_fix(str(exc))}") from None
    deploy_id = started.findtext(f"{ns}result/{ns}id") or ""
    deadline = time.monotonic() + timeout
    for delay in backoff_delays(0.2, cap=5.0, jitter=0.0):
        result = admin.metadata("checkDeployStatus", f"<met:asyncProcessId>{deploy_id}</met:asyncProcessId>"
                                                     "<met:includeDetails>true</met:includeDetails>")
        status = result.find(f"{ns}result")
        if status is not None and status.findtext(f"{ns}done") == "true":
            if status.findtext(f"{ns}success") == "true":
                return deploy_id
            raise _deploy_error(status)
        if time.monotonic() + delay > deadline:
            raise SetupError(f"the deploy {deploy_id} was not done after {timeout:g} s: see Setup > "
                             "Deployment Status, then run setup again")
        time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def read_consumer_key(admin: AdminSession, components: AppComponents) -> str:
    """The consumer key in effect (Salesforce may ignore the one given): readMetadata of the
    app's ExtlClntAppGlobalOauthSettings, else Connect REST ``apps/oauth/credentials``."""
    name = components.names["ExtlClntAppGlobalOauthSettings"]
    records = admin.read_metadata("ExtlClntAppGlobalOauthSettings", [name])
    key = records[0].get("consumerKey", "") if records else ""
    if not key:
        key = _connect_consumer_key(admin, components.app)
    if not key:
        raise SetupError(
            f"the app {components.app!r} was deployed but its consumer key cannot be read back (neither the "
            "Metadata API nor Connect REST apps/oauth/credentials gave it): allow it in Setup > External Client "
            "App Settings (\"Allow access to External Client App consumer secrets via REST API\"), or copy it "
            f"from Setup > External Client App Manager > {components.app} > Settings > OAuth Settings > "
            "Consumer Key and Secret")
    return key


def _connect_consumer_key(admin: AdminSession, app: str) -> str:
    """Connect REST (v60.0+): the app's identifier from ``apps/oauth/usage``, its consumer from
    ``apps/oauth/credentials/{app}``, the key from ``.../{consumer}?part=key``; "" if refused."""
    try:
        listed = admin.rest("GET", "apps/oauth/usage").get("apps") or []
        identifier = next((a.get("identifier") for a in listed if a.get("developerName") == app), None)
        if not identifier:
            return ""
        consumers = admin.rest("GET", f"apps/oauth/credentials/{identifier}").get("consumers") or []
        if not consumers:
            return ""
        first = consumers[0]
        if first.get("key"):
            return str(first["key"])
        one = admin.rest("GET", f"apps/oauth/credentials/{identifier}/{first.get('id')}", params={"part": "key"})
        return str(one.get("key") or "")
    except (AdminApiError, AttributeError, TypeError):
        return ""


# ---------------------------------------------------------------------------------------
# the profile
# ---------------------------------------------------------------------------------------
_SECTION_RE = re.compile(r"^\s*\[([^\]]*)\]")


def write_profile(path: Path, name: str, values: Mapping[str, str]) -> None:
    """Replace (or add) the section ``[name]`` of the INI file at ``path`` with ``values``;
    every other line stays as it was. Temp file in the same folder, fsync, rename; 0600."""
    if not name or any(c in name for c in "[]\r\n") or name != name.strip():
        raise ConfigurationError(f"--profile {name!r} is not a profile name (no brackets, no line breaks)")
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            raise ConfigurationError(f"the profile value of {key} holds a line break")
    target = Path(os.path.realpath(path))
    old = read_profile_file(target).decode("utf-8-sig") if target.exists() else ""
    section = [f"[{name}]\n"] + [f"{key} = {value}\n" for key, value in values.items()]
    out: List[str] = []
    inside = replaced = False
    for line in old.splitlines(keepends=True):
        header = _SECTION_RE.match(line)
        if header:
            inside = header.group(1).strip() == name
            if inside and not replaced:
                out.extend(section)
                replaced = True
        if not inside:
            out.append(line if line.endswith("\n") else line + "\n")
    if not replaced:
        if out and out[-1].strip():
            out.append("\n")
        out.extend(section)
    if not target.parent.exists():
        target.parent.mkdir(parents=True, mode=0o700)
    write_atomic(target, "".join(out).encode("utf-8"), 0o600)


# ---------------------------------------------------------------------------------------
# the wait
# ---------------------------------------------------------------------------------------
def _delays() -> Iterator[float]:
    return backoff_delays(WAIT_FIRST_DELAY, cap=WAIT_MAX_DELAY, jitter=0.0)


def wait_for_login(client: TokenClient, budget: float, err: IO[str]) -> Tuple[TokenResponse, int]:
    """Log in by JWT until it works (a real token request each time, never a cache): first at
    once, then 5, 10, 20, 40, 60, 60 ... seconds apart, while Salesforce answers what a new app,
    certificate or assignment answers while it propagates. Returns (token, attempts);
    :class:`WaitTimeout` when ``budget`` seconds pass; any other refusal is raised at once."""
    started = time.monotonic()
    attempts = 0
    delays = _delays()
    while True:
        attempts += 1
        try:
            return client.fetch(), attempts
        except _PROPAGATING as exc:
            last = exc
        elapsed = time.monotonic() - started
        delay = min(next(delays), budget - elapsed)
        if delay <= 0:
            raise WaitTimeout(
                f"the JWT login still fails after {elapsed:.0f} s and {attempts} attempt(s) ({last.error}: "
                f"{last.description}): Salesforce can take up to ~10 minutes to apply a new app; run "
                "`sfjwt check` later", last, attempts)
        err.write(f"  login {attempts}: {last.error} ({last.description}); still propagating, next try in "
                  f"{delay:.0f} s\n")
        err.flush()
        time.sleep(delay)


# ---------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------
@dataclass
class SetupOptions:
    target_org: Optional[str] = None
    instance_url: Optional[str] = None
    username: Optional[str] = None
    app_name: str = DEFAULT_APP_NAME
    permission_set: Optional[str] = None
    key_file: Optional[str] = None
    out: Optional[str] = None
    profile: str = "default"
    dry_run: Optional[str] = None
    wait: Optional[float] = DEFAULT_WAIT    # None: --no-wait


@dataclass
class SetupResult:
    app_name: str
    consumer_key: str
    username: str
    key_file: str
    certificate_file: Optional[str]
    login_url: str = ""
    audience: Optional[str] = None
    profile: Optional[str] = None
    config_file: Optional[str] = None
    created: bool = True
    deploy_id: str = ""
    token_requests: int = 0
    logged_in: bool = False
    package_dir: Optional[str] = None


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii").strip()


def _key_folder(options: SetupOptions, environ: Mapping[str, str]) -> Path:
    if options.out:
        return Path(os.path.expanduser(options.out))
    return config_path(environ).parent


def run_dry_run(options: SetupOptions, environ: Mapping[str, str]) -> SetupResult:
    """``--dry-run DIR``: the key (if new) and the package; no org is contacted."""
    if not options.username:
        raise ConfigurationError("--dry-run contacts no org: give --username (the user who will log in; "
                                 "it is also the app's contact email when it is one)")
    app = check_api_name(options.app_name, "--app-name")
    permset = check_api_name(options.permission_set or f"{app}_users", "--permission-set", 80)
    material = key_and_certificate(options.key_file, _key_folder(options, environ), app, environ)
    plan = AppPlan(AppComponents.default(app), permset, _contact(options.username), _pem(material.certificate),
                   new_consumer_key(), include_permission_set=True)
    folder = Path(os.path.expanduser(str(options.dry_run)))
    write_package(folder, package_files(plan))
    return SetupResult(app, plan.consumer_key or "", options.username, str(material.key_file),
                       str(material.certificate_file) if material.certificate_file else None,
                       package_dir=str(folder.resolve()))


def _contact(username: str, email: object = None) -> str:
    if isinstance(email, str) and "@" in email:
        return email
    return username if "@" in username else "admin@example.com"


def run_setup(options: SetupOptions, *, environ: Optional[Mapping[str, str]] = None,
              err: IO[str]) -> SetupResult:
    """The whole setup (see the module docstring); progress lines on ``err``."""
    env = os.environ if environ is None else environ
    if options.dry_run:
        return run_dry_run(options, env)
    app = check_api_name(options.app_name, "--app-name")
    permset = check_api_name(options.permission_set or f"{app}_users", "--permission-set", 80)
    admin = admin_session(target_org=options.target_org, instance_url=options.instance_url, environ=env)
    _say(err, f"admin session: {admin.username} on {admin.instance_url} (API {admin.api_version})")
    username = options.username or admin.username
    user = find_user(admin, username)
    material = key_and_certificate(options.key_file, _key_folder(options, env), app, env)
    permset_id, made = ensure_permission_set(admin, permset)
    _say(err, f"permission set {permset}: {'created' if made else 'exists'}")
    existing = find_app(admin, app)
    plan = AppPlan(existing.components if existing else AppComponents.default(app), permset,
                   _contact(username, user.get("Email")), _pem(material.certificate),
                   (existing.consumer_key or None) if existing else new_consumer_key(),
                   org_scoped=existing.org_scoped if existing else None, api_version=admin.api_version)
    _say(err, f"{'updating' if existing else 'creating'} the External Client App {app!r} (Metadata API deploy)")
    deploy_id = deploy(admin, package_files(plan))
    if ensure_assignment(admin, str(user["Id"]), permset_id):
        _say(err, f"permission set {permset} assigned to {username}")
    consumer_key = read_consumer_key(admin, plan.components)
    result = SetupResult(app, consumer_key, username, str(material.key_file),
                         str(material.certificate_file) if material.certificate_file else None,
                         created=existing is None, deploy_id=deploy_id)
    _write_profile_of(result, admin, options, env)
    if options.wait is not None:
        _say(err, f"waiting for a JWT login as {username} to work (up to {options.wait:.0f} s; a new app "
                  "can take up to ~10 minutes)")
        try:
            _wait(result, env, options.wait, err)
        except (AuthenticationError, WaitTimeout):
            _explain(admin, result, env, err)
            raise
    return result


def _explain(admin: AdminSession, result: SetupResult, env: Mapping[str, str], err: IO[str]) -> None:
    """After a failed wait: the causes the org shows (diagnose), on stderr."""
    key = load_private_key(private_key_file=result.key_file,
                           passphrase=env.get("SF_PRIVATE_KEY_PASSPHRASE") or None)
    try:
        found = causes(admin, consumer_key=result.consumer_key, username=result.username, key=key)
    except (SfJwtError, OSError) as exc:
        found = [f"(cannot read the org: {exc})"]
    if not found:
        _say(err, "the app, its certificate and the user's access look right in the org: Salesforce is still "
                  "applying the change")
    for cause in found:
        _say(err, f"cause: {cause}")


def _new_profile_values(result: SetupResult, admin: AdminSession, env: Mapping[str, str]) -> Dict[str, str]:
    values = {"username": result.username, "consumer_key": result.consumer_key,
              "private_key_file": result.key_file, "login_url": admin.instance_url}
    target = resolve_login(login_url=admin.instance_url)
    if target.host_kind == "other":  # not a Salesforce host (a local org): say which aud to sign
        sandbox = admin.query("SELECT IsSandbox FROM Organization")
        values["audience"] = ("https://test.salesforce.com" if sandbox and sandbox[0].get("IsSandbox")
                              else "https://login.salesforce.com")
    if env.get("SF_CA_BUNDLE"):
        values["ca_bundle"] = os.path.abspath(os.path.expanduser(env["SF_CA_BUNDLE"]))
    return values


def _write_profile_of(result: SetupResult, admin: AdminSession, options: SetupOptions,
                      env: Mapping[str, str]) -> None:
    values = _new_profile_values(result, admin, env)
    path = config_path(env)
    write_profile(path, options.profile, values)
    result.profile, result.config_file, result.login_url = options.profile, str(path), values["login_url"]
    result.audience = values.get("audience")


def _wait(result: SetupResult, env: Mapping[str, str], budget: float, err: IO[str]) -> None:
    key = load_private_key(private_key_file=result.key_file,
                           passphrase=env.get("SF_PRIVATE_KEY_PASSPHRASE") or None)
    target = resolve_login(login_url=result.login_url, audience=result.audience)
    bundle = env.get("SF_CA_BUNDLE")
    verify = check_verify(bundle if bundle else True, named="SF_CA_BUNDLE", environ=env)
    client = TokenClient(username=result.username, consumer_key=result.consumer_key, key=key,
                         target=target, verify=verify)
    try:
        wait_for_login(client, budget, err)
        result.logged_in = True
    finally:
        result.token_requests = client.requests_made
        client.close()


def _say(err: IO[str], message: str) -> None:
    err.write(f"sfjwt setup: {redact(message)}\n")
    err.flush()
