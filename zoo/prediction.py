"""`zoo.predict()` (and `zoo predict`): classify image files with a registered model, in PyTorch, ONNX Runtime or
OpenVINO, from one photo to millions of files.

The ONNX Runtime path imports neither torch nor the exporter when the model's validated ONNX file is at
hand: shipped beside the shipped weights (weights/NAME.onnx), or exported once into the user cache. It is
the default ("auto") wherever such a file exists; both backends give the same top-1 (tests prove it).

Prediction streams: inputs are enumerated lazily (zoo.core.inputs), decoded on every core a batch at a time
(zoo.core.decode_pool) while the model runs the batch before, and each batch's predictions come out as soon
as it is done, in the inputs' order. Memory is bounded by the batch and the pool, not by the number of
inputs. `iter_predictions` is that stream; `write_predictions` writes it to a file a stopped run can resume
from; `evaluate_images` scores a folder of labelled photos; `--ray` runs the same on Ray Data.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image

from zoo.core.cache import cache_dir
from zoo.core.datasets import Preprocessing
from zoo.core.decode_pool import DecodedBatch, DecodePool
from zoo.core.device import usable_cores
from zoo.core.errors import WeightsError, ZooError
from zoo.core.files import sha256_file
from zoo.core.images import InputFile
from zoo.core.inputs import image_folder, iter_inputs, iter_labelled, list_file_inputs, skip_done
from zoo.core.numbers import fraction
from zoo.core.results_file import ResultsFile, StreamWriter, format_for
from zoo.core.weights import manifest, shipped_weights, split_tag

BACKENDS = ("auto", "torch", "onnxruntime")
MODEL_ENV = "ZOO_MODEL"  # overrides the default model of `zoo predict`
BATCH_SIZE = 256  # images per model call: ONNX Runtime's throughput on these models is flat beyond it


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


@dataclass(frozen=True)
class PredictionSummary:
    predicted: int  # inputs classified by this run
    failed: int  # inputs this run could not classify (their rows say why)
    resumed: int  # rows a resumed run found written already
    resumed_failed: int  # of those, rows that record a failure
    seconds: float  # this run's wall time

    @property
    def images_per_second(self) -> float:
        return (self.predicted + self.failed) / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class FolderEvaluation:
    model: str  # the model's name
    folder: str  # the ImageFolder scored
    images: int  # images classified (unreadable files excluded)
    accuracy: float  # top-1, fraction
    per_class: dict[str, float]  # class -> top-1 accuracy of its images (recall), as `zoo eval`
    precision: dict[str, float]  # class -> fraction of the images predicted as it that are it
    support: dict[str, int]  # class -> images of it
    confusion_matrix: list[list[int]]  # [true class][predicted class] counts
    mistakes: list[dict[str, object]]  # the most confident wrong predictions: file, true, predicted, probability
    failed: list[dict[str, str]] = field(default_factory=list)  # files that could not be read: file, error

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Predictor:
    """A model resolved once, as every mode runs it: its name, backend, preprocessing, classes and logits."""

    name: str
    backend: str  # "torch", or the runtime that runs the ONNX file (zoo.export.runtime.RUNTIMES)
    preprocessing: Preprocessing
    classes: list[str]
    logits_of: Callable[[np.ndarray], np.ndarray]  # uint8 [N, C, H, W] -> logits [N, K]
    onnx: Path | None = None  # the ONNX file run (any backend but torch)

    @classmethod
    def load(
        cls, model=None, backend: str = "auto", weights=None, onnx=None, data_dir=None, runtime: str = "onnxruntime"
    ) -> Predictor:
        """backend="auto" runs the ONNX file where the validated one is at hand (see `onnx_at_hand`), else
        PyTorch; "onnxruntime" uses `onnx`, else the file at hand, else one exported and validated into the
        user cache on first use. `runtime` runs that ONNX file: "onnxruntime", or OpenVINO ("openvino" in
        f32, "openvino-bf16"; the [openvino] extra), and the Predictor's `backend` names it."""
        from zoo.export.runtime import check_runtime

        if backend not in BACKENDS:
            raise ZooError(f"unknown {{backend}} {backend!r}; choose one of {', '.join(BACKENDS)}")
        check_runtime(runtime)
        if runtime != "onnxruntime" and backend == "torch":
            raise ZooError(f"{{runtime={runtime}}} runs the ONNX file, so it does not go with {{backend=torch}}")
        if onnx is None and backend != "torch":
            onnx = onnx_at_hand(model, weights)
            if onnx is None and (backend == "onnxruntime" or runtime != "onnxruntime"):
                onnx = _export_into_cache(model, weights, data_dir)
        if onnx is not None:
            name, preprocessing, classes, logits_of = _onnx_runner(model, onnx, runtime)
            return cls(name, runtime, preprocessing, classes, logits_of, Path(onnx))
        name, preprocessing, classes, logits_of = _torch_runner(model, weights)
        return cls(name, "torch", preprocessing, classes, logits_of)

    def predict(self, batch: DecodedBatch, topk: int) -> list[Prediction]:
        logits = self.logits_of(batch.arrays) if len(batch.arrays) else np.empty((0, len(self.classes)))
        return self.predictions(batch.inputs, batch.errors, logits, topk)

    def predictions(
        self, inputs: list[InputFile], errors: list[str | None], logits: np.ndarray, topk: int
    ) -> list[Prediction]:
        """One Prediction per input: its error, or the top classes of the next row of `logits`."""
        tops = iter(top_classes(logits, self.classes, topk))
        return [
            Prediction(item.label, error=error)
            if error is not None
            else Prediction(item.label, model=self.name, backend=self.backend, top=next(tops))
            for item, error in zip(inputs, errors, strict=True)
        ]


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
    images: str | os.PathLike[str] | Image.Image | Iterable,
    *,
    model: str | None = None,
    backend: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    onnx: str | os.PathLike[str] | None = None,
    topk: int = 5,
    recursive: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    runtime: str = "onnxruntime",
) -> list[Prediction]:
    """Classify files, folders, globs or PIL images; one Prediction per input, failed inputs carry `error`.

    backend="auto" runs the ONNX file where the validated one is at hand (see `onnx_at_hand`), else PyTorch.
    backend="torch" uses the spec's preprocessing and the shipped weights (or `weights=PATH`, which names its
    model); backend="onnxruntime" uses `onnx=PATH`, else the file at hand, else one exported and validated
    into the user cache on first use, and the preprocessing stored in it. `runtime` runs that ONNX file:
    "onnxruntime", or OpenVINO ("openvino" in f32, "openvino-bf16"; the [openvino] extra), and each
    Prediction's `backend` names it. For more inputs than a list should hold, `iter_predictions` streams
    the same predictions."""
    return list(
        iter_predictions(
            images, model=model, backend=backend, weights=weights, onnx=onnx, topk=topk, recursive=recursive,
            data_dir=data_dir, runtime=runtime,
        )
    )  # fmt: skip


