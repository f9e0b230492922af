"""The documented path of :func:`read_soql`; it lives in :mod:`sfjwt_ext.data.dask`."""
from __future__ import annotations

from .data.dask import read_soql

__all__ = ["read_soql"]
