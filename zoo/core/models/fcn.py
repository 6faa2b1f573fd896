"""Fully connected classifiers (MLPs) for Fashion-MNIST at fixed parameter budgets: no convolutions."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from zoo.core.models.budgets import fashion_mnist_spec
from zoo.core.recipe import Recipe
from zoo.core.spec import ModelSpec, register


class FCN(nn.Sequential):
    """Flatten, then Linear -> BatchNorm -> ReLU per hidden layer of `widths`, dropout and a linear classifier.

    Hidden linears carry no bias because batch norm adds one; batch norm lets these MLPs train at
    SGD learning rates that a plain MLP would diverge at.
    """

    def __init__(self, widths: Sequence[int], in_features: int = 784, num_classes: int = 10, dropout: float = 0.0):
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be positive layer widths, got {list(widths)}")
        layers: list[nn.Module] = [nn.Flatten()]
        previous = in_features
        for width in map(int, widths):
            layers += [nn.Linear(previous, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            previous = width
        layers += [nn.Dropout(dropout), nn.Linear(previous, num_classes)]
        super().__init__(*layers)


# Shifts and crops move pixels across an MLP's fixed input weights, which hurts it on hard labels,
# so the plain FCN recipe relies on flips, label smoothing and dropout instead.
FCN_RECIPE = Recipe(
    epochs=40, batch_size=256, optimizer="sgd", lr=0.1, weight_decay=5e-5,
    label_smoothing=0.1, crop_padding=0, hflip=True, dropout=0.1,
)  # fmt: skip
# Distillation from a shipped CNN (its soft labels for every view of each training image) over a long
# schedule lifts every MLP (their cards give the figures). The teacher is named by its weights tag, so the
# recipe always means the weights it was measured with. With a teacher that labels each shifted view too,
# ±1-pixel crops stop hurting an MLP and help it: the best variant of `zoo experiment fcn-teachers`
# (docs/experiments/fcn-teachers.md) for fcn_50k, confirmed on three seeds of fcn_100k and fcn_200k.
DISTILLED_FCN_RECIPE = FCN_RECIPE.replace(epochs=150, teacher="cnn_100k.v2", distill_weight=0.9, crop_padding=1)
# Longer schedules, chosen on validation: twice the epochs by `zoo experiment fcn-long` for the wider two, and
# four times for fcn_50k by `zoo experiment fcn-schedule` (docs/experiments/fcn-schedule.md), over twice the
# epochs with or without a weight EMA.
LONG_FCN_RECIPE = DISTILLED_FCN_RECIPE.replace(epochs=300)
FCN_50K_RECIPE = DISTILLED_FCN_RECIPE.replace(epochs=600)
# Found by `zoo tune fcn_100k` (docs/tune/fcn_100k-ema.md), with a third, narrower hidden layer: weight EMA,
# a softer teacher and little label smoothing; fcn_100k.v2's recipe, then twice its schedule.
TUNED_FCN_100K_RECIPE = DISTILLED_FCN_RECIPE.replace(
    lr=0.129, weight_decay=3.44e-05, label_smoothing=0.0525, ema_decay=0.998, dropout=0.0123,
    distill_weight=0.956, distill_temperature=6.0,
)  # fmt: skip
FCN_100K_RECIPE = TUNED_FCN_100K_RECIPE.replace(epochs=300)


def _fcn_spec(name: str, budget: int, widths: tuple[int, ...], params: int, macs: int, recipe: Recipe) -> ModelSpec:
    return fashion_mnist_spec(
        name, "fcn", FCN, widths, budget=budget, params=params, macs=macs, recipe=recipe,
        description=f"MLP 784-{'-'.join(map(str, widths))}-10 with batch norm",
    )  # fmt: skip


register(_fcn_spec("fcn_50k", 50_000, (54, 54, 54), params=49_042, macs=48_708, recipe=FCN_50K_RECIPE))
register(_fcn_spec("fcn_100k", 100_000, (100, 100, 64), params=95_978, macs=95_440, recipe=FCN_100K_RECIPE))
register(_fcn_spec("fcn_200k", 200_000, (200, 200), params=199_610, macs=198_800, recipe=LONG_FCN_RECIPE))
