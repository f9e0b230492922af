"""Odd inputs to ``connect_jwt()`` (issue 9, items 8-10) and the profile file's place
(issue 11: platformdirs).

* Key and profile files are regular files of a few KB: ``/dev/zero`` used to be read until
  MemoryError, a FIFO blocked forever. Those cases run in a subprocess with a hard deadline
  (and a memory cap), so a regression fails instead of hanging or eating the machine.
* ``timeout=`` and ``verify=`` are checked before any connection, with a ConfigurationError
  naming the argument (or the variable: SF_CA_BUNDLE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE).

Every case fails before the network: the login URL is a closed port that is never reached.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from sfjwt_ext import config as settings
from sfjwt_ext import connect_jwt
from sfjwt_ext.auth import keys
from sfjwt_ext.errors import ConfigurationError, PrivateKeyError
from sfjwt_ext.auth.keys import load_private_key
from sfjwt_ext.cli.keypair import write_key_pair
from sfjwt_ext.config import config_path, resolve_settings

LOCAL_LOGIN = "https://127.0.0.1:9"  # never reached
DEADLINE = 60  # seconds a subprocess gets; the fixed code answers at once
ROOT = str(Path(__file__).resolve().parents[1])

# Runs connect_jwt (or resolve_settings) in a child and prints what it raised as JSON.
CHILD = r"""
import json, os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))  # 2 GiB: /dev/zero fails fast, the machine is safe
from sfjwt_ext import connect_jwt
from sfjwt_ext.config import resolve_settings
what, kwargs = sys.argv[1], json.loads(sys.argv[2])
try:
    if what == "connect":
        connect_jwt(username="u@example.com", consumer_key="3MVG9x", login_url="https://127.0.0.1:9", **kwargs)
    else:
        resolve_settings(username="u@example.com")
    print(json.dumps({"type": None, "message": ""}))
except BaseException as exc:
    print(json.dumps({"type": type(exc).__name__, "message": str(exc)}))
"""


def in_child(what: str, env: Optional[Dict[str, str]] = None, **kwargs: Any) -> Dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    environment.update({"PYTHONPATH": ROOT, "SFJWT_CONFIG": os.devnull + ".none"})
    environment.update(env or {})
    proc = subprocess.Popen([sys.executable, "-c", CHILD, what, json.dumps(kwargs)], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{what}({kwargs}) was still running after {DEADLINE} s: it blocks")
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


pytestmark = pytest.mark.usefixtures("no_sf_settings")  # no SF_* variable, no profile file


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    key_path, _ = write_key_pair(tmp_path_factory.mktemp("attack-key"))
    return str(key_path)


def connect(key_file: str, **kwargs: Any) -> Any:
    return connect_jwt(username="u@example.com", consumer_key="3MVG9x", login_url=LOCAL_LOGIN,
                       private_key_file=key_file, cache=False, **kwargs)


# ---------------------------------------------------------------------------------------
# item 8: key and profile files
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cache", [True, False])  # cache=True reads the file for its fingerprint first
def test_dev_zero_as_the_key_file_says_it_is_a_device(cache: bool) -> None:
    result = in_child("connect", env={"SF_PRIVATE_KEY_FILE": "/dev/zero"}, cache=cache)
    assert result["type"] == "PrivateKeyError", result
    assert "/dev/zero" in result["message"] and "character device" in result["message"]
    assert "SF_PRIVATE_KEY_FILE" in result["message"]


@pytest.mark.parametrize("cache", [True, False])
def test_a_fifo_as_the_key_file_is_refused_without_blocking(tmp_path: Path, cache: bool) -> None:
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)  # nobody ever writes to it: a blocking open would wait forever
    result = in_child("connect", private_key_file=str(fifo), cache=cache)
    assert result["type"] == "PrivateKeyError", result
    assert "named pipe (FIFO)" in result["message"] and str(fifo) in result["message"]
    assert "SF_PRIVATE_KEY" in result["message"]  # what to give instead: a file, or the text


def test_a_key_file_over_the_cap_says_its_size(tmp_path: Path) -> None:
    big = tmp_path / "huge.key"
    big.write_bytes(b"A" * (keys.KEY_MAX_BYTES + 1))
    with pytest.raises(PrivateKeyError) as info:
        load_private_key(private_key_file=big)
    assert "64 KiB" in str(info.value) and str(big) in str(info.value)
    with pytest.raises(PrivateKeyError, match="64 KiB"):
        keys.read_key_file(big)


def test_read_key_file_reads_a_real_key(key_file: str) -> None:
    data = keys.read_key_file(key_file)
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----") and data == Path(key_file).read_bytes()


def test_a_fifo_as_the_profile_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    result = in_child("resolve", env={"SFJWT_CONFIG": str(fifo)})
    assert result["type"] == "ConfigurationError", result
    assert "named pipe (FIFO)" in result["message"] and "SFJWT_CONFIG" in result["message"]


@pytest.mark.parametrize("profile", ["fifo", "/dev/zero"])
def test_connect_jwt_with_a_fifo_or_device_profile_is_refused_without_blocking(tmp_path: Path, profile: str) -> None:
    """connect_jwt memoizes settings by the profile's content: that read is checked too."""
    path = tmp_path / "config.fifo" if profile == "fifo" else Path(profile)
    if profile == "fifo":
        os.mkfifo(path)
    result = in_child("connect", env={"SFJWT_CONFIG": str(path)}, private_key_file="/nonexistent.key")
    assert result["type"] == "ConfigurationError", result
    assert "SFJWT_CONFIG" in result["message"]


