"""sfjwt-ext: Salesforce OAuth 2.0 JWT bearer login for simple-salesforce.

    from sfjwt_ext import connect_jwt
    sf = connect_jwt()          # settings from arguments, else SF_* environment variables
    sf.query_all("SELECT Id, Name FROM Account")

Public names are loaded on first use, so ``import sfjwt_ext`` stays cheap and never
imports pandas, the CLI parser or the local test org.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# Written out so that type checkers read it; tests/test_public_names.py checks each name loads.
__all__ = [
    "__version__",
    "connect_jwt", "SalesforceJWT", "clear_cache", "resolve_login", "LoginTarget", "TokenResponse",
    "resolve_settings", "Settings", "query_df", "query_arrow", "query_to_parquet", "BulkQueryNotSupported",
    "RedactingFilter",
    # errors.py: the module and its exceptions
    "errors", "SfJwtError", "ConfigurationError", "PrivateKeyError", "KeyFilePermissionWarning",
    "AuthenticationError", "ConsumerNotApprovedError", "AppAccessError", "InvalidClientIdError", "AppNotInstalledError",
    "AudienceInvalidError", "InvalidAssertionError", "AssertionExpiredError", "InactiveUserError", "UnknownUserError",
    "LoginRestrictedError", "LoginRateExceededError", "UnsupportedGrantTypeError", "TokenEndpointUnavailable",
    "SessionRefusedError", "SoapJwtTokenError", "RequestNotReplayable",
]

# the module of each public name not in errors.py
_DEFINED_IN = {
    "connect_jwt": "client", "SalesforceJWT": "client", "clear_cache": "client",
    "resolve_login": "auth.target", "LoginTarget": "auth.target", "TokenResponse": "auth.token_client",
    "resolve_settings": "config", "Settings": "config", "RedactingFilter": "_internal.redact",
    "query_df": "data.dataframe", "query_arrow": "data.dataframe", "query_to_parquet": "data.dataframe",
    "BulkQueryNotSupported": "data.dataframe",
}
# public name -> module that defines it ("errors": the module itself)
_EXPORTS = {name: _DEFINED_IN.get(name, "errors") for name in __all__ if name != "__version__"}


def __getattr__(name: str) -> Any:
    try:
        module_name = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'sfjwt_ext' has no attribute {name!r}") from None
    module = importlib.import_module(f".{module_name}", __name__)
    value = module if name == module_name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import errors
    from ._internal.redact import RedactingFilter
    from .auth.target import LoginTarget, resolve_login
    from .auth.token_client import TokenResponse
    from .client import SalesforceJWT, clear_cache, connect_jwt
    from .config import Settings, resolve_settings
    from .data.dataframe import BulkQueryNotSupported, query_arrow, query_df, query_to_parquet
    from .errors import *  # noqa: F403 - its exceptions (the public ones are named in __all__)
