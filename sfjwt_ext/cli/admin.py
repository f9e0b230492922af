"""An administrator's session, for ``sfjwt setup`` and ``sfjwt check --target-org``.

Two sources, never a token on the command line:

* the Salesforce CLI: ``sf org display --target-org X --json`` (instance URL, username) and
  ``sf org auth show-access-token --target-org X --json`` (``result.accessToken``: the CLI
  2.146 prints ``[REDACTED]`` in ``org display``);
* ``--instance-url URL`` with the token in ``SF_ADMIN_ACCESS_TOKEN``.

:class:`AdminSession` then speaks REST (``rest``, ``query``) and the SOAP Metadata API
(``metadata``) with that token. The token is never logged, never in a repr or a message;
TLS trust is ``SF_CA_BUNDLE`` when set (as for JWT logins), else requests' default.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union
from xml.etree import ElementTree as ET

import requests

from .._internal.redact import excerpt, mask_token, redact
from .._internal.urls import host_of
from ..errors import ConfigurationError, SfJwtError
from ..config import check_verify

__all__ = [
    "AdminSession",
    "AdminApiError",
    "admin_session",
    "from_sf_cli",
    "from_token",
    "ADMIN_TOKEN_ENV",
    "METADATA_NS",
    "MIN_API_VERSION",
    "soql_quote",
]

ADMIN_TOKEN_ENV = "SF_ADMIN_ACCESS_TOKEN"
METADATA_NS = "http://soap.sforce.com/2006/04/metadata"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
#: ExtlClntAppGlobalOauthSettings.certificate (the JWT bearer flow) exists from API 60.0
MIN_API_VERSION = 60.0
SF_TIMEOUT = 120.0
HTTP_TIMEOUT = (10.0, 120.0)
_LOGIN_HINT = "sf org login web --alias {alias}"


class AdminApiError(SfJwtError):
    """Salesforce refused a call made with the admin's session; ``code`` is Salesforce's
    errorCode (or SOAP faultcode), the message quotes Salesforce and names the fix."""

    def __init__(self, message: str, *, code: str = "", status: Optional[int] = None) -> None:
        super().__init__(redact(message))
        self.code = code
        self.status = status


@dataclass
class AdminSession:
    """An admin's access token on one instance (``repr`` masks the token)."""

    instance_url: str
    username: str
    api_version: str
    source: str                      # how it was obtained, for messages
    user_id: str = ""
    org_id: str = ""
    verify: Union[bool, str] = True
    _token: str = field(default="", repr=False)
    _http: requests.Session = field(default_factory=requests.Session, repr=False)

    def __repr__(self) -> str:
        return (f"AdminSession(instance_url={self.instance_url!r}, username={self.username!r}, "
                f"api_version={self.api_version!r}, token={mask_token(self._token)})")

    # -- REST ---------------------------------------------------------------------------
    def rest(self, method: str, path: str, *, body: Optional[Mapping[str, Any]] = None,
             params: Optional[Mapping[str, str]] = None) -> Any:
        """``/services/data/vXX.X/<path>``; JSON in, JSON out (None for 204)."""
        url = f"{self.instance_url}/services/data/v{self.api_version}/{path.lstrip('/')}"
        response = self._http.request(
            method, url, json=body, params=params, timeout=HTTP_TIMEOUT, verify=self.verify,
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
        )
        if response.status_code == 204 or not response.content:
            if response.ok:
                return None
        if not response.ok:
            raise self._rest_error(response, method, path)
        return response.json()

    def _rest_error(self, response: requests.Response, method: str, path: str) -> AdminApiError:
        try:
            data = response.json()
        except ValueError:
            data = None
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        code = str(first.get("errorCode") or "")
        message = str(first.get("message") or excerpt(response.text, 200))
        if response.status_code == 401:
            return AdminApiError(
                f"the admin session ({self.source}) was refused: {code}: {message}. Log in again "
                f"({_LOGIN_HINT.format(alias='ALIAS')}) or set {ADMIN_TOKEN_ENV} to a fresh token",
                code=code, status=401)
        return AdminApiError(
            f"Salesforce refused {method} {path.split('?')[0]} (HTTP {response.status_code}): {code}: {message}",
            code=code, status=response.status_code)

    def query(self, soql: str) -> List[Dict[str, Any]]:
        """Every record of ``soql`` (follows nextRecordsUrl)."""
        result = self.rest("GET", "query", params={"q": soql})
        records = list(result.get("records") or [])
        while not result.get("done", True) and result.get("nextRecordsUrl"):
            tail = str(result["nextRecordsUrl"]).split(f"/v{self.api_version}/", 1)[-1]
            result = self.rest("GET", tail)
            records.extend(result.get("records") or [])
        return records

    # -- SOAP Metadata API ----------------------------------------------------------------
    def metadata(self, operation: str, inner: str) -> ET.Element:
        """Call one Metadata API operation; ``inner`` is the XML inside ``<met:operation>``.
        Returns the ``...Response`` element; a SOAP fault raises :class:`AdminApiError`."""
        envelope = (
            f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_NS}" '
            f'xmlns:met="{METADATA_NS}"><soapenv:Header><met:SessionHeader><met:sessionId>'
            f"{_xml(self._token)}</met:sessionId></met:SessionHeader></soapenv:Header><soapenv:Body>"
            f"<met:{operation}>{inner}</met:{operation}></soapenv:Body></soapenv:Envelope>"
        )
        url = f"{self.instance_url}/services/Soap/m/{self.api_version}"
        response = self._http.post(
            url, data=envelope.encode("utf-8"), timeout=HTTP_TIMEOUT, verify=self.verify,
            headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": operation},
        )
        del envelope
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError:
            raise AdminApiError(
                f"the Metadata API answered {operation} with HTTP {response.status_code} and no SOAP "
                f"envelope: {excerpt(response.text, 200)}", status=response.status_code) from None
        body = root.find(f"{{{SOAP_NS}}}Body")
        fault = body.find(f"{{{SOAP_NS}}}Fault") if body is not None else None
        if fault is not None:
            code = (fault.findtext("faultcode") or "").split(":")[-1]
            text = fault.findtext("faultstring") or ""
            raise AdminApiError(f"the Metadata API refused {operation}: {text}", code=code,
                                status=response.status_code)
        answer = body.find(f"{{{METADATA_NS}}}{operation}Response") if body is not None else None
        if answer is None:
            raise AdminApiError(f"the Metadata API answered {operation} without a {operation}Response",
                                status=response.status_code)
        return answer

    def list_metadata(self, type_name: str) -> List[str]:
        """The fullNames of every component of ``type_name`` (listMetadata)."""
        answer = self.metadata("listMetadata", f"<met:queries><met:type>{_xml(type_name)}</met:type>"
                                               f"</met:queries><met:asOfVersion>{self.api_version}</met:asOfVersion>")
        return [r.findtext(f"{{{METADATA_NS}}}fullName") or "" for r in answer.findall(f"{{{METADATA_NS}}}result")]

    def read_metadata(self, type_name: str, names: List[str]) -> List[Dict[str, str]]:
        """readMetadata, 10 names per call; each record as {field: text} (empty records, which
        Salesforce returns for unknown names, are left out)."""
        records: List[Dict[str, str]] = []
        for start in range(0, len(names), 10):
            inner = f"<met:type>{_xml(type_name)}</met:type>" + "".join(
                f"<met:fullNames>{_xml(n)}</met:fullNames>" for n in names[start:start + 10])
            answer = self.metadata("readMetadata", inner)
            for record in answer.iter(f"{{{METADATA_NS}}}records"):
                fields = _flatten(record)
                if fields.get("fullName"):
                    records.append(fields)
        return records

    def read_all(self, type_name: str) -> List[Dict[str, str]]:
        """Every component of a type, read."""
        names = [n for n in self.list_metadata(type_name) if n]
        return self.read_metadata(type_name, names) if names else []


