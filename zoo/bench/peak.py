"""This machine's attainable FLOP/s: a large matrix product, the best case any model could hope for.

Measured in the worker (so the thread count is fixed before the libraries start) for each precision a
backend uses: fp32 with torch.mm (MKL / oneDNN), int8 with ONNX Runtime's MatMulInteger (the kernels the
int8 backend runs on; integer "FLOP/s" count one multiply and one add per MAC like the float ones), bf16 and
fp32 with torch.mm on a GPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from zoo.bench.measure import time_calls

CPU_SIZE = 2048  # 17 GFLOP per product: seconds-long on small CPUs, far past the caches
GPU_SIZE = 8192


def _best_rate(call: Callable[[], object], flops: float, seconds: float) -> float:
    samples = time_calls(call, warmup=min(0.5, seconds / 2), min_time=seconds, min_runs=3)
    # The attainable rate is a ceiling, so the fastest run is the right statistic here.
    return flops / min(samples)


def attainable_flops(device: str, precision: str, threads: int | None, seconds: float = 1.0) -> float:
    """FLOP/s of an n x n x n matrix product in `precision` on `device` with the process's thread setting."""
    if device == "cpu" and precision == "int8":
        return _ort_int8_matmul_rate(threads, seconds)
    import torch

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        a = torch.randn(GPU_SIZE, GPU_SIZE, device="cuda", dtype=dtype)
        b = torch.randn_like(a)

        def gpu_product() -> object:
            out = a @ b
            torch.cuda.synchronize()
            return out

        return _best_rate(gpu_product, 2.0 * GPU_SIZE**3, seconds)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32  # bf16: AMX or AVX-512 bf16 where present
    a = torch.randn(CPU_SIZE, CPU_SIZE, dtype=dtype)
    b = torch.randn(CPU_SIZE, CPU_SIZE, dtype=dtype)
    c = torch.empty(CPU_SIZE, CPU_SIZE, dtype=dtype)
    return _best_rate(lambda: torch.mm(a, b, out=c), 2.0 * CPU_SIZE**3, seconds)


def _ort_int8_matmul_rate(threads: int | None, seconds: float) -> float:
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    n = CPU_SIZE
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-127, 127, (n, n), dtype=np.int8), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w"], ["y"])],
        "int8_peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = rng.integers(0, 255, (n, n), dtype=np.uint8)
    binding = session.io_binding()
    out = np.empty((n, n), np.int32)
    binding.bind_cpu_input("a", a)
    binding.bind_output("y", "cpu", 0, np.int32, [n, n], out.ctypes.data)
    return _best_rate(lambda: session.run_with_iobinding(binding), 2.0 * n**3, seconds)


if __name__ == "__main__":  # quick manual check: python -m zoo.bench.peak
    start = time.perf_counter()
    print(f"fp32 {attainable_flops('cpu', 'fp32', None) / 1e9:.1f} GFLOP/s")
    print(f"int8 {attainable_flops('cpu', 'int8', None) / 1e9:.1f} GOP/s ({time.perf_counter() - start:.1f} s)")
