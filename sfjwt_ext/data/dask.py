"""SOQL into a Dask DataFrame: :func:`read_soql` (``pip install 'sfjwt-ext[dask]'``).

``read_soql(soql, sf=None)`` runs ``soql`` as one Bulk API 2.0 query job, in the calling
process (the job is created while describe plans the columns, side by side), and returns a lazy :class:`dask.dataframe.DataFrame` with one partition per result
page (a ``resultUrl`` of ``GET jobs/query/{id}/resultPages``, API 58.0+). Computing a
partition downloads that page on a Dask worker with the client, which travels to the
workers pickled (a :class:`~sfjwt_ext.SalesforceJWT` pickles with its token: no login on
the workers while the token is valid; the clients unpickled in one worker process share one
refresher), so a session expiry during ``compute()`` costs at most one token request per
worker process (one in all with the shared token cache, ``token_cache=``).

``meta`` (column names and dtypes) comes from describe through the record engine
(:mod:`sfjwt_ext.data.records`), exactly as :func:`sfjwt_ext.data.dataframe.query_df` types its
frame: ``read_soql(q).compute()`` holds the rows of ``query_df(q, bulk=True)`` with the same
columns and dtypes (each partition's index starts at 0, as with ``dd.read_csv``).

The job stays on the org after ``read_soql`` returns (its pages are downloaded whenever the
DataFrame is computed, possibly several times); Salesforce deletes query jobs and their
results on its own after seven days.

dask is imported when :func:`read_soql` runs; ``import sfjwt_ext`` never imports this module.
"""
from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Optional

from ..client import connect_jwt
from .dataframe import BulkQueryNotSupported, _bulk_job_pages, _bulk_page_frame, _pandas, _typed

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe
    from simple_salesforce.api import Salesforce

__all__ = ["read_soql"]

def read_soql(soql: str, sf: "Optional[Salesforce]" = None, *,
              include_deleted: bool = False) -> "dask.dataframe.DataFrame":
    """Run ``soql`` as a Bulk API 2.0 job and return a :class:`dask.dataframe.DataFrame`
    with one partition per result page (see the module docstring).

    :param soql: a query Bulk API 2.0 can run (no aggregates, child subqueries, ``FIELDS()``,
        ``TYPEOF``, ``OFFSET`` or compound fields: :class:`BulkQueryNotSupported` otherwise).
    :param sf: the client; default ``connect_jwt()`` from the ``SF_*`` environment. It must
        pickle (a :class:`~sfjwt_ext.SalesforceJWT` does) and use API 58.0 or later.
    :param include_deleted: include deleted and archived records (``queryAll``).
    """
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:
        raise ImportError("read_soql needs dask[dataframe]: pip install 'sfjwt-ext[dask]'") from exc
    pd = _pandas()
    if sf is None:
        sf = connect_jwt()
    try:  # before the job runs, not in the middle of compute()
        pickle.dumps(sf)
    except (TypeError, AttributeError, pickle.PicklingError) as exc:
        raise TypeError(f"read_soql sends the client to the Dask workers, and this one does not pickle "
                        f"({type(exc).__name__}: {exc}); use sfjwt_ext.connect_jwt() for sf") from exc
    try:
        columns, _job_id, urls = _bulk_job_pages(sf, soql, include_deleted)
    except BulkQueryNotSupported as exc:
        raise BulkQueryNotSupported(str(exc).replace("bulk=True", "read_soql").split(" Use bulk=")[0]
                                    + " Use sfjwt_ext.data.dataframe.query_df(sf, soql) for it.") from None
    meta = _typed(pd, pd.DataFrame(), columns)
    # Dask's "convert-string" (on by default) would turn query_df's string columns into
    # string[pyarrow] under pandas 2: the frame keeps exactly query_df's dtypes instead.
    with dask.config.set({"dataframe.convert-string": False}):
        # dask's from_map has no type hints
        frame: "dask.dataframe.DataFrame" = dd.from_map(  # type: ignore[no-untyped-call]
            _bulk_page_frame, urls, args=(sf, columns), meta=meta, label="read-soql", enforce_metadata=False)
    return frame
