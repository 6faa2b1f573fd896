"""Export a registered model to ONNX and prove it: checker, PyTorch vs ONNX Runtime on real test images,
thresholds that fail the export, and Model Zoo test data beside the file. Nothing is written on failure."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from zoo.core.data import load_dataset
from zoo.core.errors import DataNotFoundError, ZooError
from zoo.core.files import atomic_write
from zoo.core.loading import load_model
from zoo.core.preprocess import normalize
from zoo.core.spec import ModelSpec
from zoo.export.metadata import INPUT_NAME, OUTPUT_NAME, build_metadata
from zoo.export.quantize import MAX_ACCURACY_DROP, convert_fp16, quantize_int8, stored_in_float16
from zoo.export.runtime import inference_session, run_logits

DEFAULT_OPSET = 18
FP32_MAX_ABS_DIFF = 1e-4  # logits: the fp32 graph must reproduce PyTorch to this, on every validation image
BATCH_N = 64  # the "batch N" of the dynamic-batch check


class ExportError(ZooError):
    """The export could not be made or failed its validation; no file was written."""


@dataclass
class ExportResult:
    model: str
    path: str  # the .onnx written
    precision: str  # fp32, fp16 or int8
    opset: int
    batch: str  # "dynamic" or the fixed batch size
    weights: str  # checkpoint file, or "random-init"
    weights_sha256: str
    size_bytes: int
    validation: dict[str, object]  # fp32 graph vs PyTorch on a slice of the test set (or seeded random images)
    reduced: dict[str, object] | None  # int8 / fp16 model vs PyTorch on the test set
    test_data: list[str] = field(default_factory=list)  # Model Zoo test_data_set_N folders

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def export_onnx(
    name: str | None = None,
    *,
    weights: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    opset: int = DEFAULT_OPSET,
    batch: str | int = "dynamic",
    fp16: bool = False,
    int8: bool = False,
    random_init: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    validate_images: int = 512,
    test_images: int | None = None,
    calibration_images: int = 512,
) -> ExportResult:
    """Export `name` to ONNX and validate it before writing; raise ExportError (and write nothing) on failure.

    Weights: `weights=PATH` (the checkpoint names its model, so `name` may be left out), else the shipped
    weights, else (only with `random_init=True`) seeded random weights. `validate_images` test images check
    the fp32 graph (seeded random images when the data set is not at hand: the check is of arithmetic, and
    the result says which inputs were used); `test_images` (default: all) measure the int8 / fp16 accuracy
    delta and `calibration_images` training images calibrate int8, so those two need the data set.
    """
    if fp16 and int8:
        raise ZooError("choose fp16 or int8, not both", argument="int8")
    if validate_images < 1 or (test_images is not None and test_images < 1):
        raise ZooError("validate_images and test_images must be at least 1", argument="validate_images")
    fixed_batch = _parse_batch(batch)
    precision = "int8" if int8 else "fp16" if fp16 else "fp32"
    loaded = load_model(name, weights=weights, random_init=random_init)
    spec, wrapper = loaded.spec, loaded.model  # a Classifier in eval mode: flip TTA goes into the graph
    weights_label, digest = loaded.weights.label, loaded.weights.sha256 or "none"
    path = Path(out) if out is not None else default_output(spec.name, precision)
    if path.suffix != ".onnx":
        raise ZooError(f"the output file must end in .onnx, got {str(path)!r}", argument="out")

    # Weights shipped in half precision (resnet18_cifar) are stored so in the graph too, exactly.
    proto = stored_in_float16(_torch_to_onnx(wrapper, spec, opset, fixed_batch))
    _check(proto, spec.name)
    data, images, labels, source = _validation_images(spec, data_dir, precision, validate_images, test_images)
    # int8 / fp16 are measured on `test_images` (default: the whole test set), fp32 on `validate_images`
    # of them, evenly spaced; one sample of the test set serves both.
    all_inputs = normalize(images, spec.preprocessing).numpy()
    all_labels = labels.numpy() if labels is not None else None
    all_reference = _torch_logits(wrapper, all_inputs)
    sample = np.linspace(0, len(all_inputs) - 1, min(validate_images, len(all_inputs))).round().astype(int)
    validation = _validate_fp32(
        proto, all_inputs[sample], all_reference[sample], _part(all_labels, sample), fixed_batch
    )
    validation["inputs"] = f"{len(sample)} {source}"  # what the fp32 checks ran on (int8 / fp16 sample more)

    reduced = None
    final = proto
    if precision != "fp32":
        if precision == "int8":
            calibration = _calibration_inputs(data.train, spec, calibration_images)
            final = quantize_int8(proto, calibration)
        else:
            final = convert_fp16(proto)
        _check(final, spec.name)
        part = slice(0, len(all_inputs))
        reduced = _validate_reduced(
            final, precision, all_inputs[part], all_reference[part], all_labels[part], fixed_batch
        )

    metadata = build_metadata(
        spec, wrapper.pretrained_cfg, weights=weights_label, weights_sha256=digest, precision=precision
    )
    metadata["validation"] = _json({"fp32": validation, precision: reduced} if reduced else {"fp32": validation})
    onnx.helper.set_model_props(final, metadata)
    final.doc_string = f"zoo {spec.name} ({spec.dataset}, {precision}): {spec.description}"

    test_sets = _test_data_sets(final, wrapper, all_inputs, precision, fixed_batch)
    # Model Zoo layout in exports/NAME/ (the model's own folder); beside a file the user named, the test data
    # go into one folder named after it, so --out puts nothing else where it points.
    written = _write(path, final, test_sets, path.parent if out is None else path.with_name(f"{path.stem}.test_data"))
    return ExportResult(
        model=spec.name, path=str(path), precision=precision, opset=opset,
        batch="dynamic" if fixed_batch is None else str(fixed_batch), weights=weights_label, weights_sha256=digest,
        size_bytes=path.stat().st_size, validation=validation, reduced=reduced, test_data=written,
    )  # fmt: skip


def default_output(name: str, precision: str) -> Path:
    """exports/NAME/NAME.onnx (or NAME-int8/NAME-int8.onnx): one folder per file, Model Zoo style, so
    each file's test_data_set_N folders sit beside it and nowhere else."""
    stem = name if precision == "fp32" else f"{name}-{precision}"
    return Path("exports") / stem / f"{stem}.onnx"


