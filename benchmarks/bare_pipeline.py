"""The bare pipeline `zoo predict` is measured against: what a user would write by hand in about 40 lines.

    python3 benchmarks/bare_pipeline.py MODEL (FOLDER | --files-from LIST) [--recursive] [--workers 2]
        [--no-spinning] > rows.tsv

PIL decodes in a pool of processes (multiprocessing.Pool.imap, chunks of 64), the pixels are taken as they
are (grey or RGB, resized only where the size differs), batches of 256 go to one ONNX Runtime session with
its default options, and one line per file (file, top-1 class, probability) is printed. It skips what zoo
does beyond that: the photo recipe, the checks on each file, top-5, JSON, bounded memory (Pool.imap queues
every file at once) and resuming. `--no-spinning` turns off what zoo turns off in ONNX Runtime (its threads' spinning between
calls), to show how much of zoo's rate comes from that. benchmarks/predict_scale.py runs it beside `zoo predict`.
"""

import argparse
import functools
import itertools
import json
import os
from multiprocessing import Pool

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

from zoo.core.weights import shipped_weights


def decode(path: str, mode: str, size: tuple[int, int]) -> np.ndarray:
    image = Image.open(path).convert(mode)
    if image.size != (size[1], size[0]):
        image = ImageOps.fit(image, (size[1], size[0]), Image.Resampling.LANCZOS)
    array = np.asarray(image)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("folder", nargs="?")
    parser.add_argument("--files-from")
    parser.add_argument("--recursive", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--no-spinning", action="store_true")
    args = parser.parse_args()
    options = ort.SessionOptions()
    if args.no_spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = str(shipped_weights(args.model).onnx_verified())
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    meta = {key: json.loads(value) for key, value in session.get_modelmeta().custom_metadata_map.items() if key in ("classes", "mean", "std", "channels", "input_size")}  # fmt: skip
    mean, std = (np.array(meta[k], np.float32).reshape(1, -1, 1, 1) for k in ("mean", "std"))
    if args.files_from:
        files = open(args.files_from).read().split("\n")[:-1]
    elif args.recursive:
        files = sorted(os.path.join(d, f) for d, _, names in os.walk(args.folder) for f in names)
    else:
        files = sorted(os.path.join(args.folder, f) for f in os.listdir(args.folder))
    mode, size = ("L" if meta["channels"] == 1 else "RGB"), tuple(meta["input_size"])
    with Pool(args.workers) as pool:
        decoded = pool.imap(functools.partial(decode, mode=mode, size=size), files, chunksize=64)
        for start in itertools.count(0, 256):
            batch = list(itertools.islice(decoded, 256))
            if not batch:
                break
            x = (np.stack(batch).astype(np.float32) / 255 - mean) / std
            logits = session.run(None, {"input": x})[0]
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            best = p.argmax(1)
            lines = (
                f"{f}\t{meta['classes'][b]}\t{q[b]:.6f}\n"
                for f, b, q in zip(files[start : start + 256], best, p, strict=True)
            )
            print("".join(lines), end="", flush=True)


if __name__ == "__main__":
    main()
