"""Pictures of what a model learned: training curves, confusion, its worst errors, first-layer filters,
feature maps and saliency. Each function writes one PNG (atomically) and returns what it drew, so
`zoo plot ...` and Python callers share one implementation.

Images go through `zoo.transforms(name)`, i.e. exactly `zoo predict`'s preprocessing. Saliency uses
Captum (Grad-CAM on the last convolution of a CNN, input gradients for an MLP) rather than our own
gradient code. matplotlib and Captum are the `[plot]` extra.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from zoo.api import evaluate
from zoo.core.data import load_dataset
from zoo.core.errors import ZooError
from zoo.core.files import atomic_write
from zoo.core.loading import LoadedModel, load_model
from zoo.core.preprocess import ImageTransform, predict_logits
from zoo.core.rundir import RunDir
from zoo.core.spec import ModelSpec

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Plot:
    """A written picture and the facts it shows (for the terminal and for --json)."""

    kind: str  # curves, confusion, errors, filters, features or saliency
    path: str  # the PNG written
    model: str | None  # registry name (None for curves of several models)
    facts: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "path": self.path, "model": self.model, **self.facts}


def pyplot():
    missing = [m for m in ("matplotlib", "captum") if importlib.util.find_spec(m) is None]
    if missing:
        raise ZooError(f'zoo plot needs {" and ".join(missing)}: python3 -m pip install "zoo-classifiers[plot]"')
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    return plt


def save_png(figure, out: PathLike) -> str:
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise ZooError(f"out={path} must name a .png file")
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=120, bbox_inches="tight", format="png"))
    pyplot().close(figure)
    return str(path)


# --- training curves ---------------------------------------------------------------------------------


def _validated(run: dict) -> bool:
    return bool(run["metrics"]) and run["metrics"][0]["val_accuracy"] is not None


def _first_accuracy(run: dict) -> float:
    return run["metrics"][0]["val_accuracy" if _validated(run) else "train_accuracy"]


def plot_curves(run_dirs: list[PathLike], out: PathLike = "curves.png") -> Plot:
    """Loss and accuracy per epoch (train and validation) from runs' metrics, overlaid and labelled."""
    if not run_dirs:
        raise ZooError("give at least one run folder")
    runs = [_read_run(Path(d)) for d in run_dirs]
    labels = _run_labels(runs)
    plt = pyplot()
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.get_cmap("tab10")
    for index, (run, label) in enumerate(zip(runs, labels, strict=True)):
        epochs = [r["epoch"] for r in run["metrics"]]
        colour = colours(index % 10)
        loss_axes.plot(epochs, [r["train_loss"] for r in run["metrics"]], color=colour, label=f"{label} train")
        accuracy_axes.plot(
            epochs, [100 * r["train_accuracy"] for r in run["metrics"]], color=colour, label=f"{label} train"
        )
        if _validated(run):  # a run trained on every image (val_size=0) has no validation curve
            loss_axes.plot(epochs, [r["val_loss"] for r in run["metrics"]], "--", color=colour, label=f"{label} val")
            accuracy_axes.plot(
                epochs, [100 * r["val_accuracy"] for r in run["metrics"]], "--", color=colour, label=f"{label} val"
            )
    loss_axes.set(xlabel="epoch", ylabel="loss (train: smoothed labels)", title="loss")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    # The interesting part is near the top: start the axis at the first epoch's validation accuracy (train
    # accuracy for a run without a validation split).
    low = min(100 * _first_accuracy(r) for r in runs if r["metrics"])
    accuracy_axes.set_ylim(max(0.0, low - 2), 100.5)
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
    accuracy_axes.legend(fontsize=7, loc="lower right", ncol=1 if len(runs) < 4 else 2)
    models = sorted({run["model"] for run in runs})
    figure.suptitle(f"training curves: {', '.join(models)} (solid: train, dashed: validation)", fontsize=11)
    figure.tight_layout()
    best = {
        label: max(r["val_accuracy"] for r in run["metrics"]) if _validated(run) else None
        for run, label in zip(runs, labels, strict=True)
    }
    return Plot("curves", save_png(figure, out), models[0] if len(models) == 1 else None, {"best_val_accuracy": best})


def _read_run(run_dir: Path) -> dict[str, object]:
    run = RunDir(run_dir)
    metrics = run.metrics()
    if not metrics:
        raise ZooError(f"{run_dir} is not a run folder with a finished epoch", argument="run_dirs")
    config = run.config() if run.has_config else {}
    return {"dir": run_dir, "model": config.get("model", run_dir.name), "config": config, "metrics": metrics}


