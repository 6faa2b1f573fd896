"""A short, human description of the machine a number was measured on."""

from __future__ import annotations

import os
import platform
from functools import cache

import torch


@cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_hardware(device: str | torch.device = "cpu") -> str:
    """ "NVIDIA H100 80GB HBM3" for a CUDA device, else "<CPU model> (<N> cores)", or "(1 thread of <N> cores)"
    when PyTorch was limited to fewer threads (runs trained side by side, one per core)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = torch.get_num_threads()
    if threads < cores:
        return f"{cpu_model()} ({threads} thread{'s' if threads > 1 else ''} of {cores} cores)"
    return f"{cpu_model()} ({cores} cores)"
