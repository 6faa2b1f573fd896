"""`zoo benchmark`: end to end on a tiny budget, the JSON contract, skipped backends and one-line errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

import zoo
from zoo.bench.measure import latency_stats_ms, percentile, time_calls
from zoo.cli import main

ROW_FIELDS = {
    "model", "backend", "device", "precision", "batch_size", "threads", "latency_ms", "throughput", "gflops",
    "attainable_gflops", "gflops_fraction", "accuracy", "agreement", "speedup_vs_eager", "weights", "skipped",
}  # fmt: skip
LATENCY_FIELDS = {"mean", "std", "p50", "p90", "p99"}


def test_latency_statistics():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    stats = latency_stats_ms([0.001, 0.002, 0.003])
    assert stats["p50"] == pytest.approx(2.0) and stats["mean"] == pytest.approx(2.0) and stats["runs"] == 3
    calls = []
    samples = time_calls(lambda: calls.append(1), warmup=0, min_time=0.01, min_runs=4)
    assert len(samples) >= 4 and len(calls) == len(samples) + 2  # two warm-up calls are never timed


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory, data_dir):
    """fcn_50k through eager PyTorch and ONNX Runtime (plus a CUDA backend, skipped without a GPU)."""
    folder = tmp_path_factory.mktemp("bench")
    argv = [
        "benchmark", "fcn_50k", "--backends", "torch,onnxruntime,torch-cuda", "--batch-sizes", "1,4",
        "--threads", "1", "--warmup", "0", "--min-time", "0.05", "--min-runs", "3", "--accuracy-images", "64",
        "--data-dir", str(data_dir), "--save-json", str(folder / "bench.json"), "--csv", str(folder / "bench.csv"),
        "--plot", str(folder / "bench.png"),
    ]  # fmt: skip
    assert main(argv) == 0
    return folder


def test_benchmark_runs_two_backends_end_to_end(tiny_report):
    report = json.loads((tiny_report / "bench.json").read_text())
    measured = [r for r in report["rows"] if r["skipped"] is None]
    assert {(r["backend"], r["batch_size"]) for r in measured} == {
        ("torch", 1),
        ("torch", 4),
        ("onnxruntime", 1),
        ("onnxruntime", 4),
    }, [r["skipped"] for r in report["rows"]]
    for row in measured:
        assert ROW_FIELDS <= set(row) and LATENCY_FIELDS <= set(row["latency_ms"])
        lat = row["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] and lat["std"] >= 0 and lat["runs"] >= 3
        assert row["throughput"] == pytest.approx(row["batch_size"] * 1000 / lat["mean"], rel=0.01)
        assert row["threads"] == 1 and row["device"] == "cpu"
        # Achieved GFLOP/s: 2 FLOPs per MAC, image and mirror (flip TTA), at the measured throughput.
        spec = zoo.get_spec("fcn_50k")
        flops = 2 * spec.macs * (2 if spec.tta_flip else 1) * row["throughput"]
        # The report rounds GFLOP/s to 2 decimals, the peak to 1 and the fraction to 4.
        assert row["gflops"] == pytest.approx(flops / 1e9, rel=0.01, abs=0.006)
        assert row["gflops_fraction"] == pytest.approx(row["gflops"] / row["attainable_gflops"], rel=0.02, abs=0.002)
        # The shipped weights (89.5% on the whole test set), scored on the first 64 test images.
        assert row["accuracy"] > 0.75 and row["weights"] == spec.weights_sha256
    onnx_rows = [r for r in measured if r["backend"] == "onnxruntime"]
    # The exported graph computes what PyTorch computes: same predictions on the test slice.
    assert all(r["agreement"] == 1.0 and r["speedup_vs_eager"] > 0 for r in onnx_rows)
    env = report["environment"]
    assert env["cpu"]["model"] and env["cores"] >= 1 and env["libraries"]["torch"] and "gpu" in env
    assert {a["threads"] for a in report["attainable"]} == {1} and all(a["gflops"] > 0 for a in report["attainable"])


def test_tables_fit_80_columns(tiny_report):
    from rich.console import Console

    from zoo.bench.report import tables
    from zoo.bench.run import BenchmarkResult

    report = json.loads((tiny_report / "bench.json").read_text())
    result = BenchmarkResult(**{k: report[k] for k in ("rows", "environment", "attainable", "settings")})
    console = Console(width=80, record=True, file=io.StringIO())
    for table in tables(result, 80):
        console.print(table)
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80 and "…" not in text
    assert "onnxruntime" in text
    if not zoo.bench.backends.cuda_available():  # on a GPU machine torch-cuda is measured, not skipped
        assert "skipped torch-cuda: no CUDA GPU" in text


def test_unavailable_backend_is_reported_as_skipped(tiny_report):
    rows = json.loads((tiny_report / "bench.json").read_text())["rows"]
    cuda = [r for r in rows if r["backend"] == "torch-cuda"]
    assert len(cuda) == 1
    if not zoo.bench.backends.cuda_available():
        assert cuda[0]["skipped"] == "no CUDA GPU" and cuda[0]["latency_ms"] is None
    assert ROW_FIELDS <= set(cuda[0])


def test_csv_and_plot_are_written(tiny_report):
    lines = (tiny_report / "bench.csv").read_text().splitlines()
    assert lines[0].startswith("# environment:")
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert {"latency_p50_ms", "throughput", "gflops_fraction", "skipped"} <= set(rows[0])
    assert len(rows) == 5
    pytest.importorskip("matplotlib")
    assert (tiny_report / "bench.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["benchmark", "fcn_5ok", "--device", "cpu"], "did you mean 'fcn_50k'"),
        (["benchmark", "fcn_50k", "--backends", "tensorrt-magic"], "unknown backend 'tensorrt-magic'"),
        (["benchmark", "fcn_50k", "--batch-sizes", "1,x"], "invalid batch sizes"),
        (["benchmark", "fcn_50k", "--batch-sizes", "0"], "invalid batch sizes"),
        (["benchmark", "fcn_50k", "--device", "tpu"], "invalid device"),
    ],
)
def test_user_errors_are_one_line(capsys, argv, fragment):
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], captured.err


def test_openvino_rows_sit_beside_onnxruntime_with_the_same_answers(tmp_path, data_dir):
    """OpenVINO reads the shipped ONNX file: in f32 it gives ONNX Runtime's predictions image for image; bf16
    runs only where the CPU has it natively, and otherwise says so in its row."""
    pytest.importorskip("openvino")
    from zoo.bench.backends import BACKENDS, unavailable

    path = tmp_path / "bench.json"
    argv = [
        "benchmark", "cnn_20k", "--backends", "onnxruntime,openvino,openvino-bf16", "--batch-sizes", "1,8",
        "--threads", "1", "--warmup", "0", "--min-time", "0.05", "--min-runs", "3", "--accuracy-images", "500",
        "--data-dir", str(data_dir), "--save-json", str(path),
    ]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads(path.read_text())["rows"]
    by = {(r["backend"], r["batch_size"]): r for r in rows if r["skipped"] is None}
    assert by[("openvino", 1)]["accuracy"] == by[("onnxruntime", 1)]["accuracy"]
    assert by[("openvino", 8)]["precision"] == "fp32" and by[("openvino", 8)]["latency_ms"]["p50"] > 0
    bf16_reason = unavailable(BACKENDS["openvino-bf16"], shipped_onnx=True)
    if bf16_reason is None:
        assert abs(by[("openvino-bf16", 1)]["accuracy"] - by[("onnxruntime", 1)]["accuracy"]) <= 0.01
        assert by[("openvino-bf16", 1)]["precision"] == "bf16"
    else:
        (skipped,) = [r for r in rows if r["backend"] == "openvino-bf16"]
        assert "no native bf16" in skipped["skipped"]


def test_openvino_missing_is_one_line_naming_the_extra(monkeypatch):
    import importlib.util

    from zoo.bench import backends

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    backends._openvino_unavailable.cache_clear()
    try:
        assert backends.unavailable(backends.BACKENDS["openvino"], shipped_onnx=True) == backends.OPENVINO_EXTRA
    finally:
        backends._openvino_unavailable.cache_clear()
    assert "[openvino]" in backends.OPENVINO_EXTRA
