"""The timing loop: warm up, then repeat a call until a minimum time has passed, and summarise the samples."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def time_calls(call: Callable[[], object], *, warmup: float, min_time: float, min_runs: int = 5) -> list[float]:
    """Seconds per call, one sample per call, after `warmup` seconds (and at least two calls) of warm-up.

    `call` must finish its work before returning (a GPU runner synchronises), so each sample is a true latency.
    """
    start = time.perf_counter()
    calls = 0
    # Warm-up lets allocators, caches, lazy initialisation, autotuning and CPU frequency settle;
    # the first calls of every runtime are many times slower than the steady state.
    while calls < 2 or time.perf_counter() - start < warmup:
        call()
        calls += 1
    samples: list[float] = []
    begin = time.perf_counter()
    while len(samples) < min_runs or time.perf_counter() - begin < min_time:
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return samples


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of already sorted values."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def latency_stats_ms(samples: list[float]) -> dict[str, float]:
    """mean, std, p50, p90, p99, min in milliseconds, plus the number of timed runs."""
    ms = sorted(s * 1000 for s in samples)
    return {
        "mean": statistics.fmean(ms),
        "std": statistics.stdev(ms) if len(ms) > 1 else 0.0,
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "min": ms[0],
        "runs": len(ms),
    }
