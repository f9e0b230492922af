"""Files that outputs replace (issue 18, items 1, 2 and 10), against the local org over HTTPS.

``query_to_parquet`` and ``sfjwt query --output`` (every format) go through one output
helper (``sfjwt_ext._internal.outfile.OutputFile``): a symbolic link is written through (its target
is replaced, in the target's folder), a FIFO or a character device is streamed into and stays
what it was, a replaced file keeps its mode (a new one gets the umask's), and a path that
cannot be written, or ``--format parquet`` without pyarrow, is a usage error (exit 2) that
says what to do, decided before any login."""
from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional

import pytest
from _support import sample_org

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from sfjwt_ext.data.dataframe import query_df, query_to_parquet  # noqa: E402  (after the skips)
from sfjwt_ext.errors import ConfigurationError  # noqa: E402

SCRIPT = shutil.which("sfjwt")
COMMAND: List[str] = [SCRIPT] if SCRIPT else [sys.executable, "-m", "sfjwt_ext"]
ACCOUNTS = "SELECT Id, Name FROM Account ORDER BY Id"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sample_org(tmp_path_factory.mktemp("outputs-org"), "outputs@example.com") as org:
        yield org


@pytest.fixture
def sf(org: Any) -> Any:
    from sfjwt_ext import connect_jwt

    return connect_jwt(**org.credentials.connect_kwargs(), cache=False)


