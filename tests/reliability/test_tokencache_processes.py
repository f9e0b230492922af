"""The token cache between processes (spawn), and on real failing file systems.

* 8 processes x 50 writes to one entry while everyone reads: every read is a complete,
  valid entry (atomic replace), nothing is logged.
* The per-entry lock excludes another process, is handed over on release, and is freed by
  the OS when its holder is killed.
* "Re-read under the lock, log in only if nobody did": N processes, one login.
* A tiny full tmpfs and a read-only tmpfs (when this machine lets us mount one).

Every process is joined with a deadline and killed if it overstays, so a deadlock fails.
"""
from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from _support import collect, join_all

from sfjwt_ext.auth.token_client import TokenResponse
from sfjwt_ext.auth.keys import load_private_key
from sfjwt_ext.cli.keypair import generate_key_pair
from sfjwt_ext.auth.credentials import LoginIdentity
from sfjwt_ext.sharing.diskcache import TokenStore

DEADLINE = 240.0  # seconds for any one process or message; only a hang gets near it
WRITERS, WRITES = 8, 50
LOGGER = "sfjwt_ext.tokencache"
_TOKEN_RE = re.compile(r"^00D5g000004ABCD!AQ(\d\d)x(\d\d\d\d)\.[A-Za-z0-9]{60}$")

spawn = multiprocessing.get_context("spawn")


def _identity(key: rsa.RSAPrivateKey) -> LoginIdentity:
    return LoginIdentity.for_key(
        username="jobs@acme.example",
        consumer_key="3MVG9" + "k" * 80,
        token_url="https://acme.my.salesforce.com/services/oauth2/token",
        audience="https://login.salesforce.com",
        key=key,
    )


def _token(writer: int, n: int) -> TokenResponse:
    return TokenResponse(
        access_token=f"00D5g000004ABCD!AQ{writer:02d}x{n:04d}." + "Z" * 60,
        instance_url=f"https://w{writer}n{n}.my.salesforce.com",
        id=f"https://login.salesforce.com/id/00D5g000004ABCDEAA/0055g00000W{writer:02d}N{n:04d}",
        issued_at=1_790_000_000.0 + writer * 1000 + n,
    )


def _valid(token: TokenResponse) -> bool:
    match = _TOKEN_RE.match(token.access_token)
    if not match:
        return False
    writer, n = int(match.group(1)), int(match.group(2))
    return token == _token(writer, n)


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _counted() -> _Count:
    handler = _Count()
    logging.getLogger(LOGGER).addHandler(handler)
    return handler


# ---------------------------------------------------------------------------------------
# workers (module level: spawn imports them)
# ---------------------------------------------------------------------------------------
def _writer(folder: str, key_file: str, index: int, start: Any, out: Any) -> None:
    warnings = _counted()
    key = load_private_key(private_key_file=key_file)
    store, identity = TokenStore(folder), _identity(key)
    start.wait(DEADLINE)
    bad = stored = 0
    for n in range(WRITES):
        stored += store.store(identity, key, _token(index, n))
        got = store.load(identity, key)
        bad += got is None or not _valid(got)
    out.put(("writer", index, bad, stored, warnings.count))


def _lock_contender(folder: str, key_file: str, out: Any) -> None:
    key = load_private_key(private_key_file=key_file)
    store, identity = TokenStore(folder), _identity(key)
    with store.lock(identity, timeout=0.2) as held:
        out.put(("first try", held))
    with store.lock(identity, timeout=DEADLINE) as held:
        out.put(("second try", held))
        if held:
            store.store(identity, key, _token(99, 1))


def _lock_holder_that_dies(folder: str, key_file: str, out: Any, never: Any) -> None:
    key = load_private_key(private_key_file=key_file)
    store, identity = TokenStore(folder), _identity(key)
    with store.lock(identity) as held:
        out.put(("holding", held))
        never.wait(DEADLINE)  # killed before this returns


