"""Convolutional classifiers for Fashion-MNIST at fixed parameter budgets.

Full 3x3 convolutions where the channel count is small (they are cheap there and see the most
pixels), depthwise-separable blocks where channels are wide, and a global-pooling head so no
parameters are spent on a large flattened classifier.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from zoo.models.layers import ClassifierHead, conv_bn_act, separable_block
from zoo.recipe import Recipe
from zoo.registry import FASHION_MNIST, FASHION_MNIST_CLASSES, ModelSpec, register

# A layer plan is a tuple of (kind, out_channels, stride): kind "conv" is a full 3x3 convolution,
# "sep" a depthwise-separable block.
LayerPlan = tuple[tuple[str, int, int], ...]


class SmallCNN(nn.Sequential):
    def __init__(self, plan: LayerPlan, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.0):
        layers: list[nn.Module] = []
        previous = in_channels
        for kind, channels, stride in plan:
            block = (
                conv_bn_act(previous, channels, 3, stride)
                if kind == "conv"
                else separable_block(previous, channels, stride)
            )
            layers.append(block)
            previous = channels
        layers.append(ClassifierHead(previous, num_classes, dropout))
        super().__init__(*layers)


CNN_RECIPE = Recipe(
    epochs=30, batch_size=256, optimizer="sgd", lr=0.1, weight_decay=5e-4,
    label_smoothing=0.1, crop_padding=2, hflip=True, erasing=0.0,
)  # fmt: skip


def _cnn_spec(name: str, budget: int, plan: LayerPlan, params: int, macs: int) -> ModelSpec:
    return ModelSpec(
        name=name,
        dataset="fashion_mnist",
        classes=FASHION_MNIST_CLASSES,
        preprocessing=FASHION_MNIST,
        builder=partial(SmallCNN, plan),
        budget=budget,
        min_params=int(0.9 * budget),
        params=params,
        macs=macs,
        recipe=CNN_RECIPE,
        family="cnn",
        description="CNN: " + " ".join(f"{k}{c}{'/2' if s == 2 else ''}" for k, c, s in plan),
    )


CNN_10K: LayerPlan = (("conv", 12, 1), ("sep", 28, 2), ("sep", 40, 1), ("sep", 56, 2), ("sep", 64, 1))
CNN_20K: LayerPlan = (("conv", 12, 1), ("conv", 20, 1), ("sep", 40, 2), ("sep", 52, 1), ("sep", 80, 2), ("sep", 84, 1))
CNN_50K: LayerPlan = (
    ("conv", 20, 1), ("conv", 24, 1), ("sep", 52, 2), ("sep", 76, 1), ("sep", 104, 2), ("sep", 104, 1), ("sep", 128, 1),
)  # fmt: skip
CNN_100K: LayerPlan = (
    ("conv", 24, 1), ("conv", 36, 1), ("sep", 76, 2), ("sep", 100, 1), ("sep", 152, 2), ("sep", 164, 1), ("sep", 176, 1),
)  # fmt: skip

register(_cnn_spec("cnn_10k", 10_000, CNN_10K, params=9_934, macs=768_960))
register(_cnn_spec("cnn_20k", 20_000, CNN_20K, params=19_566, macs=3_040_604))
register(_cnn_spec("cnn_50k", 50_000, CNN_50K, params=47_998, macs=6_377_356))
register(_cnn_spec("cnn_100k", 100_000, CNN_100K, params=96_354, macs=12_054_976))
