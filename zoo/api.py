"""The public Python API. The CLI calls these functions and nothing else."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from zoo.core.data import load_dataset
from zoo.core.device import resolve_device
from zoo.core.errors import ZooError
from zoo.core.loading import Classifier, load_model
from zoo.core.numbers import fraction
from zoo.core.preprocess import ImageTransform, predict_logits
from zoo.core.registry import get_spec
from zoo.core.rundir import RunDir

if TYPE_CHECKING:
    from zoo.training import TrainResult


def create_model(
    name: str | None = None, pretrained: bool = False, weights: str | os.PathLike[str] | None = None, **kwargs: object
) -> Classifier:
    """Build a registered model in eval mode, carrying its config (`model.pretrained_cfg`).

    `pretrained=True` loads the shipped, sha256-verified weights (`name.tag`, e.g. "cnn_50k.v1", for a tag
    other than the default); `weights=PATH` a checkpoint instead (a run's best.safetensors or last.safetensors;
    its metadata names the model, so `name` may be left out). Keyword arguments are architecture arguments of
    the model's builder (`widths=(16, 32, 32, 48, 48)`, `dropout=0.1`), as in timm's `create_model`. In eval
    mode the model computes what zoo reports, flip test-time augmentation included:
    `model(zoo.transforms(name)(image)[None])` gives `zoo predict`'s logits.
    """
    return load_model(name, weights=weights, pretrained=pretrained, **kwargs).model


def transforms(name: str) -> ImageTransform:
    """The callable that turns a path, PIL image or array into `name`'s input tensor, as `zoo predict` does."""
    return ImageTransform(get_spec(name).preprocessing)


def train(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    device: str | None = None,
    resume: str | os.PathLike[str] | None = None,
    extend: bool = False,
    limit_train: int | None = None,
    progress: bool = True,
    arch: dict[str, object] | None = None,
    on_epoch=None,
    measure_test: bool = True,
    **recipe_overrides: object,
) -> TrainResult:
    """Train a registered model with its recipe; keyword arguments override recipe fields (epochs=2, lr=0.05).

    `resume=RUN_DIR` continues a run with the recipe it was started with; a different value for any field
    is refused, except `epochs` with `extend=True`, which lengthens the run and continues its learning-rate
    schedule smoothly from where it stands. `arch` changes the architecture (`{"widths": [...]}`); `on_epoch`
    receives each epoch's record; `measure_test=False` never touches the test set (a hyper-parameter search).
    """
    from zoo.training import train_model  # on first use: the trainer imports timm, which evaluation never needs

    spec = get_spec(name)
    overrides = {k: v for k, v in recipe_overrides.items() if v is not None}
    recipe = spec.recipe.replace(**overrides) if resume is None else _resumed_recipe(resume, overrides, extend)
    return train_model(
        spec, recipe, data_dir=data_dir, out=out if resume is None else None, device=device, resume=resume,
        limit_train=limit_train, progress=progress, on_epoch=on_epoch, measure_test=measure_test, arch=arch,
    )  # fmt: skip


def _resumed_recipe(resume: str | os.PathLike[str], overrides: dict[str, object], extend: bool):
    """The recipe a resumed run continues with: its own, or its own with more epochs when extending."""
    started = RunDir.of(resume).recipe()
    recipe = started.replace(**overrides)
    changed = {k: v for k, v in recipe.to_dict().items() if v != getattr(started, k)}
    allowed = {"epochs"} if extend else set()
    if set(changed) - allowed:
        field = sorted(set(changed) - allowed)[0]
        hint = "; to train it longer pass {extend=True}" if field == "epochs" else ""
        raise ZooError(
            f"the run in {resume} was started with {field}={getattr(started, field)!r}, not {changed[field]!r}: "
            f"a resumed run keeps its recipe{hint}",
            argument=field,
        )
    if extend and "epochs" not in changed:
        raise ZooError(f"{{extend=True}} needs more {{epochs}} than the run's {started.epochs}")
    if recipe.epochs < started.epochs:
        raise ZooError(f"a run can only be extended: {recipe.epochs} epochs < its {started.epochs}", argument="epochs")
    return recipe


def finish_run(name: str, run_dir: str | os.PathLike[str], **options: object) -> TrainResult | None:
    """Make sure the run in `run_dir` is trained: nothing when it has finished, a resume when it has started
    (its own recipe), else a new run there with `options` (recipe fields and `train` arguments)."""
    run = RunDir(run_dir)
    if run.finished:
        return None
    if run.started:
        kept = ("data_dir", "device", "progress", "on_epoch", "measure_test", "limit_train", "arch")
        engine = {k: v for k, v in options.items() if k in kept}
        return train(name, resume=run.path, **engine)
    return train(name, out=run.path, **options)


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
    name_or_model: str | nn.Module | None = None,
    *,
    weights: str | os.PathLike[str] | None = None,
    spec: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    batch_size: int = 1000,
    limit: int | None = None,
) -> Evaluation:
    """Test accuracy, per-class accuracy and confusion matrix of a model on its data set's test split.

    Pass a name (shipped weights), `weights=PATH` (the checkpoint names its model), or a model from
    `create_model` (or any module with `spec=NAME`).
    """
    if batch_size < 1:
        raise ZooError(f"invalid {{batch_size}} {batch_size}")
    if isinstance(name_or_model, nn.Module):
        model = name_or_model
        name = spec or getattr(model, "pretrained_cfg", {}).get("model")
        if name is None:
            raise ZooError("evaluate() needs {spec=NAME} for a model that did not come from zoo.create_model")
        model_spec = get_spec(name)
        if not isinstance(model, Classifier):  # a bare network: evaluate it as zoo does (flip TTA included)
            model = Classifier(model, model_spec)
    else:
        loaded = load_model(name_or_model, weights=weights)
        model, model_spec = loaded.model, loaded.spec
        weights = loaded.weights.path
    resolved = resolve_device(device)
    test = load_dataset(model_spec.dataset, data_dir).test
    if limit:
        test = test.subset(torch.arange(min(limit, len(test))))
    logits = predict_logits(
        model.to(resolved), test.images, model_spec.preprocessing, batch_size=batch_size, device=resolved
    )
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
        accuracy=fraction((predicted == test.labels).float().mean().item()),
        per_class={c: round(a, 6) for c, a in zip(model_spec.classes, per_class.tolist(), strict=True)},
        confusion_matrix=confusion.tolist(),
        tta_flip=model_spec.tta_flip,
    )
