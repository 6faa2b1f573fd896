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

from zoo.core.registry import get_spec


def _set_threads(threads: int | None) -> None:
    import torch

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
    """The model's validated ONNX file from zoo.export, exported once per benchmark run (fp32 and int8
    share one folder in the run's temporary directory)."""
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


def _test_slice(job: dict[str, Any], spec: Any) -> tuple[Any, Any]:
    from zoo.core.data import load_dataset
    from zoo.core.preprocess import normalize

    sample = load_dataset(spec.dataset, job.get("data_dir")).test.spread(job["accuracy_images"])
    # The same preprocessing as `zoo eval`, so a backend's accuracy here is the accuracy users would get.
    return normalize(sample.images, spec.preprocessing), sample.labels


def _predict_all(runner: Any, images: Any, chunk: int) -> Any:
    """Logits for every image in chunks of exactly `chunk` (the last one zero-padded): compiled graphs,
    fixed-shape sessions and CUDA graphs then see only shapes they were built for."""
    import numpy as np
    import torch

    outputs = []
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk]
        real = len(batch)
        if real < chunk:
            batch = torch.cat([batch, batch.new_zeros(chunk - real, *batch.shape[1:])])
        outputs.append(np.asarray(runner.predict(batch.numpy()))[:real])
    return np.concatenate(outputs)


def run_model(job: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch

    from zoo.bench.backends import BACKENDS, make_runner
    from zoo.bench.measure import latency_stats_ms, time_calls
    from zoo.core.loading import load_model

    _set_threads(job["threads"])
    backend = BACKENDS[job["backend"]]
    spec = get_spec(job["model"])
    # The test slice first: a missing data set should fail in a second, not after minutes of timing.
    images, labels = _test_slice(job, spec) if job["accuracy_images"] > 0 else (None, None)
    started = time.perf_counter()
    # What users run and what the ONNX graph computes: a Classifier in eval mode (flip TTA included).
    model = load_model(spec.name, weights=job["weights_path"]).model
    onnx_path = _onnx_file(job, backend.onnx) if backend.onnx else None
    runner = make_runner(backend, model, job["threads"], onnx_path)
    setup_s = time.perf_counter() - started

    rows = []
    generator = torch.Generator().manual_seed(0)
    for batch_size in job["batch_sizes"]:
        inputs = torch.randn(batch_size, *spec.input_shape, generator=generator)
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
        logits = _predict_all(runner, images, max(job["batch_sizes"]))
        predicted = logits.argmax(1)
        result["accuracy"] = float((predicted == labels.numpy()).mean())
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
