"""`zoo train`: one training run, new, resumed or extended."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

import zoo
from zoo.cli.app import DataDir, Device, out, parse_overrides
from zoo.core.errors import ZooError


def train_command(
    name: str,
    epochs: Annotated[int | None, typer.Option(help="Epochs (recipe default otherwise).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of initialisation, shuffling and augmentation.")] = None,
    compile: Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model.")] = None,
    device: Device = None,
    data_dir: DataDir = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run folder (default runs/NAME/TIME-seedN).")] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the run in this folder (or its last.safetensors), recipe unchanged.")
    ] = None,
    extend: Annotated[
        bool, typer.Option("--extend", help="With --resume and --epochs N: lengthen the run to N epochs.")
    ] = False,
    limit_train: Annotated[int | None, typer.Option(help="Train on the first N training images only.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override any recipe field: --set ema_decay=0.999")
    ] = None,
) -> None:
    """Train a model with its recipe; writes a run folder with checkpoints, metrics and a report."""
    overrides: dict[str, object] = parse_overrides(set_ or [])
    explicit = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "compile": compile}
    overrides.update({k: v for k, v in explicit.items() if v is not None})
    if extend and resume is None:
        raise ZooError("--extend lengthens a resumed run: give --resume RUN_DIR too")
    result = zoo.train(
        name, data_dir=data_dir, out=out_dir, device=device, resume=resume, extend=extend, limit_train=limit_train,
        **overrides,
    )  # fmt: skip
    if int(os.environ.get("RANK", "0")):  # under torchrun, rank 0 alone reports
        return
    table = Table(title=f"{name}: training report", show_header=False)
    table.add_row("test accuracy", f"{result.test_accuracy:.2%}")
    if result.val_accuracy is None:
        table.add_row("validation accuracy", f"none: no validation split (val_size=0), epoch {result.best_epoch} kept")
    else:
        table.add_row("validation accuracy", f"{result.val_accuracy:.2%} (epoch {result.best_epoch})")
    table.add_row("training time", f"{result.train_seconds:.1f} s on {result.device}")
    table.add_row("throughput", f"{result.images_per_second:,.0f} images/s")
    table.add_row("parameters", f"{result.params:,}")
    table.add_row("best checkpoint", result.best_checkpoint)
    out.print(table)
