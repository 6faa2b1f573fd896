"""The inference backends a benchmark compares, each tuned the way one would deploy it.

A backend turns a model into a *runner* inside the worker process. A runner answers two questions:
`bind(inputs)` returns a zero-argument call that runs one batch on pre-allocated inputs and outputs (what is
timed), and `predict(inputs)` returns logits (what the accuracy check uses). Only the worker imports torch and
onnxruntime; `unavailable()` is cheap enough for the parent to decide what to skip.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# Batches up to this size replay a captured CUDA graph: launch overhead dominates there.
CUDA_GRAPH_MAX_BATCH = 16


@dataclass(frozen=True)
class Backend:
    name: str  # the --backends spelling
    device: str  # "cpu" or "cuda"
    precision: str  # "fp32", "int8" or "bf16": which attainable FLOP/s it is compared with
    onnx: str | None  # None, or which ONNX file it runs: "fp32" or "int8"
    description: str


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("torch", "cpu", "fp32", None, "PyTorch eager, inference_mode (the baseline)"),
        Backend("torch-compile", "cpu", "fp32", None, "torch.compile (Inductor, frozen weights), channels-last"),
        Backend("onnxruntime", "cpu", "fp32", "fp32", "ONNX Runtime CPU, all graph optimisations, I/O binding"),
        Backend("onnxruntime-int8", "cpu", "int8", "int8", "ONNX Runtime CPU, int8 QDQ model, I/O binding"),
        Backend("torch-cuda", "cuda", "fp32", None, "PyTorch CUDA fp32, channels-last, CUDA graphs at small batch"),
        Backend(
            "torch-cuda-bf16", "cuda", "bf16", None, "PyTorch CUDA bf16, channels-last, CUDA graphs at small batch"
        ),
        Backend("onnxruntime-cuda", "cuda", "fp32", "fp32", "ONNX Runtime CUDA, I/O binding on the device"),
        # OpenVINO reads the same fp32 ONNX file; "bf16" is its inference precision, chosen at compile time.
        Backend("openvino", "cpu", "fp32", "fp32", "OpenVINO CPU, f32 inference precision, static batch"),
        Backend("openvino-bf16", "cpu", "bf16", "fp32", "OpenVINO CPU, bf16 inference precision, static batch"),
    )
}
OPENVINO_EXTRA = 'needs OpenVINO: python3 -m pip install "zoo-classifiers[openvino]"'


def is_openvino(backend: Backend) -> bool:
    return backend.name.startswith("openvino")


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


@cache
def cuda_available() -> bool:
    if not torch_installed():
        return False
    import torch

    return torch.cuda.is_available()


def unavailable(backend: Backend, shipped_onnx: bool = False) -> str | None:
    """Why `backend` cannot run on this machine, or None when it can. `shipped_onnx`: the model's validated
    fp32 file ships beside its weights, so the fp32 ONNX Runtime backend needs no exporter (hence no torch)."""
    needs_torch = backend.onnx is None or not (backend.onnx == "fp32" and shipped_onnx)
    if needs_torch and not torch_installed():
        return 'needs torch: python3 -m pip install "zoo-classifiers[torch]"'
    if backend.device == "cuda" and not cuda_available():
        return "no CUDA GPU"
    if is_openvino(backend):
        return _openvino_unavailable(backend.precision) or (
            "onnx is not installed (the exporter needs it)"
            if needs_torch and importlib.util.find_spec("onnx") is None
            else None
        )
    if backend.onnx is not None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed"
        import onnxruntime

        provider = "CUDAExecutionProvider" if backend.device == "cuda" else "CPUExecutionProvider"
        if provider not in onnxruntime.get_available_providers():
            return f"onnxruntime has no {provider}"
        if needs_torch and importlib.util.find_spec("onnx") is None:
            return "onnx is not installed (the exporter needs it)"
    if backend.name == "torch-compile" and not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        return "torch.compile on CPU needs a C++ compiler and none is on PATH"
    return None


@cache
def _openvino_unavailable(precision: str) -> str | None:
    if importlib.util.find_spec("openvino") is None:
        return OPENVINO_EXTRA
    if precision == "bf16":
        import openvino

        # Without native bf16 (AVX-512 bf16 or AMX) OpenVINO would emulate it: slower, so not worth a row.
        if "BF16" not in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            return "this CPU has no native bf16 (AVX-512 bf16 or AMX); OpenVINO would only emulate it"
    return None


# ----------------------------------------------------------------------------------------------------------
# Runners; everything below runs in the worker process only.


def _is_convolutional(model: Any) -> bool:
    import torch

    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


class TorchRunner:
    """Eager PyTorch, or a torch.compile'd module, on the CPU."""

    def __init__(self, model: Any, compile: bool) -> None:
        import torch

        self.torch = torch
        self.channels_last = compile and _is_convolutional(model)
        if self.channels_last:
            # oneDNN's convolutions are fastest on NHWC; Inductor then keeps the whole graph channels-last.
            model = model.to(memory_format=torch.channels_last)
        if compile:
            import torch._inductor.config as inductor

            # Freezing folds batch norms into convolutions and pre-packs weights for oneDNN: the
            # recommended setting for CPU inference, worth 1.5-2x on small CNNs.
            inductor.freezing = True
            for limit in ("recompile_limit", "cache_size_limit"):  # renamed across torch versions
                if hasattr(torch._dynamo.config, limit):
                    setattr(torch._dynamo.config, limit, 64)
            model = torch.compile(model, dynamic=False)
        self.model = model
        # Freezing needs no_grad rather than inference_mode; both skip autograd bookkeeping.
        self.grad_off = torch.no_grad if compile else torch.inference_mode

    def _prepare(self, inputs: Any) -> Any:
        x = self.torch.as_tensor(inputs)
        return x.contiguous(memory_format=self.torch.channels_last) if self.channels_last else x.contiguous()

    def bind(self, inputs: Any) -> Callable[[], object]:
        x = self._prepare(inputs)

        def call() -> object:
            with self.grad_off():
                return self.model(x)

        return call

    def predict(self, inputs: Any) -> Any:
        with self.grad_off():
            return self.model(self._prepare(inputs)).float().numpy()


