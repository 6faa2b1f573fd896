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
import copy
import functools
import io
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartParser
from starlette.routing import Route

from zoo import __version__
from zoo.core.catalog import rows as catalog_rows
from zoo.core.device import usable_cores
from zoo.core.errors import ZooError
from zoo.core.images import ImageError, open_upload
from zoo.core.weights import shipped_models
from zoo.decoder import DecoderDied, LargeDecoder, prepare_opened
from zoo.export.runtime import OnnxClassifier, check_runtime
from zoo.prediction import default_model, onnx_at_hand, top_classes

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # far above any photo a phone takes; larger bodies get 413
PREDICT_PATH = "/v1/models/{name}/predict"
DEFAULT_TOPK = 5  # classes answered when a request does not say
MAX_BATCH = 64  # requests gathered into one ONNX Runtime call at most
HEAVY_PIXELS = 4_000_000  # uploads declaring more pixels decode one at a time per worker, in zoo.decoder
# Every upload's header is read on the event loop (no image, or too many pixels: refused at once). Those declaring
# at most this many pixels also decode there: a data-set image takes well under a millisecond, less than a hop
# to a thread and back under load; a 224x224 photo through the photo recipe (decoded at 4x the model's input
# side) takes about half of one.
INLINE_PIXELS = 512 * 512
log = logging.getLogger(__name__)
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


def load_models(
    names: list[str] | None = None, threads: int | None = None, runtime: str = "onnxruntime"
) -> dict[str, ServedModel]:
    """The sessions of `model_files(names)` on `runtime` (zoo.export.runtime.RUNTIMES), loaded once per server
    process, in the registry's order (`zoo list`: data set, family, size), each with at most `threads` threads."""
    files = model_files(names)
    order = [row["name"] for row in catalog_rows() if row["name"] in files]
    return {name: ServedModel(OnnxClassifier(files[name], threads, runtime)) for name in order}


def create_app(models: list[str] | None = None, threads: int | None = None, runtime: str = "onnxruntime") -> FastAPI:
    """The FastAPI application serving `models` (default: $ZOO_SERVE_MODELS, else every shipped model) on
    `runtime` (ONNX Runtime, or OpenVINO in f32 or bf16). `threads`: intra-op threads per session (default: one
    per core); `serve` gives each of its worker processes its share of the cores."""
    env_models = [m for m in os.environ.get(MODELS_ENV, "").split(",") if m]
    served = load_models(models or env_models or None, threads, runtime)
    app = FastAPI(
        title="zoo",
        summary="Small image classifiers at fixed parameter budgets, served with ONNX Runtime.",
        version=__version__,
    )
    app.state.models = served  # name -> ServedModel, read-only
    app.add_middleware(RequestLog)
    # Every error answers {"error": "..."}: FastAPI's own (a query parameter of the wrong type, an unknown
    # route) as much as the server's.
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    default = _default_model(served)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "models": list(served)}

    @app.get("/v1/models")
    def list_served() -> list[dict]:
        return [model.describe() | {"default": name == default} for name, model in served.items()]

    heavy = LargeDecoder()
    app.router.on_shutdown.append(heavy.shutdown)
    predict = _predict_route(served, heavy)
    app.post(PREDICT_PATH, openapi_extra=PREDICT_OPENAPI)(predict)  # documented in /openapi.json by FastAPI, ...
    # ... and served by a plain Starlette route in front of it: FastAPI's request handling (dependency
    # solving, its exit stack) costs CPU on every request of the hot path, which uses none of it.
    app.router.routes.insert(0, Route(PREDICT_PATH, predict, methods=["POST"]))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("zoo").joinpath("static/index.html").read_text()

    return app


