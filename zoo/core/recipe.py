"""Training recipes: plain data, one frozen dataclass per model, every field overridable from the CLI."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from zoo.core.errors import ZooError


@dataclass(frozen=True)
class Recipe:
    epochs: int = 30  # passes over the training split
    batch_size: int = 256  # images per optimizer step
    optimizer: str = "sgd"  # any timm optimizer name: sgd (Nesterov), adamw, lamb, ...
    lr: float = 0.1  # peak learning rate at batch_size
    momentum: float = 0.9  # SGD momentum (ignored by Adam-type optimizers)
    weight_decay: float = 5e-4  # decoupled for AdamW; never applied to biases and norm parameters
    warmup_epochs: float = 1.0  # linear warm-up before the cosine decay, in epochs
    min_lr_ratio: float = 0.01  # final learning rate as a fraction of lr
    label_smoothing: float = 0.1  # cross-entropy target smoothing
    ema_decay: float = 0.0  # exponential moving average of weights per step; 0 disables
    crop_padding: int = 2  # random translation by up to this many pixels (zero padding); 0 disables
    hflip: bool = True  # random horizontal flip
    erasing: float = 0.0  # probability of random erasing (cutout) per image
    dropout: float = 0.0  # dropout before the classifier, passed to the builder when it accepts it
    # knowledge distillation: shipped weights by tag ("cnn_50k.v2"), "name=path.safetensors", or an ensemble
    # of these joined by "+" ("cnn_100k.v4+cnn_50k.v3", whose logits are averaged)
    teacher: str = ""
    distill_weight: float = 0.0  # share of the loss spent matching the teacher's softened outputs, 0-1
    distill_temperature: float = 4.0  # softening temperature of student and teacher outputs
    # the teacher answers each crop offset the student is shown ((2 * crop_padding + 1)² views, each mirrored),
    # or, when False, the whole image and its mirror only: 2 teacher passes instead of 50 at crop_padding=2
    teacher_crops: bool = True
    val_size: int = 5000  # images held out of the training set for model selection
    split_seed: int = 0  # seed of the train/validation split, fixed so seeds compare on one split
    seed: int = 0  # seed of initialisation, shuffling and augmentation
    compile: bool = False  # torch.compile the model (worth it on a GPU for long runs)
    cpu_bf16: bool = False  # bf16 autocast on CPUs with native bf16 (avx512_bf16, AMX): about 2x faster convs
    # airbench's mechanisms (training/airbench.py explains each); off by default
    lr_schedule: str = "cosine"  # "cosine" (timm, warm-up from 1%) or "triangular" (warm-up from 20%, then linear)
    bias_lr_scale: float = 1.0  # batch-norm shifts: learning rate times this, weight decay divided by it
    lookahead: bool = False  # lookahead EMA every 5 steps; the weights end as the EMA
    alternating_flip: bool = False  # mirror every image in every other epoch instead of at random (needs hflip)
    crop_reflect: bool = False  # pad random crops by reflection instead of zeros
    whiten_stem: bool = False  # fix the stem convolution to the whitening of training patches
    whiten_bias_epochs: int = 3  # epochs the whitened stem's bias trains before it is frozen too
    dirac_init: bool = False  # 3x3 convolutions start as the identity on their first channels
    freeze_bn_scale: bool = False  # batch norms keep scale 1 and learn only their shift

    def replace(self, **overrides: object) -> Recipe:
        """A copy with some fields changed; unknown names or wrong types are user errors."""
        known = {f.name: f for f in dataclasses.fields(self)}
        converted = {}
        for key, value in overrides.items():
            if key not in known:
                raise ZooError(f"unknown recipe field {key!r}; known fields: {', '.join(known)}", argument=key)
            converted[key] = _coerce(key, value, type(getattr(self, key)))
        new = dataclasses.replace(self, **converted)
        new.validate()
        return new

    def validate(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "warmup_epochs": self.warmup_epochs >= 0,
            "label_smoothing": 0 <= self.label_smoothing < 1,
            "ema_decay": 0 <= self.ema_decay < 1,
            "crop_padding": self.crop_padding >= 0,
            "erasing": 0 <= self.erasing <= 1,
            "dropout": 0 <= self.dropout < 1,
            "val_size": self.val_size >= 0,
            "distill_weight": 0 <= self.distill_weight <= 1,
            "distill_temperature": self.distill_temperature > 0,
            "lr_schedule": self.lr_schedule in ("cosine", "triangular"),
            "bias_lr_scale": self.bias_lr_scale > 0,
            "whiten_bias_epochs": self.whiten_bias_epochs >= 0,
        }
        for field, ok in checks.items():
            if not ok:
                raise ZooError(f"invalid value for {{{field}}}: {getattr(self, field)!r}")
        if self.alternating_flip and not self.hflip:
            raise ZooError("alternating_flip chooses which epochs mirror an image: it needs {hflip=True}")
        if self.lookahead and self.ema_decay:
            raise ZooError("lookahead and ema_decay both average the weights: choose one", argument="lookahead")

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def changes(self) -> dict[str, object]:
        """The fields that differ from a default Recipe()."""
        defaults = Recipe().to_dict()
        return {key: value for key, value in self.to_dict().items() if value != defaults[key]}


def _coerce(key: str, value: object, kind: type) -> object:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError) as error:
        raise ZooError(f"invalid value for {key}: {value!r} (expected {kind.__name__})", argument=key) from error


# What tables and plots call recipe fields (and a sweep's `widths`), where their names are too terse.
FIELD_NAMES = {
    "lr": "learning rate", "weight_decay": "weight decay", "dropout": "dropout", "label_smoothing": "label smoothing",
    "teacher": "teacher", "distill_weight": "distillation weight", "distill_temperature": "temperature",
    "crop_padding": "crop (px)", "ema_decay": "EMA decay", "widths": "widths",
}  # fmt: skip
