"""SOQL into a Dask DataFrame: :func:`read_soql` (``pip install 'sfjwt-ext[dask]'``).

``read_soql(soql, sf=None)`` runs ``soql`` as one Bulk API 2.0 query job, in the calling
process, and returns a lazy :class:`dask.dataframe.DataFrame` with one partition per result
page (a ``resultUrl`` of ``GET jobs/query/{id}/resultPages``, API 58.0+). Computing a
partition downloads that page on a Dask worker with the client, which travels to the
workers pickled (a :class:`~sfjwt_ext.SalesforceJWT` pickles with its token: no login on
the workers while the token is valid). The pickle is unpacked once per worker process and
shared by every partition that process computes, so a session expiry during ``compute()``
costs at most one token request per worker process (one in all with the shared token cache).

``meta`` (column names and dtypes) comes from describe through the record engine
(:mod:`sfjwt_ext.records`), exactly as :func:`sfjwt_ext.dataframe.query_df` types its
frame: ``read_soql(q).compute()`` holds the rows of ``query_df(q, bulk=True)`` with the same
columns and dtypes (each partition's index starts at 0, as with ``dd.read_csv``).

The job stays on the org after ``read_soql`` returns (its pages are downloaded whenever the
DataFrame is computed, possibly several times); Salesforce deletes query jobs and their
results on its own after seven days.

dask is imported when :func:`read_soql` runs; ``import sfjwt_ext`` never imports this module.
"""
from __future__ import annotations

import pickle
import threading
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ._fork import ProcessLocal
from .dataframe import BulkQueryNotSupported, _bulk_job_pages, _bulk_page_frame, _pandas, _typed
from .records import Column

if TYPE_CHECKING:  # pragma: no cover
    from simple_salesforce import Salesforce

__all__ = ["read_soql"]

_DASK_HINT = "pip install 'sfjwt-ext[dask]'"


class _Clients:
    """The clients unpickled in this process, by the key :class:`SharedClient` gives them:
    every partition of one ``read_soql`` computed here uses one client (one refresh)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_key: Dict[str, Any] = {}


_clients: ProcessLocal[_Clients] = ProcessLocal(_Clients)


class SharedClient:
    """A pickled client that is unpacked at most once per process (not once per task).

    Dask pickles a task's arguments with every task; unpickling a client per partition
    would give each partition its own session, and after an expiry each would log in again.
    This wrapper carries the client's pickle and a key; :meth:`get` unpickles it the first
    time in a process and hands the same client to every later caller there.
    """

    __slots__ = ("key", "_payload", "_local")

    def __init__(self, sf: Any, key: Optional[str] = None, payload: Optional[bytes] = None) -> None:
        self.key = key or uuid.uuid4().hex
        self._payload = payload  # made on the first pickling (a threaded scheduler never pickles)
        self._local = sf  # the caller's own client: used as is in the caller's process

    def __reduce__(self) -> Tuple[Any, Tuple[None, str, bytes]]:
        if self._payload is None:
            self._payload = _dumps(self._local)
        return (SharedClient, (None, self.key, self._payload))

    def get(self) -> Any:
        if self._local is not None:
            return self._local
        clients = _clients.get()
        with clients.lock:
            sf = clients.by_key.get(self.key)
            if sf is None:
                assert self._payload is not None  # an unpickled SharedClient always has one
                sf = clients.by_key[self.key] = pickle.loads(self._payload)  # noqa: S301 - our own pickle
        return sf

    def __dask_tokenize__(self) -> str:  # dask names the graph by this, not by pickling the client
        return self.key

    def __repr__(self) -> str:
        return f"SharedClient(key={self.key!r})"  # never the payload: it holds a token


def _dumps(sf: Any) -> bytes:
    try:
        return pickle.dumps(sf)
    except (TypeError, AttributeError, pickle.PicklingError) as exc:
        raise TypeError(f"read_soql needs a client that pickles, to send it to the Dask workers "
                        f"({type(exc).__name__}: {exc}); use sfjwt_ext.connect_jwt() for sf") from exc


def _page(url: str, client: SharedClient, plan: List[Column]) -> Any:
    """One partition: the result page at ``url``, typed like ``query_df``. (Not named
    ``columns``: dask passes a ``columns=`` projection to a function that takes one.)"""
    return _bulk_page_frame(client.get(), url, plan)


def _dask_dataframe() -> Any:
    try:
        import dask.dataframe as dd
    except ImportError as exc:
        raise ImportError(f"read_soql needs dask[dataframe]: {_DASK_HINT}") from exc
    return dd


def read_soql(soql: str, sf: "Optional[Salesforce]" = None, *, include_deleted: bool = False) -> Any:
    """Run ``soql`` as a Bulk API 2.0 job and return a :class:`dask.dataframe.DataFrame`
    with one partition per result page (see the module docstring).

    :param soql: a query Bulk API 2.0 can run (no aggregates, child subqueries, ``FIELDS()``,
        ``TYPEOF``, ``OFFSET`` or compound fields: :class:`BulkQueryNotSupported` otherwise).
    :param sf: the client; default ``connect_jwt()`` from the ``SF_*`` environment. It must
        pickle (a :class:`~sfjwt_ext.SalesforceJWT` does) and use API 58.0 or later.
    :param include_deleted: include deleted and archived records (``queryAll``).
    """
    dd = _dask_dataframe()
    pd = _pandas()
    if sf is None:
        from .connect import connect_jwt

        sf = connect_jwt()
    client = SharedClient(sf)
    try:
        columns, _job_id, urls = _bulk_job_pages(sf, soql, include_deleted)
    except BulkQueryNotSupported as exc:
        raise BulkQueryNotSupported(str(exc).replace("bulk=True", "read_soql").split(" Use bulk=")[0]
                                    + " Use sfjwt_ext.dataframe.query_df(sf, soql) for it.") from None
    meta = _typed(pd, pd.DataFrame(), columns)
    return dd.from_map(_page, urls, args=(client, columns), meta=meta, label="read-soql",
                       enforce_metadata=False)
