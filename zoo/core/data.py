"""Data sets as uint8 tensors, for training and evaluation (the files: zoo.core.datafiles).

Images are held as uint8 [N, C, H, W] and labels as int64 [N]; training moves them to the device once
and does all conversion and augmentation there on whole batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from zoo.core.datafiles import load_arrays, search_dirs
from zoo.core.errors import ZooError

__all__ = ["DataSet", "Split", "load_dataset", "search_dirs", "train_val_split"]


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: torch.Tensor) -> Split:
        return Split(self.images[indices], self.labels[indices])

    def spread(self, count: int) -> Split:
        """`count` images evenly spaced over the split: a fair sample even where a split is stored class by
        class (the CIFAR-10 JPEG tree is: its first 1,000 test images are all airplanes)."""
        count = min(count, len(self))
        return (
            self.subset(torch.linspace(0, len(self) - 1, count).round().long())
            if count
            else self.subset(torch.arange(0))
        )


@dataclass(frozen=True)
class DataSet:
    name: str
    train: Split
    test: Split
    source: str  # where it was read from, for run records


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None) -> DataSet:
    """Load a data set by name ("fashion_mnist" or "cifar10"), decoding and caching it on first use."""
    arrays, source = load_arrays(name, data_dir)

    def split(prefix: str) -> Split:
        # np.array copies: IDX buffers and loaded caches are read-only, tensors must not be.
        images = torch.from_numpy(np.array(arrays[f"{prefix}_x"], dtype=np.uint8))
        return Split(images, torch.from_numpy(arrays[f"{prefix}_y"].astype(np.int64)))

    return DataSet(name, split("train"), split("test"), source)


def train_val_split(train: Split, val_size: int, seed: int, limit_train: int | None = None) -> tuple[Split, Split]:
    """Hold a seeded random `val_size` images out of the training set for model selection; `limit_train`
    keeps only the first N (shuffled) training images, as `zoo train --limit-train N` trains on."""
    if val_size >= len(train):
        raise ZooError(f"val_size {val_size} leaves no training images (the set has {len(train)})", argument="val_size")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    kept = order[val_size:][:limit_train] if limit_train else order[val_size:]
    return train.subset(kept), train.subset(order[:val_size])
