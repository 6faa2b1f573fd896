"""`ModelSpec`, the registry entry of a model: what it is, what it costs and how it trains, as data.

Model files (zoo/core/models/) declare their specs beside the code and `register` them; the registry
(zoo.core.registry) looks them up. A spec's shipped weights (default tag, sha256, measured metrics) are read
from weights/manifest.json when asked, never frozen at import, so a manifest written in the same process
(`zoo study --ship`, which then exports the ONNX file) is seen at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from zoo.core.datasets import Preprocessing
from zoo.core.images import photo_recipe
from zoo.core.recipe import Recipe
from zoo.core.weights import ShippedWeights, default_weights

if TYPE_CHECKING:  # the registry's data is read without torch (the ONNX Runtime path); the models need it
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    name: str  # registry key
    dataset: str  # "fashion_mnist" or "cifar10"
    classes: tuple[str, ...]  # class names in label order
    preprocessing: Preprocessing  # what the model expects as input
    builder: Callable[..., nn.Module]  # builds the untrained model from architecture keyword arguments
    budget: int  # the parameter budget the model must respect
    params: int  # parameters (weights, biases, norm affine; frozen ones too), checked by tests
    macs: int  # multiply-accumulates per image (conv and linear layers), checked by tests
    recipe: Recipe  # how it is trained
    min_params: int = 0  # lower end of the allowed parameter range
    family: str = ""  # "fcn", "cnn", "resnet" or "ref" (the studies' networks), for studies and filters
    description: str = ""  # one line for tables and model cards
    tta_flip: bool = False  # evaluation averages the logits of the image and its mirror
    arch: Mapping[str, object] = field(default_factory=dict)  # the builder's registered arguments (widths, ...)
    tta_shift: bool = False  # with tta_flip: also the mirrored pair shifted one pixel up-left and down-right
    shipped_dtype: str = "float32"  # how its shipped files store floats; "float16" halves a large model's install

    @property
    def shipped(self) -> ShippedWeights | None:
        """Its default shipped weights as the manifest says now; None while untrained."""
        return default_weights(self.name)

    @property
    def weights_sha256(self) -> str | None:
        """sha256 of its default weights tag's file; None while untrained."""
        return self.shipped.sha256 if self.shipped else None

    @property
    def weights_tag(self) -> str | None:
        """The default tag of its shipped weights (`name.tag`); None while untrained."""
        return self.shipped.tag if self.shipped else None

    @property
    def metrics(self) -> Mapping[str, float]:
        """What was measured with its default weights (empty while untrained)."""
        return MappingProxyType(dict(self.shipped.metrics) if self.shipped else {})

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.preprocessing.channels, *self.preprocessing.size)

    @property
    def weights_file(self) -> str | None:
        """The default tag's file in weights/ (`NAME.TAG.safetensors`); None while untrained. Kept from before
        tags, when it was `NAME.safetensors`."""
        return f"{self.name}.{self.weights_tag}.safetensors" if self.weights_tag else None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def accuracy(self) -> float | None:
        """Test accuracy (fraction) of the shipped weights, if any."""
        return self.metrics.get("test_accuracy") if self.weights_sha256 else None

    def pretrained_cfg(self, weights_sha256: str | None = None, tta_shift: bool | None = None) -> dict[str, object]:
        """What the model needs to be run as zoo runs it, in timm's `pretrained_cfg` spirit (plain data): carried
        by every Classifier and, with the ONNX format's own spelling, by every exported file."""
        pre = self.preprocessing
        return {
            "model": self.name,
            "dataset": self.dataset,
            "classes": list(self.classes),
            "mean": list(pre.mean),  # per channel, on the [0, 1] scale: input = (pixel / 255 - mean) / std
            "std": list(pre.std),
            "input_size": list(self.input_shape),  # (C, H, W)
            "light_on_dark": pre.light_on_dark,
            "tta_flip": self.tta_flip,  # the Classifier in eval mode averages image and mirror itself
            # and, where these weights were measured so, the mirrored pair shifted by one pixel (zoo.core.loading)
            "tta_shift": self.tta_shift if tta_shift is None else tta_shift,
            "photo_recipe": photo_recipe(pre),  # how an arbitrary image becomes the input (zoo.transforms)
            "weights_sha256": weights_sha256,
        }

    def build(self, **arch: object) -> nn.Module:
        """The untrained network; keyword arguments change the registered architecture (widths=, dropout=)."""
        return self.builder(**{**self.arch, **arch})


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a spec; its shipped weights are read from the manifest when asked, not here."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def registered() -> Mapping[str, ModelSpec]:
    """The specs registered so far (zoo.core.registry imports every model module first)."""
    return MappingProxyType(_REGISTRY)
