"""What travels inside an exported `.onnx` file so that whoever holds only that file can run it correctly.

Everything is stored as ONNX `metadata_props` (string key -> string value; lists and dicts as JSON), readable
with `onnx.load(path).metadata_props` or `onnxruntime.InferenceSession(path).get_modelmeta().custom_metadata_map`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from zoo.core.datasets import Preprocessing
from zoo.core.errors import ZooError
from zoo.core.provenance import library_versions
from zoo.core.spec import ModelSpec

FORMAT = "zoo-onnx/1"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def build_metadata(
    spec: ModelSpec, cfg: dict[str, object], *, weights: str, weights_sha256: str, precision: str
) -> dict[str, str]:
    """The exported Classifier's pretrained_cfg in the ONNX format's spelling (input_size is (height, width)
    beside `channels`), plus what an exported file adds: format, graph input, precision, versions."""
    cfg = {**cfg, "weights_sha256": weights_sha256}
    channels, height, width = cfg.pop("input_size")
    values: dict[str, object] = {
        "format": FORMAT,
        **cfg,
        # The graph input is (x / 255 - mean) / std of an NCHW float32 image, channel order grey or RGB.
        "input": "float32 NCHW, (pixel / 255 - mean) / std",
        "channels": channels,
        "input_size": [height, width],
        # tta_flip and tta_shift are already inside the graph: it returns the mean over the test views.
        "params": spec.params,
        # The registry's test accuracy, only when these are the shipped weights it was measured on.
        "test_accuracy": spec.accuracy if weights_sha256 == spec.weights_sha256 else None,
        "weights": weights,
        "precision": precision,
        "exporter_versions": library_versions("zoo", "torch", "onnx", "onnxscript", "onnxruntime"),
    }
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def parse_metadata(props: Mapping[str, str], source: str) -> dict[str, object]:
    """Decode the metadata written by `build_metadata`; a file without it is a one-line ZooError."""
    if props.get("format") != FORMAT:
        raise ZooError(
            f"{source} has no zoo metadata (mean, std, classes); export it with `zoo export NAME`", argument="onnx"
        )
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