def _refresher(folder: str, key_file: str, index: int, start: Any, out: Any) -> None:
    """What the client will do on an expiry: lock, re-read, log in only if the entry still
    holds the token that failed."""
    key = load_private_key(private_key_file=key_file)
    store, identity = TokenStore(folder), _identity(key)
    seen = store.load(identity, key)
    out.put(("ready", index))
    start.wait(DEADLINE)
    logins = 0
    with store.lock(identity, timeout=DEADLINE) as held:
        current = store.load(identity, key)
        if current is None or seen is None or current.access_token == seen.access_token:
            logins += 1  # "log in": the token endpoint would be called here
            store.store(identity, key, _token(index, 1))
    final = store.load(identity, key)
    out.put(("refresher", index, held, logins, final.access_token if final else None))


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Tuple[str, rsa.RSAPrivateKey]:
    key = generate_key_pair()[0]
    path = tmp_path_factory.mktemp("key") / "salesforce.key"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(path, 0o600)
    return str(path), key


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------
def test_concurrent_writers_never_leave_a_torn_entry(tmp_path: Path, key_file: Tuple[str, rsa.RSAPrivateKey]) -> None:
    path, key = key_file
    folder = str(tmp_path / "cache")
    start, out = spawn.Event(), spawn.Queue()
    processes = [spawn.Process(target=_writer, args=(folder, path, i, start, out)) for i in range(WRITERS)]
    for process in processes:
        process.start()
    start.set()
    store, identity, warnings = TokenStore(folder), _identity(key), _counted()
    reads = bad = 0
    try:
        while any(p.is_alive() for p in processes) and reads < 5000:
            got = store.load(identity, key)
            if got is not None:  # None only before the first write lands
                reads += 1
                bad += not _valid(got)
        results = collect(out, WRITERS, DEADLINE)
        join_all(processes, DEADLINE)
    finally:
        logging.getLogger(LOGGER).removeHandler(warnings)
    assert sorted(r[1] for r in results) == list(range(WRITERS))
    assert [r[2] for r in results] == [0] * WRITERS  # every read in every writer was whole
    assert [r[3] for r in results] == [WRITES] * WRITERS  # every write landed
    assert [r[4] for r in results] == [0] * WRITERS and warnings.count == 0
    assert reads > 0 and bad == 0  # the parent read while they wrote, and saw only whole entries
    final = store.load(identity, key)
    assert final is not None and _valid(final)
    assert [p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp")] == []


def test_the_lock_excludes_another_process_until_released(
    tmp_path: Path, key_file: Tuple[str, rsa.RSAPrivateKey]
) -> None:
    path, key = key_file
    folder = str(tmp_path / "cache")
    store, identity, out = TokenStore(folder), _identity(key), spawn.Queue()
    with store.lock(identity) as held:
        assert held
        process = spawn.Process(target=_lock_contender, args=(folder, path, out))
        process.start()
        assert collect(out, 1, DEADLINE) == [("first try", False)]  # excluded while we hold it
        assert store.load(identity, key) is None  # and it could not write under the lock
    assert collect(out, 1, DEADLINE) == [("second try", True)]  # handed over on release
    join_all([process], DEADLINE)
    assert store.load(identity, key) == _token(99, 1)


def test_a_killed_holder_does_not_block_the_next(tmp_path: Path, key_file: Tuple[str, rsa.RSAPrivateKey]) -> None:
    path, key = key_file
    folder = str(tmp_path / "cache")
    store, identity, out, never = TokenStore(folder), _identity(key), spawn.Queue(), spawn.Event()
    process = spawn.Process(target=_lock_holder_that_dies, args=(folder, path, out, never))
    process.start()
    try:
        assert collect(out, 1, DEADLINE) == [("holding", True)]
        with store.lock(identity, timeout=0.1) as held:
            assert held is False
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(DEADLINE)
    assert process.exitcode == -signal.SIGKILL
    with store.lock(identity, timeout=DEADLINE) as held:
        assert held


def test_refresh_under_the_lock_logs_in_once_for_all_processes(
    tmp_path: Path, key_file: Tuple[str, rsa.RSAPrivateKey]
) -> None:
    path, key = key_file
    folder = str(tmp_path / "cache")
    store, identity = TokenStore(folder), _identity(key)
    store.store(identity, key, _token(0, 0))  # the token that "expired"
    start, out = spawn.Event(), spawn.Queue()
    processes = [spawn.Process(target=_refresher, args=(folder, path, i + 1, start, out)) for i in range(6)]
    for process in processes:
        process.start()
    assert sorted(collect(out, len(processes), DEADLINE)) == [("ready", i + 1) for i in range(6)]  # all saw the old token
    start.set()
    results = collect(out, len(processes), DEADLINE)
    join_all(processes, DEADLINE)
    assert all(r[2] for r in results)  # every process held the lock
    assert sum(r[3] for r in results) == 1  # one login for six processes
    assert len({r[4] for r in results}) == 1  # and all use its token


# ---------------------------------------------------------------------------------------
# real failing file systems (tmpfs; skipped where mounting is not allowed)
# ---------------------------------------------------------------------------------------
@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "mnt"
    point.mkdir()
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if not mount or not umount:
        pytest.skip("no mount command")
    done = subprocess.run([mount, "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield point
    finally:
        subprocess.run([umount, "-l", str(point)], capture_output=True, timeout=60)


def test_a_full_file_system_keeps_the_entry_and_warns_once(
    tmpfs: Path, key_file: Tuple[str, rsa.RSAPrivateKey], caplog: pytest.LogCaptureFixture
) -> None:
    key = key_file[1]
    store, identity = TokenStore(tmpfs / "cache"), _identity(key)
    assert store.store(identity, key, _token(1, 1))
    fd = os.open(tmpfs / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError) as full:
            while True:
                os.write(fd, b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.store(identity, key, _token(1, 2)) is False
        assert store.store(identity, key, _token(1, 3)) is False
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert "No space left on device" in record.getMessage()
    assert store.load(identity, key) == _token(1, 1)
    assert [p.name for p in (tmpfs / "cache").iterdir() if p.name.endswith(".tmp")] == []


def test_a_read_only_file_system_reads_and_never_raises(
    tmpfs: Path, key_file: Tuple[str, rsa.RSAPrivateKey], caplog: pytest.LogCaptureFixture
) -> None:
    key = key_file[1]
    store, identity = TokenStore(tmpfs / "cache"), _identity(key)
    assert store.store(identity, key, _token(1, 1))
    with store.lock(identity):
        pass
    done = subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot remount read-only here")
    fresh = TokenStore(tmpfs / "cache")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert fresh.load(identity, key) == _token(1, 1)
        assert fresh.store(identity, key, _token(1, 2)) is False
        with fresh.lock(identity, timeout=1) as held:
            assert held is False
        assert fresh.clear() == 0
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert messages and all("Read-only file system" in m for m in messages)
    assert fresh.load(identity, key) == _token(1, 1)
