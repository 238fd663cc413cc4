"""Benchmarks for `make bench`: each prints its figures; the runner collects them."""
