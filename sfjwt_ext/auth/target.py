"""Where a JWT login goes: :func:`resolve_login` turns ``domain`` / ``login_url`` / ``audience``
into a :class:`LoginTarget` (the token URL and the ``aud`` claim), refusing hosts that are not login hosts."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple
from urllib.parse import urlsplit

from .._internal.urls import HOST_RE, host_of, is_loopback
from ..errors import ConfigurationError

__all__ = ["LoginTarget", "resolve_login", "LOGIN_AUDIENCE", "TEST_AUDIENCE", "TOKEN_PATH", "DEFAULT_DOMAIN"]


LOGIN_AUDIENCE = "https://login.salesforce.com"


TEST_AUDIENCE = "https://test.salesforce.com"


TOKEN_PATH = "/services/oauth2/token"


DEFAULT_DOMAIN = "login"


@dataclass(frozen=True)
class LoginTarget:
    """Where the token POST goes (``token_url``) and the ``aud`` claim to sign.

    ``host_kind`` is ``"login"``, ``"test"``, ``"my_domain"``, ``"sandbox_my_domain"`` or
    ``"other"``; ``audience_derived`` is False when the caller chose ``audience``.
    """

    token_url: str
    audience: str
    host_kind: str
    audience_derived: bool = True

    @property
    def login_url(self) -> str:
        """``scheme://host[:port]`` of the token endpoint."""
        if self.token_url.endswith(TOKEN_PATH):
            return self.token_url[: -len(TOKEN_PATH)]
        parts = urlsplit(self.token_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def host(self) -> str:
        return (urlsplit(self.token_url).hostname or "").lower()


#: The two login hosts: their host kind, which is also the ``domain=`` that names them.
_LOGIN_HOSTS = {"login.salesforce.com": "login", "test.salesforce.com": "test"}
#: The ``aud`` each Salesforce host kind signs when the caller chooses none (other hosts: their origin).
_AUDIENCES = {"login": LOGIN_AUDIENCE, "my_domain": LOGIN_AUDIENCE, "test": TEST_AUDIENCE,
              "sandbox_my_domain": TEST_AUDIENCE}


def _host_kind(host: str) -> str:
    if not host.endswith(".my.salesforce.com"):
        return _LOGIN_HOSTS.get(host, "other")
    # acme--uat names a sandbox; the xn-- that starts a punycode label does not
    if host.endswith(".sandbox.my.salesforce.com") or "--" in host.split(".", 1)[0].removeprefix("xn--"):
        return "sandbox_my_domain"
    return "my_domain"


# na123.salesforce.com, cs42, eu12, um5, usa2s, gs0: one server of many, not a login host
_INSTANCEHOST_RE = re.compile(r"^[a-z]{2,4}[0-9]{1,3}[a-z]?\.salesforce\.com$")


_MY_DOMAIN_ADVICE = ("domain='login' (production) or domain='test' (sandbox), or the org's My Domain, "
                     "e.g. domain='acme.my' (SF_DOMAIN), login_url='https://acme.my.salesforce.com' (SF_LOGIN_URL)")


def _refuse_app_host(host: str, argument: str, value: str) -> None:
    """Raise ConfigurationError when ``host`` serves an org but does not log in, naming the
    ``domain=`` to use instead."""
    if _INSTANCEHOST_RE.match(host):
        raise ConfigurationError(f"{argument}={value!r} is an instance host (one Salesforce server), not a login host: "
                                 "use " + _MY_DOMAIN_ADVICE)
    for suffix, what, has_package in _APP_HOSTS:
        if host.endswith(suffix):
            raise _app_host_error(host, f"{argument}={value!r} is {what} of an org", suffix, has_package)


def _app_host_error(host: str, said: str, suffix: str, has_package: bool) -> ConfigurationError:
    """The error for the app host ``host`` (``said``: what it is), with its My Domain when the host names it."""
    name = host.split(".", 1)[0]
    if has_package:  # acme--c, acme--uat--c: the My Domain name, then "--" and a package
        name, sep, _package = name.rpartition("--")
        name = name if sep else ""
    if not name or name in ("c", "sandbox"):
        return ConfigurationError(f"{said}, not a login host: use " + _MY_DOMAIN_ADVICE)
    domain = name + (".sandbox.my" if host.endswith(".sandbox" + suffix) else ".my")
    return ConfigurationError(f"{said}, not a login host: use domain={domain!r} (SF_DOMAIN), "
                              f"or login_url='https://{domain}.salesforce.com' (SF_LOGIN_URL)")


def _suggest_domain(host: str) -> str:
    """The shortest ``domain=`` value for ``host`` (for error messages)."""
    host = host.lower()
    if host in _LOGIN_HOSTS:
        return _LOGIN_HOSTS[host]
    if host.endswith(".my.salesforce.com"):
        return host[: -len(".salesforce.com")]
    return host


def _target_from_url(value: str, argument: str) -> Tuple[str, str]:
    """(host kind, origin) of a login URL; refuses paths, queries, bad schemes and app hosts."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"{argument}={value!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if not host:
        raise ConfigurationError(f"{argument}={value!r} has no host name: use e.g. {argument}="
                                 "'https://acme.my.salesforce.com'")
    if parts.username or parts.password:
        raise ConfigurationError(f"{argument}=... must not contain a user name or password")
    origin = f"{scheme}://{host_of(value)}"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(f"{argument}={value!r} has a path ({parts.path or '?' + parts.query!s}): give only "
                                 f"the scheme and host, e.g. {argument}={origin!r} (the token path {TOKEN_PATH} is "
                                 "added for you)")
    if scheme != "https" and not (scheme == "http" and is_loopback(host)):
        raise _scheme_error(value, argument, scheme, host, port)
    host = host[:-1] if host.endswith(".") else host  # a fully qualified name is the same host
    _refuse_app_host(host, argument, value)
    return (_host_kind(host) if scheme == "https" and port in (None, 443) else "other"), origin


def _scheme_error(value: str, argument: str, scheme: str, host: str, port: Optional[int]) -> ConfigurationError:
    """The error for a login URL that is neither https nor http to this machine."""
    if scheme != "http":
        return ConfigurationError(f"{argument}={value!r}: only https:// URLs are supported (http:// only for "
                                  f"127.0.0.1, localhost and [::1])")
    https = "https://" + (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return ConfigurationError(f"{argument}={value!r} uses plain http: the token exchange needs https:// "
                              f"(http is allowed only for 127.0.0.1, localhost and [::1]); use {argument}={https!r}")


def _target_from_domain(domain: str) -> Tuple[str, str]:
    value = domain.strip()
    if not value:
        raise ConfigurationError("domain='' is empty: use domain='login' (production), domain='test' (sandbox) or "
                                 "your My Domain, e.g. domain='acme.my' (SF_DOMAIN)")
    if "://" in value:
        return _target_from_url(value, "domain")
    if "/" in value:
        host_part, _, rest = value.partition("/")
        suggestion = _suggest_domain(host_part) if host_part else "login"
        what = "a trailing slash" if rest.strip("/") == "" else f"a path ('/{rest}')"
        raise ConfigurationError(f"domain={domain!r} has {what}: use domain={suggestion!r} (a host name only; "
                                 f"SF_DOMAIN likewise)")
    host, sep, port = value.partition(":")
    if sep and not port.isdigit():
        raise ConfigurationError(f"domain={domain!r} is not a host name: use e.g. domain='acme.my'")
    if host.endswith(".") and host.count(".") > 1:
        host = host[:-1]  # 'acme.my.salesforce.com.': the same host, fully qualified
    if "." not in host or host.lower().endswith(".my"):
        host = host + ".salesforce.com"
    if not HOST_RE.match(host):
        raise ConfigurationError(f"domain={domain!r} is not a valid host name: use 'login', 'test', 'acme.my', a full "
                                 f"host name such as 'acme.my.salesforce.com', or login_url='https://...'")
    return _target_from_url(f"https://{host}" + (f":{port}" if sep else ""), "domain")


def resolve_login(domain: Optional[str] = None, login_url: Optional[str] = None,
                  audience: Optional[str] = None) -> LoginTarget:
    """The token URL and ``aud`` for ``domain`` / ``login_url`` / ``audience`` (see the
    module docstring). Raises :class:`ConfigurationError` naming the bad value."""
    url = "" if login_url is None else str(login_url).strip()
    if url and "://" not in url:
        raise ConfigurationError(f"login_url={login_url!r} has no scheme: use login_url='https://{url.rstrip('/')}' "
                                 f"(SF_LOGIN_URL), or pass the host as domain=")
    kind, origin = _target_from_url(url, "login_url") if url else _target_from_domain(
        DEFAULT_DOMAIN if domain is None else str(domain))
    aud = "" if audience is None else str(audience).strip()
    if aud and "://" not in aud:
        raise ConfigurationError(f"audience={audience!r} must be a URL such as 'https://login.salesforce.com', "
                                 f"'https://test.salesforce.com' or an Experience Cloud site URL (SF_AUDIENCE)")
    return LoginTarget(token_url=origin + TOKEN_PATH, audience=aud or _AUDIENCES.get(kind, origin), host_kind=kind,
                       audience_derived=not aud)


# Hosts of an org that are not its login host: (suffix, what it is, first label ends in a
# "--<package>" part to drop). A sandbox's have ".sandbox" before the suffix.
_APP_HOSTS: Tuple[Tuple[str, str, bool], ...] = (
    (".lightning.force.com", "the Lightning Experience host", False),
    (".my.salesforce-setup.com", "the Setup host", False),
    (".vf.force.com", "a Visualforce host", True),
    (".visual.force.com", "a Visualforce host", True),
    (".visualforce.com", "a Visualforce host", True),
)
