"""`zoo eval`: test accuracy, per-class accuracy and the confusion matrix, on the model's test set or on
your own labelled photos (`--images DIR`, an ImageFolder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import zoo
from zoo.cli.app import DataDir, Device, JsonFlag, emit_json, need_model, out
from zoo.cli.predict import progress_bar
from zoo.core.errors import ZooError
from zoo.core.tables import compact_table


def eval_command(
    name: Annotated[
        str | None, typer.Argument(help="Model (optional with --weights: the checkpoint names it).")
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="Checkpoint to evaluate (default: shipped weights).")] = None,
    images: Annotated[
        Path | None,
        typer.Option(help="Your labelled photos instead of the test set: one subfolder per class (an ImageFolder)."),
    ] = None,
    data_dir: DataDir = None,
    device: Device = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 1000,
    runtime: Annotated[
        str | None,
        typer.Option(help="With --images, what runs the ONNX file: onnxruntime, openvino or openvino-bf16."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Test accuracy, per-class accuracy and confusion matrix; with --images, of your own labelled photos."""
    need_model(name, weights)
    if images is not None:
        return _eval_images(name, weights, images, data_dir, device, batch_size, runtime or "onnxruntime", as_json)
    if runtime is not None:
        raise ZooError("--runtime goes with --images; the test set runs in PyTorch (zoo benchmark times runtimes)")
    result = zoo.evaluate(name, weights=weights, data_dir=data_dir, device=device, batch_size=batch_size)
    if as_json:
        return emit_json(result.to_dict())
    out.print(
        f"[bold]{result.model}[/]: test accuracy {result.accuracy:.2%} on {result.images:,} {result.dataset} images"
    )
    table = compact_table(
        "true class", "acc.", *map(str, range(len(result.per_class))),
        title="per-class accuracy; confusion matrix, predicted class across", left=("true class",),
    )  # fmt: skip
    for index, (cls, accuracy) in enumerate(result.per_class.items()):
        table.add_row(f"{index} {cls}", f"{accuracy:.1%}", *map(str, result.confusion_matrix[index]))
    out.print(table)


def _eval_images(name, weights, folder: Path, data_dir, device, batch_size: int, runtime: str, as_json: bool) -> None:
    from zoo.prediction import evaluate_images  # ONNX Runtime where the model's file is at hand: no torch

    if device is not None:
        raise ZooError("--device chooses where the test set runs in PyTorch; --images runs ONNX Runtime on the CPU")
    with progress_bar(lambda: None, lambda done: None) as progress:
        result = evaluate_images(
            folder, name, weights=weights, batch_size=batch_size, data_dir=data_dir, progress=progress, runtime=runtime
        )
    if as_json:
        return emit_json(result.to_dict())
    failed = f" ({len(result.failed):,} files could not be read: see --json)" if result.failed else ""
    out.print(
        f"[bold]{result.model}[/]: accuracy {result.accuracy:.2%} on {result.images:,} images in {folder}{failed}"
    )
    out.print(_class_table(result))
    if result.mistakes:
        table = compact_table("prob.", "true class", "predicted", "file", title="most confident mistakes",
                              left=("true class", "predicted", "file"))  # fmt: skip
        table.columns[-1].no_wrap, table.columns[-1].overflow = False, "fold"  # a long path folds, the rest stays
        for mistake in result.mistakes:
            table.add_row(f"{mistake['probability']:.1%}", mistake["true"], mistake["predicted"], mistake["file"])
        out.print(table)


def _class_table(result):
    """Per-class accuracy and precision with the confusion matrix (whose rows sum to each class's images)
    where that fits 80 columns, else each class's number of images in its place."""
    classes = list(result.per_class)
    table = compact_table("true class", "acc.", "prec.", *map(str, range(len(classes))), left=("true class",),
                          title="per-class accuracy and precision; confusion matrix, predicted class across")  # fmt: skip
    for index, cls in enumerate(classes):
        table.add_row(f"{index} {cls}", f"{result.per_class[cls]:.1%}", f"{result.precision[cls]:.1%}",
                      *map(str, result.confusion_matrix[index]))  # fmt: skip
    if Console(width=10_000).measure(table).maximum <= 80:
        return table
    table = compact_table("true class", "images", "acc.", "prec.", left=("true class",),
                          title="per-class accuracy and precision (the confusion matrix is in --json)")  # fmt: skip
    for index, cls in enumerate(classes):
        table.add_row(f"{index} {cls}", f"{result.support[cls]:,}", f"{result.per_class[cls]:.1%}",
                      f"{result.precision[cls]:.1%}")  # fmt: skip
    return table
