from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sfjwt_ext.errors import ConfigurationError, KeyFilePermissionWarning, PrivateKeyError
from sfjwt_ext.auth.keys import load_private_key, repair_pem
from sfjwt_ext.cli.keypair import (
    KeyPairExistsError,
    fingerprint,
    generate_key_pair,
    key_matches_certificate,
    load_certificate,
    write_key_pair,
)

PASSPHRASE = "correct horse battery staple"

pytestmark = pytest.mark.filterwarnings("error::sfjwt_ext.errors.KeyFilePermissionWarning")


# keys are generated once per module: RSA key generation is slow
@pytest.fixture(scope="module")
def pair():
    return generate_key_pair(common_name="sfjwt-test", days=30)


@pytest.fixture(scope="module")
def key(pair) -> rsa.RSAPrivateKey:
    return pair[0]


@pytest.fixture(scope="module")
def cert(pair) -> x509.Certificate:
    return pair[1]


@pytest.fixture(scope="module")
def small_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def pem(key, fmt=serialization.PrivateFormat.PKCS8, passphrase=None) -> str:
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()


def body_of(text: str) -> str:
    """The base64 of a PEM, to check it never appears in messages."""
    lines = [line for line in text.splitlines() if line and not line.startswith("-----") and ":" not in line]
    return lines[1]


def write(path: Path, data, mode=0o600) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)
    return path


def same_key(a: rsa.RSAPrivateKey, b: rsa.RSAPrivateKey) -> bool:
    return a.private_numbers() == b.private_numbers()


# ---------------------------------------------------------------------------- loading
@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_load_pkcs8_and_pkcs1_from_text_bytes_and_file(key, tmp_path, fmt):
    text = pem(key, fmt)
    assert same_key(load_private_key(private_key=text), key)
    assert same_key(load_private_key(private_key=text.encode()), key)
    path = write(tmp_path / "k.key", text)
    assert same_key(load_private_key(private_key_file=str(path)), key)
    assert same_key(load_private_key(private_key_file=path), key)


def test_load_key_object_passes_through(key):
    assert load_private_key(private_key=key) is key


def test_load_der_bytes(key):
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    assert same_key(load_private_key(private_key=der), key)


def _key_whose_der_has_backslash_n(key: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat) -> rsa.RSAPrivateKey:
    """A key (same primes, another public exponent) whose DER holds the two bytes ``\\n``
    (about 2 % of keys do): found by walking odd exponents, a few microseconds each."""
    numbers = key.private_numbers()
    p, q = numbers.p, numbers.q
    phi = (p - 1) * (q - 1)
    for e in range(65537, 65537 + 2 * 20_000, 2):
        try:
            d = pow(e, -1, phi)
        except ValueError:  # e shares a factor with phi
            continue
        candidate = rsa.RSAPrivateNumbers(
            p, q, d, d % (p - 1), d % (q - 1), rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, p * q)
        ).private_key()
        if b"\\n" in candidate.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption()):
            return candidate
    raise AssertionError("no exponent gave a DER with \\n")  # pragma: no cover - (0.98)**20000


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_load_der_bytes_that_contain_backslash_n(key, tmp_path, fmt):
    """DER is binary: the two bytes backslash-n in it are not a PEM with literal "\\n"."""
    odd = _key_whose_der_has_backslash_n(key, fmt)
    der = odd.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
    assert b"\\n" in der and b"-----BEGIN" not in der
    assert same_key(load_private_key(private_key=der), odd)
    path = write(tmp_path / "k.der", der)
    assert same_key(load_private_key(private_key_file=path), odd)


@pytest.mark.parametrize("passphrase", [PASSPHRASE, PASSPHRASE.encode()])
def test_encrypted_pkcs8_with_str_or_bytes_passphrase(key, tmp_path, passphrase):
    path = write(tmp_path / "enc.key", pem(key, passphrase=PASSPHRASE))
    assert same_key(load_private_key(private_key_file=path, passphrase=passphrase), key)


def test_legacy_encrypted_pem(key):
    text = pem(key, serialization.PrivateFormat.TraditionalOpenSSL, passphrase=PASSPHRASE)
    assert "Proc-Type: 4,ENCRYPTED" in text
    assert same_key(load_private_key(private_key=text, passphrase=PASSPHRASE), key)


def test_passphrase_for_unencrypted_key_is_ignored(key):
    assert same_key(load_private_key(private_key=pem(key), passphrase="unused"), key)