class TorchCudaRunner:
    """PyTorch on a CUDA GPU: channels-last, optional bf16, CUDA graphs for small batches. Inputs live on the GPU."""

    def __init__(self, model: Any, dtype: str) -> None:
        import torch

        self.torch = torch
        self.dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
        # Honest fp32: no TF32 shortcut in the fp32 rows.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True  # pick the fastest convolution algorithm per shape
        self.model = model.to("cuda", dtype=self.dtype).to(memory_format=torch.channels_last)

    def _to_device(self, inputs: Any) -> Any:
        x = self.torch.as_tensor(inputs).to("cuda", dtype=self.dtype)
        return x.contiguous(memory_format=self.torch.channels_last)

    def bind(self, inputs: Any) -> Callable[[], object]:
        torch = self.torch
        static = self._to_device(inputs)
        if len(static) > CUDA_GRAPH_MAX_BATCH:

            def call() -> object:
                with torch.inference_mode():
                    out = self.model(static)
                torch.cuda.synchronize()
                return out

            return call
        # Capture once, replay many times: a whole forward pass becomes one launch.
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(3):
                self.model(static)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            output = self.model(static)

        def replay() -> object:
            graph.replay()
            torch.cuda.synchronize()
            return output

        return replay

    def predict(self, inputs: Any) -> Any:
        with self.torch.inference_mode():
            return self.model(self._to_device(inputs)).float().cpu().numpy()


