"""Benchmarks of django-pinterest-capi: run them all with ``make bench`` (see README)."""