# ----------------------------------------------------------------------------- repair
@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t.replace("\n", "\\n"),                 # literal \n (env vars, JSON)
        lambda t: t.replace("\n", "\r\n"),                # CRLF
        lambda t: t.replace("\n", " "),                   # newlines folded into spaces
        lambda t: '"' + t.strip().replace("\n", "\\n") + '"',  # quoted .env value
        lambda t: "  \n" + t + "\n\n  ",                  # surrounding whitespace
    ],
    ids=["literal-backslash-n", "crlf", "folded-spaces", "quoted", "whitespace"],
)
@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_damaged_pem_is_repaired(key, damage, fmt):
    text = pem(key, fmt)
    damaged = damage(text)
    assert repair_pem(damaged) == text
    assert same_key(load_private_key(private_key=damaged), key)


def test_repair_keeps_legacy_encryption_headers(key):
    text = pem(key, serialization.PrivateFormat.TraditionalOpenSSL, passphrase=PASSPHRASE)
    folded = text.replace("\n", " ")
    assert repair_pem(folded) == text
    assert same_key(load_private_key(private_key=folded, passphrase=PASSPHRASE), key)


def test_repair_without_pem_returns_text():
    assert repair_pem("hello\r\nworld") == "hello\nworld"


def test_key_inside_a_bundle_with_a_certificate(key, cert):
    bundle = cert.public_bytes(serialization.Encoding.PEM).decode() + pem(key)
    assert same_key(load_private_key(private_key=bundle), key)


# ------------------------------------------------------------------------------ errors
def assert_no_key_material(message: str, *texts: str) -> None:
    assert "PRIVATE KEY-----\n" not in message
    for text in texts:
        assert body_of(text) not in message


def test_missing_file_names_path_and_setting(tmp_path):
    missing = tmp_path / "nope" / "salesforce.key"
    with pytest.raises(PrivateKeyError) as info:
        load_private_key(private_key_file=missing)
    message = str(info.value)
    assert str(missing) in message
    assert "SF_PRIVATE_KEY_FILE" in message and "private_key_file=" in message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads everything")
def test_unreadable_file(key, tmp_path):
    path = write(tmp_path / "locked.key", pem(key), mode=0o000)
    with pytest.raises(PrivateKeyError, match="permission denied"):
        load_private_key(private_key_file=path)


def test_unreadable_file_message(key, tmp_path, monkeypatch):
    # runs as root too: the OS refusal is simulated at the file-reading call
    path = write(tmp_path / "locked.key", pem(key))

    real_open = os.open

    def refuse(name, *args, **kwargs):
        if os.fspath(name) == str(path):
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)  # the key file is opened with os.open (O_NONBLOCK)
    with pytest.raises(PrivateKeyError) as info:
        load_private_key(private_key_file=path)
    assert "permission denied" in str(info.value) and str(path) in str(info.value)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(PrivateKeyError, match="directory"):
        load_private_key(private_key_file=tmp_path)


