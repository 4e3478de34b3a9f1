"""Benchmarks run by ``make bench`` (``pytest tests/benchmarks -s``), never by ``make test``."""
