from __future__ import annotations

import pickle

import pytest
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from sfjwt_ext import errors
from sfjwt_ext.errors import (
    AppAccessError,
    AppNotInstalledError,
    AssertionExpiredError,
    AudienceInvalidError,
    AuthenticationError,
    ConfigurationError,
    ConsumerNotApprovedError,
    InactiveUserError,
    InvalidAssertionError,
    InvalidClientIdError,
    LoginRateExceededError,
    LoginRestrictedError,
    SessionRefusedError,
    SfJwtError,
    SoapJwtTokenError,
    TokenEndpointUnavailable,
    UnknownUserError,
    UnsupportedGrantTypeError,
    error_for,
    unexpected_response,
)

USER = "ann@acme.com"
LOGIN = "https://login.salesforce.com"

# (error, error_description, class, fragments the message must contain)
TABLE = [
    ("invalid_grant", "user hasn't approved this consumer", ConsumerNotApprovedError,
     ["Setup > External Client App Manager", "Policies tab > Edit Policies", "Permitted Users",
      "Admin approved users are pre-authorized", "Profiles", "Permission Sets",
      "An existing Connected App works the same way (Setup > App Manager > the app > Manage",
      "Manage Profiles", "Manage Permission Sets", "~10 minutes", "sandbox", "test.salesforce.com"]),
    ("invalid_app_access", "user is not admin approved to access this app", AppAccessError,
     ["External Client App Manager > the app > Policies tab > Edit Policies > Profiles / Permission Sets",
      "Admin approved users are pre-authorized", "Manage Profiles", "permission set"]),
    ("invalid_client_id", "client identifier invalid", InvalidClientIdError,
     ["SF_CONSUMER_KEY", "Settings tab > OAuth Settings > Consumer Key and Secret",
      "Manage Consumer Details", "up to ~10 minutes to apply", "sfjwt check"]),
    ("invalid_grant", "External client app is not installed in this org", AppNotInstalledError,
     ["wrong org", "sandbox", "refreshed", "sfjwt setup", "External Client App Manager",
      "SF_CONSUMER_KEY", "SF_LOGIN_URL"]),
    ("invalid_grant", "audience is invalid", AudienceInvalidError,
     ["https://login.salesforce.com", "https://test.salesforce.com", "My Domain", "SF_AUDIENCE"]),
    ("invalid_grant", "invalid assertion", InvalidAssertionError,
     ["Flow Enablement: Enable JWT Bearer Flow, Upload Files", "Use digital signatures", ".crt",
      "sfjwt check --cert"]),
    ("invalid_grant", "expired authorization code", AssertionExpiredError, ["clock"]),
    ("invalid_grant", "assertion expired", AssertionExpiredError, ["clock"]),
    ("invalid_grant", "inactive user", InactiveUserError, ["deactivated"]),
    ("invalid_grant", "inactive_org", InactiveUserError, ["org"]),
    ("invalid_grant", "invalid user", UnknownUserError, ["SF_USERNAME", "test.salesforce.com"]),
    ("invalid_grant", "IP restricted or invalid login hours", LoginRestrictedError,
     ["Login IP Ranges", "Login Hours", "always enforce IP restrictions", "Network Access"]),
    ("rate_limit_exceeded", "number of logins exceeded", LoginRateExceededError, ["3,600", "reuse"]),
    ("invalid_grant", "LOGIN_RATE_EXCEEDED", LoginRateExceededError, ["3,600"]),
    ("unsupported_grant_type", "grant type not supported", UnsupportedGrantTypeError,
     ["login_url", "Enable JWT Bearer Flow", "Use digital signatures"]),
]


@pytest.mark.parametrize("error,description,cls,fragments", TABLE)
def test_error_for_maps_each_row_to_its_class(error, description, cls, fragments):
    exc = error_for(error, description, status=400, login_url=LOGIN, username=USER)
    assert type(exc) is cls
    assert isinstance(exc, AuthenticationError)
    assert isinstance(exc, SalesforceAuthenticationFailed)
    assert isinstance(exc, SfJwtError)
    message = str(exc)
    assert message.startswith(f"Salesforce refused the JWT login of {USER} at {LOGIN}: {error}: ")
    assert description.rstrip(".") in message
    assert "Fix: " in message
    for fragment in fragments:
        assert fragment in message, fragment
    assert exc.error == error
    assert exc.description == description
    assert exc.status == 400
    assert exc.login_url == LOGIN
    assert exc.username == USER
    assert exc.hint and exc.hint in message


def test_matching_is_case_insensitive():
    exc = error_for("INVALID_GRANT", "User Hasn't Approved This Consumer", login_url=LOGIN, username=USER)
    assert isinstance(exc, ConsumerNotApprovedError)
    assert isinstance(error_for("invalid_grant", "Audience Is Invalid"), AudienceInvalidError)


def test_unknown_code_gives_base_class_with_generic_hint():
    exc = error_for("weird_error", "something new", status=400, login_url=LOGIN, username=USER)
    assert type(exc) is AuthenticationError
    assert "Login History" in str(exc)
    assert "weird_error: something new" in str(exc)


