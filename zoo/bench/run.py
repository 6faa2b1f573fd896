"""`zoo.benchmark()`: plan the jobs, run each in its own worker process, and assemble the rows."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.bench.backends import BACKENDS, Backend, torch_installed, unavailable
from zoo.bench.environment import fingerprint
from zoo.core.catalog import model_info, model_row, rows
from zoo.core.datafiles import load_arrays
from zoo.core.device import usable_cores
from zoo.core.errors import ZooError
from zoo.core.weights import default_weights

DEFAULT_BATCH_SIZES = (1, 8, 64, 256)
# torch-compile is opt-in (--backends all, or by name): it compiles once per batch size, which takes
# longer than measuring every other backend together.
DEFAULT_BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8", "torch-cuda", "torch-cuda-bf16", "onnxruntime-cuda")
EAGER = "torch"  # the baseline every speed-up is relative to
JOB_TIMEOUT_S = 1800


@dataclass
class BenchmarkResult:
    rows: list[dict[str, Any]]  # one per (model, backend, threads, batch size); skipped ones once per backend
    attainable: list[dict[str, Any]]  # measured peak GFLOP/s per device, precision and thread count
    environment: dict[str, Any]  # CPU, cores, GPU, library versions
    settings: dict[str, Any]  # the arguments that produced the rows
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "settings": self.settings,
            "attainable": self.attainable,
            "rows": self.rows,
            "wall_s": round(self.wall_s, 1),
            "notes": self.notes,
        }


@dataclass(frozen=True)
class BenchModel:
    """What a benchmark needs of a model, from the torch-free catalog: a benchmark of shipped models on ONNX
    Runtime alone runs without torch."""

    name: str
    dataset: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    macs: int  # per view
    views: int  # forward passes per image: 1, 2 (flip) or 6 (flip and one-pixel shifts)

    @classmethod
    def of(cls, entry: dict[str, Any]) -> BenchModel:
        views = (6 if entry.get("tta_shift") else 2) if entry["tta_flip"] else 1
        return cls(entry["name"], entry["dataset"], tuple(entry["input_shape"]), entry["macs"], views)


def resolve_models(names: Iterable[str] | None) -> list[BenchModel]:
    """Names or shell patterns ('cnn_*') -> models, in registry order, each once; unknown names fail helpfully."""
    chosen: list[str] = []
    for item in names or ["*"]:
        matched = [r["name"] for r in rows(item)] if any(c in item for c in "*?[") else [model_row(item)["name"]]
        if not matched:
            raise ZooError(f"no model matches {item!r}; run `zoo list` to see all", argument="models")
        chosen += [n for n in matched if n not in chosen]
    return [BenchModel.of(model_info(n)) for n in chosen]


def resolve_backends(names: Iterable[str] | None, device: str | None) -> list[Backend]:
    if device not in (None, "cpu", "cuda"):
        raise ZooError(f"invalid device {device!r}; use cpu or cuda (or leave it out for both)", argument="device")
    requested = list(names or DEFAULT_BACKENDS)
    if requested == ["all"]:
        requested = list(BACKENDS)
    for name in requested:
        if name not in BACKENDS:
            raise ZooError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}, all", argument="backends")
    backends = [BACKENDS[n] for n in dict.fromkeys(requested)]
    return [b for b in backends if device is None or b.device == device]


def _positive_ints(values: Iterable[int], what: str, argument: str) -> list[int]:
    values = list(values)
    if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise ZooError(f"invalid {what} {values}; expected positive whole numbers such as 1,8,64", argument=argument)
    return sorted(dict.fromkeys(values))


def benchmark(
    models: str | Sequence[str] | None = None,
    *,
    backends: Sequence[str] | None = None,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    threads: Sequence[int] | None = None,
    device: str | None = None,
    warmup: float = 0.5,
    min_time: float = 1.0,
    min_runs: int = 5,
    accuracy_images: int = 1000,
    data_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Latency, throughput, accuracy and fraction of attainable FLOP/s per (model, backend, threads, batch size).

    `models`: names or patterns (default all); `backends`: see `zoo.bench.BACKENDS` ("all" for every one);
    `device`: "cpu" or "cuda" to keep only that device's backends; `warmup` and `min_time` are seconds per
    batch size; `accuracy_images`: size of the test-set slice each backend is scored on (0 to skip).
    """
    started = time.perf_counter()
    specs = resolve_models([models] if isinstance(models, str) else models)
    chosen = resolve_backends(backends, device)
    batch_sizes = _positive_ints(batch_sizes, "batch sizes", "batch_sizes")
    thread_counts = _positive_ints(threads if threads is not None else [usable_cores()], "thread counts", "threads")
    if warmup < 0 or min_time <= 0 or min_runs < 1 or accuracy_images < 0:
        raise ZooError(
            "warmup must be >= 0 s, min_time > 0 s, min_runs >= 1 and accuracy_images >= 0", argument="warmup"
        )
    say = progress or (lambda _message: None)
    settings = {
        "models": [s.name for s in specs], "backends": [b.name for b in chosen], "batch_sizes": batch_sizes,
        "threads": thread_counts, "device": device, "warmup_s": warmup, "min_time_s": min_time,
        "min_runs": min_runs, "accuracy_images": accuracy_images,
    }  # fmt: skip
    if accuracy_images:
        for dataset in dict.fromkeys(s.dataset for s in specs):
            load_arrays(dataset, data_dir)  # a missing data set is one clear error now, not one per row later
    shipped_onnx = {m.name: _shipped_onnx(m.name) for m in specs}
    skipped = {(m.name, b.name): unavailable(b, shipped_onnx[m.name]) for m in specs for b in chosen}
    runnable = [b for b in chosen if any(skipped[(m.name, b.name)] is None for m in specs)]

    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as work:
        work_dir = Path(work)
        attainable = _measure_attainable(runnable, thread_counts, work_dir, say)
        peaks = {(a["device"], a["precision"], a["threads"]): a["gflops"] for a in attainable}
        rows: list[dict[str, Any]] = []
        for spec in specs:
            weights_path, weights_label = _weights_for(spec, work_dir)
            reference = None  # eager predictions on the test slice, for the other backends' agreement
            # Eager first, so every other backend can be compared with it.
            for backend in sorted(chosen, key=lambda b: b.name != EAGER):
                base = {"model": spec.name, "backend": backend.name, "device": backend.device,
                        "precision": backend.precision, "weights": weights_label}  # fmt: skip
                reason = skipped[(spec.name, backend.name)]
                if reason:
                    rows.append(_skipped_row(base, None, reason))
                    say(f"{spec.name} · {backend.name}: skipped ({reason})")
                    continue
                for count in thread_counts if backend.device == "cpu" else [None]:
                    job = {
                        "kind": "model", "model": spec.name, "backend": backend.name, "threads": count,
                        "batch_sizes": batch_sizes, "warmup": warmup, "min_time": min_time, "min_runs": min_runs,
                        "accuracy_images": accuracy_images, "data_dir": str(data_dir) if data_dir else None,
                        "weights_path": str(weights_path), "weights_label": weights_label, "work_dir": str(work_dir),
                        "reference_predictions": reference,
                    }  # fmt: skip
                    t0 = time.perf_counter()
                    result = run_worker(job, work_dir)
                    where = f"{spec.name} · {backend.name} · {count or '-'} thread(s)"
                    if "error" in result:
                        rows.append(_skipped_row({**base, "threads": count}, None, f"failed: {result['error']}"))
                        say(f"{where}: failed ({result['error']})")
                        continue
                    if backend.name == EAGER and reference is None:
                        reference = result.get("predictions")
                    peak = peaks.get((backend.device, backend.precision, count))
                    rows += _measured_rows(base, spec, count, result, peak)
                    say(f"{where}: done in {time.perf_counter() - t0:.1f} s")
    _add_speedups(rows)
    return BenchmarkResult(rows, attainable, fingerprint(), settings, time.perf_counter() - started)


