"""The on-disk token cache (sfjwt_ext.sharing.diskcache): format, encryption, modes, failures.

Cross-process behaviour (concurrent writers, the lock between processes, a real full or
read-only file system) is in tests/reliability/test_tokencache_processes.py.
"""
from __future__ import annotations

import errno
import logging
import os
import pickle
import stat
import threading
from pathlib import Path
from typing import List

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sfjwt_ext.auth.token_client import TokenResponse
from sfjwt_ext.auth.keys import load_private_key
from sfjwt_ext.cli.keypair import generate_key_pair
from sfjwt_ext.auth.credentials import LoginIdentity
from sfjwt_ext.auth.keys import key_fingerprint
from sfjwt_ext.cli.cache import entries
from sfjwt_ext.sharing.diskcache import FORMAT_VERSION, MAGIC, TokenStore, default_folder, entry_name

TOKEN = "00D5g000004ABCD!AQ4AQFx3kT.kVWc9oyzkEpDuYfZ7wAqR1hLwM8sJ2nNqBvC0dXeGhI_jKlMoPrSt"
CONSUMER_KEY = "3MVG9" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv" * 2 + "WxYz"
TOKEN_URL = "https://acme.my.salesforce.com/services/oauth2/token"
AUDIENCE = "https://login.salesforce.com"
PASSPHRASE = "correct horse battery staple"
LOGGER = "sfjwt_ext.tokencache"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_key_pair()[0]


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return generate_key_pair()[0]


def identity_for(key: rsa.RSAPrivateKey, username: str = "ops@acme.example") -> LoginIdentity:
    return LoginIdentity.for_key(
        username=username, consumer_key=CONSUMER_KEY, token_url=TOKEN_URL, audience=AUDIENCE, key=key
    )


def token(access_token: str = TOKEN, issued_at: float = 1_790_000_000.5) -> TokenResponse:
    return TokenResponse(
        access_token=access_token,
        instance_url="https://acme.my.salesforce.com",
        id="https://login.salesforce.com/id/00D5g000004ABCDEAA/0055g00000AbCdEAAQ",
        scope="api refresh_token",
        issued_at=issued_at,
    )


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "cache")


