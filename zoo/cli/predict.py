"""`zoo predict`: classify image files, in PyTorch, ONNX Runtime or OpenVINO."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

import zoo
from zoo.cli.app import DataDir, err, out


def predict_command(
    images: Annotated[list[str], typer.Argument(help="Image files, folders or globs (PNG, JPEG, BMP, WebP, GIF).")],
    model: Annotated[
        str | None, typer.Option(help="Model (default: $ZOO_MODEL, else the best shipped Fashion-MNIST model).")
    ] = None,
    backend: Annotated[
        str,
        typer.Option(help="auto (ONNX Runtime where the validated file is at hand, else torch), torch or onnxruntime."),
    ] = "auto",
    weights: Annotated[
        Path | None, typer.Option(help="Checkpoint to use instead of the shipped weights (it names its model).")
    ] = None,
    onnx: Annotated[Path | None, typer.Option("--onnx", help="An exported .onnx to run (implies onnxruntime).")] = None,
    topk: Annotated[int, typer.Option(help="Classes shown per image.")] = 5,
    runtime: Annotated[
        str, typer.Option(help="What runs the ONNX file: onnxruntime, openvino or openvino-bf16 ([openvino] extra).")
    ] = "onnxruntime",
    data_dir: DataDir = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON Lines on stdout: one object per input, errors included.")
    ] = False,
) -> int:
    """Classify images; with --json one JSON object per input line. Exit status 1 when some inputs failed."""
    results = zoo.predict(
        images, model=model, backend=backend, weights=weights, onnx=onnx, topk=topk, data_dir=data_dir,
        runtime=runtime,
    )  # fmt: skip
    for result in results:
        if as_json:
            # JSON Lines, one object per input, so a program can stream results and see per-file errors.
            sys.stdout.write(json.dumps(result.to_dict()) + "\n")
        elif result.error is not None:
            err.print(f"error: {result.file}: {result.error}", soft_wrap=True, markup=False)
        else:
            # The file on its own line: a table title would wrap long paths to the table's width.
            out.print(f"[bold]{escape(result.file)}[/] ({result.model}, {result.backend})", soft_wrap=True)
            table = Table()
            table.add_column("class")
            table.add_column("probability", justify="right")
            for entry in result.top:
                table.add_row(entry["class"], f"{entry['probability']:.2%}")
            out.print(table)
    return 1 if any(r.error is not None for r in results) else 0
