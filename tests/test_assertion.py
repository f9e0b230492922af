from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sfjwt_ext.auth.assertion import build_claims, sign_assertion
from sfjwt_ext.errors import ConfigurationError, PrivateKeyError


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_build_claims():
    claims = build_claims(consumer_key="3MVG9abc", username="ann@acme.com",
                          audience="https://login.salesforce.com", now=1_700_000_000.9)
    assert claims == {
        "iss": "3MVG9abc",
        "sub": "ann@acme.com",
        "aud": "https://login.salesforce.com",
        "exp": 1_700_000_180,
    }
    assert isinstance(claims["exp"], int)


def test_build_claims_lifetime():
    claims = build_claims(consumer_key="k", username="u", audience="a", lifetime=60, now=100.0)
    assert claims["exp"] == 160


@pytest.mark.parametrize("lifetime", [0, -1, 181, 3600, 1.5, True])
def test_build_claims_refuses_bad_lifetime(lifetime):
    with pytest.raises(ConfigurationError, match="lifetime"):
        build_claims(consumer_key="k", username="u", audience="a", lifetime=lifetime)


@pytest.mark.parametrize("field", ["consumer_key", "username", "audience"])
def test_build_claims_refuses_empty_values(field):
    values = {"consumer_key": "k", "username": "u", "audience": "a"}
    values[field] = ""
    with pytest.raises(ConfigurationError, match=field):
        build_claims(**values)


def test_sign_assertion_rs256_verifies(key):
    claims = build_claims(consumer_key="k", username="u@x.com", audience="https://test.salesforce.com")
    token = sign_assertion(key, claims)
    assert isinstance(token, str)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "typ": "JWT"}
    decoded = jwt.decode(token, key.public_key(), algorithms=["RS256"], audience="https://test.salesforce.com")
    assert decoded == claims


def test_sign_assertion_needs_a_key_object(key):
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    with pytest.raises(PrivateKeyError, match="load_private_key") as info:
        sign_assertion(pem, {"iss": "k"})  # type: ignore[arg-type]
    assert "PRIVATE KEY" not in str(info.value)
