"""What travels inside an exported `.onnx` file so that whoever holds only that file can run it correctly.

Everything is stored as ONNX `metadata_props` (string key -> string value; lists and dicts as JSON), readable
with `onnx.load(path).metadata_props` or `onnxruntime.InferenceSession(path).get_modelmeta().custom_metadata_map`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from zoo.errors import ZooError
from zoo.images import photo_recipe
from zoo.registry import ModelSpec, Preprocessing

FORMAT = "zoo-onnx/1"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def library_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import onnxscript
    import torch

    import zoo

    return {
        "zoo": zoo.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def build_metadata(spec: ModelSpec, *, weights: str, weights_sha256: str, precision: str) -> dict[str, str]:
    pre = spec.preprocessing
    values: dict[str, object] = {
        "format": FORMAT,
        "model": spec.name,
        "dataset": spec.dataset,
        "classes": list(spec.classes),
        # The graph input is (x / 255 - mean) / std of an NCHW float32 image, channel order grey or RGB.
        "input": "float32 NCHW, (pixel / 255 - mean) / std",
        "mean": list(pre.mean),
        "std": list(pre.std),
        "channels": pre.channels,
        "input_size": list(pre.size),  # (height, width)
        "light_on_dark": pre.light_on_dark,
        # How any image becomes the uint8 input before normalising, step by step (zoo/images.py), so another
        # runtime can give the answers `zoo predict` gives.
        "photo_recipe": photo_recipe(pre),
        "tta_flip": spec.tta_flip,  # already inside the graph: it returns the mean of image and mirror logits
        "params": spec.params,
        # The registry's test accuracy, only when these are the shipped weights it was measured on.
        "test_accuracy": spec.accuracy if weights_sha256 == spec.weights_sha256 else None,
        "weights": weights,
        "weights_sha256": weights_sha256,
        "precision": precision,
        "exporter_versions": library_versions(),
    }
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def parse_metadata(props: Mapping[str, str], source: str) -> dict[str, object]:
    """Decode the metadata written by `build_metadata`; a file without it is a one-line ZooError."""
    if props.get("format") != FORMAT:
        raise ZooError(f"{source} has no zoo metadata (mean, std, classes); export it with `zoo export NAME`")
    decoded: dict[str, object] = {}
    for key, value in props.items():
        try:
            decoded[key] = json.loads(value)
        except ValueError:
            decoded[key] = value  # plain strings (model name, sha256, ...)
    return decoded


def preprocessing_from_metadata(meta: Mapping[str, object]) -> Preprocessing:
    return Preprocessing(
        mean=tuple(meta["mean"]),
        std=tuple(meta["std"]),
        channels=int(meta["channels"]),
        size=tuple(meta["input_size"]),
        light_on_dark=bool(meta["light_on_dark"]),
    )
