"""The README is run as written by new users: keep it true.

- The two Quickstart commands stand, letter for letter, in .ci/run (which CI executes).
- The Python examples that need no real org run here against the local org.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _blocks(text: str, language: str) -> List[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_quickstart_has_exactly_two_one_line_commands_and_ci_runs_them_verbatim() -> None:
    commands = [b.strip() for b in _blocks(_section("Quickstart"), "bash")]
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    demo, tests = commands
    assert "sfjwt demo" in demo and "pytest" in tests
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert demo in ci_lines and tests in ci_lines


def test_local_org_fixture_example_runs_as_written(salesforce_org: Any) -> None:
    (code,) = _blocks(_section("Using the local org in your own tests"), "python")
    namespace: Dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    tests = [v for k, v in namespace.items() if k.startswith("test_")]
    assert tests, "the example defines no test"
    for test in tests:
        test(salesforce_org)


def test_connect_reference_matches_the_signature() -> None:
    import inspect

    from sfjwt_ext import connect_jwt

    (reference,) = _blocks(_section("`connect_jwt` reference"), "python")
    documented = re.findall(r"^\s+(?:\w+=None, )*(\w+)=", reference, re.M)
    names = set(re.findall(r"(\w+)=(?:None|True)", reference))
    parameters = set(inspect.signature(connect_jwt).parameters) - {"salesforce_kwargs"}
    assert names == parameters, (names ^ parameters)
    assert documented  # the block is the signature, not prose


@pytest.mark.parametrize("variable", [
    "SF_USERNAME", "SF_CONSUMER_KEY", "SF_CLIENT_ID", "SF_PRIVATE_KEY", "SF_PRIVATE_KEY_FILE",
    "SF_PRIVATE_KEY_PASSPHRASE", "SF_DOMAIN", "SF_LOGIN_URL", "SF_AUDIENCE", "SF_API_VERSION",
    "SF_CA_BUNDLE", "SF_PROFILE",
])
def test_every_environment_variable_is_documented(variable: str) -> None:
    from sfjwt_ext.settings import ENV, ENV_ALIASES

    known = set(ENV.values()) | {alias for aliases in ENV_ALIASES.values() for alias in aliases}
    assert variable in known
    assert f"`{variable}`" in _section("`connect_jwt` reference")
