"""OpenVINO's own runtime against ONNX Runtime's OpenVINO execution provider, on the shipped ONNX files.

`onnxruntime-openvino` replaces the `onnxruntime` package, so it lives in a virtual environment of its own;
this script times one path per process and runs the two paths alternately, three rounds each:

    python3 -m venv /tmp/ov-ep && /tmp/ov-ep/bin/pip install onnxruntime-openvino numpy
    python3 benchmarks/openvino_paths.py --ep-python /tmp/ov-ep/bin/python \\
        --json benchmarks/results-openvino-paths-xeon-2core.json

Batch 1, one thread, median of 200 runs after 20 warm-up, f32 and bf16 inference precision on each path,
and ONNX Runtime's own CPU provider as the baseline (from the execution provider's environment, which has it).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("cifar_cnn_best", "resnet18_cifar")
RUNS, WARMUP, ROUNDS = 200, 20, 3


def _median_ms(call) -> float:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def time_openvino(onnx: str, precision: str) -> float:
    import numpy as np
    import openvino

    core = openvino.Core()
    model = core.read_model(onnx)
    model.reshape([1, *list(model.input(0).get_partial_shape().get_min_shape())[1:]])
    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 1}
    request = core.compile_model(model, "CPU", config).create_infer_request()
    x = np.random.default_rng(0).standard_normal(tuple(model.input(0).get_shape()), dtype=np.float32)
    request.set_input_tensor(openvino.Tensor(x, shared_memory=True))
    return _median_ms(request.infer)


def time_onnxruntime(onnx: str, provider: str, precision: str) -> float:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_free_dimension_override_by_name(ort.InferenceSession(onnx).get_inputs()[0].shape[0], 1)
    if provider == "openvino":
        config = json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}})
        providers = [
            ("OpenVINOExecutionProvider", {"device_type": "CPU", "num_of_threads": "1", "load_config": config})
        ]
    else:
        providers = ["CPUExecutionProvider"]
    session = ort.InferenceSession(onnx, options, providers=providers)
    shape = [1, *session.get_inputs()[0].shape[1:]]
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    name = session.get_inputs()[0].name
    return _median_ms(lambda: session.run(None, {name: x}))


def one_path(path: str) -> dict[str, float]:
    """Medians (ms) for every model and precision on one path, in this process."""
    manifest = json.loads((REPO / "weights" / "manifest.json").read_text())  # read directly: no zoo installed
    found = {}
    for model in MODELS:
        entry = manifest[model]
        onnx = str(REPO / "weights" / entry["tags"][entry["default"]]["onnx_file"])
        if path == "openvino":
            for precision in ("f32", "bf16"):
                found[f"{model} openvino {precision}"] = time_openvino(onnx, precision)
        else:
            found[f"{model} onnxruntime cpu fp32"] = time_onnxruntime(onnx, "cpu", "f32")
            for precision in ("f32", "bf16"):
                found[f"{model} onnxruntime-openvino-ep {precision}"] = time_onnxruntime(onnx, "openvino", precision)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", choices=("openvino", "ep"), help="time one path in this process (internal)")
    parser.add_argument("--ep-python", help="the interpreter whose environment has onnxruntime-openvino")
    parser.add_argument("--json", type=Path, help="write the record here")
    args = parser.parse_args()
    if args.path:
        print(json.dumps(one_path(args.path)))
        return
    rounds: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for python, path in ((sys.executable, "openvino"), (args.ep_python, "ep")):
            done = subprocess.run([python, __file__, "--path", path], capture_output=True, text=True, check=True)
            for key, value in json.loads(done.stdout.splitlines()[-1]).items():
                rounds.setdefault(key, []).append(value)
    versions = {
        "openvino": subprocess.run([sys.executable, "-c", "import openvino; print(openvino.__version__)"], capture_output=True, text=True).stdout.strip(),
        "onnxruntime-openvino": subprocess.run([args.ep_python, "-c", "import onnxruntime; print(onnxruntime.__version__)"], capture_output=True, text=True).stdout.strip(),
    }  # fmt: skip
    record = {
        "machine": platform.processor() or platform.machine(),
        "cpu": next((x.split(":", 1)[1].strip() for x in open("/proc/cpuinfo") if x.startswith("model name")), None),
        "versions": versions,
        "settings": {"batch": 1, "threads": 1, "runs": RUNS, "warmup": WARMUP, "rounds": ROUNDS},
        "median_ms": {key: round(statistics.median(values), 3) for key, values in rounds.items()},
        "rounds_ms": {key: [round(v, 3) for v in values] for key, values in rounds.items()},
    }
    text = json.dumps(record, indent=2) + "\n"
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