def warnings_of(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------------------------------
# round trip and identity
# ---------------------------------------------------------------------------------------
def test_round_trip_gives_the_same_token(store: TokenStore, key: rsa.RSAPrivateKey) -> None:
    identity = identity_for(key)
    assert store.load(identity, key) is None  # nothing yet, and no folder made by a read
    assert not store.folder.exists()
    assert store.store(identity, key, token()) is True
    loaded = store.load(identity, key)
    assert loaded == token()
    assert loaded is not None and loaded.org_id == "00D5g000004ABCDEAA" and loaded.user_id == "0055g00000AbCdEAAQ"


def test_a_newer_store_replaces_the_entry(store: TokenStore, key: rsa.RSAPrivateKey) -> None:
    identity = identity_for(key)
    store.store(identity, key, token(TOKEN + "1", issued_at=1.0))
    store.store(identity, key, token(TOKEN + "2", issued_at=2.0))
    loaded = store.load(identity, key)
    assert loaded is not None and loaded.access_token == TOKEN + "2"
    assert [p.name for p in store.folder.glob("*.token")] == [store.entry_path(identity).name]


def test_identities_get_separate_entries(store: TokenStore, key: rsa.RSAPrivateKey) -> None:
    first, second = identity_for(key, "a@acme.example"), identity_for(key, "b@acme.example")
    store.store(first, key, token(TOKEN + "A"))
    store.store(second, key, token(TOKEN + "B"))
    assert store.load(first, key).access_token == TOKEN + "A"  # type: ignore[union-attr]
    assert store.load(second, key).access_token == TOKEN + "B"  # type: ignore[union-attr]
    assert "a@acme" not in store.entry_path(first).name  # no username in clear in a file name


def test_the_key_identity_does_not_depend_on_how_the_key_was_given(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    loaded = [
        load_private_key(private_key=pkcs1),
        load_private_key(private_key=encrypted, passphrase=PASSPHRASE),
        # straight through cryptography: keys.load_private_key refuses a DER key whose bytes
        # happen to contain b"\\n" (~2% of keys), a keys.py bug reported separately
        serialization.load_der_private_key(der, password=None),
    ]
    assert {key_fingerprint(k) for k in loaded} == {key_fingerprint(key)}
    store = TokenStore(tmp_path)
    store.store(identity_for(loaded[0]), loaded[0], token())
    assert store.load(identity_for(loaded[1]), loaded[1]) == token()  # another form of the same key reads it


def test_a_key_that_is_not_the_identitys_is_a_caller_error(
    store: TokenStore, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(ValueError, match="LoginIdentity.for_key"):
        store.load(identity_for(key), other_key)
    with pytest.raises(ValueError, match="LoginIdentity.for_key"):
        store.store(identity_for(key), other_key, token())


def test_reprs_show_no_token_and_mask_the_consumer_key(store: TokenStore, key: rsa.RSAPrivateKey) -> None:
    identity = identity_for(key)
    store.store(identity, key, token())
    shown = repr(identity) + repr(entries(store)) + repr(store.load(identity, key)) + repr(store)
    assert TOKEN not in shown and CONSUMER_KEY not in shown
    assert "3MVG9…" in shown


# ---------------------------------------------------------------------------------------
# what can and cannot read an entry
# ---------------------------------------------------------------------------------------
def test_an_entry_of_another_key_does_not_decrypt(
    store: TokenStore, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    mine, theirs = identity_for(key), identity_for(other_key)
    store.store(theirs, other_key, token())
    os.replace(store.entry_path(theirs), store.entry_path(mine))  # their file under my name
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert store.load(mine, key) is None
        assert store.load(mine, key) is None
    [warning] = warnings_of(caplog)
    assert "does not decrypt" in warning and TOKEN not in caplog.text


def test_an_entry_moved_to_another_identity_does_not_decrypt(store: TokenStore, key: rsa.RSAPrivateKey) -> None:
    first, second = identity_for(key, "a@acme.example"), identity_for(key, "b@acme.example")
    store.store(first, key, token())
    os.replace(store.entry_path(first), store.entry_path(second))
    assert store.load(second, key) is None  # the identity is associated data


@pytest.mark.parametrize("where", ["magic", "version", "header", "nonce", "ciphertext", "tag"])
def test_a_tampered_byte_gives_none_and_one_warning(
    store: TokenStore, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    identity = identity_for(key)
    store.store(identity, key, token())
    path = store.entry_path(identity)
    blob = bytearray(path.read_bytes())
    header_end = len(MAGIC) + 5 + int.from_bytes(blob[len(MAGIC) + 1 : len(MAGIC) + 5], "big")
    offset = {
        "magic": 0,
        "version": len(MAGIC),
        "header": header_end - 5,
        "nonce": header_end + 3,
        "ciphertext": header_end + 20,
        "tag": len(blob) - 1,
    }[where]
    blob[offset] ^= 0x01
    path.write_bytes(bytes(blob))
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert store.load(identity, key) is None
        assert store.load(identity, key) is None
    assert len(warnings_of(caplog)) == 1
    # the login that follows rewrites the entry, and it reads again
    assert store.store(identity, key, token()) and store.load(identity, key) == token()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        MAGIC[:4],
        b"not a cache file at all\n",
        b'{"access_token": "00Dx"}',
        MAGIC + bytes([FORMAT_VERSION + 1]) + b"\x00\x00\x00\x02{}" + b"\x00" * 40,
        MAGIC + bytes([FORMAT_VERSION]) + b"\xff\xff\xff\xff{}",
        MAGIC + bytes([FORMAT_VERSION]) + b"\x00\x00\x00\x04nope" + b"\x00" * 40,
        b"\x00" * 70_000,
    ],
    ids=["empty", "half-magic", "text", "json", "future-version", "huge-length", "bad-header", "oversize"],
)
def test_foreign_and_corrupt_files_give_none_without_raising(
    store: TokenStore, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    identity = identity_for(key)
    store.folder.mkdir(mode=0o700)
    store.entry_path(identity).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.load(identity, key) is None
    assert len(warnings_of(caplog)) == 1
    [info] = entries(store)
    assert info.problem and not info.username


def test_every_truncation_gives_none(store: TokenStore, key: rsa.RSAPrivateKey) -> None:
    identity = identity_for(key)
    store.store(identity, key, token())
    path = store.entry_path(identity)
    blob = path.read_bytes()
    for length in range(len(blob)):
        path.write_bytes(blob[:length])
        assert store.load(identity, key) is None, length
    path.write_bytes(blob)
    assert store.load(identity, key) == token()


def test_a_symlinked_entry_is_not_followed(store: TokenStore, key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    identity = identity_for(key)
    store.store(identity, key, token())
    real = tmp_path / "elsewhere.token"
    os.replace(store.entry_path(identity), real)
    os.symlink(real, store.entry_path(identity))
    assert store.load(identity, key) is None


# ---------------------------------------------------------------------------------------
# nothing secret on disk; modes
# ---------------------------------------------------------------------------------------
def test_no_secret_in_any_byte_of_the_folder(tmp_path: Path) -> None:
    key_pem = generate_key_pair()[0].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    key = load_private_key(private_key=key_pem, passphrase=PASSPHRASE)
    plain_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    store = TokenStore(tmp_path / "cache")
    identity = identity_for(key)
    store.store(identity, key, token())
    with store.lock(identity):
        pass
    files = [p for p in store.folder.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".token", ".lock"}
    data = b"".join(p.read_bytes() for p in files)
    secrets = [TOKEN, TOKEN.split("!")[1], PASSPHRASE, "PRIVATE KEY", "-----BEGIN", "eyJ", CONSUMER_KEY]
    secrets += [line for line in plain_pem.decode().splitlines()[1:-1]]  # every base64 line of the key
    for secret in secrets:
        assert secret.encode() not in data, secret[:12]
    d = key.private_numbers().d
    assert d.to_bytes((d.bit_length() + 7) // 8, "big") not in data


def test_folder_is_0700_and_files_0600(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    old = os.umask(0o022)
    try:
        store = TokenStore(tmp_path / "deep" / "cache")
        identity = identity_for(key)
        store.store(identity, key, token())
        with store.lock(identity):
            pass
    finally:
        os.umask(old)
    assert mode(store.folder) == 0o700
    assert mode(store.entry_path(identity)) == 0o600
    assert mode(store.lock_path(identity)) == 0o600
    assert (store.folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")


def test_a_wider_folder_of_ours_is_tightened(tmp_path: Path, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture) -> None:
    store = TokenStore(tmp_path / "cache")
    identity = identity_for(key)
    store.store(identity, key, token())
    os.chmod(store.folder, 0o755)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert TokenStore(store.folder).store(identity, key, token())
    assert mode(store.folder) == 0o700
    assert warnings_of(caplog) == []


def test_the_default_folder_follows_xdg_and_is_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: rsa.RSAPrivateKey
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_folder() == tmp_path / "xdg" / "sfjwt"
    (tmp_path / "xdg" / "sfjwt").mkdir(parents=True, mode=0o755)
    os.chmod(tmp_path / "xdg" / "sfjwt", 0o755)  # made by someone else, unmarked, but it is our name
    store = TokenStore()
    assert store.folder == tmp_path / "xdg" / "sfjwt"
    assert store.store(identity_for(key), key, token())
    assert mode(store.folder) == 0o700


def test_a_readable_folder_not_ours_is_used_with_a_warning(
    tmp_path: Path, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o755)
    store = TokenStore(folder)
    identity = identity_for(key)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.store(identity, key, token())
        assert store.store(identity, key, token())
    [warning] = warnings_of(caplog)
    assert "read by other users" in warning and "chmod 700" in warning
    assert mode(folder) == 0o755  # not ours to change
    assert store.load(identity, key) == token()


def test_a_folder_others_can_write_is_not_used(tmp_path: Path, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    os.chmod(folder, 0o777)
    store = TokenStore(folder)
    identity = identity_for(key)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.store(identity, key, token()) is False
        with store.lock(identity) as held:
            assert held is False
    [warning] = warnings_of(caplog)
    assert "written by other users" in warning and "token_cache=" in warning
    assert list(folder.iterdir()) == []


# ---------------------------------------------------------------------------------------
# disks that fail
# ---------------------------------------------------------------------------------------
def test_a_full_disk_keeps_the_old_entry_and_warns_once(
    tmp_path: Path, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    identity = identity_for(key)
    TokenStore(tmp_path).store(identity, key, token(TOKEN + "old"))
    calls = []

    def full(fd: int, data: bytes) -> None:
        calls.append(len(data))
        os.write(fd, data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    store = TokenStore(tmp_path, writer=full)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert store.store(identity, key, token(TOKEN + "new")) is False
        assert store.store(identity, key, token(TOKEN + "new")) is False
    assert len(calls) == 2
    [warning] = warnings_of(caplog)
    assert "No space left on device" in warning and "without the cache" in warning
    assert store.load(identity, key).access_token == TOKEN + "old"  # type: ignore[union-attr]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []  # no temp file left


def test_an_unusable_folder_path_warns_once_and_never_raises(
    tmp_path: Path, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    store = TokenStore(blocker / "cache")
    identity = identity_for(key)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.load(identity, key) is None
        assert store.store(identity, key, token()) is False
        assert store.store(identity, key, token()) is False
        with store.lock(identity) as held:
            assert held is False
        assert entries(store) == []
        assert store.clear() == 0
    [warning] = warnings_of(caplog)
    assert "cannot create the token cache folder" in warning


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_read_only_folder_reads_but_does_not_write(
    tmp_path: Path, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:  # as root, tests/reliability/test_tokencache_processes.py mounts a read-only tmpfs
    store = TokenStore(tmp_path / "cache")
    identity = identity_for(key)
    store.store(identity, key, token())
    os.chmod(store.folder, 0o500)
    try:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert store.store(identity, key, token(TOKEN + "x")) is False
        assert store.load(identity, key) == token()
        assert len(warnings_of(caplog)) == 1
    finally:
        os.chmod(store.folder, 0o700)


# ---------------------------------------------------------------------------------------
# listing, clearing, locking in one process, pickling
# ---------------------------------------------------------------------------------------
def test_entries_show_identities_without_the_key(store: TokenStore, key: rsa.RSAPrivateKey) -> None:
    store.store(identity_for(key, "b@acme.example"), key, token(issued_at=1_000.0))
    store.store(identity_for(key, "a@acme.example"), key, token())
    listed = entries(TokenStore(store.folder))  # a fresh store, no key given
    assert [e.username for e in listed] == ["a@acme.example", "b@acme.example"]
    first = listed[0]
    assert first.token_url == TOKEN_URL and first.audience == AUDIENCE and first.instance_url == "https://acme.my.salesforce.com"
    assert first.key_id == key_fingerprint(key) and first.consumer_key == "3MVG9…WxYz"
    assert first.org_id == "00D5g000004ABCDEAA" and first.issued_at == 1_790_000_000.5 and not first.problem
    assert listed[1].age > listed[0].age


def test_clear_and_discard(store: TokenStore, key: rsa.RSAPrivateKey) -> None:
    first, second = identity_for(key, "a@acme.example"), identity_for(key, "b@acme.example")
    store.store(first, key, token())
    store.store(second, key, token())
    with store.lock(first):
        pass
    (store.folder / f".{entry_name(first)}.leftover.tmp").write_bytes(MAGIC[:4])  # a killed writer's first bytes
    assert store.discard(first) is True and store.discard(first) is False
    assert store.clear() == 1
    names = {p.name for p in store.folder.iterdir()}
    assert names == {"CACHEDIR.TAG", entry_name(first) + ".lock"}  # lock files stay on purpose
    assert store.load(second, key) is None
    assert TokenStore(store.folder / "missing").clear() == 0


def test_the_lock_excludes_another_thread_and_times_out(
    store: TokenStore, key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    identity = identity_for(key)
    other = identity_for(key, "someone@else.example")
    results: List[bool] = []

    def contender() -> None:
        with store.lock(identity, timeout=0.05) as held:
            results.append(held)
        with store.lock(other, timeout=5) as held:  # another identity's lock is free
            results.append(held)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        with store.lock(identity) as held:
            assert held
            thread = threading.Thread(target=contender)
            thread.start()
            thread.join(30)
            assert not thread.is_alive()
        with store.lock(identity, timeout=0.05) as held_again:
            assert held_again
    assert results == [False, True]
    [warning] = warnings_of(caplog)
    assert "refreshing without it" in warning


def test_the_lock_is_released_when_the_body_raises(store: TokenStore, key: rsa.RSAPrivateKey) -> None:
    identity = identity_for(key)
    with pytest.raises(KeyError):
        with store.lock(identity) as held:
            assert held
            raise KeyError("boom")
    with store.lock(identity, timeout=0.05) as held:
        assert held


def test_a_store_pickles_as_its_folder(store: TokenStore, key: rsa.RSAPrivateKey) -> None:
    copy = pickle.loads(pickle.dumps(TokenStore(store.folder, lock_timeout=7.0)))
    assert copy.folder == store.folder and copy.lock_timeout == 7.0
    identity = identity_for(key)
    store.store(identity, key, token())
    assert copy.load(identity, key) == token()
    assert pickle.loads(pickle.dumps(TokenStore())).folder == default_folder()

