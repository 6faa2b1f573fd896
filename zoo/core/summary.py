"""Per-layer summary of a model: output shape, parameters and multiply-accumulates (MACs) per image."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerRow:
    name: str  # dotted module path
    kind: str  # module class name
    output_shape: tuple[int, ...]  # without the batch axis
    params: int  # parameters owned directly by this module (frozen ones too)
    macs: int  # multiply-accumulates per image (conv and linear layers only)


def count_params(model: nn.Module) -> int:
    """Every stored parameter, frozen ones included (a fixed filter still costs its weights)."""
    return sum(p.numel() for p in model.parameters())


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    per_image = output[0].numel()
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return per_image * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return per_image * module.in_features
    return 0


@torch.no_grad()
def summarize(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    """Run one image through `model` and record every leaf module."""
    rows: list[LayerRow] = []
    hooks = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue

        def record(mod: nn.Module, _inputs: object, output: torch.Tensor, name: str = name) -> None:
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            rows.append(LayerRow(name, type(mod).__name__, tuple(output.shape[1:]), params, _layer_macs(mod, output)))

        hooks.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return rows


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    return sum(row.macs for row in summarize(model, input_shape))
