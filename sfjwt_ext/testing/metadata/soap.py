"""The SOAP envelopes of the Metadata API (no routing): a response, a fault, the refused-session fault."""
from __future__ import annotations

import base64
import hashlib
from typing import Optional

from ..core.http import Response, xml_response
from ..core.jobs import XSI_NS, xml_text

__all__ = ["METADATA_NS", "SOAPENV_NS", "SOAP_CT", "invalid_session_soap_fault", "soap_fault", "soap_ok"]


METADATA_NS = "http://soap.sforce.com/2006/04/metadata"



SOAPENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"



SOAP_CT = "text/xml;charset=UTF-8"



def soap_ok(element: str, inner: str) -> Response:
    doc = ('<?xml version="1.0" encoding="UTF-8"?>'
           f'<soapenv:Envelope xmlns:soapenv="{SOAPENV_NS}" xmlns="{METADATA_NS}" xmlns:xsi="{XSI_NS}">'
           f"<soapenv:Body><{element}>{inner}</{element}></soapenv:Body></soapenv:Envelope>")
    return xml_response(doc, status=200, content_type=SOAP_CT)



def soap_fault(faultcode: str, faultstring: str, *, status: int = 500, exception_code: Optional[str] = None,
               exception_message: Optional[str] = None) -> Response:
    """A SOAP 1.1 fault as the Metadata API sends it (HTTP 500, text/xml)."""
    detail = ""
    if exception_code:
        detail = (f'<detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault">'
                  f"<sf:exceptionCode>{xml_text(exception_code)}</sf:exceptionCode>"
                  f"<sf:exceptionMessage>{xml_text(exception_message or '')}</sf:exceptionMessage>"
                  "</sf:UnexpectedErrorFault></detail>")
    doc = ('<?xml version="1.0" encoding="UTF-8"?>'
           f'<soapenv:Envelope xmlns:soapenv="{SOAPENV_NS}" xmlns:sf="{METADATA_NS}" xmlns:xsi="{XSI_NS}">'
           f"<soapenv:Body><soapenv:Fault><faultcode>{xml_text(faultcode)}</faultcode>"
           f"<faultstring>{xml_text(faultstring)}</faultstring>{detail}</soapenv:Fault></soapenv:Body></soapenv:Envelope>")
    return xml_response(doc, status=status, content_type=SOAP_CT)



def _session_hash(token: Optional[str]) -> str:
    """What Salesforce prints after 'missing session hash:' (a digest, never the token)."""
    return base64.b64encode(hashlib.sha256((token or "").encode("utf-8")).digest()).decode("ascii")



def invalid_session_soap_fault(token: Optional[str], reason: str = "expired") -> Response:
    if reason == "not_valid_for_api":
        message = "This session is not valid for use with the API"
    elif token:
        message = ("Invalid Session ID found in SessionHeader: Illegal Session. Session not found, "
                   f"missing session hash: {_session_hash(token)}\n"
                   "This error usually occurs after a session expires or a user logs out.")
    else:
        message = "Invalid Session ID found in SessionHeader: Illegal Session"
    return soap_fault("sf:INVALID_SESSION_ID", f"INVALID_SESSION_ID: {message}", status=500,
                      exception_code="INVALID_SESSION_ID", exception_message=message)