def iter_predictions(
    images: str | os.PathLike[str] | Image.Image | Iterable | None,
    *,
    model: str | None = None,
    backend: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    onnx: str | os.PathLike[str] | None = None,
    topk: int = 5,
    recursive: bool = False,
    files_from: str | None = None,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
    ray: bool = False,
    address: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    done: Iterable[str] = (),
    runtime: str = "onnxruntime",
) -> Iterator[Prediction]:
    """The predictions of `predict`, one at a time, in the inputs' order, a batch as soon as it is done:
    a program can classify millions of files without holding them.

    `images`: files, folders (`recursive`: their subfolders too), globs, PIL images, or any iterable of them
    (read lazily); `files_from`: a list file naming one file a line ("-": standard input). `workers`
    processes decode (default: one per usable core; 0 decodes in this process). `ray=True` runs on Ray Data,
    started here or joined at `address` (zoo.core.ray_cluster). `done`: the files a stopped run predicted
    already, in order (they are checked against the first inputs and skipped). `runtime` as `predict`'s.
    """
    batches = _prediction_batches(
        images, model=model, backend=backend, weights=weights, onnx=onnx, topk=topk, recursive=recursive,
        files_from=files_from, batch_size=batch_size, workers=workers, ray=ray, address=address, data_dir=data_dir,
        done=done, runtime=runtime,
    )  # fmt: skip
    return (prediction for _, predictions in batches for prediction in predictions)


