"""safetensors checkpoints with string metadata, atomic writes, and strict, explained loading."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from zoo.core.errors import WeightsError
from zoo.core.files import atomic_write

FORMAT = "zoo/1"


def save_checkpoint(
    path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, object]
) -> None:
    """Write tensors and metadata atomically; non-string metadata values are stored as JSON."""
    strings = {"format": FORMAT}
    strings.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
    # safetensors refuses shared or non-contiguous storage; a clone per tensor is cheap at these sizes.
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(Path(path), lambda tmp: save_file(plain, str(tmp), metadata=strings))


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read every tensor and the metadata; a missing, corrupt or foreign file is a WeightsError."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist", argument="weights")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsError(f"{path} is not a valid safetensors file ({error})", argument="weights") from error
    return tensors, metadata
