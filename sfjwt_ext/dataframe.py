"""The documented path of the DataFrame helpers; they live in :mod:`sfjwt_ext.data.dataframe`."""
from __future__ import annotations

from .data.dataframe import (
    BULK_AUTO_THRESHOLD, BULK_PARALLEL, BULK_PART_RECORDS, STREAM_ROWS, BulkQueryNotSupported, query_arrow, query_df,
    query_to_parquet,
)

__all__ = [
    "BULK_AUTO_THRESHOLD", "BULK_PART_RECORDS", "BULK_PARALLEL", "STREAM_ROWS", "BulkQueryNotSupported",
    "query_df", "query_arrow", "query_to_parquet",
]
