"""Presenting a BenchmarkResult: a Rich table per model, JSON, CSV and a latency-versus-batch-size plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from zoo.bench.run import EAGER, BenchmarkResult
from zoo.core.tables import compact_table

CSV_FIELDS = (
    "model", "backend", "device", "precision", "batch_size", "threads", "latency_mean_ms", "latency_std_ms",
    "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "runs", "throughput", "gflops", "attainable_gflops",
    "gflops_fraction", "speedup_vs_eager", "accuracy", "agreement", "weights", "tuning", "skipped",
)  # fmt: skip


WIDE = 120  # terminal columns from which the full table fits; narrower ones get the compact one


def tables(result: BenchmarkResult, width: int = WIDE) -> list[Table | str]:
    """One table per model; the fastest backend per (threads, batch size) is bold green. Below `WIDE`
    columns the table keeps latency p50 / p99, images/s, fraction of peak and accuracy (JSON and CSV keep
    everything) and skipped backends are listed beneath it, so no cell is cut at 80 columns."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in result.rows:
        by_model.setdefault(row["model"], []).append(row)
    fastest = {}
    for row in result.rows:
        if row["skipped"] is None:
            key = (row["model"], row["device"], row["threads"], row["batch_size"])
            if key not in fastest or row["latency_ms"]["p50"] < fastest[key]["latency_ms"]["p50"]:
                fastest[key] = row
    winners = {id(r) for r in fastest.values()}
    out: list[Table | str] = []
    for model, rows in by_model.items():
        weights = rows[0]["weights"]
        title = f"{model} ({'random-init weights' if weights == 'random-init' else 'shipped weights'})"
        if width < WIDE:
            out += _compact(title, rows, winners)
            continue
        table = Table(title=title)
        for column in ("backend", "thr.", "batch", "p50 ms", "mean ± std ms", "p90 ms", "p99 ms", "images/s",
                       "of peak", f"vs {EAGER}", "acc.", "agree"):  # fmt: skip
            table.add_column(column, justify="left" if column == "backend" else "right")
        for row in rows:
            if row["skipped"] is not None:
                table.add_row(row["backend"], _n(row["threads"]), "", f"[dim]skipped: {row['skipped']}[/]")
                continue
            lat = row["latency_ms"]
            style = "bold green" if id(row) in winners else None
            table.add_row(
                row["backend"], _n(row["threads"]), str(row["batch_size"]), f"{lat['p50']:.3f}",
                f"{lat['mean']:.3f} ± {lat['std']:.3f}", f"{lat['p90']:.3f}", f"{lat['p99']:.3f}",
                f"{row['throughput']:,.0f}", _pct(row["gflops_fraction"]),
                "—" if row["speedup_vs_eager"] is None else f"{row['speedup_vs_eager']:.2f}×",
                _pct(row["accuracy"]), _pct(row["agreement"]), style=style,
            )  # fmt: skip
        out.append(table)
    return out


def _compact(title: str, rows: list[dict[str, Any]], winners: set[int]) -> list[Table | str]:
    table = compact_table("backend", "thr.", "batch", "p50 ms", "p99 ms", "images/s", "of peak", "acc.",
                          title=title, left=("backend",))  # fmt: skip
    skipped = []
    for row in rows:
        if row["skipped"] is not None:
            skipped.append(f"  skipped {row['backend']}: {row['skipped']}")
            continue
        lat = row["latency_ms"]
        table.add_row(
            row["backend"], _n(row["threads"]), str(row["batch_size"]), f"{lat['p50']:.3f}", f"{lat['p99']:.3f}",
            f"{row['throughput']:,.0f}", _pct(row["gflops_fraction"]), _pct(row["accuracy"]),
            style="bold green" if id(row) in winners else None,
        )  # fmt: skip
    return [table, *skipped]


def summary_lines(result: BenchmarkResult) -> list[str]:
    env = result.environment
    gpu = env["gpu"]["name"] if env.get("gpu") else "no GPU"
    peaks = ", ".join(
        f"{a['precision']} {a['threads'] or '-'}t {a['gflops']:.0f}" for a in result.attainable if a["gflops"]
    )
    return [
        f"machine: {env['cpu']['model']}, {env['usable_cores']} cores, {gpu}; torch {env['libraries']['torch'] or '(none)'}, "
        f"onnxruntime {env['libraries']['onnxruntime']}"
        + (f", openvino {env['libraries']['openvino']}" if env["libraries"].get("openvino") else ""),
        f"attainable GFLOP/s (matrix product): {peaks or '—'}; wall time {result.wall_s:.0f} s",
    ]


def write_json(result: BenchmarkResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")


def write_csv(result: BenchmarkResult, path: Path) -> None:
    """One line per row; the environment fingerprint goes in leading `#` comment lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        handle.write(f"# environment: {json.dumps(result.environment)}\n")
        handle.write(f"# attainable: {json.dumps(result.attainable)}\n")
        writer = csv.DictWriter(handle, CSV_FIELDS)
        writer.writeheader()
        for row in result.rows:
            lat = row["latency_ms"] or {}
            flat = {k: row.get(k) for k in CSV_FIELDS}
            flat.update({f"latency_{k}_ms": lat.get(k) for k in ("mean", "std", "p50", "p90", "p99")})
            flat["runs"] = lat.get("runs")
            writer.writerow(flat)


def write_plot(result: BenchmarkResult, path: Path) -> str | None:
    """Latency p50 versus batch size per backend, one panel per model (log-log). Returns why it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed; pip install 'zoo-classifiers[plot]' for the latency plot"
    measured = [r for r in result.rows if r["skipped"] is None]
    models = list(dict.fromkeys(r["model"] for r in measured))
    if not models:
        return "no measured rows to plot"
    columns = min(3, len(models))
    rows_n = -(-len(models) // columns)
    figure, axes = plt.subplots(rows_n, columns, figsize=(5 * columns, 3.8 * rows_n), squeeze=False)
    for axis, model in zip(axes.flat, models, strict=False):
        series: dict[str, list[tuple[int, float]]] = {}
        for row in measured:
            if row["model"] == model:
                label = row["backend"] + (f" {row['threads']}t" if row["threads"] else "")
                series.setdefault(label, []).append((row["batch_size"], row["latency_ms"]["p50"]))
        for label, points in series.items():
            points.sort()
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        axis.set(xscale="log", yscale="log", title=model, xlabel="batch size", ylabel="latency p50 (ms)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(models) :]:
        axis.set_visible(False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def _n(value: object) -> str:
    return "—" if value is None else str(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"
