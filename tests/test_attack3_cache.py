"""Attack round 3 (issue 18 items 3, 4, 6, 7, 9; issue 19 item 6) against the token cache
and pickled clients.

* ``clear`` removes only what is ours (entries named and framed as ours, our temporary
  files); a killed writer's temporary file goes with the next write of its entry.
* ``sfjwt cache list`` never sends a control character from a planted header to the terminal.
* A cache folder owned by another user is refused with a warning that names it (as ssh does).
* A pickle carries no proxy credential from the environment or from ``proxies=``; the
  receiving process uses its own environment.
* An unpickled client whose CA file is gone raises connect_jwt's ConfigurationError (at its
  first request: unpickling itself never raises).
* ``filelock`` is imported only when the token cache is used.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Set, Tuple

import pytest
from _support import call_in_process, exit_code, fork
from cryptography.hazmat.primitives.asymmetric import rsa

from sfjwt_ext import connect_jwt
from sfjwt_ext.cli import EXIT_OK, main
from sfjwt_ext.errors import ConfigurationError
from sfjwt_ext.auth.token_client import TokenResponse
from sfjwt_ext.cli.keypair import generate_key_pair
from sfjwt_ext.auth.credentials import LoginIdentity
from sfjwt_ext.sharing.diskcache import FORMAT_VERSION, MAGIC, TokenStore, entry_name

LOGGER = "sfjwt_ext.tokencache"
DEADLINE = 180.0  # seconds for a worker process; only a hang gets near it
REPO = str(Path(__file__).resolve().parents[1])
spawn = multiprocessing.get_context("spawn")


def _env() -> Dict[str, str]:
    """This environment, with this checkout first on the path (for subprocesses)."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_key_pair()[0]


def _identity(key: rsa.RSAPrivateKey) -> LoginIdentity:
    return LoginIdentity.for_key(
        username="ops@acme.example", consumer_key="3MVG9" + "x" * 80,
        token_url="https://acme.my.salesforce.com/services/oauth2/token",
        audience="https://login.salesforce.com", key=key,
    )


def _token(access_token: str = "00D5g000004ABCD!AQ4AQFx3kT.secret") -> TokenResponse:
    return TokenResponse(
        access_token=access_token, instance_url="https://acme.my.salesforce.com",
        id="https://login.salesforce.com/id/00D5g000004ABCDEAA/0055g00000AbCdEAAQ",
    )


# ---------------------------------------------------------------------------------------
# item 3: clear deletes only what is ours; stale temporary files go with the next write
# ---------------------------------------------------------------------------------------
def _plant_foreign_files(folder: Path) -> Dict[str, bytes]:
    """Files another tool (or a mistyped --folder) may hold: none of them is ours."""
    foreign = {
        "notes.token": b"another tool's token file",
        "0123456789abcdef0123456789abcdef.token": b"named like ours, not ours",
        ".session.tmp": b"another tool's temporary file",
        ".0123456789abcdef0123456789abcdef.abcd_123.tmp": b"named like ours, not ours",
        ".lock.tmp": b"",
    }
    for name, content in foreign.items():
        (folder / name).write_bytes(content)
    return foreign


