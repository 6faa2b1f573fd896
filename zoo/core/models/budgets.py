"""The spec of a Fashion-MNIST model at a parameter budget: what the MLPs and CNNs of the study share."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from zoo.core.datasets import FASHION_MNIST, FASHION_MNIST_CLASSES
from zoo.core.recipe import Recipe
from zoo.core.spec import ModelSpec


def fashion_mnist_spec(
    name: str,
    family: str,
    builder: Callable[..., nn.Module],
    widths: tuple[int, ...],
    *,
    budget: int,
    params: int,
    macs: int,
    recipe: Recipe,
    description: str,
) -> ModelSpec:
    """A budgeted Fashion-MNIST model: it must use 90-100% of its budget, and averages flip TTA (worth
    0.1-0.3 points for both families)."""
    return ModelSpec(
        name=name,
        dataset="fashion_mnist",
        classes=FASHION_MNIST_CLASSES,
        preprocessing=FASHION_MNIST,
        builder=builder,
        arch={"widths": widths},
        budget=budget,
        min_params=int(0.9 * budget),
        params=params,
        macs=macs,
        recipe=recipe,
        family=family,
        tta_flip=True,
        description=description,
    )
