"""`zoo eval`: test accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import zoo
from zoo.cli.app import DataDir, Device, JsonFlag, emit_json, need_model, out
from zoo.core.tables import compact_table


def eval_command(
    name: Annotated[
        str | None, typer.Argument(help="Model (optional with --weights: the checkpoint names it).")
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="Checkpoint to evaluate (default: shipped weights).")] = None,
    data_dir: DataDir = None,
    device: Device = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 1000,
    as_json: JsonFlag = False,
) -> None:
    """Test accuracy, per-class accuracy and confusion matrix."""
    need_model(name, weights)
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
