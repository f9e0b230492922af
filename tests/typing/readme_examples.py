"""The README's examples as a user's script: CI runs `mypy --strict` on it (with the package),
so what users type first type-checks. Never collected by pytest (no test_ prefix), never run."""
from __future__ import annotations

import logging

from sfjwt_ext import (
    AuthenticationError,
    ConfigurationError,
    RedactingFilter,
    SalesforceJWT,
    clear_cache,
    connect_jwt,
    query_df,
    query_to_parquet,
)
from sfjwt_ext.dask import read_soql
from sfjwt_ext.testing import LocalOrg


def readme() -> None:
    sf: SalesforceJWT = connect_jwt()
    print(sf.query_all("SELECT Id, Name FROM Account")["totalSize"])
    df = sf.query_df("SELECT Name, Account.Name, Amount FROM Opportunity")
    print(df.shape)
    rows: int = sf.query_to_parquet("SELECT Id, Name, Amount FROM Opportunity", "opportunities.parquet")
    print(rows, query_to_parquet(sf, "SELECT Id FROM Account", "accounts.parquet"))
    uat = connect_jwt(profile="uat", timeout=(5, 60))
    print(uat.sf_instance, len(query_df(uat, "SELECT Id FROM Account")))
    try:
        connect_jwt(username="me@example.com", consumer_key="3MVG9...", private_key_file="server.key",
                    domain="test")
    except (AuthenticationError, ConfigurationError) as exc:
        print(exc)
    print(read_soql("SELECT Id FROM Account", sf).npartitions)
    logging.getLogger().addFilter(RedactingFilter())
    clear_cache()


def local_org() -> None:
    with LocalOrg.with_app() as org:
        creds = org.credentials
        sf = connect_jwt(**creds.connect_kwargs())
        print(sf.query("SELECT COUNT() FROM Account")["totalSize"], creds.env()["SF_USERNAME"])
