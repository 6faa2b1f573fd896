"""Convolutional classifiers for Fashion-MNIST at fixed parameter budgets.

VGG-style stacks of full 3x3 convolutions with batch norm, two 2x2 max pools (28 -> 14 -> 7) and a
global-pooling head, so no parameters are spent on a large flattened classifier. One cheap convolution
runs at full resolution; the parameters go into the 14x14 and 7x7 stages, where they buy the most.

Full convolutions rather than depthwise-separable blocks: at these widths the separable blocks bought
no accuracy in 8-epoch pilots and trained 1.5-3x slower on a CPU, where depthwise kernels are
memory-bound. Channel counts are multiples of 8 for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from zoo.core.models.budgets import fashion_mnist_spec
from zoo.core.models.layers import ClassifierHead, conv_bn_act
from zoo.core.recipe import Recipe
from zoo.core.spec import ModelSpec, register


class SmallCNN(nn.Sequential):
    """3x3 convolutions (batch norm, ReLU) of `widths` channels, a 2x2 max pool after each convolution
    listed in `pool_after` (0-based), then global average pooling and a linear classifier."""

    def __init__(
        self,
        widths: Sequence[int],
        pool_after: Sequence[int] = (0, 2),
        in_channels: int = 1,
        num_classes: int = 10,
        dropout: float = 0.0,
    ):
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be positive channel counts, got {list(widths)}")
        layers: list[nn.Module] = []
        previous = in_channels
        for index, channels in enumerate(widths):
            layers.append(conv_bn_act(previous, int(channels), 3))
            previous = int(channels)
            if index in pool_after:
                layers.append(nn.MaxPool2d(2))
        layers.append(ClassifierHead(previous, num_classes, dropout))
        super().__init__(*layers)


def describe(widths: Sequence[int], pool_after: Sequence[int] = (0, 2)) -> str:
    """'CNN: conv8 pool conv16 conv16 pool conv16 conv24', the layer plan in words."""
    words = []
    for index, channels in enumerate(widths):
        words.append(f"conv{channels}")
        if index in pool_after:
            words.append("pool")
    return "CNN: " + " ".join(words)


# Crop and flip help the CNNs (unlike the MLPs); smaller models get more epochs, which are cheap for them.
CNN_RECIPE = Recipe(
    epochs=30, batch_size=256, optimizer="sgd", lr=0.1, weight_decay=5e-4,
    label_smoothing=0.1, crop_padding=2, hflip=True, erasing=0.0,
)  # fmt: skip
# Found by `zoo tune cnn_10k` (docs/tune/cnn_10k.md) and the base of every CNN's recipe here (their cards
# give the three-seed figures): ±1-pixel crops, little label smoothing, a higher learning rate, 50 epochs.
TUNED_CNN_RECIPE = CNN_RECIPE.replace(
    epochs=50, lr=0.188, weight_decay=0.000372, label_smoothing=0.00819, crop_padding=1
)
# The same recipe over twice the schedule, evaluated with an EMA of the weights: it lifted the mean of every
# CNN trained with it (their histories in docs/runs give the figures).
LONG_EMA_CNN_RECIPE = TUNED_CNN_RECIPE.replace(epochs=100, ema_decay=0.999)
# cnn_100k fits its augmented batches best of the four; random erasing on top won on validation
# (`zoo experiment cnn-erasing`).
ERASING_CNN_RECIPE = LONG_EMA_CNN_RECIPE.replace(erasing=0.5)


def _cnn_spec(name: str, budget: int, widths: tuple[int, ...], params: int, macs: int, recipe: Recipe) -> ModelSpec:
    return fashion_mnist_spec(
        name, "cnn", SmallCNN, widths, budget=budget, params=params, macs=macs, recipe=recipe,
        description=describe(widths),
    )  # fmt: skip


register(_cnn_spec("cnn_10k", 10_000, (8, 16, 16, 16, 24), params=9_698, macs=1_016_304, recipe=LONG_EMA_CNN_RECIPE))
register(_cnn_spec("cnn_20k", 20_000, (8, 16, 24, 24, 40), params=19_138, macs=1_637_392, recipe=LONG_EMA_CNN_RECIPE))
register(_cnn_spec("cnn_50k", 50_000, (16, 32, 32, 48, 48), params=49_370, macs=4_516_320, recipe=LONG_EMA_CNN_RECIPE))
register(_cnn_spec(
    "cnn_100k", 100_000, (16, 32, 48, 64, 88), params=98_298, macs=7_564_912, recipe=ERASING_CNN_RECIPE
))  # fmt: skip
