"""Every bad input a user can give gets a specific exception whose message names the fix
(the argument, the SF_* variable or the Setup screen) and holds no secret.

One test per case. Each goes through the public entry point a user calls: ``connect_jwt()``
(it fails before any network: settings, key and login host are checked first), the
``sfjwt`` command, or ``load_private_key`` where that is the API. Every exception's str()
and repr() are searched for each line of the key's PEM body and for the passphrase.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Tuple, Type

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sfjwt_ext import connect_jwt
from sfjwt_ext.errors import ConfigurationError, PrivateKeyError, SfJwtError
from sfjwt_ext.auth.keys import load_private_key
from sfjwt_ext.cli.keypair import generate_key_pair

PASSPHRASE = "correct horse battery staple 42"
USERNAME = "user@example.com"
CONSUMER_KEY = "3MVG9badinputs"
LOCAL_LOGIN = "https://127.0.0.1:9"  # never reached: every case fails before the network


# ---------------------------------------------------------------------------------------
# key material, made once per module
# ---------------------------------------------------------------------------------------
class Keys:
    def __init__(self, folder: Path) -> None:
        key, cert = generate_key_pair()
        self.rsa = key
        self.pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        self.encrypted_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode())).decode()
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        self.small_pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()).decode()
        self.folder = folder
        self.key_file = self.write("salesforce.key", self.pem)

    def write(self, name: str, text: str) -> str:
        path = self.folder / name
        path.write_text(text)
        os.chmod(path, 0o600)
        return str(path)

    def secrets(self) -> List[str]:
        lines: List[str] = [PASSPHRASE]
        for pem in (self.pem, self.encrypted_pem, self.ec_pem, self.small_pem):
            lines.extend(line for line in pem.splitlines() if line and not line.startswith("-----"))
        return lines


pytestmark = pytest.mark.usefixtures("no_sf_settings")  # no SF_* variable, no profile file


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("bad-input-keys"))


def check(exc_info: pytest.ExceptionInfo, cls: Type[BaseException], keys: Keys,
          must: Iterable[str] = (), fix_any: Iterable[str] = ()) -> str:
    """The exception is ``cls``, its message contains every ``must`` and at least one
    ``fix_any`` (case-insensitive), and no secret is in its str() or repr()."""
    exc = exc_info.value
    assert isinstance(exc, cls), f"{type(exc).__name__}: {exc}"
    assert isinstance(exc, SfJwtError)
    text = str(exc)
    lowered = text.lower()
    for fragment in must:
        assert fragment.lower() in lowered, f"{fragment!r} not in {text!r}"
    fixes = list(fix_any)
    if fixes:
        assert any(f.lower() in lowered for f in fixes), f"none of {fixes} in {text!r}"
    for rendered in (text, repr(exc)):
        for secret in keys.secrets():
            assert secret not in rendered, "a secret is in the exception text"
    return text


def connect(**kwargs: Any) -> Any:
    arguments: Dict[str, Any] = {"username": USERNAME, "consumer_key": CONSUMER_KEY, "login_url": LOCAL_LOGIN,
                                 "cache": False}
    arguments.update(kwargs)
    return connect_jwt(**{k: v for k, v in arguments.items() if v is not None})


# ---------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------
def test_key_file_does_not_exist(keys: Keys, tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key_file=str(missing))
    check(info, PrivateKeyError, keys, must=[str(missing), "no such file"],
          fix_any=["SF_PRIVATE_KEY_FILE", "private_key_file="])


def test_key_file_unreadable(keys: Keys, tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root reads a chmod 000 file: a directory is the unreadable case
        target = tmp_path / "a-directory.key"
        target.mkdir()
        expected = ["directory"]
    else:
        target = tmp_path / "locked.key"
        target.write_text(keys.pem)
        os.chmod(target, 0)
        expected = ["permission denied"]
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key_file=str(target))
    check(info, PrivateKeyError, keys, must=[str(target)] + expected,
          fix_any=["SF_PRIVATE_KEY_FILE", "private_key_file=", "chmod", "owner"])


def test_certificate_instead_of_key(keys: Keys) -> None:
    path = keys.write("salesforce.crt", keys.cert_pem)
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key_file=path)
    check(info, PrivateKeyError, keys, must=["certificate", "private key"],
          fix_any=["SF_PRIVATE_KEY_FILE", "private_key_file="])


def test_public_key_instead_of_private(keys: Keys) -> None:
    path = keys.write("public.pem", keys.public_pem)
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key_file=path)
    check(info, PrivateKeyError, keys, must=["public key"], fix_any=["private key", "BEGIN PRIVATE KEY"])


def test_ec_key_is_not_rsa(keys: Keys) -> None:
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key=keys.ec_pem)
    check(info, PrivateKeyError, keys, must=["RSA"], fix_any=["sfjwt keygen", "openssl genrsa"])


def test_1024_bit_key_is_too_small(keys: Keys) -> None:
    path = keys.write("small.key", keys.small_pem)
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key_file=path)
    check(info, PrivateKeyError, keys, must=["1024", "2048"], fix_any=["sfjwt keygen", "openssl genrsa"])


def test_encrypted_key_without_passphrase(keys: Keys) -> None:
    path = keys.write("encrypted.key", keys.encrypted_pem)
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key_file=path)
    check(info, PrivateKeyError, keys, must=["encrypted", "passphrase"],
          fix_any=["SF_PRIVATE_KEY_PASSPHRASE", "private_key_passphrase="])


def test_encrypted_key_wrong_passphrase(keys: Keys) -> None:
    path = keys.write("encrypted2.key", keys.encrypted_pem)
    wrong = "not the passphrase 99"
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key_file=path, private_key_passphrase=wrong)
    text = check(info, PrivateKeyError, keys, must=["passphrase"],
                 fix_any=["SF_PRIVATE_KEY_PASSPHRASE", "private_key_passphrase="])
    assert wrong not in text and wrong not in repr(info.value)


def test_not_a_key_at_all(keys: Keys) -> None:
    path = keys.write("notes.txt", "username=user@example.com\nthis is not a key\n")
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key_file=path)
    check(info, PrivateKeyError, keys, must=["private key"],
          fix_any=["sfjwt keygen", "BEGIN PRIVATE KEY", "PEM"])


def test_garbage_pem_body(keys: Keys) -> None:
    garbage = "-----BEGIN PRIVATE KEY-----\nTm90IGEga2V5IGF0IGFsbCwganVzdCBnYXJiYWdl\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key=garbage)
    check(info, PrivateKeyError, keys, must=["PRIVATE KEY"],
          fix_any=["copy the whole key", "sfjwt keygen", "damaged"])


def test_private_key_argument_holding_a_path(keys: Keys) -> None:
    with pytest.raises(PrivateKeyError) as info:
        connect(private_key=keys.key_file)
    check(info, PrivateKeyError, keys, must=["private_key_file"])


def test_encrypted_key_in_environment_without_passphrase(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_PRIVATE_KEY", keys.encrypted_pem.replace("\n", "\\n"))  # as CI secrets hold it
    with pytest.raises(PrivateKeyError) as info:
        connect()
    check(info, PrivateKeyError, keys, must=["passphrase"], fix_any=["SF_PRIVATE_KEY_PASSPHRASE"])


# ---------------------------------------------------------------------------------------
# missing and contradictory settings
# ---------------------------------------------------------------------------------------
def test_missing_username(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect_jwt(consumer_key=CONSUMER_KEY, private_key_file=keys.key_file, login_url=LOCAL_LOGIN, cache=False)
    check(info, ConfigurationError, keys, must=["username=", "SF_USERNAME", "--username"])


def test_missing_consumer_key(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect_jwt(username=USERNAME, private_key_file=keys.key_file, login_url=LOCAL_LOGIN, cache=False)
    check(info, ConfigurationError, keys, must=["consumer_key=", "SF_CONSUMER_KEY"])


def test_missing_private_key(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect_jwt(username=USERNAME, consumer_key=CONSUMER_KEY, login_url=LOCAL_LOGIN, cache=False)
    check(info, ConfigurationError, keys, must=["private_key_file=", "SF_PRIVATE_KEY_FILE"])


def test_nothing_set_at_all_names_every_missing_setting(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect_jwt(cache=False)
    check(info, ConfigurationError, keys, must=["SF_USERNAME", "SF_CONSUMER_KEY", "SF_PRIVATE_KEY_FILE"])


def test_both_private_key_and_private_key_file(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect(private_key=keys.pem, private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["private_key=", "private_key_file=", "only one"])


def test_both_sf_private_key_and_sf_private_key_file(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_PRIVATE_KEY", keys.pem)
    monkeypatch.setenv("SF_PRIVATE_KEY_FILE", keys.key_file)
    with pytest.raises(ConfigurationError) as info:
        connect()
    check(info, ConfigurationError, keys, must=["SF_PRIVATE_KEY ", "SF_PRIVATE_KEY_FILE", "unset one"])


def test_empty_sf_private_key(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_PRIVATE_KEY", "")
    with pytest.raises(ConfigurationError) as info:
        connect()
    check(info, ConfigurationError, keys, must=["SF_PRIVATE_KEY", "empty"])


def test_non_numeric_api_version(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_API_VERSION", "latest")
    with pytest.raises(ConfigurationError) as info:
        connect(private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["SF_API_VERSION", "latest"], fix_any=["62.0", "version number"])


def test_ca_bundle_that_does_not_exist(keys: Keys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SF_CA_BUNDLE", str(tmp_path / "missing-ca.pem"))
    with pytest.raises(ConfigurationError) as info:
        connect(private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["SF_CA_BUNDLE", "missing-ca.pem"])


# ---------------------------------------------------------------------------------------
# login host
# ---------------------------------------------------------------------------------------
def test_domain_with_trailing_slash(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect(login_url=None, domain="test.salesforce.com/", private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["domain=", "domain='test'"])


def test_domain_with_a_path(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect(login_url=None, domain="https://login.salesforce.com/services", private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["path", "https://login.salesforce.com'"])


def test_login_url_without_scheme(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect(login_url="acme.my.salesforce.com", private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["https://acme.my.salesforce.com"], fix_any=["SF_LOGIN_URL", "domain="])


def test_plain_http_to_a_remote_host(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect(login_url="http://acme.my.salesforce.com", private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["https://acme.my.salesforce.com"], fix_any=["login_url="])


def test_audience_that_is_not_a_url(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect(audience="login.salesforce.com", private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["audience="], fix_any=["SF_AUDIENCE", "https://login.salesforce.com"])


# ---------------------------------------------------------------------------------------
# profiles
# ---------------------------------------------------------------------------------------
def _profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "config.ini"
    path.write_text(text)
    os.chmod(path, 0o600)
    monkeypatch.setenv("SFJWT_CONFIG", str(path))
    return path


def test_profile_that_does_not_exist(keys: Keys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _profile(tmp_path, monkeypatch, f"[prod]\nusername = {USERNAME}\n")
    with pytest.raises(ConfigurationError) as info:
        connect(profile="staging", private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["staging", "'prod'"])


def test_profile_named_but_no_profile_file(keys: Keys) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect(profile="prod", private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["prod", "SFJWT_CONFIG"])


def test_profile_file_is_not_ini(keys: Keys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _profile(tmp_path, monkeypatch, "username = someone\n{ not: ini }\n")
    with pytest.raises(ConfigurationError) as info:
        connect(private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=[str(path), "INI"], fix_any=["[name]", "[profile]", "section"])


def test_profile_containing_private_key(keys: Keys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    body = "\n  ".join(keys.pem.strip().splitlines())
    _profile(tmp_path, monkeypatch, f"[default]\nusername = {USERNAME}\nprivate_key = {body}\n")
    with pytest.raises(ConfigurationError) as info:
        connect(private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["private_key"], fix_any=["private_key_file", "never store"])


def test_profile_containing_passphrase(keys: Keys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _profile(tmp_path, monkeypatch, f"[default]\nprivate_key_passphrase = {PASSPHRASE}\n")
    with pytest.raises(ConfigurationError) as info:
        connect(private_key_file=keys.key_file)
    check(info, ConfigurationError, keys, must=["private_key_passphrase"], fix_any=["SF_PRIVATE_KEY_PASSPHRASE"])


# ---------------------------------------------------------------------------------------
# the sfjwt command
# ---------------------------------------------------------------------------------------
def _cli_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("sfjwt_ext.cli") is not None


needs_cli = pytest.mark.skipif(not _cli_available(), reason="sfjwt_ext.cli is not there yet")


def _sfjwt(*args: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sfjwt_ext", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, env=env)


def _cli_env(tmp_path: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    env["SFJWT_CONFIG"] = str(tmp_path / "no-such-config.ini")
    return env


def _check_cli(out: subprocess.CompletedProcess, keys: Keys, *fragments: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    for fragment in fragments:
        assert fragment in out.stderr, out.stderr
    for secret in keys.secrets():
        assert secret not in out.stdout + out.stderr


@needs_cli
def test_cli_keygen_bits_too_small(keys: Keys, tmp_path: Path) -> None:
    out = _sfjwt("keygen", "--bits", "1000", "--out", str(tmp_path / "k"), env=_cli_env(tmp_path))
    _check_cli(out, keys, "--bits")
    assert not (tmp_path / "k" / "salesforce.key").exists()


@needs_cli
def test_cli_query_unknown_format(keys: Keys, tmp_path: Path) -> None:
    out = _sfjwt("query", "--format", "xml", "SELECT Id FROM Account", env=_cli_env(tmp_path))
    _check_cli(out, keys, "--format", "xml")


@needs_cli
def test_cli_login_url_with_ftp_scheme(keys: Keys, tmp_path: Path) -> None:
    env = _cli_env(tmp_path)
    env.update({"SF_USERNAME": USERNAME, "SF_CONSUMER_KEY": CONSUMER_KEY, "SF_PRIVATE_KEY_FILE": keys.key_file})
    out = _sfjwt("--login-url", "ftp://x", "check", env=env)
    _check_cli(out, keys, "ftp://x")
    assert "https://" in out.stderr
