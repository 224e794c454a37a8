"""Orchestration: the command line, the run lifecycle, sweeps and grids, the Dask engine."""
