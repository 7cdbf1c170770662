"""Performance benchmarks (``nox -s bench`` / ``python -m omarbench.bench [NAME ...]``).

Every module here with a ``run(quick: bool) -> None`` function is one benchmark. Each measures
omarbench against a baseline in the same process and prints the ratio; none asserts a time.
"""
