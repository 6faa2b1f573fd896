"""Turning uint8 images into model input, the one place that applies a spec's preprocessing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from zoo.registry import Preprocessing


def normalize(images: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 (x / 255 - mean) / std, on the images' device."""
    mean = torch.tensor(preprocessing.mean, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(preprocessing.std, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - mean) / std


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """Exact float32 arithmetic on a GPU too: no TF32 in matrix products and convolutions.

    Accuracies are measured this way, so a figure taken on a GPU is the one the shipped weights reach
    on a CPU and in the fp32 ONNX export; bf16 or TF32 evaluation moved test accuracy by up to 0.08 points.
    """
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    preprocessing: Preprocessing,
    *,
    tta_flip: bool = False,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Float32 logits for uint8 images, batch by batch, averaged with the mirror image when `tta_flip` is set."""
    model.eval()
    device = torch.device(device)
    outputs = []
    with full_fp32():
        for start in range(0, len(images), batch_size):
            batch = normalize(images[start : start + batch_size].to(device, non_blocking=True), preprocessing)
            logits = model(batch).float()
            if tta_flip:
                logits = (logits + model(batch.flip(-1)).float()) / 2
            outputs.append(logits.cpu())
    return torch.cat(outputs) if outputs else torch.empty(0)
