"""Batched augmentation on the training device: whole batches at once, per-image random parameters."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_offsets(n: int, padding: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """A crop offset per image, as an index into the (2 * padding + 1)² grid of shifts (row-major)."""
    return torch.randint(0, (2 * padding + 1) ** 2, (n,), device=device)


def crop_at(images: torch.Tensor, padding: int, offsets: torch.Tensor, reflect: bool = False) -> torch.Tensor:
    """Pad by `padding` (zeros, or by reflection) and crop back at each image's offset (see `random_offsets`)."""
    n, _, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding), mode="reflect" if reflect else "constant")
    dy, dx = (offsets // (2 * padding + 1))[:, None], (offsets % (2 * padding + 1))[:, None]
    rows = (torch.arange(height, device=images.device) + dy)[:, :, None]  # [N, H, 1]
    cols = (torch.arange(width, device=images.device) + dx)[:, None, :]  # [N, 1, W]
    batch = torch.arange(n, device=images.device)[:, None, None]
    # Advanced indexing gathers [N, H, W, C]; move channels back to the front.
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def random_crop(images: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-pad by `padding` and crop back at an independent random offset per image."""
    if padding <= 0:
        return images
    return crop_at(images, padding, random_offsets(len(images), padding, images.device))


def random_flip(images: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Mirror the images left-right where `flip` is True (default: a random half)."""
    if flip is None:
        flip = torch.rand(len(images), device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)