def _run_labels(runs: list[dict]) -> list[str]:
    """Short legend labels: the model where models differ, then the folder name where that is not enough."""
    models = [str(run["model"]) for run in runs]
    if len(set(models)) == len(models):
        return models
    names = [run["dir"].name for run in runs]
    if len(set(names)) == len(names):
        return [f"{m} {n}" if len(set(models)) > 1 else n for m, n in zip(models, names, strict=True)]
    return [str(run["dir"]) for run in runs]


# --- confusion and errors ------------------------------------------------------------------------------


def plot_confusion(
    name: str | None = None,
    *,
    weights: PathLike | None = None,
    data_dir: PathLike | None = None,
    out: PathLike | None = None,
) -> Plot:
    """Row-normalised test confusion matrix with class names; facts list the most confused pairs."""
    loaded = load_model(name, weights=weights)
    spec = loaded.spec
    evaluation = evaluate(loaded.model, data_dir=data_dir)  # the matrix `zoo eval` prints
    k = spec.num_classes
    counts = torch.tensor(evaluation.confusion_matrix)
    rates = counts.float() / counts.sum(1, keepdim=True).clamp(min=1)
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7.6, 6.4))
    image = axes.imshow((100 * rates).numpy(), cmap="Blues", vmin=0, vmax=100)
    for i in range(k):
        for j in range(k):
            value = 100 * rates[i, j].item()
            if value >= 0.5 or i == j:
                colour = "white" if value > 60 else "black"
                axes.text(
                    j,
                    i,
                    f"{value:.0f}" if value >= 9.5 else f"{value:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color=colour,
                )
    axes.set_xticks(range(k), spec.classes, rotation=40, ha="right", fontsize=8)
    axes.set_yticks(range(k), spec.classes, fontsize=8)
    axes.set(xlabel="predicted class", ylabel="true class")
    accuracy = evaluation.accuracy
    axes.set_title(
        f"{spec.name}: confusion on {evaluation.images:,} test images (accuracy {accuracy:.2%})", fontsize=10
    )
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="% of the true class")
    pairs = [
        {
            "true": spec.classes[i],
            "predicted": spec.classes[j],
            "count": int(counts[i, j]),
            "rate": round(rates[i, j].item(), 4),
        }
        for i in range(k)
        for j in range(k)
        if i != j and counts[i, j] > 0
    ]
    pairs.sort(key=lambda p: -p["count"])
    facts = {
        "accuracy": accuracy,
        "images": evaluation.images,
        "weights": loaded.weights.label,
        "confused_pairs": pairs[:5],
    }
    return Plot("confusion", save_png(figure, out or f"{spec.name}-confusion.png"), spec.name, facts)


def plot_errors(
    name: str | None = None,
    *,
    weights: PathLike | None = None,
    data_dir: PathLike | None = None,
    out: PathLike | None = None,
    count: int = 24,
) -> Plot:
    """The test images the model got wrong most confidently, with true and predicted class."""
    if count < 1:
        raise ZooError(f"{{count}} must be at least 1, got {count}")
    loaded = load_model(name, weights=weights)
    spec = loaded.spec
    test = load_dataset(spec.dataset, data_dir).test
    probabilities = predict_logits(loaded.model, test.images, spec.preprocessing).softmax(1)
    confidence, predicted = probabilities.max(1)
    wrong = (predicted != test.labels).nonzero().flatten()
    worst = wrong[confidence[wrong].argsort(descending=True)][:count]
    plt = pyplot()
    columns = min(8, max(1, len(worst)))
    rows = max(1, math.ceil(len(worst) / columns))
    figure, grid = plt.subplots(rows, columns, figsize=(1.55 * columns, 1.95 * rows + 0.5), squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for axes, index in zip(grid.flat, worst.tolist(), strict=False):
        _show(axes, test.images[index])
        true, guess = spec.classes[test.labels[index]], spec.classes[predicted[index]]
        axes.set_title(f"true {true}\npred {guess} {confidence[index]:.0%}", fontsize=7, color="firebrick")
    figure.suptitle(
        f"{spec.name}: the {len(worst)} most confident of {len(wrong):,} errors on {len(test):,} test images",
        fontsize=10,
    )
    figure.tight_layout()
    shown = [
        {
            "index": i,
            "true": spec.classes[test.labels[i]],
            "predicted": spec.classes[predicted[i]],
            "confidence": round(confidence[i].item(), 4),
        }
        for i in worst.tolist()
    ]
    facts = {"errors": len(wrong), "images": len(test), "weights": loaded.weights.label, "shown": shown}
    return Plot("errors", save_png(figure, out or f"{spec.name}-errors.png"), spec.name, facts)


def _show(axes, image: torch.Tensor) -> None:
    """A uint8 [C, H, W] image as the data set stores it."""
    if image.shape[0] == 1:
        axes.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=255)
    else:
        axes.imshow(image.permute(1, 2, 0).numpy())
    axes.axis("off")


