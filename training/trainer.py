"""One training loop for every model in the zoo, in the style of airbench: the whole data set sits on the
training device as uint8, batches are index slices, augmentation runs on whole batches with tensor ops.

    Trainer(...).fit():  setup -> (resume) -> [train one epoch -> validate -> save] x epochs -> finish

The run folder (zoo.core.rundir.RunDir) holds what it writes; the test set is touched once, at the end,
with the weights that validation chose. Under torchrun the same loop runs data-parallel
(DistributedDataParallel): the ranks differ only in setup (training/distributed.py) and in who writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from zoo.core import numbers
from zoo.core.data import Split, load_dataset, train_val_split
from zoo.core.device import cpu_has_native_bf16, describe_hardware
from zoo.core.errors import ZooError
from zoo.core.loading import Classifier
from zoo.core.numbers import fraction
from zoo.core.preprocess import normalize, predict_logits
from zoo.core.provenance import git_commit, library_versions
from zoo.core.recipe import Recipe
from zoo.core.rundir import RunDir
from zoo.core.spec import ModelSpec
from zoo.core.summary import count_params

from . import airbench, distributed
from .augment import crop_at, random_flip, random_offsets
from .distill import Teacher
from .progress import TrainingProgress

EpochHook = Callable[[dict[str, object]], None]


class TrainingInterrupted(ZooError):
    exit_code = 130


@dataclass(frozen=True)
class TrainResult:
    model: str  # registry name
    run_dir: str  # folder with config, metrics, checkpoints and report
    best_checkpoint: str  # path of best.safetensors
    best_epoch: int  # epoch whose weights were kept
    val_accuracy: float | None  # of the kept weights, fraction (None: no validation split, the last epoch kept)
    test_accuracy: float | None  # of the kept weights, fraction, measured once (None: not measured)
    epochs: int  # epochs trained in total
    train_seconds: float  # wall time spent in training epochs, by every process that trained this run
    images_per_second: float  # training throughput since this start (all ranks together)
    params: int  # parameters, frozen ones included
    device: str  # where it trained (rank 0's device under torchrun)
    time_to_best_seconds: float | None = None  # training seconds to the kept epoch, resumed runs included
    world_size: int = 1  # data-parallel processes (torchrun --nproc_per_node)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Progress:
    """Where a run stands; saved in last.safetensors with the tensors, restored on resume."""

    epoch: int = 0  # last finished epoch
    step: int = 0  # optimizer steps taken
    best: dict[str, float] = field(default_factory=lambda: {"val_accuracy": -1.0, "epoch": 0})
    elapsed: float = 0.0  # training seconds over all processes that trained this run
    lr_restart: dict[str, float] | None = None  # where an extended run's new cosine began


@dataclass
class Options:
    """How to train, beyond the recipe: nothing here changes what is learned."""

    data_dir: object = None  # folder with the data set (else $ZOO_DATA, the cache, ...)
    limit_train: int | None = None  # train on the first N (shuffled) training images
    progress: bool = True  # live display on a terminal, log lines otherwise
    on_epoch: EpochHook | None = None  # called with each saved epoch's record (a tuner reports it)
    measure_test: bool = True  # False: never touch the test set (a hyper-parameter search)
    arch: dict[str, object] = field(default_factory=dict)  # architecture arguments beyond the registered ones


class Trainer:
    def __init__(
        self,
        spec: ModelSpec,
        recipe: Recipe,
        run: RunDir,
        *,
        resume: bool,
        device: torch.device,
        dist: distributed.Distributed,
        options: Options,
    ) -> None:
        self.spec, self.recipe, self.run, self.resuming = spec, recipe, run, resume
        self.device, self.dist, self.options = device, dist, options
        self.progress = Progress()
        self.train_seconds, self.images_seen = 0.0, 0

    def fit(self) -> TrainResult:
        self.setup()
        with self.run.lock() if self.dist.is_main else contextlib.nullcontext():
            self.start()
            bar = self._progress_bar()
            with bar, self._interruptible():
                for epoch in range(self.progress.epoch + 1, self.recipe.epochs + 1):
                    record = self.train_epoch(epoch, bar)
                    record.update(self.validate())
                    self.save(record)
                    bar.epoch_done(record)
            return self.finish()

    # --- setup -----------------------------------------------------------------------------------------

    def setup(self) -> None:
        """Data on the device, the network, optimizer, schedule, EMA and teacher; a resumed run's state."""
        world = self.dist.world_size
        if self.recipe.batch_size % world:
            raise ZooError(
                f"batch_size {self.recipe.batch_size} is the global batch and must divide evenly over {world} "
                "processes",
                argument="batch_size",
            )
        resume_state = self.run.read_last(self.spec.name) if self.resuming else None
        # Training steps run in bf16 on a GPU, and on a CPU with native bf16 when the recipe asks; accuracy is
        # always measured in fp32 (zoo.core.preprocess.predict_logits).
        self.autocast = self.device.type == "cuda" or (self.recipe.cpu_bf16 and cpu_has_native_bf16())
        if self.autocast and self.device.type == "cpu":
            # bf16 backward convolutions meet enough denormal floats to run several times slower (cifar_cnn_best:
            # 8x); flushed to zero, they cost nothing. Set before the first parallel operation, since the
            # OpenMP threads inherit it when they start; the process keeps it. fp32 inference is unaffected
            # bit for bit (checked on cifar_cnn_best's test logits), so measured accuracies do not move.
            torch.set_flush_denormal(True)
        torch.manual_seed(self.recipe.seed)  # the same initial weights on every rank
        self.train, self.val, self.test, self.data_source = self._load_data()
        self.images, self.labels = self.train.images.to(self.device), self.train.labels.to(self.device)
        # Every rank holds the whole (uint8) training set and takes its share of each global batch; an epoch
        # drops the few images beyond a multiple of the world size so that all ranks take equal steps.
        self.epoch_images = len(self.labels) - len(self.labels) % world
        if self.epoch_images == 0:
            raise ZooError(f"{len(self.labels)} training images cannot be shared by {world} processes")
        recipe = self.recipe
        # The teacher is built before the student: both draw their initial weights from the seeded global RNG.
        self.teacher = (
            Teacher.load(recipe, self.spec, self.train.images, self.device, bf16=self.autocast)
            if recipe.teacher and recipe.distill_weight
            else None
        )
        # Channels-last lets oneDNN (CPU) and cuDNN (GPU) pick their fastest convolution kernels: on a 2-core
        # CPU it trains the Fashion-MNIST CNNs about 1.5-2x faster than the default layout.
        self.model = self.spec.build(dropout=recipe.dropout, **self.options.arch).to(self.device)
        self._initialise(self.model)
        self.model = self.model.to(memory_format=torch.channels_last)
        parameters = (
            self.model
            if recipe.bias_lr_scale == 1
            else airbench.parameter_groups(self.model, recipe.lr, recipe.weight_decay, recipe.bias_lr_scale)
        )
        self.optimizer = create_optimizer_v2(
            parameters, opt=recipe.optimizer, lr=recipe.lr, weight_decay=recipe.weight_decay, momentum=recipe.momentum
        )
        self.steps_per_epoch = math.ceil(self.epoch_images / recipe.batch_size)
        self.ema = ModelEmaV3(self.model, decay=recipe.ema_decay, use_warmup=True) if recipe.ema_decay else None
        total_steps = recipe.epochs * self.steps_per_epoch
        self.lookahead = airbench.Lookahead(self.model, total_steps) if recipe.lookahead else None
        self.preflip = (
            airbench.alternating_flips(len(self.labels), distributed.derived_seed(recipe.seed, "flip"), self.device)
            if recipe.alternating_flip
            else None
        )
        if resume_state is not None:
            self.resume(*resume_state)
        self.scheduler, self.schedule_offset = self._scheduler()
        self.scheduler.step_update(self.progress.step - self.schedule_offset)
        # `model` stays the plain module: checkpoints, EMA and evaluation use it, so saved names carry no
        # "module." prefix. `forward` is what the training steps call.
        self.forward: nn.Module = self.model
        if self.dist.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = DistributedDataParallel(self.model, device_ids=device_ids)
        if recipe.compile:
            self.forward = torch.compile(self.forward)

    def _initialise(self, network: nn.Module) -> None:
        """The recipe's data-dependent and identity initialisations, and which parameters stay fixed."""
        recipe = self.recipe
        if recipe.dirac_init:
            airbench.dirac_init(network)
        if recipe.whiten_stem:
            sample = self.train.images[: airbench.WHITENING_PATCHES_FROM].to(self.device)
            airbench.whiten_stem(network, normalize(sample, self.spec.preprocessing))
        if recipe.freeze_bn_scale:
            airbench.freeze_bn_scale(network)
        if self.dist.enabled and recipe.whiten_stem and recipe.whiten_bias_epochs < recipe.epochs:
            # DistributedDataParallel fixes the set of trained parameters when it wraps the model.
            raise ZooError("whiten_bias_epochs must cover the whole run under torchrun", argument="whiten_bias_epochs")

    def _load_data(self) -> tuple[Split, Split, Split, str]:
        if not self.dist.is_main:
            self.dist.barrier()  # rank 0 decodes and caches the data set first, the others then read the cache
        data = load_dataset(self.spec.dataset, self.options.data_dir)
        if self.dist.is_main:
            self.dist.barrier()
        train, val = train_val_split(data.train, self.recipe.val_size, self.recipe.split_seed, self.options.limit_train)
        return train, val, data.test, data.source

    def resume(self, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        """Weights, EMA, optimizer, RNG and progress as the last finished epoch left them."""
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        if self.ema is not None:
            ema_weights = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
            self.ema.module.load_state_dict(ema_weights or self.model.state_dict())
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value.to(self.device) if name != "step" else value
        self.optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["optimizer_param_groups"])})
        if self.lookahead is not None:
            self.lookahead.restore(tensors)
        torch.set_rng_state(tensors["rng.cpu"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.progress = Progress(
            epoch=int(meta["epoch"]),
            step=int(meta["step"]),
            best=json.loads(meta["best"]),
            elapsed=float(json.loads(meta.get("elapsed_seconds", "0"))),  # absent in runs from before it was kept
            lr_restart=json.loads(meta["lr_restart"]) if "lr_restart" in meta else None,
        )
        if json.loads(meta["recipe"])["epochs"] != self.recipe.epochs:
            # An extended run: the learning rate goes on from where it stood, down a new cosine to the end.
            self.progress.lr_restart = {"step": self.progress.step, "lr": self.optimizer.param_groups[0]["lr"]}

    def _scheduler(self) -> tuple[CosineLRScheduler, int]:
        """timm's warm-up + cosine over the whole run, or, for an extended run, a cosine from the learning rate
        at the extension down to the end: continuous either way. Returns it and its step offset."""
        recipe, restart = self.recipe, self.progress.lr_restart
        total_steps = recipe.epochs * self.steps_per_epoch
        lr_min = recipe.lr * recipe.min_lr_ratio
        if restart is None and recipe.lr_schedule == "triangular":
            warmup = int(recipe.warmup_epochs * self.steps_per_epoch)
            return airbench.TriangularLR(self.optimizer, total_steps, warmup, recipe.min_lr_ratio), 0
        if restart is None:
            scheduler = CosineLRScheduler(
                self.optimizer, t_initial=total_steps, lr_min=lr_min, warmup_lr_init=recipe.lr * 0.01,
                warmup_t=int(recipe.warmup_epochs * self.steps_per_epoch), t_in_epochs=False,
            )  # fmt: skip
            return scheduler, 0
        for group in self.optimizer.param_groups:
            group["initial_lr"] = group["lr"] = restart["lr"]
        remaining = max(1, total_steps - restart["step"])
        scheduler = CosineLRScheduler(
            self.optimizer, t_initial=remaining, lr_min=min(lr_min, restart["lr"]), warmup_t=0, t_in_epochs=False
        )
        return scheduler, int(restart["step"])

    # --- the run folder ------------------------------------------------------------------------------

    def start(self) -> None:
        """Write the run's config and, for a new run, a first resumable checkpoint (rank 0 only): even an
        interrupt in the first epoch leaves a run that `--resume` continues."""
        if not self.dist.is_main:
            return
        self.run.write_config(self._config())
        if not self.resuming:
            self._save_last()

    def _config(self) -> dict[str, object]:
        config = {
            "model": self.spec.name,
            "recipe": self.recipe.to_dict(),
            "device": str(self.device),
            "data": self.data_source,
            "train_images": len(self.labels),
            "val_images": len(self.val),
            "params": count_params(self.model),
            "versions": library_versions("torch", "timm", "safetensors"),
            "git_commit": git_commit(),
            "hardware": describe_hardware(self.device),
            "training_precision": "bf16 autocast" if self.autocast else "fp32",
            "validation_precision": "bf16 autocast" if self.autocast else "fp32",
        }
        if self.spec.tta_shift:
            config["validation_views"] = "image and mirror (the shifted views only for the test set)"
        if self.options.arch:
            config["arch"] = self.options.arch
        if self.teacher is not None:
            config["teacher_weights_sha256"] = self.teacher.weights_sha256
        if self.dist.enabled:
            config["distributed"] = {
                "world_size": self.dist.world_size,
                "backend": self.dist.backend,
                "global_batch_size": self.recipe.batch_size,
                "batch_size_per_rank": self.recipe.batch_size // self.dist.world_size,
            }
        self.checkpoint_meta = {
            "model": self.spec.name, "dataset": self.spec.dataset, "recipe": self.recipe.to_dict(),
            "versions": config["versions"], "git_commit": config["git_commit"],
            # The whole architecture, so the checkpoint rebuilds whatever the registry later changes.
            "arch": {**self.spec.arch, **self.options.arch},
        }  # fmt: skip
        return config

    def _save_last(self) -> None:
        """Everything needed to continue the run, flattened into safetensors: tensors plus JSON metadata."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.module.state_dict().items()})
        if self.lookahead is not None:
            tensors.update(self.lookahead.tensors())
        state = self.optimizer.state_dict()
        for index, values in state["state"].items():
            for key, value in values.items():
                tensors[f"optimizer.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        p = self.progress
        meta = dict(self.checkpoint_meta, optimizer_param_groups=state["param_groups"], epoch=p.epoch, step=p.step,
                    best=p.best, elapsed_seconds=p.elapsed, kind="resume")  # fmt: skip
        if p.lr_restart:
            meta["lr_restart"] = p.lr_restart
        self.run.save_last(tensors, meta)

    # --- one epoch -----------------------------------------------------------------------------------

    def train_epoch(self, epoch: int, bar: TrainingProgress) -> dict[str, object]:
        """One pass over the training split; returns the epoch's training record."""
        self.model.train()
        self.epoch = epoch
        if self.recipe.whiten_stem:  # the whitened stem's bias trains for the first epochs only
            airbench.stem_of(self.model).bias.requires_grad_(epoch <= self.recipe.whiten_bias_epochs)
        started = time.perf_counter()
        order = self._epoch_order(epoch)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        for batch_start in range(0, len(order), self.recipe.batch_size):
            global_batch = order[batch_start : batch_start + self.recipe.batch_size]
            indices = global_batch[self.dist.rank :: self.dist.world_size] if self.dist.enabled else global_batch
            loss, logits, labels = self._step(indices)
            loss_sum += loss.detach() * len(labels)
            correct += (logits.argmax(1) == labels).sum()
            # Reading loss and accuracy syncs with the device, so the live display does it a few times a second.
            if bar.step_due():
                rate = (batch_start + len(global_batch)) / (time.perf_counter() - started)
                accuracy = (logits.argmax(1) == labels).float().mean().item()
                bar.show(epoch, self.recipe.epochs, loss.item(), accuracy, rate)
        if self.dist.enabled:  # the epoch's loss and hits summed over the ranks' shards
            totals = self.dist.all_reduce_sum(torch.stack([loss_sum, correct.to(loss_sum.dtype)]))
            loss_sum, correct = totals[0], totals[1]
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        self.train_seconds += seconds
        self.progress.elapsed += seconds
        self.images_seen += len(order)
        record = {
            "epoch": epoch,
            "epochs": self.recipe.epochs,
            "train_loss": fraction(loss_sum.item() / len(order)),
            "train_accuracy": fraction(correct.item() / len(order)),
        }
        return record | {"seconds": numbers.seconds(seconds), "images_per_second": numbers.rate(len(order) / seconds)}

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        if not self.dist.enabled:
            return torch.randperm(len(self.labels), device=self.device)
        # The same shuffle on every rank, a different augmentation stream per rank; both derived from
        # (seed, epoch), so a resumed run repeats them exactly.
        seed = self.recipe.seed
        shuffle = torch.Generator().manual_seed(distributed.derived_seed(seed, "shuffle", epoch))
        order = torch.randperm(len(self.labels), generator=shuffle).to(self.device)[: self.epoch_images]
        torch.manual_seed(distributed.derived_seed(seed, "augment", epoch, self.dist.rank))
        return order

    def _step(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimizer step on the images at `indices`: augment, forward, loss, backward, update."""
        recipe, device = self.recipe, self.device
        flip = self._flips(indices)
        offsets = random_offsets(len(indices), recipe.crop_padding, device) if recipe.crop_padding else None
        images = self._augment(self.images[indices], flip, offsets).contiguous(memory_format=torch.channels_last)
        labels = self.labels[indices]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.forward(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=recipe.label_smoothing)
            if self.teacher is not None:
                loss = self.teacher.blend(loss, logits.float(), indices, flip, offsets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP: the mean over equal shards, i.e. the global batch's
        self.optimizer.step()
        self.progress.step += 1
        self.scheduler.step_update(self.progress.step - self.schedule_offset)
        if self.ema is not None:
            self.ema.update(self.model, step=self.progress.step)
        if self.lookahead is not None:
            self.lookahead.update(self.model, self.progress.step)
        return loss, logits, labels

    def _flips(self, indices: torch.Tensor) -> torch.Tensor | None:
        """Which images of the batch are mirrored: at random, or alternating by epoch from a fixed start."""
        if not self.recipe.hflip:
            return None
        if self.preflip is not None:
            return self.preflip[indices] ^ (self.epoch % 2 == 0)
        return torch.rand(len(indices), device=self.device) < 0.5

    def _augment(self, images: torch.Tensor, flip: torch.Tensor | None, offsets: torch.Tensor | None) -> torch.Tensor:
        if offsets is not None:
            images = crop_at(images, self.recipe.crop_padding, offsets, reflect=self.recipe.crop_reflect)
        if flip is not None:
            images = random_flip(images, flip)
        images = normalize(images, self.spec.preprocessing)
        if self.recipe.erasing:
            from timm.data.random_erasing import RandomErasing

            images = RandomErasing(probability=self.recipe.erasing, mode="const", device=str(images.device))(images)
        return images

    # --- validation, saving, the end -----------------------------------------------------------------

    @property
    def evaluated(self) -> nn.Module:
        """The weights that validation measures and best.safetensors keeps: the EMA's where there is one."""
        return self.ema.module if self.ema is not None else self.model

    def validate(self) -> dict[str, object]:
        """Rank 0 validates (its weights are the ones saved) and tells the others, so every rank makes the same
        best-epoch decision. A bf16-trained run validates in bf16 too (selection only)."""
        # val_size=0 trains on every image: nothing to measure, null in the records (JSON has no NaN).
        record = {"val_loss": None, "val_accuracy": None, "lr": float(f"{self.optimizer.param_groups[0]['lr']:.6g}")}
        if len(self.val):
            accuracy, loss = float("nan"), float("nan")
            if self.dist.is_main:
                accuracy, loss = self._accuracy(self.evaluated, self.val, bf16=self.autocast, tta_shift=False)
            accuracy, loss = self.dist.broadcast((accuracy, loss))
            record |= {"val_loss": fraction(loss), "val_accuracy": fraction(accuracy)}
        return record | {"elapsed_seconds": numbers.seconds(self.progress.elapsed)}

    def _accuracy(
        self, network: nn.Module, split: Split, bf16: bool = False, tta_shift: bool | None = None
    ) -> tuple[float, float]:
        """Accuracy and loss as zoo reports them: the network wrapped as a Classifier, so its test views apply
        (validation, which only chooses an epoch, leaves out the shifted ones: a third of the cost)."""
        model = Classifier(network, self.spec, tta_shift=tta_shift)
        logits = predict_logits(model, split.images, self.spec.preprocessing, device=self.device, bf16=bf16)
        accuracy = (logits.argmax(1) == split.labels).float().mean().item()
        return accuracy, F.cross_entropy(logits, split.labels).item()

    def save(self, record: dict[str, object]) -> None:
        """The epoch's record, the best weights if they improved (the last epoch without a validation split),
        and the resumable state."""
        record = _ordered(record, self.dist.world_size if self.dist.enabled else None)
        p = self.progress
        p.epoch = int(record["epoch"])
        improved = not len(self.val) or record["val_accuracy"] > p.best["val_accuracy"]
        if improved:
            p.best = {"val_accuracy": record["val_accuracy"], "epoch": p.epoch, "elapsed_seconds": p.elapsed}
        if not self.dist.is_main:
            return
        self.run.append_metrics(record)
        if improved:
            meta = dict(
                self.checkpoint_meta, epoch=p.epoch, val_accuracy=record["val_accuracy"], elapsed_seconds=p.elapsed
            )
            self.run.save_best(self.evaluated.state_dict(), meta)
        self._save_last()
        if self.options.on_epoch is not None:
            self.options.on_epoch(record)

    def finish(self) -> TrainResult:
        """Measure the test set once with the kept weights (rank 0), write the report, return the result."""
        test_accuracy: float | None = float("nan") if self.options.measure_test else None
        if self.dist.is_main and self.options.measure_test:
            tensors, meta = self.run.read_best()
            self.model.load_state_dict(tensors)
            test_accuracy, _ = self._accuracy(self.model, self.test)
            test_accuracy = fraction(test_accuracy)
            meta = {k: v for k, v in meta.items() if k != "format"}
            meta["test_accuracy"] = json.dumps(test_accuracy)
            self.run.save_best(tensors, meta)
        best = self.progress.best
        result = TrainResult(
            model=self.spec.name, run_dir=str(self.run.path), best_checkpoint=str(self.run.best_checkpoint),
            best_epoch=int(best["epoch"]), val_accuracy=best["val_accuracy"], test_accuracy=test_accuracy,
            epochs=self.recipe.epochs, train_seconds=numbers.seconds(self.progress.elapsed),
            images_per_second=numbers.rate(self.images_seen / self.train_seconds if self.train_seconds else 0.0),
            params=count_params(self.model), device=str(self.device),
            time_to_best_seconds=numbers.seconds(best.get("elapsed_seconds")),  # None: runs begun before it was kept
            world_size=self.dist.world_size,
        )  # fmt: skip
        if self.dist.is_main:
            self.run.write_report(result.to_dict())
        # Every rank returns rank 0's result, once the run folder is complete.
        return self.dist.broadcast(result)

    # --- display and interrupts ----------------------------------------------------------------------

    def _progress_bar(self) -> TrainingProgress:
        total = self.recipe.epochs * self.steps_per_epoch
        bar = TrainingProgress(total, self.progress.step, enabled=self.options.progress and self.dist.is_main)
        where = (
            f"{self.dist.world_size} × {self.device.type} ({self.dist.backend})"
            if self.dist.enabled
            else str(self.device)
        )
        bar.message(
            f"training {self.spec.name} on {where} ({len(self.labels):,} images, {self.recipe.epochs} epochs) "
            f"-> {self.run.path}"
        )
        return bar

    @contextlib.contextmanager
    def _interruptible(self) -> Iterator[None]:
        try:
            yield
        except KeyboardInterrupt as interrupt:
            raise TrainingInterrupted(
                f"interrupted; the last finished epoch is saved in {self.run.path}, from which the run can be resumed"
            ) from interrupt


def _ordered(record: dict[str, object], world_size: int | None) -> dict[str, object]:
    """An epoch record with its keys in the order the run's metrics have always had."""
    keys = ("epoch", "epochs", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds",
            "elapsed_seconds", "images_per_second")  # fmt: skip
    ordered = {key: record[key] for key in keys}
    if world_size is not None:
        ordered["world_size"] = world_size
    return ordered