def test_unknown_invalid_grant_description_gives_base_class():
    assert type(error_for("invalid_grant", "a brand new reason")) is AuthenticationError


def test_simple_salesforce_compatibility():
    exc = error_for("invalid_grant", "invalid assertion", status=400, login_url=LOGIN, username=USER)
    # simple-salesforce's attributes are there
    assert exc.code == "invalid_grant"
    assert "invalid assertion" in exc.auth_message
    # the real status, not SalesforceAuthenticationFailed's fixed 401
    assert exc.status == 400
    with pytest.raises(SalesforceAuthenticationFailed):
        raise exc


def test_status_other_than_400_is_shown():
    exc = error_for("invalid_grant", "invalid user", status=401, login_url=LOGIN, username=USER)
    assert "(HTTP 401)" in str(exc)


def test_constructible_like_simple_salesforce():
    exc = AuthenticationError("invalid_grant", "something")
    assert exc.error == "invalid_grant"
    assert exc.status is None
    assert "invalid_grant: something" in str(exc)


def test_pickle_round_trip_keeps_class_and_fields():
    exc = error_for("invalid_client_id", "client identifier invalid", status=400, login_url=LOGIN, username=USER)
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is InvalidClientIdError
    assert (copy.error, copy.description, copy.status, copy.login_url, copy.username) == (
        exc.error, exc.description, exc.status, exc.login_url, exc.username)
    assert str(copy) == str(exc)


def test_refused_and_unreplayable_session_errors_pickle_for_a_pool_or_dask_worker_to_raise():
    exc = errors.SessionRefusedError(LOGIN + "/services/data/v62.0/query", 401, "API is disabled", b"[]")
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is errors.SessionRefusedError
    assert (copy.url, copy.status, copy.salesforce_message, copy.content) == (exc.url, 401, "API is disabled", b"[]")
    assert str(copy) == str(exc)
    exc = errors.RequestNotReplayable(LOGIN + "/services/data/v62.0/sobjects/Account", 401, "Account", b"[]")
    copy = pickle.loads(pickle.dumps(exc))
    assert (type(copy), copy.url, copy.status, copy.resource_name, str(copy)) == (
        errors.RequestNotReplayable, exc.url, 401, "Account", str(exc))


def test_configuration_error_is_value_error():
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(ConfigurationError, SfJwtError)
    assert issubclass(errors.PrivateKeyError, SfJwtError)
    assert issubclass(errors.KeyFilePermissionWarning, UserWarning)


def test_token_endpoint_unavailable_carries_cause_and_attempts():
    cause = ConnectionError("connection reset by peer")
    exc = TokenEndpointUnavailable(LOGIN, 3, cause)
    assert exc.last_cause is cause
    assert exc.attempts == 3
    assert exc.login_url == LOGIN
    assert "3 attempts" in str(exc) and "connection reset by peer" in str(exc)
    assert not isinstance(exc, AuthenticationError)
    copy = pickle.loads(pickle.dumps(exc))
    assert copy.attempts == 3 and "connection reset" in str(copy)


def test_token_endpoint_unavailable_masks_secrets_in_the_cause():
    token = "00D5g000004abcd!AQ0AQHjm1f2Q3gkkz.zJ2yHcR9uFwX0b2v1xLb7_abcdEFGH"
    exc = TokenEndpointUnavailable(LOGIN, 1, f"HTTP 503: {token}")
    assert token not in str(exc)


def test_unexpected_response_html_shows_status_and_start_of_body():
    body = "<html><head><title>Proxy login</title></head>" + "x" * 500 + "</html>"
    exc = unexpected_response(200, body.encode(), login_url=LOGIN, username=USER, content_type="text/html")
    assert type(exc) is AuthenticationError
    assert exc.error == "unexpected_response"
    assert exc.status == 200
    message = str(exc)
    assert "HTTP 200" in message and "text/html" in message
    assert "<html><head><title>Proxy login" in message
    assert "x" * 300 not in message  # only the start of the body
    assert "proxy" in message.lower()


def test_unexpected_response_masks_tokens_and_keys_in_the_body():
    token = "00D5g000004abcd!AQ0AQHjm1f2Q3gkkz.zJ2yHcR9uFwX0b2v1xLb7_abcdEFGH"
    body = '{"access_tokn": "%s", "scope": "api"}' % token
    exc = unexpected_response(200, body, login_url=LOGIN, username=USER, reason="JSON without access_token")
    assert token not in str(exc)
    assert "00D…EFGH" in str(exc)
    assert "JSON without access_token" in str(exc)


def test_error_for_masks_secrets_echoed_in_description():
    jwt_text = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"
    exc = error_for("invalid_grant", f"invalid assertion {jwt_text}")
    assert jwt_text not in str(exc)


