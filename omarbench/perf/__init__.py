"""Performance benchmarks (``nox -s bench`` / ``python -m omarbench.perf [NAME ...]``).

Every module here with a ``run(quick: bool) -> None`` function is one benchmark. Each measures
omarbench against a baseline in the same process and prints the ratio; none asserts a time.
"""

import statistics
import time
from collections.abc import Callable, Mapping


def interleaved_median_ms(fns: Mapping[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median wall time (ms) of each function, the functions called in turn ``reps`` times, so that a
    change in machine load hits all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for key, f in fns.items():
            t = time.perf_counter()
            f()
            times[key].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}
