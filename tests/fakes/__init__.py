"""Fake platform servers the tests (and benchmarks) run on 127.0.0.1."""
