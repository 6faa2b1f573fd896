"""The rows `zoo predict` writes, as JSON Lines or CSV, appended batch by batch and read back to resume a run.

A row is what `Prediction.to_dict()` gives: {"file", "model", "backend", "top": [{"class", "probability"}, ...]}
or {"file", "error"}. CSV flattens it into the columns file, model, backend, class_1, probability_1, ...,
class_K, probability_K, error. A batch's rows reach the file in one write() call, so a run stopped at any
moment, by Ctrl-C or by SIGKILL, leaves whole rows and at most one cut-off last row, which a resume removes
before it appends.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from zoo.core.errors import ZooError

FORMATS = ("jsonl", "csv")


def format_for(path: str | os.PathLike[str] | None, requested: str | None) -> str:
    """The format asked for, else the one a file's suffix names (.csv: CSV), else JSON Lines."""
    if requested is not None:
        if requested not in FORMATS:
            raise ZooError(f"unknown {{format}} {requested!r}; choose one of {', '.join(FORMATS)}")
        return requested
    return "csv" if path is not None and Path(path).suffix.lower() == ".csv" else "jsonl"


def csv_columns(topk: int) -> list[str]:
    return ["file", "model", "backend", *(f"{kind}_{k}" for k in range(1, topk + 1) for kind in ("class", "probability")), "error"]  # fmt: skip


def encode(rows: list[dict[str, object]], fmt: str, topk: int) -> str:
    """Rows as the text the file holds, each ending in a newline."""
    if fmt == "jsonl":
        return "".join(_json_row(row) + "\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        top = [value for entry in row.get("top") or [] for value in (entry["class"], entry["probability"])]
        top += [""] * (2 * topk - len(top))
        writer.writerow([row["file"], row.get("model", ""), row.get("backend", ""), *top, row.get("error") or ""])
    return buffer.getvalue()


def _json_row(row: dict[str, object]) -> str:
    """`json.dumps(row)`, byte for byte, in half its time for a prediction's row (a million rows are written
    by one process, which also runs the model): the same C string escaping and float repr json uses."""
    top = row.get("top")
    if len(row) != 4 or not isinstance(top, list) or not all(_finite(e["probability"]) for e in top):
        return json.dumps(row)
    entries = "}, ".join([_class_entry(e["class"]) + float.__repr__(e["probability"]) for e in top])
    return (
        f'{{"file": {_string(row["file"])}, "model": {_string(row["model"])}, '
        f'"backend": {_string(row["backend"])}, "top": [{entries}{"}" if top else ""}]}}'
    )


_string = json.encoder.encode_basestring_ascii  # what json.dumps escapes strings with (ensure_ascii)


@functools.cache
def _class_entry(name: str) -> str:
    return f'{{"class": {_string(name)}, "probability": '


def _finite(value: object) -> bool:
    return type(value) is float and math.isfinite(value)


class StreamWriter:
    """Rows to a text stream (standard output), flushed batch by batch so that a reader sees them as they come."""

    def __init__(self, stream: TextIO, fmt: str, topk: int) -> None:
        self.stream, self.fmt, self.topk = stream, fmt, topk
        if fmt == "csv":
            self._write(encode_header(topk))

    def append(self, rows: list[dict[str, object]]) -> None:
        self._write(encode(rows, self.fmt, self.topk))

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


class ResultsFile:
    """A results file: created (refused when one is there already, unless resuming), or resumed, when its
    whole rows are kept (`done`) and a cut-off last row is removed."""

    def __init__(self, path: str | os.PathLike[str], fmt: str, topk: int, *, resume: bool = False) -> None:
        self.path, self.fmt, self.topk = Path(path), fmt, topk
        self.done = 0  # rows in the file before this run appended any
        self.done_failed = 0  # of those, rows that record an error
        self.model: str | None = None  # the model of the file's first classified row
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists and not resume:
            raise ZooError(f"{self.path} exists; pass {{resume=True}} to continue it, or remove it", argument="out")
        if exists:
            self._keep_whole_rows()
        self._fd = _open_for_append(self.path)
        if not exists and fmt == "csv":
            self._write(encode_header(topk))

    def labels(self) -> Iterator[str]:
        """The `file` of each whole row already in the file, in order (what a resumed run skips)."""
        with open(self.path, encoding="utf-8", newline="") as handle:
            for row, _ in _rows(handle, self.fmt, self.path):
                yield row["file"]

    def append(self, rows: list[dict[str, object]]) -> None:
        model = next((row["model"] for row in rows if row.get("model")), None)
        if self.model is not None and model is not None and model != self.model:
            raise ZooError(f"{self.path} holds predictions of {self.model}, not {model}; resume it with that model")
        self._write(encode(rows, self.fmt, self.topk))

    def close(self) -> None:
        os.close(self._fd)

    def _write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:  # one call writes it all on a local disk; the loop is for the rare partial write
            data = data[os.write(self._fd, data) :]

    def _keep_whole_rows(self) -> None:
        end = 0
        with open(self.path, encoding="utf-8", newline="") as handle:
            if self.fmt == "csv":
                header = handle.readline()
                if header.rstrip("\r\n") != encode_header(self.topk).rstrip("\n"):
                    raise ZooError(
                        f"{self.path} does not start with the CSV header of {{topk={self.topk}}}: is it JSON Lines, "
                        "or written with another top-k?"
                    )
                end = len(header.encode("utf-8"))
            for row, row_end in _rows(handle, self.fmt, self.path, end):
                end = row_end
                self.done += 1
                self.done_failed += bool(row.get("error"))
                self.model = self.model or row.get("model") or None
        if end < self.path.stat().st_size:
            os.truncate(self.path, end)  # the row a stopped run was writing: it is predicted again


def encode_header(topk: int) -> str:
    return ",".join(csv_columns(topk)) + "\n"


def _open_for_append(path: Path) -> int:
    """A descriptor that writes at the end of the file whatever else has moved it (O_APPEND), unbuffered:
    what `_write` hands over is in the file, and only the operating system holds it."""
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as error:
        raise ZooError(f"cannot write {path}: {error.strerror or error}", argument="out") from error


def _rows(handle: TextIO, fmt: str, path: Path, start: int = 0) -> Iterator[tuple[dict[str, str], int]]:
    """The whole rows of an open results file, each with the byte offset at which it ends."""
    consumed, ended = start, True

    def lines() -> Iterator[str]:
        nonlocal consumed, ended
        for line in handle:
            consumed += len(line.encode("utf-8"))
            ended = line.endswith("\n")
            yield line

    if fmt == "jsonl":
        for line in lines():
            if not ended:
                return
            try:
                yield json.loads(line), consumed
            except json.JSONDecodeError as error:
                raise ZooError(f"{path} is not a JSON Lines results file (byte {consumed}: {error.msg})") from error
        return
    reader = csv.reader(lines())
    if start == 0:
        next(reader, None)  # the header
    columns = None
    try:
        for record in reader:
            if not ended:
                return
            columns = columns or csv_columns((len(record) - 4) // 2)
            yield {name: value for name, value in zip(columns, record, strict=False) if value}, consumed
    except csv.Error:  # a row cut off inside a quoted file name
        return
