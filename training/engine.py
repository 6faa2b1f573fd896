"""One training loop for every model in the zoo, in the style of airbench: the whole data set sits on the
training device as uint8, batches are index slices, augmentation runs on whole batches with tensor ops.

A run folder holds config.json (the resolved run), metrics.jsonl (one line per epoch), best.safetensors
(best validation accuracy), last.safetensors (resumable state, written at every epoch end) and
report.json (final test accuracy, time, speed).

Under torchrun the same loop runs data-parallel (DistributedDataParallel): see training/distributed.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from zoo.checkpoint import (
    atomic_write,
    git_commit,
    library_versions,
    read_checkpoint,
    save_checkpoint,
)
from zoo.data import load_dataset, train_val_split
from zoo.errors import ZooError
from zoo.hardware import describe_hardware
from zoo.loading import Classifier
from zoo.preprocess import normalize, predict_logits
from zoo.recipe import Recipe
from zoo.registry import ModelSpec
from zoo.summary import count_params

from . import distributed
from .augment import crop_at, random_flip, random_offsets
from .distill import Teacher
from .progress import TrainingProgress


class TrainingInterrupted(ZooError):
    exit_code = 130


@dataclass(frozen=True)
class TrainResult:
    model: str  # registry name
    run_dir: str  # folder with config, metrics, checkpoints and report
    best_checkpoint: str  # path of best.safetensors
    best_epoch: int  # epoch whose weights were kept
    val_accuracy: float  # of the kept weights, fraction
    test_accuracy: float | None  # of the kept weights, fraction, measured once (None: not measured)
    epochs: int  # epochs trained in total
    train_seconds: float  # wall time spent in training epochs (this process)
    images_per_second: float  # training throughput, all processes together
    params: int  # parameters, frozen ones included
    device: str  # where it trained (rank 0's device under torchrun)
    time_to_best_seconds: float | None = None  # training seconds to the kept epoch, resumed runs included
    world_size: int = 1  # data-parallel processes (torchrun --nproc_per_node)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def cpu_has_native_bf16() -> bool:
    """True where oneDNN runs bf16 convolutions natively (avx512_bf16 or AMX), not by emulation."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ZooError(f"invalid device {device!r}; use cpu, cuda, cuda:N or auto") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ZooError("device 'cuda' was asked for but no CUDA GPU is available")
    return resolved


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
    on_epoch: Callable[[dict[str, object]], None] | None = None,
    measure_test: bool = True,
) -> TrainResult:
    """Train `spec`'s model with `recipe`; return where the run went and how well it did.

    `on_epoch` is called with each epoch's metrics record once it is saved (a tuner reports it; a scheduler
    such as ASHA may end the run there). `measure_test=False` leaves the test set untouched, as a
    hyper-parameter search must: the report's test_accuracy is then None.

    Started by `torchrun --nproc_per_node=N`, every process runs this with the same arguments and they
    train one model together with DistributedDataParallel (see README, "Multi-GPU training").
    """
    recipe.validate()
    dist, device = distributed.setup(resolve_device(device))
    try:
        # `held` keeps the run folder locked until training ends (see _exclusive).
        with _tf32_allowed(device.type == "cuda"), contextlib.ExitStack() as held:
            return _train(
                spec, recipe, dist, data_dir, out, device, resume, limit_train, progress, on_epoch, measure_test, held
            )
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


