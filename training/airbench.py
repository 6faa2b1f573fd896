"""The mechanisms that carry airbench's speed (Keller Jordan, 2024: airbench94 trains CIFAR-10 to 94% in
seconds), as named recipe features of the one training loop. Each is off by default and measured on its own
in the README's ablation table:

    whiten_stem       the stem convolution is fixed to the whitening of 2x2 training patches (its bias trains
                      for the first `whiten_bias_epochs` epochs)
    dirac_init        3x3 convolutions start as the identity on their first channels
    freeze_bn_scale   batch norms keep scale 1 and learn only their shift
    bias_lr_scale     batch-norm shifts learn at that multiple of the learning rate, with the weight
                      decay divided by it, so they decay per step as the weights do
    lr_schedule       "triangular": linear warm-up from 0.2x over `warmup_epochs`, then linear down to `min_lr_ratio`
    lookahead         every 5 steps an EMA is pulled towards the weights and the weights back to it; the EMA's
                      decay grows as 0.95^5 * progress^3, and the weights end as the EMA
    alternating_flip  every image is mirrored in every other epoch (a fixed random half starts mirrored)
    crop_reflect      random crops pad by reflection rather than with zeros
"""

from __future__ import annotations

import torch
from timm.scheduler.scheduler import Scheduler
from torch import nn

from zoo.core.errors import ZooError

WHITENING_PATCHES_FROM = 5000  # training images whose patches estimate the covariance (airbench's choice)
WHITENING_EPS = 5e-4
LOOKAHEAD_EVERY = 5  # steps between lookahead updates
TRIANGULAR_START = 0.2  # the triangular schedule starts at this fraction of the peak learning rate


# --- initialisation ------------------------------------------------------------------------------------


def stem_of(network: nn.Module) -> nn.Conv2d:
    stem = getattr(network, "stem", None)
    if not isinstance(stem, nn.Conv2d) or stem.out_channels != 2 * stem.in_channels * stem.kernel_size[0] ** 2:
        raise ZooError(
            "whiten_stem needs a network whose `stem` is a convolution with 2 x (channels x kernel²) outputs "
            "(cifar_cnn_best has one)",
            argument="whiten_stem",
        )
    return stem


@torch.no_grad()
def whiten_stem(network: nn.Module, images: torch.Tensor) -> None:
    """Set the stem to the whitening of the patches of `images` (normalised float [N, C, H, W]): its filters
    are the covariance's eigenvectors scaled by 1/sqrt(eigenvalue), each with its negation; the weights are
    frozen from here on."""
    stem = stem_of(network)
    c, (h, w) = images.shape[1], stem.kernel_size
    patches = images.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c, h, w).float()
    flat = patches.reshape(len(patches), -1)
    eigenvalues, eigenvectors = torch.linalg.eigh(flat.T @ flat / len(flat))
    filters = eigenvectors.T.reshape(-1, c, h, w) / torch.sqrt(eigenvalues.view(-1, 1, 1, 1) + WHITENING_EPS)
    stem.weight.copy_(torch.cat((filters, -filters)).to(stem.weight))
    stem.weight.requires_grad_(False)


@torch.no_grad()
def dirac_init(network: nn.Module) -> None:
    """Every 3x3 convolution with at least as many outputs as inputs starts as the identity on its first
    channels (the rest keep their random start): a deep plain network starts near a shallow one."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3) and module.groups == 1:
            weight = module.weight
            if weight.shape[0] >= weight.shape[1]:
                nn.init.dirac_(weight[: weight.shape[1]])


def freeze_bn_scale(network: nn.Module) -> None:
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None:
            module.weight.requires_grad_(False)


# --- optimiser -----------------------------------------------------------------------------------------


def parameter_groups(network: nn.Module, lr: float, weight_decay: float, bias_scale: float) -> list[dict]:
    """Trainable parameters in two groups, both decayed: batch-norm shifts at `bias_scale` times the learning
    rate and 1/`bias_scale` times the weight decay, everything else (the stem's bias too) as given."""
    shifts = {id(m.bias) for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    trainable = [p for p in network.parameters() if p.requires_grad]
    biases = [p for p in trainable if id(p) in shifts]
    others = [p for p in trainable if id(p) not in shifts]
    return [  # the weights first: records report the first group's learning rate
        {"params": others, "lr": lr, "weight_decay": weight_decay},
        {"params": biases, "lr": lr * bias_scale, "weight_decay": weight_decay / bias_scale},
    ]


class TriangularLR(Scheduler):
    """timm-style per-step schedule: each group's learning rate rises linearly from 0.2x to 1x over
    `warmup_t` steps, then falls linearly to `end_ratio`x at `t_initial`."""

    def __init__(self, optimizer, t_initial: int, warmup_t: int, end_ratio: float) -> None:
        self.t_initial, self.warmup_t, self.end_ratio = t_initial, warmup_t, end_ratio
        super().__init__(optimizer, param_group_field="lr", t_in_epochs=False)

    def _factor(self, t: int) -> float:
        if t < self.warmup_t:
            return TRIANGULAR_START + (1 - TRIANGULAR_START) * t / self.warmup_t
        fraction = min(1.0, (t - self.warmup_t) / max(1, self.t_initial - self.warmup_t))
        return 1 - (1 - self.end_ratio) * fraction

    def _get_lr(self, t: int) -> list[float]:
        return [base * self._factor(t) for base in self.base_values]


# --- lookahead -----------------------------------------------------------------------------------------


class Lookahead:
    """airbench's lookahead EMA over the network's floating-point state (weights and batch-norm statistics)."""

    def __init__(self, network: nn.Module, total_steps: int) -> None:
        self.total_steps = total_steps
        self.ema = {k: v.detach().clone() for k, v in network.state_dict().items() if v.is_floating_point()}

    def decay(self, step: int) -> float:
        return 0.95**LOOKAHEAD_EVERY * (min(step, self.total_steps) / self.total_steps) ** 3

    @torch.no_grad()
    def update(self, network: nn.Module, step: int) -> None:
        """After optimizer step `step`: every 5th step, and at the last, pull the EMA and reset the weights to it."""
        last = step >= self.total_steps
        if step % LOOKAHEAD_EVERY and not last:
            return
        decay = 1.0 if last else self.decay(step)
        state = network.state_dict()
        for key, average in self.ema.items():
            average.lerp_(state[key], 1 - decay)
            state[key].copy_(average)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"lookahead.{k}": v for k, v in self.ema.items()}

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        for key in self.ema:
            self.ema[key].copy_(tensors[f"lookahead.{key}"])


# --- augmentation --------------------------------------------------------------------------------------


def alternating_flips(count: int, seed: int, device: torch.device) -> torch.Tensor:
    """The fixed random half of the training images that starts mirrored (epoch 1); every even epoch flips
    all of them, so each image is seen mirrored and plain in turn."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(count, generator=generator) < 0.5).to(device)
