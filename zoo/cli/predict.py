"""`zoo predict`: classify image files, from one photo to millions, in PyTorch, ONNX Runtime, OpenVINO or on Ray."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from zoo.cli.app import DataDir, err, out
from zoo.core.errors import ZooError

STDIN = "-"  # as zoo.core.inputs.STDIN, which is imported with the command (numpy, PIL), not with `zoo --help`


def predict_command(
    images: Annotated[
        list[str] | None,
        typer.Argument(
            help="Image files, folders or globs (PNG, JPEG, BMP, WebP, GIF); - reads file names from stdin."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model (default: $ZOO_MODEL, else the best shipped Fashion-MNIST model).")
    ] = None,
    backend: Annotated[
        str,
        typer.Option(help="auto (ONNX Runtime where the validated file is at hand, else torch), torch or onnxruntime."),
    ] = "auto",
    weights: Annotated[
        Path | None, typer.Option(help="Checkpoint to use instead of the shipped weights (it names its model).")
    ] = None,
    onnx: Annotated[Path | None, typer.Option("--onnx", help="An exported .onnx to run (implies onnxruntime).")] = None,
    topk: Annotated[int, typer.Option(help="Classes shown per image.")] = 5,
    runtime: Annotated[
        str, typer.Option(help="What runs the ONNX file: onnxruntime, openvino or openvino-bf16 (\\[openvino] extra).")
    ] = "onnxruntime",
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Search folders' subfolders too.")] = False,
    files_from: Annotated[
        str | None, typer.Option("--files-from", help="A file naming one image a line (- for standard input).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON Lines on stdout: one object per input, errors included.")
    ] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV on stdout: a header, then one row per input.")
    ] = False,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write the rows to this file (CSV for .csv, else JSON Lines; or --json/--csv)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the --out file a stopped run left: no input is predicted twice or lost.")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Images per model call.")] = 256,
    workers: Annotated[
        int | None, typer.Option(help="Processes that decode images (default: one per core; 0: decode in this one).")
    ] = None,
    ray: Annotated[
        bool, typer.Option("--ray", help="Run on Ray Data: Ray started here, or the cluster at --address.")
    ] = False,
    address: Annotated[
        str | None, typer.Option(help="With --ray, a Ray cluster: HOST:6379 (the head's GCS) or ray://HOST:10001.")
    ] = None,
    data_dir: DataDir = None,
) -> int:
    """Classify images, streaming: rows come out as they are done, in the inputs' order. Exit status 1 when
    some inputs failed (their rows or lines say why), 130 when interrupted."""
    from zoo.prediction import iter_predictions, write_predictions

    images, files_from = _inputs(images or [], files_from)
    if as_json and as_csv:
        raise ZooError("--json and --csv: choose one")
    if resume and out_file is None:
        raise ZooError("--resume continues a results file: give it with --out FILE")
    if address and not ray:
        raise ZooError("--address is the Ray cluster of --ray: pass --ray too")
    options = dict(model=model, backend=backend, weights=weights, onnx=onnx, recursive=recursive, files_from=files_from,
                   batch_size=batch_size, workers=workers, ray=ray, address=address, data_dir=data_dir,
                   runtime=runtime)  # fmt: skip
    done = 0

    def advanced(count: int) -> None:
        nonlocal done
        done = count

    try:
        with progress_bar(lambda: _count(images, recursive, files_from), advanced) as progress:
            if out_file is None and not (as_json or as_csv):
                return _print_tables(iter_predictions(images, topk=topk, **options), progress)
            target = out_file if out_file is not None else _Stdout()
            fmt = "csv" if as_csv else "jsonl" if as_json else None
            summary = write_predictions(
                images, target, format=fmt, resume=resume, topk=topk, progress=progress, **options
            )
    except KeyboardInterrupt:
        hint = f"; rerun with --resume to continue {out_file}" if out_file is not None else ""
        err.print(f"interrupted after {done:,} inputs{hint}", soft_wrap=True, markup=False)
        return 130
    except BrokenPipeError:  # `zoo predict ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    err.print(summary_line(summary), soft_wrap=True, markup=False)
    return 1 if summary.failed or summary.resumed_failed else 0


def summary_line(summary) -> str:
    """One line for stderr: what was done, what failed, how fast."""
    total = summary.predicted + summary.failed + summary.resumed
    failed = summary.failed + summary.resumed_failed
    line = f"{total:,} input{'' if total == 1 else 's'}: {total - failed:,} classified, {failed:,} could not be read"
    if failed:
        line += " (their rows say why)"
    if summary.resumed:
        line += f"; {summary.resumed:,} were done before this run"
    return line + (f"; {summary.images_per_second:,.0f} images/s" if summary.predicted + summary.failed else "")


@contextlib.contextmanager
def progress_bar(count: Callable[[], int | None], also: Callable[[int], None]) -> Iterator[Callable[[int], None]]:
    """A callback for the number of inputs done, showing a Rich progress bar with rate and time left on
    stderr where that is a terminal (none in a pipe or a file). The bar, and a thread that counts the inputs
    for its total, start with the first batch done: by then the decoding processes have started, which fork
    quickest from a process without threads, and nothing waits for the count."""
    if not err.is_terminal:
        yield also
        return
    bar = Progress(
        TextColumn("predicting"), BarColumn(bar_width=24), MofNCompleteColumn(), _Rate(), TimeRemainingColumn(),
        console=err, transient=True,
    )  # fmt: skip
    task = bar.add_task("predicting", total=None)

    def update(done: int) -> None:
        also(done)
        if not bar.live.is_started:
            bar.reset(task, completed=done)  # the rate counts from here: a resumed run's rows are not this run's
            bar.start()
            threading.Thread(target=lambda: bar.update(task, total=count()), daemon=True).start()
        bar.update(task, completed=done)

    try:
        yield update
    finally:
        bar.stop()


class _Rate(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:,.0f} images/s" if task.speed else "", style="progress.data.speed")


class _Stdout:
    """Standard output as it is at each write: under a progress bar, Rich puts its own stream there, which
    prints the rows above the bar."""

    def write(self, text: str) -> None:
        sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _inputs(images: list[str], files_from: str | None) -> tuple[list[str], str | None]:
    """`-` among the images reads file names from standard input, as --files-from -."""
    if STDIN in images:
        if files_from is not None:
            raise ZooError("give - or --files-from, not both")
        images, files_from = [i for i in images if i != STDIN], STDIN
    if not images and files_from is None:
        raise ZooError("give image files, folders or globs, or a list of files with --files-from FILE (- for stdin)")
    return images, files_from


def _count(images: list[str], recursive: bool, files_from: str | None) -> int | None:
    """How many inputs there are, or None where they cannot be read twice (standard input)."""
    from zoo.core.inputs import iter_inputs, list_file_lines

    if files_from == STDIN:
        return None
    found = sum(1 for _ in iter_inputs(images, recursive=recursive))
    return found + (sum(1 for _ in list_file_lines(files_from)) if files_from else 0)


def _print_tables(predictions, progress: Callable[[int], None]) -> int:
    """Each prediction as a small table, each failure as an `error:` line on stderr, as they come."""
    failed = seen = 0
    for seen, result in enumerate(predictions, 1):
        if result.error is not None:
            failed += 1
            err.print(f"error: {result.file}: {result.error}", soft_wrap=True, markup=False)
        else:
            # The file on its own line: a table title would wrap long paths to the table's width.
            out.print(f"[bold]{escape(result.file)}[/] ({result.model}, {result.backend})", soft_wrap=True)
            table = Table()
            table.add_column("class")
            table.add_column("probability", justify="right")
            for entry in result.top:
                table.add_row(entry["class"], f"{entry['probability']:.2%}")
            out.print(table)
        progress(seen)
    return 1 if failed else 0
