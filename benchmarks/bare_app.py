"""The baseline `zoo serve` is measured against: a bare Starlette + ONNX Runtime app with no zoo code.

    BARE_ONNX=weights/cnn_20k.v1.onnx uvicorn --app-dir benchmarks bare_app:app --workers 2 --port 8001

Decode, grey or RGB, resize to the input, normalise, one session run, softmax: no batching, no checks.
ONNX Runtime's default threads, or BARE_THREADS intra-op threads per worker (the one setting `zoo serve` tunes).
"""

import io
import json
import os

import numpy as np
import onnxruntime as ort
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

options = ort.SessionOptions()
options.intra_op_num_threads = int(os.environ.get("BARE_THREADS", "0"))  # 0: ONNX Runtime's default
session = ort.InferenceSession(os.environ["BARE_ONNX"], options, providers=["CPUExecutionProvider"])
meta = {
    k: json.loads(v)
    for k, v in session.get_modelmeta().custom_metadata_map.items()
    if k in ("mean", "std", "channels", "input_size")
}
mean, std = np.float32(meta["mean"]).reshape(-1, 1, 1), np.float32(meta["std"]).reshape(-1, 1, 1)


async def predict(request):
    image = Image.open(io.BytesIO(await request.body())).convert("L" if meta["channels"] == 1 else "RGB")
    pixels = np.asarray(image.resize(tuple(meta["input_size"][::-1])), np.float32).reshape(
        meta["channels"], *meta["input_size"]
    )
    logits = session.run(None, {"input": ((pixels / 255 - mean) / std)[None].astype(np.float32)})[0][0]
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    return JSONResponse(
        {"top": [{"index": int(i), "probability": float(probabilities[i])} for i in np.argsort(-probabilities)[:5]]}
    )


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
