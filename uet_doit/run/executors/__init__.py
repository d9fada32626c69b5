"""Where attempts run: the executor seam, the local attempt, a killed run's orphans, Dask."""
