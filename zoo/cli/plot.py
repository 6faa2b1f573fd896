"""`zoo plot ...`: pictures of what a model learned, one PNG per command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.app import DataDir, JsonFlag, emit_json, need_model, out
from zoo.core.tables import compact_table

plot_app = typer.Typer(
    help="Pictures of what a model learned: curves, confusion, errors, filters, features, saliency (PNG).",
    no_args_is_help=True,
)
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
            best = "none (trained without a validation split)" if accuracy is None else f"{accuracy:.2%}"
            out.print(f"{label}: best validation accuracy {best}")
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

    need_model(name, weights)
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

    need_model(name, weights)
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

    need_model(name, weights)
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
