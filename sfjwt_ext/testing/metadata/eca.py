"""The Metadata API side of External Client Apps: deploy, list, read and retrieve of the five ECA
types, ``PermissionSet``, the refusal of new ``ConnectedApp`` components (Spring '26), and list /
read / retrieve of the legacy Connected Apps that exist (a redeploy of one is accepted unchanged).

| type | folder / suffix | what it sets on the app (:class:`~.apps.OrgApp`) |
|---|---|---|
| ExternalClientApplication | externalClientApps/*.eca | label, contactEmail (distributionState, isProtected kept) |
| ExtlClntAppGlobalOauthSettings | extlClntAppGlobalOauthSets/*.ecaGlblOauth | callbackUrl, certificate (PEM: JWT bearer flow on), consumerKey (used on create when given, else generated; a different one on update is ignored), isNamedUserJwtEnabled |
| ExtlClntAppOauthSettings | extlClntAppOauthSettings/*.ecaOauth | commaSeparatedOauthScopes |
| ExtlClntAppOauthConfigurablePolicies | extlClntAppOauthPolicies/*.ecaOauthPlcy | permittedUsersPolicyType, commaSeparatedPermissionSet (API names or Ids), commaSeparatedProfile, ipRelaxationPolicyType |
| ExtlClntAppConfigurablePolicies | extlClntAppPolicies/*.ecaPlcy | isEnabled, isOauthPluginEnabled |

Components name their app in ``externalClientApplication`` (their own fullName is free; the
convention is APP_glbloauth, APP_oauth, APP_oauthPlcy, APP_plcy). What list/read/retrieve show is
built from the app as it is now (the consumer key in effect, never the consumer secret).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple
from xml.etree import ElementTree as ET

from cryptography import x509

from ..apps.models import ADMIN_APPROVED, CONNECTED_APP, ECA, SELF_AUTHORIZED, OrgApp, join_list, new_consumer_key, split_list
from ..core.jobs import child_text, xml_text
from ..core.soql import SoqlError
from ..services import OrgServices


__all__ = ["ECA_TYPES", "CONNECTED_APP_REFUSED", "Failure", "EcaDeploy", "components", "read_fields",
           "component_xml"]

METADATA_NS = "http://soap.sforce.com/2006/04/metadata"

#: type -> (folder, suffix, naming convention for a component of app APP)
ECA_TYPES: Dict[str, Tuple[str, str, str]] = {
    "ExternalClientApplication": ("externalClientApps", "eca", "{app}"),
    "ExtlClntAppGlobalOauthSettings": ("extlClntAppGlobalOauthSets", "ecaGlblOauth", "{app}_glbloauth"),
    "ExtlClntAppOauthSettings": ("extlClntAppOauthSettings", "ecaOauth", "{app}_oauth"),
    "ExtlClntAppOauthConfigurablePolicies": ("extlClntAppOauthPolicies", "ecaOauthPlcy", "{app}_oauthPlcy"),
    "ExtlClntAppConfigurablePolicies": ("extlClntAppPolicies", "ecaPlcy", "{app}_plcy"),
}
TYPE_BY_FOLDER = {folder: t for t, (folder, _s, _n) in ECA_TYPES.items()}

#: what a deploy of a new ConnectedApp answers since Spring '26 (Knowledge Article 005228017)
CONNECTED_APP_REFUSED = ("You can't create a connected app. Connected app creation is disabled in this org "
                         "(Spring '26, Knowledge Article 005228017): create an external client app instead, "
                         "or contact Salesforce Support to allow connected app creation.")
_PERMITTED = (ADMIN_APPROVED, SELF_AUTHORIZED)


@dataclass(frozen=True)
class Failure:
    """One component's problem, as checkDeployStatus reports it in ``componentFailures``."""

    type: str
    full_name: str
    file_name: str
    problem: str


@dataclass
class _Parsed:
    type: str
    full_name: str
    file_name: str
    root: ET.Element

    def text(self, tag: str) -> Optional[str]:
        value = child_text(self.root, tag)
        return value.strip() if isinstance(value, str) else value

    def flag(self, tag: str, default: bool) -> bool:
        value = self.text(tag)
        return default if value is None or value == "" else value.lower() == "true"


