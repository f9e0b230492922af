"""The SOAP Metadata API of the local org (``POST /services/Soap/m/XX.X/...``).

Session id in the envelope's SessionHeader; an expired session -> HTTP 500 fault
``sf:INVALID_SESSION_ID``. describeMetadata, listMetadata, readMetadata, deploy,
checkDeployStatus, retrieve, checkRetrieveStatus. Deployed components and async requests are
kept in :class:`~.models.MetadataJobs`."""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import io
import zipfile
from typing import Dict, List, Optional, Tuple
from xml.etree import ElementTree as ET

from . import eca as eca_metadata
from ..oauth.tokens import soap_refuses
from ..core.jobs import (child, child_text, children, local_name, make_id, now_ts,
                         request_version, xml_text)
from ..core.http import HTTPError, Request, Response
from ..core.sessions import Session
from ..services import OrgServices
from .models import AsyncMetadata, MetadataJobs
from .objects import apply_custom_objects
from .soap import METADATA_NS, invalid_session_soap_fault, soap_fault, soap_ok


__all__ = ["MetadataApi"]


def _iso_datetime(ts: float) -> str:
    """SOAP's xsd:dateTime: ``2024-05-01T12:00:00.000Z``."""
    d = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


# metadata folder -> (type, suffix, metaFile, inFolder)
_METADATA_TYPES: List[Tuple[str, str, Optional[str], bool, bool]] = [
    ("ApexClass", "classes", "cls", True, False),
    ("ApexTrigger", "triggers", "trigger", True, False),
    ("ApexPage", "pages", "page", True, False),
    ("ApexComponent", "components", "component", True, False),
    ("CustomObject", "objects", "object", False, False),
    ("CustomLabels", "labels", "labels", False, False),
    ("CustomTab", "tabs", "tab", False, False),
    ("Layout", "layouts", "layout", False, False),
    ("PermissionSet", "permissionsets", "permissionset", False, False),
    ("Profile", "profiles", "profile", False, False),
    ("StaticResource", "staticresources", "resource", True, False),
    ("LightningComponentBundle", "lwc", None, False, False),
    ("Flow", "flows", "flow", False, False),
    ("Report", "reports", "report", False, True),
    ("Dashboard", "dashboards", "dashboard", False, True),
    ("EmailTemplate", "email", "email", True, True),
    ("Document", "documents", None, True, True),
    ("ConnectedApp", "connectedApps", "connectedApp", False, False),
] + [(t, folder, suffix, False, False) for t, (folder, suffix, _n) in eca_metadata.ECA_TYPES.items()]


_TYPE_BY_DIR = {d: t for t, d, _s, _m, _f in _METADATA_TYPES}
_DIR_BY_TYPE = {t: (d, s) for t, d, s, _m, _f in _METADATA_TYPES}


def _user_name(session: Session, org: OrgServices) -> str:
    for user in list(org.users.values()):
        if user.user_id == session.user_id:
            return user.name or user.username or "Local Org User"
    return "Local Org User"


def _authenticate_soap(org: OrgServices, request: Request, token: Optional[str]) -> Session:
    """Check ``token`` with ``org.require_session``; raise ``HTTPError`` with the Metadata API's fault.

    Its ``sf`` prefix is the metadata namespace and its text is the one Salesforce gives for an
    expired session ("... Illegal Session. Session not found, missing session hash: ...").
    """
    try:
        return org.require_session(request, api="soap", token=token or "")
    except HTTPError:
        refused = org.reject_sessions or soap_refuses(token, request.path)   # JWT-based token below 68.0
        reason = "not_valid_for_api" if refused else "expired"
        raise HTTPError(invalid_session_soap_fault(token, reason)) from None


