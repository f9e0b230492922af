"""The README and the docs pages are run as written by new users: keep them true.

- The two Quickstart commands stand, letter for letter, in .ci/run (which CI executes).
- The Python examples that need no real org run here against the local org.
- The README stays short and PyPI-ready (absolute links only, each naming a file that exists);
  the details live in docs/ (an MkDocs site whose strict build runs in .ci/run).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
REPO_URL = "https://github.com/sfjwt-ext/sfjwt-ext"  # setup.cfg's url


def _page(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def _section(title: str, text: str = README) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no '## {title}' section"
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


@pytest.mark.parametrize("where", ["README.md", "docs/local-org.md"])
def test_local_org_fixture_example_runs_as_written(where: str, salesforce_org: Any) -> None:
    text = (ROOT / where).read_text(encoding="utf-8")
    title = "Using the local org in your own tests" if where == "README.md" else "In pytest, and in a script"
    (code,) = _blocks(_section(title, text), "python")
    namespace: Dict[str, Any] = {}
    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - our own docs
    tests = [v for k, v in namespace.items() if k.startswith("test_")]
    assert tests, "the example defines no test"
    for test in tests:
        test(salesforce_org)


def test_connect_reference_documents_every_parameter() -> None:
    """docs/connect.md renders connect_jwt's docstring (mkdocstrings): it names every
    parameter of the signature with a :param: field, and no other."""
    import inspect

    from sfjwt_ext.client import connect_jwt

    assert "::: sfjwt_ext.client.connect_jwt" in _page("connect.md")
    documented = re.findall(r"^\s*:param (\w+):", inspect.getdoc(connect_jwt) or "", re.M)
    parameters = list(inspect.signature(connect_jwt).parameters)
    assert documented == parameters, set(documented) ^ set(parameters)


@pytest.mark.parametrize("variable", [
    "SF_USERNAME", "SF_CONSUMER_KEY", "SF_CLIENT_ID", "SF_PRIVATE_KEY", "SF_PRIVATE_KEY_FILE",
    "SF_PRIVATE_KEY_PASSPHRASE", "SF_DOMAIN", "SF_LOGIN_URL", "SF_AUDIENCE", "SF_API_VERSION",
    "SF_CA_BUNDLE", "SF_PROFILE",
])
def test_every_environment_variable_is_documented(variable: str) -> None:
    from sfjwt_ext.config import ENV, ENV_ALIASES

    known = set(ENV.values()) | {alias for aliases in ENV_ALIASES.values() for alias in aliases}
    assert variable in known
    assert f"`{variable}`" in _section("Arguments, then environment, then profile", _page("settings.md"))


def test_keygen_command_runs_as_written(tmp_path: Path) -> None:
    import subprocess

    (keygen,) = [b.strip() for b in _blocks(_section("By hand, in Setup", _page("real-org.md")), "bash") if "keygen" in b]
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SF_")}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(["bash", "-c", keygen], env=env, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".sfjwt" / "salesforce.key").exists() and (tmp_path / ".sfjwt" / "salesforce.crt").exists()


def test_local_org_shell_recipe_runs_as_written(tmp_path: Path) -> None:
    """docs/local-org.md's recipe: start the org in the background, source its exports,
    and any client (here `sfjwt check`) logs in to it."""
    import os
    import subprocess

    (recipe,) = [b for b in _blocks(_section("From a shell or a notebook", _page("local-org.md")), "bash") if "sfjwt_ext.testing" in b]
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


def test_readme_is_short() -> None:
    """A newcomer finishes it; the details are in docs/."""
    assert len(README.splitlines()) < 250


def _links(text: str) -> List[str]:
    inline = re.findall(r"\]\(\s*<?([^)\s>]*)", text)  # [text](target), ![alt](target)
    references = re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", text, re.M)  # [label]: target
    html = re.findall(r"""(?:href|src)\s*=\s*["']([^"']*)""", text, re.I)
    return inline + references + html


def test_readme_links_are_absolute() -> None:
    """PyPI renders the README away from the repository: a relative link or a bare #anchor
    breaks there."""
    links = _links(README)
    assert links, "the README links to nothing"
    relative = [link for link in links if not link.startswith("https://")]
    assert relative == []


def test_readme_links_into_the_repository_name_files_that_exist() -> None:
    prefix = re.escape(REPO_URL)
    paths = [m.group(2) for link in _links(README)
             for m in [re.match(rf"{prefix}/(blob|tree)/main/([^#?]+)", link)] if m]
    assert paths, "the README links to no file of the repository"
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert missing == []


def test_link_finder_sees_relative_links() -> None:
    """The two tests above can fail: the finder reports the kinds of link that break on PyPI."""
    sample = '[a](docs/x.md) ![b](img.png) [c](#anchor) <a href="f.html">f</a>\n[d]: ../e.md\n'
    assert sorted(_links(sample)) == sorted(["docs/x.md", "img.png", "#anchor", "../e.md", "f.html"])
