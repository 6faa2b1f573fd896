"""`train_model`: the training engine's entry point. It chooses the device and the run folder (new, or the one
to resume), joins a torchrun process group if there is one, and hands the rest to the Trainer."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from zoo.core.device import resolve_device
from zoo.core.recipe import Recipe
from zoo.core.rundir import RunDir
from zoo.core.spec import ModelSpec

from . import distributed
from .trainer import EpochHook, Options, Trainer, TrainingInterrupted, TrainResult

__all__ = ["TrainResult", "TrainingInterrupted", "train_model"]


def train_model(
    spec: ModelSpec,
    recipe: Recipe,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    device: str | None = None,
    resume: str | os.PathLike[str] | None = None,
    limit_train: int | None = None,
    progress: bool = True,
    on_epoch: EpochHook | None = None,
    measure_test: bool = True,
    arch: dict[str, object] | None = None,
) -> TrainResult:
    """Train `spec`'s model with `recipe`; return where the run went and how well it did.

    `resume=RUN_DIR` continues that run (the caller has checked the recipe against it). `on_epoch` is called
    with each epoch's metrics record once it is saved (a tuner reports it; a scheduler such as ASHA may end the
    run there). `measure_test=False` leaves the test set untouched, as a hyper-parameter search must: the
    report's test_accuracy is then None. `arch` changes the registered architecture (`widths=...`).

    Started by `torchrun --nproc_per_node=N`, every process runs this with the same arguments and they
    train one model together with DistributedDataParallel (see README, "Multi-GPU training").
    """
    recipe.validate()
    dist, resolved = distributed.setup(resolve_device(device))
    try:
        run = dist.decide(lambda: RunDir.of(resume) if resume else RunDir.new(spec.name, recipe.seed, out))
        options = Options(data_dir, limit_train, progress, on_epoch, measure_test, dict(arch or {}))
        with _tf32_allowed(resolved.type == "cuda"):
            return Trainer(
                spec, recipe, run, resume=resume is not None, device=resolved, dist=dist, options=options
            ).fit()
    finally:
        dist.close()


@contextlib.contextmanager
def _tf32_allowed(allowed: bool) -> Iterator[None]:
    """TF32 for the fp32 parts of GPU training steps, and the caller's settings back afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if allowed:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
