"""The numerics, pure: config in, arrays out. No MLflow, no Dask, no files."""
