"""Reduced-precision variants of a validated fp32 graph: int8 (static QDQ) and fp16 weights."""

from __future__ import annotations

import contextlib
import logging
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from zoo.core.device import cpu_info
from zoo.export.metadata import INPUT_NAME

# Allowed test-accuracy drop (fraction) against the PyTorch fp32 model; they cannot meet the fp32 bar of
# max |Δlogit| <= 1e-4, so they promise accuracy instead and report the rest.
MAX_ACCURACY_DROP = {"int8": 0.01, "fp16": 0.002}


def x86_without_vnni() -> bool:
    """True on an x86-64 CPU without VNNI (AVX-512 VNNI or AVX-VNNI), where ONNX Runtime's U8S8 kernels can
    saturate (its quantization docs) and int8 weights must use 7 bits (`reduce_range`)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    flags = cpu_info()["all_flags"]
    if not flags:
        return True  # cannot tell: the safe choice, at a small cost in precision
    return "avx512_vnni" not in flags and "avx_vnni" not in flags


def quantize_int8(
    fp32: onnx.ModelProto, calibration: np.ndarray, batch_size: int = 32, reduce_range: bool | None = None
) -> onnx.ModelProto:
    """ONNX Runtime static quantization: QDQ format, per-channel int8 weights, uint8 activations whose
    ranges (MinMax) are calibrated on `calibration`, normalized training images (never test images).

    `reduce_range` (default: on x86 CPUs without VNNI) keeps weights to 7 bits so that the U8S8 kernels of
    such CPUs cannot saturate; the export is validated on the machine that makes it either way."""
    if reduce_range is None:
        reduce_range = x86_without_vnni()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([calibration[i : i + batch_size] for i in range(0, len(calibration), batch_size)])

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch)}

    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, target = Path(tmp, "fp32.onnx"), Path(tmp, "prepared.onnx"), Path(tmp, "int8.onnx")
        onnx.save(fp32, source)
        # Shape inference and graph clean-up first, as ONNX Runtime recommends: it lets the quantizer
        # see every tensor's shape and fold batch norms it would otherwise quantize separately.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        with _per_tensor_fallback_quiet():
            quantize_static(
                str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=reduce_range,
            )  # fmt: skip
        return onnx.load(str(target))


@contextlib.contextmanager
def _per_tensor_fallback_quiet() -> Iterator[None]:
    """Drop the quantizer's "Axis 1 is out-of-range for weight ... with rank 1" lines: per-channel quantization
    of a 1-D weight (an MLP's batch-norm scale) falls back to one scale for the tensor, which is right and
    says nothing a user can act on, yet it reached the terminal through the root logger on every export."""

    def keep(record: logging.LogRecord) -> bool:
        return "is out-of-range for weight" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def convert_fp16(fp32: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and arithmetic inside; the input and output stay float32 so callers change nothing."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(fp32, keep_io_types=True)
    # The converter appends the input/output casts at the end of the node list; the ONNX spec (and
    # onnx.checker) wants nodes in topological order.
    _sort_topologically(model.graph)
    return model


def _sort_topologically(graph: onnx.GraphProto) -> None:
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(name in available for name in n.input)]
        if not ready:
            raise ValueError("the fp16 graph has a cycle or an undefined input")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


def stored_in_float16(fp32: onnx.ModelProto, min_elements: int = 1024) -> onnx.ModelProto:
    """The same graph with every large float32 weight that is exactly a float16 number stored as float16 and
    cast back at load: half the file, the very same arithmetic (weights shipped in half precision,
    zoo.core.spec's `shipped_dtype`). Weights that half precision would change are left alone."""
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(fp32)
    graph, casts = model.graph, []
    for initializer in graph.initializer:
        if initializer.data_type != TensorProto.FLOAT or np.prod(initializer.dims) < min_elements:
            continue
        values = numpy_helper.to_array(initializer)
        half = values.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), values):
            continue
        name = initializer.name
        initializer.CopyFrom(numpy_helper.from_array(half, f"{name}.float16"))
        casts.append(helper.make_node("Cast", [f"{name}.float16"], [name], to=TensorProto.FLOAT))
    if not casts:
        return fp32
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    return model
