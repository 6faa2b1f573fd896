"""Training progress: a live Rich display on a terminal, plain log lines otherwise (CI, pipes, files)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainingProgress:
    def __init__(self, total_steps: int, start_step: int = 0, enabled: bool = True) -> None:
        self.console = Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self.started = time.perf_counter()
        self._progress = None
        self._pending = 0  # steps taken since the display was last refreshed
        self._last_refresh = 0.0
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._task = self._progress.add_task("training", total=total_steps, completed=start_step, stats="")

    def __enter__(self) -> TrainingProgress:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._progress:
            self._progress.stop()

    def step_due(self) -> bool:
        """Count one step; True when the live display should be refreshed (at most every 0.2 s)."""
        if not self._progress:
            return False
        self._pending += 1
        now = time.perf_counter()
        if now - self._last_refresh < 0.2:
            return False
        self._last_refresh = now
        return True

    def show(self, epoch: int, epochs: int, loss: float, accuracy: float, images_per_second: float) -> None:
        stats = f"loss {loss:.3f}  acc {accuracy:.1%}  {images_per_second:,.0f} img/s"
        self._progress.update(self._task, advance=self._pending, description=f"epoch {epoch}/{epochs}", stats=stats)
        self._pending = 0

    def epoch_done(self, record: dict[str, float]) -> None:
        if not self.enabled:
            return
        line = (
            f"epoch {record['epoch']}/{record['epochs']}  loss {record['train_loss']:.4f}  "
            f"train {record['train_accuracy']:.2%}  val {_percent(record['val_accuracy'])}  "
            f"lr {record['lr']:.4g}  {record['images_per_second']:,.0f} img/s  {record['seconds']:.1f}s"
        )
        if self._progress:
            self._progress.update(self._task, advance=self._pending)
            self._pending = 0
            self._progress.console.print(line, highlight=False)
        else:
            self.console.print(line, highlight=False, soft_wrap=True)

    def message(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False, soft_wrap=True)


def _percent(value: float | None) -> str:
    """A validation accuracy, or a dash where the run has no validation split."""
    return "—" if value is None else f"{value:.2%}"