PREDICT_OPENAPI = {
    "parameters": [
        {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "A served model.",
        },
        {
            "name": "topk",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_TOPK},
            "description": "How many classes to answer, most probable first.",
        },
        {
            "name": "include_input",
            "in": "query",
            "schema": {"type": "boolean", "default": False},
            "description": "Add `input_png` (the image as the model saw it) and `latency_ms`.",
        },
    ],
    "requestBody": {
        "description": f"The image: the raw body (image/png, image/jpeg, ...) or a multipart form with a "
        f"`file` field; at most {MAX_UPLOAD_BYTES // 2**20} MiB.",
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    },
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _predict_route(served: dict[str, ServedModel], heavy: LargeDecoder):
    async def predict(request: Request):
        """Classify one image. The answer is `zoo predict --json`'s object: `file`, `model`, `backend` and
        `top` (classes with probabilities, best first); `include_input=true` adds `input_png` (the image as
        the model saw it, a data URL) and `latency_ms` (server time for this request)."""
        # The hot path reads its parameters and writes its answer itself: FastAPI's parameter validation and
        # its generic encoder of the returned object took a large share of each request's CPU (README,
        # "Serving under load"); PREDICT_OPENAPI documents the parameters all the same.
        started = time.perf_counter()
        name = request.path_params["name"]
        model = served.get(name)
        if model is None:
            return _error(404, f"unknown model {name!r}; served: {', '.join(served)}")
        try:
            topk = _query_int(request, "topk", DEFAULT_TOPK)
            include_input = _query_bool(request, "include_input", False)
        except ValueError as bad:
            return _error(422, str(bad))
        if topk < 1:
            return _error(422, f"topk must be at least 1, got {topk}")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
            return _error(413, f"upload of {int(declared):,} bytes exceeds the {MAX_UPLOAD_BYTES:,}-byte limit")
        try:
            label, data = await _read_upload(request)
        except UploadTooLarge:
            return _error(413, f"upload exceeds the {MAX_UPLOAD_BYTES:,}-byte limit")
        except ValueError as bad:
            return _error(400, str(bad))
        try:
            image = open_upload(data, label)  # its header: refused here if it is no image, or too large
            pixels = image.width * image.height
            if pixels > HEAVY_PIXELS:
                array = await heavy.prepare(data, label, model.classifier.preprocessing)
            elif pixels > INLINE_PIXELS:
                array = await run_in_threadpool(prepare_opened, image, label, model.classifier.preprocessing)
            else:
                array = prepare_opened(image, label, model.classifier.preprocessing)
        except ImageError as bad:
            return _error(400, f"{label}: {bad.reason}")
        except DecoderDied as died:
            return _error(503, str(died))
        logits = await model.batcher.logits(array)
        (top,) = top_classes(logits[None], model.classifier.classes, topk)
        answer = {"file": label, "model": name, "backend": model.classifier.runtime, "top": top}
        if include_input:
            answer["input_png"] = _png_data_url(array)
            answer["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return JSONResponse(answer)

    return predict


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _query_int(request: Request, key: str, default: int) -> int:
    text = request.query_params.get(key)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{key}: should be a whole number, got {text!r}") from None


def _query_bool(request: Request, key: str, default: bool) -> bool:
    text = request.query_params.get(key)
    if text is None:
        return default
    if text.lower() in TRUE + FALSE:
        return text.lower() in TRUE
    raise ValueError(f"{key}: should be true or false, got {text!r}")


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body"))
    return _error(422, f"{where or 'request'}: {first.get('msg', 'invalid request')}")


async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    return _error(error.status_code, str(error.detail))


def _default_model(served: dict[str, ServedModel]) -> str | None:
    """The model the page opens on: `zoo predict`'s default where it is served, else the first served."""
    try:
        wanted = default_model()
    except ZooError:
        wanted = None
    return wanted if wanted in served else next(iter(served), None)


class RequestLog:
    """One log line per request on the `zoo.serve` logger: client, method, path, status, milliseconds. A plain
    ASGI wrapper (no per-request task or body copy), so it costs next to nothing on the hot path."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info("%s %s %s %d %.1f ms", client[0], scope["method"], scope["path"], status,
                     (time.perf_counter() - started) * 1000)  # fmt: skip


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


def _png_data_url(array: np.ndarray) -> str:
    image = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def threads_per_worker(workers: int) -> int:
    """ONNX Runtime intra-op threads for each of `workers` server processes: the usable cores split between them."""
    return max(1, usable_cores() // workers)


def serve(
    models: list[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    runtime: str = "onnxruntime",
) -> None:
    """Run the server (blocking). With workers > 1, that many processes share the port (uvicorn's supervisor);
    each builds its app from `models` itself, so nothing is passed through the environment."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    # Fail here, with one line, rather than in every worker; the workers load the sessions.
    check_runtime(runtime)
    model_files(models)
    logging_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    logging_config["loggers"][__name__] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    # Each worker process runs its sessions on its share of the cores. ONNX Runtime's default, a thread per
    # core in every process, puts workers x cores threads on the cores, and its threads spin between calls:
    # under load, requests then wait for a core (the load test's record, README's "Serving under load").
    threads = threads_per_worker(workers)
    config = uvicorn.Config(
        functools.partial(create_app, models, threads, runtime), factory=True, host=host, port=port, workers=workers,
        log_level="warning", access_log=False, log_config=logging_config,
        # A stop (Ctrl-C, SIGTERM) waits at most this long for requests in flight: they take milliseconds.
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
