"""Which optional extra a missing package comes with, so that a command or function that needs it can say so
in one line (the default install runs models on ONNX Runtime only: no torch)."""

from __future__ import annotations

from zoo.core.errors import ZooError

TORCH_EXTRA = ("torch", "torchvision", "timm", "onnx", "onnxscript", "safetensors")
EXTRAS = {name: "torch" for name in TORCH_EXTRA} | {
    "ray": "tune",
    "matplotlib": "plot",
    "captum": "plot",
    "openvino": "openvino",
}


def install_command(extra: str) -> str:
    """The command that installs zoo with `extra`, as every hint about a missing extra words it."""
    return f'python3 -m pip install "zoo-classifiers[{extra}]"'


def missing_extra(error: ModuleNotFoundError, what: str) -> ZooError | None:
    """A one-line ZooError naming the extra that brings the missing module, or None for any other module."""
    top = (error.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return ZooError(f"{what} needs {top}, which comes with the [{extra}] extra: {install_command(extra)}")
