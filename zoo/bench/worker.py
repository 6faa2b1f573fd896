"""One isolated measurement: `python -m zoo.bench.worker JOB.json RESULT.json`.

The parent starts one worker per (model, backend, threads), so no run inherits another's warm caches,
compiled code, thread pools or allocator state, and a crash or hang costs one row, not the benchmark.
The parent sets OMP_NUM_THREADS and friends in the environment; the libraries read them on import.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core.catalog import model_info
from zoo.core.weights import default_weights


def _set_threads(threads: int | None) -> None:
    """PyTorch's thread pools, where it is installed (ONNX Runtime's come from the session options)."""
    try:
        import torch
    except ImportError:
        return
    if threads:
        torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)  # one model at a time: no inter-op parallelism to exploit
    except RuntimeError:  # already set by an earlier parallel call; harmless
        pass


def run_peak(job: dict[str, Any]) -> dict[str, Any]:
    from zoo.bench.peak import attainable_flops

    _set_threads(job["threads"])
    return {"flops": attainable_flops(job["device"], job["precision"], job["threads"], job["seconds"])}


def _onnx_file(job: dict[str, Any], variant: str) -> Path:
    """The model's validated ONNX file: the one shipped beside the weights for the shipped weights in fp32
    (no torch needed), else exported once per benchmark run by zoo.export (fp32 and int8 share one folder
    in the run's temporary directory)."""
    shipped = default_weights(job["model"])
    if variant == "fp32" and shipped is not None and shipped.sha256 == job["weights_label"]:
        at_hand = shipped.onnx_verified()
        if at_hand is not None:
            return at_hand
    from zoo.export import export_onnx

    target = Path(job["work_dir"]) / "onnx" / job["model"] / f"{job['model']}.{variant}.onnx"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        # The exporter refuses graphs that disagree with PyTorch, and int8 graphs that lose more than its
        # accuracy budget; the benchmark re-measures accuracy itself, so its own checks can stay small.
        checks = max(64, min(512, job["accuracy_images"]))
        export_onnx(
            job["model"], weights=job["weights_path"], out=target, int8=variant == "int8",
            validate_images=checks, test_images=checks, data_dir=job.get("data_dir"),
        )  # fmt: skip
    return target


def _test_slice(job: dict[str, Any], info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """`accuracy_images` test images evenly spaced over the test set, normalised as `zoo eval` does, so a
    backend's accuracy here is the accuracy users would get."""
    from zoo.core.datafiles import load_arrays

    arrays, _ = load_arrays(info["dataset"], job.get("data_dir"))
    images, labels = arrays["test_x"], arrays["test_y"].astype(np.int64)
    count = min(job["accuracy_images"], len(labels))
    sample = np.linspace(0, len(labels) - 1, count).round().astype(int)
    pre = info["preprocessing"]
    mean = np.asarray(pre["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(pre["std"], np.float32).reshape(1, -1, 1, 1)
    return ((images[sample].astype(np.float32) / np.float32(255.0) - mean) / std).astype(np.float32), labels[sample]


def _predict_all(runner: Any, images: np.ndarray, chunk: int) -> np.ndarray:
    """Logits for every image in chunks of exactly `chunk` (the last one zero-padded): compiled graphs,
    fixed-shape sessions and CUDA graphs then see only shapes they were built for."""
    outputs = []
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk]
        real = len(batch)
        if real < chunk:
            batch = np.concatenate([batch, np.zeros((chunk - real, *batch.shape[1:]), batch.dtype)])
        outputs.append(np.asarray(runner.predict(batch))[:real])
    return np.concatenate(outputs)


def _runner(job: dict[str, Any], backend: Any) -> Any:
    from zoo.bench.backends import make_runner

    if backend.onnx is not None:
        return make_runner(backend, None, job["threads"], _onnx_file(job, backend.onnx))
    from zoo.core.loading import load_model

    # What users run and what the ONNX graph computes: a Classifier in eval mode (its test views included).
    model = load_model(job["model"], weights=job["weights_path"]).model
    return make_runner(backend, model, job["threads"], None)


def run_model(job: dict[str, Any]) -> dict[str, Any]:
    from zoo.bench.backends import BACKENDS
    from zoo.bench.measure import latency_stats_ms, time_calls

    _set_threads(job["threads"])
    backend = BACKENDS[job["backend"]]
    info = model_info(job["model"])
    # The test slice first: a missing data set should fail in a second, not after minutes of timing.
    images, labels = _test_slice(job, info) if job["accuracy_images"] > 0 else (None, None)
    started = time.perf_counter()
    runner = _runner(job, backend)
    setup_s = time.perf_counter() - started

    rows = []
    generator = np.random.default_rng(0)
    for batch_size in job["batch_sizes"]:
        inputs = generator.standard_normal((batch_size, *info["input_shape"]), dtype=np.float32)
        first = time.perf_counter()
        call = runner.bind(inputs)
        call()
        first_call_ms = (time.perf_counter() - first) * 1000  # cold start: compilation, capture, session set-up
        samples = time_calls(call, warmup=job["warmup"], min_time=job["min_time"], min_runs=job["min_runs"])
        latency = latency_stats_ms(samples)
        latency["first_call"] = first_call_ms
        rows.append({
            "batch_size": batch_size, "latency_ms": latency, "throughput": batch_size * 1000 / latency["mean"],
            "tuning": getattr(runner, "plan", None),
        })  # fmt: skip

    result: dict[str, Any] = {
        "rows": rows,
        "setup_s": setup_s,
        "accuracy": None,
        "agreement": None,
        "predictions": None,
    }
    if images is not None:
        predicted = _predict_all(runner, images, max(job["batch_sizes"])).argmax(1)
        result["accuracy"] = float((predicted == labels).mean())
        result["accuracy_images"] = len(labels)
        result["predictions"] = predicted.tolist()
        reference = job.get("reference_predictions")
        if reference is not None and len(reference) == len(predicted):
            result["agreement"] = float((np.asarray(reference) == predicted).mean())
    return result


def main(argv: list[str]) -> int:
    job_path, result_path = argv
    job = json.loads(Path(job_path).read_text())
    try:
        result = run_peak(job) if job["kind"] == "peak" else run_model(job)
    except Exception as error:  # reported as this row's reason; the parent carries on with the next job
        message = " ".join(f"{type(error).__name__}: {error}".split())
        result = {"error": message[:500]}
    Path(result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
