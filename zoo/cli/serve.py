"""`zoo serve`: the HTTP API and web page, on ONNX Runtime or OpenVINO."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

from zoo.cli.app import err
from zoo.core.errors import ZooError


def serve_command(
    models: Annotated[
        list[str] | None, typer.Option("--models", help="Models to serve (repeatable; default: every shipped model).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes sharing the port.")] = 1,
    runtime: Annotated[
        str, typer.Option(help="onnxruntime, openvino or openvino-bf16 (the \\[openvino] extra).")
    ] = "onnxruntime",
) -> None:
    """HTTP API (/v1/models, /v1/models/NAME/predict, /openapi.json) and a web page at /, on ONNX Runtime
    (or OpenVINO)."""
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise ZooError('zoo serve needs its extra: python3 -m pip install "zoo-classifiers[serve]"')
    if workers < 1:
        raise ZooError(f"--workers must be at least 1, got {workers}")
    from zoo.export.runtime import check_runtime
    from zoo.serve import serve

    check_runtime(runtime)
    names = [n for item in models or [] for n in item.split(",") if n]
    err.print(
        f"serving {', '.join(names) or 'every shipped model'} on http://{host}:{port}/ ({workers} worker(s), {runtime})"
    )
    serve(names or None, host=host, port=port, workers=workers, runtime=runtime)