# --- steps -------------------------------------------------------------------------------------


def _parse_batch(batch: str | int) -> int | None:
    if isinstance(batch, str) and batch.strip().lower() == "dynamic":
        return None
    try:
        value = int(batch)
    except (TypeError, ValueError) as error:
        raise ZooError(f"{{batch}} must be 'dynamic' or a positive integer, got {batch!r}") from error
    if value < 1:
        raise ZooError(f"{{batch}} must be 'dynamic' or a positive integer, got {batch!r}")
    return value


VALIDATION_SEED = 0  # seeded random validation images where the data set is absent


def _validation_images(spec: ModelSpec, data_dir, precision: str, validate_images: int, test_images: int | None):
    """(data set or None, uint8 images, labels or None, what they are): test images evenly spaced over the
    test set (some sets are stored class by class), or seeded
    random images for an fp32 export where the data set is not at hand."""
    try:
        data = load_dataset(spec.dataset, data_dir)
    except DataNotFoundError as error:
        if precision != "fp32":
            raise DataNotFoundError(
                f"{precision} export measures accuracy on the test set: {error}", argument="data_dir"
            ) from error
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        images = torch.randint(0, 256, (validate_images, *spec.input_shape), generator=generator, dtype=torch.uint8)
        return None, images, None, f"seeded random images (the {spec.dataset} test set was not found)"
    reduced_count = min(test_images or len(data.test), len(data.test))
    count = validate_images if precision == "fp32" else max(validate_images, reduced_count)
    sample = data.test.spread(count)
    source = f"{spec.dataset} test images, evenly spaced over the test set ({data.source})"
    return data, sample.images, sample.labels, source


def _part(labels: np.ndarray | None, part: slice | np.ndarray) -> np.ndarray | None:
    return None if labels is None else labels[part]


def _torch_to_onnx(wrapper: nn.Module, spec: ModelSpec, opset: int, fixed_batch: int | None) -> onnx.ModelProto:
    # The dynamo exporter (torch.export) is the supported path from torch 2.9 on; the TorchScript one is
    # deprecated. Batch 2 as the example avoids torch.export specialising a batch of 1.
    example = torch.zeros(fixed_batch or 2, *spec.input_shape)
    dynamic = None if fixed_batch is not None else ({0: torch.export.Dim("batch")},)
    try:
        # The exporter reports progress on stdout, which belongs to --json output.
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            program = torch.onnx.export(
                wrapper, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                opset_version=opset, dynamic_shapes=dynamic, verbose=False,
            )  # fmt: skip
        proto = program.model_proto
    except Exception as error:  # the exporter raises many types; the user needs the first line
        raise ExportError(
            f"{spec.name}: torch.onnx.export failed at opset {opset}: {_first_line(error)}", argument="opset"
        ) from error
    _check(proto, spec.name)
    return proto


def _check(proto: onnx.ModelProto, name: str) -> None:
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(f"{name}: onnx.checker rejects the exported graph: {_first_line(error)}") from error


def _calibration_inputs(split, spec: ModelSpec, count: int) -> np.ndarray:
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:count]
    return normalize(split.images[order], spec.preprocessing).numpy()