def run(org: Any, args: List[str], env: Optional[Dict[str, str]] = None, timeout: float = 120) -> SimpleNamespace:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    environment["SFJWT_CONFIG"] = os.devnull + ".none"
    environment.update(org.credentials.env())
    environment.update(env or {})
    result = subprocess.run(COMMAND + args, env=environment, capture_output=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    return SimpleNamespace(returncode=result.returncode, stdout=result.stdout,
                           stderr=result.stderr.decode("utf-8", "replace"))


def assert_usage_error(result: SimpleNamespace, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "bug in sfjwt" not in result.stderr, result.stderr
    assert "unexpected" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def read_fifo_in_background(fifo: Path, into: Path) -> "subprocess.Popen[bytes]":
    """``cat FIFO > into`` in a child process: a reader that cannot hang the test (it is
    killed if the writer never comes)."""
    out = open(into, "wb")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(["cat", str(fifo)], stdout=out)
    finally:
        out.close()


def wait_reader(reader: "subprocess.Popen[bytes]") -> None:
    try:
        reader.wait(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()


def umask_now() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# -- item 1: query_to_parquet writes through links and into special files ------------------
def test_parquet_through_a_symlink_replaces_its_target_in_the_targets_folder(sf: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    real = data / "accounts.parquet"
    real.write_bytes(b"old")
    links = tmp_path / "links"
    links.mkdir()
    link = links / "latest.parquet"
    link.symlink_to(real)
    assert query_to_parquet(sf, ACCOUNTS, link, progress=False, bulk=False) > 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert pq.read_table(real).num_rows > 0
    assert sorted(os.listdir(links)) == ["latest.parquet"] and sorted(os.listdir(data)) == ["accounts.parquet"]


def test_parquet_into_a_fifo_streams_and_the_fifo_stays(sf: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.parquet"
    os.mkfifo(fifo)
    received = tmp_path / "received.parquet"
    reader = read_fifo_in_background(fifo, received)
    try:
        rows = query_to_parquet(sf, ACCOUNTS, fifo, progress=False, bulk=False)
    finally:
        if not stat.S_ISFIFO(os.lstat(fifo).st_mode):  # the bug: the FIFO was replaced, the reader waits
            reader.kill()
        wait_reader(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert pq.read_table(received).num_rows == rows > 0
    assert sorted(os.listdir(tmp_path)) == ["pipe.parquet", "received.parquet"]


@pytest.mark.skipif(not IS_ROOT, reason="making a character device needs root")
def test_parquet_into_a_character_device_leaves_the_device(sf: Any, tmp_path: Path) -> None:
    """A private copy of /dev/null (the real one must never be at stake in a test)."""
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert query_to_parquet(sf, ACCOUNTS, null, progress=False, bulk=False) > 0
    assert stat.S_ISCHR(os.lstat(null).st_mode) and os.lstat(null).st_rdev == os.makedev(1, 3)
    assert sorted(os.listdir(tmp_path)) == ["null"]


@pytest.mark.skipif(not IS_ROOT, reason="making a block device needs root")
def test_a_block_device_is_refused_not_replaced_nor_written(sf: Any, org: Any, tmp_path: Path) -> None:
    """Streaming a CSV or Parquet file onto a disk would destroy it: refused, before any login.
    The device is major 60 (reserved for local/experimental use, no driver): even a broken
    build that opened it could not write to a real disk."""
    disk = tmp_path / "disk"
    os.mknod(disk, stat.S_IFBLK | 0o600, os.makedev(60, 0))
    with pytest.raises(ConfigurationError, match="block device"):
        query_to_parquet(sf, ACCOUNTS, disk, progress=False)
    org.reset_counters()
    result = run(org, ["query", ACCOUNTS, "--format", "csv", "--output", str(disk)])
    assert_usage_error(result, "--output", "block device")
    assert org.token_requests == 0
    assert stat.S_ISBLK(os.lstat(disk).st_mode) and sorted(os.listdir(tmp_path)) == ["disk"]


def test_parquet_path_that_is_a_folder_or_in_no_folder_is_a_configuration_error(sf: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="folder"):
        query_to_parquet(sf, ACCOUNTS, tmp_path, progress=False)
    with pytest.raises(ConfigurationError, match="does not exist"):
        query_to_parquet(sf, ACCOUNTS, tmp_path / "nope" / "a.parquet", progress=False)
    assert os.listdir(tmp_path) == []


# -- item 2: modes ---------------------------------------------------------------------------
def test_parquet_over_a_private_file_keeps_it_private(sf: Any, tmp_path: Path) -> None:
    path = tmp_path / "people.parquet"
    path.write_bytes(b"yesterday's extract")
    os.chmod(path, 0o600)
    query_to_parquet(sf, ACCOUNTS, path, progress=False, bulk=False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pq.read_table(path).num_rows > 0


@pytest.mark.skipif(not IS_ROOT, reason="giving a file to another user needs root")
def test_root_replacing_another_users_file_keeps_its_owner_and_group(sf: Any, tmp_path: Path) -> None:
    path = tmp_path / "theirs.parquet"
    path.write_bytes(b"old")
    os.chown(path, 12345, 12346)
    os.chmod(path, 0o640)
    query_to_parquet(sf, ACCOUNTS, path, progress=False, bulk=False)
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (12345, 12346, 0o640)


def test_a_new_parquet_file_gets_the_umasks_mode(sf: Any, tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        query_to_parquet(sf, ACCOUNTS, tmp_path / "new.parquet", progress=False, bulk=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.parquet").stat().st_mode) == 0o640


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_cli_output_keeps_a_replaced_files_mode_and_new_files_follow_the_umask(org: Any, tmp_path: Path,
                                                                               fmt: str) -> None:
    private = tmp_path / f"private.{fmt}"
    private.write_bytes(b"old")
    os.chmod(private, 0o600)
    result = run(org, ["query", ACCOUNTS, "--format", fmt, "--output", str(private)])
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_bytes() != b"old"
    fresh = tmp_path / f"fresh.{fmt}"
    result = run(org, ["query", ACCOUNTS, "--format", fmt, "--output", str(fresh)])
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask_now()


# -- item 1 through the command ---------------------------------------------------------------
def test_cli_parquet_through_a_symlink_and_into_a_fifo(org: Any, sf: Any, tmp_path: Path) -> None:
    real = tmp_path / "data" / "accounts.parquet"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "latest.parquet"
    link.symlink_to(real)
    result = run(org, ["query", ACCOUNTS, "--format", "parquet", "--output", str(link)])
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    expected = query_df(sf, ACCOUNTS, progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(real), expected)

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = tmp_path / "received.parquet"
    reader = read_fifo_in_background(fifo, received)
    try:
        result = run(org, ["query", ACCOUNTS, "--format", "parquet", "--output", str(fifo)])
    finally:
        if not stat.S_ISFIFO(os.lstat(fifo).st_mode):
            reader.kill()
        wait_reader(reader)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    pd.testing.assert_frame_equal(pd.read_parquet(received), expected)
    assert sorted(os.listdir(tmp_path)) == ["data", "latest.parquet", "pipe", "received.parquet"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_cli_output_dev_stdout_into_a_pipe_streams(org: Any, sf: Any, fmt: str) -> None:
    """``--output /dev/stdout`` when stdout is a pipe: the name leads (through /proc) to the
    pipe, which has no folder to put a temporary file in; the rows go down the pipe.
    Spelled ``/dev/fd/1`` here: the same path to the pipe, but a broken build that renames a
    file over it fails (nothing can be created in /proc) instead of replacing the machine's
    /dev/stdout, as the code before this test did when run as root."""
    result = run(org, ["query", ACCOUNTS, "--format", fmt, "--output", "/dev/fd/1"])
    assert result.returncode == 0, result.stderr
    expected = query_df(sf, ACCOUNTS, progress=False)
    if fmt == "parquet":
        got = pq.read_table(io.BytesIO(result.stdout)).to_pandas()
    else:
        got = pd.read_csv(io.BytesIO(result.stdout), dtype="string")
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.skipif(not IS_ROOT, reason="making a character device needs root")
def test_cli_parquet_into_a_character_device(org: Any, tmp_path: Path) -> None:
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    result = run(org, ["query", ACCOUNTS, "--format", "parquet", "--output", str(null)])
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode)


# -- item 10: usage errors, before any login ----------------------------------------------------
def test_cli_parquet_into_a_missing_folder_is_a_usage_error_before_login(org: Any, tmp_path: Path) -> None:
    org.reset_counters()
    result = run(org, ["query", ACCOUNTS, "--format", "parquet", "--output", str(tmp_path / "no" / "x.parquet")])
    assert_usage_error(result, "--output", "does not exist")
    assert org.token_requests == 0 and org.api_requests == 0
    result = run(org, ["query", ACCOUNTS, "--format", "csv", "--output", str(tmp_path / "no" / "x.csv")])
    assert_usage_error(result, "--output", "does not exist")
    assert os.listdir(tmp_path) == []


def test_cli_parquet_without_pyarrow_is_a_usage_error_naming_the_install(org: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker" / "pyarrow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named pyarrow (blocked by a test)')\n")
    path = os.pathsep.join([str(blocker.parent), os.environ.get("PYTHONPATH", "")])
    org.reset_counters()
    result = run(org, ["query", ACCOUNTS, "--format", "parquet", "--output", str(tmp_path / "x.parquet")],
                 env={"PYTHONPATH": path})
    assert_usage_error(result, "pyarrow", "pip install", "--format csv")
    assert org.token_requests == 0
    assert sorted(os.listdir(tmp_path)) == ["blocker"]
