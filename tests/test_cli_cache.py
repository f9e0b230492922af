"""`sfjwt cache list` and `sfjwt cache clear`: the token cache seen from the command line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sfjwt_ext import connect_jwt
from sfjwt_ext.cli import EXIT_OK, EXIT_USAGE, main


def _fill(org: Any, folder: Path) -> Any:
    return connect_jwt(**org.credentials.connect_kwargs(), token_cache=str(folder))


def test_list_shows_identities_never_tokens(salesforce_org: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "cache"
    sf = _fill(salesforce_org, folder)
    (folder / "junk.token").write_bytes(b"not ours")
    assert main(["cache", "list", "--folder", str(folder)]) == EXIT_OK
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["user", "instance", "org", "age"]
    (mine,) = [line for line in lines if "user@example.com" in line]
    assert sf.token.instance_url in mine and sf.token.org_id in mine and " s " in mine
    assert any("not an sfjwt token cache file" in line for line in lines)  # the broken file is named
    assert sf.session_id not in out + err and sf.session_id.split("!")[-1][:12] not in out + err
    assert "2 cached logins" in err and "never shown" in err


def test_the_folder_comes_from_sf_token_cache(
    salesforce_org: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "named"
    _fill(salesforce_org, folder)
    monkeypatch.setenv("SFJWT_CONFIG", str(tmp_path / "no-profile.ini"))
    monkeypatch.setenv("SF_TOKEN_CACHE", str(folder))
    assert main(["cache", "list"]) == EXIT_OK
    assert "user@example.com" in capsys.readouterr().out
    monkeypatch.setenv("SF_TOKEN_CACHE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert main(["cache", "list"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out == "" and f"no cached tokens in {tmp_path / 'xdg' / 'sfjwt'}" in err


def test_clear_removes_the_entries(salesforce_org: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "cache"
    _fill(salesforce_org, folder)
    assert main(["cache", "clear", "--folder", str(folder)]) == EXIT_OK
    assert capsys.readouterr().out == f"removed 1 cached token from {folder}\n"
    assert list(folder.glob("*.token")) == []
    assert main(["cache", "list", "--folder", str(folder)]) == EXIT_OK
    assert "no cached tokens" in capsys.readouterr().err


def test_a_bad_action_or_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "purge"]) == EXIT_USAGE
    assert main(["cache", "list", "--folder", "0"]) == EXIT_USAGE
    assert "--folder" in capsys.readouterr().err