def write_predictions(
    images: str | os.PathLike[str] | Iterable | None,
    out: str | os.PathLike[str] | TextIO,
    *,
    format: str | None = None,
    resume: bool = False,
    topk: int = 5,
    progress: Callable[[int], None] | None = None,
    **options: object,
) -> PredictionSummary:
    """Predict as `iter_predictions` (which takes `options`) and write a row per input as it comes, to a
    file or a text stream (zoo.core.results_file): JSON Lines, or CSV (`format="csv"`, or a .csv file).
    `resume=True` continues the file a stopped run left (even by SIGKILL): no input is predicted twice
    or lost. `progress` is called after each batch with the number of inputs done (a resumed run's included)."""
    stream = hasattr(out, "write")
    fmt = format_for(None if stream else out, format)
    if resume and stream:
        raise ZooError("{resume} continues a results file: give one with {out=FILE}")
    _check(topk=topk)
    results = StreamWriter(out, fmt, topk) if stream else ResultsFile(out, fmt, topk, resume=resume)
    resumed, resumed_failed = (0, 0) if stream else (results.done, results.done_failed)
    done = () if stream else itertools.islice(results.labels(), resumed)
    started, predicted, failed = time.perf_counter(), 0, 0
    try:
        for _, batch in _prediction_batches(images, topk=topk, done=done, **options):
            rows = [p.to_dict() for p in batch]
            with _ctrl_c_deferred():  # the rows written and the count reported change together
                results.append(rows)
                errors = sum(p.error is not None for p in batch)
                predicted, failed = predicted + len(batch) - errors, failed + errors
                if progress is not None:
                    progress(resumed + predicted + failed)
    finally:
        if not stream:
            results.close()
    return PredictionSummary(predicted, failed, resumed, resumed_failed, time.perf_counter() - started)


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """SIGINT held back while a batch's rows are written and counted: Ctrl-C between the two would report
    one batch fewer than the file holds ("interrupted after N inputs"). It is delivered on leaving."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def evaluate_images(
    folder: str | os.PathLike[str],
    model: str | None = None,
    *,
    backend: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    onnx: str | os.PathLike[str] | None = None,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
    mistakes: int = 10,
    data_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
    runtime: str = "onnxruntime",
) -> FolderEvaluation:
    """Top-1 accuracy, per-class figures, the confusion matrix and the `mistakes` most confident errors of
    a model on your own labelled photos: an ImageFolder, one subfolder per class, each matched to one of the
    model's classes without regard to case and punctuation ("t-shirt_top" is "T-shirt/top"). It streams as
    `iter_predictions` does (`progress` as `write_predictions`); files that cannot be read are listed in
    `failed` and count in no figure. `runtime` as `predict`'s."""
    _check(batch_size=batch_size, workers=workers)
    predictor = Predictor.load(model, backend, weights, onnx, data_dir, runtime)
    folders = image_folder(folder, predictor.classes)
    index = {name: i for i, name in enumerate(predictor.classes)}
    confusion = np.zeros((len(index), len(index)), np.int64)
    worst: list[tuple[float, int, dict[str, object]]] = []  # a min-heap of the most confident mistakes
    failed: list[dict[str, str]] = []
    for number, (item, prediction) in enumerate(
        _pairs(iter_labelled(folder, folders), lambda: predictor, 1, batch_size, workers, progress)
    ):
        if prediction.error is not None:
            failed.append({"file": prediction.file, "error": prediction.error})
            continue
        best = prediction.top[0]
        guess = index[best["class"]]
        confusion[item.target, guess] += 1
        if guess != item.target:
            mistake = {"file": prediction.file, "true": predictor.classes[item.target], "predicted": best["class"],
                       "probability": best["probability"]}  # fmt: skip
            entry = (best["probability"], -number, mistake)  # ties: the earlier file ranks first
            heapq.heappush(worst, entry) if len(worst) < mistakes else heapq.heappushpop(worst, entry)
    images = int(confusion.sum())
    if images == 0:
        what = f"none of its {len(failed)} files could be read" if failed else "its class folders hold no images"
        raise ZooError(f"nothing to score in {folder}: {what}", argument="images")
    recall = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    precision = confusion.diagonal() / np.maximum(confusion.sum(axis=0), 1)
    classes = predictor.classes
    return FolderEvaluation(
        model=predictor.name, folder=str(folder), images=images,
        accuracy=fraction(confusion.diagonal().sum() / images),
        per_class={c: fraction(v) for c, v in zip(classes, recall, strict=True)},
        precision={c: fraction(v) for c, v in zip(classes, precision, strict=True)},
        support={c: int(n) for c, n in zip(classes, confusion.sum(axis=1), strict=True)},
        confusion_matrix=confusion.tolist(),
        mistakes=[mistake for *_, mistake in sorted(worst, reverse=True)],
        failed=failed,
    )  # fmt: skip


def top_classes(logits: np.ndarray, classes: list[str], topk: int) -> list[list[dict[str, object]]]:
    """Per row, the `topk` most probable classes (softmax of the logits), best first."""
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, : min(topk, len(classes))]
    # Python floats and lists: a million rows are made here, and numpy scalars cost several times more.
    chosen = np.take_along_axis(probabilities, order, axis=1).tolist()
    return [
        [{"class": classes[i], "probability": round(p, 6)} for i, p in zip(indices, row, strict=True)]
        for indices, row in zip(order.tolist(), chosen, strict=True)
    ]


def _prediction_batches(
    images, *, model=None, backend="auto", weights=None, onnx=None, topk=5, recursive=False, files_from=None,
    batch_size=BATCH_SIZE, workers=None, ray=False, address=None, data_dir=None, done=(), runtime="onnxruntime",
) -> Iterator[tuple[list[InputFile], list[Prediction]]]:  # fmt: skip
    """`iter_predictions`, a batch at a time: its arguments checked now, its work done as it is read."""
    _check(topk=topk, batch_size=batch_size, workers=workers)
    if ray and backend == "torch":
        raise ZooError("{ray} runs the ONNX file: pass {backend=onnxruntime}, or leave {backend=auto}")
    inputs = skip_done(_inputs(images, recursive, files_from), done, "the results file")
    backend = "onnxruntime" if ray else backend  # exported into the cache first where no file is at hand
    load = functools.partial(Predictor.load, model, backend, weights, onnx, data_dir, runtime)
    return _run(inputs, load, topk, batch_size, workers, ray, address)


