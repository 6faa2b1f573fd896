"""`RunDir`: one training run's folder, and the only code that reads or writes its files.

    config.json      the resolved run: model, recipe, data, device, versions, commit, hardware
    metrics.jsonl    one JSON line per finished epoch
    best.safetensors the weights of the best validation epoch (the test set is measured with them)
    last.safetensors everything needed to resume: weights, EMA, optimizer, RNG, progress (every epoch end)
    report.json      the finished run: test accuracy, time, images/s, parameters

Applications keep their own records of a run beside these (a sweep's trial.json, an experiment's
train_accuracy.json) through `record` and `write_record`. The engine trains a folder only while holding
its lock, so two processes never train one run. Every file is written atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path

import torch

from zoo.core.checkpoint import read_checkpoint, save_checkpoint
from zoo.core.errors import ZooError
from zoo.core.files import atomic_write
from zoo.core.recipe import Recipe

RECORDS = ("config.json", "metrics.jsonl", "report.json")  # what a run's committed records are


class RunDir:
    CONFIG, METRICS, REPORT = RECORDS
    BEST, LAST = "best.safetensors", "last.safetensors"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # --- finding and choosing ---------------------------------------------------------------------

    @classmethod
    def new(cls, model: str, seed: int, out: str | os.PathLike[str] | None = None) -> RunDir:
        """The folder of a new run: `out`, or runs/MODEL/TIME-seedN. Not created here: the first checkpoint
        creates it, so a run that fails before it (no data set, a bad option) leaves no folder behind."""
        if out is None:
            return cls(Path("runs") / model / f"{datetime.now():%Y%m%d-%H%M%S}-seed{seed}")
        run = cls(out)
        if run.started:
            raise ZooError(f"{run.path} already holds a run; resume it or choose another folder", argument="out")
        return run

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> RunDir:
        """The run a folder or its last.safetensors belongs to."""
        path = Path(path)
        return cls(path.parent if path.name == cls.LAST else path)

    @property
    def started(self) -> bool:
        """It holds a resumable state (training began; it may have finished)."""
        return (self.path / self.LAST).is_file()

    @property
    def finished(self) -> bool:
        return (self.path / self.REPORT).is_file()

    @property
    def has_config(self) -> bool:
        return (self.path / self.CONFIG).is_file()

    # --- records -------------------------------------------------------------------------------------

    def config(self) -> dict[str, object]:
        return self._read_json(self.CONFIG)

    def write_config(self, config: Mapping[str, object]) -> None:
        self._write_json(self.CONFIG, config)

    def metrics(self) -> list[dict[str, object]]:
        """Every finished epoch's record, in order; none for a run that has not finished one."""
        path = self.path / self.METRICS
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def append_metrics(self, record: Mapping[str, object]) -> None:
        with open(self.path / self.METRICS, "a") as log:
            log.write(json.dumps(record) + "\n")

    def report(self) -> dict[str, object] | None:
        return self._read_json(self.REPORT) if self.finished else None

    def write_report(self, report: Mapping[str, object]) -> None:
        self._write_json(self.REPORT, report)

    def record(self, name: str) -> dict[str, object] | None:
        """An application's own JSON record of this run (e.g. "trial.json"), or None."""
        return self._read_json(name) if (self.path / name).is_file() else None

    def write_record(self, name: str, document: Mapping[str, object]) -> None:
        self._write_json(name, document)

    def copy_records(self, target: str | os.PathLike[str], extra: tuple[str, ...] = ()) -> None:
        """Copy the run's records (no checkpoints), and the named application records, into `target`."""
        for name in (*RECORDS, *extra):
            if (self.path / name).is_file():
                Path(target).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.path / name, Path(target) / name)

    def _read_json(self, name: str) -> dict[str, object]:
        path = self.path / name
        if not path.is_file():
            raise ZooError(f"{self.path} is not a finished run folder (no {name})", argument="run_dir")
        return json.loads(path.read_text())

    def _write_json(self, name: str, document: Mapping[str, object]) -> None:
        text = json.dumps(document, indent=2) + "\n"
        atomic_write(self.path / name, lambda tmp: tmp.write_text(text))

    # --- checkpoints ---------------------------------------------------------------------------------

    @property
    def best_checkpoint(self) -> Path:
        return self.path / self.BEST

    @property
    def last_checkpoint(self) -> Path:
        return self.path / self.LAST

    def save_best(self, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, object]) -> None:
        save_checkpoint(self.best_checkpoint, tensors, meta)

    def save_last(self, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, object]) -> None:
        save_checkpoint(self.last_checkpoint, tensors, meta)

    def read_best(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        return read_checkpoint(self.best_checkpoint)

    def read_last(self, model: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """The resumable state; a file that is no run's last checkpoint, or another model's, is refused."""
        tensors, meta = read_checkpoint(self.last_checkpoint)
        if meta.get("kind") != "resume":
            raise ZooError(
                f"{self.last_checkpoint} is not a resumable checkpoint (expected a run's last.safetensors)",
                argument="resume",
            )
        if model is not None and meta.get("model") != model:
            raise ZooError(f"{self.path} is a run of {meta.get('model')!r}, not {model!r}", argument="resume")
        return tensors, meta

    def recipe(self) -> Recipe:
        """The recipe the run was started (or last extended) with."""
        _, meta = self.read_last()
        known = {f.name for f in dataclasses.fields(Recipe)}
        return Recipe(**{k: v for k, v in json.loads(meta["recipe"]).items() if k in known})

    # --- the lock ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder while training it: a second process training the same run (a sweep restored while
        its own trial still ran) would append to metrics.jsonl and overwrite checkpoints. An advisory lock on
        the folder itself, released when training ends or the process dies."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            yield
            return
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise ZooError(
                    f"{self.path} is being trained by another process; wait for it or stop it first", argument="resume"
                ) from error
            yield
        finally:
            os.close(fd)
