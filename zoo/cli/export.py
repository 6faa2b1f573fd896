"""`zoo export`: an ONNX file, validated against PyTorch before it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from zoo.cli.app import DataDir, JsonFlag, emit_json, need_model, out


def export_command(
    name: Annotated[
        str | None, typer.Argument(help="Model (optional with --weights: the checkpoint names it).")
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="Checkpoint to export (default: shipped weights).")] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="The .onnx to write (default exports/NAME/NAME.onnx).")
    ] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 18,
    batch: Annotated[str, typer.Option(help="'dynamic' (default) or a fixed batch size N.")] = "dynamic",
    fp16: Annotated[bool, typer.Option("--fp16", help="fp16 weights; reports its test accuracy delta.")] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="int8 static QDQ quantization, calibrated on training images.")
    ] = False,
    random_init: Annotated[
        bool, typer.Option("--random-init", help="Export untrained random weights of a model that has none.")
    ] = False,
    validate_images: Annotated[int, typer.Option(help="Test images that check the fp32 graph.")] = 512,
    test_images: Annotated[int | None, typer.Option(help="Test images for the int8/fp16 delta (default: all).")] = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Export to ONNX, validated against PyTorch on real test images before the file is written."""
    from zoo.export import export_onnx

    need_model(name, weights)
    result = export_onnx(
        name, weights=weights, out=out_path, opset=opset, batch=batch, fp16=fp16, int8=int8, random_init=random_init,
        data_dir=data_dir, validate_images=validate_images, test_images=test_images,
    )  # fmt: skip
    if as_json:
        return emit_json(result.to_dict())
    check = result.validation
    table = Table(title=f"{result.model}: ONNX export ({result.precision}, opset {result.opset}, batch {result.batch})")
    table.add_column("check")
    table.add_column("PyTorch vs ONNX Runtime", justify="right")
    table.add_row("fp32 graph validated on", check["inputs"])
    for batch_name, row in check["batches"].items():
        table.add_row(
            f"fp32, {batch_name.replace('_', ' ')}",
            f"max |Δlogit| {row['max_abs_diff']:.1e}, top-1 agreement {row['top1_agreement']:.2%}",
        )
    if check["accuracy_torch"] is not None and not result.reduced:
        table.add_row("fp32 accuracy (torch → onnx)", f"{check['accuracy_torch']:.2%} → {check['accuracy_onnx']:.2%}")
    if result.reduced:
        r = result.reduced
        table.add_row(
            f"{result.precision} on {r['images']:,} test images",
            f"accuracy {r['accuracy_torch']:.2%} → {r['accuracy_onnx']:.2%} ({r['accuracy_delta']:+.2%}), "
            f"top-1 agreement {r['top1_agreement']:.2%}, max |Δlogit| {r['max_abs_diff']:.1e}",
        )
        table.add_row("threshold", f"accuracy drop ≤ {r['threshold']['max_accuracy_drop']:.2%}")
    else:
        table.add_row("threshold", "max |Δlogit| ≤ 1e-4 and 100% top-1 agreement")
    out.print(table)
    out.print(
        f"wrote {result.path} ({result.size_bytes:,} bytes), weights {result.weights}; test data: {', '.join(result.test_data)}"
    )
