"""One training loop for every model in the zoo, in the style of airbench: the whole data set sits on the
training device as uint8, batches are index slices, augmentation runs on whole batches with tensor ops.

A run folder holds config.json (the resolved run), metrics.jsonl (one line per epoch), best.safetensors
(best validation accuracy), last.safetensors (resumable state, written at every epoch end) and
report.json (final test accuracy, time, speed).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3
from torch import nn

from zoo.checkpoint import (
    atomic_write,
    git_commit,
    library_versions,
    read_checkpoint,
    save_checkpoint,
)
from zoo.data import load_dataset, train_val_split
from zoo.errors import ZooError
from zoo.preprocess import normalize, predict_logits
from zoo.recipe import Recipe
from zoo.registry import ModelSpec

from .augment import random_crop, random_flip
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
    test_accuracy: float  # of the kept weights, fraction, measured once
    epochs: int  # epochs trained in total
    train_seconds: float  # wall time spent in training epochs (this process)
    images_per_second: float  # training throughput
    params: int  # trainable parameters
    device: str  # where it trained

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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
) -> TrainResult:
    """Train `spec`'s model with `recipe`; return where the run went and how well it did."""
    recipe.validate()
    device = resolve_device(device)
    resume_state = _read_resume_state(resume, spec.name) if resume else None
    run_dir = Path(resume_state["run_dir"]) if resume_state else _new_run_dir(spec.name, recipe.seed, out)

    torch.manual_seed(recipe.seed)
    data = load_dataset(spec.dataset, data_dir)
    train, val = train_val_split(data.train, recipe.val_size, recipe.split_seed)
    if limit_train:
        train = train.subset(torch.arange(min(limit_train, len(train))))
    train_images, train_labels = train.images.to(device), train.labels.to(device)

    model = spec.builder(dropout=recipe.dropout).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    optimizer = create_optimizer_v2(
        model, opt=recipe.optimizer, lr=recipe.lr, weight_decay=recipe.weight_decay, momentum=recipe.momentum
    )
    steps_per_epoch = math.ceil(len(train_labels) / recipe.batch_size)
    total_steps = recipe.epochs * steps_per_epoch
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=total_steps,
        lr_min=recipe.lr * recipe.min_lr_ratio,
        warmup_t=int(recipe.warmup_epochs * steps_per_epoch),
        warmup_lr_init=recipe.lr * 0.01,
        t_in_epochs=False,
    )
    ema = ModelEmaV3(model, decay=recipe.ema_decay, use_warmup=True) if recipe.ema_decay else None
    forward = torch.compile(model) if recipe.compile else model

    start_epoch, step, best = 0, 0, {"val_accuracy": -1.0, "epoch": 0}
    if resume_state:
        start_epoch, step, best = _restore(resume_state, model, ema, optimizer, device)
    scheduler.step_update(step)

    config = {
        "model": spec.name,
        "recipe": recipe.to_dict(),
        "device": str(device),
        "data": data.source,
        "train_images": len(train_labels),
        "val_images": len(val),
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "versions": library_versions(),
        "git_commit": git_commit(),
    }
    atomic_write(run_dir / "config.json", lambda tmp: tmp.write_text(json.dumps(config, indent=2) + "\n"))
    checkpoint_meta = {"model": spec.name, "dataset": spec.dataset, "recipe": recipe.to_dict(),
                       "versions": config["versions"], "git_commit": config["git_commit"]}  # fmt: skip

    def save_last(epoch: int) -> None:
        tensors, meta = _resume_tensors(model, ema, optimizer, device)
        meta.update(checkpoint_meta, epoch=epoch, step=step, best=best, kind="resume")
        save_checkpoint(run_dir / "last.safetensors", tensors, meta)

    if not resume_state:
        save_last(0)  # so that even an interrupt in the first epoch leaves a resumable run

    train_seconds = 0.0
    images_seen = 0
    bar = TrainingProgress(total_steps, step, enabled=progress)
    bar.message(f"training {spec.name} on {device} ({len(train_labels):,} images, {recipe.epochs} epochs) -> {run_dir}")
    with bar:
        try:
            for epoch in range(start_epoch + 1, recipe.epochs + 1):
                model.train()
                started = time.perf_counter()
                order = torch.randperm(len(train_labels), device=device)
                loss_sum = torch.zeros((), device=device)
                correct = torch.zeros((), device=device)
                for batch_start in range(0, len(order), recipe.batch_size):
                    indices = order[batch_start : batch_start + recipe.batch_size]
                    images = _augment(train_images[indices], recipe, spec)
                    labels = train_labels[indices]
                    if device.type == "cuda":
                        images = images.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                        logits = forward(images)
                        loss = F.cross_entropy(logits.float(), labels, label_smoothing=recipe.label_smoothing)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    step += 1
                    scheduler.step_update(step)
                    if ema is not None:
                        ema.update(model, step=step)
                    loss_sum += loss.detach() * len(labels)
                    correct += (logits.argmax(1) == labels).sum()
                    if bar.live:
                        rate = (batch_start + len(labels)) / (time.perf_counter() - started)
                        bar.step(
                            epoch, recipe.epochs, loss.item(), (logits.argmax(1) == labels).float().mean().item(), rate
                        )
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - started
                train_seconds += seconds
                images_seen += len(order)

                evaluated = ema.module if ema is not None else model
                val_accuracy, val_loss = (
                    _accuracy(evaluated, val, spec, device) if len(val) else (float("nan"), float("nan"))
                )
                record = {
                    "epoch": epoch,
                    "epochs": recipe.epochs,
                    "train_loss": loss_sum.item() / len(order),
                    "train_accuracy": correct.item() / len(order),
                    "val_loss": val_loss,
                    "val_accuracy": val_accuracy,
                    "lr": optimizer.param_groups[0]["lr"],
                    "seconds": seconds,
                    "images_per_second": len(order) / seconds,
                }
                with open(run_dir / "metrics.jsonl", "a") as log:
                    log.write(json.dumps(record) + "\n")
                bar.epoch_done(record)
                # Without a validation split the last epoch is kept.
                if not len(val) or val_accuracy > best["val_accuracy"]:
                    best = {"val_accuracy": val_accuracy, "epoch": epoch}
                    meta = dict(checkpoint_meta, epoch=epoch, val_accuracy=val_accuracy)
                    save_checkpoint(run_dir / "best.safetensors", evaluated.state_dict(), meta)
                save_last(epoch)
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"interrupted; the last finished epoch is saved: resume with `zoo train {spec.name} --resume {run_dir}`"
            ) from None

    # The test set is touched once, with the weights that validation chose.
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
    )
    atomic_write(run_dir / "report.json", lambda tmp: tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n"))
    return result


def _augment(images: torch.Tensor, recipe: Recipe, spec: ModelSpec) -> torch.Tensor:
    images = random_crop(images, recipe.crop_padding)
    if recipe.hflip:
        images = random_flip(images)
    images = normalize(images, spec.preprocessing)
    if recipe.erasing:
        images = _random_erasing(recipe.erasing, images.device)(images)
    return images


def _random_erasing(probability: float, device: torch.device):
    from timm.data.random_erasing import RandomErasing

    return RandomErasing(probability=probability, mode="const", device=str(device))


def _accuracy(model: nn.Module, split, spec: ModelSpec, device: torch.device) -> tuple[float, float]:
    logits = predict_logits(model, split.images, spec.preprocessing, tta_flip=spec.tta_flip, device=device)
    accuracy = (logits.argmax(1) == split.labels).float().mean().item()
    return accuracy, F.cross_entropy(logits, split.labels).item()


def _new_run_dir(name: str, seed: int, out: str | os.PathLike[str] | None) -> Path:
    if out is not None:
        run_dir = Path(out)
        if (run_dir / "last.safetensors").exists():
            raise ZooError(f"{run_dir} already holds a run; resume it with --resume or choose another --out")
    else:
        run_dir = Path("runs") / name / f"{datetime.now():%Y%m%d-%H%M%S}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
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
    return int(meta["epoch"]), int(meta["step"]), json.loads(meta["best"])
