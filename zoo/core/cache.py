"""The user cache (decoded data sets, exported ONNX files, downloaded weights) and the offline switch; torch-free,
so the ONNX Runtime path can use it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user cache: $ZOO_CACHE, else $XDG_CACHE_HOME/zoo, else ~/.cache/zoo."""
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zoo"


OFFLINE_ENV = "ZOO_OFFLINE"


def offline() -> bool:
    """$ZOO_OFFLINE=1 (or `zoo --offline`): nothing is downloaded, neither weights nor data sets."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