def _train(
    spec: ModelSpec,
    recipe: Recipe,
    dist: distributed.Distributed,
    data_dir: str | os.PathLike[str] | None,
    out: str | os.PathLike[str] | None,
    device: torch.device,
    resume: str | os.PathLike[str] | None,
    limit_train: int | None,
    progress: bool,
    on_epoch: Callable[[dict[str, object]], None] | None,
    measure_test: bool,
    held: contextlib.ExitStack,
) -> TrainResult:
    world, rank, main = dist.world_size, dist.rank, dist.is_main
    if recipe.batch_size % world:
        raise ZooError(
            f"batch_size {recipe.batch_size} is the global batch and must divide evenly over {world} processes"
        )
    resume_state = _read_resume_state(resume, spec.name) if resume else None
    # Rank 0 chooses (and creates) the run folder; a refusal is raised on every rank alike.
    run_dir: Path | str | None = None
    if main:
        try:
            run_dir = Path(resume_state["run_dir"]) if resume_state else _new_run_dir(spec.name, recipe.seed, out)
        except ZooError as error:
            run_dir = error
    run_dir = dist.broadcast(run_dir)
    if isinstance(run_dir, ZooError):
        raise run_dir
    run_dir = Path(run_dir)

    torch.manual_seed(recipe.seed)  # the same initial weights on every rank
    if not main:
        dist.barrier()  # rank 0 decodes and caches the data set first, the others then read the cache
    data = load_dataset(spec.dataset, data_dir)
    if main:
        dist.barrier()
    train, val = train_val_split(data.train, recipe.val_size, recipe.split_seed, limit_train)
    train_images, train_labels = train.images.to(device), train.labels.to(device)
    # Every rank holds the whole (uint8) training set and takes its share of each global batch; an epoch
    # drops the few images beyond a multiple of the world size so that all ranks take equal steps.
    epoch_images = len(train_labels) - len(train_labels) % world
    if epoch_images == 0:
        raise ZooError(f"{len(train_labels)} training images cannot be shared by {world} processes")

    teacher = Teacher.load(recipe, spec, train.images, device) if recipe.teacher and recipe.distill_weight else None

    # Channels-last lets oneDNN (CPU) and cuDNN (GPU) pick their fastest convolution kernels: on a 2-core
    # CPU it trains the Fashion-MNIST CNNs about 1.5-2x faster than the default layout.
    model = spec.builder(dropout=recipe.dropout).to(device).to(memory_format=torch.channels_last)
    # Training steps run in bf16 on a GPU, and on a CPU with native bf16 when the recipe asks; accuracy is
    # always measured in fp32 (zoo.preprocess.predict_logits).
    autocast = device.type == "cuda" or (recipe.cpu_bf16 and cpu_has_native_bf16())
    optimizer = create_optimizer_v2(
        model, opt=recipe.optimizer, lr=recipe.lr, weight_decay=recipe.weight_decay, momentum=recipe.momentum
    )
    steps_per_epoch = math.ceil(epoch_images / recipe.batch_size)
    total_steps = recipe.epochs * steps_per_epoch
    ema = ModelEmaV3(model, decay=recipe.ema_decay, use_warmup=True) if recipe.ema_decay else None

    start_epoch, step, best, elapsed, lr_restart = 0, 0, {"val_accuracy": -1.0, "epoch": 0}, 0.0, None
    if resume_state:
        start_epoch, step, best, elapsed, lr_restart = _restore(resume_state, model, ema, optimizer, device)
        if json.loads(resume_state["meta"]["recipe"])["epochs"] != recipe.epochs:
            # An extended run: the learning rate goes on from where it stood, down a new cosine to the end.
            lr_restart = {"step": step, "lr": optimizer.param_groups[0]["lr"]}
    scheduler, schedule_offset = _scheduler(optimizer, recipe, steps_per_epoch, lr_restart)
    scheduler.step_update(step - schedule_offset)
    # `model` stays the plain module: checkpoints, EMA and evaluation use it, so saved names carry no
    # "module." prefix. `forward` is what the training steps call.
    forward: nn.Module = model
    if dist.enabled:
        forward = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if recipe.compile:
        forward = torch.compile(forward)

    config = {
        "model": spec.name,
        "recipe": recipe.to_dict(),
        "device": str(device),
        "data": data.source,
        "train_images": len(train_labels),
        "val_images": len(val),
        "params": count_params(model),
        "versions": library_versions(),
        "git_commit": git_commit(),
        "hardware": describe_hardware(device),
        "training_precision": "bf16 autocast" if autocast else "fp32",
        "validation_precision": "bf16 autocast" if autocast else "fp32",
    }
    if teacher is not None:
        config["teacher_weights_sha256"] = teacher.weights_sha256
    if dist.enabled:
        config["distributed"] = {
            "world_size": world,
            "backend": dist.backend,
            "global_batch_size": recipe.batch_size,
            "batch_size_per_rank": recipe.batch_size // world,
        }
    checkpoint_meta = {"model": spec.name, "dataset": spec.dataset, "recipe": recipe.to_dict(),
                       "versions": config["versions"], "git_commit": config["git_commit"]}  # fmt: skip

    def save_last(epoch: int) -> None:
        tensors, meta = _resume_tensors(model, ema, optimizer, device)
        meta.update(checkpoint_meta, epoch=epoch, step=step, best=best, elapsed_seconds=elapsed, kind="resume")
        if lr_restart:
            meta["lr_restart"] = lr_restart
        save_checkpoint(run_dir / "last.safetensors", tensors, meta)

    if main:
        if resume_state:
            held.enter_context(_exclusive(run_dir))
        atomic_write(run_dir / "config.json", lambda tmp: tmp.write_text(json.dumps(config, indent=2) + "\n"))
        if not resume_state:
            save_last(0)  # so that even an interrupt in the first epoch leaves a resumable run
            held.enter_context(_exclusive(run_dir))

    train_seconds = 0.0
    images_seen = 0
    bar = TrainingProgress(total_steps, step, enabled=progress and main)
    where = f"{world} × {device.type} ({dist.backend})" if dist.enabled else str(device)
    bar.message(f"training {spec.name} on {where} ({len(train_labels):,} images, {recipe.epochs} epochs) -> {run_dir}")
    with bar:
        try:
            for epoch in range(start_epoch + 1, recipe.epochs + 1):
                model.train()
                started = time.perf_counter()
                if dist.enabled:
                    # The same shuffle on every rank, a different augmentation stream per rank; both
                    # derived from (seed, epoch), so a resumed run repeats them exactly.
                    shuffle = torch.Generator().manual_seed(distributed.derived_seed(recipe.seed, "shuffle", epoch))
                    order = torch.randperm(len(train_labels), generator=shuffle).to(device)[:epoch_images]
                    torch.manual_seed(distributed.derived_seed(recipe.seed, "augment", epoch, rank))
                else:
                    order = torch.randperm(len(train_labels), device=device)
                loss_sum = torch.zeros((), device=device)
                correct = torch.zeros((), device=device)
                for batch_start in range(0, len(order), recipe.batch_size):
                    global_batch = order[batch_start : batch_start + recipe.batch_size]
                    indices = global_batch[rank::world] if world > 1 else global_batch
                    flip = torch.rand(len(indices), device=device) < 0.5 if recipe.hflip else None
                    offsets = (
                        random_offsets(len(indices), recipe.crop_padding, device) if recipe.crop_padding else None
                    )
                    images = _augment(train_images[indices], recipe, spec, flip, offsets)
                    labels = train_labels[indices]
                    images = images.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                        logits = forward(images)
                        loss = F.cross_entropy(logits.float(), labels, label_smoothing=recipe.label_smoothing)
                        if teacher is not None:
                            loss = teacher.blend(loss, logits.float(), indices, flip, offsets)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()  # under DDP: the mean over equal shards, i.e. the global batch's
                    optimizer.step()
                    step += 1
                    scheduler.step_update(step - schedule_offset)
                    if ema is not None:
                        ema.update(model, step=step)
                    loss_sum += loss.detach() * len(labels)
                    correct += (logits.argmax(1) == labels).sum()
                    # Reading loss and accuracy syncs with the device, so the live display does it a few times a second.
                    if bar.step_due():
                        rate = (batch_start + len(global_batch)) / (time.perf_counter() - started)
                        accuracy = (logits.argmax(1) == labels).float().mean().item()
                        bar.show(epoch, recipe.epochs, loss.item(), accuracy, rate)
                if dist.enabled:  # the epoch's loss and hits summed over the ranks' shards
                    totals = dist.all_reduce_sum(torch.stack([loss_sum, correct.to(loss_sum.dtype)]))
                    loss_sum, correct = totals[0], totals[1]
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - started
                train_seconds += seconds
                elapsed += seconds
                images_seen += len(order)

                # Rank 0 validates (its weights are the ones saved) and tells the others the result, so
                # every rank makes the same best-epoch decision.
                evaluated = ema.module if ema is not None else model
                val_accuracy, val_loss = float("nan"), float("nan")
                if main and len(val):
                    val_accuracy, val_loss = _accuracy(evaluated, val, spec, device, bf16=autocast)
                val_accuracy, val_loss = dist.broadcast((val_accuracy, val_loss))
                record = {
                    "epoch": epoch,
                    "epochs": recipe.epochs,
                    "train_loss": loss_sum.item() / len(order),
                    "train_accuracy": correct.item() / len(order),
                    "val_loss": val_loss,
                    "val_accuracy": val_accuracy,
                    "lr": optimizer.param_groups[0]["lr"],
                    "seconds": seconds,
                    "elapsed_seconds": elapsed,
                    "images_per_second": len(order) / seconds,
                }
                if dist.enabled:
                    record["world_size"] = world
                if main:
                    with open(run_dir / "metrics.jsonl", "a") as log:
                        log.write(json.dumps(record) + "\n")
                bar.epoch_done(record)
                # Without a validation split the last epoch is kept.
                if not len(val) or val_accuracy > best["val_accuracy"]:
                    best = {"val_accuracy": val_accuracy, "epoch": epoch, "elapsed_seconds": elapsed}
                    if main:
                        meta = dict(checkpoint_meta, epoch=epoch, val_accuracy=val_accuracy, elapsed_seconds=elapsed)
                        save_checkpoint(run_dir / "best.safetensors", evaluated.state_dict(), meta)
                if main:
                    save_last(epoch)
                    if on_epoch is not None:
                        on_epoch(record)
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"interrupted; the last finished epoch is saved in {run_dir}, from which the run can be resumed"
            ) from None

    # The test set is touched once, with the weights that validation chose, by rank 0.
    test_accuracy: float | None = float("nan") if measure_test else None
    if main and measure_test:
        tensors, meta = read_checkpoint(run_dir / "best.safetensors")
        model.load_state_dict(tensors)
        test_accuracy, _ = _accuracy(model, data.test, spec, device)
        meta = {k: v for k, v in meta.items() if k != "format"}
        meta["test_accuracy"] = json.dumps(test_accuracy)
        save_checkpoint(run_dir / "best.safetensors", tensors, meta)

    result = TrainResult(
        model=spec.name,
        run_dir=str(run_dir),
        best_checkpoint=str(run_dir / "best.safetensors"),
        best_epoch=best["epoch"],
        val_accuracy=best["val_accuracy"],
        test_accuracy=test_accuracy,
        epochs=recipe.epochs,
        train_seconds=train_seconds,
        images_per_second=images_seen / train_seconds if train_seconds else 0.0,
        params=config["params"],
        device=str(device),
        time_to_best_seconds=best.get("elapsed_seconds"),  # None for runs begun before it was recorded
        world_size=world,
    )
    if main:
        atomic_write(run_dir / "report.json", lambda tmp: tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n"))
    # Every rank returns rank 0's result, once the run folder is complete.
    return dist.broadcast(result)


def _scheduler(optimizer, recipe: Recipe, steps_per_epoch: int, lr_restart: dict | None):
    """timm's warm-up + cosine over the whole run, or, for an extended run, a cosine from the learning rate
    at the extension (`lr_restart`) down to the end: continuous either way. Returns it and its step offset."""
    total_steps = recipe.epochs * steps_per_epoch
    lr_min = recipe.lr * recipe.min_lr_ratio
    if lr_restart is None:
        scheduler = CosineLRScheduler(
            optimizer, t_initial=total_steps, lr_min=lr_min, warmup_t=int(recipe.warmup_epochs * steps_per_epoch),
            warmup_lr_init=recipe.lr * 0.01, t_in_epochs=False,
        )  # fmt: skip
        return scheduler, 0
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"] = lr_restart["lr"]
    remaining = max(1, total_steps - lr_restart["step"])
    scheduler = CosineLRScheduler(
        optimizer, t_initial=remaining, lr_min=min(lr_min, lr_restart["lr"]), warmup_t=0, t_in_epochs=False
    )
    return scheduler, lr_restart["step"]


def _augment(
    images: torch.Tensor, recipe: Recipe, spec: ModelSpec, flip: torch.Tensor | None, offsets: torch.Tensor | None
) -> torch.Tensor:
    if offsets is not None:
        images = crop_at(images, recipe.crop_padding, offsets)
    if flip is not None:
        images = random_flip(images, flip)
    images = normalize(images, spec.preprocessing)
    if recipe.erasing:
        images = _random_erasing(recipe.erasing, images.device)(images)
    return images


def _random_erasing(probability: float, device: torch.device):
    from timm.data.random_erasing import RandomErasing

    return RandomErasing(probability=probability, mode="const", device=str(device))


def _accuracy(
    network: nn.Module, split, spec: ModelSpec, device: torch.device, bf16: bool = False
) -> tuple[float, float]:
    """Accuracy and loss as zoo reports them: the network wrapped as a Classifier, so flip TTA applies.
    Validation of a bf16-trained run is computed in bf16 too (selection only); the test set always in fp32."""
    logits = predict_logits(Classifier(network, spec), split.images, spec.preprocessing, device=device, bf16=bf16)
    accuracy = (logits.argmax(1) == split.labels).float().mean().item()
    return accuracy, F.cross_entropy(logits, split.labels).item()


@contextlib.contextmanager
def _exclusive(run_dir: Path) -> Iterator[None]:
    """Refuse to train a run folder that another process is training: two resumes of one run (a sweep
    restored while its own trial still ran) would both append to metrics.jsonl and overwrite each other's
    checkpoints. An advisory lock on the folder itself, released when training ends or the process dies."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ZooError(f"{run_dir} is being trained by another process; wait for it or stop it first") from None
        yield
    finally:
        os.close(fd)


def _new_run_dir(name: str, seed: int, out: str | os.PathLike[str] | None) -> Path:
    if out is not None:
        run_dir = Path(out)
        if (run_dir / "last.safetensors").exists():
            raise ZooError(f"{run_dir} already holds a run; pass resume=DIR to continue it or choose another out=DIR")
    else:
        run_dir = Path("runs") / name / f"{datetime.now():%Y%m%d-%H%M%S}-seed{seed}"
    # Not created here: the first checkpoint creates it, so a run that fails before it (no data set,
    # a bad option) leaves no empty folder behind.
    return run_dir


# --- resumable state ---------------------------------------------------------------------------


def _resume_tensors(model: nn.Module, ema: ModelEmaV3 | None, optimizer: torch.optim.Optimizer, device: torch.device):
    """Everything needed to continue a run, flattened into safetensors: tensors plus JSON metadata."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.module.state_dict().items()})
    state = optimizer.state_dict()
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors["rng.cpu"] = torch.get_rng_state()
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    return tensors, {"optimizer_param_groups": state["param_groups"]}


def run_recipe(resume: str | os.PathLike[str]) -> Recipe:
    """The recipe a resumable run was started (or last extended) with, from its last.safetensors."""
    path = Path(resume)
    _, meta = read_checkpoint(path / "last.safetensors" if path.is_dir() else path)
    if meta.get("kind") != "resume":
        raise ZooError(f"{path} is not a resumable run (expected a run folder or its last.safetensors)")
    known = {f.name for f in dataclasses.fields(Recipe)}
    return Recipe(**{k: v for k, v in json.loads(meta["recipe"]).items() if k in known})


def _read_resume_state(resume: str | os.PathLike[str], name: str) -> dict[str, object]:
    path = Path(resume)
    if path.is_dir():
        path = path / "last.safetensors"
    tensors, meta = read_checkpoint(path)
    if meta.get("kind") != "resume":
        raise ZooError(f"{path} is not a resumable checkpoint (expected a run's last.safetensors)")
    if meta.get("model") != name:
        raise ZooError(f"{path} is a run of {meta.get('model')!r}, not {name!r}")
    return {"run_dir": str(path.parent), "tensors": tensors, "meta": meta}


def _restore(state: dict, model: nn.Module, ema: ModelEmaV3 | None, optimizer, device: torch.device):
    tensors, meta = state["tensors"], state["meta"]
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema_weights = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
        ema.module.load_state_dict(ema_weights or model.state_dict())
    optimizer_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optimizer_state.setdefault(int(index), {})[name] = value.to(device) if name != "step" else value
    optimizer.load_state_dict({"state": optimizer_state, "param_groups": json.loads(meta["optimizer_param_groups"])})
    torch.set_rng_state(tensors["rng.cpu"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    elapsed = json.loads(meta.get("elapsed_seconds", "0"))  # absent in runs from before it was recorded
    lr_restart = json.loads(meta["lr_restart"]) if "lr_restart" in meta else None
    return int(meta["epoch"]), int(meta["step"]), json.loads(meta["best"]), float(elapsed), lr_restart
