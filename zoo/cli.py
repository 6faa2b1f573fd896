"""The `zoo` command line: thin commands over the Python API, Rich tables for people, --json for programs."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import zoo
from zoo.errors import ZooError
from zoo.tables import compact_table, si

app = typer.Typer(
    name="zoo",
    help="Small image classifiers at fixed parameter budgets: train, evaluate, export, predict, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder with the data set (else $ZOO_DATA, the cache, ...).")
]
Device = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or auto (default: auto).")]


def _need_model(name: str | None, weights: Path | None) -> None:
    """Commands that take a model name or a checkpoint (which names its model) need one of them."""
    if name is None and weights is None:
        raise ZooError("name a model, or give --weights FILE")


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


@app.command("list")
def list_command(
    pattern: Annotated[str | None, typer.Argument(help="Filter, e.g. 'cnn_*' or 'fcn'.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the registered models with their budgets, cost and shipped accuracy."""
    from zoo.catalog import rows as catalog_rows  # the recorded figures: no torch to import

    rows = catalog_rows(pattern)
    if pattern and not rows:
        raise ZooError(f"no model matches {pattern!r}; run `zoo list` to see all")
    if as_json:
        return emit_json(rows)
    table = compact_table("name", "data set", "params", "budget", "MACs", "test acc.", "weights", left=("name", "data set"))
    for row in rows:
        table.add_row(
            row["name"], row["dataset"], f"{row['params']:,}", si(row["budget"]), si(row["macs"]),
            _percent(row["accuracy"]), "yes" if row["weights_present"] else "no",
        )  # fmt: skip
    out.print(table)


@app.command("info")
def info_command(name: str, as_json: JsonFlag = False) -> None:
    """Per-layer table (output shape, parameters, MACs), budget, recipe, preprocessing and weights."""
    info = zoo.model_info(name)
    if as_json:
        return emit_json(info)
    out.print(f"[bold]{name}[/]: {info['description']}")
    table = compact_table("layer", "type", "output shape", "params", "MACs", left=("layer", "type", "output shape"))
    for layer in info["layers"]:
        shape = "×".join(map(str, layer["output_shape"]))
        table.add_row(layer["name"], layer["type"], shape, f"{layer['params']:,}", f"{layer['macs']:,}")
    table.add_section()
    table.add_row("total", "", "", f"{info['params']:,}", f"{info['macs']:,}")
    out.print(table)
    out.print(
        f"budget: {info['min_params']:,} – {info['budget']:,} parameters ({info['params'] / info['budget']:.1%} used)"
    )
    out.print(f"data set: {info['dataset']}   classes: {', '.join(info['classes'])}")
    pre = info["preprocessing"]
    out.print(
        f"preprocessing: {pre['channels']} channel(s) {pre['size'][0]}×{pre['size'][1]}, mean {pre['mean']}, std {pre['std']}"
    )
    out.print("recipe: " + ", ".join(f"{k}={v}" for k, v in info["recipe"].items()))
    weights = info["weights"]
    out.print(
        f"weights: {weights['file']} ({'present' if weights['present'] else 'not shipped'}), sha256 {weights['sha256'] or '—'}"
    )
    if info["metrics"]:
        out.print("metrics: " + ", ".join(f"{k}={v}" for k, v in info["metrics"].items()))


def _parse_overrides(values: list[str]) -> dict[str, str]:
    overrides = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ZooError(f"--set expects FIELD=VALUE, got {item!r}")
        overrides[key.strip().replace("-", "_")] = value.strip()
    return overrides


@app.command("train")
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
    overrides: dict[str, object] = _parse_overrides(set_ or [])
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
    table.add_row("validation accuracy", f"{result.val_accuracy:.2%} (epoch {result.best_epoch})")
    table.add_row("training time", f"{result.train_seconds:.1f} s on {result.device}")
    table.add_row("throughput", f"{result.images_per_second:,.0f} images/s")
    table.add_row("parameters", f"{result.params:,}")
    table.add_row("best checkpoint", result.best_checkpoint)
    out.print(table)


