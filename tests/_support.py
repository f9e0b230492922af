"""Helpers shared by the tests (imported as ``from _support import ...``; pytest puts tests/
on sys.path, and spawned children inherit it).

- Processes with hard deadlines: ``collect`` / ``get_one`` read a multiprocessing queue,
  ``join_all`` joins (kills and fails what overstays), ``kill_leftovers`` for ``finally``,
  ``call_in_process`` runs one function in a new process.
- ``fork`` / ``exit_code``: os.fork() a child function and wait for it with a deadline.
- ``exception_chain``: every exception reachable from one (cause, context, last_cause).
- ``write_encrypted_key``: a passphrase-protected copy of a key file.
- ``sample_org``: a module's own local org with the sample data, for read-only tests.
- ``raw_login``: a JWT login of the org's own user, straight at the token endpoint (no client).
"""
from __future__ import annotations

import concurrent.futures
import os
import queue
import signal
import sys
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from sfjwt_ext.auth.keys import load_private_key
from sfjwt_ext.testing import LocalOrg


# ---------------------------------------------------------------------------------------
# multiprocessing workers
# ---------------------------------------------------------------------------------------
def get_one(out: Any, deadline: float) -> Any:
    """One message from ``out``; fails the test when none comes within ``deadline`` s."""
    try:
        return out.get(timeout=deadline)
    except queue.Empty:
        pytest.fail(f"a process sent nothing within {deadline:.0f} s (deadlock?)")


def collect(out: Any, count: int, deadline: float) -> List[Any]:
    """``count`` messages from ``out``, each within ``deadline`` s."""
    return [get_one(out, deadline) for _ in range(count)]


def join_all(processes: Sequence[Any], deadline: float) -> None:
    """Join every process; kill and fail those still running after ``deadline`` s, and
    fail unless all exited 0."""
    for process in processes:
        process.join(deadline)
    hung = [p for p in processes if p.is_alive()]
    for process in hung:
        process.kill()
        process.join(10)
    assert not hung, f"{len(hung)} processes did not finish within {deadline:.0f} s"
    assert [p.exitcode for p in processes] == [0] * len(processes)


def call_in_process(context: Any, deadline: float, function: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """``function(*args, **kw)`` in one new process of the multiprocessing ``context``
    (ProcessPoolExecutor); its process is killed and the test fails after ``deadline`` s."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(function, *args, **kw)
        try:
            return future.result(timeout=deadline)
        except concurrent.futures.TimeoutError:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pytest.fail(f"the worker did not answer within {deadline:.0f} s")


def kill_leftovers(processes: Sequence[Any]) -> None:
    """For a ``finally``: kill what a failed test left running."""
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(10)


# ---------------------------------------------------------------------------------------
# os.fork
# ---------------------------------------------------------------------------------------
def fork(child: Callable[[], None], errors_to: Optional[int] = None) -> int:
    """Fork; the child runs ``child`` and exits 0, or 1 when it raised (its traceback goes
    to the file descriptor ``errors_to``, else to stderr). Returns the child's pid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            child()
            code = 0
        except BaseException:  # noqa: BLE001 - reported to the parent
            text = traceback.format_exc()
            if errors_to is None:
                print(text, file=sys.stderr, flush=True)
            else:
                os.write(errors_to, text.encode("utf-8", "replace")[-4000:])
        finally:
            os._exit(code)
    return pid


def exit_code(pid: int, deadline: float) -> int:
    """The forked child's exit code; kills it and fails the test when it is still running
    after ``deadline`` s."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)  # polling a process, not waiting for an outcome in the test
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child did not finish within {deadline:g} s (deadlock on an inherited lock?)")


# ---------------------------------------------------------------------------------------
# exceptions and keys
# ---------------------------------------------------------------------------------------
def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception reachable from it (``__cause__``, ``__context__``, our
    errors' ``last_cause``), each once."""
    seen: List[int] = []
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.append(id(current))
        yield current
        for linked in (current.__cause__, current.__context__, getattr(current, "last_cause", None)):
            if isinstance(linked, BaseException):
                todo.append(linked)


def write_encrypted_key(key_file: str, path: Path, passphrase: str) -> Path:
    """Write the key of ``key_file`` to ``path`` as encrypted PKCS#8 (mode 0600)."""
    key = load_private_key(private_key_file=key_file)
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ))
    os.chmod(path, 0o600)
    return path


# ---------------------------------------------------------------------------------------
# orgs
# ---------------------------------------------------------------------------------------
@contextmanager
def sample_org(folder: Path, username: str) -> Iterator[LocalOrg]:
    """A started local org with one approved app and user (its key in ``folder``) and
    ``load_sample_data()``; stopped on exit."""
    org = LocalOrg()
    org.start()
    try:
        org.credentials = org.new_app_with_key(folder, username=username)
        org.load_sample_data()
        yield org
    finally:
        org.api_latency = 0.0
        org.stop()


JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def raw_login(org: Any) -> dict:
    """The token endpoint's answer for ``org.credentials``' user, signed with PyJWT and posted
    with plain requests: for tests of the org that must not go through our client."""
    creds = org.credentials
    claims = {"iss": creds.consumer_key, "sub": creds.username, "aud": "https://login.salesforce.com",
              "exp": int(time.time()) + 180}
    assertion = jwt.encode(claims, Path(creds.private_key_file).read_bytes(), algorithm="RS256")
    resp = requests.post(org.token_url, data={"grant_type": JWT_BEARER, "assertion": assertion},
                         verify=org.ca_file, timeout=10)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def plain_salesforce(org: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A plain ``simple_salesforce.Salesforce`` on a token from :func:`raw_login` (not our
    client), trusting the org's CA: requests lets REQUESTS_CA_BUNDLE override a session's
    verify, and zeep (mdapi) uses its own session, so the variable points at the org's CA too."""
    from simple_salesforce import Salesforce

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", org.ca_file)
    http = requests.Session()
    http.verify = org.ca_file
    return Salesforce(session_id=raw_login(org)["access_token"], instance_url=org.instance_url, session=http,
                      version=str(org.api_version))


def wait_for_bulk_cleanup(timeout: float = 30.0) -> None:
    """Wait for the Bulk 2.0 job DELETEs that query_df & co. send in the background, so
    that a test's request log starts after them."""
    import threading

    deadline = time.monotonic() + timeout
    for thread in [t for t in threading.enumerate() if t.name == "sfjwt-bulk-cleanup"]:
        thread.join(max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), "a Bulk 2.0 job DELETE still runs after the deadline"
