"""pytest plugin (``pytest11`` entry point ``sfjwt_ext``): fixtures for the local org.

``salesforce_org``
    function scope: a started ``LocalOrg`` with one External Client App and one approved user whose
    key is written under ``tmp_path / "salesforce-org"``; ``salesforce_org.credentials`` is their
    ``OrgCredentials``. Stopped after the test.
``salesforce_credentials``
    the same ``OrgCredentials`` (requests ``salesforce_org``).

Loaded for every pytest run in an environment where sfjwt-ext is installed, so importing
this module imports nothing but pytest: the org is imported inside the fixtures.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from .org import LocalOrg, OrgCredentials


@pytest.fixture
def salesforce_org(tmp_path: "Path") -> Iterator["LocalOrg"]:
    """A fresh local Salesforce org (sfjwt_ext.testing.LocalOrg) on 127.0.0.1 over HTTPS, with
    one External Client App and one approved user whose key is on disk; ``.credentials`` holds them."""
    from .org import LocalOrg

    org = LocalOrg()
    org.start()
    try:
        folder = tmp_path / "salesforce-org"  # a subfolder: the test keeps tmp_path itself to use
        org.credentials = org.new_app_with_key(folder, username="user@example.com")
        yield org
    finally:
        org.stop()


@pytest.fixture
def salesforce_credentials(salesforce_org: "LocalOrg") -> "OrgCredentials":
    """The OrgCredentials of ``salesforce_org`` (connect_kwargs() for connect_jwt, env() for SF_*)."""
    return salesforce_org.credentials
