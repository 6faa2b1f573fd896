"""Running an exported model on the CPU, preprocessing read from the file itself.

Two runtimes read the same ONNX file: ONNX Runtime (the default, in every install) and OpenVINO (the
[openvino] extra), in f32 or with bf16 inference precision. On a CPU with native bf16 (AMX or AVX-512 bf16)
OpenVINO's bf16 runs the CIFAR-10 models several times faster; `zoo benchmark` measures each.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from zoo.core.errors import ZooError
from zoo.core.extras import install_command
from zoo.export.metadata import INPUT_NAME, parse_metadata, preprocessing_from_metadata


def inference_session(model: str | os.PathLike[str] | bytes, threads: int | None = None, spinning: bool = True):
    """A CPU session; `threads` caps its intra-op threads (ONNX Runtime's default: one per core).
    `spinning=False` lets those threads sleep between calls: by default they spin for a while after each,
    which takes the cores from other processes of the same job (zoo.prediction's decoding pool)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initializers etc. are noise for users
    # CPU only: the comparison against PyTorch must not depend on which GPU kernels exist.
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


RUNTIMES = ("onnxruntime", "openvino", "openvino-bf16")  # openvino: f32 inference precision; -bf16: bf16


OPENVINO_MISSING = (
    f"the openvino runtime needs OpenVINO, which comes with the [openvino] extra: {install_command('openvino')}"
)


def check_runtime(runtime: str) -> None:
    """A one-line ZooError for an unknown runtime, or for OpenVINO when its extra is not installed."""
    if runtime not in RUNTIMES:
        raise ZooError(f"unknown {{runtime}} {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime.startswith("openvino") and importlib.util.find_spec("openvino") is None:
        raise ZooError(OPENVINO_MISSING, argument="runtime")


class OpenVinoSession:
    """OpenVINO's runtime behind the part of ONNX Runtime's session that zoo uses: `run`, the input's shape and
    the file's metadata (OpenVINO's ONNX reader keeps the metadata in the model's rt_info)."""

    def __init__(self, path: Path, threads: int | None, precision: str) -> None:
        try:
            import openvino
        except ModuleNotFoundError as error:
            raise ZooError(OPENVINO_MISSING, argument="runtime") from error
        core = openvino.Core()
        model = core.read_model(str(path))
        framework = model.get_rt_info()["framework"] if model.has_rt_info("framework") else {}
        self.metadata = {key: value.astype(str) for key, value in framework.items()}
        self.input_shape = [d.get_length() if d.is_static else "batch" for d in model.input(0).get_partial_shape()]
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core.compile_model(model, "CPU", config)

    def run(self, _output_names: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        (batch,) = feeds.values()
        return [np.asarray(self.compiled(batch)[0], dtype=np.float32)]


class OnnxClassifier:
    """An exported zoo model: `logits(normalized NCHW float32)` plus its metadata and preprocessing, run by
    ONNX Runtime or OpenVINO (`runtime`, one of RUNTIMES); `spinning` as `inference_session`'s."""

    def __init__(
        self, path: str | os.PathLike[str], threads: int | None = None, runtime: str = "onnxruntime",
        spinning: bool = True,
    ):  # fmt: skip
        path = Path(path)
        check_runtime(runtime)
        if not path.is_file():
            raise ZooError(f"ONNX file {path} does not exist", argument="onnx")
        try:
            if runtime == "onnxruntime":
                self.session = inference_session(path, threads, spinning)
                props, shape = self.session.get_modelmeta().custom_metadata_map, self.session.get_inputs()[0].shape
            else:
                precision = "bf16" if runtime == "openvino-bf16" else "f32"
                self.session = OpenVinoSession(path, threads, precision)
                props, shape = self.session.metadata, self.session.input_shape
        except ZooError:
            raise
        except Exception as error:  # both runtimes raise their own untyped exceptions for bad files
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ZooError(f"{path} is not a loadable ONNX model ({first_line})", argument="onnx") from error
        self.path = path
        self.runtime = runtime
        self.metadata = parse_metadata(props, str(path))
        self.preprocessing = preprocessing_from_metadata(self.metadata)
        self.classes: list[str] = list(self.metadata["classes"])
        self.name = str(self.metadata["model"])
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None

    @property
    def pretrained_cfg(self) -> dict[str, object]:
        """The model's pretrained_cfg (zoo.core.spec), read back from the file: the same keys a Classifier has."""
        meta, pre = self.metadata, self.preprocessing
        keys = (
            "model",
            "dataset",
            "classes",
            "mean",
            "std",
            "light_on_dark",
            "tta_flip",
            "photo_recipe",
            "weights_sha256",
        )
        cfg = {key: meta.get(key) for key in keys} | {"tta_shift": bool(meta.get("tta_shift", False))}
        return cfg | {"input_size": [pre.channels, *pre.size]}

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, C, H, W] -> the float32 graph input, with the mean and std stored in the file."""
        mean = np.asarray(self.preprocessing.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.preprocessing.std, dtype=np.float32).reshape(1, -1, 1, 1)
        return ((images.astype(np.float32) / np.float32(255.0) - mean) / std).astype(np.float32)

    def logits(self, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return run_logits(self.session, inputs, self.fixed_batch or batch_size, fixed=self.fixed_batch is not None)


def run_logits(session, inputs: np.ndarray, batch_size: int, fixed: bool = False) -> np.ndarray:
    """Logits for normalized inputs, batch by batch; a fixed-batch graph gets its last batch zero-padded."""
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size]
        count = len(batch)
        if fixed and count < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - count, *batch.shape[1:]), batch.dtype)])
        outputs.append(session.run(None, {INPUT_NAME: np.ascontiguousarray(batch)})[0][:count])
    return np.concatenate(outputs) if outputs else np.empty((0, 0), np.float32)
