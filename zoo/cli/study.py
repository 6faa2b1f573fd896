"""`zoo study` and `zoo experiment`: the studies' comparisons, trained and written up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.app import DataDir, Device, JsonFlag, emit_json, int_list, out, parse_overrides
from zoo.core.errors import ZooError
from zoo.core.tables import compact_table


def study_command(
    patterns: Annotated[list[str] | None, typer.Argument(help="Models to include (default: 'fcn_*' 'cnn_*').")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where the study's run folders are (RUNS/<model>/seed<k>).")] = Path(
        "docs/runs"
    ),
    docs_dir: Annotated[Path, typer.Option(help="Where the table, plot and model cards are written.")] = Path("docs"),
    train: Annotated[
        bool, typer.Option("--train", help="Train missing runs first (resumes interrupted ones).")
    ] = False,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds to train with --train.")] = "0,1,2",
    jobs: Annotated[int, typer.Option(help="Runs trained at once with --train (a GPU fits many small ones).")] = 1,
    ship: Annotated[
        bool,
        typer.Option(
            "--ship",
            help="Pin each model's best-validation run (its first seed where none held images out) as a new "
            "weights tag in --weights-dir.",
        ),
    ] = False,
    weights_dir: Annotated[
        Path,
        typer.Option(
            help="The weights store --ship writes (files and manifest); a checkout's weights/ is the maintainer's."
        ),
    ] = Path("weights"),
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Train with a recipe field overridden (e.g. a zoo tune winner).")
    ] = None,
    device: Device = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """FCN vs CNN: accuracy (mean ± std over seeds) against parameters, with the published results."""
    from zoo.study import markdown_table, run_study

    seed_list = int_list(seeds, "seeds", "seeds")
    if jobs < 1:
        raise ZooError(f"--jobs must be at least 1, got {jobs}")
    # The data set is read to train and to validate the ONNX files that --ship exports.
    options = {"device": device, "data_dir": data_dir} if train else {"data_dir": data_dir} if ship else {}
    if set_:
        if not train:
            raise ZooError("--set changes the recipe of runs to train: give --train too")
        options.update(parse_overrides(set_))
    studies = run_study(
        patterns, runs_dir=runs_dir, docs_dir=docs_dir, seeds=seed_list, train=train, jobs=jobs, ship_weights=ship,
        weights_dir=weights_dir, **options,
    )  # fmt: skip
    if as_json:
        return emit_json([s.to_dict() for s in studies])
    out.print(markdown_table(studies))
    out.print(
        f"wrote {docs_dir / 'study.md'}, {docs_dir / 'study.png'} and {len(studies)} model cards in {docs_dir / 'models'}"
    )


def experiment_command(
    name: Annotated[
        str,
        typer.Argument(
            help="reference, stride-vs-maxpool, relu-vs-silu, augmentation, train-size-cifar, airbench-ablation, fcn-teachers, fcn-schedule, fcn-long, cnn-teachers, cnn-erasing, cnn-ensemble-teacher, cnn-teacher-erasing, train-size-fashion-mnist or all."
        ),
    ],
    train: Annotated[
        bool, typer.Option("--train", help="Train the missing runs first (finished ones are reused).")
    ] = False,
    docs_dir: Annotated[Path, typer.Option(help="Where docs/experiments/ (runs, tables, plots) is written.")] = Path(
        "docs"
    ),
    device: Device = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """The studies' comparisons (reference networks, stride vs max-pool, ReLU vs SiLU, augmentation,
    training-set size), the airbench ablation, the MLPs' teachers and schedules, the smallest CNN's teacher
    and the largest CNN's erasing and ensemble teacher, each a table and a plot in docs/experiments/."""
    from zoo.experiments import names, run_experiment

    chosen = names() if name == "all" else [name]
    results = {}
    for experiment in chosen:
        rows = run_experiment(experiment, docs_dir=docs_dir, train=train, data_dir=data_dir, device=device)
        results[experiment] = [row.to_dict() for row in rows]
        if not as_json:
            table = compact_table(
                "variant", "train images", "train acc.", "test acc.", "time", title=experiment, left=("variant",)
            )
            table.columns[0].no_wrap = False  # long variant names wrap, so the numbers stay whole in 80 columns
            for row in rows:
                table.add_row(
                    row.label,
                    f"{row.train_images:,}",
                    f"{row.train_accuracy:.1%}",
                    f"{row.test_accuracy:.1%}",
                    f"{row.train_seconds:.0f} s",
                )
            out.print(table)
            out.print(f"wrote {docs_dir / 'experiments' / experiment}.md and .png", soft_wrap=True)
    if as_json:
        emit_json(results)