def test_a_device_or_a_huge_file_as_the_profile_is_refused(tmp_path: Path) -> None:
    result = in_child("resolve", env={"SFJWT_CONFIG": "/dev/zero"})
    assert result["type"] == "ConfigurationError" and "character device" in result["message"], result
    huge = tmp_path / "config.ini"
    huge.write_bytes(b"[default]\n" + b"# padding\n" * (settings.PROFILE_MAX_BYTES // 10 + 1))
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(environ={"SFJWT_CONFIG": str(huge)})
    assert "1.0 MiB" in str(info.value) and "SFJWT_CONFIG" in str(info.value)
    with pytest.raises(ConfigurationError, match="directory"):
        settings.read_profile_file(tmp_path)


def test_dev_null_as_the_profile_file_means_no_profile() -> None:
    resolved = resolve_settings(environ={"SFJWT_CONFIG": os.devnull}, username="u@example.com")
    assert resolved.username == "u@example.com" and resolved.domain == "login"


# ---------------------------------------------------------------------------------------
# item 9: timeout=
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["5", (1,), -1, 0, float("nan"), float("inf"), True, (5, -1), (5, None), (1, 2, 3), "abc", [0, 5]],
    ids=repr,
)
def test_bad_timeout_is_a_configuration_error_naming_timeout(key_file: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect(key_file, timeout=value)
    assert "timeout=" in str(info.value) and "(connect, read)" in str(info.value)


def test_good_timeouts_are_numbers_or_pairs() -> None:
    assert settings.check_timeout(None) is None
    assert settings.check_timeout(5) == 5.0 and isinstance(settings.check_timeout(5), float)
    assert settings.check_timeout(0.5) == 0.5
    assert settings.check_timeout((3, 60)) == (3.0, 60.0)
    assert settings.check_timeout([3, 60.5]) == (3.0, 60.5)  # a list is taken as the pair requests wants


# ---------------------------------------------------------------------------------------
# item 10: verify=
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [42, ["ca.pem"], {"a": 1}, b"/etc/ssl/certs", ""], ids=repr)
def test_verify_that_is_not_a_path_or_bool(key_file: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        connect(key_file, verify=value)
    assert "verify=" in str(info.value) and "SF_CA_BUNDLE" in str(info.value)


def test_verify_naming_a_missing_file(key_file: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(ConfigurationError) as info:
        connect(key_file, verify=str(missing))
    text = str(info.value)
    assert "verify=" in text and "SF_CA_BUNDLE" in text and str(missing) in text and "does not exist" in text


@pytest.mark.parametrize("content", [b"", b"not a certificate\n", b"\x30\x82\x01\x0a" * 100], ids=["empty", "text", "der"])
def test_verify_naming_a_file_without_certificates(key_file: str, tmp_path: Path, content: bytes) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(content)
    with pytest.raises(ConfigurationError) as info:
        connect(key_file, verify=str(bundle))
    text = str(info.value)
    assert "no PEM certificate" in text and "verify=" in text and "SF_CA_BUNDLE" in text and str(bundle) in text


@pytest.mark.parametrize("offset", [0, 16 * 1024 - 12, 70 * 1024], ids=["first", "across-first-read", "far"])
def test_a_bundle_whose_certificate_comes_late_is_accepted(tmp_path: Path, offset: int) -> None:
    """Comments or text before the first certificate: it is found wherever it starts (within 64 MiB)."""
    from sfjwt_ext.testing.core import tls

    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(b"#" * offset + b"\n" + tls.authority().ca_pem)
    assert settings.check_verify(str(bundle)) == str(bundle)


def test_sf_ca_bundle_without_certificates_names_the_variable(key_file: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    monkeypatch.setenv("SF_CA_BUNDLE", str(bundle))
    with pytest.raises(ConfigurationError) as info:
        connect(key_file)
    assert str(info.value).startswith("SF_CA_BUNDLE") and "no PEM certificate" in str(info.value)


def test_verify_naming_a_fifo_never_opens_it(key_file: str, tmp_path: Path) -> None:
    fifo = tmp_path / "ca.fifo"
    os.mkfifo(fifo)
    result = in_child("connect", private_key_file=key_file, verify=str(fifo), cache=False)
    assert result["type"] == "ConfigurationError" and "named pipe" in result["message"], result


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_missing_ca_bundle_variable_is_named_when_verify_is_the_default(
    key_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv(variable, str(tmp_path / "gone.pem"))
    with pytest.raises(ConfigurationError) as info:
        connect(key_file)
    text = str(info.value)
    assert text.startswith(variable) and "gone.pem" in text and "does not exist" in text
    assert f"unset {variable}" in text


def test_good_verify_values_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "gone.pem"))
    assert settings.check_verify(False) is False
    assert settings.check_verify(True, trust_env=False) is True  # a session that ignores the environment
    ca = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    if os.path.isfile(ca):
        assert settings.check_verify(ca) == ca
        assert settings.check_verify(Path(ca)) == ca
    folder = tmp_path / "hashed"
    folder.mkdir()
    (folder / "0123abcd.0").write_text("-----BEGIN CERTIFICATE-----\n")  # c_rehash names: <hash>.0
    assert settings.check_verify(str(folder)) == str(folder)  # a c_rehash folder
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigurationError, match="no certificates"):
        settings.check_verify(str(empty))


def test_the_local_org_still_logs_in_with_its_ca_and_a_pair_timeout(salesforce_org: Any) -> None:
    sf = connect_jwt(**salesforce_org.credentials.connect_kwargs(), timeout=(5, 30), cache=False)
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    assert sf.session.timeout == (5.0, 30.0) and salesforce_org.token_requests == 1


# ---------------------------------------------------------------------------------------
# issue 11: the profile file's folder comes from platformdirs
# ---------------------------------------------------------------------------------------
def test_config_path_asks_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    asked = []

    def user_config_dir(appname: str, *args: Any, **kwargs: Any) -> str:
        asked.append((appname, kwargs.get("appauthor"), kwargs.get("roaming")))
        return str(tmp_path / "platform" / appname)

    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr(settings.platformdirs, "user_config_dir", user_config_dir)
    assert config_path({}) == tmp_path / "platform" / "sfjwt" / "config.ini"
    assert asked == [("sfjwt", False, True)]  # Windows: %APPDATA%\sfjwt, as before
    # SFJWT_CONFIG and XDG_CONFIG_HOME still decide first
    assert config_path({"SFJWT_CONFIG": str(tmp_path / "x.ini")}) == tmp_path / "x.ini"
    if sys.platform != "win32":
        assert config_path({"XDG_CONFIG_HOME": str(tmp_path / "xdg")}) == tmp_path / "xdg" / "sfjwt" / "config.ini"
