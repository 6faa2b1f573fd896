"""The user cache (decoded data sets, exported ONNX files); torch-free, so the ONNX Runtime path can use it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user cache: $ZOO_CACHE, else $XDG_CACHE_HOME/zoo, else ~/.cache/zoo."""
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zoo"