class OrtRunner:
    """ONNX Runtime with tuned session options and I/O binding, on the CPU or on a CUDA GPU."""

    def __init__(self, onnx_path: Path, device: str, threads: int | None) -> None:
        import onnxruntime as ort

        self.ort = ort
        self.path = str(onnx_path)
        self.device = device
        self.threads = threads
        probe = ort.InferenceSession(self.path, providers=["CPUExecutionProvider"])
        self.input_name = probe.get_inputs()[0].name
        self.output_name = probe.get_outputs()[0].name
        batch_dim = probe.get_inputs()[0].shape[0]
        self.batch_param = batch_dim if isinstance(batch_dim, str) else None  # the name of the dynamic batch axis
        self.sessions: dict[tuple[int | None, int | None], Any] = {}
        self.lane_sessions: dict[tuple[int, int], Any] = {}
        self.pools: list[Any] = []
        self.buffers: list[tuple[Any, Any]] = []
        self.plan: str | None = None

    def session_copy(self, batch_size: int, lane: int) -> Any:
        """A single-threaded session private to one data-parallel lane."""
        key = (batch_size, lane)
        if key not in self.lane_sessions:
            self.sessions.pop((batch_size, 1), None)
            self.lane_sessions[key] = self.session(batch_size, 1)
            self.sessions.pop((batch_size, 1), None)
        return self.lane_sessions[key]

    def session(self, batch_size: int | None, threads: int | None = None) -> Any:
        """One session per (batch size, threads): fixing the batch axis lets the optimiser plan static shapes
        and memory."""
        threads = threads or self.threads
        key = (batch_size, threads)
        if key in self.sessions:
            return self.sessions[key]
        ort = self.ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # fusions + NCHWc layouts
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # these graphs are chains: nothing to overlap
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        # Spinning workers pick up the next operator without a wake-up; it costs idle CPU, not latency.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        options.log_severity_level = 3
        if batch_size is not None and self.batch_param:
            options.add_free_dimension_override_by_name(self.batch_param, batch_size)
        if self.device == "cuda":
            providers = [
                ("CUDAExecutionProvider", {"device_id": 0, "cudnn_conv_algo_search": "EXHAUSTIVE"}),
                "CPUExecutionProvider",
            ]
        else:
            providers = ["CPUExecutionProvider"]
        session = ort.InferenceSession(self.path, options, providers=providers)
        self.sessions[key] = session
        return session

    def bind(self, inputs: Any) -> Callable[[], object]:
        import numpy as np

        x = np.ascontiguousarray(np.asarray(inputs, dtype=np.float32))
        if self.device == "cuda":
            return self._bind_cuda(x)
        probe = self.session(len(x)).run([self.output_name], {self.input_name: x[:1] if len(x) == 1 else x})[0]
        y = np.empty_like(probe)  # pre-allocated output, written in place by every call
        plans = self._plans(len(x))
        if len(plans) == 1:
            self.plan = plans[0].describe()
            return plans[0].call(x, y)
        # Large batches: pick the fastest way to split the batch, timed on a part of it (like cudnn.benchmark).
        timed = [(plan.estimate(x, y), plan) for plan in plans]
        best = min(timed, key=lambda pair: pair[0])[1]
        self.plan = best.describe()
        return best.call(x, y)

    def _plans(self, batch: int) -> list[_CpuPlan]:
        threads = self.threads or 1
        plans = [_CpuPlan(self, batch, batch, 1)]
        if batch >= 64:
            # Micro-batches keep activations in the L2 cache; on 2 cores a large batch of a small CNN streams
            # every layer's activations through memory otherwise.
            plans.append(_CpuPlan(self, batch, 32, 1))
        if threads > 1 and batch >= 2 * threads:
            # Data parallelism: one single-threaded session per core, each on its share of the batch; small
            # layers parallelise poorly inside an operator, whole images parallelise perfectly.
            plans.append(_CpuPlan(self, batch, -(-batch // threads), threads))
            if batch >= 64 * threads:
                plans.append(_CpuPlan(self, batch, 32, threads))
        return plans

    def _bind_cuda(self, x: Any) -> Callable[[], object]:
        session = self.session(len(x))
        binding = session.io_binding()
        # Input and output stay on the GPU: the timing measures the model, not PCIe copies.
        x_device = self.ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
        binding.bind_ortvalue_input(self.input_name, x_device)
        binding.bind_output(self.output_name, "cuda", 0)
        session.run_with_iobinding(binding)  # allocates the output once, then it is reused
        output = binding.get_outputs()[0]
        binding.bind_ortvalue_output(self.output_name, output)
        self.plan = "I/O binding on device"

        def call() -> object:
            session.run_with_iobinding(binding)
            binding.synchronize_outputs()
            return output

        return call

    def predict(self, inputs: Any) -> Any:
        import numpy as np

        x = np.ascontiguousarray(np.asarray(inputs, dtype=np.float32))
        return self.session(len(x)).run([self.output_name], {self.input_name: x})[0]


class _CpuPlan:
    """How one CPU call covers a batch: chunks of `chunk` images, spread over `workers` single-threaded sessions
    (or, with one worker, one session using all the threads). Every chunk is bound by I/O binding to its slice
    of the pre-allocated input and output arrays, so nothing is copied or allocated per call."""

    def __init__(self, runner: OrtRunner, batch: int, chunk: int, workers: int) -> None:
        self.runner, self.batch, self.chunk, self.workers = runner, batch, min(chunk, batch), workers

    def describe(self) -> str:
        if self.workers > 1:
            return f"{self.workers} sessions x 1 thread, chunks of {self.chunk}"
        return "whole batch" if self.chunk == self.batch else f"micro-batches of {self.chunk}"

    def _bindings(self, x: Any, y: Any, starts: list[int]) -> list[list[tuple[Any, Any]]]:
        import numpy as np

        runner = self.runner
        threads = 1 if self.workers > 1 else runner.threads
        lanes: list[list[tuple[Any, Any]]] = [[] for _ in range(self.workers)]
        for index, start in enumerate(starts):
            size = min(self.chunk, self.batch - start)
            session = runner.session(size, threads) if self.workers == 1 else runner.session(size, 1)
            if self.workers > 1:
                # Each lane needs its own session: one session's run() calls share its thread pool.
                session = runner.session_copy(size, index % self.workers)
            binding = session.io_binding()
            binding.bind_cpu_input(runner.input_name, x[start : start + size])
            out = y[start : start + size]
            binding.bind_output(runner.output_name, "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
            lanes[index % self.workers].append((session, binding))
        return lanes

    def call(self, x: Any, y: Any, starts: list[int] | None = None) -> Callable[[], object]:
        lanes = self._bindings(x, y, starts if starts is not None else list(range(0, self.batch, self.chunk)))
        # The bindings hold raw pointers into x and y: they must outlive every call.
        self.runner.buffers.append((x, y))

        def run_lane(lane: list[tuple[Any, Any]]) -> None:
            for session, binding in lane:
                session.run_with_iobinding(binding)

        if self.workers == 1:
            return lambda: run_lane(lanes[0])
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(self.workers)  # ONNX Runtime releases the GIL while it computes
        self.runner.pools.append(pool)
        return lambda: list(pool.map(run_lane, lanes))

    def estimate(self, x: Any, y: Any) -> float:
        """Seconds per image, from one chunk per worker (the whole batch for the whole-batch plan)."""
        starts = [i * self.chunk for i in range(min(self.workers, -(-self.batch // self.chunk)))]
        call = self.call(x, y, starts)
        call()  # warm-up: first runs allocate and pick kernels
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            call()
            best = min(best, time.perf_counter() - t0)
        images = sum(min(self.chunk, self.batch - s) for s in starts)
        return best / images


class OpenVinoRunner:
    """OpenVINO's own runtime on the ONNX file: one model compiled per batch size with that batch fixed (as
    ONNX Runtime's sessions are), the inference precision pinned (f32 or bf16), the latency hint, and one
    infer request whose input tensor shares the caller's array."""

    def __init__(self, onnx_path: Path, threads: int | None, precision: str) -> None:
        import openvino

        self.ov = openvino
        self.core = openvino.Core()
        self.model = self.core.read_model(str(onnx_path))
        self.config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = threads
        self.compiled: dict[int, Any] = {}
        self.plan = f"{self.config['INFERENCE_PRECISION_HINT']}, latency hint"

    def compiled_for(self, batch_size: int) -> Any:
        if batch_size not in self.compiled:
            model = self.model.clone()
            shape = list(model.input(0).get_partial_shape().get_min_shape())
            model.reshape([batch_size, *shape[1:]])
            self.compiled[batch_size] = self.core.compile_model(model, "CPU", self.config)
        return self.compiled[batch_size]

    def bind(self, inputs: Any) -> Callable[[], object]:
        import numpy as np

        x = np.ascontiguousarray(np.asarray(inputs, dtype=np.float32))
        request = self.compiled_for(len(x)).create_infer_request()
        request.set_input_tensor(self.ov.Tensor(x, shared_memory=True))
        self.buffers = (x, request)  # the tensor points into x: both must outlive every call
        return request.infer

    def predict(self, inputs: Any) -> Any:
        import numpy as np

        x = np.ascontiguousarray(np.asarray(inputs, dtype=np.float32))
        return np.asarray(self.compiled_for(len(x))(x)[0], dtype=np.float32)


def make_runner(backend: Backend, model: Any, threads: int | None, onnx_path: Path | None) -> Any:
    if backend.name in ("torch", "torch-compile"):
        return TorchRunner(model, compile=backend.name == "torch-compile")
    if backend.name in ("torch-cuda", "torch-cuda-bf16"):
        return TorchCudaRunner(model, backend.precision)
    if is_openvino(backend):
        assert onnx_path is not None
        return OpenVinoRunner(onnx_path, threads, backend.precision)
    if backend.onnx is not None:
        assert onnx_path is not None
        return OrtRunner(onnx_path, backend.device, threads)
    raise ValueError(f"no runner for backend {backend.name!r}")
