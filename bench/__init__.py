"""Benchmarks: `make bench` (`python -m bench`) measures the service against baselines run
in the same session on the same machine and writes bench/RESULTS.md."""