def _flatten(record: ET.Element) -> Dict[str, str]:
    """A metadata record as {field: text}: nested fields as ``parent.child`` (ConnectedApp's
    ``oauthConfig.consumerKey``), repeated ones joined with ", " (``profileName``)."""
    fields: Dict[str, str] = {}

    def put(name: str, value: str) -> None:
        fields[name] = f"{fields[name]}, {value}" if name in fields else value

    for child in record:
        if len(child) == 0:
            put(_local(child.tag), (child.text or "").strip())
            continue
        for leaf in child.iter():
            if leaf is not child and len(leaf) == 0:
                put(f"{_local(child.tag)}.{_local(leaf.tag)}", (leaf.text or "").strip())
    return fields


def _xml(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# ---------------------------------------------------------------------------------------
# where the session comes from
# ---------------------------------------------------------------------------------------
def admin_session(*, target_org: Optional[str] = None, instance_url: Optional[str] = None,
                  environ: Optional[Mapping[str, str]] = None) -> AdminSession:
    """The admin session named by ``--target-org`` or ``--instance-url`` (+ SF_ADMIN_ACCESS_TOKEN)."""
    env = os.environ if environ is None else environ
    if target_org and instance_url:
        raise ConfigurationError("give --target-org (a Salesforce CLI login) or --instance-url (with "
                                 f"{ADMIN_TOKEN_ENV}), not both")
    if instance_url:
        return from_token(instance_url, env)
    if target_org:
        return from_sf_cli(target_org, env)
    raise ConfigurationError(
        "an admin session is needed: --target-org ALIAS (log in once with "
        f"`{_LOGIN_HINT.format(alias='ALIAS')}`), or --instance-url https://acme.my.salesforce.com "
        f"with the admin's access token in {ADMIN_TOKEN_ENV}")


def _verify(env: Mapping[str, str]) -> Union[bool, str]:
    bundle = env.get("SF_CA_BUNDLE")
    return check_verify(bundle if bundle else True, named="SF_CA_BUNDLE", environ=env)


def from_token(instance_url: str, env: Mapping[str, str]) -> AdminSession:
    token = (env.get(ADMIN_TOKEN_ENV) or "").strip()
    if not token:
        raise ConfigurationError(
            f"--instance-url needs the admin's access token in {ADMIN_TOKEN_ENV} (never on the command "
            f"line); e.g. export {ADMIN_TOKEN_ENV}=$(sf org auth show-access-token --target-org ALIAS "
            "--json | jq -r .result.accessToken), or use --target-org ALIAS")
    url = instance_url.strip().rstrip("/")
    if not url.lower().startswith("https://"):
        raise ConfigurationError(f"--instance-url {instance_url!r} must be an https:// URL, e.g. "
                                 "https://acme.my.salesforce.com")
    return _finish(AdminSession(instance_url=url, username="", api_version="", source=ADMIN_TOKEN_ENV,
                                verify=_verify(env), _token=token))


def _sf_start(sf: str, args: List[str], alias: str, env: Mapping[str, str]) -> "subprocess.Popen[str]":
    try:
        return subprocess.Popen([sf, *args, "--target-org", alias, "--json"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=dict(env))
    except OSError as exc:
        raise ConfigurationError(f"cannot run the Salesforce CLI ({sf}): {exc.strerror or exc}") from None


def _sf_result(proc: "subprocess.Popen[str]", args: List[str], alias: str) -> Dict[str, Any]:
    """The ``result`` of one ``sf ... --json`` run (started by :func:`_sf_start`)."""
    try:
        out, err = proc.communicate(timeout=SF_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise ConfigurationError(f"`sf {' '.join(args)}` did not answer within {SF_TIMEOUT:g} s") from None
    try:
        data = json.loads(out[out.index("{"):])
    except ValueError:
        data = {}
    if proc.returncode != 0 or not isinstance(data, dict) or data.get("status") not in (0, None) \
            or not isinstance(data.get("result"), dict):
        name = str(data.get("name") or "") if isinstance(data, dict) else ""
        message = str(data.get("message") or "") if isinstance(data, dict) else ""
        detail = redact(f"{name}: {message}".strip(": ")) or excerpt(err, 200) or f"exit code {proc.returncode}"
        raise ConfigurationError(
            f"the Salesforce CLI has no usable login for {alias!r} ({detail}): log in with "
            f"`{_LOGIN_HINT.format(alias=alias)}` (add --instance-url https://acme.my.salesforce.com "
            "for a My Domain or a sandbox), then run this again")
    result: Dict[str, Any] = data["result"]
    return result


def from_sf_cli(alias: str, env: Mapping[str, str]) -> AdminSession:
    sf = shutil.which("sf", path=env.get("PATH"))
    if sf is None:
        raise ConfigurationError(
            "the Salesforce CLI (sf) is not on PATH: install it (npm install --global @salesforce/cli), "
            f"log in with `{_LOGIN_HINT.format(alias=alias)}`, or give --instance-url with the admin's "
            f"token in {ADMIN_TOKEN_ENV}")
    display, show_token = ["org", "display"], ["org", "auth", "show-access-token"]
    procs = [_sf_start(sf, display, alias, env), _sf_start(sf, show_token, alias, env)]  # side by side
    try:
        shown = _sf_result(procs[0], display, alias)
        token_result = _sf_result(procs[1], show_token, alias)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    token = str(token_result.get("accessToken") or "")
    if not token or token == "[REDACTED]":
        raise ConfigurationError(f"`sf org auth show-access-token --target-org {alias}` gave no access token: "
                                 f"log in again with `{_LOGIN_HINT.format(alias=alias)}`")
    url = str(shown.get("instanceUrl") or "").rstrip("/")
    if not url:
        raise ConfigurationError(f"`sf org display --target-org {alias}` shows no instanceUrl: log in again "
                                 f"with `{_LOGIN_HINT.format(alias=alias)}`")
    session = AdminSession(instance_url=url, username=str(shown.get("username") or ""), api_version="",
                           source=f"the Salesforce CLI login {alias!r}", verify=_verify(env), _token=token)
    return _finish(session)


def _finish(session: AdminSession) -> AdminSession:
    """Pick the org's newest API version and learn who the admin is (userinfo)."""
    try:
        versions = session._http.get(f"{session.instance_url}/services/data/", timeout=HTTP_TIMEOUT,
                                     verify=session.verify, headers={"Accept": "application/json"})
    except requests.exceptions.RequestException as exc:
        raise ConfigurationError(f"cannot reach {host_of(session.instance_url)} ({type(exc).__name__}): check "
                                 "the instance URL, the network, and SF_CA_BUNDLE for a private CA") from None
    try:
        listed = [float(v["version"]) for v in versions.json() if isinstance(v, dict) and "version" in v]
    except (ValueError, TypeError, KeyError):
        listed = []
    if not listed:
        raise ConfigurationError(f"{session.instance_url}/services/data/ lists no API versions: is "
                                 f"{host_of(session.instance_url)} a Salesforce instance?")
    newest = max(listed)
    if newest < MIN_API_VERSION:
        raise ConfigurationError(f"the org's newest API is {newest:.1f}; External Client Apps with a "
                                 f"certificate need {MIN_API_VERSION:.1f} or later")
    session.api_version = f"{newest:.1f}"
    info = session._http.get(f"{session.instance_url}/services/oauth2/userinfo", timeout=HTTP_TIMEOUT,
                             verify=session.verify, headers={"Authorization": f"Bearer {session._token}"})
    if info.status_code in (401, 403):
        raise ConfigurationError(
            f"the admin session ({session.source}) was refused by {host_of(session.instance_url)}: log in "
            f"again (`{_LOGIN_HINT.format(alias='ALIAS')}`) or set {ADMIN_TOKEN_ENV} to a fresh token")
    try:
        claims = info.json()
    except ValueError:
        claims = {}
    if isinstance(claims, dict):
        session.username = session.username or str(claims.get("preferred_username") or "")
        session.user_id = str(claims.get("user_id") or "")
        session.org_id = str(claims.get("organization_id") or "")
    if not session.username:
        raise ConfigurationError(f"cannot tell who the admin is ({session.source}): /services/oauth2/userinfo "
                                 f"answered HTTP {info.status_code}")
    return session


def soql_quote(value: str) -> str:
    """A SOQL string literal: quotes and backslashes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
