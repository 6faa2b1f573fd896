"""The public Python API. The CLI calls these functions and nothing else."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from zoo.checkpoint import load_model_weights, sha256_file, shipped_weights_path
from zoo.data import load_dataset
from zoo.errors import WeightsError, ZooError
from zoo.preprocess import predict_logits
from zoo.registry import ModelSpec, get_spec


def create_model(name: str, pretrained: bool = False, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """Build a registered model, in eval mode; with `pretrained`, load its shipped, sha256-verified weights.

    `weights` loads a checkpoint file instead (for example a run's best.safetensors).
    """
    spec = get_spec(name)
    model = spec.builder()
    path = Path(weights) if weights is not None else (pretrained_weights_path(spec) if pretrained else None)
    if path is not None:
        load_model_weights(model, path, spec.name)
    model.zoo_name = spec.name  # lets evaluate() and export find the spec of a model object
    return model.eval()


def pretrained_weights_path(spec: ModelSpec) -> Path:
    """The verified path of a model's shipped weights; a clear error when there are none or they changed."""
    if spec.weights_sha256 is None:
        raise WeightsError(f"{spec.name} has no trained weights shipped yet; train it with `zoo train {spec.name}`")
    path = shipped_weights_path(spec.weights_file)
    if not path.is_file():
        raise WeightsError(f"shipped weights {path} are missing; reinstall zoo or train with `zoo train {spec.name}`")
    digest = sha256_file(path)
    if digest != spec.weights_sha256:
        raise WeightsError(
            f"{path} fails its sha256 check (found {digest[:12]}…, expected {spec.weights_sha256[:12]}…)"
        )
    return path


def train(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    device: str | None = None,
    resume: str | os.PathLike[str] | None = None,
    limit_train: int | None = None,
    progress: bool = True,
    **recipe_overrides: object,
):
    """Train a registered model with its recipe; keyword arguments override recipe fields (epochs=2, lr=0.05)."""
    from zoo.training import train_model

    spec = get_spec(name)
    recipe = spec.recipe.replace(**{k: v for k, v in recipe_overrides.items() if v is not None})
    return train_model(
        spec,
        recipe,
        data_dir=data_dir,
        out=out,
        device=device,
        resume=resume,
        limit_train=limit_train,
        progress=progress,
    )


@dataclass(frozen=True)
class Evaluation:
    model: str  # registry name
    weights: str | None  # file evaluated, None for an in-memory model
    dataset: str  # data set name
    split: str  # always "test" here
    images: int  # number of test images
    accuracy: float  # top-1, fraction
    per_class: dict[str, float]  # class name -> top-1 accuracy (recall)
    confusion_matrix: list[list[int]]  # [true class][predicted class] counts
    tta_flip: bool  # whether logits were averaged with the mirror image

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def evaluate(
    name_or_model: str | nn.Module,
    *,
    weights: str | os.PathLike[str] | None = None,
    spec: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    batch_size: int = 1000,
    limit: int | None = None,
) -> Evaluation:
    """Test accuracy, per-class accuracy and confusion matrix of a model on its data set's test split.

    Pass a name (shipped weights, or `weights=PATH`) or a model from `create_model` (or any module with
    `spec=NAME`).
    """
    from zoo.training.engine import resolve_device

    if batch_size < 1:
        raise ZooError(f"invalid batch size {batch_size}")
    if isinstance(name_or_model, str):
        model_spec = get_spec(name_or_model)
        if weights is None:
            weights = pretrained_weights_path(model_spec)
        model = create_model(model_spec.name, weights=weights)
    else:
        model = name_or_model
        name = spec or getattr(model, "zoo_name", None)
        if name is None:
            raise ZooError("evaluate() needs spec=NAME for a model that did not come from zoo.create_model")
        model_spec = get_spec(name)
    resolved = resolve_device(device)
    test = load_dataset(model_spec.dataset, data_dir).test
    if limit:
        test = test.subset(torch.arange(min(limit, len(test))))
    logits = predict_logits(
        model.to(resolved), test.images, model_spec.preprocessing, tta_flip=model_spec.tta_flip,
        batch_size=batch_size, device=resolved,
    )  # fmt: skip
    predicted = logits.argmax(1)
    classes = model_spec.num_classes
    confusion = torch.bincount(test.labels * classes + predicted, minlength=classes * classes).view(classes, classes)
    per_class = confusion.diag().float() / confusion.sum(1).clamp(min=1).float()
    return Evaluation(
        model=model_spec.name,
        weights=str(weights) if weights is not None else None,
        dataset=model_spec.dataset,
        split="test",
        images=len(test),
        accuracy=(predicted == test.labels).float().mean().item(),
        per_class={c: round(a, 6) for c, a in zip(model_spec.classes, per_class.tolist(), strict=True)},
        confusion_matrix=confusion.tolist(),
        tta_flip=model_spec.tta_flip,
    )


def model_row(name: str) -> dict[str, object]:
    """One model's line in `zoo list`: the registry's facts plus whether weights are present."""
    spec = get_spec(name)
    return {
        "name": spec.name,
        "dataset": spec.dataset,
        "family": spec.family,
        "params": spec.params,
        "budget": spec.budget,
        "macs": spec.macs,
        "accuracy": spec.accuracy,
        "weights_present": spec.weights_sha256 is not None and shipped_weights_path(spec.weights_file).is_file(),
    }


def model_info(name: str) -> dict[str, object]:
    """Everything `zoo info` shows: per-layer summary measured on the real model, recipe, preprocessing, weights."""
    from dataclasses import asdict

    from zoo.summary import summarize

    spec = get_spec(name)
    layers = summarize(spec.builder(), spec.input_shape)
    return {
        **model_row(name),
        "description": spec.description,
        "min_params": spec.min_params,
        "classes": list(spec.classes),
        "input_shape": list(spec.input_shape),
        "layers": [
            {"name": r.name, "type": r.kind, "output_shape": list(r.output_shape), "params": r.params, "macs": r.macs}
            for r in layers
        ],
        "recipe": spec.recipe.to_dict(),
        "preprocessing": asdict(spec.preprocessing),
        "tta_flip": spec.tta_flip,
        "weights": {
            "file": spec.weights_file,
            "sha256": spec.weights_sha256,
            "present": model_row(name)["weights_present"],
        },
        "metrics": dict(spec.metrics),
    }
