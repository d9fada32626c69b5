"""Attempts on Dask.distributed workers (`uet run --executor dask`), shared filesystem or not."""
