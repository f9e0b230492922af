"""The JWT bearer assertion: its claims and its RS256 signature.

Sign with an already-loaded key object: loading a PEM costs ~50 ms, signing with a loaded
key ~1 ms (PyJWT given PEM text would parse it on every call).
"""
from __future__ import annotations

import time
from typing import Dict, Optional, Union

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import ConfigurationError, PrivateKeyError

__all__ = ["build_claims", "sign_assertion", "Claims", "MAX_LIFETIME", "ALGORITHM"]

#: ``iss``, ``sub``, ``aud`` (strings) and ``exp`` (an integer).
Claims = Dict[str, Union[str, int]]

#: Salesforce refuses an ``exp`` more than 3 minutes ahead.
MAX_LIFETIME = 180
#: The only algorithm Salesforce accepts.
ALGORITHM = "RS256"


def build_claims(*, consumer_key: str, username: str, audience: str, lifetime: int = MAX_LIFETIME,
                 now: Optional[float] = None) -> Claims:
    """The claims ``iss`` (consumer key), ``sub`` (username), ``aud`` and ``exp``
    (``int(now) + lifetime``, an integer, at most 180 seconds ahead)."""
    for value, argument in ((consumer_key, "consumer_key= (SF_CONSUMER_KEY)"), (username, "username= (SF_USERNAME)"),
                            (audience, "audience=")):
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{argument} is required for the JWT assertion and is empty")
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 0 < lifetime <= MAX_LIFETIME:
        raise ConfigurationError(f"lifetime={lifetime!r}: the assertion's lifetime must be an integer number of "
                                 f"seconds between 1 and {MAX_LIFETIME} (Salesforce refuses exp more than 3 minutes "
                                 "ahead)")
    issued = time.time() if now is None else now
    return {"iss": consumer_key.strip(), "sub": username.strip(), "aud": audience, "exp": int(issued) + lifetime}


def sign_assertion(key: rsa.RSAPrivateKey, claims: Claims) -> str:
    """The compact JWS of ``claims`` signed RS256 with ``key`` (a loaded RSA key object)."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PrivateKeyError(f"sign_assertion needs a loaded RSA private key object, not {type(key).__name__}: "
                              "load it once with sfjwt_ext.auth.keys.load_private_key()")
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"typ": "JWT"})  # PyJWT 2: a str
