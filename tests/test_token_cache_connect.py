"""connect_jwt(token_cache=...): the on-disk token cache end to end, in one process.

Processes sharing a folder (16 at once, 3 expiries, a cron loop of fresh interpreters,
pickled clients) are in tests/reliability/test_token_cache_fleet.py.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, List

import pytest
from _support import write_encrypted_key

import sfjwt_ext.sharing.diskcache as tokencache
from sfjwt_ext import clear_cache, connect_jwt
from sfjwt_ext.errors import ConfigurationError
from sfjwt_ext.auth.keys import load_private_key
from sfjwt_ext.cli.keypair import generate_key_pair
from sfjwt_ext.auth.credentials import LoginIdentity
from sfjwt_ext.sharing.diskcache import TokenStore

SOQL = "SELECT Id FROM Account"
LOGGER = "sfjwt_ext.tokencache"
JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]+\.eyJ")
PASSPHRASE = "correct horse battery staple"


def _kwargs(org: Any, **changes: Any) -> Any:
    kwargs = org.credentials.connect_kwargs()
    kwargs.update(changes)
    return kwargs


def _fresh_process_connect(org: Any, **changes: Any) -> Any:
    """connect_jwt as a new process would: nothing cached in memory."""
    clear_cache()
    return connect_jwt(**_kwargs(org, **changes))


def _warnings(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def _entries(folder: Path) -> List[Path]:
    return sorted(folder.glob("*.token"))


# ---------------------------------------------------------------------------------------
# on / off, and where
# ---------------------------------------------------------------------------------------
def test_a_valid_entry_means_no_token_request(salesforce_org: Any, tmp_path: Path) -> None:
    org, folder = salesforce_org, tmp_path / "cache"
    first = connect_jwt(**_kwargs(org, token_cache=str(folder)))
    assert org.token_requests == 1 and len(_entries(folder)) == 1
    second = _fresh_process_connect(org, token_cache=str(folder))
    assert second.refresher is not first.refresher  # a new login, from the entry
    assert second.session_id == first.session_id and org.token_requests == 1
    assert second.query(SOQL)["totalSize"] == 0


def test_an_expiry_is_refreshed_once_and_the_other_login_takes_the_new_token(salesforce_org: Any, tmp_path: Path) -> None:
    org, folder = salesforce_org, str(tmp_path / "cache")
    one = connect_jwt(**_kwargs(org, token_cache=folder))
    two = _fresh_process_connect(org, token_cache=folder)  # as another process: its own refresher
    org.expire_all_sessions()
    one.query(SOQL)
    assert org.token_requests == 2  # the entry held the token that failed: one login, written
    two.query(SOQL)
    assert org.token_requests == 2  # the entry's token is newer than the one that failed: used as is
    assert two.session_id == one.session_id
    three = _fresh_process_connect(org, token_cache=folder)
    assert three.session_id == one.session_id and org.token_requests == 2


def test_default_off(salesforce_org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SF_TOKEN_CACHE", raising=False)
    org = salesforce_org
    connect_jwt(**_kwargs(org))
    _fresh_process_connect(org)
    assert org.token_requests == 2
    assert not (tmp_path / "xdg").exists()


def test_true_and_sf_token_cache_1_use_the_default_folder(
    salesforce_org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    org, default = salesforce_org, tmp_path / "xdg" / "sfjwt"
    connect_jwt(**_kwargs(org, token_cache=True))
    assert len(_entries(default)) == 1
    monkeypatch.setenv("SF_TOKEN_CACHE", "1")
    _fresh_process_connect(org)
    monkeypatch.setenv("SF_TOKEN_CACHE", "true")
    _fresh_process_connect(org)
    assert org.token_requests == 1
    monkeypatch.setenv("SF_TOKEN_CACHE", "0")
    _fresh_process_connect(org)
    assert org.token_requests == 2
    monkeypatch.setenv("SF_TOKEN_CACHE", "1")
    _fresh_process_connect(org, token_cache=False)  # the argument wins
    assert org.token_requests == 3


def test_sf_token_cache_and_the_profile_key_name_a_folder(
    salesforce_org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = salesforce_org
    monkeypatch.setenv("SF_TOKEN_CACHE", str(tmp_path / "from-env"))
    connect_jwt(**_kwargs(org))
    assert len(_entries(tmp_path / "from-env")) == 1
    monkeypatch.delenv("SF_TOKEN_CACHE")
    profile = tmp_path / "profiles" / "config.ini"
    profile.parent.mkdir()
    profile.write_text("[default]\ntoken_cache = shared-tokens\n")
    os.chmod(profile, 0o600)
    monkeypatch.setenv("SFJWT_CONFIG", str(profile))
    _fresh_process_connect(org)
    assert len(_entries(tmp_path / "profiles" / "shared-tokens")) == 1  # relative to the profile's folder
    _fresh_process_connect(org)
    assert org.token_requests == 2


def test_a_bad_token_cache_value_names_the_argument(salesforce_org: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"token_cache=.*SF_TOKEN_CACHE"):
        connect_jwt(**_kwargs(salesforce_org, token_cache=5))


def test_clear_cache_disk_empties_the_folders(salesforce_org: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SF_TOKEN_CACHE", str(tmp_path / "named"))
    org = salesforce_org
    connect_jwt(**_kwargs(org))  # SF_TOKEN_CACHE's folder
    _fresh_process_connect(org, token_cache=True)  # the default folder
    _fresh_process_connect(org, token_cache=str(tmp_path / "given"))  # a folder used here
    folders = [tmp_path / "named", tmp_path / "xdg" / "sfjwt", tmp_path / "given"]
    assert [len(_entries(f)) for f in folders] == [1, 1, 1]
    clear_cache()
    assert [len(_entries(f)) for f in folders] == [1, 1, 1]  # memory only by default
    clear_cache(disk=True)
    assert [len(_entries(f)) for f in folders] == [0, 0, 0]


# ---------------------------------------------------------------------------------------
# broken entries and disks: logged once, the login works, nothing raises
# ---------------------------------------------------------------------------------------
def test_a_tampered_entry_is_logged_once_and_replaced(
    salesforce_org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    org, folder = salesforce_org, tmp_path / "cache"
    connect_jwt(**_kwargs(org, token_cache=str(folder)))
    (entry,) = _entries(folder)
    blob = bytearray(entry.read_bytes())
    blob[-20] ^= 0x01  # one bit of the ciphertext
    entry.write_bytes(bytes(blob))
    caplog.set_level(logging.WARNING, LOGGER)
    sf = _fresh_process_connect(org, token_cache=str(folder))
    assert sf.query(SOQL)["totalSize"] == 0 and org.token_requests == 2
    assert len(_warnings(caplog)) == 1 and "decrypt" in _warnings(caplog)[0]
    again = _fresh_process_connect(org, token_cache=str(folder))  # the entry was written anew
    assert again.session_id == sf.session_id and org.token_requests == 2


def test_an_entry_of_another_key_is_not_used(salesforce_org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    org, folder = salesforce_org, tmp_path / "cache"
    creds = org.credentials
    sf = connect_jwt(**_kwargs(org, token_cache=str(folder)))
    (entry,) = _entries(folder)
    other = generate_key_pair()[0]
    mine = load_private_key(private_key_file=creds.private_key_file)
    identity = LoginIdentity.for_key(username=creds.username, consumer_key=creds.consumer_key,
                                     token_url=sf.login_target.token_url, audience=sf.login_target.audience, key=mine)
    theirs = LoginIdentity.for_key(username=creds.username, consumer_key=creds.consumer_key,
                                   token_url=sf.login_target.token_url, audience=sf.login_target.audience, key=other)
    store = TokenStore(tmp_path / "elsewhere")
    forged = sf.token.__class__(access_token="00D000000000001!AQforged" + "x" * 60, instance_url=sf.token.instance_url)
    assert store.store(theirs, other, forged)
    shutil.copy(store.entry_path(theirs), entry)  # their entry under our name
    assert TokenStore(folder).entry_path(identity) == entry
    caplog.set_level(logging.WARNING, LOGGER)
    again = _fresh_process_connect(org, token_cache=str(folder))
    assert again.session_id != forged.access_token and again.query(SOQL)["totalSize"] == 0
    assert org.token_requests == 2 and len(_warnings(caplog)) == 1


def test_a_full_disk_is_logged_once_and_logins_work(
    salesforce_org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes) -> None:
        os.write(fd, data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tokencache, "_write_all", full)
    caplog.set_level(logging.WARNING, LOGGER)
    org, folder = salesforce_org, tmp_path / "cache"
    for _ in range(3):
        sf = _fresh_process_connect(org, token_cache=str(folder))
        assert sf.query(SOQL)["totalSize"] == 0
    org.expire_all_sessions()
    assert sf.query(SOQL)["totalSize"] == 0  # a refresh too
    assert org.token_requests == 4  # without the cache, but every login worked
    assert len(_warnings(caplog)) == 1 and "No space left" in _warnings(caplog)[0]
    assert _entries(folder) == [] and list(folder.glob("*.tmp")) == []  # no torn or leftover file


def test_a_read_only_folder_is_logged_once_and_logins_work(
    salesforce_org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, folder = salesforce_org, tmp_path / "cache"
    first = connect_jwt(**_kwargs(org, token_cache=str(folder)))  # an entry exists

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tokencache.tempfile, "mkstemp", read_only)  # a read-only mount, as root sees it too
    caplog.set_level(logging.WARNING, LOGGER)
    sf = _fresh_process_connect(org, token_cache=str(folder))
    assert sf.session_id == first.session_id and org.token_requests == 1  # reading still works
    org.expire_all_sessions()
    assert sf.query(SOQL)["totalSize"] == 0 and org.token_requests == 2
    other = _fresh_process_connect(org, token_cache=str(folder))
    org.expire_all_sessions()
    assert other.query(SOQL)["totalSize"] == 0
    assert len(_warnings(caplog)) == 1 and "Read-only" in _warnings(caplog)[0]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_folder_without_write_permission(salesforce_org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    org, folder = salesforce_org, tmp_path / "cache"
    connect_jwt(**_kwargs(org, token_cache=str(folder)))
    os.chmod(folder, 0o500)
    try:
        org.expire_all_sessions()
        sf = _fresh_process_connect(org, token_cache=str(folder))
        assert sf.query(SOQL)["totalSize"] == 0
    finally:
        os.chmod(folder, 0o700)


def test_a_folder_path_that_is_a_file_is_logged_once(salesforce_org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    org, path = salesforce_org, tmp_path / "a-file"
    path.write_text("not a folder")
    caplog.set_level(logging.WARNING, LOGGER)
    for _ in range(2):
        assert _fresh_process_connect(org, token_cache=str(path)).query(SOQL)["totalSize"] == 0
    assert org.token_requests == 2 and len(_warnings(caplog)) == 1
    assert path.read_text() == "not a folder"


# ---------------------------------------------------------------------------------------
# no secret on disk
# ---------------------------------------------------------------------------------------
def test_no_key_passphrase_jwt_or_token_in_any_cache_file(salesforce_org: Any, tmp_path: Path) -> None:
    org, folder = salesforce_org, tmp_path / "cache"
    creds = org.credentials
    encrypted = write_encrypted_key(creds.private_key_file, tmp_path / "encrypted.key", PASSPHRASE)
    kwargs = _kwargs(org, private_key_file=str(encrypted), private_key_passphrase=PASSPHRASE, token_cache=str(folder))
    tokens = [connect_jwt(**kwargs).session_id]
    org.expire_all_sessions()
    sf = _fresh_process_connect(org, **kwargs)
    sf.query(SOQL)
    tokens.append(sf.session_id)
    assert tokens[0] != tokens[1]
    pem_lines = [line.encode() for line in Path(creds.private_key_file).read_text().splitlines()[1:-1]]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) >= 3  # the entry, its lock, CACHEDIR.TAG
    for path in files:
        data = path.read_bytes()
        assert b"-----BEGIN" not in data and b"PRIVATE KEY" not in data
        assert not JWT_RE.search(data) and PASSPHRASE.encode() not in data
        assert not any(line in data for line in pem_lines)
        for token in tokens:
            assert token.encode() not in data and token.split("!")[-1][:20].encode() not in data
