from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from sfjwt_ext.errors import ConfigurationError, KeyFilePermissionWarning
from sfjwt_ext.config import ENV, Setting, Settings, config_path, resolve_settings

SECRET_PEM = "-----BEGIN PRIVATE KEY-----\nMIIsecretsecretsecret\n-----END PRIVATE KEY-----\n"


def write_profile(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.ini"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def resolve(environ=None, config=None, **arguments) -> Settings:
    """resolve_settings with an explicit (possibly empty) environment and profile file."""
    return resolve_settings(environ=environ or {}, config_path=str(config) if config else "/nonexistent/sfjwt.ini",
                            **arguments)


# -------------------------------------------------------------------------- precedence
def test_arguments_beat_environment_beat_profile(tmp_path):
    profile = write_profile(tmp_path, "[default]\nusername = p@x.com\nconsumer_key = PROFILEKEY\n"
                                      "audience = https://profile\napi_version = 60.0\n")
    env = {"SF_USERNAME": "e@x.com", "SF_CONSUMER_KEY": "ENVKEY", "SF_API_VERSION": "61.0"}
    s = resolve(env, profile, username="a@x.com")
    assert s.username == "a@x.com" and s.sources["username"].source == "argument"
    assert s.consumer_key == "ENVKEY" and s.sources["consumer_key"].source == "environment"
    assert s.audience == "https://profile" and s.sources["audience"].source == "profile:default"
    assert s.version == "61.0"
    assert s.sources["username"] == Setting("username", "a@x.com", "argument")


def test_defaults_and_unset():
    s = resolve()
    assert s.domain == "login" and s.sources["domain"].source == "default"
    assert s.username is None and "username" not in s.sources
    assert s.profile is None


def test_client_id_alias():
    assert resolve({"SF_CLIENT_ID": "CID"}).consumer_key == "CID"
    assert resolve({"SF_CLIENT_ID": "CID", "SF_CONSUMER_KEY": "CID"}).consumer_key == "CID"
    with pytest.raises(ConfigurationError, match="SF_CONSUMER_KEY and SF_CLIENT_ID"):
        resolve({"SF_CLIENT_ID": "A", "SF_CONSUMER_KEY": "B"})


def test_none_arguments_count_as_not_given():
    s = resolve({"SF_USERNAME": "e@x.com"}, username=None)
    assert s.username == "e@x.com"


def test_unknown_argument_is_a_type_error():
    with pytest.raises(TypeError, match="usrname"):
        resolve(usrname="x")


def test_reads_os_environ_by_default(monkeypatch, tmp_path):
    monkeypatch.setenv("SF_USERNAME", "os@x.com")
    monkeypatch.setenv("SFJWT_CONFIG", str(tmp_path / "none.ini"))
    assert resolve_settings().username == "os@x.com"


# ------------------------------------------------------------------------ key group
def test_argument_of_either_kind_wins_over_environment_entirely():
    env = {"SF_PRIVATE_KEY": SECRET_PEM, "SF_PRIVATE_KEY_FILE": "/env/key"}
    s = resolve(env, private_key_file="/arg/key")
    assert s.private_key_file == "/arg/key" and s.private_key is None
    s = resolve(env, private_key=SECRET_PEM)
    assert s.private_key == SECRET_PEM and s.private_key_file is None


def test_both_key_arguments():
    with pytest.raises(ConfigurationError) as info:
        resolve(private_key=SECRET_PEM, private_key_file="/k")
    assert "private_key=" in str(info.value) and "private_key_file=" in str(info.value)
    assert "MIIsecret" not in str(info.value)


def test_both_key_environment_variables():
    with pytest.raises(ConfigurationError) as info:
        resolve({"SF_PRIVATE_KEY": SECRET_PEM, "SF_PRIVATE_KEY_FILE": "/k"})
    assert "SF_PRIVATE_KEY and SF_PRIVATE_KEY_FILE" in str(info.value)
    assert "MIIsecret" not in str(info.value)


def test_empty_private_key_variable():
    with pytest.raises(ConfigurationError, match="SF_PRIVATE_KEY is set but empty: unset it"):
        resolve({"SF_PRIVATE_KEY": ""})
    with pytest.raises(ConfigurationError, match="SF_PRIVATE_KEY is set but empty"):
        resolve({"SF_PRIVATE_KEY": "  ", "SF_PRIVATE_KEY_FILE": "/k"})
    # an argument wins over the environment entirely
    assert resolve({"SF_PRIVATE_KEY": ""}, private_key_file="/k").private_key_file == "/k"


def test_environment_key_beats_profile_key_file(tmp_path):
    profile = write_profile(tmp_path, "[default]\nprivate_key_file = /profile/key\n")
    s = resolve({"SF_PRIVATE_KEY": SECRET_PEM}, profile)
    assert s.private_key == SECRET_PEM and s.private_key_file is None
    s = resolve({}, profile)
    assert s.private_key_file == "/profile/key" and s.sources["private_key_file"].source == "profile:default"


def test_relative_key_file_in_profile_is_relative_to_the_profile(tmp_path):
    profile = write_profile(tmp_path, "[default]\nprivate_key_file = keys/sf.key\n")
    assert resolve({}, profile).private_key_file == str(tmp_path / "keys" / "sf.key")


# ------------------------------------------------------------------------ host group
def test_login_host_comes_from_one_source():
    s = resolve({"SF_LOGIN_URL": "https://acme.my.salesforce.com"}, domain="test")
    assert s.domain == "test" and s.login_url is None
    s = resolve({"SF_LOGIN_URL": "https://acme.my.salesforce.com"})
    assert s.login_url == "https://acme.my.salesforce.com" and s.sources["login_url"].source == "environment"
    assert s.domain is None


# ------------------------------------------------------------------------- validation
@pytest.mark.parametrize("value,expected", [("62.0", "62.0"), ("62", "62.0"), (" 59.0 ", "59.0")])
def test_api_version_normalised(value, expected):
    assert resolve({"SF_API_VERSION": value}).version == expected
    assert resolve(version=value).version == expected


@pytest.mark.parametrize("value", ["v62.0", "62.0.1", "latest", "62,0"])
def test_api_version_refused(value):
    with pytest.raises(ConfigurationError) as info:
        resolve({"SF_API_VERSION": value})
    assert "SF_API_VERSION" in str(info.value) and "version=" in str(info.value)
    with pytest.raises(ConfigurationError, match="version="):
        resolve(version=value)


def test_ca_bundle_must_exist(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    assert resolve({"SF_CA_BUNDLE": str(bundle)}).ca_bundle == str(bundle)
    with pytest.raises(ConfigurationError, match="SF_CA_BUNDLE"):
        resolve({"SF_CA_BUNDLE": str(tmp_path / "missing.pem")})


# ---------------------------------------------------------------------------- require
def test_require_names_argument_variable_and_flag_for_each_missing():
    with pytest.raises(ConfigurationError) as info:
        resolve().require()
    message = str(info.value)
    for fragment in ("username=", "SF_USERNAME", "--username",
                     "consumer_key=", "SF_CONSUMER_KEY", "--consumer-key",
                     "private_key= or private_key_file=", "SF_PRIVATE_KEY or SF_PRIVATE_KEY_FILE", "--key-file"):
        assert fragment in message, fragment


def test_require_lists_only_what_is_missing():
    with pytest.raises(ConfigurationError) as info:
        resolve({"SF_USERNAME": "u@x.com", "SF_PRIVATE_KEY_FILE": "/k"}).require()
    message = str(info.value)
    assert "SF_CONSUMER_KEY" in message
    assert "SF_USERNAME" not in message
    assert "--key-file" not in message


def test_require_mentions_empty_variables():
    with pytest.raises(ConfigurationError, match="SF_USERNAME is set but empty"):
        resolve({"SF_USERNAME": "", "SF_CONSUMER_KEY": "k", "SF_PRIVATE_KEY_FILE": "/k"}).require()


def test_require_passes_when_complete():
    resolve({"SF_USERNAME": "u", "SF_CONSUMER_KEY": "k", "SF_PRIVATE_KEY": SECRET_PEM}).require()


# ------------------------------------------------------------------- repr / describe
def test_repr_and_describe_mask_secrets():
    env = {"SF_USERNAME": "u@x.com", "SF_CONSUMER_KEY": "3MVG9consumer", "SF_PRIVATE_KEY": SECRET_PEM,
           "SF_PRIVATE_KEY_PASSPHRASE": "hunter2"}
    s = resolve(env)
    text = repr(s)
    assert "MIIsecret" not in text and "hunter2" not in text
    assert "u@x.com" in text
    assert "MIIsecret" not in repr(s.sources["private_key"])
    rows = {name: (shown, source) for name, shown, source in s.describe()}
    assert set(rows) == set(ENV)
    assert rows["consumer_key"] == ("3MVG9consumer", "environment")
    assert "MIIsecret" not in rows["private_key"][0] and "hidden" in rows["private_key"][0]
    assert rows["private_key_passphrase"] == ("(hidden)", "environment")
    assert rows["audience"] == ("(not set)", "")
    assert rows["domain"] == ("login", "default")


def test_settings_are_read_only():
    s = resolve()
    with pytest.raises(AttributeError):
        s.username = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- profiles
def test_default_profile_applies_when_none_named(tmp_path):
    profile = write_profile(tmp_path, "[default]\nusername = d@x.com\n[prod]\nusername = p@x.com\n")
    s = resolve({}, profile)
    assert s.username == "d@x.com" and s.sources["username"].source == "profile:default"


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_named_profile(tmp_path, how):
    profile = write_profile(tmp_path, "[default]\nusername = d@x.com\n[prod]\nusername = p@x.com\n"
                                      "client_id = PROD\ndomain = acme.my\n")
    s = resolve({}, profile, profile="prod") if how == "argument" else resolve({"SF_PROFILE": "prod"}, profile)
    assert s.username == "p@x.com" and s.sources["username"].source == "profile:prod"
    assert s.consumer_key == "PROD"
    assert s.domain == "acme.my"
    assert s.profile == "prod"


def test_nonexistent_profile_lists_existing_and_path(tmp_path):
    profile = write_profile(tmp_path, "[default]\nusername = d@x.com\n[prod]\nusername = p@x.com\n")
    with pytest.raises(ConfigurationError) as info:
        resolve({}, profile, profile="staging")
    message = str(info.value)
    assert "'staging'" in message and "'default'" in message and "'prod'" in message
    assert str(profile) in message


def test_named_profile_without_file(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        resolve({"SF_PROFILE": "prod"}, tmp_path / "absent.ini")
    assert "SF_PROFILE" in str(info.value) and "absent.ini" in str(info.value)


def test_invalid_ini_names_file_and_line(tmp_path):
    profile = write_profile(tmp_path, "[default]\nusername = d@x.com\nthis line is not ini\n")
    with pytest.raises(ConfigurationError) as info:
        resolve({}, profile)
    message = str(info.value)
    assert str(profile) in message and "line 3" in message


def test_ini_without_section_header(tmp_path):
    profile = write_profile(tmp_path, "username = d@x.com\n")
    with pytest.raises(ConfigurationError, match="line 1"):
        resolve({}, profile)


@pytest.mark.parametrize("key", ["private_key", "private_key_passphrase"])
def test_secrets_in_profile_refused(tmp_path, key):
    profile = write_profile(tmp_path, f"[default]\n{key} = hunter2\n")
    with pytest.raises(ConfigurationError) as info:
        resolve({}, profile)
    message = str(info.value)
    assert "never store the key text or passphrase in the profile" in message
    assert "private_key_file" in message and "SF_PRIVATE_KEY_PASSPHRASE" in message
    assert "hunter2" not in message


def test_unknown_profile_key_refused(tmp_path):
    profile = write_profile(tmp_path, "[default]\nusernam = d@x.com\n")
    with pytest.raises(ConfigurationError, match="usernam"):
        resolve({}, profile)


def test_profile_version_validated(tmp_path):
    profile = write_profile(tmp_path, "[default]\napi_version = latest\n")
    with pytest.raises(ConfigurationError, match="profile:default"):
        resolve({}, profile)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_profile_writable_by_others_warns(tmp_path):
    profile = write_profile(tmp_path, "[default]\nusername = d@x.com\n", mode=0o664)
    with pytest.warns(KeyFilePermissionWarning, match="writable by group or others.*chmod go-w"):
        resolve({}, profile)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_profile_readable_by_others_does_not_warn(tmp_path):
    # profiles hold no secret (a key, passphrase or token is refused in them): 0644 is normal
    profile = write_profile(tmp_path, "[default]\nusername = d@x.com\n", mode=0o644)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve({}, profile)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_private_profile_does_not_warn(tmp_path):
    profile = write_profile(tmp_path, "[default]\nusername = d@x.com\n", mode=0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve({}, profile)


# ------------------------------------------------------------------------ config_path
def test_config_path_rules(tmp_path):
    assert config_path({"SFJWT_CONFIG": str(tmp_path / "x.ini")}) == tmp_path / "x.ini"
    if os.name == "posix" and os.uname().sysname == "Linux":
        assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "sfjwt" / "config.ini"
        assert config_path({}) == Path.home() / ".config" / "sfjwt" / "config.ini"


def test_config_path_from_environment_is_used(tmp_path):
    profile = write_profile(tmp_path, "[default]\nusername = viaenv@x.com\n")
    s = resolve_settings(environ={"SFJWT_CONFIG": str(profile)})
    assert s.username == "viaenv@x.com"
    assert s.config_file == profile


def test_sf_domain_and_sf_login_url_both_set_is_named(tmp_path):
    env = {"SF_USERNAME": "u@x.com", "SF_DOMAIN": "test", "SF_LOGIN_URL": "https://acme.my.salesforce.com"}
    with pytest.raises(ConfigurationError, match="both SF_DOMAIN.*and SF_LOGIN_URL.*unset one"):
        resolve(env, tmp_path / "none.ini")
    # an argument overrides the whole host group of the environment: no conflict then
    settings = resolve_settings(environ=env, config_path=str(tmp_path / "none.ini"), domain="login")
    assert settings.domain == "login" and settings.login_url is None
