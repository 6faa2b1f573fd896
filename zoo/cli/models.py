"""`zoo list` and `zoo info`: what the registry holds."""

from __future__ import annotations

from typing import Annotated

import typer

import zoo
from zoo.cli.app import JsonFlag, emit_json, out, percent
from zoo.core.errors import ZooError
from zoo.core.tables import compact_table, si


def list_command(
    pattern: Annotated[str | None, typer.Argument(help="Filter, e.g. 'cnn_*' or 'fcn'.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the registered models with their budgets, cost and shipped accuracy."""
    from zoo.core.catalog import rows as catalog_rows  # the recorded figures: no torch to import

    rows = catalog_rows(pattern)
    if pattern and not rows:
        raise ZooError(f"no model matches {pattern!r}; run `zoo list` to see all")
    if as_json:
        return emit_json(rows)
    table = compact_table(
        "name", "data set", "params", "budget", "MACs", "test acc.", "weights", left=("name", "data set")
    )
    for row in rows:
        table.add_row(
            row["name"], row["dataset"], f"{row['params']:,}", si(row["budget"]), si(row["macs"]),
            percent(row["accuracy"]), _weights(row),
        )  # fmt: skip
    out.print(table)


def _weights(row: dict[str, object]) -> str:
    """Whether the default weights are here, or ship and are fetched from the weights store on first use."""
    if row["weights_present"]:
        return "yes"
    return "download" if row["accuracy"] is not None else "no"


def _presence(weights: dict[str, object]) -> str:
    if weights["present"]:
        return "present"
    return "fetched from the weights store on first use" if weights["file"] else "not shipped"


def info_command(name: str, as_json: JsonFlag = False) -> None:
    """Per-layer table (output shape, parameters, MACs), budget, recipe, preprocessing and weights."""
    info = zoo.model_info(name)
    if as_json:
        return emit_json(info)
    out.print(f"[bold]{name}[/]: {info['description']}")
    table = compact_table("layer", "type", "output shape", "params", "MACs", left=("layer", "type", "output shape"))
    for layer in info["layers"]:
        shape = "×".join(map(str, layer["output_shape"]))
        table.add_row(layer["name"], layer["type"], shape, f"{layer['params']:,}", f"{layer['macs']:,}")
    table.add_section()
    table.add_row("total", "", "", f"{info['params']:,}", f"{info['macs']:,}")
    out.print(table)
    out.print(
        f"budget: {info['min_params']:,} – {info['budget']:,} parameters ({info['params'] / info['budget']:.1%} used)"
    )
    out.print(f"data set: {info['dataset']}   classes: {', '.join(info['classes'])}")
    pre = info["preprocessing"]
    out.print(
        f"preprocessing: {pre['channels']} channel(s) {pre['size'][0]}×{pre['size'][1]}, mean {pre['mean']}, std {pre['std']}"
    )
    out.print("recipe: " + ", ".join(f"{k}={v}" for k, v in info["recipe"].items()))
    weights = info["weights"]
    out.print(f"weights: {weights['file']} ({_presence(weights)}), sha256 {weights['sha256'] or '—'}")
    if info["metrics"]:
        out.print("metrics: " + ", ".join(f"{k}={v}" for k, v in info["metrics"].items()))
