"""`zoo.predict()` (and `zoo predict`): classify image files with a registered model, in PyTorch or ONNX Runtime.

The ONNX Runtime path imports neither torch nor the exporter when the model's validated ONNX file is at
hand: shipped beside the shipped weights (weights/NAME.onnx), or exported once into the user cache. It is
the default ("auto") wherever such a file exists; both backends give the same top-1 (tests prove it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.core.cache import cache_dir
from zoo.core.errors import WeightsError, ZooError
from zoo.core.files import sha256_file
from zoo.core.images import ImageError, InputFile, decode_side, expand_inputs, open_image, to_model_array
from zoo.core.weights import manifest, shipped_weights, split_tag

BACKENDS = ("auto", "torch", "onnxruntime")
MODEL_ENV = "ZOO_MODEL"  # overrides the default model of `zoo predict`


@dataclass(frozen=True)
class Prediction:
    file: str
    model: str | None = None
    backend: str | None = None
    top: list[dict[str, object]] | None = None  # [{"class", "probability"}], best first
    error: str | None = None  # why this input could not be classified

    def to_dict(self) -> dict[str, object]:
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        return {"file": self.file, "model": self.model, "backend": self.backend, "top": self.top}


def default_model() -> str:
    """$ZOO_MODEL, else the most accurate Fashion-MNIST model that ships trained weights (from the manifest)."""
    if os.environ.get(MODEL_ENV):
        return os.environ[MODEL_ENV]
    accuracy = {
        name: shipped_weights(name).metrics["test_accuracy"]
        for name, entry in manifest().items()
        if entry["dataset"] == "fashion_mnist"
    }
    if not accuracy:
        raise WeightsError(
            "no Fashion-MNIST model ships trained weights yet; pass {model=NAME} with {weights=PATH} "
            "(a run's best.safetensors) or {onnx=FILE}",
        )
    return max(accuracy, key=accuracy.__getitem__)


def onnx_at_hand(model: str | None = None, weights: str | os.PathLike[str] | None = None) -> Path | None:
    """The validated ONNX file for these weights (a checkpoint, else `model`'s shipped weights, `model.tag`
    for a tag) if one exists already: shipped in the package or exported earlier into the user cache.
    Needs no torch."""
    if weights is not None:
        cached = _cache_path(sha256_file(weights))
        return cached if cached.is_file() else None
    shipped = shipped_weights(_model_name(model, weights))
    if shipped is None:
        return None
    verified = shipped.onnx_verified()
    if verified is not None:
        return verified
    cached = _cache_path(shipped.sha256)
    return cached if cached.is_file() else None


def predict(
    images: str | os.PathLike[str] | Image.Image | list,
    *,
    model: str | None = None,
    backend: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    onnx: str | os.PathLike[str] | None = None,
    topk: int = 5,
    data_dir: str | os.PathLike[str] | None = None,
    runtime: str = "onnxruntime",
) -> list[Prediction]:
    """Classify files, folders, globs or PIL images; one Prediction per input, failed inputs carry `error`.

    backend="auto" runs ONNX Runtime where the validated file is at hand (see `onnx_at_hand`), else PyTorch.
    backend="torch" uses the spec's preprocessing and the shipped weights (or `weights=PATH`, which names its
    model); backend="onnxruntime" uses `onnx=PATH`, else the file at hand, else one exported and validated
    into the user cache on first use, and the preprocessing stored in it. `runtime` runs that ONNX file:
    "onnxruntime", or OpenVINO ("openvino" in f32, "openvino-bf16"; the [openvino] extra), and each
    Prediction's `backend` names it.
    """
    from zoo.export.runtime import check_runtime

    if backend not in BACKENDS:
        raise ZooError(f"unknown {{backend}} {backend!r}; choose one of {', '.join(BACKENDS)}")
    if topk < 1:
        raise ZooError(f"{{topk}} must be at least 1, got {topk}")
    check_runtime(runtime)
    if runtime != "onnxruntime" and backend == "torch":
        raise ZooError(f"{{runtime={runtime}}} runs the ONNX file, so it does not go with {{backend=torch}}")
    if onnx is None and backend != "torch":
        onnx = onnx_at_hand(model, weights)
        if onnx is None and (backend == "onnxruntime" or runtime != "onnxruntime"):
            onnx = _export_into_cache(model, weights, data_dir)
    if onnx is not None:
        name, preprocessing, classes, logits_of = _onnx_runner(model, onnx, runtime)
        backend = runtime
    else:
        name, preprocessing, classes, logits_of = _torch_runner(model, weights)
        backend = "torch"

    items = images if isinstance(images, list | tuple) else [images]
    predictions: list[Prediction | None] = []
    arrays, slots = [], []
    sources = _sources(items)
    for source in sources:
        try:
            if source.error is not None:
                raise ImageError(source.label, source.error)
            image = source.image if source.image is not None else open_image(source.label, decode_side(preprocessing))
            arrays.append(to_model_array(image, preprocessing))
            slots.append(len(predictions))
            predictions.append(None)
        except ImageError as error:
            predictions.append(Prediction(file=source.label, error=error.reason))
    if arrays:
        for slot, top in zip(slots, top_classes(logits_of(np.stack(arrays)), classes, topk), strict=True):
            predictions[slot] = Prediction(file=sources[slot].label, model=name, backend=backend, top=top)
    return predictions


def top_classes(logits: np.ndarray, classes: list[str], topk: int) -> list[list[dict[str, object]]]:
    """Per row, the `topk` most probable classes (softmax of the logits), best first."""
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, : min(topk, len(classes))]
    return [
        [{"class": classes[i], "probability": round(float(row[i]), 6)} for i in indices]
        for row, indices in zip(probabilities, order, strict=True)
    ]


def _model_name(model: str | None, weights) -> str | None:
    """The model asked for; else none when a checkpoint names its own; else the default model."""
    return model or (None if weights is not None else default_model())


def _sources(items: list) -> list[InputFile]:
    """Every input as a file to open, an image in hand, or a failure to report (a value, never raised)."""
    result = []
    for index, item in enumerate(items):
        if isinstance(item, Image.Image):
            result.append(InputFile(f"<image {index}>", image=item))
        else:
            result += expand_inputs([item])
    return result


def _torch_runner(model: str | None, weights):
    import torch

    from zoo.core.loading import load_model
    from zoo.core.preprocess import predict_logits

    loaded = load_model(_model_name(model, weights), weights=weights)
    spec = loaded.spec

    def logits_of(batch: np.ndarray) -> np.ndarray:
        return predict_logits(loaded.model, torch.from_numpy(batch), spec.preprocessing, batch_size=256).numpy()

    return spec.name, spec.preprocessing, list(spec.classes), logits_of


def _onnx_runner(model: str | None, onnx, runtime: str = "onnxruntime"):
    from zoo.export.runtime import OnnxClassifier

    classifier = OnnxClassifier(onnx, runtime=runtime)
    if model is not None and split_tag(model)[0] != classifier.name:
        raise ZooError(f"{onnx} holds {classifier.name!r}, not {model!r}", argument="onnx")

    def logits_of(batch: np.ndarray) -> np.ndarray:
        return classifier.logits(classifier.normalize(batch))

    return classifier.name, classifier.preprocessing, classifier.classes, logits_of


def _cache_path(weights_sha256: str) -> Path:
    """Exports are keyed by the weights' sha256, so a cached file never goes stale."""
    return cache_dir() / "onnx" / weights_sha256[:16] / "model.onnx"


def _export_into_cache(model: str | None, weights, data_dir) -> Path:
    """Export and validate once into the user cache (this needs torch and the exporter)."""
    from zoo.core.loading import resolve_weights
    from zoo.export import export_onnx

    resolved = resolve_weights(_model_name(model, weights), weights=weights)
    path = _cache_path(resolved.source.sha256)
    export_onnx(resolved.spec.name, weights=resolved.source.path, out=path, data_dir=data_dir, validate_images=256)
    return path
