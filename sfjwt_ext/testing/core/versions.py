"""The API versions of the local org's REST family (REST, Tooling, Composite, search, Bulk 2.0):
which are served, which are retired (410 GONE), and URLs rewritten to the request's version."""
from __future__ import annotations

import re
from typing import Any, Optional

from .http import HTTPError, Request, Response, json_response

__all__ = ["OLDEST_VERSION", "check_version", "retired_version", "version_label", "with_api_version"]


#: versions below this were retired (7.0-20.0 in Summer '22, 21.0-30.0 in Summer '25): REST answers 410
OLDEST_VERSION = 31.0



_ANY_VERSION = re.compile(r"/services/data/v(\d+(?:\.\d+)?)(?:/.*)?")



def version_label(version: str) -> str:
    """The release of an API version: 62.0 -> "Winter '25"."""
    v = int(float(version))
    k = 62 - v
    season = ("Winter", "Summer", "Spring")[k % 3]
    year = 25 - (k + 2) // 3
    return f"{season} '{year:02d}"



def retired_version(request: Request) -> Optional[Response]:
    """410 GONE for any ``/services/data/vXX.X/...`` of a retired version (a Router guard)."""
    match = _ANY_VERSION.fullmatch(request.path)
    if match is None or float(match.group(1)) >= OLDEST_VERSION:
        return None
    return json_response([{"errorCode": "GONE", "message": f"API version {match.group(1)} is retired and no longer "
                                                          f"available; use {OLDEST_VERSION} or later"}], status=410)



def check_version(version: str, newest: str) -> str:
    """``version`` if the org serves it (``newest``: its newest); NOT_FOUND (404) otherwise."""
    if not OLDEST_VERSION <= float(version) <= float(newest):
        raise HTTPError(json_response([{"errorCode": "NOT_FOUND",
                                        "message": "The requested resource does not exist"}], status=404))
    return version



def with_api_version(data: Any, stored: str, version: str) -> Any:
    """``data`` (records or a describe body) with every ``/services/data/v<stored>/`` URL
    naming ``version`` instead: Salesforce writes ``attributes.url`` and describe's ``urls`` in
    the API version of the request. Changes the dicts in place (they are built per request)."""
    if version == stored:
        return data
    old, new = f"/services/data/v{stored}/", f"/services/data/v{version}/"

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return new + value[len(old):] if value.startswith(old) else value
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, (str, dict, list)):
                    value[key] = fix(item)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, (str, dict, list)):
                    value[i] = fix(item)
        return value

    return fix(data)
