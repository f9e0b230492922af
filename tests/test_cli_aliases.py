"""The Salesforce CLI's flag names as aliases, and connection options only on the commands
that use them (issue 19 item 5). Run as users run it, against the local org over HTTPS."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.test_cli import assert_clean_failure, run


@pytest.fixture
def creds(salesforce_org: Any) -> Any:
    return salesforce_org.credentials


def only_ca(salesforce_org: Any) -> Dict[str, str]:
    """No SF_* login setting: the flags must carry them."""
    return {"SF_CA_BUNDLE": salesforce_org.ca_file}


def sf_style(creds: Any) -> List[str]:
    return ["--username", creds.username, "--client-id", creds.consumer_key, "--jwt-key-file",
            creds.private_key_file]


def test_query_takes_the_salesforce_cli_names(salesforce_org: Any, creds: Any, tmp_path: Path) -> None:
    target = tmp_path / "users.csv"
    result = run(["query", "SELECT Id, Username FROM User", *sf_style(creds), "--instance-url", creds.login_url,
                  "--result-format", "csv", "--output-file", str(target)], env=only_ca(salesforce_org))
    assert result.returncode == 0, result.stderr
    assert target.read_text().splitlines()[0] == "Id,Username" and creds.username in target.read_text()


def test_result_format_human_is_the_table(salesforce_org: Any, creds: Any) -> None:
    result = run(["query", "SELECT Id, Username FROM User", "--result-format", "human"],
                 env=dict(creds.env()))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["Id", "Username"] and set(result.stdout.splitlines()[1]) <= {"-", " "}


def test_check_takes_client_id_and_jwt_key_file(salesforce_org: Any, creds: Any) -> None:
    result = run(["check", *sf_style(creds), "--login-url", creds.login_url], env=only_ca(salesforce_org))
    assert result.returncode == 0, result.stderr
    assert "login:        OK" in result.stdout
    consumer = next(line for line in result.stdout.splitlines() if line.strip().startswith("consumer_key"))
    assert creds.consumer_key in consumer and "environment" not in consumer


def test_setup_takes_jwt_key_file(tmp_path: Path, creds: Any) -> None:
    result = run(["setup", "--dry-run", str(tmp_path / "pkg"), "--username", "etl@acme.com",
                  "--jwt-key-file", creds.private_key_file, "--json"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"]["privateKeyFile"] == creds.private_key_file


def test_help_shows_the_aliases_where_they_apply() -> None:
    query = run(["query", "--help"]).stdout
    for flag in ("--client-id", "--jwt-key-file", "--instance-url", "--result-format", "--output-file", "--json"):
        assert flag in query, flag
    check = run(["check", "--help"]).stdout
    assert "--client-id" in check and "--jwt-key-file" in check and "--json" in check
    # check's --instance-url is only the admin session's (as `sf org login access-token`): usage + its row
    assert check.count("--instance-url URL") == 2 and "SF_ADMIN_ACCESS_TOKEN" in check and "--login-url" in check
    setup = run(["setup", "--help"]).stdout
    assert setup.count("--instance-url URL") == 2 and "--jwt-key-file" in setup
    assert "--client-id" not in setup and "--login-url" not in setup and "--domain" not in setup


@pytest.mark.parametrize("command,shown", [
    ("keygen", ()), ("demo", ()), ("cache", ("--profile",)), ("setup", ("--username", "--key-file", "--profile")),
])
def test_each_command_lists_only_the_connection_options_it_uses(command: str, shown: tuple) -> None:
    text = run([command, "--help"]).stdout
    for flag in ("--username", "--consumer-key", "--key-file", "--domain", "--login-url", "--profile"):
        assert (flag in text) == (flag in shown), (command, flag)


@pytest.mark.parametrize("args,named", [
    (["keygen", "--username", "x"], "--username"),
    (["--username", "x", "keygen"], "--username"),
    (["demo", "--profile", "uat"], "--profile"),
    (["--key-file", "k.key", "demo"], "--key-file"),
    (["cache", "list", "--username", "x"], "--username"),
    (["--client-id", "x", "cache", "list"], "--consumer-key"),
    (["cache", "list", "--client-id", "x"], "--client-id"),
    (["keygen", "--instance-url", "https://x"], "--instance-url"),
    (["setup", "--consumer-key", "x", "--dry-run", "d"], "--consumer-key"),
    (["--domain", "test", "setup", "--dry-run", "d"], "--domain"),
])
def test_a_connection_option_a_command_does_not_use_is_a_usage_error(args: List[str], named: str,
                                                                      tmp_path: Path) -> None:
    if args[-1] == "d" or "keygen" in args:  # were it accepted, it would write into tmp_path
        args = args + ["--out", str(tmp_path)]
    result = run(args)
    assert_clean_failure(result, 2)
    command = next(word for word in args if word in ("keygen", "demo", "cache", "setup"))
    assert f"does not apply to `sfjwt {command}`" in result.stderr and named in result.stderr, result.stderr
    assert not list(tmp_path.iterdir())  # nothing was made


def test_setup_refusal_says_why() -> None:
    result = run(["--login-url", "https://x.my.salesforce.com", "setup", "--dry-run", "d"])
    assert_clean_failure(result, 2)
    assert "--login-url does not apply to `sfjwt setup`" in result.stderr and "writes the profile" in result.stderr


def test_json_before_the_command_works_where_the_command_takes_it(tmp_path: Path) -> None:
    listed = run(["--json", "cache", "list", "--folder", str(tmp_path)])
    assert listed.returncode == 0 and json.loads(listed.stdout)["result"]["entries"] == []
    refused = run(["--json", "keygen", "--out", str(tmp_path)])
    assert_clean_failure(refused, 2)
    assert "--json does not apply to `sfjwt keygen`" in refused.stderr and not list(tmp_path.iterdir())
    assert json.loads(refused.stdout)["status"] == 2