class MetadataApi:
    """The SOAP Metadata API handlers of one org."""
    def __init__(self, org: OrgServices, jobs: MetadataJobs) -> None:
        self.org = org
        self.jobs = jobs

    def soap_metadata(self, request: Request) -> Response:
        try:
            root = ET.fromstring(request.body or b"")
        except ET.ParseError:
            return soap_fault("soapenv:Client", "Unable to parse the SOAP envelope", status=500)
        header = child(root, "Header")
        body = child(root, "Body")
        session_header = child(header, "SessionHeader")
        session_id = child_text(session_header, "sessionId")
        session = _authenticate_soap(self.org, request, session_id)
        user = self.org.user_by_id(session.user_id)
        if user is not None and not user.modify_metadata:
            text = ("use of the Metadata API requires a user with the ModifyAllData or ModifyMetadata "
                    "permissions")
            return soap_fault("sf:INSUFFICIENT_ACCESS", f"INSUFFICIENT_ACCESS: {text}", status=500,
                              exception_code="INSUFFICIENT_ACCESS", exception_message=text)
        if body is None or len(body) == 0:
            return soap_fault("soapenv:Client", "No operation in the SOAP Body", status=500)
        op = body[0]
        name = local_name(op.tag)
        handler = {
            "describeMetadata": self._md_describe,
            "listMetadata": self._md_list,
            "deploy": self._md_deploy,
            "checkDeployStatus": self._md_check_deploy,
            "retrieve": self._md_retrieve,
            "checkRetrieveStatus": self._md_check_retrieve,
            "readMetadata": self._md_read,
        }.get(name)
        if handler is None:
            return soap_fault("sf:INVALID_OPERATION",
                              f"INVALID_OPERATION: The local org does not implement the Metadata API call {name}",
                              status=500)
        return handler(op, session, request)

    def _md_describe(self, op: ET.Element, session: Session, request: Request) -> Response:
        objs = []
        for type_name, directory, suffix, meta, in_folder in _METADATA_TYPES:
            objs.append(
                "<metadataObjects>"
                + ("<childXmlNames>CustomField</childXmlNames><childXmlNames>ValidationRule</childXmlNames>"
                   if type_name == "CustomObject" else "")
                + f"<directoryName>{directory}</directoryName><inFolder>{str(in_folder).lower()}</inFolder>"
                + f"<metaFile>{str(meta).lower()}</metaFile>"
                + (f"<suffix>{suffix}</suffix>" if suffix else "")
                + f"<xmlName>{type_name}</xmlName></metadataObjects>")
        result = ("".join(objs) + "<organizationNamespace></organizationNamespace>"
                  "<partialSaveAllowed>true</partialSaveAllowed><testRequired>false</testRequired>")
        return soap_ok("describeMetadataResponse", f"<result>{result}</result>")

    def _file_properties(self, type_name: str, full_name: str, file_name: str, ts: float, user_id: str,
                         user_name: str, record_id: str, manageable: bool = True) -> str:
        return ("<result>"
                f"<createdById>{xml_text(user_id)}</createdById><createdByName>{xml_text(user_name)}</createdByName>"
                f"<createdDate>{_iso_datetime(ts)}</createdDate><fileName>{xml_text(file_name)}</fileName>"
                f"<fullName>{xml_text(full_name)}</fullName><id>{xml_text(record_id)}</id>"
                f"<lastModifiedById>{xml_text(user_id)}</lastModifiedById>"
                f"<lastModifiedByName>{xml_text(user_name)}</lastModifiedByName>"
                f"<lastModifiedDate>{_iso_datetime(ts)}</lastModifiedDate>"
                + ("<manageableState>unmanaged</manageableState>" if manageable else "")
                + f"<type>{xml_text(type_name)}</type></result>")

    def _components(self) -> List[Tuple[str, str, str, float]]:
        """(type, fullName, fileName, timestamp) of everything listMetadata knows: the objects,
        the Apex classes of the store (what the Tooling API lists) and what was deployed."""
        comps: List[Tuple[str, str, str, float]] = []
        created = now_ts()
        names = [s["name"] for s in self.org.store.describe_global()["sobjects"]]
        for name in names:
            comps.append(("CustomObject", name, f"objects/{name}.object", created))
        for name in self._apex_classes():
            comps.append(("ApexClass", name, f"classes/{name}.cls", created))
        comps.extend((t, n, f, ts or created) for t, n, f, ts in eca_metadata.components(self.org))
        with self.jobs.lock:
            for (type_name, full_name), (file_name, _content, ts) in self.jobs.deployed.items():
                comps.append((type_name, full_name, file_name, ts))
        return comps

    def _apex_classes(self) -> Dict[str, Tuple[bytes, str]]:
        """The store's ApexClass records (Tooling's view): name -> (body, apiVersion)."""
        records = self.org.store.query("SELECT Name, Body, ApiVersion FROM ApexClass WHERE Status = 'Active'").records
        return {str(r["Name"]): (str(r["Body"] or "").encode("utf-8"), f"{float(r['ApiVersion'] or 62.0):.1f}")
                for r in records}

    def _content(self, type_name: str, full_name: str, deployed: Dict[Tuple[str, str], Tuple[str, bytes, float]],
                 apex: Dict[str, Tuple[bytes, str]]) -> bytes:
        """A component's file: deployed bytes win, then the store's Apex class body; ECA components
        and permission sets are written from the org's state."""
        if eca_metadata.is_handled(type_name):
            return eca_metadata.component_xml(self.org, type_name, full_name)
        if (type_name, full_name) in deployed:
            return deployed[(type_name, full_name)][1]
        if type_name == "ApexClass" and full_name in apex:
            return apex[full_name][0]
        return b""

    def _md_list(self, op: ET.Element, session: Session, request: Request) -> Response:
        wanted = [(child_text(q, "type") or "", child_text(q, "folder")) for q in children(op, "queries")]
        user_id = session.user_id
        user_name = _user_name(session, self.org)
        parts = []
        seen = set()
        for type_name, full_name, file_name, ts in self._components():
            if not any(type_name == t for t, _f in wanted):
                continue
            if (type_name, full_name) in seen:
                continue
            seen.add((type_name, full_name))
            rid = make_id("01p" if type_name == "ApexClass" else "01I", self.org.org_id,
                           int(hashlib.sha256(f"{type_name}/{full_name}".encode()).hexdigest()[:8], 16))
            parts.append(self._file_properties(type_name, full_name, file_name, ts, user_id, user_name, rid))
        return soap_ok("listMetadataResponse", "".join(parts))

    def _md_read(self, op: ET.Element, session: Session, request: Request) -> Response:
        """readMetadata: deployed Apex with its content; other known components with their
        fullName; unknown names as an empty record of the type (as Salesforce answers)."""
        type_name = child_text(op, "type") or ""
        names = [e.text.strip() for e in children(op, "fullNames") if e.text]
        known = {(t, n) for t, n, _f, _ts in self._components()}
        with self.jobs.lock:
            deployed = dict(self.jobs.deployed)
        apex = self._apex_classes() if type_name == "ApexClass" else {}
        records = []
        for name in names:
            if (type_name, name) not in known:
                records.append(f'<records xsi:type="{xml_text(type_name)}"/>')
                continue
            inner = f"<fullName>{xml_text(name)}</fullName>"
            content = self._content(type_name, name, deployed, apex)
            if type_name in ("ApexClass", "ApexTrigger", "ApexPage", "ApexComponent"):
                inner += (f"<content>{base64.b64encode(content).decode()}</content>"
                          f"<apiVersion>{xml_text(request_version(request, self.org.api_version))}</apiVersion>")
                if type_name in ("ApexClass", "ApexTrigger"):
                    inner += "<status>Active</status>"
            elif type_name == "CustomObject":
                inner += f"<label>{xml_text(name)}</label>"
            elif eca_metadata.is_handled(type_name):
                inner += eca_metadata.read_fields(self.org, type_name, name) or ""
            records.append(f'<records xsi:type="{xml_text(type_name)}">{inner}</records>')
        return soap_ok("readMetadataResponse", f"<result>{''.join(records)}</result>")

    def _md_deploy(self, op: ET.Element, session: Session, request: Request) -> Response:
        zip_b64 = child_text(op, "ZipFile") or ""
        options = child(op, "DeployOptions")

        def flag(name: str, default: bool = False) -> bool:
            value = child_text(options, name)
            return default if value is None else value.lower() == "true"

        now = now_ts()
        req = AsyncMetadata(id=self.jobs.controls.new_id("0Af"), kind="deploy", created=now, created_by=session.user_id,
                            progress=self.jobs.controls.progress(), check_only=flag("checkOnly"),
                            ignore_warnings=flag("ignoreWarnings"), rollback_on_error=flag("rollbackOnError", True))
        try:
            raw = base64.b64decode(zip_b64, validate=False)
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                files = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
        except (ValueError, zipfile.BadZipFile) as exc:
            req.error = f"The zip file is not valid: {exc}"
            files = {}
        staged: Dict[Tuple[str, str], Tuple[str, bytes, float]] = {}
        apps = eca_metadata.EcaDeploy(self.org)
        for path, content in files.items():
            parts = path.split("/")
            if parts[-1] == "package.xml" or parts[-1].endswith("-meta.xml") or len(parts) < 2:
                continue
            directory = parts[-2]
            type_name = _TYPE_BY_DIR.get(directory)
            if type_name is None:
                req.messages.append((path, f"Unknown type name '{directory}' specified in package.xml"))
                continue
            full_name = parts[-1].rsplit(".", 1)[0]
            file_name = f"{directory}/{parts[-1]}"
            req.components.append((type_name, full_name, file_name))
            if apps.handles(directory):     # kept as org state (apps, PermissionSet records), not as bytes
                apps.add(directory, file_name, content)
            else:
                staged[(type_name, full_name)] = (file_name, content, now)
        if not files and req.error is None:
            req.error = "No package.xml found"
        req.failures = apps.check()
        if not req.check_only and req.error is None and not req.failures:
            req.error = apply_custom_objects(self.org.store, files)
        if not req.check_only and req.error is None and not req.failures:
            apps.apply()
            req.failures = apps.failures
        if not req.check_only and req.error is None and not req.failures:
            with self.jobs.lock:
                self.jobs.deployed.update(staged)
        with self.jobs.lock:
            self.jobs.requests[req.id] = req
        self.jobs.controls.created("deploy")
        return soap_ok("deployResponse",
                       f"<result><done>false</done><id>{req.id}</id><state>Queued</state></result>")

    def _md_request(self, op: ET.Element, kind: str) -> AsyncMetadata:
        req_id = child_text(op, "asyncProcessId") or ""
        with self.jobs.lock:
            req = self.jobs.requests.get(req_id)
        if req is None or req.kind != kind:
            raise HTTPError(soap_fault("sf:INVALID_ID_FIELD", f"INVALID_ID_FIELD: Invalid id: {req_id}", status=500))
        return req

    def _md_check_deploy(self, op: ET.Element, session: Session, request: Request) -> Response:
        req = self._md_request(op, "deploy")
        with self.jobs.lock:
            complete = req.progress.poll()
        user_id = session.user_id
        user_name = _user_name(session, self.org)
        total = len(req.components)
        failed = len(req.failures)
        if not complete:
            status, done, success, deployed = "InProgress", False, False, 0
        elif req.error or failed:
            status, done, success, deployed = "Failed", True, False, 0
        else:
            status, done, success, deployed = "Succeeded", True, True, total
        details = ""
        if complete and failed:
            details = "".join(_component_failure(f, req.created) for f in req.failures)
        elif complete:
            for type_name, full_name, file_name in req.components:
                details += ("<componentSuccesses><changed>true</changed>"
                            f"<componentType>{xml_text(type_name)}</componentType><created>true</created>"
                            f"<createdDate>{_iso_datetime(req.created)}</createdDate><deleted>false</deleted>"
                            f"<fileName>{xml_text(file_name)}</fileName><fullName>{xml_text(full_name)}</fullName>"
                            "<success>true</success></componentSuccesses>")
        result = (f"<checkOnly>{str(req.check_only).lower()}</checkOnly>"
                  + (f"<completedDate>{_iso_datetime(now_ts())}</completedDate>" if done else "")
                  + f"<createdBy>{xml_text(user_id)}</createdBy><createdByName>{xml_text(user_name)}</createdByName>"
                  f"<createdDate>{_iso_datetime(req.created)}</createdDate>"
                  f"<details>{details}</details><done>{str(done).lower()}</done>"
                  + (f"<errorMessage>{xml_text(req.error)}</errorMessage>" if (done and req.error) else "")
                  + (f"<errorStatusCode>UNKNOWN_EXCEPTION</errorStatusCode>" if (done and req.error) else "")
                  + f"<id>{req.id}</id><ignoreWarnings>{str(req.ignore_warnings).lower()}</ignoreWarnings>"
                  f"<lastModifiedDate>{_iso_datetime(now_ts())}</lastModifiedDate>"
                  f"<numberComponentErrors>{failed if failed else (1 if (done and req.error) else 0)}"
                  "</numberComponentErrors>"
                  f"<numberComponentsDeployed>{deployed}</numberComponentsDeployed>"
                  f"<numberComponentsTotal>{total}</numberComponentsTotal>"
                  "<numberTestErrors>0</numberTestErrors><numberTestsCompleted>0</numberTestsCompleted>"
                  "<numberTestsTotal>0</numberTestsTotal>"
                  f"<rollbackOnError>{str(req.rollback_on_error).lower()}</rollbackOnError>"
                  "<runTestsEnabled>false</runTestsEnabled>"
                  f"<startDate>{_iso_datetime(req.created)}</startDate>"
                  + ("" if done else "<stateDetail>Processing Type: ApexClass</stateDetail>")
                  + f"<status>{status}</status><success>{str(success).lower()}</success>")
        return soap_ok("checkDeployStatusResponse", f"<result>{result}</result>")

    def _md_retrieve(self, op: ET.Element, session: Session, request: Request) -> Response:
        """retrieve: the WSDL (and simple-salesforce) wrap the request as ``<retrieveRequest>``,
        jsforce and the Salesforce CLI as ``<request>``. Without ``singlePackage`` true the zip
        holds everything under ``unpackaged/``, as Salesforce does."""
        rr = child(op, "retrieveRequest")
        if rr is None:
            rr = child(op, "request")
        unpackaged = child(rr, "unpackaged")
        wanted: List[Tuple[str, List[str]]] = []
        for t in children(unpackaged, "types"):
            name = child_text(t, "name") or ""
            members = [m.text.strip() for m in children(t, "members") if m.text]
            wanted.append((name, members))
        single = (child_text(rr, "singlePackage") or "false").lower() == "true"
        api_version = child_text(rr, "apiVersion") or request_version(request, self.org.api_version)
        now = now_ts()
        req = AsyncMetadata(id=self.jobs.controls.new_id("09S"), kind="retrieve", created=now,
                            created_by=session.user_id, progress=self.jobs.controls.progress())
        buf = io.BytesIO()
        prefix = "" if single else "unpackaged/"
        comps = self._components()
        apex = self._apex_classes()
        with self.jobs.lock:
            deployed = dict(self.jobs.deployed)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            package = ['<?xml version="1.0" encoding="UTF-8"?>',
                       f'<Package xmlns="{METADATA_NS}">']
            for type_name, members in wanted:
                matched = []
                for c_type, full_name, file_name, _ts in comps:
                    if c_type != type_name:
                        continue
                    if ("*" in members or full_name in members) and full_name not in matched:
                        matched.append(full_name)
                        content = self._content(c_type, full_name, deployed, apex)
                        if not content and c_type == "CustomObject":
                            content = (f'<?xml version="1.0" encoding="UTF-8"?>\n<CustomObject xmlns="{METADATA_NS}">'
                                       f"<label>{xml_text(full_name)}</label></CustomObject>\n").encode()
                        zf.writestr(prefix + file_name, content)
                        if c_type == "ApexClass":
                            version = apex.get(full_name, (b"", api_version))[1]
                            zf.writestr(prefix + file_name + "-meta.xml",
                                        '<?xml version="1.0" encoding="UTF-8"?>\n'
                                        f'<ApexClass xmlns="{METADATA_NS}">\n'
                                        f"    <apiVersion>{xml_text(version)}</apiVersion>\n"
                                        "    <status>Active</status>\n</ApexClass>\n")
                        req.components.append((c_type, full_name, file_name))
                for member in members:
                    if member != "*" and member not in matched:
                        req.messages.append((f"{prefix}package.xml",
                                             f"Entity of type '{type_name}' named '{member}' cannot be found"))
                if matched:
                    package.append("    <types>")
                    package.extend(f"        <members>{xml_text(m)}</members>" for m in sorted(matched))
                    package.append(f"        <name>{xml_text(type_name)}</name>")
                    package.append("    </types>")
            package.append(f"    <version>{xml_text(api_version)}</version>")
            package.append("</Package>")
            zf.writestr(prefix + "package.xml", "\n".join(package) + "\n")
        req.zip_bytes = buf.getvalue()
        with self.jobs.lock:
            self.jobs.requests[req.id] = req
        self.jobs.controls.created("retrieve")
        return soap_ok("retrieveResponse",
                       f"<result><done>false</done><id>{req.id}</id><state>Queued</state></result>")

    def _md_check_retrieve(self, op: ET.Element, session: Session, request: Request) -> Response:
        req = self._md_request(op, "retrieve")
        include_zip = (child_text(op, "includeZip") or "true").lower() == "true"
        with self.jobs.lock:
            complete = req.progress.poll()
        user_id = session.user_id
        user_name = _user_name(session, self.org)
        if not complete:
            result = f"<done>false</done><id>{req.id}</id><status>InProgress</status><success>false</success>"
            return soap_ok("checkRetrieveStatusResponse", f"<result>{result}</result>")
        props = "".join(
            self._file_properties(t, n, f, req.created, user_id, user_name,
                                  make_id("01p", self.org.org_id, i + 1)).replace("<result>", "<fileProperties>")
            .replace("</result>", "</fileProperties>")
            for i, (t, n, f) in enumerate(req.components))
        messages = "".join(f"<messages><fileName>{xml_text(f)}</fileName><problem>{xml_text(p)}</problem></messages>"
                           for f, p in req.messages)
        result = (f"<done>true</done>{props}<id>{req.id}</id>{messages}"
                  "<status>Succeeded</status><success>true</success>"
                  + (f"<zipFile>{base64.b64encode(req.zip_bytes).decode()}</zipFile>" if include_zip else ""))
        return soap_ok("checkRetrieveStatusResponse", f"<result>{result}</result>")


def _component_failure(failure: eca_metadata.Failure, created: float) -> str:
    """One ``<componentFailures>`` of checkDeployStatus (what ``sf project deploy`` prints)."""
    return ("<componentFailures><changed>false</changed>"
            f"<componentType>{xml_text(failure.type)}</componentType><created>false</created>"
            f"<createdDate>{_iso_datetime(created)}</createdDate><deleted>false</deleted>"
            f"<fileName>{xml_text(failure.file_name)}</fileName><fullName>{xml_text(failure.full_name)}</fullName>"
            f"<problem>{xml_text(failure.problem)}</problem><problemType>Error</problemType>"
            "<success>false</success></componentFailures>")


# CustomObject / CustomField deploys (p2-schema) --------------------------------------------


