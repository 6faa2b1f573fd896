"""`zoo download`: shipped weights into the cache, or into a store folder for machines without a network."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.app import JsonFlag, emit_json, out
from zoo.core.tables import compact_table, si


def download_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Models (their default tag) or NAME.TAG (default: every model's default tag)."),
    ] = None,
    all_tags: Annotated[bool, typer.Option("--all", help="Every tag, not only the defaults.")] = False,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Also write the files and their manifest into this folder: a weights store."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fetch and verify shipped weights (safetensors and ONNX) from the weights store into the cache."""
    from zoo.core.download import download

    files = download(names, all_tags=all_tags, to=to)
    if as_json:
        return emit_json([asdict(f) for f in files])
    table = compact_table("weights", "file", "size", "sha256", left=("weights", "file", "sha256"))
    for entry in files:
        table.add_row(entry.name, entry.file, f"{si(entry.size)}B", entry.sha256[:12] + "…")
    out.print(table)
    total = sum(f.size for f in files) / 1e6
    folders = ", ".join(sorted({str(Path(f.path).parent) for f in files}))
    out.print(f"{len(files)} files ({total:.1f} MB), sha256 verified, in {folders}", soft_wrap=True)
    if to is not None:
        out.print(f"serve {to} over HTTP, or point ZOO_WEIGHTS_URL at file://{to.resolve()}/", soft_wrap=True)
