"""The studies' own CIFAR-10 networks, reproduced layer for layer (the `ref` family).

They are not part of the nine budgeted models: they exist to reproduce the studies' figures and to show
what zoo's training recipe adds to the very same network (docs/reference.md, `zoo experiment`). Their
parameter counts equal the studies' exactly; the tests recompute them.

Each has two recipes: `STUDY_RECIPES[name]`, which follows its study (Keras/Adam defaults, no
augmentation; where the study did not say, the guess is named below), and its registry recipe, zoo's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from torch import nn

from zoo.core.datasets import CIFAR10, CIFAR10_CLASSES
from zoo.core.recipe import Recipe
from zoo.core.spec import ModelSpec, register


class StridedCNN(nn.Sequential):
    """The Keras tutorial network: conv3x3 16 'same'; conv3x3 16 stride 2; conv3x3 32; conv3x3 32 stride 2;
    dropout 0.5; dense 10 (37,146 parameters). `downsample="maxpool"` is the study's variant: the two strided
    convolutions become stride 1 followed by a 2x2 max-pool (same parameters, 2.3x the MACs)."""

    def __init__(self, downsample: str = "stride", num_classes: int = 10, dropout: float = 0.5):
        if downsample not in ("stride", "maxpool"):
            raise ValueError(f"downsample must be 'stride' or 'maxpool', not {downsample!r}")

        def down(cin: int, cout: int) -> list[nn.Module]:
            if downsample == "stride":
                return [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU()]
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

        super().__init__(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), *down(16, 16),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), *down(32, 32),
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(32 * 8 * 8, num_classes),
        )  # fmt: skip


class ThreeBlockCNN(nn.Sequential):
    """3 x (conv5x5 pad 2 -> ReLU -> max-pool 2) at widths 32/64/128, then FC 64 and FC 10 (390,410 parameters)."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.0):
        blocks: list[nn.Module] = []
        previous = 3
        for width in (32, 64, 128):
            blocks += [nn.Conv2d(previous, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
            previous = width
        super().__init__(
            *blocks, nn.Flatten(), nn.Linear(128 * 4 * 4, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, num_classes)
        )  # fmt: skip


class LeNetBN(nn.Sequential):
    """LeNet with batch norm: conv5x5 3->8, BN, act, pool; conv3x3 8->16, BN, act, pool; FC 576->120->84->10
    (82,078 parameters). `activation` is "relu" or "silu" (the study's comparison)."""

    def __init__(self, activation: str = "relu", num_classes: int = 10, dropout: float = 0.0):
        act = {"relu": nn.ReLU, "silu": nn.SiLU}[activation]
        super().__init__(
            nn.Conv2d(3, 8, 5), nn.BatchNorm2d(8), act(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), act(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(576, 120), act(), nn.Linear(120, 84), act(), nn.Dropout(dropout),
            nn.Linear(84, num_classes),
        )  # fmt: skip


# The studies trained with Keras/PyTorch defaults: Adam at 1e-3, constant, no weight decay, no
# augmentation, keeping the best-validation epoch. Guessed where unstated: batch 64 and 20 epochs for all
# three; the Keras network's L1 1e-4 on its dense kernel is left out (zoo's engine has no L1 term).
STUDY_RECIPE = Recipe(
    epochs=20, batch_size=64, optimizer="adam", lr=1e-3, weight_decay=0.0, warmup_epochs=0.0, min_lr_ratio=1.0,
    label_smoothing=0.0, crop_padding=0, hflip=False,
)  # fmt: skip
# zoo's recipe for small CIFAR networks: SGD (Nesterov) with warm-up and cosine decay, weight decay, label
# smoothing, random crops and flips, bf16 on CPUs that have it.
ZOO_RECIPE = Recipe(
    epochs=30, batch_size=256, optimizer="sgd", lr=0.05, weight_decay=5e-4, label_smoothing=0.1, crop_padding=4,
    hflip=True, cpu_bf16=True,
)  # fmt: skip


class Reference(NamedTuple):
    builder: Callable[..., nn.Module]
    arch: dict[str, object]  # the builder's arguments for this network
    params: int  # as the study printed it
    macs: int
    description: str
    reported: str  # the study's test accuracy
    dropout: float = 0.0  # part of the network (the Keras model's dropout 0.5), so both recipes keep it


# fmt: off
REFERENCE_MODELS = {
    "ref_keras_cnn": Reference(StridedCNN, {}, 37_146, 2_822_144, "Keras strided CNN (CIFAR-10 study)", "≈70% (20 epochs)", 0.5),
    "ref_keras_pool": Reference(
        StridedCNN, {"downsample": "maxpool"}, 37_146, 6_361_088, "Keras CNN, max-pool instead of stride 2", "74%", 0.5,
    ),
    "ref_3block_cnn": Reference(ThreeBlockCNN, {}, 390_410, 28_803_712, "3-block 5x5 CIFAR CNN (CIFAR-10 study)", "73.6%"),
    "ref_lenet_bn": Reference(LeNetBN, {}, 82_078, 716_328, "LeNet-style CNN with batch norm (CIFAR-10 study)", "≈66% plain, 72% aug."),
    "ref_lenet_silu": Reference(LeNetBN, {"activation": "silu"}, 82_078, 716_328, "LeNet-style CNN with BN and SiLU", "73.2%"),
}
# fmt: on
STUDY_RECIPES = {name: STUDY_RECIPE.replace(dropout=ref.dropout) for name, ref in REFERENCE_MODELS.items()}

for _name, _ref in REFERENCE_MODELS.items():
    register(
        ModelSpec(
            name=_name,
            dataset="cifar10",
            classes=CIFAR10_CLASSES,
            preprocessing=CIFAR10,
            builder=_ref.builder,
            arch=_ref.arch,
            budget=_ref.params,  # exact: the study's count is the budget
            min_params=_ref.params,
            params=_ref.params,
            macs=_ref.macs,
            recipe=ZOO_RECIPE.replace(dropout=_ref.dropout),
            family="ref",
            description=f"{_ref.description}; reported {_ref.reported}",
        )
    )
