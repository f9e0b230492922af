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


def test_keygen_command_runs_as_written(tmp_path: Path) -> None:
    import subprocess

    (keygen,) = [b.strip() for b in _blocks(_section("Connecting a real org"), "bash") if "keygen" in b]
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SF_")}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(["bash", "-c", keygen], env=env, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".sfjwt" / "salesforce.key").exists() and (tmp_path / ".sfjwt" / "salesforce.crt").exists()


def test_local_org_shell_recipe_runs_as_written(tmp_path: Path) -> None:
    """The notebook section's recipe: start the org in the background, source its exports,
    and any client (here `sfjwt check`) logs in to it."""
    import os
    import subprocess

    (recipe,) = [b for b in _blocks(_section("In a notebook"), "bash") if "sfjwt_ext.testing" in b]
    lines = [line for line in recipe.splitlines() if "jupyter" not in line]
    env_file = tmp_path / "sf-org.env"
    script = "\n".join(line.replace("/tmp/sf-org.env", str(env_file)) for line in lines)
    script += '\nsfjwt check > "$CHECK_OUT" 2>&1; status=$?\nkill -INT %1; wait %1\nexit $status\n'
    env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    env.update(CHECK_OUT=str(tmp_path / "check.txt"), SFJWT_CONFIG=str(tmp_path / "none.ini"))
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=90,
                            stdin=subprocess.DEVNULL)
    check = (tmp_path / "check.txt").read_text()
    assert result.returncode == 0, (result.stderr, check)
    assert "login:        OK" in check and "[environment]" in check
