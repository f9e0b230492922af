"""Query results as rows, DataFrames, Arrow, Parquet and Dask (pandas/pyarrow/dask lazily)."""
