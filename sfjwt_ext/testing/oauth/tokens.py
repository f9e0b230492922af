"""JWT-based access tokens, as an app with "Issue JSON Web Token (JWT)-based access tokens for
named users" (``isNamedUserJwtEnabled``) issues them instead of opaque ``00D...!...`` tokens.

Header and claims are those Salesforce's tokens carry (its Mobile SDKs parse them):
header ``{"tnk": "core/<pod>/<org id>", "ver": "1.0", "kid": "CORE_ATJWT.<org id 15>.<ms>",
"tty": "sfdc-core-token", "typ": "JWT", "alg": "RS256"}``; payload ``scp`` (space-separated
scopes), ``aud`` [instance URL], ``sub`` ``uid:<user id>``, ``nbf``, ``mty`` "oauth", ``sfi``,
``roles`` [], ``iss`` (the instance URL), ``hsc`` false, ``exp``, ``iat``, ``client_id`` (the
consumer key). Signed RS256 with a key of the org (made on first use), ~1,200 characters.

The token is a session like any other (``org.sessions``): expiry and revocation work on it the
same way. The SOAP API takes it only from API 68.0 (:func:`soap_refuses`).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from typing import List, Optional

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..core import tls

__all__ = ["TokenSigner", "is_jwt_token", "soap_refuses", "SOAP_JWT_MIN_VERSION"]

#: the first API version whose SOAP API (Metadata, /services/Soap/) takes a JWT-based access token
SOAP_JWT_MIN_VERSION = 68.0
_SOAP_VERSION = re.compile(r"/services/Soap/\w/(\d+(?:\.\d+)?)")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_jwt_token(token: Optional[str]) -> bool:
    """Whether ``token`` is a JWT-based access token (three base64url parts, ``eyJ`` header)."""
    return bool(token) and str(token).startswith("eyJ") and str(token).count(".") == 2


def soap_refuses(token: Optional[str], path: str) -> bool:
    """Whether a SOAP request on ``path`` (``/services/Soap/m/62.0``) refuses ``token`` because
    it is JWT-based and the API version is below 68.0."""
    if not is_jwt_token(token):
        return False
    m = _SOAP_VERSION.search(path)
    return m is None or float(m.group(1)) < SOAP_JWT_MIN_VERSION


class TokenSigner:
    """Signs one org's JWT-based access tokens with the org's own RSA key (made when first needed)."""

    lifetime: int = 7200   # exp: the session's nominal life; the org's session table decides validity

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self._lock = threading.Lock()
        self._key: Optional[rsa.RSAPrivateKey] = None
        self.kid = f"CORE_ATJWT.{org_id[:15]}.{int(time.time() * 1000)}"

    def _private_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                self._key = tls.new_app_key_pair("sfjwt local org access tokens")[0]
            return self._key

    def public_key(self) -> rsa.RSAPublicKey:
        """What a service would verify the tokens with (the org's JWKS key)."""
        return self._private_key().public_key()

    def mint(self, *, user_id: str, consumer_key: str, instance_url: str, scopes: List[str]) -> str:
        now = int(time.time())
        header = {"tnk": f"core/local/{self.org_id}", "ver": "1.0", "kid": self.kid, "tty": "sfdc-core-token",
                  "typ": "JWT", "alg": "RS256"}
        # sfi names the session: unique per token, so two logins in one second differ
        sfi = hashlib.sha256(f"{self.org_id}/{user_id}/{consumer_key}/{secrets.token_hex(16)}".encode()).hexdigest()
        claims = {"scp": " ".join(scopes), "aud": [instance_url], "sub": f"uid:{user_id}", "nbf": now - 60,
                  "mty": "oauth", "sfi": sfi, "roles": [], "iss": instance_url, "hsc": False,
                  "exp": now + self.lifetime, "iat": now, "client_id": consumer_key}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = self._private_key().sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)