@dataclass
class EcaDeploy:
    """The ECA, ConnectedApp and PermissionSet components of one deploy: checked, then applied."""

    org: OrgServices
    parsed: List[_Parsed] = field(default_factory=list)
    failures: List[Failure] = field(default_factory=list)
    names: Dict[str, Dict[str, str]] = field(default_factory=dict)   # app -> type -> component fullName

    def handles(self, folder: str) -> bool:
        return folder in TYPE_BY_FOLDER or folder in ("connectedApps", "permissionsets")

    def add(self, folder: str, file_name: str, content: bytes) -> Tuple[str, str]:
        """Parse one component file; returns (type, fullName)."""
        type_name = TYPE_BY_FOLDER.get(folder) or ("ConnectedApp" if folder == "connectedApps" else "PermissionSet")
        full_name = file_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        try:
            root = ET.fromstring(content)
        except ET.ParseError as exc:
            self.failures.append(Failure(type_name, full_name, file_name, f"Error parsing file: {exc}"))
            return type_name, full_name
        self.parsed.append(_Parsed(type_name, full_name, file_name, root))
        return type_name, full_name

    # ------------------------------------------------------------------ checks
    def _app_name(self, item: _Parsed) -> str:
        if item.type == "ExternalClientApplication":
            return item.full_name
        return item.text("externalClientApplication") or ""

    def check(self) -> List[Failure]:
        """Every problem of the package (nothing applied)."""
        in_package = {i.full_name.lower() for i in self.parsed if i.type == "ExternalClientApplication"}
        for item in self.parsed:
            problem = self._problem(item, in_package)
            if problem:
                self.failures.append(Failure(item.type, item.full_name, item.file_name, problem))
        return self.failures

    def _problem(self, item: _Parsed, in_package: Set[str]) -> Optional[str]:
        registry = self.org.app_registry
        if item.type == "ConnectedApp":
            existing = registry.named(item.full_name)
            return None if existing is not None and existing.kind != ECA else CONNECTED_APP_REFUSED
        if item.type == "PermissionSet":
            return None
        if not registry.ecas_enabled:
            return "Not available for deploy for this organization"
        app_name = self._app_name(item)
        if not app_name:
            return "Required field is missing: externalClientApplication"
        if app_name.lower() not in in_package and registry.named(app_name) is None:
            return f"In field: externalClientApplication - no ExternalClientApplication named {app_name} found"
        if item.type == "ExtlClntAppGlobalOauthSettings":
            return self._oauth_problem(item, registry.named(app_name))
        if item.type == "ExtlClntAppOauthConfigurablePolicies":
            permitted = item.text("permittedUsersPolicyType")
            if permitted and permitted not in _PERMITTED:
                return f"bad value for restricted picklist field: permittedUsersPolicyType ({permitted})"
        return None

    def _oauth_problem(self, item: _Parsed, existing: Optional[OrgApp]) -> Optional[str]:
        pem = item.text("certificate")
        if pem:
            try:
                x509.load_pem_x509_certificate(pem.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                return "The certificate is not a valid PEM-encoded X.509 certificate."
        key = item.text("consumerKey")
        if key and existing is None:
            owner = self.org.app_registry.get(key)
            if owner is not None:
                return "The consumer key is already taken."
        return None

    # ------------------------------------------------------------------ apply
    def apply(self) -> None:
        """Create or update the apps and permission sets (after a clean ``check``)."""
        for item in self.parsed:
            if item.type == "PermissionSet":
                self._apply_permission_set(item)
        by_app: Dict[str, List[_Parsed]] = {}
        for item in self.parsed:
            if item.type in ECA_TYPES:
                by_app.setdefault(self._app_name(item).lower(), []).append(item)
        for items in by_app.values():
            self._apply_app(items)

    def _apply_permission_set(self, item: _Parsed) -> None:
        store = self.org.store
        label = item.text("label") or item.full_name
        rows = store.query(f"SELECT Id FROM PermissionSet WHERE Name = {_quoted(item.full_name)}").records
        try:
            if rows:
                store.update("PermissionSet", rows[0]["Id"], {"Label": label})
            else:
                store.insert("PermissionSet", [{"Name": item.full_name, "Label": label,
                                                "Description": item.text("description")}])
        except SoqlError as exc:
            self.failures.append(Failure(item.type, item.full_name, item.file_name, exc.message))

    def _apply_app(self, items: List[_Parsed]) -> None:
        registry = self.org.app_registry
        name = self._app_name(items[0])
        app = registry.named(name)
        changes: Dict[str, Any] = {}
        for item in items:
            changes.update(_settings(item, app))
            self.names.setdefault(name.lower(), {})[item.type] = item.full_name
        if app is None:
            key = changes.pop("consumer_key", None) or new_consumer_key()
            label = changes.pop("name", name)
            changes.setdefault("profiles", ())
            app = registry.add(OrgApp(key, label, changes.pop("public_key", None), kind=ECA, developer_name=name,
                                      **changes))
        else:
            changes.pop("consumer_key", None)     # Salesforce keeps the consumer key in effect
            app = registry.change(app, **changes)
        app.components.update(self.names.get(name.lower(), {}))


def _settings(item: _Parsed, app: Optional[OrgApp]) -> Dict[str, Any]:
    """The OrgApp fields one component sets."""
    out: Dict[str, Any] = {}
    if item.type == "ExternalClientApplication":
        out["name"] = item.text("label") or item.full_name
        out["contact_email"] = item.text("contactEmail") or ""
    elif item.type == "ExtlClntAppGlobalOauthSettings":
        pem = item.text("certificate")
        if pem:
            cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
            out["public_key"], out["certificate_pem"] = cert.public_key(), pem
        if item.text("consumerKey"):
            out["consumer_key"] = item.text("consumerKey")
        if item.text("callbackUrl"):
            out["callback_url"] = item.text("callbackUrl")
        out["jwt_access_tokens"] = item.flag("isNamedUserJwtEnabled", False)
    elif item.type == "ExtlClntAppOauthSettings":
        out["scopes"] = split_list(item.text("commaSeparatedOauthScopes"))
    elif item.type == "ExtlClntAppOauthConfigurablePolicies":
        out["permitted_users"] = item.text("permittedUsersPolicyType") or ADMIN_APPROVED
        out["permission_sets"] = split_list(item.text("commaSeparatedPermissionSet"))
        out["profiles"] = split_list(item.text("commaSeparatedProfile"))
        out["ip_relaxation"] = item.text("ipRelaxationPolicyType") or "ENFORCE"
    elif item.type == "ExtlClntAppConfigurablePolicies":
        out["enabled"] = item.flag("isEnabled", True)
        out["oauth_enabled"] = item.flag("isOauthPluginEnabled", True)
    return out


# ---------------------------------------------------------------------- list / read / retrieve
def component_name(app: OrgApp, type_name: str) -> str:
    return app.components.get(type_name) or ECA_TYPES[type_name][2].format(app=app.developer_name)


def components(org: OrgServices) -> List[Tuple[str, str, str, float]]:
    """(type, fullName, fileName, timestamp) of every ECA component and permission set."""
    out: List[Tuple[str, str, str, float]] = []
    for app in org.app_registry.all(ECA):
        for type_name, (folder, suffix, _n) in ECA_TYPES.items():
            name = component_name(app, type_name)
            out.append((type_name, name, f"{folder}/{name}.{suffix}", app.modified))
    for app in org.app_registry.all(CONNECTED_APP):
        out.append(("ConnectedApp", app.developer_name, f"connectedApps/{app.developer_name}.connectedApp",
                    app.modified))
    for row in org.store.query("SELECT Name FROM PermissionSet").records:
        out.append(("PermissionSet", str(row["Name"]), f"permissionsets/{row['Name']}.permissionset", 0.0))
    return out


def _owner(org: OrgServices, type_name: str, full_name: str) -> Optional[OrgApp]:
    return next((a for a in org.app_registry.all(ECA) if component_name(a, type_name) == full_name), None)


def read_fields(org: OrgServices, type_name: str, full_name: str) -> Optional[str]:
    """The XML elements (after ``fullName``) of one component as it is now, or None if unknown."""
    if type_name == "PermissionSet":
        rows = org.store.query(f"SELECT Label, Description FROM PermissionSet WHERE Name = {_quoted(full_name)}").records
        if not rows:
            return None
        desc = rows[0].get("Description")
        return ((f"<description>{xml_text(desc)}</description>" if desc else "")
                + f"<hasActivationRequired>false</hasActivationRequired><label>{xml_text(rows[0]['Label'])}</label>")
    if type_name == "ConnectedApp":
        legacy = org.app_registry.named(full_name)
        return _connected_app(legacy) if legacy is not None and legacy.kind == CONNECTED_APP else None
    app = _owner(org, type_name, full_name)
    if app is None:
        return None
    return "".join(f"<{tag}>{xml_text(value)}</{tag}>" for tag, value in _fields(app, type_name))


def _fields(app: OrgApp, type_name: str) -> List[Tuple[str, str]]:
    """(element, text) pairs in the order the Metadata API writes them (alphabetical)."""
    link = ("externalClientApplication", app.developer_name)
    label = ("label", app.name)
    if type_name == "ExternalClientApplication":
        return [("contactEmail", app.contact_email or "admin@example.com"), ("distributionState", "Local"),
                ("isProtected", "false"), label]
    if type_name == "ExtlClntAppGlobalOauthSettings":
        pairs = [("callbackUrl", app.callback_url)]
        if app.certificate_pem:
            pairs.append(("certificate", app.certificate_pem))
        pairs += [("consumerKey", app.consumer_key), link, ("isConsumerSecretOptional", "false"),
                  ("isNamedUserJwtEnabled", str(app.jwt_access_tokens).lower()), label]
        return pairs
    if type_name == "ExtlClntAppOauthSettings":
        return [("commaSeparatedOauthScopes", join_list(app.scopes)), link, label]
    if type_name == "ExtlClntAppOauthConfigurablePolicies":
        pairs = [("commaSeparatedPermissionSet", join_list(app.permission_sets)),
                 ("commaSeparatedProfile", join_list(app.profiles)), link,
                 ("ipRelaxationPolicyType", app.ip_relaxation), label,
                 ("permittedUsersPolicyType", app.permitted_users)]
        return [p for p in pairs if p[1] != ""]
    return [link, ("isEnabled", str(app.enabled).lower()), ("isOauthPluginEnabled", str(app.oauth_enabled).lower()),
            label]


def _connected_app(app: OrgApp) -> str:
    """A legacy Connected App as readMetadata shows it: oauthConfig (consumer key, certificate,
    isAdminApproved, scopes), oauthPolicy, the pre-authorized profiles and permission sets."""
    config = (f"<callbackUrl>{xml_text(app.callback_url)}</callbackUrl>"
              + (f"<certificate>{xml_text(app.certificate_pem)}</certificate>" if app.certificate_pem else "")
              + f"<consumerKey>{xml_text(app.consumer_key)}</consumerKey>"
              f"<isAdminApproved>{str(app.permitted_users == ADMIN_APPROVED).lower()}</isAdminApproved>"
              + "".join(f"<scopes>{xml_text(s)}</scopes>" for s in app.scopes))
    return (f"<contactEmail>{xml_text(app.contact_email or 'admin@example.com')}</contactEmail>"
            f"<label>{xml_text(app.name)}</label><oauthConfig>{config}</oauthConfig>"
            f"<oauthPolicy><ipRelaxation>{xml_text(app.ip_relaxation)}</ipRelaxation>"
            "<refreshTokenPolicy>infinite</refreshTokenPolicy></oauthPolicy>"
            + "".join(f"<permissionSetName>{xml_text(p)}</permissionSetName>" for p in app.permission_sets)
            + "".join(f"<profileName>{xml_text(p)}</profileName>" for p in app.profiles))


def component_xml(org: OrgServices, type_name: str, full_name: str) -> bytes:
    """A retrieved component's file (Metadata API format)."""
    inner = read_fields(org, type_name, full_name) or ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{type_name} xmlns="{METADATA_NS}">{inner}'
            f"</{type_name}>\n").encode("utf-8")


def is_handled(type_name: str) -> bool:
    return type_name in ECA_TYPES or type_name in ("PermissionSet", "ConnectedApp")


def _quoted(value: str) -> str:
    """``value`` as a SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
