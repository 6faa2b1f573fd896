"""`zoo serve`: the zoo's models over HTTP (FastAPI on uvicorn) and a web page, on ONNX Runtime alone.

    GET  /healthz                       liveness, and the models served
    GET  /v1/models                     name, data set, classes, params, accuracy, input size
    POST /v1/models/{name}/predict      an image (raw body, or multipart field "file") -> `zoo predict --json`'s object
    GET  /                              the web page;  GET /openapi.json  the OpenAPI description

The server holds no state beyond its read-only models: run as many replicas as you like behind any load
balancer. Uploads are read into memory (never written to disk) and refused above `MAX_UPLOAD_BYTES`.
Concurrent requests for one model are gathered into one ONNX Runtime call (`Batcher`).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartParser

from zoo import __version__
from zoo.core.errors import ZooError
from zoo.core.images import ImageError, decode_image, to_model_array
from zoo.core.weights import shipped_models
from zoo.export.runtime import OnnxClassifier
from zoo.prediction import onnx_at_hand, top_classes

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # far above any photo a phone takes; larger bodies get 413
MAX_BATCH = 64  # requests gathered into one ONNX Runtime call at most
MODELS_ENV = "ZOO_SERVE_MODELS"  # comma-separated models, for `uvicorn zoo.serve:create_app --factory` run by hand


class Batcher:
    """Runs one model for many concurrent requests: whatever has queued while the previous call ran goes
    into the next call as one batch. An idle server answers a lone request at once; a busy one does one
    batch of N instead of N calls of one, which is where ONNX Runtime is most efficient."""

    def __init__(self, classifier: OnnxClassifier, max_batch: int = MAX_BATCH) -> None:
        self.classifier = classifier
        self.max_batch = max_batch
        self.queue: asyncio.Queue | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        # One thread calls ONNX Runtime (which uses all cores inside a call and releases the GIL meanwhile).
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"ort-{classifier.name}")

    async def logits(self, image: np.ndarray) -> np.ndarray:
        """Logits of one uint8 [C, H, W] image."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # first use in this event loop (a server has one; test clients make several)
            self.loop, self.queue = loop, asyncio.Queue()
            self.worker = loop.create_task(self._serve())
        future = loop.create_future()
        await self.queue.put((image, future))
        return await future

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            images = np.stack([image for image, _ in batch])
            try:
                logits = await loop.run_in_executor(self.executor, self._run, images)
            except Exception as error:  # a failed call fails its requests, not the server
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), row in zip(batch, logits, strict=True):
                if not future.done():  # the client may have gone away
                    future.set_result(row)

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self.classifier.logits(self.classifier.normalize(images), batch_size=self.max_batch)


@dataclass
class ServedModel:
    classifier: OnnxClassifier
    batcher: Batcher = field(init=False)

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.classifier)

    def describe(self) -> dict[str, object]:
        cfg = self.classifier.pretrained_cfg
        return {
            "name": cfg["model"],
            "dataset": cfg["dataset"],
            "classes": cfg["classes"],
            "params": self.classifier.metadata.get("params"),
            "accuracy": self.classifier.metadata.get("test_accuracy"),  # test accuracy of these weights, 0-1, or null
            "input_size": cfg["input_size"],
            "photo_recipe": cfg["photo_recipe"],
        }


def model_files(names: list[str] | None = None) -> dict[str, Path]:
    """The validated ONNX file of each model (default: every shipped one), or a one-line error."""
    files = {}
    for name in names or shipped_models():
        path = onnx_at_hand(name)
        if path is None:
            raise ZooError(
                f"{name} has no validated ONNX file at hand: it ships no weights, or they were never exported "
                "(`zoo predict --model NAME --backend onnxruntime IMAGE` exports them once into the cache)",
                argument="models",
            )
        files[name] = path
    if not files:
        raise ZooError("no model to serve: no model ships weights with an ONNX file", argument="models")
    return files


def load_models(names: list[str] | None = None) -> dict[str, ServedModel]:
    """The ONNX Runtime sessions of `model_files(names)`, loaded once per server process."""
    served = [ServedModel(OnnxClassifier(path)) for path in model_files(names).values()]
    # Listed as people compare them: data set, then size.
    order = sorted(served, key=lambda m: (m.classifier.metadata["dataset"], m.classifier.metadata["params"]))
    return {model.classifier.name: model for model in order}


