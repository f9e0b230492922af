"""Proof that the local org talks like Salesforce to clients we did not write.

(a) simple-salesforce's own JWT login (``Salesforce(username=, consumer_key=, privatekey_file=)``),
    which hard-codes https://login.salesforce.com: a transport adapter sends its token POST to
    the local org instead, everything after it follows the returned ``instance_url``.
(b) jsforce (npm) with jsonwebtoken signing the assertion, run by Node in a subprocess.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import requests
from requests.adapters import HTTPAdapter

JS_DIR = Path(__file__).resolve().parent / "js"
JS_SCRIPT = JS_DIR / "jsforce_login.js"

REAL_LOGIN = "https://login.salesforce.com"


class _RedirectLoginHost(HTTPAdapter):
    """Rewrites requests for https://login.salesforce.com to the local org's login host."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target.rstrip("/")
        self.rewritten: List[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        if url.startswith(REAL_LOGIN):
            request.url = self.target + url[len(REAL_LOGIN):]
            self.rewritten.append(request.path_url)
        return super().send(request, **kwargs)


def _seed_accounts(org: Any, names: List[str]) -> List[str]:
    return org.insert("Account", [{"Name": n} for n in names])


# --------------------------------------------------------------------------- (a) simple-salesforce


def test_simple_salesforce_builtin_jwt_login(salesforce_org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from simple_salesforce import Salesforce

    org = salesforce_org
    creds = org.credentials
    # requests lets REQUESTS_CA_BUNDLE override Session.verify: point it at the org's CA
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", org.ca_file)
    names = ["Faithful Alpha", "Faithful Beta", "Faithful Gamma"]
    ids = _seed_accounts(org, names)

    session = requests.Session()
    adapter = _RedirectLoginHost(org.login_url)
    session.mount(REAL_LOGIN, adapter)
    org.reset_counters()

    sf = Salesforce(username=creds.username, consumer_key=creds.consumer_key,
                    privatekey_file=creds.private_key_file, session=session)

    # its token POST went to the (rewritten) real login host, the API to the instance host
    assert adapter.rewritten == ["/services/oauth2/token"]
    assert org.token_requests == 1
    assert sf.sf_instance == org.instance_url.split("://", 1)[1]
    assert sf.session_id and sf.session_id != creds.consumer_key

    header, claims = org.assertions[-1]
    assert header.get("alg") == "RS256"
    assert claims["aud"] == REAL_LOGIN          # simple-salesforce's domain='login'
    assert claims["iss"] == creds.consumer_key
    assert claims["sub"] == creds.username
    assert isinstance(claims["exp"], str)       # it sends exp as a string; the org accepts it

    result = sf.query("SELECT Id, Name FROM Account WHERE Name LIKE 'Faithful%' ORDER BY Name")
    assert result["totalSize"] == 3
    assert result["done"] is True
    assert [r["Name"] for r in result["records"]] == names
    assert all(r["attributes"]["type"] == "Account" for r in result["records"])

    record = sf.Account.get(ids[1])
    assert record["Id"] == ids[1]
    assert record["Name"] == "Faithful Beta"
    assert record["attributes"]["url"].endswith(f"/sobjects/Account/{ids[1]}")

    api_paths = [r.path for r in org.requests if r.host == "instance"]
    assert any(p.endswith("/query") or p.endswith("/query/") for p in api_paths)
    assert all(r.status < 400 for r in org.requests)


def test_simple_salesforce_builtin_jwt_login_refused_user(salesforce_org: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The same client gets Salesforce's error for a user the app is not approved for."""
    from simple_salesforce import Salesforce
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed

    org = salesforce_org
    creds = org.credentials
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", org.ca_file)
    org.add_user("unapproved@example.com", approved=False)
    session = requests.Session()
    session.mount(REAL_LOGIN, _RedirectLoginHost(org.login_url))
    with pytest.warns(UserWarning):  # simple-salesforce warns about self-authorization here
        with pytest.raises(SalesforceAuthenticationFailed) as info:
            Salesforce(username="unapproved@example.com", consumer_key=creds.consumer_key,
                       privatekey_file=creds.private_key_file, session=session)
    assert info.value.code == "invalid_grant"
    assert info.value.auth_message == "user hasn't approved this consumer"


# --------------------------------------------------------------------------- (b) jsforce


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the jsforce faithfulness test needs Node.js >= 18")
    if not (JS_DIR / "node_modules" / "jsforce").is_dir() or not (JS_DIR / "node_modules" / "jsonwebtoken").is_dir():
        pytest.skip("tests/js/node_modules is missing: run `npm ci --prefix tests/js` (as .ci/run does)")
    return node


def _run_js(node: str, env_extra: Dict[str, str]) -> List[Dict[str, Any]]:
    env = dict(os.environ)
    env.update(env_extra)
    proc = subprocess.run([node, str(JS_SCRIPT)], cwd=str(JS_DIR), env=env, capture_output=True, text=True,
                          timeout=90)
    events = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            events.append(json.loads(line))
    if proc.returncode != 0 and not any(e.get("event") == "error" for e in events):
        pytest.fail(f"node exited with {proc.returncode}; stderr:\n{proc.stderr[-2000:]}")
    return events


def _js_env(org: Any, creds: Any, **extra: str) -> Dict[str, str]:
    env = {
        "SF_LOGIN_URL": org.login_url,
        "SF_USERNAME": creds.username,
        "SF_CONSUMER_KEY": creds.consumer_key,
        "SF_PRIVATE_KEY_FILE": creds.private_key_file,
        "SF_API_VERSION": str(org.api_version),
        "NODE_EXTRA_CA_CERTS": org.ca_file,
    }
    env.update(extra)
    return env


def test_jsforce_jwt_login_query_identity(salesforce_org: Any) -> None:
    node = _node()
    org = salesforce_org
    creds = org.credentials
    names = ["JS Account 1", "JS Account 2", "JS Account 3", "JS Account 4"]
    _seed_accounts(org, names)
    org.reset_counters()

    events = _run_js(node, _js_env(org, creds, SF_SOQL="SELECT Id, Name FROM Account WHERE Name LIKE 'JS %'"))
    by_kind = {e["event"]: e for e in events}
    assert "error" not in by_kind, by_kind.get("error")

    login = by_kind["login"]
    assert login["org_id"] == org.org_id
    assert login["user_id"] == creds.user_id
    assert login["instance_url"].rstrip("/") == org.instance_url.rstrip("/")
    assert login["has_token"] is True

    query = by_kind["query"]
    assert query["total_size"] == 4
    assert query["count"] == 4
    assert query["done"] is True
    assert sorted(query["names"]) == names
    assert query["types"] == ["Account"]

    identity = by_kind["identity"]
    assert identity["username"] == creds.username
    assert identity["user_id"] == creds.user_id
    assert identity["organization_id"] == org.org_id

    # jsonwebtoken's assertion: integer exp, the real login host as audience
    assert org.token_requests == 1
    header, claims = org.assertions[-1]
    assert header.get("alg") == "RS256"
    assert isinstance(claims["exp"], int)
    assert claims["aud"] == REAL_LOGIN
    assert claims["iss"] == creds.consumer_key


def test_jsforce_sees_salesforce_login_error(salesforce_org: Any) -> None:
    node = _node()
    org = salesforce_org
    creds = org.credentials
    events = _run_js(node, _js_env(org, creds, SF_USERNAME="nobody@example.com"))
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1, events
    assert errors[0]["name"] == "invalid_grant"
    assert errors[0]["message"] == "invalid user"
    assert not any(e["event"] == "login" for e in events)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