def run_worker(job: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """Run one job in a fresh interpreter with its thread count fixed in the environment."""
    job_file = work_dir / "job.json"
    result_file = work_dir / "result.json"
    result_file.unlink(missing_ok=True)
    job_file.write_text(json.dumps(job))
    env = dict(os.environ)
    if job.get("threads"):
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[variable] = str(job["threads"])
    command = [sys.executable, "-m", "zoo.bench.worker", str(job_file), str(result_file)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {JOB_TIMEOUT_S} s"}
    if not result_file.is_file():
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return {"error": f"worker crashed: {last[:300]}"}
    return json.loads(result_file.read_text())


def _measure_attainable(
    backends: list[Backend], thread_counts: list[int], work_dir: Path, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    wanted = dict.fromkeys(
        (b.device, b.precision, t) for b in backends for t in (thread_counts if b.device == "cpu" else [None])
    )
    measured = []
    for device, precision, count in wanted:
        # fp32 and bf16 peaks are timed with PyTorch, int8 with a MatMulInteger graph built with onnx.
        if not (torch_installed() if precision != "int8" else importlib.util.find_spec("onnx") is not None):
            measured.append({"device": device, "precision": precision, "threads": count, "gflops": None})
            continue
        result = run_worker(
            {"kind": "peak", "device": device, "precision": precision, "threads": count, "seconds": 1.0}, work_dir
        )
        gflops = result["flops"] / 1e9 if "flops" in result else None
        measured.append({"device": device, "precision": precision, "threads": count, "gflops": gflops})
        say(f"attainable {precision} on {device} with {count or '-'} thread(s): "
            + (f"{gflops:.1f} GFLOP/s" if gflops else f"failed ({result.get('error')})"))  # fmt: skip
    return measured


def _shipped_onnx(name: str) -> bool:
    shipped = default_weights(name)
    return shipped is not None and shipped.onnx_verified() is not None


def _weights_for(spec: BenchModel, work_dir: Path) -> tuple[Path, str]:
    """Shipped weights when the model has them; else one seeded random initialisation shared by all backends,
    so their predictions can be compared. Speed does not depend on the values; accuracy is then chance."""
    shipped = default_weights(spec.name)
    if shipped is not None:
        return shipped.verified_path(), shipped.sha256
    # torch only here: a benchmark of shipped models on ONNX Runtime alone needs none.
    from zoo.core.checkpoint import save_checkpoint
    from zoo.core.loading import load_model

    path = work_dir / f"{spec.name}-random-init.safetensors"
    save_checkpoint(path, load_model(spec.name, random_init=True).model.state_dict(), {"model": spec.name})
    return path, "random-init"


NULL_MEASUREMENTS = {
    "latency_ms": None, "throughput": None, "gflops": None, "attainable_gflops": None, "gflops_fraction": None,
    "accuracy": None, "accuracy_images": None, "agreement": None, "speedup_vs_eager": None, "setup_s": None,
    "tuning": None,
}  # fmt: skip


def _skipped_row(base: dict[str, Any], batch_size: int | None, reason: str) -> dict[str, Any]:
    return {"threads": None, **base, "batch_size": batch_size, **NULL_MEASUREMENTS, "skipped": reason}


def _measured_rows(
    base: dict[str, Any], spec: BenchModel, threads: int | None, result: dict[str, Any], peak: float | None
) -> list[dict[str, Any]]:
    rows = []
    for measured in result["rows"]:
        # FLOPs = 2 x MACs (conv and linear layers), per test view: every backend runs the same views.
        gflops = measured["throughput"] * 2 * spec.macs * spec.views / 1e9
        rows.append({
            **base, "threads": threads, "batch_size": measured["batch_size"],
            "latency_ms": {k: round(v, 4) if isinstance(v, float) else v for k, v in measured["latency_ms"].items()},
            "throughput": round(measured["throughput"], 1), "gflops": round(gflops, 2),
            "attainable_gflops": round(peak, 1) if peak else None,
            "gflops_fraction": round(gflops / peak, 4) if peak else None,
            "accuracy": result["accuracy"], "accuracy_images": result.get("accuracy_images"),
            "agreement": result["agreement"], "speedup_vs_eager": None, "setup_s": round(result["setup_s"], 2),
            "tuning": measured.get("tuning"), "skipped": None,
        })  # fmt: skip
    return rows


def _add_speedups(rows: list[dict[str, Any]]) -> None:
    """speedup_vs_eager = eager p50 / this row's p50, for the same model, threads and batch size."""
    eager = {
        (r["model"], r["threads"], r["batch_size"]): r["latency_ms"]["p50"]
        for r in rows
        if r["backend"] == EAGER and r["skipped"] is None
    }
    for row in rows:
        if row["skipped"] is None:
            # GPU rows have no thread count; compare them with eager at the most threads measured.
            key = (row["model"], row["threads"], row["batch_size"])
            if row["threads"] is None:
                counts = [t for (m, t, b) in eager if m == row["model"] and b == row["batch_size"]]
                key = (row["model"], max(counts), row["batch_size"]) if counts else key
            if key in eager:
                row["speedup_vs_eager"] = round(eager[key] / row["latency_ms"]["p50"], 3)