# --- inside the network ------------------------------------------------------------------------------


def _convolutions(loaded: LoadedModel, what: str) -> list[tuple[str, nn.Conv2d]]:
    convs = [(n, m) for n, m in loaded.model.network.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ZooError(
            f"{loaded.spec.name} is an MLP: it has no convolutions, so no {what} to draw "
            "(curves, confusion, errors and saliency apply to it)"
        )
    return convs


def plot_filters(name: str | None = None, *, weights: PathLike | None = None, out: PathLike | None = None) -> Plot:
    """The first convolution's kernels as a grid: RGB for colour inputs, a diverging map for grey ones."""
    loaded = load_model(name, weights=weights)
    spec = loaded.spec
    layer_name, conv = _convolutions(loaded, "filters")[0]
    kernels = conv.weight.detach().float()  # [out, in, kh, kw]
    plt = pyplot()
    count = len(kernels)
    columns = min(16, count)
    rows = math.ceil(count / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(0.8 * columns + 1.2, 0.8 * rows + 0.9), squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    if kernels.shape[1] == 3:
        # Each kernel scaled to [0, 1] on its own: its colours show which hues and edges it responds to.
        low = kernels.amin(dim=(1, 2, 3), keepdim=True)
        high = kernels.amax(dim=(1, 2, 3), keepdim=True)
        scaled = (kernels - low) / (high - low).clamp(min=1e-12)
        for axes, kernel in zip(grid.flat, scaled, strict=False):
            axes.imshow(kernel.permute(1, 2, 0).numpy(), interpolation="nearest")
        note = "RGB, each kernel scaled to its own range"
        colour_bar = None
    else:
        limit = kernels.abs().max().item()
        for axes, kernel in zip(grid.flat, kernels, strict=False):
            colour_bar = axes.imshow(kernel[0].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        note = "weights, shared colour scale"
    frozen = "" if conv.weight.requires_grad else ", fixed whitening filters computed from training images"
    kh, kw = conv.kernel_size
    figure.suptitle(
        f"{spec.name}: first convolution '{layer_name}', {count} kernels {kh}×{kw}×{conv.in_channels} ({note}{frozen})",
        fontsize=9,
    )
    if kernels.shape[1] != 3:
        figure.colorbar(colour_bar, ax=grid.ravel().tolist(), fraction=0.02, pad=0.02, label="weight")
    facts = {
        "layer": layer_name,
        "kernels": count,
        "kernel_shape": [conv.in_channels, kh, kw],
        "weights": loaded.weights.label,
    }
    return Plot("filters", save_png(figure, out or f"{spec.name}-filters.png"), spec.name, facts)


def plot_features(
    name: str | None,
    image: PathLike,
    *,
    weights: PathLike | None = None,
    out: PathLike | None = None,
    channels: int = 8,
) -> Plot:
    """For one image (preprocessed as `zoo predict` does), the most active feature maps of every convolution."""
    loaded = load_model(name, weights=weights)
    spec = loaded.spec
    convs = [(n, c) for n, c in _convolutions(loaded, "feature maps") if c.kernel_size != (1, 1)]
    x = ImageTransform(spec.preprocessing)(image)[None]
    outputs: dict[str, torch.Tensor] = {}
    hooks = [conv.register_forward_hook(_keep(outputs, layer)) for layer, conv in convs]
    try:
        with torch.inference_mode():
            probabilities = loaded.model.network(x).softmax(1)[0]
    finally:
        for hook in hooks:
            hook.remove()
    plt = pyplot()
    rows = len(convs) + 1
    figure, grid = plt.subplots(rows, channels, figsize=(1.25 * channels, 1.35 * rows + 0.4), squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    _show_input(grid[0, 0], x[0], spec)
    top = probabilities.argmax().item()
    grid[0, 0].set_title("input (as predicted)", fontsize=7)
    grid[0, 1].text(
        0, 0.5, f"{Path(image).name}\n→ {spec.classes[top]} ({probabilities[top]:.0%}, no TTA)", fontsize=8, va="center"
    )
    for row, (layer, _conv) in enumerate(convs, start=1):
        maps = outputs[layer][0].float()  # [C, H, W]
        energy = maps.abs().mean(dim=(1, 2))
        chosen = energy.argsort(descending=True)[:channels]
        for column, channel in enumerate(chosen.tolist()):
            axes = grid[row, column]
            axes.imshow(maps[channel].numpy(), cmap="viridis", interpolation="nearest")
            axes.set_title(f"ch {channel}", fontsize=6)
        c, h, w = maps.shape
        grid[row, 0].text(
            -0.15, 0.5, f"{layer}\n{c}×{h}×{w}", transform=grid[row, 0].transAxes, fontsize=7, ha="right", va="center"
        )
    figure.suptitle(
        f"{spec.name}: feature maps after each convolution (the {channels} most active channels, each on its own scale)",
        fontsize=9,
    )
    figure.tight_layout()
    facts = {
        "image": str(image),
        "layers": [n for n, _ in convs],
        "prediction": spec.classes[top],
        "weights": loaded.weights.label,
    }
    return Plot("features", save_png(figure, out or f"{spec.name}-features.png"), spec.name, facts)


def _keep(store: dict[str, torch.Tensor], name: str):
    def hook(module, inputs, output):
        store[name] = output.detach()

    return hook


def _show_input(axes, x: torch.Tensor, spec: ModelSpec) -> None:
    """A normalised model input [C, H, W] drawn back as the picture it encodes."""
    mean = torch.tensor(spec.preprocessing.mean).view(-1, 1, 1)
    std = torch.tensor(spec.preprocessing.std).view(-1, 1, 1)
    _show(axes, ((x.detach() * std + mean).clamp(0, 1) * 255).round().to(torch.uint8))


def plot_saliency(
    name: str | None,
    image: PathLike,
    *,
    target: str | int | None = None,
    weights: PathLike | None = None,
    out: PathLike | None = None,
) -> Plot:
    """Where the model looks for a class: Captum's Grad-CAM on the last convolution (CNNs) or the input
    gradient (MLPs), over the image as preprocessed for prediction. The class defaults to the predicted one."""
    pyplot()  # Captum is part of the same extra
    from captum.attr import LayerAttribution, LayerGradCam, Saliency

    loaded = load_model(name, weights=weights)
    spec = loaded.spec
    network = loaded.model.network.eval()
    x = ImageTransform(spec.preprocessing)(image)[None]
    with torch.inference_mode():
        probabilities = loaded.model(x).softmax(1)[0]  # as zoo predict reports it (flip TTA included)
    index = probabilities.argmax().item() if target is None else _class_index(spec, target)
    convs = [(n, m) for n, m in network.named_modules() if isinstance(m, nn.Conv2d)]
    if convs:
        layer_name, layer = convs[-1]
        attribution = LayerGradCam(network, layer).attribute(x, target=index, relu_attributions=True)
        heat = LayerAttribution.interpolate(attribution, tuple(x.shape[-2:]), interpolate_mode="bilinear")[0, 0]
        method = f"Grad-CAM on '{layer_name}'"
    else:
        heat = Saliency(network).attribute(x.requires_grad_(), target=index, abs=True)[0].amax(0)
        method = "input-gradient saliency"
    heat = heat.detach()
    heat = heat / heat.max().clamp(min=1e-12)
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(7.2, 3.6))
    _show_input(left, x[0], spec)
    left.set_title("input (as predicted)", fontsize=9)
    _show_input(right, x[0], spec)
    overlay = right.imshow(heat.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
    right.set_title(f"{spec.classes[index]} ({probabilities[index]:.1%})", fontsize=9)
    figure.colorbar(overlay, ax=right, fraction=0.046, pad=0.04, label="relative importance")
    figure.suptitle(f"{spec.name}: {method}, class '{spec.classes[index]}'", fontsize=10)
    figure.tight_layout()
    facts = {
        "image": str(image),
        "class": spec.classes[index],
        "probability": round(probabilities[index].item(), 4),
        "predicted": spec.classes[probabilities.argmax().item()],
        "method": method,
        "weights": loaded.weights.label,
    }
    return Plot("saliency", save_png(figure, out or f"{spec.name}-saliency.png"), spec.name, facts)


def _class_index(spec: ModelSpec, target: str | int) -> int:
    if isinstance(target, int) or str(target).isdigit():
        index = int(target)
        if 0 <= index < spec.num_classes:
            return index
    else:
        lowered = {c.lower(): i for i, c in enumerate(spec.classes)}
        if str(target).lower() in lowered:
            return lowered[str(target).lower()]
    raise ZooError(
        f"unknown class {target!r} for {spec.name}; use 0-{spec.num_classes - 1} or one of: {', '.join(spec.classes)}"
    )
