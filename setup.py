"""The wheel's package data, computed from the manifest: setuptools reads the rest from pyproject.toml.

The wheel carries the manifest (every tag's record and sha256) and the default tags of the Fashion-MNIST
models, so `zoo predict photo.jpg` works offline straight after install and the wheel stays small. Every
other file is fetched from the weights store on first use (zoo/core/store.py). A source checkout keeps all
of weights/, which the package reads first.
"""

import json
from pathlib import Path

from setuptools import setup

BUNDLED_DATASETS = ("fashion_mnist",)


def bundled_weights() -> list[str]:
    manifest = json.loads((Path(__file__).parent / "weights" / "manifest.json").read_text())
    files = ["manifest.json"]
    for entry in manifest.values():
        if entry["dataset"] in BUNDLED_DATASETS:
            record = entry["tags"][entry["default"]]
            files += [record[key] for key in ("file", "onnx_file") if record.get(key)]
    return files


setup(
    package_data={
        "zoo.weights": bundled_weights(),
        "zoo": ["static/*.html"],
        "zoo.core": ["catalog.json"],
    }
)