# --- External Client Apps first (issue 15) -----------------------------------------------------
_ALL_HINTED = [cls for _e, _d, cls, _f in TABLE] + [AuthenticationError]


@pytest.mark.parametrize("cls", sorted(set(_ALL_HINTED), key=lambda c: c.__name__))
def test_a_hint_naming_setup_names_the_external_client_app_before_the_connected_app(cls):
    hint = cls("x", "y", login_url=LOGIN, username=USER).hint
    if "App Manager" not in hint:
        return  # this hint names no app screen
    eca = hint.find("External Client App")
    connected = hint.find("Connected App")
    assert eca != -1, hint
    assert connected == -1 or eca < connected, hint
    assert "New Connected App" not in hint


def test_the_ip_restriction_hint_no_longer_suggests_ip_relaxation():
    hint = error_for("invalid_grant", "IP restricted or invalid login hours",
                     login_url=LOGIN, username=USER).hint
    assert "Relax IP restrictions" not in hint
    assert "does not apply to them" in hint  # IP Relaxation is named only to say it does not help
    assert f"{USER}'s profile > Login IP Ranges" in hint and "Setup > Network Access" in hint


@pytest.mark.parametrize("code", ["invalid_grant", "invalid_client_id", "invalid_client", "OAUTH_EC_APP_NOT_FOUND"])
def test_app_not_installed_is_recognised_whatever_the_code_and_stays_an_invalid_client_id_error(code):
    description = "External client app is not installed in this org" if code != "OAUTH_EC_APP_NOT_FOUND" else ""
    exc = error_for(code, description, status=400, login_url=LOGIN, username=USER)
    assert type(exc) is AppNotInstalledError
    # code that already catches InvalidClientIdError / SalesforceAuthenticationFailed keeps working
    assert isinstance(exc, InvalidClientIdError) and isinstance(exc, SalesforceAuthenticationFailed)
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is AppNotInstalledError and str(again) == str(exc)


def test_invalid_client_id_still_maps_to_its_own_class():
    exc = error_for("invalid_client_id", "client identifier invalid", login_url=LOGIN, username=USER)
    assert type(exc) is InvalidClientIdError


def test_session_refused_names_the_external_client_app_scopes_first():
    text = str(SessionRefusedError("https://acme.my.salesforce.com/services/data/v62.0/", 401, "nope"))
    assert "Manage user data via APIs (api)" in text
    assert text.find("External Client App Manager") < text.find("Connected App")


def test_soap_jwt_token_error_names_the_setting_and_the_version():
    url = "https://acme.my.salesforce.com/services/Soap/m/62.0"
    exc = SoapJwtTokenError(url, "62.0")
    text = str(exc)
    assert isinstance(exc, SfJwtError)
    assert "Issue JSON Web Token (JWT)-based access tokens for named users" in text
    assert "isNamedUserJwtEnabled" in text and "version='68.0'" in text and "SF_API_VERSION=68.0" in text
    assert "Not sent" in text and url in text and "API 62.0" in text
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is SoapJwtTokenError and (again.url, again.version) == (url, "62.0")
    assert str(again) == text


# --- the same answers from the local org (over HTTPS) ------------------------------------------
def _connect_org(org, **changes):
    from sfjwt_ext import connect_jwt

    kwargs = org.credentials.connect_kwargs()
    kwargs.update({"cache": False, **changes})
    return connect_jwt(**kwargs)


def test_an_app_not_installed_in_the_org_raises_app_not_installed_at_once(salesforce_org):
    org = salesforce_org
    org.set_app(org.credentials.consumer_key, installed=False)
    with pytest.raises(InvalidClientIdError) as caught:  # what existing code catches still catches it
        _connect_org(org)
    exc = caught.value
    assert type(exc) is AppNotInstalledError and exc.status == 400
    assert exc.description == "External client app is not installed in this org"
    assert "sfjwt setup" in exc.hint and "refreshed" in exc.hint
    assert org.token_requests == 1  # permanent: never retried


def test_a_new_app_still_propagating_says_it_takes_up_to_ten_minutes(salesforce_org, tmp_path):
    org = salesforce_org
    org.app_propagation_delay = 600.0
    creds = org.new_app_with_key(tmp_path / "new-app", username="fresh@example.com")
    from sfjwt_ext import connect_jwt

    with pytest.raises(InvalidClientIdError) as caught:
        connect_jwt(**creds.connect_kwargs(), cache=False)
    assert type(caught.value) is InvalidClientIdError
    assert "up to ~10 minutes to apply" in str(caught.value)
    assert "Consumer Key and Secret" in str(caught.value)


def test_a_user_the_app_does_not_pre_authorize_gets_the_policies_tab(salesforce_org):
    org = salesforce_org
    org.set_app(org.credentials.consumer_key, profiles=(), permission_sets=())
    with pytest.raises(AppAccessError) as caught:
        _connect_org(org)
    text = str(caught.value)
    assert "External Client App Manager > the app > Policies tab > Edit Policies" in text
    assert text.find("External Client App Manager") < text.find("Connected App")
