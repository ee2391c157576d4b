"""Tables and plots of finished runs and sweeps: `python -m mia_bench.report DIR`."""
