"""The data sets the zoo knows: their class names and the preprocessing their models expect.

Plain facts, shared by the data loader, the registry and the ONNX metadata, so none of them depends on
another for them.
"""

from __future__ import annotations

from dataclasses import dataclass

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
DATASETS = ("fashion_mnist", "cifar10")


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
