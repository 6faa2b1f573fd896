"""The machine a model runs on: choosing the torch device, what its CPU can do, and how to name it."""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path

from zoo.core.errors import ZooError

# CPU features that decide which kernels the libraries pick.
INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "avx_vnni")


@cache
def cpu_info() -> dict[str, object]:
    """The first CPU's entry of /proc/cpuinfo: model name, family/model, MHz, the interesting flags and all of
    them, whether it runs under a hypervisor. Outside Linux, what `platform` knows."""
    info: dict[str, object] = {"model": platform.processor() or platform.machine(), "flags": [], "all_flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = fields.get("flags", "").split()
    info["model"] = fields.get("model name", info["model"])
    info["family_model"] = f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}"
    info["mhz"] = float(fields["cpu MHz"]) if "cpu MHz" in fields else None
    info["flags"] = [f for f in INTERESTING_FLAGS if f in flags]
    info["all_flags"] = flags
    info["hypervisor"] = "hypervisor" in flags
    return info


def usable_cores() -> int:
    """The cores this process may run on (its affinity), which can be fewer than the machine has."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_device(device: str | None):
    """ "auto" (or None): the GPU when there is one, else the CPU; otherwise the named torch device."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ZooError(f"invalid device {device!r}; use cpu, cuda, cuda:N or auto", argument="device") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ZooError("device 'cuda' was asked for but no CUDA GPU is available", argument="device")
    return resolved


def cpu_has_native_bf16() -> bool:
    """True where oneDNN runs bf16 convolutions natively (avx512_bf16 or AMX), not by emulation."""
    import torch

    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def describe_hardware(device="cpu") -> str:
    """ "NVIDIA H100 80GB HBM3" for a CUDA device, else "<CPU model> (<N> cores)", or "(1 thread of <N> cores)"
    when PyTorch was limited to fewer threads (runs trained side by side, one per core)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    cores, threads = usable_cores(), torch.get_num_threads()
    if threads < cores:
        return f"{cpu_info()['model']} ({threads} thread{'s' if threads > 1 else ''} of {cores} cores)"
    return f"{cpu_info()['model']} ({cores} cores)"
