"""A SalesforceJWT pickles: multiprocessing (fork, spawn), ProcessPoolExecutor, joblib.

* The pickle carries the token and where the key comes from, never the key text, its
  passphrase or a JWT.
* An unpickled client makes no token request while its token is valid; its first refresh
  loads the key in that process (the key file, else SF_PRIVATE_KEY / SF_PRIVATE_KEY_FILE
  there), or raises a ConfigurationError that names what to set on the workers.
* Unpickled clients of one login in a process share one refresher.

Every process is waited for with a deadline (and killed if it overstays).
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytest
from _support import call_in_process, get_one, join_all, kill_leftovers, write_encrypted_key

from sfjwt_ext import connect_jwt

DEADLINE = 180.0  # seconds for any process or message; only a hang gets near it
SOQL = "SELECT Id FROM Account"
JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]+\.eyJ")
PASSPHRASE = "correct horse battery staple"

spawn = multiprocessing.get_context("spawn")


# ---------------------------------------------------------------------------------------
# workers (module level: spawn and loky import them)
# ---------------------------------------------------------------------------------------
def _query(blob: bytes, env: Optional[Dict[str, Optional[str]]] = None, expire_first: bool = False) -> Tuple[str, Any]:
    """Unpickle, query; ("ok", totalSize) or ("error", type name, message)."""
    for name, value in (env or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    sf = pickle.loads(blob)
    try:
        return "ok", sf.query(SOQL)["totalSize"]
    except Exception as exc:  # reported to the test
        return "error", f"{type(exc).__name__}: {exc}"


def _query_twice(blob: bytes, ready: Any, go: Any, out: Any) -> None:
    sf = pickle.loads(blob)
    first = sf.query(SOQL)["totalSize"]
    ready.put(("ready", first))
    go.wait(DEADLINE)
    out.put(("done", sf.query(SOQL)["totalSize"], sf.refresh_count))


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _in_process(context: Any, blob: bytes, **kw: Any) -> Tuple[str, Any]:
    """_query(blob, **kw) in one new process of ``context``, with a hard deadline."""
    result: Tuple[str, Any] = call_in_process(context, DEADLINE, _query, blob, **kw)
    return result


def _no_secrets(blob: bytes, *secrets: bytes) -> None:
    assert b"-----BEGIN" not in blob and b"PRIVATE KEY" not in blob
    assert not JWT_RE.search(blob)
    for secret in secrets:
        assert secret not in blob


def _pem(path: str) -> str:
    return Path(path).read_text()


# ---------------------------------------------------------------------------------------
# what a pickle holds
# ---------------------------------------------------------------------------------------
def test_a_pickle_carries_no_key_passphrase_or_jwt(salesforce_org: Any, tmp_path: Path) -> None:
    org = salesforce_org
    creds = org.credentials
    # the org trusts the fixture's certificate: use the fixture's key as PEM text, and an
    # encrypted copy of it with a passphrase
    pem = _pem(creds.private_key_file)
    kwargs = creds.connect_kwargs()
    del kwargs["private_key_file"]
    sf_text = connect_jwt(private_key=pem, **kwargs)
    blob = pickle.dumps(sf_text)
    _no_secrets(blob, pem.encode(), *(line.encode() for line in pem.splitlines()[1:-1]))
    assert sf_text.session_id.encode() in blob  # the token travels (that is the point)

    encrypted = write_encrypted_key(creds.private_key_file, tmp_path / "encrypted.key", PASSPHRASE)
    sf_enc = connect_jwt(**dict(creds.connect_kwargs(), private_key_file=str(encrypted)),
                         private_key_passphrase=PASSPHRASE)
    blob = pickle.dumps(sf_enc)
    _no_secrets(blob, PASSPHRASE.encode(), encrypted.read_bytes()[30:90])
    assert str(encrypted).encode() in blob  # the key's file path travels, not its content


def test_unpickled_in_the_same_process_shares_the_login(salesforce_org: Any) -> None:
    org = salesforce_org
    sf = connect_jwt(**org.credentials.connect_kwargs())
    copy = pickle.loads(pickle.dumps(sf))
    again = pickle.loads(pickle.dumps(copy))  # an unpickled client pickles too
    assert copy.refresher is sf.refresher and again.refresher is sf.refresher
    assert copy.session is sf.session
    assert copy.query(SOQL)["totalSize"] == 0
    assert org.token_requests == 1
    org.expire_all_sessions()
    copy.query(SOQL)
    sf.query(SOQL)
    assert org.token_requests == 2  # one refresh serves both
    assert (copy.sf_version, copy.sf_instance, copy.login_target) == (sf.sf_version, sf.sf_instance, sf.login_target)
    assert copy.settings is not None and copy.settings.private_key_file == sf.settings.private_key_file


def test_a_client_not_made_by_connect_jwt_says_why_it_does_not_pickle(salesforce_org: Any) -> None:
    from sfjwt_ext.client import SalesforceJWT

    sf = connect_jwt(**salesforce_org.credentials.connect_kwargs())
    bare = SalesforceJWT(refresher=sf.refresher, session=sf.session)
    with pytest.raises(TypeError, match="connect_jwt"):
        pickle.dumps(bare)


# ---------------------------------------------------------------------------------------
# other processes
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_unpickled_in_a_new_process_makes_no_token_request(salesforce_org: Any, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    org = salesforce_org
    org.insert("Account", [{"Name": "Acme"}])
    blob = pickle.dumps(connect_jwt(**org.credentials.connect_kwargs()))
    assert _in_process(multiprocessing.get_context(method), blob) == ("ok", 1)
    assert org.token_requests == 1  # the worker used the pickled token
    org.expire_all_sessions()
    assert _in_process(multiprocessing.get_context(method), blob) == ("ok", 1)  # its refresh loaded the key file
    assert org.token_requests == 2


def test_joblib_loky_workers(salesforce_org: Any) -> None:
    joblib = pytest.importorskip("joblib")
    org = salesforce_org
    blob = pickle.dumps(connect_jwt(**org.credentials.connect_kwargs()))
    sf = pickle.loads(blob)
    results = joblib.Parallel(n_jobs=2, backend="loky", timeout=DEADLINE)(
        joblib.delayed(_query)(blob) for _ in range(4)
    )
    assert results == [("ok", 0)] * 4
    # the client itself as an argument (loky pickles it with cloudpickle)
    results = joblib.Parallel(n_jobs=2, backend="loky", timeout=DEADLINE)(
        joblib.delayed(_query)(pickle.dumps(sf)) for _ in range(2)
    )
    assert results == [("ok", 0)] * 2
    assert org.token_requests == 1


def test_a_worker_without_the_key_is_told_what_to_set(salesforce_org: Any, tmp_path: Path) -> None:
    org = salesforce_org
    creds = org.credentials
    copy = tmp_path / "gone.key"
    shutil.copy(creds.private_key_file, copy)
    os.chmod(copy, 0o600)
    blob = pickle.dumps(connect_jwt(**dict(creds.connect_kwargs(), private_key_file=str(copy))))
    copy.unlink()  # the workers' machine has no such file
    unset = {"SF_PRIVATE_KEY": None, "SF_PRIVATE_KEY_FILE": None, "SF_PRIVATE_KEY_PASSPHRASE": None}
    assert _in_process(spawn, blob, env=unset) == ("ok", 0)  # a valid token needs no key
    org.expire_all_sessions()
    status, message = _in_process(spawn, blob, env=unset)
    assert status == "error" and message.startswith("ConfigurationError")
    assert "SF_PRIVATE_KEY_FILE" in message and "SF_PRIVATE_KEY" in message and str(copy) in message
    # the same worker environment with the key as PEM text: its refresh works
    status, total = _in_process(spawn, blob, env=dict(unset, SF_PRIVATE_KEY=_pem(creds.private_key_file)))
    assert (status, total) == ("ok", 0)
    assert org.token_requests == 2


def test_an_encrypted_key_needs_its_passphrase_in_the_worker(salesforce_org: Any, tmp_path: Path) -> None:
    org = salesforce_org
    creds = org.credentials
    encrypted = write_encrypted_key(creds.private_key_file, tmp_path / "encrypted.key", PASSPHRASE)
    blob = pickle.dumps(connect_jwt(**dict(creds.connect_kwargs(), private_key_file=str(encrypted)),
                                    private_key_passphrase=PASSPHRASE))
    org.expire_all_sessions()
    status, message = _in_process(spawn, blob, env={"SF_PRIVATE_KEY_PASSPHRASE": None})
    assert status == "error" and "ConfigurationError" in message and "SF_PRIVATE_KEY_PASSPHRASE" in message
    assert PASSPHRASE not in message
    assert _in_process(spawn, blob, env={"SF_PRIVATE_KEY_PASSPHRASE": PASSPHRASE}) == ("ok", 0)
    assert org.token_requests == 2


def test_sixteen_spawn_workers_log_in_only_after_an_expiry(salesforce_org: Any) -> None:
    org = salesforce_org
    blob = pickle.dumps(connect_jwt(**org.credentials.connect_kwargs()))
    ready, out, go = spawn.Queue(), spawn.Queue(), spawn.Event()
    processes = [spawn.Process(target=_query_twice, args=(blob, ready, go, out)) for _ in range(16)]
    try:
        for process in processes:
            process.start()
        assert [get_one(ready, DEADLINE) for _ in processes] == [("ready", 0)] * 16
        assert org.token_requests == 1  # 16 workers, 0 token requests
        org.expire_all_sessions()
        go.set()
        done = [get_one(out, DEADLINE) for _ in processes]
        join_all(processes, DEADLINE)
    finally:
        kill_leftovers(processes)
    assert [d[:2] for d in done] == [("done", 0)] * 16
    assert [d[2] for d in done] == [1] * 16  # each refreshed once
    assert org.token_requests == 1 + 16  # without the token cache: one each, no more
