"""`zoo benchmark`: latency, throughput and accuracy across PyTorch and ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

import zoo
from zoo.cli.app import DataDir, JsonFlag, emit_json, err, int_list, out


def benchmark_command(
    names: Annotated[list[str] | None, typer.Argument(help="Models or patterns ('cnn_*'); default all.")] = None,
    backends: Annotated[
        str | None, typer.Option(help="Comma-separated backends, or 'all' (default: all but torch-compile).")
    ] = None,
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8,64,256",
    threads: Annotated[str | None, typer.Option(help="Comma-separated CPU thread counts (default: all cores).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda: only that device's backends (default both).")] = None,
    warmup: Annotated[float, typer.Option(help="Warm-up seconds per batch size.")] = 0.5,
    min_time: Annotated[float, typer.Option(help="Minimum timed seconds per batch size.")] = 1.0,
    min_runs: Annotated[int, typer.Option(help="Minimum timed runs per batch size.")] = 3,
    accuracy_images: Annotated[int, typer.Option(help="Test images each backend is scored on (0: skip).")] = 1000,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
    json_path: Annotated[
        Path | None, typer.Option("--save-json", help="Also write the JSON report to this file.")
    ] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write the rows as CSV here.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Write a latency-vs-batch-size PNG here.")] = None,
) -> None:
    """Latency, throughput, accuracy and fraction of peak FLOP/s across PyTorch and ONNX Runtime backends."""
    from zoo.bench import report

    result = zoo.benchmark(
        names or None, backends=[b.strip() for b in backends.split(",") if b.strip()] if backends else None,
        batch_sizes=int_list(batch_sizes, "batch sizes", "batch_sizes"), threads=int_list(threads, "thread counts", "threads"),
        device=device, warmup=warmup, min_time=min_time, min_runs=min_runs, accuracy_images=accuracy_images,
        data_dir=data_dir, progress=None if as_json else lambda message: err.print(f"[dim]{escape(message)}[/]"),
    )  # fmt: skip
    if json_path:
        report.write_json(result, json_path)
    if csv_path:
        report.write_csv(result, csv_path)
    if plot_path:
        reason = report.write_plot(result, plot_path)
        if reason:
            err.print(f"plot skipped: {reason}", markup=False)
    if as_json:
        return emit_json(result.to_dict())
    # A terminal gets what fits its width; piped output (a file, a log) the compact table at 80 columns,
    # whose every cell is whole (JSON and CSV carry every field).
    width = out.width if out.is_terminal else 80
    for table in report.tables(result, width):
        out.print(table, width=width, soft_wrap=isinstance(table, str), markup=False)
    for line in report.summary_lines(result):
        out.print(line)
