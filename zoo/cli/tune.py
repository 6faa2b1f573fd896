"""`zoo tune`: hyper-parameter and architecture search on Ray Tune, and its ranked table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from zoo.cli.app import DataDir, JsonFlag, emit_json, err, out
from zoo.core.recipe import FIELD_NAMES as SETTING_NAMES
from zoo.core.tables import compact_table


def tune_command(
    name: str,
    samples: Annotated[int, typer.Option(help="Trials to sample from the search space.")] = 8,
    space: Annotated[
        Path | None, typer.Option(help="JSON search space: {field: {uniform|loguniform|choice|randint: ...}}.")
    ] = None,
    max_epochs: Annotated[
        int | None, typer.Option(help="Epochs of every trial's schedule (default: the recipe's).")
    ] = None,
    scheduler: Annotated[str, typer.Option(help="asha (stops weak trials early) or fifo.")] = "asha",
    address: Annotated[
        str | None, typer.Option(help="A running Ray cluster (e.g. ray://head:10001); default: Ray in this process.")
    ] = None,
    resources_per_trial: Annotated[str, typer.Option(help="What each trial reserves: cpu=N,gpu=F.")] = "cpu=1,gpu=0",
    limit_train: Annotated[int | None, typer.Option(help="Train each trial on the first N training images.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of sweeps.")] = Path("runs/tune"),
    experiment: Annotated[
        str | None, typer.Option("--name", help="The sweep's name (default: the model's); a rerun resumes it.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the search's sampling.")] = 0,
    max_concurrent: Annotated[
        int | None, typer.Option(help="At most this many trials at once (default: as many as the resources fit).")
    ] = None,
    docs_dir: Annotated[
        Path | None, typer.Option(help="Also write NAME.md (ranked table), NAME.png and the trials' records here.")
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Search recipe fields and widths on Ray Tune, ranked by validation accuracy (never the test set)."""
    from zoo.tune import publish, tune_model

    result = tune_model(
        name, samples=samples, space=space, max_epochs=max_epochs, scheduler=scheduler, address=address,
        resources=resources_per_trial, data_dir=data_dir, limit_train=limit_train, out=out_dir,
        experiment=experiment, seed=seed, max_concurrent=max_concurrent,
    )  # fmt: skip
    if docs_dir:
        extra = {"--space": space, "--scheduler": scheduler if scheduler != "asha" else None,
                 "--limit-train": limit_train, "--seed": seed or None, "--name": experiment,
                 "--max-concurrent": max_concurrent}  # fmt: skip
        flags = "".join(f" {flag} {value}" for flag, value in extra.items() if value is not None)
        publish(result, docs_dir, f"zoo tune {name} --samples {samples} --max-epochs {result.epochs}{flags}")
    if as_json:
        return emit_json(result.to_dict())
    out.print(tune_table(result, out.width))
    if len(result.trials) > 20:
        out.print(f"({len(result.trials) - 20} more in --json)")
    if result.failed:
        err.print(f"{len(result.failed)} trial(s) failed; the first: {result.failed[0]}", markup=False)
    if not all(t.completed for t in result.trials):
        out.print("*: stopped early by ASHA; trials that trained the whole schedule rank first")
    if result.plot:
        out.print(f"plot: {result.plot}")
    if result.architecture:
        out.print(f"registry change: widths={tuple(result.architecture)}")
    out.print(f"confirm on three seeds: {result.confirm_command()}", soft_wrap=True)  # one line, to copy whole


# Column headers: the settings' names (zoo.tune.SETTING_NAMES) over two lines, so that more of them fit.
TUNE_COLUMNS = {key: name.replace(" ", "\n", 1) for key, name in SETTING_NAMES.items()}


def tune_table(result, width: int) -> Table:
    """The ranked trials, with as many of the searched settings as fit `width` (all of them: --json)."""
    from zoo.tune import format_setting

    varied = result.varied()
    keys = [k for k in TUNE_COLUMNS if k in varied] + sorted(varied - set(TUNE_COLUMNS))
    while True:
        hidden = varied - set(keys)
        title = f"{result.model}: {len(result.trials)} trials, ranked by validation accuracy"
        table = compact_table("#", "val.", "epochs", *(TUNE_COLUMNS.get(k, k) for k in keys),
                              title=title + (f" ({len(hidden)} more fields in --json)" if hidden else ""))  # fmt: skip
        for rank, trial in enumerate(result.trials[:20], 1):
            cells = [format_setting(trial.settings.get(k)) for k in keys]
            epochs = f"{trial.epochs_run}/{result.epochs}" + ("" if trial.completed else "*")
            table.add_row(str(rank), f"{trial.val_accuracy:.2%}", epochs, *cells)
        if not keys or Console(width=10_000).measure(table).maximum <= width:
            return table
        keys.pop()
