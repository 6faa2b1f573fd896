"""Building blocks shared by the model families."""

from __future__ import annotations

from torch import nn


def conv_bn_act(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Convolution (no bias: the batch norm that follows has one), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ClassifierHead(nn.Sequential):
    """Global average pooling, dropout, linear classifier."""

    def __init__(self, features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(features, num_classes))
