"""The model registry: one `ModelSpec` per name, declared as data beside each model's code.

A name goes through one path: name -> ModelSpec -> builder -> weights (sha256-checked) -> model.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING

from zoo.errors import ZooError
from zoo.recipe import Recipe

if TYPE_CHECKING:  # the registry's data is read without torch (the ONNX Runtime path); the models need it
    from torch import nn

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input tensor: float in [0, 1], then (x - mean) / std per channel."""

    mean: tuple[float, ...]  # per channel, on the [0, 1] scale
    std: tuple[float, ...]  # per channel, on the [0, 1] scale
    channels: int  # 1 = grey, 3 = RGB
    size: tuple[int, int]  # (height, width) in pixels
    light_on_dark: bool = False  # the data shows light objects on a dark background (Fashion-MNIST)


FASHION_MNIST = Preprocessing(mean=(0.2860,), std=(0.3530,), channels=1, size=(28, 28), light_on_dark=True)
CIFAR10 = Preprocessing(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), channels=3, size=(32, 32))


@dataclass(frozen=True)
class ModelSpec:
    name: str  # registry key, also the weights file stem
    dataset: str  # "fashion_mnist" or "cifar10"
    classes: tuple[str, ...]  # class names in label order
    preprocessing: Preprocessing  # what the model expects as input
    builder: Callable[..., nn.Module]  # builds the untrained model; accepts dropout=
    budget: int  # the parameter budget the model must respect
    params: int  # parameters (weights, biases, norm affine; frozen ones too), checked by tests
    macs: int  # multiply-accumulates per image (conv and linear layers), checked by tests
    recipe: Recipe  # how it is trained
    min_params: int = 0  # lower end of the allowed parameter range
    family: str = ""  # "fcn", "cnn", "resnet" or "ref" (the studies' networks), for studies and filters
    description: str = ""  # one line for tables and model cards
    tta_flip: bool = False  # evaluation averages the logits of the image and its mirror
    weights_sha256: str | None = None  # sha256 of weights/<name>.safetensors; None while untrained
    metrics: Mapping[str, float] = field(default_factory=dict)  # measured with the shipped weights

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.preprocessing.channels, *self.preprocessing.size)

    @property
    def weights_file(self) -> str:
        return f"{self.name}.safetensors"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def accuracy(self) -> float | None:
        """Test accuracy (fraction) of the shipped weights, if any."""
        return self.metrics.get("test_accuracy") if self.weights_sha256 else None


_REGISTRY: dict[str, ModelSpec] = {}
MANIFEST = "manifest.json"


def register(spec: ModelSpec) -> ModelSpec:
    """Add a spec, joined with the facts about its shipped weights (hash, measured metrics) if any."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    shipped = shipped_weights_manifest().get(spec.name)
    if shipped and spec.weights_sha256 is None:
        spec = dataclasses.replace(spec, weights_sha256=shipped["sha256"], metrics=MappingProxyType(shipped["metrics"]))
    _REGISTRY[spec.name] = spec
    return spec


@functools.cache
def shipped_weights_manifest() -> dict[str, dict]:
    """weights/manifest.json: per model, the sha256 and measured metrics of its shipped weights file.

    Written by `zoo study --ship` from real training runs, checked by tests against the files themselves.
    """
    path = resources.files("zoo.weights").joinpath(MANIFEST)
    return json.loads(path.read_text()) if path.is_file() else {}


def registry() -> Mapping[str, ModelSpec]:
    _load_model_modules()
    return MappingProxyType(_REGISTRY)


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, optionally filtered by a shell-style pattern (``cnn_*``) or substring."""
    # Grouped the way people compare them: data set, then family, then size; the studies' reference
    # networks (family "ref") after the zoo's own models.
    order = {"fashion_mnist": 0, "cifar10": 1}
    specs = sorted(
        registry().values(), key=lambda s: (s.family == "ref", order.get(s.dataset, 9), s.family != "fcn", s.params)
    )
    return [spec.name for spec in specs if not pattern or matches(spec.name, pattern)]


def matches(name: str, pattern: str) -> bool:
    """A shell-style pattern (``cnn_*``) matches the whole name; plain text matches anywhere in it."""
    return fnmatch.fnmatchcase(name, pattern if any(c in pattern for c in "*?[") else f"*{pattern}*")


def get_spec(name: str) -> ModelSpec:
    specs = registry()
    if name not in specs:
        close = difflib.get_close_matches(name, list(specs), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known models: {', '.join(specs)}"
        raise ZooError(f"unknown model {name!r}{hint}")
    return specs[name]


def _load_model_modules() -> None:
    # Model modules register their specs on import; importing here keeps the registry complete
    # whichever public function is called first.
    import zoo.models  # noqa: F401
