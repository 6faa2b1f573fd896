"""The environment fingerprint stored with every result: numbers mean little without the machine behind them."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

# CPU features that decide which kernels the libraries pick.
INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "avx_vnni")


def _cpuinfo() -> dict[str, Any]:
    info: dict[str, Any] = {"model": platform.processor() or platform.machine(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    info["model"] = fields.get("model name", info["model"])
    info["family_model"] = f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}"
    info["mhz"] = float(fields["cpu MHz"]) if "cpu MHz" in fields else None
    info["flags"] = [f for f in INTERESTING_FLAGS if f in flags]
    info["hypervisor"] = "hypervisor" in flags
    return info


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def fingerprint() -> dict[str, Any]:
    import torch

    from zoo.bench.run import default_threads
    from zoo.checkpoint import git_commit

    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda}
    onnxruntime_version = _version("onnxruntime-gpu") or _version("onnxruntime")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": _cpuinfo(),
        "cores": os.cpu_count(),
        "usable_cores": default_threads(),
        "gpu": gpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": {
            "torch": torch.__version__,
            "torch_parallel": _parallel_backend(torch),
            "onnxruntime": onnxruntime_version,
            "onnx": _version("onnx"),
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
