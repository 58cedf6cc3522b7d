"""Benchmarks of driftgate's fit: threshold quality (``bench/quality.py``) and speed (``bench/perf.py``)."""