@torch.inference_mode()
def _torch_logits(wrapper: nn.Module, inputs: np.ndarray, batch_size: int = 500) -> np.ndarray:
    parts = [wrapper(torch.from_numpy(inputs[i : i + batch_size])) for i in range(0, len(inputs), batch_size)]
    return torch.cat(parts).numpy()


def _compare(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray | None) -> dict[str, float | None]:
    """Agreement with PyTorch; accuracies where the images have labels (None for random images)."""
    predicted, expected = logits.argmax(1), reference.argmax(1)
    torch_accuracy = float((expected == labels).mean()) if labels is not None else None
    onnx_accuracy = float((predicted == labels).mean()) if labels is not None else None
    return {
        "images": len(logits),
        "max_abs_diff": float(np.abs(logits - reference).max()),
        "top1_agreement": float((predicted == expected).mean()),
        "accuracy_torch": torch_accuracy,
        "accuracy_onnx": onnx_accuracy,
        "accuracy_delta": onnx_accuracy - torch_accuracy if labels is not None else None,
    }


def _validate_fp32(proto, inputs, reference, labels, fixed_batch) -> dict[str, object]:
    session = inference_session(proto.SerializeToString())
    checks: dict[str, object] = {}
    if fixed_batch in (None, 1):  # batch 1: every validation image, one by one (the same sample as batch N)
        checks["batch_1"] = _compare(run_logits(session, inputs, 1), reference, labels)
    size = fixed_batch or min(BATCH_N, len(inputs))
    checks[f"batch_{size}"] = _compare(
        run_logits(session, inputs, size, fixed=fixed_batch is not None), reference, labels
    )
    worst = max(c["max_abs_diff"] for c in checks.values())
    agreement = min(c["top1_agreement"] for c in checks.values())
    result = {
        **checks["batch_" + str(size)],
        "max_abs_diff": worst,
        "top1_agreement": agreement,
        "batches": checks,
        "threshold": {"max_abs_diff": FP32_MAX_ABS_DIFF, "top1_agreement": 1.0},
        "passed": worst <= FP32_MAX_ABS_DIFF and agreement == 1.0,
    }
    if not result["passed"]:
        raise ExportError(
            f"ONNX Runtime disagrees with PyTorch: max |Δlogit| {worst:.2e} (limit {FP32_MAX_ABS_DIFF:.0e}), "
            f"top-1 agreement {agreement:.2%} (must be 100%); nothing was written"
        )
    return result


def _validate_reduced(proto, precision, inputs, reference, labels, fixed_batch) -> dict[str, object]:
    session = inference_session(proto.SerializeToString())
    size = fixed_batch or BATCH_N
    result = _compare(run_logits(session, inputs, size, fixed=fixed_batch is not None), reference, labels)
    limit = MAX_ACCURACY_DROP[precision]
    result["threshold"] = {"max_accuracy_drop": limit}
    result["passed"] = -result["accuracy_delta"] <= limit
    if not result["passed"]:
        raise ExportError(
            f"{precision} model loses {-result['accuracy_delta']:.2%} test accuracy against PyTorch "
            f"(limit {limit:.2%}); nothing was written"
        )
    return result


def _test_data_sets(final, wrapper, inputs, precision, fixed_batch) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inputs and expected outputs at batch 1 and batch 8 (or the fixed batch). fp32 expects PyTorch's
    logits (to 1e-4); int8 / fp16 expect their own ONNX Runtime logits, a regression check of that file."""
    sizes = [fixed_batch] if fixed_batch is not None else [1, 8]
    session = inference_session(final.SerializeToString()) if precision != "fp32" else None
    sets = []
    for size in sizes:
        batch = inputs[:size]
        if len(batch) < size:
            batch = np.concatenate([batch, np.zeros((size - len(batch), *batch.shape[1:]), batch.dtype)])
        expected = _torch_logits(wrapper, batch) if session is None else run_logits(session, batch, size)
        sets.append((batch, expected))
    return sets


def _write(path: Path, final: onnx.ModelProto, sets, test_dir: Path) -> list[str]:
    """Test data first, the model last and atomically: a model file only ever appears complete and proven."""
    written = []
    for index, (inputs, outputs) in enumerate(sets):
        folder = test_dir / f"test_data_set_{index}"
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=_mkdir(test_dir)))
        for file, array, tensor_name in (("input_0.pb", inputs, INPUT_NAME), ("output_0.pb", outputs, OUTPUT_NAME)):
            (staging / file).write_bytes(onnx.numpy_helper.from_array(array, tensor_name).SerializeToString())
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
        written.append(str(folder))
    atomic_write(path, lambda tmp: tmp.write_bytes(final.SerializeToString()))
    return written


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