def _run(inputs, load, topk, batch_size, workers, ray, address) -> Iterator[tuple[list[InputFile], list[Prediction]]]:
    """The batches of (inputs, predictions). Locally the decoding processes start before the model loads
    (zoo.core.decode_pool: a process without threads forks quickly and safely), and only when there is more
    than one batch: one photo is decoded here, sooner than a process could start."""
    if ray:
        yield from _on_ray(inputs, load, topk, batch_size, address)
        return
    head = list(itertools.islice(inputs, batch_size + 1))
    inputs = itertools.chain(head, inputs)
    workers = (usable_cores() if workers is None else workers) if len(head) > batch_size else 0
    with DecodePool(workers) as pool:
        predictor = load()
        for batch in pool.batches(inputs, predictor.preprocessing, batch_size):
            yield batch.inputs, predictor.predict(batch, topk)


def _pairs(
    inputs: Iterator[InputFile], load: Callable[[], Predictor], topk: int, batch_size: int, workers: int | None,
    progress: Callable[[int], None] | None,
) -> Iterator[tuple[InputFile, Prediction]]:  # fmt: skip
    """(input, prediction) for every input, in order."""
    done = 0
    for chunk, predictions in _run(inputs, load, topk, batch_size, workers, ray=False, address=None):
        yield from zip(chunk, predictions, strict=True)
        done += len(chunk)
        if progress is not None:
            progress(done)


def _on_ray(inputs, load, topk, batch_size, address) -> Iterator[tuple[list[InputFile], list[Prediction]]]:
    from zoo.core.ray_batches import ray_logits
    from zoo.core.ray_cluster import start_or_join

    predictor = load()
    started = start_or_join(address, extra="ray")
    try:
        model, classes = predictor.onnx.read_bytes(), len(predictor.classes)
        load_model = functools.partial(_onnx_logits, runtime=predictor.backend)
        for chunk, errors, logits in ray_logits(
            inputs, predictor.preprocessing, load_model, model, classes, batch_size=batch_size
        ):
            yield chunk, predictor.predictions(chunk, errors, logits, topk)
    finally:
        if started:
            import ray

            ray.shutdown()


def _onnx_logits(model: bytes, runtime: str = "onnxruntime") -> Callable[[np.ndarray], np.ndarray]:
    """A Ray actor's model: an ONNX file sent as bytes (a cluster's nodes need not hold zoo's cache), run on
    the actor's one CPU by `runtime` (OpenVINO needs the [openvino] extra on the nodes)."""
    from zoo.export.runtime import OnnxClassifier

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(model)
        classifier = OnnxClassifier(path, threads=1, runtime=runtime)

    def logits_of(batch: np.ndarray) -> np.ndarray:
        return classifier.logits(classifier.normalize(batch))

    return logits_of


def _inputs(images, recursive: bool, files_from: str | None) -> Iterator[InputFile]:
    """Every input as an InputFile (zoo.core.inputs), an image in memory as one in hand."""
    if images is None:
        images = []
    elif isinstance(images, str | os.PathLike | Image.Image):
        images = [images]
    for index, item in enumerate(images):
        if isinstance(item, Image.Image):
            yield InputFile(f"<image {index}>", image=item)
        else:
            yield from iter_inputs([item], recursive=recursive)
    if files_from is not None:
        yield from list_file_inputs(files_from)


def _check(*, topk: int = 1, batch_size: int = 1, workers: int | None = None) -> None:
    if topk < 1:
        raise ZooError(f"{{topk}} must be at least 1, got {topk}")
    if batch_size < 1:
        raise ZooError(f"{{batch_size}} must be at least 1, got {batch_size}")
    if workers is not None and workers < 0:
        raise ZooError(f"{{workers}} must be 0 (decode in this process) or more, got {workers}")


def _model_name(model: str | None, weights) -> str | None:
    """The model asked for; else none when a checkpoint names its own; else the default model."""
    return model or (None if weights is not None else default_model())


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

    # ONNX Runtime's threads spin for a while after each call by default, taking the cores from the processes
    # that decode the next batch: cnn_20k streams faster without, cifar_cnn_best as fast
    # (benchmarks/predict_scale.py measures it beside a bare pipeline with and without).
    classifier = OnnxClassifier(onnx, runtime=runtime, spinning=False)
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