def test_certificate_instead_of_key(cert, tmp_path):
    path = write(tmp_path / "salesforce.crt", cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(PrivateKeyError) as info:
        load_private_key(private_key_file=path)
    message = str(info.value)
    assert "certificate (.crt)" in message
    assert "Use digital signatures" in message
    assert "private key (.key)" in message


def test_der_certificate_instead_of_key(cert):
    with pytest.raises(PrivateKeyError, match="certificate"):
        load_private_key(private_key=cert.public_bytes(serialization.Encoding.DER))


@pytest.mark.parametrize("fmt", [serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1])
def test_public_key_instead_of_private(key, fmt):
    public = key.public_key().public_bytes(serialization.Encoding.PEM, fmt).decode()
    with pytest.raises(PrivateKeyError, match="public key"):
        load_private_key(private_key=public)


def test_openssh_public_key(key):
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    with pytest.raises(PrivateKeyError, match="public key"):
        load_private_key(private_key=public.decode())


def test_not_rsa(ec_key):
    text = pem(ec_key)
    for value in (text, ec_key):
        with pytest.raises(PrivateKeyError) as info:
            load_private_key(private_key=value)
        assert "not an RSA key" in str(info.value) and "RS256" in str(info.value)
        assert_no_key_material(str(info.value), text)


def test_too_short(small_key):
    text = pem(small_key)
    for value in (text, small_key):
        with pytest.raises(PrivateKeyError) as info:
            load_private_key(private_key=value)
        assert "1024 bits" in str(info.value) and "2048" in str(info.value)
        assert_no_key_material(str(info.value), text)


def test_encrypted_without_passphrase(key, tmp_path):
    path = write(tmp_path / "enc.key", pem(key, passphrase=PASSPHRASE))
    with pytest.raises(PrivateKeyError) as info:
        load_private_key(private_key_file=path)
    message = str(info.value)
    assert "encrypted" in message
    assert "private_key_passphrase=" in message and "SF_PRIVATE_KEY_PASSPHRASE" in message


def test_legacy_encrypted_without_passphrase(key):
    text = pem(key, serialization.PrivateFormat.TraditionalOpenSSL, passphrase=PASSPHRASE)
    with pytest.raises(PrivateKeyError, match="SF_PRIVATE_KEY_PASSPHRASE"):
        load_private_key(private_key=text)


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_wrong_passphrase(key, fmt):
    text = pem(key, fmt, passphrase=PASSPHRASE)
    with pytest.raises(PrivateKeyError) as info:
        load_private_key(private_key=text, passphrase="wrong")
    message = str(info.value)
    assert "passphrase is wrong" in message
    assert "wrong" not in message.replace("passphrase is wrong", "")  # the passphrase is not echoed
    assert PASSPHRASE not in message
    assert_no_key_material(message, text)


@pytest.mark.parametrize("value", ["hello world", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "{\"json\": true}"])
def test_not_a_key_at_all(value):
    with pytest.raises(PrivateKeyError) as info:
        load_private_key(private_key=value)
    message = str(info.value)
    assert "does not contain a private key" in message
    assert value not in message


def test_truncated_key(key):
    text = pem(key)
    lines = text.splitlines()
    truncated = "\n".join(lines[:5] + lines[-1:])
    with pytest.raises(PrivateKeyError) as info:
        load_private_key(private_key=truncated)
    assert "damaged" in str(info.value)
    assert_no_key_material(str(info.value), text)


def test_binary_garbage():
    with pytest.raises(PrivateKeyError):
        load_private_key(private_key=b"\xff\xfe\x00\x01garbage")


def test_path_passed_as_key_text(key, tmp_path):
    path = write(tmp_path / "k.key", pem(key))
    with pytest.raises(PrivateKeyError, match="private_key_file="):
        load_private_key(private_key=str(path))


def test_both_and_neither(key):
    with pytest.raises(ConfigurationError, match="private_key= and private_key_file="):
        load_private_key(private_key=pem(key), private_key_file="x.key")
    with pytest.raises(ConfigurationError, match="SF_PRIVATE_KEY_FILE"):
        load_private_key()
    with pytest.raises(PrivateKeyError, match="empty"):
        load_private_key(private_key="   ")


# ------------------------------------------------------------------------- permissions
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_group_readable_key_file_warns_with_chmod(key, tmp_path):
    path = write(tmp_path / "open.key", pem(key), mode=0o644)
    with pytest.warns(KeyFilePermissionWarning, match="chmod 600"):
        loaded = load_private_key(private_key_file=path)
    assert same_key(loaded, key)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_private_key_file_does_not_warn(key, tmp_path):
    path = write(tmp_path / "closed.key", pem(key), mode=0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_private_key(private_key_file=path)


# ------------------------------------------------------------------ generation / certs
def test_generate_key_pair(pair):
    key, cert = pair
    assert key.key_size == 2048
    assert key_matches_certificate(key, cert)
    assert cert.signature_hash_algorithm.name == "sha256"
    assert cert.subject.rfc4514_string() == "CN=sfjwt-test"
    assert cert.issuer == cert.subject
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 30 <= lifetime.days <= 31


def test_key_matches_certificate_false_for_other_key(cert, small_key):
    assert not key_matches_certificate(small_key, cert)


def test_generate_refuses_short_keys():
    with pytest.raises(ConfigurationError, match="2048"):
        generate_key_pair(bits=1024)


def test_write_key_pair(tmp_path):
    key_path, cert_path = write_key_pair(tmp_path / "out", "app", days=10)
    assert key_path == tmp_path / "out" / "app.key"
    assert cert_path == tmp_path / "out" / "app.crt"
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    key = load_private_key(private_key_file=key_path)
    cert = load_certificate(cert_path)
    assert key_matches_certificate(key, cert)
    assert "BEGIN PRIVATE KEY" in key_path.read_text()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_write_key_pair_refuses_to_overwrite_without_force(tmp_path):
    key_path, cert_path = write_key_pair(tmp_path)
    before = key_path.read_bytes()
    with pytest.raises(KeyPairExistsError) as info:
        write_key_pair(tmp_path)
    assert isinstance(info.value, FileExistsError)
    assert isinstance(info.value, ConfigurationError)
    assert "force" in str(info.value)
    assert key_path.read_bytes() == before
    new_key, _ = write_key_pair(tmp_path, force=True)
    assert new_key.read_bytes() != before
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(new_key).st_mode) == 0o600


def test_write_key_pair_with_passphrase(tmp_path):
    key_path, cert_path = write_key_pair(tmp_path, passphrase=PASSPHRASE)
    assert "ENCRYPTED PRIVATE KEY" in key_path.read_text()
    with pytest.raises(PrivateKeyError, match="SF_PRIVATE_KEY_PASSPHRASE"):
        load_private_key(private_key_file=key_path)
    key = load_private_key(private_key_file=key_path, passphrase=PASSPHRASE)
    assert key_matches_certificate(key, load_certificate(cert_path))


def test_load_certificate_pem_and_der_and_errors(cert, key, tmp_path):
    der = write(tmp_path / "c.der", cert.public_bytes(serialization.Encoding.DER))
    assert load_certificate(der) == cert
    with pytest.raises(ConfigurationError, match="no such certificate"):
        load_certificate(tmp_path / "missing.crt")
    key_file = write(tmp_path / "k.key", pem(key))
    with pytest.raises(ConfigurationError, match="private key, not a certificate"):
        load_certificate(key_file)


def test_fingerprint_is_sha256_colon_hex(cert):
    from cryptography.hazmat.primitives import hashes

    value = fingerprint(cert)
    parts = value.split(":")
    assert len(parts) == 32
    assert all(len(p) == 2 and p == p.upper() for p in parts)
    assert bytes.fromhex("".join(parts)) == cert.fingerprint(hashes.SHA256())


def test_keypair_exists_speaks_python_and_names_the_files(tmp_path: Path) -> None:
    write_key_pair(tmp_path, days=1)
    with pytest.raises(KeyPairExistsError) as caught:
        write_key_pair(tmp_path, days=1)
    assert "force=True" in str(caught.value) and "--force" not in str(caught.value)
    assert set(caught.value.paths) == {str(tmp_path / "salesforce.key"), str(tmp_path / "salesforce.crt")}


def _ec_keys(tmp_path: Path) -> list:
    """EC keys in every form a user may hold: PKCS#8 / traditional PEM, DER, several curves."""
    made = []
    for name in ("SECP256R1", "SECP384R1", "SECP256K1", "BrainpoolP256R1", "SECT283K1", "SECT571R1"):
        if not hasattr(ec, name):  # binary curves: deprecated in cryptography 44, gone later
            continue
        curve = getattr(ec, name)()
        try:
            key = ec.generate_private_key(curve)
        except Exception:  # a curve this cryptography/OpenSSL build lacks
            continue
        for encoding, fmt in ((serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8),
                              (serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL),
                              (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8)):
            path = tmp_path / f"{curve.name}-{len(made)}.key"
            path.write_bytes(key.private_bytes(encoding, fmt, serialization.NoEncryption()))
            path.chmod(0o600)
            made.append(path)
    return made


def test_an_ec_key_under_warnings_as_errors_is_our_private_key_error(tmp_path: Path) -> None:
    """`python -W error`: a warning cryptography emits while loading a non-RSA key (binary
    curves were deprecated in some versions) is raised; it must come out as PrivateKeyError
    naming RS256, never as cryptography's warning. (Not reproduced with cryptography 44 and 48
    here; this guards every curve and form this build can make.)"""
    keys = _ec_keys(tmp_path)
    assert keys
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in keys:
            with pytest.raises(PrivateKeyError, match="RSA") as caught:
                load_private_key(private_key_file=path)
            assert "Warning" not in type(caught.value).__name__, path
            with pytest.raises(PrivateKeyError, match="RSA"):
                load_private_key(private_key=path.read_bytes())


@pytest.mark.parametrize("name", ["", "a/b", ".."])
def test_a_bad_pair_name_speaks_python_only(name: str, tmp_path: Path) -> None:
    """Python callers get Python terms (the CLI words its own --name message)."""
    with pytest.raises(ConfigurationError) as caught:
        write_key_pair(tmp_path, name)
    assert "name=" in str(caught.value) and "--" not in str(caught.value)


def test_openssh_private_key(key):
    """An OpenSSH private key loads; a passphrase it does not need is ignored, as for PEM and DER
    keys (it used to be refused as "an encrypted OpenSSH key and no passphrase was given")."""
    text = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()
    for passphrase in [None, PASSPHRASE]:
        assert same_key(load_private_key(private_key=text, passphrase=passphrase), key)
