"""The environment fingerprint stored with every result: numbers mean little without the machine behind them."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from zoo.core.device import cpu_info, usable_cores
from zoo.core.provenance import git_commit


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def fingerprint() -> dict[str, Any]:
    try:
        import torch
    except ImportError:  # the torch-free install: ONNX Runtime alone
        torch = None
    gpu = None
    if torch is not None and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda}
    onnxruntime_version = _version("onnxruntime-gpu") or _version("onnxruntime")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": {k: v for k, v in cpu_info().items() if k != "all_flags"},
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "gpu": gpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": {
            "torch": torch.__version__ if torch is not None else None,
            "torch_parallel": _parallel_backend(torch) if torch is not None else None,
            "onnxruntime": onnxruntime_version,
            "onnx": _version("onnx"),
            "openvino": _version("openvino"),
            "numpy": _version("numpy"),
            "zoo": _version("zoo-classifiers"),
        },
        "git_commit": git_commit(),
    }


def _parallel_backend(torch: Any) -> str:
    for line in torch.__config__.parallel_info().splitlines():
        if line.startswith("ATen parallel backend"):
            return line.partition(":")[2].strip()
    return "unknown"
