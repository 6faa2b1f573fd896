"""CIFAR-10 models: our best plain CNN and the standard CIFAR ResNet-18."""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet18

from zoo.core.datasets import CIFAR10, CIFAR10_CLASSES
from zoo.core.recipe import Recipe
from zoo.core.spec import ModelSpec, register


def _conv_group(cin: int, cout: int) -> nn.Sequential:
    """Conv, max-pool, BN, GELU, conv, BN, GELU: the airbench block, which halves the resolution."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(cout),
        nn.GELU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.GELU(),
    )


class PlainCNN(nn.Sequential):
    """airbench94's network (Keller Jordan, 2024): 94% on CIFAR-10 in seconds on one GPU, no skip connections.

    A 2x2 stem convolution, three conv groups of 64, 256 and 256 channels, max-pool to 1x1 and a linear head.
    """

    def __init__(self, widths: tuple[int, int, int], num_classes: int = 10, dropout: float = 0.0):
        stem = 24
        super().__init__(
            nn.Conv2d(3, stem, 2, padding=0),
            nn.GELU(),
            _conv_group(stem, widths[0]),
            _conv_group(widths[0], widths[1]),
            _conv_group(widths[1], widths[2]),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(widths[2], num_classes, bias=False),
        )


def resnet18_cifar(num_classes: int = 10, dropout: float = 0.0) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem: a 3x3 stride-1 first convolution and no max-pool."""
    model = resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    if dropout:
        model.fc = nn.Sequential(nn.Dropout(dropout), model.fc)
    return model


# Wide crops and random erasing regularise the plain network, which overfits in short schedules; bf16
# on CPUs with native bf16 (AMX, avx512_bf16) about doubles its training speed.
CIFAR_CNN_RECIPE = Recipe(
    epochs=50, batch_size=512, optimizer="sgd", lr=0.2, weight_decay=5e-4,
    label_smoothing=0.2, crop_padding=4, hflip=True, erasing=0.25, ema_decay=0.0, cpu_bf16=True,
)  # fmt: skip
# The standard CIFAR ResNet-18 recipe (SGD at 0.1 per 128 images, weight decay 5e-4) scaled linearly to
# batch 512, on a schedule short enough for a 2-core CPU: bf16 autocast, 40 epochs, two of warm-up.
RESNET_RECIPE = Recipe(
    epochs=40, batch_size=512, optimizer="sgd", lr=0.4, warmup_epochs=2.0, weight_decay=5e-4,
    label_smoothing=0.1, crop_padding=4, hflip=True, erasing=0.25, cpu_bf16=True,
)  # fmt: skip

register(
    ModelSpec(
        name="cifar_cnn_best",
        dataset="cifar10",
        classes=CIFAR10_CLASSES,
        preprocessing=CIFAR10,
        builder=PlainCNN,
        arch={"widths": (64, 256, 256)},
        budget=2_000_000,
        params=1_972_792,
        macs=118_147_360,
        recipe=CIFAR_CNN_RECIPE,
        family="cnn",
        description="plain CNN after airbench94: conv groups 64-256-256, no skip connections",
        tta_flip=True,
    )
)
register(
    ModelSpec(
        name="resnet18_cifar",
        dataset="cifar10",
        classes=CIFAR10_CLASSES,
        preprocessing=CIFAR10,
        builder=resnet18_cifar,
        budget=11_200_000,
        min_params=11_100_000,
        params=11_173_962,
        macs=555_422_720,
        recipe=RESNET_RECIPE,
        family="resnet",
        description="ResNet-18 with a 3x3 stride-1 stem and no max-pool (the standard CIFAR variant)",
        tta_flip=True,
    )
)
