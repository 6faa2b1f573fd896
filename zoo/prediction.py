"""`zoo.predict()` (and `zoo predict`): classify image files with a registered model, in PyTorch or ONNX Runtime."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zoo.errors import WeightsError, ZooError
from zoo.images import ImageError, expand_inputs, open_image, to_model_array
from zoo.registry import get_spec, list_models

BACKENDS = ("torch", "onnxruntime")
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
    """$ZOO_MODEL, else the most accurate Fashion-MNIST model that ships trained weights."""
    if os.environ.get(MODEL_ENV):
        return get_spec(os.environ[MODEL_ENV]).name
    trained = [get_spec(n) for n in list_models() if get_spec(n).dataset == "fashion_mnist"]
    trained = [s for s in trained if s.weights_sha256 is not None]
    if not trained:
        raise WeightsError(
            "no Fashion-MNIST model ships trained weights yet; pass --model NAME --weights PATH "
            "(a run's best.safetensors, from `zoo train NAME`) or --onnx FILE"
        )
    return max(trained, key=lambda s: s.metrics.get("test_accuracy", 0.0)).name


def predict(
    images: str | os.PathLike[str] | Image.Image | list,
    *,
    model: str | None = None,
    backend: str = "torch",
    weights: str | os.PathLike[str] | None = None,
    onnx: str | os.PathLike[str] | None = None,
    topk: int = 5,
    data_dir: str | os.PathLike[str] | None = None,
) -> list[Prediction]:
    """Classify files, folders, globs or PIL images; one Prediction per input, failed inputs carry `error`.

    backend="torch" uses the spec's preprocessing and the shipped weights (or `weights=PATH`);
    backend="onnxruntime" uses an exported file (`onnx=PATH`, else one exported and validated into the user
    cache on first use) and the preprocessing stored in it.
    """
    if backend not in BACKENDS:
        raise ZooError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if topk < 1:
        raise ZooError(f"topk must be at least 1, got {topk}")
    if onnx is not None:
        backend = "onnxruntime"
    runner = _onnx_runner(model, weights, onnx, data_dir) if backend == "onnxruntime" else _torch_runner(model, weights)
    name, preprocessing, classes, logits_of = runner

    items = images if isinstance(images, list | tuple) else [images]
    predictions: list[Prediction | None] = []
    arrays, slots = [], []
    sources = _sources(items)
    for label, source in sources:
        try:
            if isinstance(source, str) and source.startswith("error:"):
                raise ImageError(label, source.removeprefix("error:"))
            image = source if isinstance(source, Image.Image) else open_image(source)
            arrays.append(to_model_array(image, preprocessing))
            slots.append(len(predictions))
            predictions.append(None)
        except ImageError as error:
            predictions.append(Prediction(file=label, error=error.reason))
    if arrays:
        logits = logits_of(np.stack(arrays))
        probabilities = torch.from_numpy(np.asarray(logits, dtype=np.float32)).softmax(1)
        values, indices = probabilities.topk(min(topk, len(classes)), dim=1)
        for slot, row_values, row_indices in zip(slots, values.tolist(), indices.tolist(), strict=True):
            top = [
                {"class": classes[i], "probability": round(p, 6)} for p, i in zip(row_values, row_indices, strict=True)
            ]
            predictions[slot] = Prediction(file=sources[slot][0], model=name, backend=backend, top=top)
    return predictions


def _sources(items: list) -> list[tuple[str, object]]:
    result = []
    for index, item in enumerate(items):
        if isinstance(item, Image.Image):
            result.append((f"<image {index}>", item))
            continue
        for path, error in expand_inputs([item]):
            result.append((path, f"error:{error}" if error else path))
    return result


def _torch_runner(model: str | None, weights):
    from zoo.loading import load_model
    from zoo.preprocess import predict_logits

    loaded = load_model(model or (None if weights is not None else default_model()), weights=weights)
    spec = loaded.spec

    def logits_of(batch: np.ndarray) -> np.ndarray:
        return predict_logits(loaded.model, torch.from_numpy(batch), spec.preprocessing, batch_size=256).numpy()

    return spec.name, spec.preprocessing, list(spec.classes), logits_of


def _onnx_runner(model: str | None, weights, onnx, data_dir):
    from zoo.export.runtime import OnnxClassifier

    if onnx is None:
        onnx = _cached_export(model, weights, data_dir)
    classifier = OnnxClassifier(onnx)
    if model is not None and model != classifier.name:
        raise ZooError(f"{onnx} holds {classifier.name!r}, not {model!r}")

    def logits_of(batch: np.ndarray) -> np.ndarray:
        return classifier.logits(classifier.normalize(batch))

    return classifier.name, classifier.preprocessing, classifier.classes, logits_of


def _cached_export(model: str | None, weights, data_dir) -> Path:
    """An exported, validated file in the user cache, keyed by the weights' sha256 so it never goes stale."""
    from zoo.data import cache_dir
    from zoo.export import export_onnx
    from zoo.loading import resolve_weights

    spec, source, _ = resolve_weights(model or (None if weights is not None else default_model()), weights=weights)
    folder = cache_dir() / "onnx" / f"{spec.name}-{source.sha256[:16]}"
    path = folder / f"{spec.name}.onnx"
    if not path.is_file():
        export_onnx(spec.name, weights=weights, out=path, data_dir=data_dir, validate_images=256)
    return path