@app.command("eval")
def eval_command(
    name: Annotated[str | None, typer.Argument(help="Model (optional with --weights: the checkpoint names it).")] = None,
    weights: Annotated[Path | None, typer.Option(help="Checkpoint to evaluate (default: shipped weights).")] = None,
    data_dir: DataDir = None,
    device: Device = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 1000,
    as_json: JsonFlag = False,
) -> None:
    """Test accuracy, per-class accuracy and confusion matrix."""
    _need_model(name, weights)
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


@app.command("study")
def study_command(
    patterns: Annotated[list[str] | None, typer.Argument(help="Models to include (default: 'fcn_*' 'cnn_*').")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where the study's run folders are (RUNS/<model>/seed<k>).")] = Path("docs/runs"),
    docs_dir: Annotated[Path, typer.Option(help="Where the table, plot and model cards are written.")] = Path("docs"),
    train: Annotated[bool, typer.Option("--train", help="Train missing runs first (resumes interrupted ones).")] = False,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds to train with --train.")] = "0,1,2",
    jobs: Annotated[int, typer.Option(help="Runs trained at once with --train (a GPU fits many small ones).")] = 1,
    ship: Annotated[bool, typer.Option("--ship", help="Copy each model's best-validation run into weights/.")] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Train with a recipe field overridden (e.g. a zoo tune winner).")
    ] = None,
    device: Device = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """FCN vs CNN: accuracy (mean ± std over seeds) against parameters, with the published results."""
    from zoo.study import markdown_table, run_study

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ZooError(f"--seeds expects comma-separated integers, got {seeds!r}") from None
    if jobs < 1:
        raise ZooError(f"--jobs must be at least 1, got {jobs}")
    # The data set is read to train and to validate the ONNX files that --ship exports.
    options = {"device": device, "data_dir": data_dir} if train else {"data_dir": data_dir} if ship else {}
    if set_:
        if not train:
            raise ZooError("--set changes the recipe of runs to train: give --train too")
        options.update(_parse_overrides(set_))
    studies = run_study(
        patterns, runs_dir=runs_dir, docs_dir=docs_dir, seeds=seed_list, train=train, jobs=jobs, ship_weights=ship,
        **options,
    )  # fmt: skip
    if as_json:
        return emit_json([s.to_dict() for s in studies])
    out.print(markdown_table(studies))
    out.print(f"wrote {docs_dir / 'study.md'}, {docs_dir / 'study.png'} and {len(studies)} model cards in {docs_dir / 'models'}")


@app.command("experiment")
def experiment_command(
    name: Annotated[
        str,
        typer.Argument(
            help="reference, stride-vs-maxpool, relu-vs-silu, augmentation, train-size-cifar, train-size-fashion-mnist or all."
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
    training-set size), each a table and a plot in docs/experiments/."""
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


@app.command("export")
def export_command(
    name: Annotated[str | None, typer.Argument(help="Model (optional with --weights: the checkpoint names it).")] = None,
    weights: Annotated[Path | None, typer.Option(help="Checkpoint to export (default: shipped weights).")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="The .onnx to write (default exports/NAME/NAME.onnx).")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 18,
    batch: Annotated[str, typer.Option(help="'dynamic' (default) or a fixed batch size N.")] = "dynamic",
    fp16: Annotated[bool, typer.Option("--fp16", help="fp16 weights; reports its test accuracy delta.")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="int8 static QDQ quantization, calibrated on training images.")] = False,
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

    _need_model(name, weights)
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
    for batch_name, row in check["batches"].items():
        table.add_row(
            f"fp32, {batch_name.replace('_', ' ')} ({row['images']} test images)",
            f"max |Δlogit| {row['max_abs_diff']:.1e}, top-1 agreement {row['top1_agreement']:.2%}",
        )
    if check["accuracy_torch"] is not None:
        table.add_row("fp32 accuracy (torch → onnx)", f"{check['accuracy_torch']:.2%} → {check['accuracy_onnx']:.2%}")
    table.add_row("validated on", check["inputs"])
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
    out.print(f"wrote {result.path} ({result.size_bytes:,} bytes), weights {result.weights}; test data: {', '.join(result.test_data)}")


@app.command("predict")
def predict_command(
    images: Annotated[list[str], typer.Argument(help="Image files, folders or globs (PNG, JPEG, BMP, WebP, GIF).")],
    model: Annotated[str | None, typer.Option(help="Model (default: $ZOO_MODEL, else the best shipped Fashion-MNIST model).")] = None,
    backend: Annotated[
        str, typer.Option(help="auto (ONNX Runtime where the validated file is at hand, else torch), torch or onnxruntime.")
    ] = "auto",
    weights: Annotated[
        Path | None, typer.Option(help="Checkpoint to use instead of the shipped weights (it names its model).")
    ] = None,
    onnx: Annotated[Path | None, typer.Option("--onnx", help="An exported .onnx to run (implies onnxruntime).")] = None,
    topk: Annotated[int, typer.Option(help="Classes shown per image.")] = 5,
    data_dir: DataDir = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON Lines on stdout: one object per input, errors included.")
    ] = False,
) -> int:
    """Classify images; with --json one JSON object per input line. Exit status 1 when some inputs failed."""
    results = zoo.predict(
        images, model=model, backend=backend, weights=weights, onnx=onnx, topk=topk, data_dir=data_dir
    )
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


@app.command("serve")
def serve_command(
    models: Annotated[
        list[str] | None, typer.Option("--models", help="Models to serve (repeatable; default: every shipped model).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes sharing the port.")] = 1,
) -> None:
    """HTTP API (/v1/models, /v1/models/NAME/predict, /openapi.json) and a web page at /, on ONNX Runtime."""
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise ZooError('zoo serve needs its extra: python3 -m pip install "zoo-classifiers[serve]"')
    if workers < 1:
        raise ZooError(f"--workers must be at least 1, got {workers}")
    from zoo.serve import serve

    names = [n for item in models or [] for n in item.split(",") if n]
    err.print(f"serving {', '.join(names) or 'every shipped model'} on http://{host}:{port}/ ({workers} worker(s))")
    serve(names or None, host=host, port=port, workers=workers)


@app.command("tune")
def tune_command(
    name: str,
    samples: Annotated[int, typer.Option(help="Trials to sample from the search space.")] = 8,
    space: Annotated[
        Path | None, typer.Option(help="JSON search space: {field: {uniform|loguniform|choice|randint: ...}}.")
    ] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Epochs of every trial's schedule (default: the recipe's).")] = None,
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
        err.print(f"{len(result.failed)} trial(s) failed; the first: {result.failed[0]}")
    if not all(t.completed for t in result.trials):
        out.print("*: stopped early by ASHA; trials that trained the whole schedule rank first")
    if result.plot:
        out.print(f"plot: {result.plot}")
    if result.architecture:
        out.print(f"registry change: widths={tuple(result.architecture)}")
    out.print(f"confirm on three seeds: {result.confirm_command()}", soft_wrap=True)  # one line, to copy whole


TUNE_COLUMNS = {"lr": "lr", "weight_decay": "wd", "dropout": "drop", "label_smoothing": "ls", "teacher": "teacher",
                "distill_weight": "dw", "distill_temperature": "T", "crop_padding": "crop", "ema_decay": "ema",
                "widths": "widths"}  # fmt: skip


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


def _int_list(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ZooError(f"invalid {what} {text!r}; expected comma-separated whole numbers such as 1,8,64") from None


@app.command("benchmark")
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
    json_path: Annotated[Path | None, typer.Option("--save-json", help="Also write the JSON report to this file.")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write the rows as CSV here.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Write a latency-vs-batch-size PNG here.")] = None,
) -> None:
    """Latency, throughput, accuracy and fraction of peak FLOP/s across PyTorch and ONNX Runtime backends."""
    from zoo.bench import report

    result = zoo.benchmark(
        names or None, backends=[b.strip() for b in backends.split(",") if b.strip()] if backends else None,
        batch_sizes=_int_list(batch_sizes, "batch sizes"), threads=_int_list(threads, "thread counts"),
        device=device, warmup=warmup, min_time=min_time, min_runs=min_runs, accuracy_images=accuracy_images,
        data_dir=data_dir, progress=None if as_json else lambda message: err.print(f"[dim]{message}[/]"),
    )  # fmt: skip
    if json_path:
        report.write_json(result, json_path)
    if csv_path:
        report.write_csv(result, csv_path)
    if plot_path:
        reason = report.write_plot(result, plot_path)
        if reason:
            err.print(f"plot skipped: {reason}")
    if as_json:
        return emit_json(result.to_dict())
    # Piped output (a file, a log) gets the full table; a terminal gets what fits its width.
    width = out.width if out.is_terminal else max(out.width, report.WIDE)
    for table in report.tables(result, width):
        out.print(table, width=width, soft_wrap=isinstance(table, str), markup=False)
    for line in report.summary_lines(result):
        out.print(line)


plot_app = typer.Typer(
    help="Pictures of what a model learned: curves, confusion, errors, filters, features, saliency (PNG).",
    no_args_is_help=True,
)
app.add_typer(plot_app, name="plot")
PlotOut = Annotated[Path | None, typer.Option("--out", help="The PNG to write (default NAME-KIND.png here).")]
PlotName = Annotated[str | None, typer.Argument(help="Model (optional with --weights: the checkpoint names it).")]
PlotWeights = Annotated[Path | None, typer.Option(help="Checkpoint to use (default: shipped weights).")]


def _report_plot(plot, as_json: bool) -> None:
    if as_json:
        return emit_json(plot.to_dict())
    out.print(f"wrote {plot.path}", soft_wrap=True)


@plot_app.command("curves")
def plot_curves_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders (with metrics.jsonl) to overlay.")],
    out_path: Annotated[Path, typer.Option("--out", help="The PNG to write.")] = Path("curves.png"),
    as_json: JsonFlag = False,
) -> None:
    """Training loss and train/validation accuracy per epoch, several runs overlaid."""
    from zoo.insight import plot_curves

    plot = plot_curves(run_dirs, out_path)
    if not as_json:
        for label, accuracy in plot.facts["best_val_accuracy"].items():
            out.print(f"{label}: best validation accuracy {accuracy:.2%}")
    _report_plot(plot, as_json)


@plot_app.command("confusion")
def plot_confusion_command(
    name: PlotName = None,
    weights: PlotWeights = None,
    data_dir: DataDir = None,
    out_path: PlotOut = None,
    as_json: JsonFlag = False,
) -> None:
    """Normalised confusion matrix on the test set; lists the most confused pairs."""
    from zoo.insight import plot_confusion

    _need_model(name, weights)
    plot = plot_confusion(name, weights=weights, data_dir=data_dir, out=out_path)
    if not as_json:
        out.print(f"[bold]{plot.model}[/]: test accuracy {plot.facts['accuracy']:.2%}; most confused pairs:")
        table = compact_table("true class", "predicted as", "images", "of class", left=("true class", "predicted as"))
        for pair in plot.facts["confused_pairs"]:
            table.add_row(pair["true"], pair["predicted"], f"{pair['count']:,}", f"{pair['rate']:.1%}")
        out.print(table)
    _report_plot(plot, as_json)


@plot_app.command("errors")
def plot_errors_command(
    name: PlotName = None,
    weights: PlotWeights = None,
    data_dir: DataDir = None,
    out_path: PlotOut = None,
    count: Annotated[int, typer.Option(help="Images shown.")] = 24,
    as_json: JsonFlag = False,
) -> None:
    """The most confidently misclassified test images, with true and predicted class."""
    from zoo.insight import plot_errors

    _need_model(name, weights)
    plot = plot_errors(name, weights=weights, data_dir=data_dir, out=out_path, count=count)
    if not as_json:
        out.print(f"[bold]{plot.model}[/]: {plot.facts['errors']:,} errors on {plot.facts['images']:,} test images")
    _report_plot(plot, as_json)


@plot_app.command("filters")
def plot_filters_command(
    name: PlotName = None, weights: PlotWeights = None, out_path: PlotOut = None, as_json: JsonFlag = False
) -> None:
    """The first convolution's kernels as a grid (RGB for CIFAR-10 models)."""
    from zoo.insight import plot_filters

    _need_model(name, weights)
    _report_plot(plot_filters(name, weights=weights, out=out_path), as_json)


@plot_app.command("features")
def plot_features_command(
    name: Annotated[str, typer.Argument(help="Model.")],
    image: Annotated[Path, typer.Argument(help="Image file (preprocessed as zoo predict does).")],
    weights: PlotWeights = None,
    out_path: PlotOut = None,
    channels: Annotated[int, typer.Option(help="Feature maps shown per convolution.")] = 8,
    as_json: JsonFlag = False,
) -> None:
    """The feature maps of every convolution for one image."""
    from zoo.insight import plot_features

    _report_plot(plot_features(name, image, weights=weights, out=out_path, channels=channels), as_json)


@plot_app.command("saliency")
def plot_saliency_command(
    name: Annotated[str, typer.Argument(help="Model.")],
    image: Annotated[Path, typer.Argument(help="Image file (preprocessed as zoo predict does).")],
    target: Annotated[
        str | None, typer.Option("--class", help="Class name or index (default: the predicted one).")
    ] = None,
    weights: PlotWeights = None,
    out_path: PlotOut = None,
    as_json: JsonFlag = False,
) -> None:
    """Class-activation overlay: Grad-CAM (CNNs) or input gradients (MLPs), computed by Captum."""
    from zoo.insight import plot_saliency

    plot = plot_saliency(name, image, target=target, weights=weights, out=out_path)
    if not as_json:
        facts = plot.facts
        out.print(
            f"[bold]{plot.model}[/]: {facts['method']} for '{facts['class']}' ({facts['probability']:.1%}; predicted '{facts['predicted']}')"
        )
    _report_plot(plot, as_json)


# The library names its arguments (data_dir=DIR); on the command line they are options.
ARGUMENT_WORDS = {
    "data_dir=": "--data-dir ", "weights=": "--weights ", "random_init=True": "--random-init", "resume=": "--resume ",
    "extend=True": "--extend", "out=": "--out ", "topk must": "--topk must", "batch_size=": "--batch-size ",
    "batch= ": "--batch ", "train=True": "--train", "count must": "--count must",
}  # fmt: skip


def cli_words(message: str) -> str:
    """A library error worded for the command line: arguments become the options that set them."""
    pattern = r"(?<![\w-])(" + "|".join(map(re.escape, ARGUMENT_WORDS)) + ")"
    return re.sub(pattern, lambda m: ARGUMENT_WORDS[m.group(0)], message)


def _click_error(error: BaseException, name: str) -> bool:
    # Recent typer releases vendor their own copy of click, so its exception classes are matched by
    # name rather than imported from one module or the other.
    return any(cls.__name__ == name for cls in type(error).__mro__)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and a non-zero status; ZOO_DEBUG=1 shows tracebacks."""
    command = typer.main.get_command(app)
    debug = bool(os.environ.get("ZOO_DEBUG"))
    try:
        result = command.main(args=argv, prog_name="zoo", standalone_mode=False)
    except ZooError as error:
        if debug:
            raise
        err.print(f"error: {cli_words(str(error))}", soft_wrap=True, markup=False)
        return error.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as error:
        if _click_error(error, "NoArgsIsHelpError"):
            out.print(error.ctx.get_help())
            return 0
        if debug or not _click_error(error, "ClickException"):
            raise
        where = error.ctx.command_path if getattr(error, "ctx", None) else "zoo"
        err.print(f"error: {error.format_message()} (try `{where} --help`)", soft_wrap=True)
        return error.exit_code
    except BaseException as error:  # click's Exit and Abort are BaseException subclasses in some versions
        if _click_error(error, "Exit"):
            return error.exit_code
        if _click_error(error, "Abort"):
            err.print("aborted")
            return 130
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
