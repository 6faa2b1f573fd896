"""`zoo predict --ray`: the local path's prediction on Ray Data, Ray's batch-inference pattern.

The files go to `map_batches` in batches of `batch_size`, to a pool of actors (`concurrency`, one per CPU
by default), each holding the model, loaded once in its __init__ from the ONNX file's bytes (which reach
the cluster through the object store). An actor decodes its batch with zoo's own decoder
(zoo.core.decode_pool) and runs it: on CPUs each core then decodes and runs its own batches, with nothing
moved between them (as separate steps, Ray Data fuses them into the actors all the same). Ray Data's
executor runs in an actor of its own on the cluster, since a driver joined through Ray Client (ray://)
cannot run it; the driver pulls the logits from there, in the inputs' order, and makes the rows exactly as
the local path does. Files are read where the actors run: on a cluster they must be at the same path on
every node (shared storage), as for Ray Data's own readers. The driver holds the list of input names
(about 100 bytes a file).
"""

from __future__ import annotations

import itertools
import logging
import os
import warnings
from collections.abc import Callable, Iterator

import numpy as np

from zoo.core.datasets import Preprocessing
from zoo.core.decode_pool import decode_files
from zoo.core.errors import ZooError
from zoo.core.images import InputFile

# What an actor calls with the model's bytes: it returns the function from uint8 [N, C, H, W] to logits [N, K].
ModelLoader = Callable[[bytes], Callable[[np.ndarray], np.ndarray]]


def ray_logits(
    inputs: Iterator[InputFile], preprocessing: Preprocessing, load_model: ModelLoader, model: bytes, classes: int,
    *, batch_size: int, actors: int | None = None,
) -> Iterator[tuple[list[InputFile], list[str | None], np.ndarray]]:  # fmt: skip
    """Each Ray output batch as (its inputs, why each failed or None, the logits of those that did not), in
    the inputs' order. `actors` defaults to one per CPU of the cluster."""
    import ray

    inputs = list(inputs)
    if any(item.image is not None for item in inputs):
        raise ZooError("images in memory cannot go to Ray: pass files", argument="ray")
    if not inputs:
        return
    items = [{"index": i, "path": _absolute(item), "error": item.error or ""} for i, item in enumerate(inputs)]
    actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    pipeline = ray.remote(num_cpus=0)(_Pipeline).remote(
        items, load_model, model, classes, preprocessing, batch_size, actors
    )
    pending = pipeline.take.remote()
    while chunk := ray.get(pending):
        pending = pipeline.take.remote()  # the next while this one is turned into rows
        for index, errors, logits in chunk:
            ok = np.array([not error for error in errors], dtype=bool)
            yield [inputs[int(i)] for i in index], [error or None for error in errors], logits[ok]


class _Pipeline:
    """An actor that runs Ray Data's executor on the cluster and hands the results out a few batches at a time."""

    def __init__(self, items: list[dict], load_model: ModelLoader, model: bytes, classes: int,
                 preprocessing: Preprocessing, batch_size: int, actors: int) -> None:  # fmt: skip
        import ray.data

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # rows come back in the inputs' order, as locally
        context.enable_progress_bars = False  # zoo shows its own, on a terminal only
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # Ray Data's plans and notices are not zoo's output
        # max_restarts=0: an actor lost with its node stops the run (which --resume continues) rather than
        # being restarted, which Ray cannot promise for an actor given its model as an argument, and logs an
        # error line about for every actor. Ray 2.60 reads it from the extra keyword arguments, as its actor
        # pool's source says, and warns that those are deprecated: Ray's to resolve, not the user's to read.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
            dataset = ray.data.from_items(items).map_batches(
                _Model, fn_constructor_args=(load_model, model, classes, preprocessing), batch_size=batch_size,
                concurrency=actors, num_cpus=1, max_restarts=0, batch_format="numpy",
            )  # fmt: skip
        self.batches = iter(dataset.iter_batches(batch_size=batch_size, batch_format="numpy", prefetch_batches=2))

    def take(self, count: int = 4) -> list[tuple[np.ndarray, list[str], np.ndarray]]:
        """Up to `count` batches as (input indices, errors ("" for none), logits); none once all are out."""
        return [(b["index"], [str(e) for e in b["error"]], b["logits"]) for b in itertools.islice(self.batches, count)]


def _absolute(item: InputFile) -> str:
    """The path a Ray worker opens: absolute, since a worker's working directory is not the driver's."""
    return os.path.abspath(item.label) if item.error is None else ""


class _Model:
    """A Ray actor: the model, loaded once, run on each batch of files it decodes. A file that fails keeps
    zero logits and its reason."""

    def __init__(self, load_model: ModelLoader, model: bytes, classes: int, preprocessing: Preprocessing) -> None:
        self.logits_of, self.classes, self.preprocessing = load_model(model), classes, preprocessing

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        failed = [str(error) for error in batch["error"]]
        paths = [str(path) if not error else None for path, error in zip(batch["path"], failed, strict=True)]
        arrays, reasons = decode_files(paths, self.preprocessing)
        errors = [error or reason or "" for error, reason in zip(failed, reasons, strict=True)]
        logits = np.zeros((len(paths), self.classes), np.float32)
        if len(arrays):
            logits[[i for i, error in enumerate(errors) if not error]] = self.logits_of(arrays)
        return {"index": batch["index"], "logits": logits, "error": np.array(errors, dtype=object)}