def create_app(models: list[str] | None = None) -> FastAPI:
    """The FastAPI application serving `models` (default: $ZOO_SERVE_MODELS, else every shipped model)."""
    env_models = [m for m in os.environ.get(MODELS_ENV, "").split(",") if m]
    served = load_models(models or env_models or None)
    app = FastAPI(
        title="zoo",
        summary="Small image classifiers at fixed parameter budgets, served with ONNX Runtime.",
        version=__version__,
    )
    app.state.models = served  # name -> ServedModel, read-only

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "models": list(served)}

    @app.get("/v1/models")
    def list_served() -> list[dict]:
        return [model.describe() for model in served.values()]

    @app.post(
        "/v1/models/{name}/predict",
        openapi_extra={
            "requestBody": {
                "description": f"The image: the raw body (image/png, image/jpeg, ...) or a multipart form with a "
                f"`file` field; at most {MAX_UPLOAD_BYTES // 2**20} MiB.",
                "content": {
                    "image/*": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {
                        "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                    },
                },
            }
        },
    )
    async def predict(name: str, request: Request, topk: int = 5, include_input: bool = False):
        """Classify one image. The answer is `zoo predict --json`'s object: `file`, `model`, `backend` and
        `top` (classes with probabilities, best first); `include_input=true` adds `input_png` (the image as
        the model saw it, a data URL) and `latency_ms` (server time for this request)."""
        started = time.perf_counter()
        model = served.get(name)
        if model is None:
            return error(404, f"unknown model {name!r}; served: {', '.join(served)}")
        if topk < 1:
            return error(422, f"topk must be at least 1, got {topk}")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
            return error(413, f"upload of {int(declared):,} bytes exceeds the {MAX_UPLOAD_BYTES:,}-byte limit")
        try:
            label, data = await _read_upload(request)
        except UploadTooLarge:
            return error(413, f"upload exceeds the {MAX_UPLOAD_BYTES:,}-byte limit")
        except ValueError as bad:
            return error(400, str(bad))
        try:
            array = await run_in_threadpool(_prepare, data, label, model.classifier)
        except ImageError as bad:
            return error(400, f"{label}: {bad.reason}")
        logits = await model.batcher.logits(array)
        (top,) = top_classes(logits[None], model.classifier.classes, topk)
        answer = {"file": label, "model": name, "backend": "onnxruntime", "top": top}
        if include_input:
            answer["input_png"] = _png_data_url(array)
            answer["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return answer

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("zoo").joinpath("static/index.html").read_text()

    return app


class UploadTooLarge(Exception):
    pass


class InMemoryMultiPartParser(MultiPartParser):
    """Starlette's parser spools a file part above 1 MB to a temporary file; this one keeps every upload in
    memory (they are capped at MAX_UPLOAD_BYTES), as promised, without changing Starlette's own default."""

    spool_max_size = MAX_UPLOAD_BYTES


async def _read_upload(request) -> tuple[str, bytes]:
    """(file name, bytes) from a raw image body or a multipart form's `file` field, in memory, size-capped."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await InMemoryMultiPartParser(request.headers, request.stream(), max_files=1, max_fields=4).parse()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValueError("the multipart form has no `file` field with an image")
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        label = upload.filename or "upload"
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise UploadTooLarge
            chunks.append(chunk)
        data = b"".join(chunks)
        label = request.headers.get("x-file-name", "upload")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadTooLarge
    return label, data


def _prepare(data: bytes, label: str, classifier: OnnxClassifier) -> np.ndarray:
    """Decode and preprocess by the recipe named in the ONNX file's metadata (the same code as `zoo predict`)."""
    return to_model_array(decode_image(data, label), classifier.preprocessing)


def _png_data_url(array: np.ndarray) -> str:
    image = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def serve(models: list[str] | None = None, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the server (blocking). With workers > 1, that many processes share the port (uvicorn's supervisor);
    each builds its app from `models` itself, so nothing is passed through the environment."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    model_files(models)  # fail here, with one line, rather than in every worker; the workers load the sessions
    config = uvicorn.Config(
        functools.partial(create_app, models), factory=True, host=host, port=port, workers=workers,
        log_level="warning", access_log=False,
    )  # fmt: skip
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
