"""What every `zoo` command shares: the Typer app, the consoles, the common options and small helpers.

Commands are thin: each parses its options, calls the public Python API and prints (Rich for people,
`--json` for programs). Errors are raised as ZooError and worded for the command line in zoo.cli.errors.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from zoo.core.cache import OFFLINE_ENV
from zoo.core.errors import ZooError
from zoo.core.store import STORE_ENV

app = typer.Typer(
    name="zoo",
    help="Small image classifiers at fixed parameter budgets: train, evaluate, export, predict, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def options(
    weights_url: Annotated[
        str | None,
        typer.Option(
            "--weights-url",
            envvar="ZOO_WEIGHTS_URL",
            show_envvar=True,
            help="The weights store that files not at hand are fetched from (http(s):// or file://).",
        ),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Fetch nothing: use packaged and cached weights only (ZOO_OFFLINE=1).")
    ] = False,
) -> None:
    """Small image classifiers at fixed parameter budgets: train, evaluate, export, predict, benchmark."""
    # The store is read from the environment where the weights are resolved (zoo.core.store), so that
    # subprocesses (benchmark workers, server workers) inherit the choice.
    if weights_url:
        os.environ[STORE_ENV] = weights_url
    if offline:
        os.environ[OFFLINE_ENV] = "1"


out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder with the data set (else $ZOO_DATA, the cache, ...).")
]
Device = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or auto (default: auto).")]


def need_model(name: str | None, weights: Path | None) -> None:
    """Commands that take a model name or a checkpoint (which names its model) need one of them."""
    if name is None and weights is None:
        raise ZooError("name a model, or give --weights FILE", argument="name")


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def parse_overrides(values: list[str]) -> dict[str, str]:
    """`--set FIELD=VALUE` options as a dict (dashes in FIELD read as underscores)."""
    overrides = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ZooError(f"--set expects FIELD=VALUE, got {item!r}", argument="set")
        overrides[key.strip().replace("-", "_")] = value.strip()
    return overrides


def int_list(text: str | None, what: str, argument: str) -> list[int] | None:
    """'1,8,64' -> [1, 8, 64]; None stays None."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise ZooError(
            f"invalid {what} {text!r}; expected comma-separated whole numbers such as 1,8,64", argument=argument
        ) from error
