"""Benchmarks: latency, throughput, accuracy and fraction of attainable FLOP/s across PyTorch and ONNX Runtime.

`zoo.benchmark(...)` plans the jobs; each (model, backend, threads) runs in its own `zoo.bench.worker`
process; `zoo.bench.report` renders the Rich table, JSON, CSV and the latency plot.
"""

from zoo.bench.backends import BACKENDS
from zoo.bench.run import DEFAULT_BACKENDS, DEFAULT_BATCH_SIZES, BenchmarkResult, benchmark

__all__ = ["BACKENDS", "DEFAULT_BACKENDS", "DEFAULT_BATCH_SIZES", "BenchmarkResult", "benchmark"]