def test_clear_removes_only_our_entries_and_temporary_files(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    store = TokenStore(tmp_path / "cache")
    identity = _identity(key)
    assert store.store(identity, key, _token())
    foreign = _plant_foreign_files(store.folder)
    target = tmp_path / "elsewhere.token"
    target.write_bytes(MAGIC + b"\x01")
    (store.folder / "fedcba9876543210fedcba9876543210.token").symlink_to(target)
    killed = store.folder / f".{entry_name(identity)}.k3j4h5g6.tmp"
    killed.write_bytes(MAGIC[:5])  # a writer killed while writing
    assert store.clear() == 1
    assert not store.entry_path(identity).exists() and not killed.exists()
    for name, content in foreign.items():
        assert (store.folder / name).read_bytes() == content, name
    assert (store.folder / "fedcba9876543210fedcba9876543210.token").is_symlink()
    assert target.read_bytes() == MAGIC + b"\x01"


def test_the_cli_clear_of_a_mistyped_folder_deletes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "not-a-cache"
    folder.mkdir(mode=0o700)
    foreign = _plant_foreign_files(folder)
    assert main(["cache", "clear", "--folder", str(folder)]) == EXIT_OK
    assert capsys.readouterr().out == f"removed 0 cached tokens from {folder}\n"
    assert sorted(p.name for p in folder.iterdir()) == sorted(foreign)


def test_a_killed_writers_temporary_file_goes_with_the_next_write(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    store = TokenStore(tmp_path / "cache")
    identity = _identity(key)
    assert store.store(identity, key, _token())
    stale = store.folder / f".{entry_name(identity)}.zz9_plur.tmp"
    stale.write_bytes(MAGIC + b"\x01\x00\x00")  # killed after a few bytes, an hour ago
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    live = store.folder / f".{entry_name(identity)}.l1vewr1t.tmp"
    live.write_bytes(MAGIC)  # another process writing right now
    other = store.folder / ".session.tmp"
    other.write_bytes(b"not ours")
    os.utime(other, (hour_ago, hour_ago))
    assert store.store(identity, key, _token("00D5g000004ABCD!second"))
    assert not stale.exists()
    assert live.exists() and other.exists()


def _temp_files(folder: Path) -> Set[str]:
    return {p.name for p in folder.glob(".*.tmp")}


def _new_temp_file(folder: Path, before: Set[str], deadline: float = DEADLINE) -> Path:
    """The temporary file a writer process makes (polled for, with a deadline)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        made = _temp_files(folder) - before
        if made:
            return folder / made.pop()
        time.sleep(0.01)  # polling the folder, not waiting for an outcome
    pytest.fail(f"no writer made a temporary file within {deadline:.0f} s")


def _wait_for_size(path: Path, size: int, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while path.stat().st_size < size:
        if time.monotonic() > end:
            pytest.fail(f"the writer did not write {size} bytes within {deadline:.0f} s")
        time.sleep(0.01)  # polling the file, not waiting for an outcome


@pytest.mark.skipif(os.name != "posix", reason="os.fork; elsewhere only the age of a temporary file tells")
def test_a_killed_writer_is_told_from_a_live_one_by_its_lock_not_the_clock(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    store = TokenStore(tmp_path / "cache")
    identity = _identity(key)
    assert store.store(identity, key, _token())
    release_read, release_write = os.pipe()

    def blocked_writer() -> None:  # writes 20 bytes, then waits for the test
        def writer(fd: int, data: bytes) -> None:
            os.write(fd, data[:20])
            os.read(release_read, 1)
            os.write(fd, data[20:])

        assert TokenStore(store.folder, writer=writer).store(identity, key, _token("00D5g000004ABCD!child"))

    killed_pid = fork(blocked_writer)
    killed = _new_temp_file(store.folder, set())
    os.kill(killed_pid, signal.SIGKILL)
    assert exit_code(killed_pid, DEADLINE) == -signal.SIGKILL
    live_pid = fork(blocked_writer)
    try:
        live = _new_temp_file(store.folder, {killed.name})
        _wait_for_size(live, 20)  # it holds its lock once its first bytes are in (mkstemp comes before flock)
        a_minute_ago = time.time() - 60
        for path in (killed, live):
            os.utime(path, (a_minute_ago, a_minute_ago))
        assert store.store(identity, key, _token("00D5g000004ABCD!parent"))
        assert not killed.exists()  # its writer is dead: the next write removed it
        assert live.exists()  # as old, but its writer holds its lock
    finally:
        os.write(release_write, b"go")
    assert exit_code(live_pid, DEADLINE) == 0
    assert _temp_files(store.folder) == set()
    assert store.load(identity, key).access_token.endswith("!child")


# ---------------------------------------------------------------------------------------
# item 4: no control character reaches the terminal
# ---------------------------------------------------------------------------------------
def _plant_entry(folder: Path, header: Dict[str, Any]) -> Path:
    raw = json.dumps(header).encode("utf-8")
    path = folder / ("ab" * 16 + ".token")
    path.write_bytes(MAGIC + bytes([FORMAT_VERSION]) + len(raw).to_bytes(4, "big") + raw + os.urandom(40))
    return path


def test_cache_list_prints_no_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    _plant_entry(folder, {
        "username": "\x1b]0;owned\x07ops@acme\x1b[2J\r",
        "instance_url": "https://acme.example\u202egpj.exe",
        "org_id": "\x9b31m00D",
        "token_url": "https://x\x00\x08\x7f",
        "key_id": "sha256:\u2028\u200b",
        "issued_at": time.time(),
    })
    assert main(["cache", "list", "--folder", str(folder)]) == EXIT_OK
    out, err = capsys.readouterr()
    for text in (out, err):
        bad = [c for c in text if c != "\n" and not c.isprintable()]
        assert bad == [], bad
    assert "ops@acme" in out and "\\x1b" in out  # shown, escaped


# ---------------------------------------------------------------------------------------
# item 9: a folder owned by another user is refused, with a warning naming it
# ---------------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="chown to another user needs root")
def test_a_folder_owned_by_another_user_is_refused(
    tmp_path: Path, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "theirs"
    identity = _identity(key)
    assert TokenStore(folder).store(identity, key, _token())
    for path in (folder, *folder.iterdir()):
        os.chown(path, 65534, 65534)
    os.chmod(folder, 0o700)
    store = TokenStore(folder)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.load(identity, key) is None
        assert store.store(identity, key, _token("00D5g000004ABCD!mine")) is False
        with store.lock(identity) as held:
            assert held is False
        assert store.clear() == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all(str(folder) in w and "owned by another user" in w for w in warnings), warnings
    assert store.entry_path(identity).exists()
    for action in ("list", "clear"):
        done = subprocess.run(
            [sys.executable, "-m", "sfjwt_ext.cli", "cache", action, "--folder", str(folder)],
            env=_env(), capture_output=True, text=True, timeout=DEADLINE,
        )
        assert done.returncode == EXIT_OK and "Traceback" not in done.stderr
        assert f"the token cache folder {folder} is owned by another user" in done.stderr
    assert store.entry_path(identity).exists()


# ---------------------------------------------------------------------------------------
# issue 19 item 6: filelock only with the token cache
# ---------------------------------------------------------------------------------------
IMPORTS = """
import sys
from sfjwt_ext import connect_jwt
import sfjwt_ext.cli
print("filelock" in sys.modules)
from sfjwt_ext.sharing.diskcache import TokenStore
print("filelock" in sys.modules)
"""


def test_filelock_is_imported_only_when_the_token_cache_locks(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", IMPORTS], env=_env(), capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------------------------------
# items 6 and 7: pickles
# ---------------------------------------------------------------------------------------
PROXY_USER, PROXY_PASSWORD = "proxyuser", "proxy-pass-5f3a9c"
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")


def _query_in_worker(blob: bytes, env: Dict[str, Optional[str]]) -> Tuple[str, Any, str]:
    """In a fresh process: set ``env``, unpickle, query; (outcome, detail, HTTPS_PROXY seen)."""
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        sf = pickle.loads(blob)
    except Exception as exc:  # reported to the test
        return "unpickling failed", f"{type(exc).__name__}: {exc}", ""
    try:
        return "ok", sf.query("SELECT Id FROM Account")["totalSize"], os.environ.get("HTTPS_PROXY", "")
    except Exception as exc:  # reported to the test
        return "error", f"{type(exc).__name__}: {exc}", ""


def _in_spawned_process(blob: bytes, env: Dict[str, Optional[str]]) -> Tuple[str, Any, str]:
    result: Tuple[str, Any, str] = call_in_process(spawn, DEADLINE, _query_in_worker, blob, env)
    return result


def test_a_pickle_carries_no_proxy_credential_from_the_environment(
    salesforce_org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = salesforce_org
    proxy = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:9"
    for name in PROXY_ENV[:4]:
        monkeypatch.setenv(name, proxy)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    sf = connect_jwt(**org.credentials.connect_kwargs())
    blob = pickle.dumps(sf)
    assert PROXY_PASSWORD.encode() not in blob and PROXY_USER.encode() not in blob
    # the receiving process uses its own environment (here: no proxy at all)
    outcome = _in_spawned_process(blob, {name: None for name in PROXY_ENV})
    assert outcome == ("ok", 0, "")
    assert org.token_requests == 1


def test_a_client_with_a_proxy_password_in_proxies_does_not_pickle(salesforce_org: Any) -> None:
    # an http:// proxy is never used for Salesforce's https URLs: the login works
    proxies = {"http": f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:9"}
    sf = connect_jwt(**salesforce_org.credentials.connect_kwargs(), proxies=proxies)
    with pytest.raises(ConfigurationError) as caught:
        pickle.dumps(sf)
    message = str(caught.value)
    assert PROXY_PASSWORD not in message and "proxies=" in message and "HTTPS_PROXY" in message
    sf_plain = connect_jwt(**salesforce_org.credentials.connect_kwargs(), proxies={"http": "http://127.0.0.1:9"})
    assert b"http://127.0.0.1:9" in pickle.dumps(sf_plain)  # a proxy without a password travels


def test_an_unpickled_client_whose_ca_file_is_gone_says_what_to_fix(salesforce_org: Any, tmp_path: Path) -> None:
    org = salesforce_org
    ca_copy = tmp_path / "ca.pem"
    shutil.copyfile(org.ca_file, ca_copy)
    sf = connect_jwt(**dict(org.credentials.connect_kwargs(), verify=str(ca_copy)))
    blob = pickle.dumps(sf)
    ca_copy.unlink()
    with pytest.raises(ConfigurationError) as direct:
        connect_jwt(**dict(org.credentials.connect_kwargs(), verify=str(ca_copy)), cache=False)
    outcome, detail, _ = _in_spawned_process(blob, {})
    assert outcome == "error"  # unpickling went through; the first request says why it cannot
    assert detail == f"ConfigurationError: {direct.value}"
    assert "verify=" in detail and "SF_CA_BUNDLE" in detail and str(ca_copy) in detail
